"""The plugin's pure parts: value and message encoding, argument checks, result shapes, signatures.

No nu, no sockets: these are the wire shapes of docs/nushell-protocol.md as data.
"""

import greenfetch  # noqa: F401,I001  (first: gevent patches before anything else)

import datetime as dt
import decimal
import json
import math
import sys

import pytest
from hypothesis import given, strategies as st

from greenfetch import Request, Result
from nu_plugin import _codec as codec
from nu_plugin._codec import Duration, LabeledError
from nu_plugin._commands import (
    Args,
    in_request_order,
    requests_of_value,
    result_value,
    session_defaults,
    stats_value,
    with_defaults,
)
from nu_plugin._signatures import SIGNATURES

S = {"start": 10, "end": 20}


def v(kind, val, span=S):
    return {kind: {"val": val, "span": span}}


# -- Python -> Nushell ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, expected",
    [
        (None, {"Nothing": {"span": S}}),
        (True, v("Bool", True)),
        (7, v("Int", 7)),
        (1 << 70, v("String", str(1 << 70))),
        (1.5, v("Float", 1.5)),
        (math.inf, v("String", "inf")),
        ("hi", v("String", "hi")),
        (Duration(1_500_000_000), v("Duration", 1_500_000_000)),
        (decimal.Decimal("3"), v("Int", 3)),
        (decimal.Decimal("2.5"), v("Float", 2.5)),
        (b"text", v("String", "text")),
        (b"\xff\x00", v("Binary", [255, 0])),
        (dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc), v("Date", "2024-05-06T07:08:09+00:00")),
        (dt.datetime(2024, 5, 6, 7, 8, 9), v("Date", "2024-05-06T07:08:09+00:00")),  # naive: taken as UTC
        (dt.date(2024, 5, 6), v("Date", "2024-05-06T00:00:00+00:00")),
    ],
)
def test_to_value_scalars(obj, expected):
    assert codec.to_value(obj, S) == expected


def test_to_value_containers_keep_order_and_span():
    value = codec.to_value({"b": [1, "x"], "a": {"c": None}}, S)
    assert list(value["Record"]["val"]) == ["b", "a"]
    assert value["Record"]["val"]["b"] == {"List": {"vals": [v("Int", 1), v("String", "x")], "span": S}}
    assert value["Record"]["val"]["a"]["Record"]["val"]["c"] == {"Nothing": {"span": S}}


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(1 << 63), (1 << 63) - 1)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_like)
def test_round_trip_through_the_wire(obj):
    """Python -> Nushell value -> JSON text -> Python gives back what went in."""
    wire = codec.encode_message(codec.to_value(obj, S))
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert codec.decode_value(codec.decode_message(wire)) == obj


# -- Nushell -> Python ----------------------------------------------------------------------------


def test_decode_value_variants():
    assert codec.decode_value({"Float": {"val": None, "span": S}}) != codec.decode_value(v("Float", 0.0))
    assert math.isnan(codec.decode_value({"Float": {"val": None, "span": S}}))  # nu sends inf/nan as null
    assert codec.decode_value(v("Duration", 100_000_000)) == Duration(100_000_000)
    assert codec.decode_value(v("Filesize", 1024)) == 1024
    assert codec.decode_value(v("Binary", [104, 105])) == b"hi"
    assert codec.decode_value(v("Range", "1..250")) == "1..250"
    when = codec.decode_value(v("Date", "2024-05-06T07:08:09+02:00"))
    assert when.utcoffset() == dt.timedelta(hours=2)
    closure = codec.decode_value({"Closure": {"val": {"block_id": 60, "captures": []}, "span": S}})
    assert closure.spanned() == {"item": {"block_id": 60, "captures": []}, "span": S}


@given(
    st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.sampled_from([0, 3, 6, 9]),
    st.sampled_from(["Z", "+00:00", "+02:00", "-05:30"]),
    st.integers(0, 999),
)
def test_a_nushell_date_reads_alike_on_every_python(when, digits, zone, nanos):
    """chrono's RFC 3339 as nu sends a date ("Z", 0-9 digits of a second): the same datetime on Python
    3.10 (whose ``fromisoformat`` reads neither) as ``fromisoformat`` gives from 3.11."""
    fraction = f"{when.microsecond:06d}{nanos:03d}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + zone
    offset = dt.timedelta(0) if zone == "Z" else dt.datetime.strptime(zone, "%z").utcoffset()
    micro = int(fraction[:6].ljust(6, "0")) if digits else 0
    expected = when.replace(microsecond=micro, tzinfo=dt.timezone(offset))
    got = codec.decode_value(v("Date", text))
    assert got == expected and got.utcoffset() == offset, text
    if sys.version_info >= (3, 11):  # the old way, on the Pythons that read it
        assert got == dt.datetime.fromisoformat(text) and got.utcoffset() == offset


