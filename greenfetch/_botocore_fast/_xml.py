"""An XML response's structures parsed from a plan made once per shape (:func:`handle_structure`), and
an element's tag without its namespace remembered per tag (:func:`node_tag`).

Every structure of a query, EC2 or REST-XML answer goes through
``BaseXMLResponseParser._handle_structure``, which walks *all* of its shape's members, present or not,
and for each reads its serialization three or four times and works out its XML name
(``_member_key_name``): an EC2 instance (~60 members, ~35 nested structures) cost ~97 µs of CPU to
parse, a page of 50 instances 5 ms against a call's 0.5 ms. The member list, which members a body can
hold, their XML names and attribute names depend on the shape alone: they are worked out once per shape
object (botocore's shapes are made once per operation model and kept), and each structure then looks
its members up in the element's children as botocore does, in the shape's order. ``_node_tag`` strips
``{namespace}`` with a regular expression per element; the answer for a tag is remembered.

For a parser whose handlers are botocore's XML parsers' own (``_direct``: the query, EC2 and REST-XML
parsers botocore makes), a structure's children are matched to its members in one pass by their tags
as the answer writes them (no namespace stripped, no dict of every child), and a member that is a
string, an integer, a boolean, a timestamp, a structure or a list of those is made here as its handler
makes it, without a handler looked up per node: a page of 50 EC2 instances 22.1M -> 16.1M instructions
(2.2 -> 1.6 ms of CPU).

Same dicts, keys in the same order, same values: tests/test_xml_parse.py parses elements made from
every structure of several XML services' models both ways. A parser whose class changes these methods
(or its namespace pattern) is parsed by botocore's code.
"""

from __future__ import annotations

import operator
import weakref
import xml.etree.ElementTree
from typing import Any

import botocore.parsers

from .._kept import kept
from ._response import _parse_shape, parse_shape

_XMLParser = botocore.parsers.BaseXMLResponseParser
_handle_structure = _XMLParser._handle_structure
_node_tag = _XMLParser._node_tag
_member_key_name = _XMLParser._member_key_name
_build_name_to_xml_node = _XMLParser._build_name_to_xml_node
_HANDLE_STRING = _XMLParser._handle_string
# REST-XML's string handler hands its text to the XML parsers' own: the same value
_STRING_HANDLERS = (_HANDLE_STRING, botocore.parsers.RestXMLParser._handle_string)
_HAS_UNKNOWN = botocore.parsers.ResponseParser._has_unknown_tagged_union_member
# REST-XML's list handler splits a header's list first (a member in a header is no body member): the same
_LIST_HANDLERS = (_XMLParser._handle_list, botocore.parsers.BaseRestParser._handle_list)
_PARSE_SHAPES = (_parse_shape, parse_shape)  # botocore's, and the handler lookup once per class
_Element = xml.etree.ElementTree.Element
# botocore 1.40+ skips members whose location is one it knows (a header, the status code); 1.36
# skipped any member with a location at all
_KNOWN_LOCATIONS = getattr(botocore.parsers.ResponseParser, "KNOWN_LOCATIONS", None)
_NAMESPACE = "{.*}"
_TAGS_KEPT = 4096  # distinct tags remembered at most (a schema has a few hundred)

_plans: weakref.WeakKeyDictionary[Any, _Plan | None] = weakref.WeakKeyDictionary()
_tags: dict[str, str] = {}
_POSITION = operator.itemgetter(0)
_UNPLANNED: Any = object()  # a shape not seen yet (None: one botocore's code parses)


def _ours(parser: Any) -> bool:
    """Whether this parser's class parses structures and tags as botocore's XML parsers do."""
    cls = type(parser)
    return (
        cls._member_key_name is _member_key_name
        and cls._build_name_to_xml_node is _build_name_to_xml_node
        and parser._namespace_re.pattern == _NAMESPACE
    )


# What a member's value is made of, when a parser takes botocore's own handlers (``_direct``): its
# element's text (a string), ``int`` of it, ``== "true"`` of it, the parser's timestamp parser's value
# of it, a structure parsed from its own plan, a list of those; anything else through the parser's
# ``_parse_shape`` as before.
_STRING, _INTEGER, _BOOLEAN, _TIMESTAMP, _STRUCTURE, _LIST, _OTHER = range(7)
_KINDS = {
    "string": _STRING,
    "integer": _INTEGER,
    "long": _INTEGER,
    "boolean": _BOOLEAN,
    "timestamp": _TIMESTAMP,
    "structure": _STRUCTURE,
    "list": _LIST,
}


