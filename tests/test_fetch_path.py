"""The inventory command's fetch path, cut (docs/performance/inventory-cost.md, the inventory command's own cost): the
same files, cache entries, records and summary as botocore's own paginator gives, a paginated call's
context as botocore's iterator makes it, a record's summary and time as before.
"""

from __future__ import annotations

import json
import time

import pytest
from _cache_rows import cache_rows
from botocore.paginate import PaginationError, Paginator
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import _caller, _paging
from greenfetch._paging import Plan
from greenfetch.inventory._fetch import _now
from greenfetch.inventory._region_status import FAILING
from greenfetch.inventory._summary import RunSummary

# paginated and not, every protocol the loopback server speaks: EC2's query XML, Lambda's REST-JSON, JSON
_TYPES = (
    "ec2.instances,ec2.vpcs,ec2.security_groups,lambda.functions,dynamodb.tables,sqs.queues,kms.keys,"
    "ssm.parameters,secretsmanager.secrets,logs.log_groups"
)


def _run(url, out, cache_dir, *, fmt="json"):
    from greenfetch import Config, Engine
    from greenfetch.inventory import run_inventory

    engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1"}, environ={}))
    records = []
    try:
        report = run_inventory(
            engine,
            accounts="111111111111,222222222222",
            role_name="InventoryReader",
            regions="us-east-1,eu-west-1",
            types=_TYPES,
            out=str(out),
            fmt=fmt,
            cache_ttl=0,
            cache_dir=str(cache_dir),
            on_record=records.append,
        )
    finally:
        engine.close()
    return report, records


def test_the_fetch_path_writes_what_botocores_paginator_gives(tmp_path, monkeypatch):
    """The run as it is, and the same run with every paginated call through botocore's own
    ``Paginator`` (``_paging`` reads no config): the same json files byte for byte, the same cache
    entries but for ``stored_at``, the same records and summary but for the wall time."""
    from greenfetch.testing import inventory_server

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    built = []
    real = _caller._paginator

    def paginator(client, method, config):
        built.append(method)
        return real(client, method, config)

    monkeypatch.setattr(_caller, "_paginator", paginator)
    with inventory_server(items=3) as server:
        fast, fast_records = _run(server.url, tmp_path / "fast", tmp_path / "cache-fast")
        assert built == []  # every answer here is one page: botocore's iterator never built
        monkeypatch.setattr(_paging, "plan", lambda config: None)
        slow, slow_records = _run(server.url, tmp_path / "slow", tmp_path / "cache-slow")
    assert len(built) >= fast.summary["records"]  # every list (and SSM's offered-regions lookups)
    files = sorted(p.name for p in (tmp_path / "fast").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "slow").iterdir()) and len(files) == 10
    for name in files:
        assert (tmp_path / "fast" / name).read_bytes() == (tmp_path / "slow" / name).read_bytes(), name
    mine, theirs = cache_rows(tmp_path / "cache-fast"), cache_rows(tmp_path / "cache-slow")
    assert sorted(mine) == sorted(theirs) and len(mine) == 40 + 8  # the pages and the offered regions
    for key, text in mine.items():
        a, b = json.loads(text), json.loads(theirs[key])
        assert a.pop("stored_at") != 0 and b.pop("stored_at") != 0
        assert a == b
    for summary in (fast.summary, slow.summary):
        summary.pop("wall_seconds")
    assert fast.summary == slow.summary
    assert fast.summary["records"] == 40 and not fast.summary["accounts_failed"]
    key = lambda r: (r["resource_type"], r["account"], r["region"])  # noqa: E731  (completion order differs)
    assert sorted(fast_records, key=key) == sorted(slow_records, key=key)