def test_decode_error_value_raises_it():
    with pytest.raises(LabeledError) as caught:
        codec.decode_value({"Error": {"error": {"msg": "bad item", "labels": []}, "span": S}})
    assert caught.value.msg == "bad item"
    assert caught.value.to_wire() == {"msg": "bad item", "labels": []}  # passed back untouched


def test_type_name_and_span_of():
    assert codec.type_name(v("Record", {})) == "record"
    assert codec.type_name({"Nothing": {"span": S}}) == "nothing"
    assert codec.type_name(v("Range", "1..3")) == "range"
    assert codec.span_of(v("Int", 1)) == S
    assert codec.span_of({"weird": 1}, {"start": 1, "end": 2}) == {"start": 1, "end": 2}


# -- messages -------------------------------------------------------------------------------------


def test_hello_and_preamble():
    assert codec.ENCODING_PREAMBLE == b"\x04json"
    assert codec.hello() == {"Hello": {"protocol": "nu-plugin", "version": "0.115.1", "features": []}}


@pytest.mark.parametrize(
    "theirs, ok",
    [
        ("0.115.1", True),
        ("0.115.0", True),
        ("0.115.9", True),
        ("0.115.2-nightly.4", True),
        ("0.114.2", False),
        ("0.116.0", False),
        ("1.0.0", False),
    ],
)
def test_version_compatibility_is_nus_rule(theirs, ok):
    assert codec.is_compatible("0.115.1", theirs) is ok


def test_response_shapes():
    assert codec.pipeline_value(v("Int", 1)) == {"PipelineData": {"Value": [v("Int", 1), None]}}
    assert codec.list_stream_header(5, S) == {
        "PipelineData": {"ListStream": {"id": 5, "span": S, "metadata": None}}
    }
    assert codec.engine_call(2, 9, "GetCurrentDir") == {
        "EngineCall": {"context": 2, "id": 9, "call": "GetCurrentDir"}
    }
    err = codec.error_response(3, LabeledError("boom", [("here", S)], help="try x"))
    assert err == {
        "CallResponse": [
            3,
            {
                "Error": {
                    "msg": "boom",
                    "labels": [{"text": "here", "span": S}],
                    "code": "nu_plugin_greenfetch::error",
                    "url": None,
                    "help": "try x",
                    "inner": [],
                }
            },
        ]
    }


def test_messages_are_strict_json():
    with pytest.raises(ValueError):
        codec.encode_message({"Float": {"val": math.nan, "span": S}})
    assert json.loads(codec.encode_message({"String": {"val": "é ✓", "span": S}}))["String"]["val"] == "é ✓"
    with pytest.raises(codec.ProtocolError):
        codec.decode_message(b"not json\n")
    assert codec.kind_of("Goodbye") == "Goodbye"
    assert codec.kind_of({"Call": [0, "Metadata"]}) == "Call"
    with pytest.raises(codec.ProtocolError):
        codec.kind_of({"a": 1, "b": 2})


# -- arguments ------------------------------------------------------------------------------------


def _call(**named):
    head = {"start": 0, "end": 14}
    pairs = [[{"item": name, "span": {"start": 30, "end": 40}}, value] for name, value in named.items()]
    return Args.parse({"head": head, "positional": [], "named": pairs})


def test_int_flag_points_at_the_value():
    value_span = {"start": 33, "end": 35}
    args = _call(concurrency={"Int": {"val": -1, "span": value_span}})
    with pytest.raises(LabeledError) as caught:
        args.int_flag("concurrency")
    assert "--concurrency -1" in caught.value.msg and "1 or more" in caught.value.msg
    assert caught.value.labels[0][1] == value_span
    assert _call().int_flag("concurrency") is None
    assert _call(concurrency=v("Int", 3)).int_flag("concurrency") == 3


def test_duration_and_bool_flags():
    assert _call(window=v("Duration", 100_000_000)).duration_flag("window") == pytest.approx(0.1)
    with pytest.raises(LabeledError, match="more than 0sec"):
        _call(window=v("Duration", 0)).duration_flag("window")
    assert _call(window=v("Duration", 0)).duration_flag("window", allow_zero=True) == 0
    with pytest.raises(LabeledError, match="0sec or more"):
        _call(window=v("Duration", -1_000_000_000)).duration_flag("window", allow_zero=True)
    assert _call(**{"fail-fast": None}).bool_flag("fail-fast") is True  # bare switch form
    assert _call(**{"fail-fast": v("Bool", True)}).bool_flag("fail-fast") is True
    assert _call(**{"fail-fast": v("Bool", False)}).bool_flag("fail-fast") is False
    assert _call().bool_flag("fail-fast") is False