class _Member:
    """One member of a structure's plan: where it stands in the shape's order, its name and shape, what
    its value is made of (``kind``), and for a list whether it is flattened and its items' shape and
    kind. ``plan`` (a structure's, or a list's items') is found when first needed."""

    __slots__ = ("position", "name", "shape", "kind", "flattened", "item_shape", "item_kind", "plan")

    def __init__(self, position: int, name: str, shape: Any):
        self.position, self.name, self.shape = position, name, shape
        self.kind = _KINDS.get(shape.type_name, _OTHER)
        self.flattened = False
        self.item_shape: Any = None
        self.item_kind = _OTHER
        if self.kind == _LIST:
            self.flattened = bool(shape.serialization.get("flattened"))
            self.item_shape = shape.member
            self.item_kind = _KINDS.get(self.item_shape.type_name, _OTHER)
        self.plan: Any = _UNPLANNED


class _Plan:
    """A structure shape's members as a body holds them: ``members`` (member name, member shape, XML
    name, attribute name or None) in the shape's order; ``by_xml`` each XML name's members
    (``_Member``) and ``by_tag`` the same by tag as an answer writes it; ``attributes``: whether any
    member is an XML attribute (looked for even when absent as a child, so that shape is walked member
    by member); ``union``: a tagged union (its one member checked by botocore's code)."""

    __slots__ = ("members", "by_xml", "by_tag", "attributes", "union")

    def __init__(self, members: list[tuple[str, Any, str, str | None]], union: bool = False):
        self.members = tuple(members)
        self.attributes = any(attribute is not None for *_, attribute in members)
        self.union = union
        by_xml: dict[str, list[_Member]] = {}
        for position, (name, shape, xml_name, _) in enumerate(members):
            by_xml.setdefault(xml_name, []).append(_Member(position, name, shape))
        self.by_xml = {xml_name: tuple(entries) for xml_name, entries in by_xml.items()}
        # a child's tag as the element holds it ({namespace}name) -> ``by_xml``'s entry for its name
        self.by_tag: dict[str, tuple[_Member, ...]] = {}


def _plan(parser: Any, shape: Any) -> _Plan | None:
    """The shape's plan; None for a shape botocore's code should parse (an error's, whose root is
    looked for first, and one with an attribute member without a name, on which botocore fails only
    when the member is absent)."""
    if shape.metadata.get("exception", False):
        return None
    members = shape.members
    plan = []
    for member_name in members:
        member_shape = members[member_name]
        serialization = member_shape.serialization
        location = serialization.get("location")
        skipped = (
            location in _KNOWN_LOCATIONS if _KNOWN_LOCATIONS is not None else "location" in serialization
        )
        if skipped or serialization.get("eventheader"):
            continue
        if serialization.get("xmlAttribute") and "name" not in serialization:
            return None
        attribute = serialization["name"] if serialization.get("xmlAttribute") else None
        plan.append(
            (member_name, member_shape, _member_key_name(parser, member_shape, member_name), attribute)
        )
    return _Plan(plan, bool(getattr(shape, "is_tagged_union", False)))


