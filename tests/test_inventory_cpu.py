"""The inventory's per-page work made cheaper must give the same values and the same files.

``jsonable`` has a fast path for the exact types botocore's parsers build (str, dict, list, int, bool,
None); it must return what the general path returns for every value, subclasses and odd keys included.
The cache writes each page with a few system calls instead of ``atomic_open``'s text file: the same
file, mode and content, no temporary file left, a missing directory made again.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import decimal
import enum
import json
import math
import os
import re

import pytest
from _by_python import qualnames
from _inventory_runs import small_run
from _zones import in_zone
from hypothesis import given
from hypothesis import strategies as st

from greenfetch._jsonable import jsonable


def _reference(value, body_limit=1 << 20):
    """jsonable as it was before the fast path (the oracle)."""
    from greenfetch._jsonable import _key, _text_or_base64, _valid_text

    def key(k):
        return _key(k)

    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if value.isascii() else _valid_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {key(k): _reference(v, body_limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_reference(v, body_limit) for v in value]
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _text_or_base64(bytes(value))
    return str(value)


class _Color(enum.IntEnum):
    RED = 1


class _Text(str):
    pass


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.text().map(_Text)
    | st.sampled_from(["\ud800", "caf\u00e9", "a\udfffb", _Color.RED])
    | st.binary(max_size=8)
    | st.datetimes()
    | st.decimals()
)
_keys = (
    st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.sampled_from(["\udc80", "\u00e9"])
)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(_keys, inner, max_size=4)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3).map(collections.OrderedDict)
    ),
    max_leaves=25,
)


def _same(a, b):
    """Equal, with the same types all the way down (1 == 1.0 == True would hide a change)."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


@given(_values)
def test_jsonable_fast_path_is_the_general_path(value):
    _same(jsonable(value), _reference(value))


def test_jsonable_fast_path_on_a_botocore_page():
    page = {
        "Parameters": [
            {"Name": "/p", "LastModifiedDate": dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc), "Version": 1},
            {"Name": "caf\u00e9", "Blob": b"\xff\x00", "Size": decimal.Decimal("1.5"), "Ok": True, "X": None},
        ],
        1: "int key",
        "nan": float("nan"),
    }
    _same(jsonable(page), _reference(page))
    assert jsonable(page)["Parameters"][1]["Blob"] == "base64:" + base64.b64encode(b"\xff\x00").decode()


def _limit_lines(registry):
    from prometheus_client import generate_latest

    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "greenfetch_concurrency_limit" in line]


def test_the_limit_a_scrape_shows_is_the_limiters_now():
    """Nothing is exported per scope or per answer: a scrape reads each limiter's limit as it is then
    (a limit set by any path, here a reconfigure that clamps it, shows without an export call)."""
    from greenfetch._adaptive import Limits, Settings
    from greenfetch._metrics import Metrics

    metrics = Metrics()
    limits = Limits(metrics)
    a, b = limits.limiter("dynamodb/eu-west-1/111111111111"), limits.limiter("sqs/us-east-1/222222222222")
    assert not metrics.limit_collector.values  # nothing kept per scope in the metrics
    a.controller.limit = 17.0
    value = metrics.registry.get_sample_value
    assert value("greenfetch_concurrency_limit", {"scope": a.scope}) == 17.0
    assert value("greenfetch_concurrency_limit", {"scope": b.scope}) == 5.0
    limits.configure(Settings(initial=2, max=9))  # clamps every learned limit
    assert value("greenfetch_concurrency_limit", {"scope": a.scope}) == 9.0
    limits.reset(a.scope)
    assert value("greenfetch_concurrency_limit", {"scope": a.scope}) == 2.0


