"""A JSON answer's structures parsed from a plan made once per shape (:func:`handle_structure`).

``BaseJSONParser._handle_structure`` walks its shape's members, reads each one's serialization for its
JSON name and hands every value present to ``_parse_shape``, which finds the type's handler and calls
it: for the JSON protocol's strings, numbers and booleans that handler is ``_default_handle``, which
returns the value as it came. A page of 5 DynamoDB tables or 50 SSM parameters is a few hundred such
values. For a parser whose handlers are botocore's JSON parser's own (``_direct``: the parser botocore
makes for the ``json`` protocol), the members' names, JSON names and kinds are worked out once per
shape object (botocore keeps a shape per operation model), a value that its handler would return
unchanged is taken as it is, a timestamp goes to the parser's timestamp parser as its handler does, and
a nested structure or list is parsed here from its own plan; anything else (maps, blobs, documents,
tagged unions' checks) goes through ``_parse_shape`` as before. Any other parser (REST-JSON's, whose
integers, booleans and header strings have handlers of their own, or a class or instance that replaces
a handler) is parsed by botocore's code.

Same dicts, keys in the same order, same values and the same errors: tests/test_json_parse.py parses
values made from every structure of several JSON services' models both ways.
"""

from __future__ import annotations

import weakref
from typing import Any

import botocore.parsers

from ._response import _parse_shape, parse_shape

_JSONParser = botocore.parsers.BaseJSONParser
_handle_structure = _JSONParser._handle_structure
_Response = botocore.parsers.ResponseParser
_PARSE_SHAPES = (_parse_shape, parse_shape)

# What a member's value is made of for a ``_direct`` parser: the value as it came (a type whose
# handler is ``_default_handle``), the parser's timestamp parser's value of it, a structure parsed from
# its own plan, a list of any of these; anything else through ``_parse_shape``.
_PLAIN, _TIMESTAMP, _STRUCTURE, _LIST, _OTHER = range(5)
_PLAIN_TYPES = frozenset(("string", "integer", "long", "boolean", "double", "float", "character"))
_UNPLANNED: Any = object()

_plans: weakref.WeakKeyDictionary[Any, _Plan] = weakref.WeakKeyDictionary()


def _kind(shape: Any) -> int:
    name = shape.type_name
    if name in _PLAIN_TYPES:
        return _PLAIN
    if name == "timestamp":
        return _TIMESTAMP
    if name == "structure" and not shape.is_document_type:
        return _STRUCTURE
    if name == "list":
        return _LIST
    return _OTHER


class _Member:
    """One member of a structure's plan: its name, JSON name, shape and kind; for a list its items'
    shape and kind. ``plan`` (a structure's, or a list's items') is found when first needed."""

    __slots__ = ("name", "json_name", "shape", "kind", "item_shape", "item_kind", "plan")

    def __init__(self, name: str, shape: Any):
        self.name, self.shape = name, shape
        self.json_name = shape.serialization.get("name", name)
        self.kind = _kind(shape)
        self.item_shape: Any = shape.member if self.kind == _LIST else None
        self.item_kind = _kind(self.item_shape) if self.kind == _LIST else _OTHER
        self.plan: Any = _UNPLANNED


class _Plan:
    """A structure shape's members in the shape's order (``members``: ``_Member``); ``union``: a
    tagged union (botocore's code checks its one member first)."""

    __slots__ = ("members", "union")

    def __init__(self, shape: Any):
        members = shape.members
        self.members = tuple(_Member(name, members[name]) for name in members)
        self.union = bool(shape.is_tagged_union)


def _plan_of(shape: Any) -> _Plan:
    plan: _Plan | None = _plans.get(shape)
    if plan is None:
        plan = _plans[shape] = _Plan(shape)
    return plan


def handle_structure(self: Any, shape: Any, value: Any) -> Any:
    """``BaseJSONParser._handle_structure``, from the shape's plan for a parser with botocore's JSON
    handlers (``_direct``); botocore's own for any other, and for a document."""
    if shape.is_document_type or not _direct(self):
        return _handle_structure(self, shape, value)
    return _structure(self, shape, _plan_of(shape), value)


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
                sub = member.plan = _plan_of(member.shape)
            parsed[member.name] = _structure(self, member.shape, sub, raw)
        elif kind == _LIST:
            parsed[member.name] = _list(self, member, raw)
        elif kind == _TIMESTAMP:
            parsed[member.name] = self._timestamp_parser(raw)
        else:
            parsed[member.name] = self._parse_shape(member.shape, raw)
    return parsed


def _list(self: Any, member: _Member, raw: Any) -> Any:
    """``ResponseParser._handle_list`` of plain values or structures: each item parsed as the list's
    member (a null item is null either way); a list of anything else is botocore's (whose handling of
    a null item changed across versions)."""
    kind = member.item_kind
    if kind == _PLAIN:
        return list(raw)
    if kind == _STRUCTURE:
        sub = member.plan
        if sub is _UNPLANNED:
            sub = member.plan = _plan_of(member.item_shape)
        shape = member.item_shape
        return [None if item is None else _structure(self, shape, sub, item) for item in raw]
    return self._parse_shape(member.shape, raw)


# a parser class's handlers are botocore's JSON parser's own (``_direct``), by class: True or False
_direct_classes: dict[type, bool] = {}
_PLAIN_HANDLERS = tuple(f"_handle_{name}" for name in sorted(_PLAIN_TYPES))
_HANDLERS = frozenset(
    (*_PLAIN_HANDLERS, "_parse_shape", "_default_handle", "_handle_timestamp", "_handle_structure")
    + ("_handle_list", "_has_unknown_tagged_union_member")
)


def _direct(parser: Any) -> bool:
    """Whether the parser's plain values, timestamps, structures and lists are made as botocore's JSON
    parser makes them: no handler for a plain type (``_default_handle``: the value as it came), the
    JSON parser's timestamp handler, this structure handler and the base list handler, none replaced
    on its class or set on it."""
    cls = type(parser)
    direct = _direct_classes.get(cls)
    if direct is None:
        direct = _direct_classes[cls] = (
            cls._parse_shape in _PARSE_SHAPES
            and all(getattr(cls, name, None) is None for name in _PLAIN_HANDLERS)
            and cls._default_handle is _Response._default_handle
            and cls._handle_timestamp is _JSONParser._handle_timestamp
            and cls._handle_structure is handle_structure
            and cls._handle_list is _Response._handle_list
            and cls._has_unknown_tagged_union_member is _Response._has_unknown_tagged_union_member
        )
    return direct and _HANDLERS.isdisjoint(parser.__dict__)