def _plan_of(parser: Any, shape: Any) -> _Plan | None:
    plan: _Plan | None = _plans.get(shape, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = _plans[shape] = _plan(parser, shape)
    return plan


def handle_structure(self: Any, shape: Any, node: Any) -> Any:
    """``BaseXMLResponseParser._handle_structure``, the members' plan made once per shape: the members
    present found from the element's children (a structure holds a few of its shape's many members),
    put in the shape's order as botocore's walk of every member adds them."""
    if not _ours(self):
        return _handle_structure(self, shape, node)
    plan = _plan_of(self, shape)
    if plan is None:
        return _handle_structure(self, shape, node)
    if _direct(self):
        return _structure(self, shape, plan, node)
    xml_dict = self._build_name_to_xml_node(node)
    if self._has_unknown_tagged_union_member(shape, xml_dict):
        tag = self._get_first_key(xml_dict)
        return self._handle_unknown_tagged_union_member(tag)
    if plan.attributes:
        return _with_attributes(self, plan, node, xml_dict)
    parsed = {}
    parse = self._parse_shape
    strings = _plain_strings(self)
    for _, member, member_node in _present(plan, xml_dict):
        if member.kind == _STRING and strings and type(member_node) is _Element:
            # what _parse_shape -> _handle_string (its _text_content wrapper) gives an element
            text = member_node.text
            parsed[member.name] = "" if text is None else text
        else:
            parsed[member.name] = parse(member.shape, member_node)
    return parsed


def _present(plan: _Plan, xml_dict: dict[str, Any]) -> list[tuple[int, _Member, Any]]:
    """The plan's members the element holds, each with its node, in the shape's order (its position
    first: the sort compares no more, as no two members hold one position)."""
    by_xml = plan.by_xml
    present = []
    for xml_name, member_node in xml_dict.items():
        entries = by_xml.get(xml_name)
        if entries is not None:
            for member in entries:
                present.append((member.position, member, member_node))
    if len(present) > 1:
        present.sort(key=_POSITION)
    return present


def _with_attributes(self: Any, plan: _Plan, node: Any, xml_dict: dict[str, Any]) -> dict[str, Any]:
    """A structure with an XML attribute member: botocore's walk of every member, from the plan."""
    parsed = {}
    parse = self._parse_shape
    for member_name, member_shape, xml_name, attribute in plan.members:
        member_node = xml_dict.get(xml_name)
        if member_node is not None:
            parsed[member_name] = parse(member_shape, member_node)
        elif attribute is not None:
            attribs = {}
            prefix = attribute.split(":")[0] + ":"
            for key, value in node.attrib.items():
                attribs[self._namespace_re.sub(prefix, key)] = value
            if attribute in attribs:
                parsed[member_name] = attribs[attribute]
    return parsed


def _structure(self: Any, shape: Any, plan: _Plan, node: Any) -> Any:
    """A structure for a parser with botocore's own handlers (``_direct``): each member's value made
    as its handler makes it, a nested structure or list parsed here from its plan (no handler looked
    up per node); a member of another kind, or a node that is not one element (a repeated tag), goes
    through ``_parse_shape``."""
    present = None
    if not (plan.union or plan.attributes) and type(node) is _Element:
        present = _children(self, plan, node)
    if present is None:  # botocore's way: the children by tag, a repeated tag's as a list
        xml_dict = self._build_name_to_xml_node(node)
        if plan.union and self._has_unknown_tagged_union_member(shape, xml_dict):
            return self._handle_unknown_tagged_union_member(self._get_first_key(xml_dict))
        if plan.attributes:
            return _with_attributes(self, plan, node, xml_dict)
        present = _present(plan, xml_dict)
    parsed: dict[str, Any] = {}
    for _, member, member_node in present:
        kind = member.kind
        if type(member_node) is not _Element:
            if kind == _LIST and type(member_node) is list:  # a repeated tag: a flattened list's items
                parsed[member.name] = _list(self, member, member_node)
            else:
                parsed[member.name] = self._parse_shape(member.shape, member_node)
        elif kind == _OTHER:
            parsed[member.name] = self._parse_shape(member.shape, member_node)
        elif kind == _STRING:
            text = member_node.text
            parsed[member.name] = "" if text is None else text
        elif kind == _STRUCTURE:
            sub = member.plan
            if sub is _UNPLANNED:
                sub = member.plan = _plan_of(self, member.shape)
            if sub is None:
                parsed[member.name] = self._parse_shape(member.shape, member_node)
            else:
                parsed[member.name] = _structure(self, member.shape, sub, member_node)
        elif kind == _LIST:
            parsed[member.name] = _list(self, member, member_node)
        elif kind == _TIMESTAMP:
            text = member_node.text
            parsed[member.name] = self._timestamp_parser("" if text is None else text)
        elif kind == _INTEGER:
            text = member_node.text
            parsed[member.name] = int("" if text is None else text)
        else:  # _BOOLEAN
            parsed[member.name] = member_node.text == "true"
    return parsed


def _children(self: Any, plan: _Plan, node: Any) -> list[tuple[int, _Member, Any]] | None:
    """``_present`` read from the element's children in one pass, by their tags as the element holds
    them (namespace and all: ``_Plan.by_tag``); None when a member's tag repeats (botocore makes its
    node a list of them: ``_build_name_to_xml_node``)."""
    by_tag = plan.by_tag
    found = {}
    last, ordered = -1, True  # no sort when the answer writes the shape's order (EC2 writes its own)
    for child in node:
        entries = by_tag.get(child.tag)
        if entries is None:
            entries = _learn_tag(self, plan, child)
        for member in entries:
            position = member.position
            if position in found:
                return None
            found[position] = (position, member, child)
            if position < last:
                ordered = False
            last = position
    if ordered:
        return list(found.values())
    return [found[position] for position in sorted(found)]


def _learn_tag(self: Any, plan: _Plan, child: Any) -> tuple[_Member, ...]:
    """The plan's members a child's tag names (none: a tag the shape does not know), remembered for
    the first ``_TAGS_KEPT`` tags the plan sees."""
    entries = plan.by_xml.get(self._node_tag(child), ())
    if len(plan.by_tag) < _TAGS_KEPT:
        plan.by_tag[child.tag] = entries
    return entries


def _list(self: Any, member: _Member, node: Any) -> list[Any]:
    """A list member's items: its element's children, a flattened list's one element, or the elements
    of a repeated tag (botocore's list handler iterates what ``_build_name_to_xml_node`` made of them)."""
    items = node if type(node) is list else (node,) if member.flattened else node
    kind = member.item_kind
    if kind == _STRING:
        return ["" if item.text is None else item.text for item in items]
    if kind == _STRUCTURE:
        sub = member.plan
        if sub is _UNPLANNED:
            sub = member.plan = _plan_of(self, member.item_shape)
        if sub is not None:
            shape = member.item_shape
            return [_structure(self, shape, sub, item) for item in items]
    parse, shape = self._parse_shape, member.item_shape
    return [parse(shape, item) for item in items]


# a parser class's handlers are botocore's XML parsers' own (``_direct``), by class: True or False
_direct_classes: dict[type, bool] = {}
_HANDLERS = frozenset(
    (
        "_parse_shape",
        "_handle_string",
        "_handle_integer",
        "_handle_long",
        "_handle_boolean",
        "_handle_timestamp",
    )
    + ("_handle_structure", "_handle_list", "_build_name_to_xml_node", "_node_tag")
    + ("_has_unknown_tagged_union_member", "_member_key_name")
)


def _direct(parser: Any) -> bool:
    """Whether the parser's strings, integers, booleans, timestamps, structures and lists are botocore's XML
    parsers' (each value made as their handlers make it), none replaced on its class or on it."""
    cls = type(parser)
    direct = _direct_classes.get(cls)
    if direct is None:
        direct = _direct_classes[cls] = (
            cls._parse_shape in _PARSE_SHAPES
            and cls._handle_string in _STRING_HANDLERS
            and cls._handle_integer is _XMLParser._handle_integer
            and cls._handle_long is _XMLParser._handle_long
            and cls._handle_boolean is _XMLParser._handle_boolean
            and cls._handle_timestamp is _XMLParser._handle_timestamp
            and cls._handle_structure is handle_structure
            and cls._handle_list in _LIST_HANDLERS
            and cls._has_unknown_tagged_union_member is _HAS_UNKNOWN
        )
    return direct and _HANDLERS.isdisjoint(parser.__dict__)


def _plain_strings(parser: Any) -> bool:
    """Whether a string member's value is its element's text, as botocore's XML parsers make it: the
    class's ``_parse_shape`` botocore's (or its adaptation, which finds the same handler) and its
    ``_handle_string`` the XML parsers' own, neither replaced on the instance."""
    cls = type(parser)
    return (
        cls._handle_string is _HANDLE_STRING
        and cls._parse_shape in _PARSE_SHAPES
        and "_handle_string" not in parser.__dict__
        and "_parse_shape" not in parser.__dict__
    )


def node_tag(self: Any, node: Any) -> Any:
    """``BaseXMLResponseParser._node_tag``: the tag without ``{namespace}``, remembered per tag."""
    if self._namespace_re.pattern != _NAMESPACE:
        return _node_tag(self, node)
    tag = node.tag
    found = _tags.get(tag)
    if found is None:
        found = kept(_tags, tag, self._namespace_re.sub("", tag), _TAGS_KEPT)
    return found