def test_the_limit_series_is_what_a_labelled_gauge_gave():
    """The same exposition as the labelled ``Gauge`` it replaced: name, help, type, one sample per
    scope label in the order the scopes were made, a label past 128 characters or outside the
    plain-name pattern as ``other`` (once, the last such scope's limit), a limit set directly too."""
    from prometheus_client import CollectorRegistry, Gauge

    from greenfetch._adaptive import Limits
    from greenfetch._metrics import Metrics

    metrics = Metrics()
    limits = Limits(metrics)
    scopes = ["s3/us-east-1/default", "ec2/eu-west-1/" + "1" * 130, "kms/eu-west-1/my profile", "sqs/x/3"]
    for n, scope in enumerate(scopes):
        limits.limiter(scope).controller.limit = 3.0 + n
    metrics.set_limit("lambda/us-west-2/4", 12)
    reference = CollectorRegistry()
    gauge = Gauge(
        "greenfetch_concurrency_limit", "Adaptive concurrency limit per scope.", ["scope"], registry=reference
    )
    gauge.labels("s3/us-east-1/default").set(3.0)
    gauge.labels("other").set(4.0)
    gauge.labels("other").set(5.0)
    gauge.labels("sqs/x/3").set(6.0)
    gauge.labels("lambda/us-west-2/4").set(12)
    assert _limit_lines(metrics.registry) == _limit_lines(reference)
    assert len(_limit_lines(metrics.registry)) == 2 + 4  # HELP, TYPE, then one sample per label


def test_worker_limits_cross_the_delta_and_a_gone_limits_is_forgotten():
    """``processes=N``: a worker's limits reach the parent's scrape through ``take_delta`` (the owner's
    value wins over a limiter the parent made only to hold that scope's trace); the metrics hold their
    ``Limits`` weakly, so making engines' limits over and over keeps nothing."""
    import gc

    from greenfetch._adaptive import Limits
    from greenfetch._metrics import Metrics

    child, parent = Metrics(), Metrics()
    Limits(child).limiter("dynamodb/eu-west-1/1").controller.limit = 21.0
    held = Limits(child)
    held.limiter("sqs/eu-west-1/1").controller.limit = 8.0
    gc.collect()  # the first Limits is gone: its scope with it
    delta = child.take_delta()
    assert delta["limits"] == {("sqs/eu-west-1/1",): 8.0}
    mine = Limits(parent)
    mine.limiter("sqs/eu-west-1/1")  # made here for the trace only: limit 5
    parent.merge_delta(delta, source=1)
    assert (
        parent.registry.get_sample_value("greenfetch_concurrency_limit", {"scope": "sqs/eu-west-1/1"}) == 8.0
    )
    for _ in range(50):
        Limits(parent)
    gc.collect()
    assert len(parent.limit_collector.sources) == 1


def test_a_workers_forgotten_scope_leaves_the_parents_scrape():
    """A worker's engine forgets idle scopes (``Limits``' bound): the parent shows each worker's limits
    as its last delta reported them, not every scope a worker ever reported (a long-lived parent would
    grow without bound), and one worker's delta leaves another's scopes alone."""
    from greenfetch._adaptive import Limits
    from greenfetch._metrics import Metrics

    one, two, parent = Metrics(), Metrics(), Metrics()
    limits = Limits(one, scopes_kept=2, learned_kept=2)
    for scope in ("sqs/a/1", "sqs/b/1"):
        limits.limiter(scope)
    other = Limits(two)  # (held: the metrics hold their Limits weakly)
    other.limiter("kms/a/2").controller.limit = 9.0
    parent.merge_delta(one.take_delta(), source=1)
    parent.merge_delta(two.take_delta(), source=2)

    def scraped():
        return {
            s.labels["scope"]: s.value
            for m in parent.registry.collect()
            if m.name == "greenfetch_concurrency_limit"
            for s in m.samples
        }

    assert set(scraped()) == {"sqs/a/1", "sqs/b/1", "kms/a/2"}
    limits.limiter("sqs/c/1")  # past the bound: the idle ones that learned nothing are forgotten
    assert "sqs/a/1" not in dict(limits.limit_values())
    parent.merge_delta(one.take_delta(), source=1)
    assert "sqs/a/1" not in scraped() and scraped()["kms/a/2"] == 9.0 and other.scopes() == ["kms/a/2"]


def _python_calls(run):
    """Python-level function calls ``run()`` makes, outside the controller (``_controller``'s law and
    ``ClientLoad``'s sampling are counted where they live, not here)."""
    import sys

    codes = []

    def profile(frame, event, arg):
        if event == "call" and not frame.f_code.co_filename.endswith("_controller.py"):
            codes.append(frame.f_code)

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    names = qualnames(codes)
    return [
        f"{os.path.basename(code.co_filename)}:{names[code]}"
        for code in codes
        if "ClientLoad" not in names[code]
    ]


