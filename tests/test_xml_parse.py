"""An XML answer's structures (``_botocore_fast._xml``) against botocore's own parse: every structure
shape of several query, EC2 and REST-XML services, as an element holding every member (and one holding
every other member, one holding members in the reverse order, one whose strings are empty elements,
one whose lists hold one item), parsed both ways into the same dict, keys in the same order."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import botocore.model
import botocore.parsers
import botocore.session
import pytest
from _shapes import outcome, structures

from greenfetch import _botocore_fast
from greenfetch._botocore_fast import _xml

SERVICES = [
    "ec2",
    "iam",
    "s3",
    "sts",
    "sns",
    "cloudformation",
    "rds",
    "elbv2",
    "route53",
    "cloudfront",
    "autoscaling",
]
_NS = "http://example.com/doc/2016-11-15/"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCALARS = {
    "string": "t\u00fc & <x>",
    "integer": "7",
    "long": "1099511627776",
    "float": "1.5",
    "double": "2.25",
    "boolean": "true",
    "timestamp": "2026-01-02T03:04:05.000Z",
    "blob": "AP9iaW4=",
}


def _element(tag, shape, depth, pick, items=2):
    element = ET.Element(f"{{{_NS}}}{tag}")
    kind = shape.type_name
    if depth > 6:
        return element
    if kind == "structure":
        members = list(shape.members.items())
        for name, member in pick(members):
            serialization = member.serialization
            if serialization.get("xmlAttribute"):
                attribute = serialization.get("name", name)
                prefix, _, local = attribute.rpartition(":")
                element.set(f"{{{_XSI}}}{local}" if prefix else local, "attr-value")
                continue
            key = _xml._member_key_name(None, member, name)
            if member.type_name == "list" and serialization.get("flattened"):
                for _ in range(items):
                    element.append(_element(key, member.member, depth + 1, pick, items))
            else:
                element.append(_element(key, member, depth + 1, pick, items))
    elif kind == "list":
        item = shape.member.serialization.get("name", "member")
        for _ in range(items):
            element.append(_element(item, shape.member, depth + 1, pick, items))
    elif kind == "map":
        key_name = shape.key.serialization.get("name") or "key"
        value_name = shape.value.serialization.get("name") or "value"
        entry = element if shape.serialization.get("flattened") else ET.SubElement(element, "entry")
        entry.append(_element(key_name, shape.key, depth + 1, pick, items))
        entry.append(_element(value_name, shape.value, depth + 1, pick, items))
    elif not (kind == "string" and pick is _empty_strings):
        element.text = _SCALARS.get(kind, "x")
    return element


def _empty_strings(members):
    """Every member, each string one an empty element (``<Name/>``: botocore's empty string)."""
    return members


@pytest.fixture(scope="module")
def session():
    return botocore.session.get_session()


@pytest.mark.parametrize("service", SERVICES)
def test_every_structure_parses_as_botocore_parses_it(session, service):
    if not _botocore_fast.checked():
        pytest.skip("botocore outside the checked range")
    model = session.get_service_model(service)
    shapes = structures(model)
    picks = [lambda m: m, lambda m: m[::2], lambda m: m[::-1], _empty_strings]
    cases = [(shape, _element(shape.name, shape, 0, pick)) for shape in shapes for pick in picks]
    cases += [(shape, _element(shape.name, shape, 0, picks[0], items=1)) for shape in shapes]  # lists of one
    results = []
    for installed in (False, True):
        _botocore_fast.install() if installed else _botocore_fast.uninstall()
        try:
            parser = botocore.parsers.create_parser(model.protocol)
            results.append([outcome(parser._parse_shape, shape, element) for shape, element in cases])
        finally:
            _botocore_fast.install()
    theirs, ours = results
    differ = [(shape.name, a, b) for (shape, _), a, b in zip(cases, ours, theirs, strict=True) if a != b]
    assert not differ, differ[0]
    assert len(shapes) > 10 and sum(r[0] == "ok" for r in theirs) > 0.9 * len(cases)


def test_a_parser_that_changes_a_members_xml_name_is_botocores(session):
    """A parser class of its own that names members otherwise is parsed by botocore's code."""

    class Renaming(botocore.parsers.QueryParser):
        def _member_key_name(self, shape, member_name):
            return "Renamed" if member_name == "Account" else super()._member_key_name(shape, member_name)

    shape = session.get_service_model("sts").operation_model("GetCallerIdentity").output_shape
    element = ET.fromstring("<R><Renamed>1</Renamed><Account>2</Account><Arn>a</Arn></R>")
    _botocore_fast.install()
    assert Renaming()._handle_structure(shape, element) == {"Account": "1", "Arn": "a"}


def test_a_parser_with_its_own_string_handler_is_used(session):
    """A parser class (or instance) whose strings are its own gets them through its handler."""

    class Shouting(botocore.parsers.QueryParser):
        def _handle_string(self, shape, node):
            return node.text.upper()

    shape = session.get_service_model("sts").operation_model("GetCallerIdentity").output_shape
    element = ET.fromstring("<R><Account>a1</Account><Arn>arn</Arn></R>")
    _botocore_fast.install()
    assert Shouting()._handle_structure(shape, element) == {"Account": "A1", "Arn": "ARN"}
    plain = botocore.parsers.QueryParser()
    plain._handle_string = lambda shape, node: "mine"
    assert plain._handle_structure(shape, element) == {"Account": "mine", "Arn": "mine"}


def test_an_ec2_page_parses_through_one_plan_per_shape(session, monkeypatch):
    """The point of it: a page of many instances works out each shape's members once."""
    _botocore_fast.install()
    model = session.get_service_model("ec2")
    shape = model.operation_model("DescribeInstances").output_shape
    page = ET.Element("R")
    reservations = ET.SubElement(page, "reservationSet")
    for n in range(20):
        item = ET.SubElement(ET.SubElement(ET.SubElement(reservations, "item"), "instancesSet"), "item")
        ET.SubElement(item, "instanceId").text = f"i-{n}"
        ET.SubElement(item, "launchTime").text = "2026-01-02T03:04:05.000Z"
    planned = []
    real = _xml._plan
    monkeypatch.setattr(_xml, "_plan", lambda parser, s: planned.append(s.name) or real(parser, s))
    _xml._plans.clear()
    parsed = botocore.parsers.create_parser("ec2")._parse_shape(shape, page)
    assert [i["InstanceId"] for r in parsed["Reservations"] for i in r["Instances"]] == [
        f"i-{n}" for n in range(20)
    ]
    assert sorted(planned) == sorted(set(planned)) and len(planned) == 3  # output, reservation, instance


def test_a_tagged_union_is_checked_as_botocore_checks_it():
    """A union's one member, an unknown one and two at once: the same value, or the same error."""
    shapes = botocore.model.ShapeResolver(
        {
            "U": {"type": "structure", "union": True, "members": {"A": {"shape": "S"}, "B": {"shape": "N"}}},
            "S": {"type": "string"},
            "N": {"type": "integer"},
        }
    )
    union = shapes.get_shape_by_name("U")
    elements = ["<U><A>x</A></U>", "<U><B>7</B></U>", "<U><C>x</C></U>", "<U><A>x</A><B>7</B></U>", "<U/>"]
    results = []
    for installed in (False, True):
        _botocore_fast.install() if installed else _botocore_fast.uninstall()
        try:
            parser = botocore.parsers.create_parser("rest-xml")
            results.append([outcome(parser._parse_shape, union, ET.fromstring(e)) for e in elements])
        finally:
            _botocore_fast.install()
    assert results[0] == results[1]
    assert results[1][2] == ("ok", [("SDK_UNKNOWN_MEMBER", [("name", "C")])])