def _serve(pages):
    """A method answering ``pages`` in order inside botocore's own per-call context (as
    ``_make_api_call`` is), registering a feature of its own, and making a call inside it (as a
    credentials refresh makes AssumeRole) that registers another; the features each call saw, and
    each inner call."""
    from botocore.context import get_context, with_current_context
    from botocore.useragent import register_feature_id

    seen = []

    @with_current_context()
    def inner():
        register_feature_id("RETRY_MODE_ADAPTIVE")
        seen.append(("inner", sorted(get_context().features)))

    @with_current_context()
    def method(**kwargs):
        register_feature_id("RETRY_MODE_STANDARD")
        inner()
        ctx = get_context()
        seen.append(sorted(ctx.features) if ctx is not None else None)
        return json.loads(json.dumps(pages[min(sum(s[0] != "inner" for s in seen), len(pages)) - 1]))

    return method, seen


_CONFIG = {"input_token": "NextToken", "output_token": "NextToken", "result_key": "Items"}


@pytest.mark.skipif(not _paging._context, reason="a botocore without user-agent feature contexts")
@pytest.mark.parametrize("outer", [None, {"Z"}])
def test_a_one_page_call_sees_botocores_features_and_leaves_its_callers_context(outer):
    """The context ``_page`` makes is the call's own (botocore's copy of it at the call is itself): the
    call sees what it sees under botocore's iterator, and the caller's context after it is as before."""
    from botocore.context import ClientContext, get_context, reset_context, set_context

    token = set_context(ClientContext(features=set(outer))) if outer is not None else None
    try:
        before = get_context()
        ours, seen_ours = _serve([{"Items": [1, 2]}])
        theirs, seen_theirs = _serve([{"Items": [1, 2]}])
        got = Plan(_CONFIG).full_result(ours, {}, None, lambda: pytest.fail("one page"))
        expected = Paginator(theirs, _CONFIG, None).paginate().build_full_result()
        assert got == expected == {"Items": [1, 2]}
        assert seen_ours == seen_theirs and "C" in seen_ours[1]  # PAGINATOR's id, and the call's own
        assert len(seen_ours[0][1]) == len(seen_ours[1]) + 1  # the inner call's feature stayed in it
        assert get_context() is before
        assert (before.features if before is not None else None) == outer  # nothing leaked out
        # a second call starts from a context of its own again: nothing of the first call's in it
        Plan(_CONFIG).full_result(ours, {}, None, lambda: pytest.fail("one page"))
        assert seen_ours[2:] == seen_ours[:2]
    finally:
        if token is not None:
            reset_context(token)


@pytest.mark.parametrize(
    ("config", "pages", "max_items"),
    [
        (_CONFIG, [{"Items": [1], "NextToken": "a"}, {"Items": [2], "NextToken": "a"}], None),  # repeats
        (_CONFIG, [{"Items": [1, 2], "NextToken": "a"}, {"Items": [3]}], None),  # two pages
        (_CONFIG, [{"Items": [1, 2, 3]}], 2),  # cut by MaxItems: a resume token
        (_CONFIG, [{"Items": [1, 2]}], -1),  # a negative MaxItems: botocore's to judge
        (_CONFIG, [{"Other": 1}], -1),  # the same over no items at all
        (_CONFIG, [{"Items": "ab"}], None),  # not a list where the items belong
        (_CONFIG, [{"Items": None, "NextToken": "a"}, {"Items": [5]}], None),  # nothing, then a page
        ({**_CONFIG, "result_key": "Page.Items"}, [{"Page": {"Items": [1]}}], None),  # a nested key
        ({**_CONFIG, "non_aggregate_keys": ["Owner"]}, [{"Items": [1], "Owner": "o"}], None),
        ({**_CONFIG, "more_results": "More"}, [{"Items": [1], "NextToken": "a", "More": False}], None),
    ],
)
def test_the_one_name_path_is_botocores(config, pages, max_items):
    """Where the one-result-key path stops and botocore's iterator goes on: the same result (or the
    same error: a token that repeats), the same requests, with every page botocore's."""
    ours, seen_ours = _serve(pages)
    theirs, seen_theirs = _serve(pages)
    cut = {"MaxItems": max_items} if max_items is not None else {}

    def outcome(run):
        try:
            return run()
        except PaginationError as exc:
            return ("PaginationError", str(exc))

    expected = outcome(
        lambda: Paginator(theirs, config, None).paginate(PaginationConfig=cut).build_full_result()
    )
    got = outcome(
        lambda: Plan(config).full_result(ours, {}, max_items, lambda: Paginator(ours, config, None))
    )
    assert got == expected
    assert seen_ours == seen_theirs