def test_a_one_call_scope_costs_few_python_calls():
    """An inventory's scope usually sees one call: its limiter made, fed once, a slot, one sample. The
    Python calls that takes (outside the controller) are few and stay few: a lock that is Python code
    (``threading.RLock`` once gevent patches it), a gauge child per scope, a slot object per request
    or a scan of every scope would each show here."""
    from greenfetch._adaptive import Limits, open_gate
    from greenfetch._attempts import Attempt
    from greenfetch._metrics import Metrics
    from greenfetch._models import Request
    from greenfetch.inventory._pacing import FairFeed

    limits = Limits(Metrics(), gevent=True)
    requests = [Request("dynamodb", "ListTables", region=f"r{n}", account="111111111111") for n in range(40)]
    gate = open_gate(limits, 5, 5.0, 1, 64)
    answer = Attempt(0.05, 200, None)

    def run():
        feed = FairFeed(requests, Limits.scope_of, lambda scope: limits.limiter(scope).limit)
        for request in feed:
            with gate(request):
                pass
            gate.attempt(request, answer)
            limits.busy()
            feed.done(request)

    calls = _python_calls(run)
    assert len(calls) / len(requests) <= 42, sorted(set(calls))  # 106 before: see docs/performance.md


# -- a page made JSON-ready once, for the cache and the file sink -----------------------------------


_records = st.fixed_dictionaries(
    {
        "resource_type": st.sampled_from(["ssm.parameters", "caf\u00e9.x"]),
        "account": st.text(max_size=4),
        "region": st.sampled_from(["eu-west-1", "global", "*"]),
        "items": st.lists(_values, max_size=4),
        "status": st.sampled_from(["ok", "denied"]),
        "error": st.none() | st.text(max_size=6) | st.just("a\ud800b") | st.integers() | st.floats(),
    }
)


@given(_records)
def test_a_record_with_its_items_made_plain_is_the_same_text(rec):
    """The file sink writes a record whose items the cache already made JSON-ready (``plain_items``)
    as exactly the text ``to_json`` gives for the record itself (its head, ASCII text or None, copied
    as it is; anything else through ``jsonable``)."""
    from greenfetch._jsonable import to_json
    from greenfetch.inventory._sinks import _dumps

    assert _dumps(rec, jsonable(rec["items"])) == _dumps(rec) == to_json(rec)


def test_the_json_sink_writes_a_record_as_it_was_added(tmp_path):
    """``json`` files are written at the end, from each record's text made when it was added: a record
    changed afterwards (by a caller's ``on_record``) is written as it was fetched, as ``jsonl`` does."""
    from greenfetch.inventory._sinks import FileSink

    sink = FileSink(tmp_path, "json")
    rec = {
        "resource_type": "sqs.queues",
        "account": "1",
        "region": "r",
        "items": ["q"],
        "status": "ok",
        "error": None,
    }
    sink.add(rec)
    rec["items"].append("later")
    sink.close()
    assert json.loads((tmp_path / "sqs.queues.json").read_text())[0]["items"] == ["q"]


def test_a_fresh_page_is_made_json_ready_once(tmp_path, monkeypatch):
    """``greenfetch inventory --out DIR``: each fresh page's items are made JSON-ready once, by the cache
    write, and the json file gets that (not a second ``jsonable`` of the page); the files are the same."""
    from greenfetch.inventory import _sinks
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    walked = []
    to_json = _sinks.to_json
    monkeypatch.setattr(_sinks, "to_json", lambda rec: walked.append(rec) or to_json(rec))
    with inventory_server(items=3) as server:
        report = small_run(server.url, tmp_path / "shared", tmp_path / "cache")
        assert report.summary["records"] == 8 and walked == []  # every record written from the cache's
        for name in ("plain_items", "items_json"):  # the sink takes the cache's text with or without plain
            monkeypatch.setattr(f"greenfetch.inventory._fetch.Inventory.{name}", lambda self, rec: None)
        small_run(server.url, tmp_path / "walked", tmp_path / "cache")
    assert len(walked) == 8
    for name in ("ssm.parameters.json", "kms.keys.json"):
        assert (tmp_path / "shared" / name).read_bytes() == (tmp_path / "walked" / name).read_bytes()