def test_requests_of_value_says_what_is_valid():
    reqs = requests_of_value({"List": {"vals": [codec.to_value({"service": "s3"}, S)], "span": S}}, S)
    assert reqs == [{"service": "s3"}]
    with pytest.raises(LabeledError) as caught:
        requests_of_value(codec.to_value({"service": "s3"}, S), {"start": 0, "end": 1})
    assert "got record" in caught.value.msg and "wrap it in a list" in caught.value.help
    assert caught.value.labels[0][1] == S  # points at the value, not the command
    with pytest.raises(LabeledError, match="got range"):
        requests_of_value(v("Range", "1..3"), S)


# -- results --------------------------------------------------------------------------------------


@given(st.permutations(list(range(12))))
def test_in_request_order_sorts_and_yields_early(order):
    results = [Result(i, {"service": "s3"}) for i in order]
    seen = []

    def source():
        for r in results:
            seen.append(r.index)
            yield r

    out = []
    for r in in_request_order(source()):
        # a result goes out as soon as every earlier index has been seen
        assert set(range(r.index + 1)) <= set(seen)
        out.append(r.index)
    assert out == list(range(12))


def test_result_value_shape():
    created = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    result = Result(
        3,
        Request("s3", "ListBuckets"),
        result={"Buckets": [{"CreationDate": created}]},
        duration_ms=1500.0,
        attempts=1,
    )
    record = result_value(result, S)["Record"]["val"]
    assert list(record)[:3] == ["index", "request", "result"]
    keys = list(record)
    assert keys[keys.index("duration_ms") + 1] == "duration"
    assert record["duration"] == v("Duration", 1_500_000_000)
    assert record["duration_ms"] == v("Float", 1500.0)
    assert record["error"] == {"Nothing": {"span": S}}
    bucket = record["result"]["Record"]["val"]["Buckets"]["List"]["vals"][0]
    assert bucket["Record"]["val"]["CreationDate"] == v("Date", "2024-01-02T03:04:05+00:00")


def test_stats_value_durations():
    rows = [
        {
            "operation": "s3:ListBuckets",
            "count": 2,
            "errors": 0,
            "throttles": 0,
            "avg_duration": 0.25,
            "p50": 0.2,
            "p90": 0.3,
            "p99": 0.3,
            "max": 0.3,
        }
    ]
    row = stats_value(rows, S)["List"]["vals"][0]["Record"]["val"]
    assert row["avg_duration"] == v("Duration", 250_000_000)
    assert row["count"] == v("Int", 2)


# -- signatures -----------------------------------------------------------------------------------

REQUIRED_SIG_FIELDS = {
    "name",
    "description",
    "extra_description",
    "search_terms",
    "required_positional",
    "optional_positional",
    "named",
    "input_output_types",
    "allow_variants_without_examples",
    "is_filter",
    "creates_scope",
    "allows_unknown_args",
    "category",
}


def test_signatures_are_complete():
    names = [entry["sig"]["name"] for entry in SIGNATURES]
    assert names == [
        "batch-requests",
        "adaptive-batch",
        "dedupe-request",
        "aws perf stats",
        "aws perf reset",
        "aws catalog",
        "aws inventory",
    ]
    for entry in SIGNATURES:
        sig = entry["sig"]
        assert REQUIRED_SIG_FIELDS <= set(sig), sig["name"]
        assert entry["examples"], sig["name"]
        assert any(flag["long"] == "help" for flag in sig["named"])
        for flag in sig["named"]:
            assert {"long", "short", "arg", "required", "desc"} <= set(flag)
        json.dumps(entry, allow_nan=False)


def test_batch_requests_flags_match_the_contract():
    sig = SIGNATURES[0]["sig"]
    flags = {flag["long"]: flag for flag in sig["named"]}
    assert flags["concurrency"]["short"] == "c" and flags["concurrency"]["arg"] == "Int"
    assert flags["fail-fast"]["arg"] == "Boolean"  # takes a value: --fail-fast true
    assert ["Any", {"Table": []}] in sig["input_output_types"]  # ranges etc. reach the plugin's own error


# -- following nu's environment --------------------------------------------------------------------


def test_session_defaults_follow_changes_only():
    started = {"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}
    assert (
        session_defaults({"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, started)
        == {}
    )
    changed = session_defaults(
        {"AWS_REGION": "eu-west-2", "AWS_PROFILE": "prod", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"},
        started,
    )
    assert changed == {"region": "eu-west-2", "profile": "prod"}
    assert session_defaults({"AWS_DEFAULT_REGION": "ap-south-1"}, {}) == {"region": "ap-south-1"}


def test_with_defaults_never_overrides_a_request():
    reqs = [{"service": "s3", "region": "us-west-1"}, {"service": "s3"}, 42]
    out = list(with_defaults(reqs, {"region": "eu-west-2"}))
    assert out == [{"service": "s3", "region": "us-west-1"}, {"region": "eu-west-2", "service": "s3"}, 42]
    assert with_defaults(reqs, {}) is reqs
