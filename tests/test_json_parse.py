"""A JSON answer's structures (``_botocore_fast._json``) against botocore's own parse: every structure
shape of several JSON and REST-JSON services, as a value holding every member (and one holding every
other member, one with its keys in reverse order, one whose lists hold one item, one whose lists hold
a null item or a null map value, one whose numbers and booleans are text), parsed both ways into the same dict, keys in the
same order, or into the same error."""

from __future__ import annotations

import base64

import botocore.model
import botocore.parsers
import botocore.session
import pytest
from _shapes import outcome, structures

from greenfetch import _botocore_fast
from greenfetch._botocore_fast import _json

SERVICES = ["dynamodb", "kms", "ssm", "secretsmanager", "logs", "ecs", "glue", "cloudtrail", "sqs"]
REST_SERVICES = ["lambda", "apigateway", "eks", "kafka", "mq", "batch", "efs"]  # kafka, mq: JSON names
_SCALARS = {
    "string": "välue ✓ \U0001f600",
    "integer": 7,
    "long": 2**40,
    "float": 1.5,
    "double": 2.25,
    "boolean": False,
    "timestamp": 1767322245.5,
    "blob": base64.b64encode(b"\x00\xffbin").decode(),
}


def _value(shape, depth, variant):
    kind = shape.type_name
    if depth > 6:
        return None
    if kind == "structure":
        if shape.is_document_type:
            return {"doc": [1, "x", None]}
        members = list(shape.members.items())
        if shape.is_tagged_union:
            members = members[:1]
        elif variant == "every other":
            members = members[::2]
        elif variant == "reversed":
            members = members[::-1]
        out = {}
        for name, member in members:
            value = _value(member, depth + 1, variant)
            if value is not None:
                out[member.serialization.get("name", name)] = value
        return out
    if kind == "list":
        item = _value(shape.member, depth + 1, variant)
        if item is None:
            return []
        return {"one item": [item], "a null item": [item, None, item]}.get(variant, [item, item])
    if kind == "map":
        value = _value(shape.value, depth + 1, variant)
        if value is None:
            return {}
        return {"kéy": value, "null": None} if variant == "a null item" else {"kéy": value, "k2": value}
    if variant == "as text" and kind in ("integer", "long", "float", "double", "boolean"):
        return {"boolean": "TRUE", "float": "1.5", "double": "-0.0"}.get(kind, "12")  # REST-JSON converts
    return _SCALARS.get(kind)


def _both_ways(protocol, cases):
    """Each (shape, value) parsed by a fresh parser with botocore's own code, then with greenfetch's."""
    results = []
    for installed in (False, True):
        _botocore_fast.install() if installed else _botocore_fast.uninstall()
        try:
            results.append(
                [
                    outcome(botocore.parsers.create_parser(protocol)._parse_shape, shape, value)
                    for shape, value in cases
                ]
            )
        finally:
            _botocore_fast.install()
    return results


@pytest.fixture(scope="module")
def session():
    return botocore.session.get_session()


@pytest.mark.parametrize("service", SERVICES + REST_SERVICES)
def test_every_structure_parses_as_botocore_parses_it(session, service):
    if not _botocore_fast.checked():
        pytest.skip("botocore outside the checked range")
    model = session.get_service_model(service)
    assert model.protocol == ("json" if service in SERVICES else "rest-json")
    shapes = structures(model, errors=False)
    variants = ["every member", "every other", "reversed", "one item", "a null item", "as text"]
    cases = [(shape, _value(shape, 0, variant)) for shape in shapes for variant in variants]
    theirs, ours = _both_ways(model.protocol, cases)
    differ = [(shape.name, a, b) for (shape, _), a, b in zip(cases, ours, theirs, strict=True) if a != b]
    assert not differ, differ[0]
    assert len(shapes) > 10 and sum(r[0] == "ok" for r in theirs) > 0.9 * len(cases)


