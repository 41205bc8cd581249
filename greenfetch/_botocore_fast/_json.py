"""A JSON answer's structures parsed from a plan made once per shape (:func:`handle_structure`).

``BaseJSONParser._handle_structure`` walks its shape's members, reads each one's serialization for its
JSON name and hands every value present to ``_parse_shape``, which finds the type's handler and calls
it: for the JSON protocol's strings, numbers and booleans that handler is ``_default_handle``, which
returns the value as it came. A page of 5 DynamoDB tables or 50 SSM parameters is a few hundred such
values. For a parser whose handlers are botocore's JSON or REST-JSON parsers' own (``_family``: the
parsers botocore makes for the ``json`` and ``rest-json`` protocols), the members' names, JSON names and
kinds are worked out once per shape object (botocore keeps a shape per operation model) and parser
family, a plain value is taken as its handler makes it (as it came for the JSON protocol; REST-JSON's
``int``, ``float`` and ``ensure_boolean`` of it), a timestamp goes to the parser's timestamp parser as
its handler does, and a nested structure, a list or a map of those is parsed here from its own plan;
anything else (blobs, documents, a header's JSON value) goes through ``_parse_shape`` as before. Any other parser (a
class or instance that replaces a handler) is parsed by botocore's code.

Same dicts, keys in the same order, same values and the same errors: tests/test_json_parse.py parses
values made from every structure of several JSON services' models both ways.
"""

from __future__ import annotations

import weakref
from typing import Any

import botocore.parsers
import botocore.utils
from botocore.utils import is_json_value_header

from ._response import _parse_shape, parse_shape

_JSONParser = botocore.parsers.BaseJSONParser
_handle_structure = _JSONParser._handle_structure
_Response = botocore.parsers.ResponseParser
_Rest = botocore.parsers.BaseRestParser
_PARSE_SHAPES = (_parse_shape, parse_shape)
_ensure_boolean = botocore.utils.ensure_boolean

# What a member's value is made of for a parser of a known family: the value as it came, ``int``,
# ``float`` or ``ensure_boolean`` of it (what its type's handler makes of it: ``_family``), the parser's
# timestamp parser's value of it, a structure parsed from its own plan, a list of any of these, a map
# of plain keys to plain values or structures; anything else through ``_parse_shape``.
_PLAIN, _INT, _FLOAT, _BOOL, _TIMESTAMP, _STRUCTURE, _LIST, _MAP, _OTHER = range(9)
_PLAIN_TYPES = ("boolean", "character", "double", "float", "integer", "long", "string")
_UNPLANNED: Any = object()

# shape -> {family: plan}: a family is what a parser class makes of each plain type (``_family``)
_plans: weakref.WeakKeyDictionary[Any, dict[int, _Plan]] = weakref.WeakKeyDictionary()


class _Member:
    """One member of a structure's plan: its name, JSON name, shape and kind; for a list its items'
    shape and kind, for a map its values' and whether its keys are plain. ``plan`` (a structure's, or
    a list's items' or a map's values') is found when first needed."""

    __slots__ = ("name", "json_name", "shape", "kind", "item_shape", "item_kind", "plain_keys", "plan")

    def __init__(self, name: str, shape: Any, kinds: dict[str, int]):
        self.name, self.shape = name, shape
        self.json_name = shape.serialization.get("name", name)
        self.kind = _kind(shape, kinds)
        self.item_shape: Any = None
        self.item_kind = _OTHER
        self.plain_keys = False
        if self.kind == _LIST:
            self.item_shape = shape.member
        elif self.kind == _MAP:
            self.item_shape = shape.value
            self.plain_keys = _kind(shape.key, kinds) == _PLAIN
        if self.item_shape is not None:
            self.item_kind = _kind(self.item_shape, kinds)
        self.plan: Any = _UNPLANNED


def _kind(shape: Any, kinds: dict[str, int]) -> int:
    name = shape.type_name
    if name in kinds:  # a plain type
        return kinds[name] if not is_json_value_header(shape) else _OTHER
    if name == "timestamp":
        return _TIMESTAMP
    if name == "structure" and not shape.is_document_type:
        return _STRUCTURE
    if name == "list" and shape.serialization.get("location") is None:  # a header's list is split first
        return _LIST
    if name == "map" and shape.serialization.get("location") is None:  # a headers map is read from them
        return _MAP
    return _OTHER


class _Plan:
    """A structure shape's members in the shape's order (``members``: ``_Member``) for one family of
    parsers; ``union``: a tagged union (botocore's code checks its one member first)."""

    __slots__ = ("members", "union", "family")

    def __init__(self, shape: Any, family: int):
        members = shape.members
        kinds = _FAMILIES[family]
        self.members = tuple(_Member(name, members[name], kinds) for name in members)
        self.union = bool(shape.is_tagged_union)
        self.family = family


def _plan_of(shape: Any, family: int) -> _Plan:
    plans = _plans.get(shape)
    if plans is None:
        plans = _plans[shape] = {}
    plan = plans.get(family)
    if plan is None:
        plan = plans[family] = _Plan(shape, family)
    return plan


def handle_structure(self: Any, shape: Any, value: Any) -> Any:
    """``BaseJSONParser._handle_structure``, from the shape's plan for a parser of a known family
    (``_family``); botocore's own for any other, and for a document."""
    if shape.is_document_type:
        return _handle_structure(self, shape, value)
    family = _family(self)
    if family is None:
        return _handle_structure(self, shape, value)
    return _structure(self, shape, _plan_of(shape, family), value)