def test_the_command_fetches_with_fewer_full_collections_and_puts_them_back(tmp_path, monkeypatch):
    """``greenfetch inventory`` raises the collector's third threshold while it fetches (Python's 10 ->
    100: the first full collection after start-up walks every botocore model for nothing) and puts
    Python's back after; a program that set its own third threshold keeps it throughout."""
    import gc

    from click.testing import CliRunner

    from greenfetch.cli import _inventory as face
    from greenfetch.cli import load_commands
    from greenfetch.testing import inventory_server

    seen = []
    real = face.run_inventory

    def spy(*args, **kwargs):  # the real run, its collector thresholds noted while it fetches
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(face, "run_inventory", spy)
    before = gc.get_threshold()
    try:
        with inventory_server(items=2) as server:
            for third in (10, 7):
                gc.set_threshold(before[0], before[1], third)
                cmd = ["--endpoint-url", server.url, "--region", "us-east-1", "inventory", "--accounts"]
                cmd += ["111111111111", "--role-name", "R", "--regions", "us-east-1", "--types", "sqs.queues"]
                cmd += ["--no-progress", "--out", str(tmp_path / f"out{third}")]
                result = CliRunner().invoke(load_commands(), cmd, env={"GREENFETCH_CACHE_DIR": str(tmp_path)})
                assert result.exit_code == 0, result.output
                assert gc.get_threshold() == (before[0], before[1], third)  # put back / never changed
                assert json.loads((tmp_path / f"out{third}" / "sqs.queues.json").read_text())
    finally:
        gc.set_threshold(*before)
    assert [t[2] for t in seen] == [100, 7]


def test_fewer_full_collections_keeps_a_threshold_set_meanwhile():
    import gc

    from greenfetch.cli._inventory import _fewer_full_collections

    before = gc.get_threshold()
    try:
        gc.set_threshold(before[0], before[1], 10)
        with _fewer_full_collections():
            assert gc.get_threshold()[2] == 100
            gc.set_threshold(before[0], before[1], 42)  # the program's own, set during the run
        assert gc.get_threshold()[2] == 42
    finally:
        gc.set_threshold(*before)


_TREES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(_TREES)
def test_an_encoder_made_once_writes_what_json_encoder_writes(value):
    """``encode_once``: the C encoder built once gives ``JSONEncoder.encode``'s text (or its error) for
    the cache's compact form, the files' form, sorted keys and PostgreSQL's strict form."""
    from greenfetch._jsonable import encode_once

    for options in (
        {"separators": (",", ":"), "allow_nan": True},
        {},
        {"sort_keys": True},
        {"separators": (",", ":"), "allow_nan": False},
    ):
        encoder = json.JSONEncoder(ensure_ascii=False, check_circular=False, **options)
        fast = encode_once(encoder)
        assert getattr(fast, "__self__", None) is not encoder  # the made-once path, not encode itself
        try:
            expected = encoder.encode(value)
        except ValueError as exc:  # NaN where it is not allowed
            with pytest.raises(ValueError, match="Out of range float"):
                fast(value)
            assert "Out of range float" in str(exc)
            continue
        assert fast(value) == expected


# -- tzlocal datetimes: botocore's parsed timestamps ----------------------------------------------