def test_json_names_nulls_unions_and_wrong_types_parse_as_botocore_parses_them():
    """What no JSON-protocol model has today but the code must follow: a member with a JSON name of
    its own; a null where a structure goes, in a map and at the top; a tagged union's one member, an
    unknown one and two at once; a string where a structure or a list goes."""
    shapes = botocore.model.ShapeResolver(
        {
            "Out": {
                "type": "structure",
                "members": {
                    "Named": {"shape": "S", "locationName": "named_in_json"},
                    "Inner": {"shape": "In"},
                    "Inners": {"shape": "InList"},
                    "ByKey": {"shape": "InMap"},
                    "Labels": {"shape": "SMap"},
                    "When": {"shape": "T"},
                    "Whens": {"shape": "TList"},
                    "Either": {"shape": "U"},
                },
            },
            "In": {"type": "structure", "members": {"A": {"shape": "S"}, "N": {"shape": "I"}}},
            "InList": {"type": "list", "member": {"shape": "In"}},
            "InMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "In"}},
            "TList": {"type": "list", "member": {"shape": "T"}},
            "SMap": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
            "U": {"type": "structure", "union": True, "members": {"A": {"shape": "S"}, "N": {"shape": "I"}}},
            "S": {"type": "string"},
            "I": {"type": "integer"},
            "T": {"type": "timestamp"},
        }
    )
    out = shapes.get_shape_by_name("Out")
    values = [
        {"named_in_json": "j", "Named": "member name", "Inner": {"A": "a", "N": 1}},
        {"Inners": [{"A": "a"}, None, {"N": 2}], "ByKey": {"k": None, "l": {"A": "x"}}},
        {"When": 1767322245, "Whens": [1767322245.5, "2026-01-02T03:04:05Z"]},
        {"Either": {"A": "a"}},
        {"Either": {"Other": "x"}},
        {"Either": {"A": "a", "N": 1}},
        {"Inner": "not a structure"},
        {"Inners": "ab"},
        {"ByKey": [["k", {"A": "x"}]]},
        {"ByKey": "not a map"},
        {"Labels": {"a": "b", "c": None}},
        {"Labels": [["a", "b"]]},
        {"Whens": [None]},
        None,
    ]
    theirs, ours = _both_ways("json", [(out, value) for value in values])
    assert ours == theirs
    assert ours[0] == ("ok", [("Named", "j"), ("Inner", [("A", "a"), ("N", 1)])])
    assert ours[4] == ("ok", [("Either", [("SDK_UNKNOWN_MEMBER", [("name", "Other")])])])


def test_only_a_parser_with_botocores_json_handlers_takes_the_plan(session):
    """The JSON and REST-JSON parsers take plans of their own families (REST-JSON's integers, floats
    and booleans have handlers); a JSON parser class with a handler of its own and an instance with
    one set on it are parsed by their own handlers."""
    _botocore_fast.install()
    json_family = _json._family(botocore.parsers.create_parser("json"))
    rest_family = _json._family(botocore.parsers.create_parser("rest-json"))
    assert None not in (json_family, rest_family) and json_family != rest_family

    class Shouting(botocore.parsers.JSONParser):
        def _handle_string(self, shape, value):
            return value.upper()

    shape = session.get_service_model("kms").operation_model("ListKeys").output_shape
    answer = {"Keys": [{"KeyId": "k1", "KeyArn": "arn"}], "Truncated": False}
    assert _json._family(Shouting()) is None
    assert Shouting()._parse_shape(shape, answer)["Keys"] == [{"KeyId": "K1", "KeyArn": "ARN"}]
    plain = botocore.parsers.JSONParser()
    plain._handle_string = lambda shape, value: "mine"
    assert plain._parse_shape(shape, answer)["Keys"] == [{"KeyId": "mine", "KeyArn": "mine"}]
    assert botocore.parsers.JSONParser()._parse_shape(shape, answer) == answer


def test_rest_json_members_bound_to_headers_found_in_the_body_parse_as_botocore_parses_them():
    """A REST-JSON output member that belongs in a header (a JSON value, a list) but whose name the
    body holds: botocore's handlers decode the one and split the other; so does the plan's path."""
    shapes = botocore.model.ShapeResolver(
        {
            "Out": {
                "type": "structure",
                "members": {
                    "Doc": {"shape": "JsonHeader", "location": "header", "locationName": "x-doc"},
                    "Tags": {"shape": "SList", "location": "header", "locationName": "x-tags"},
                    "Count": {"shape": "I"},
                },
            },
            "JsonHeader": {"type": "string", "jsonvalue": True},
            "SList": {"type": "list", "member": {"shape": "S"}},
            "S": {"type": "string"},
            "I": {"type": "integer"},
        }
    )
    out = shapes.get_shape_by_name("Out")
    values = [
        {"x-doc": base64.b64encode(b'{"a": [1]}').decode(), "x-tags": "a, b,c", "Count": "3"},
        {"x-tags": ["a", "b"], "Count": 4},
        {"x-doc": "not base64 json"},
    ]
    theirs, ours = _both_ways("rest-json", [(out, value) for value in values])
    assert ours == theirs
    assert ours[0] == ("ok", [("Doc", [("a", [1])]), ("Tags", ["a", "b", "c"]), ("Count", 3)])