def _structure(self: Any, shape: Any, plan: _Plan, value: Any) -> Any:
    if value is None:  # a structure that came as null stays None
        return None
    if plan.union and self._has_unknown_tagged_union_member(shape, value):
        return self._handle_unknown_tagged_union_member(self._get_first_key(value))
    parsed = {}
    get = value.get
    for member in plan.members:
        raw = get(member.json_name)
        if raw is None:
            continue
        kind = member.kind
        if kind == _PLAIN:
            parsed[member.name] = raw
        elif kind == _STRUCTURE:
            sub = member.plan
            if sub is _UNPLANNED:
                sub = member.plan = _plan_of(member.shape, plan.family)
            parsed[member.name] = _structure(self, member.shape, sub, raw)
        elif kind == _LIST:
            parsed[member.name] = _list(self, plan, member, raw)
        elif kind == _MAP:
            parsed[member.name] = _map(self, plan, member, raw)
        elif kind == _TIMESTAMP:
            parsed[member.name] = self._timestamp_parser(raw)
        elif kind == _INT:
            parsed[member.name] = int(raw)
        elif kind == _BOOL:
            parsed[member.name] = _ensure_boolean(raw)
        elif kind == _FLOAT:
            parsed[member.name] = float(raw)
        else:
            parsed[member.name] = self._parse_shape(member.shape, raw)
    return parsed


def _list(self: Any, plan: _Plan, member: _Member, raw: Any) -> Any:
    """``ResponseParser._handle_list`` of values taken as they came or of structures: each item parsed
    as the list's member (a null item is null either way); a list of anything else is botocore's
    (whose handling of a null item changed across versions)."""
    kind = member.item_kind
    if kind == _PLAIN:
        return list(raw)
    if kind == _STRUCTURE:
        shape, sub = member.item_shape, _items_plan(plan, member)
        return [None if item is None else _structure(self, shape, sub, item) for item in raw]
    return self._parse_shape(member.shape, raw)


def _items_plan(plan: _Plan, member: _Member) -> _Plan:
    """The plan of a list's items or a map's values that are structures (found once, kept on the member)."""
    sub = member.plan
    if sub is _UNPLANNED:
        sub = member.plan = _plan_of(member.item_shape, plan.family)
    return sub  # type: ignore[no-any-return]


def _map(self: Any, plan: _Plan, member: _Member, raw: Any) -> Any:
    """``BaseJSONParser._handle_map`` of plain keys to plain values or structures: each value parsed as
    the map's value (a null one is null either way), in the answer's order; any other map is
    botocore's."""
    if member.plain_keys and type(raw) is dict:
        kind = member.item_kind
        if kind == _PLAIN:
            return dict(raw)
        if kind == _STRUCTURE:
            shape, sub = member.item_shape, _items_plan(plan, member)
            return {
                key: None if value is None else _structure(self, shape, sub, value)
                for key, value in raw.items()
            }
    return self._parse_shape(member.shape, raw)


# What botocore's JSON and REST-JSON parsers make of each plain type, by the handler its class has
# for it: none (``_default_handle``) or REST's string handler (a header's JSON value aside): the
# value; REST-JSON's integer, float and boolean handlers: ``int``, ``float``, ``ensure_boolean``.
_CONVERTERS: dict[Any, int] = {None: _PLAIN, _Rest._handle_string: _PLAIN}
for _name, _kind_of in (("_handle_integer", _INT), ("_handle_float", _FLOAT), ("_handle_boolean", _BOOL)):
    _found = botocore.parsers.RestJSONParser.__dict__.get(_name)
    if _found is not None:
        _CONVERTERS[_found] = _kind_of
_FAMILIES: list[dict[str, int]] = []  # a family's kind per plain type; its index is the family
_family_of_class: dict[type, int | None] = {}
_HANDLERS = frozenset(
    (*(f"_handle_{name}" for name in _PLAIN_TYPES), "_parse_shape", "_default_handle", "_handle_timestamp")
    + ("_handle_structure", "_handle_list", "_handle_map", "_has_unknown_tagged_union_member")
)


def _family(parser: Any) -> int | None:
    """The parser's family: what its class makes of each plain type, when each is made by a handler of
    botocore's JSON or REST-JSON parsers (``_CONVERTERS``) and its timestamps, structures and lists are
    theirs, none replaced on its class or set on it; else None (botocore's code parses)."""
    cls = type(parser)
    if cls in _family_of_class:
        family = _family_of_class[cls]
    else:
        kinds = {name: _CONVERTERS.get(getattr(cls, f"_handle_{name}", None), -1) for name in _PLAIN_TYPES}
        known = (
            -1 not in kinds.values()
            and cls._parse_shape in _PARSE_SHAPES
            and cls._default_handle is _Response._default_handle
            and cls._handle_timestamp is _JSONParser._handle_timestamp
            and cls._handle_structure is handle_structure
            and cls._handle_list in (_Response._handle_list, _Rest._handle_list)
            and cls._handle_map is _JSONParser._handle_map
            and cls._has_unknown_tagged_union_member is _Response._has_unknown_tagged_union_member
        )
        family = None
        if known:
            if kinds not in _FAMILIES:
                _FAMILIES.append(kinds)
            family = _FAMILIES.index(kinds)
        _family_of_class[cls] = family
    if family is None or not _HANDLERS.isdisjoint(parser.__dict__):
        return None
    return family