def test_a_plain_result_key_is_read_and_set_as_one_name():
    """Which configs take the one-name path: one plain field, no non-aggregate keys, settable."""
    assert Plan(_CONFIG)._only == "Items"
    assert Plan({**_CONFIG, "result_key": ["Items"]})._only == "Items"
    assert Plan({**_CONFIG, "result_key": "Page.Items"})._only is None
    assert Plan({**_CONFIG, "result_key": ["A", "B"]})._only is None
    assert Plan({**_CONFIG, "non_aggregate_keys": ["Owner"]})._only is None
    assert Plan({**_CONFIG, "result_key": '"It ems"'})._only is None  # quoted: its name is not its text
    assert Plan({**_CONFIG, "result_key": "Items[]"})._only is None


# -- the records' summary and time ---------------------------------------------------------------------


def _summary_as_before(records):
    """``RunSummary.add``'s counts as they were computed before (a record at a time, no memo)."""
    out = RunSummary()
    for rec, calls, cached, fetched_at in records:
        rtype, status = rec["resource_type"], rec["status"]
        out.records += 1
        out.calls += calls
        out.cached += cached
        if cached and fetched_at is not None:
            out.cached_since(fetched_at)
        out.items[rtype] = out.items.get(rtype, 0) + len(rec["items"])
        out.errors.setdefault(rtype, 0)
        counts = out.statuses.setdefault(rtype.partition(".")[0], {})
        counts[status] = counts.get(status, 0) + 1
        where = (rec["account"], rec["region"])
        if status in FAILING:
            out.errors[rtype] += 1
            out.regions_failed.add(where)
            out.throttled += status == "throttled"
        elif status == "ok":
            out.regions_ok.add(where)
    return out


_statuses = st.sampled_from(["ok", "denied", "expired", "throttled", "error", "not_offered", "unavailable"])
_added = st.tuples(
    st.fixed_dictionaries(
        {
            "resource_type": st.sampled_from(["ec2.instances", "ec2.vpcs", "kms.keys", "s3.buckets", "x"]),
            "account": st.sampled_from(["111111111111", "222222222222"]),
            "region": st.sampled_from(["us-east-1", "eu-west-1", "global", "*"]),
            "items": st.lists(st.integers(), max_size=3),
            "status": _statuses,
            "error": st.none(),
        }
    ),
    st.integers(0, 3),
    st.booleans(),
    st.none() | st.floats(0, 2e9),
)


@settings(deadline=None, max_examples=60)
@given(st.lists(_added, max_size=30))
def test_the_summary_counts_as_before(records):
    """Every count, in the same order (the summary's JSON keeps insertion order where it is not sorted)."""
    summary = RunSummary()
    for rec, calls, cached, fetched_at in records:
        summary.add(rec, calls=calls, cached=cached, fetched_at=fetched_at)
    expected = _summary_as_before(records)
    for name in ("items", "errors", "statuses", "regions_ok", "regions_failed"):
        assert list(getattr(summary, name)) == list(getattr(expected, name)), name
    summary.wall_seconds = expected.wall_seconds = 0.0
    summary.started = expected.started
    assert summary.to_dict() == expected.to_dict()
    assert summary == expected  # the memo is no part of a summary's value


def test_a_record_time_is_now_to_the_millisecond():
    before = time.time()
    now = _now()
    after = time.time()
    assert now == round(now, 3)  # the double nearest a whole millisecond, as round(time.time(), 3) gives
    assert round(before, 3) - 0.001 <= now <= round(after, 3) + 0.001
    times = [_now() for _ in range(200)]
    assert all(t == round(t, 3) for t in times)