_ZONES = ["UTC", "Asia/Kolkata", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Etc/GMT+5"]


def _made_under(name):
    from dateutil.tz import tzlocal

    with in_zone(name):
        return tzlocal()


# the hours around DST transitions (the US's, Europe's, Lord Howe's half-hour one) and any other time
_near_transitions = st.sampled_from(
    [
        dt.datetime(2024, 3, 10, 1, 30),
        dt.datetime(2024, 11, 3, 1, 30),
        dt.datetime(2024, 3, 31, 0, 30),
        dt.datetime(2024, 10, 27, 1, 30),
        dt.datetime(2024, 4, 7, 1, 45),
        dt.datetime(2024, 10, 6, 2, 15),
    ]
).flatmap(
    lambda d: st.integers(-3 * 3600 * 10**6, 3 * 3600 * 10**6).map(
        lambda us: d + dt.timedelta(microseconds=us)
    )
)
_naive = st.one_of(
    _near_transitions, st.datetimes(min_value=dt.datetime(1971, 1, 2), max_value=dt.datetime(2100, 1, 1))
)


@given(naive=_naive, made=st.sampled_from(_ZONES), now=st.sampled_from(_ZONES), fold=st.sampled_from([0, 1]))
def test_jsonable_tzlocal_datetime_is_its_isoformat(naive, made, now, fold):
    """Byte-identical to ``isoformat`` for a ``tzlocal`` made under each TZ and used under each, either
    fold, alone or inside a page (a datetime has its own branch in ``jsonable``'s fast path)."""
    zone = _made_under(made)
    with in_zone(now):
        value = naive.replace(tzinfo=zone, fold=fold)
        assert jsonable(value) == value.isoformat()
        assert jsonable({"T": value, "L": [value]}) == {"T": value.isoformat(), "L": [value.isoformat()]}


def test_jsonable_tzlocal_from_epoch_as_botocore_parses():
    """botocore's JSON parsers turn an epoch number into ``datetime.fromtimestamp(n, tzlocal())``; in
    New York's summer its text says -04:00 (a path that took the standard offset would not)."""
    for name in _ZONES:
        with in_zone(name):
            zone = _made_under(name)
            for epoch in (0.5, 1_700_000_000.123, 1_710_052_200, 1_730_611_800, 4_102_444_800):
                value = dt.datetime.fromtimestamp(epoch, zone)
                assert jsonable(value) == value.isoformat()
    with in_zone("America/New_York"):
        summer = dt.datetime.fromtimestamp(1_720_000_000, _made_under("America/New_York"))
        assert jsonable(summer) == "2024-07-03T05:46:40-04:00"


# -- a record's items: each type's JMESPath made once -----------------------------------------------


def _shipped_expressions():
    from greenfetch.inventory._catalog import catalog

    return sorted({t.items for t in catalog(None).values()})


_EXPRESSIONS = _shipped_expressions()
_NAMES = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _responses(expression):
    """Values built from the expression's own names (so its fields are often there, nested as it
    reads them), other values in between."""
    names = st.sampled_from(sorted(set(_NAMES.findall(expression))))
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.sampled_from(["default.x", "p"]),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
        max_leaves=16,
    )


_SHAPES = [  # a plain field, a chain of them, a flattening, a filter, a projection: each shipped
    "Keys",
    "VpcOriginList.Items",
    "Reservations[].Instances[]",
    "ParameterGroups[?!starts_with(ParameterGroupName, 'default.')]",
    "taskArns[].{taskArn: @}",
]


@given(data=st.data(), expression=st.sampled_from(_SHAPES) | st.sampled_from(_EXPRESSIONS))
def test_extract_is_what_jmespath_search_finds(data, expression):
    """``extract`` with each shipped type's expression, made once, finds what ``jmespath.search``
    finds (or fails as it fails), on responses with and without the expression's fields."""
    import jmespath

    response = data.draw(_responses(expression))

    from greenfetch.inventory._resource_type import ResourceType

    rtype = ResourceType("x.y", "x", "ListY", expression, None)
    try:
        want: object = list(jmespath.search(expression, response) or [])
    except Exception as exc:  # noqa: BLE001 - a type error in a filter: the same one either way
        want = type(exc)
    try:
        got: object = rtype.extract(response)
    except Exception as exc:  # noqa: BLE001
        got = type(exc)
    assert got == want


def test_extract_reads_nested_fields_as_jmespath_does():
    from greenfetch.inventory._resource_type import ResourceType

    def extract(expression, response):
        return ResourceType("x.y", "x", "ListY", expression, None).extract(response)

    assert extract("VpcOriginList.Items", {"VpcOriginList": {"Items": [{"Arn": "a"}]}}) == [{"Arn": "a"}]
    assert extract("VpcOriginList.Items", {"VpcOriginList": ["Items"]}) == []
    assert extract("Keys", ["Keys"]) == [] and extract("Keys", {"Keys": None}) == []
    assert extract(
        "Reservations[].Instances[]", {"Reservations": [{"Instances": [1, 2]}, {"Instances": [3]}]}
    ) == [1, 2, 3]
