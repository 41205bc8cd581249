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

from ._response import _parse_shape, parse_shape

_XMLParser = botocore.parsers.BaseXMLResponseParser
_handle_structure = _XMLParser._handle_structure
_node_tag = _XMLParser._node_tag
_member_key_name = _XMLParser._member_key_name
_build_name_to_xml_node = _XMLParser._build_name_to_xml_node
_HANDLE_STRING = _XMLParser._handle_string
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


class _Plan:
    """A structure shape's members as a body holds them: ``members`` (member name, member shape, XML
    name, attribute name or None) in the shape's order; ``by_xml`` each XML name's members (their
    position, name, shape, whether it is a string); ``attributes``: whether any member is an XML attribute (looked for even
    when absent as a child, so that shape is walked member by member)."""

    __slots__ = ("members", "by_xml", "attributes")

    def __init__(self, members: list[tuple[str, Any, str, str | None]]):
        self.members = tuple(members)
        self.attributes = any(attribute is not None for *_, attribute in members)
        by_xml: dict[str, list[tuple[int, str, Any, bool]]] = {}
        for position, (name, shape, xml_name, _) in enumerate(members):
            by_xml.setdefault(xml_name, []).append((position, name, shape, shape.type_name == "string"))
        self.by_xml = {xml_name: tuple(entries) for xml_name, entries in by_xml.items()}


def _plan(parser: Any, shape: Any) -> _Plan | None:
    """The shape's plan; None for a shape botocore's code should parse (an attribute member without a
    name, on which botocore fails only when the member is absent)."""
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
    return _Plan(plan)


def handle_structure(self: Any, shape: Any, node: Any) -> Any:
    """``BaseXMLResponseParser._handle_structure``, the members' plan made once per shape: the members
    present found from the element's children (a structure holds a few of its shape's many members),
    put in the shape's order as botocore's walk of every member adds them."""
    if not _ours(self) or shape.metadata.get("exception", False):
        return _handle_structure(self, shape, node)
    plan = _plans.get(shape, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = _plans[shape] = _plan(self, shape)
    if plan is None:
        return _handle_structure(self, shape, node)
    xml_dict = self._build_name_to_xml_node(node)
    if self._has_unknown_tagged_union_member(shape, xml_dict):
        tag = self._get_first_key(xml_dict)
        return self._handle_unknown_tagged_union_member(tag)
    parsed = {}
    parse = self._parse_shape
    if plan.attributes:
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
    by_xml = plan.by_xml
    present = []
    for xml_name, member_node in xml_dict.items():
        entries = by_xml.get(xml_name)
        if entries is not None:
            for position, member_name, member_shape, string in entries:
                present.append((position, member_name, member_shape, string, member_node))
    if len(present) > 1:
        present.sort(key=_POSITION)
    strings = _plain_strings(self)
    for _, member_name, member_shape, string, member_node in present:
        if string and strings and type(member_node) is _Element:
            # what _parse_shape -> _handle_string (its _text_content wrapper) gives an element
            text = member_node.text
            parsed[member_name] = "" if text is None else text
        else:
            parsed[member_name] = parse(member_shape, member_node)
    return parsed


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
        found = self._namespace_re.sub("", tag)
        if len(_tags) >= _TAGS_KEPT:
            _tags.clear()
        _tags[tag] = found
    return found
