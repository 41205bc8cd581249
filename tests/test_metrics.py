"""Metrics and perf_stats: the series of docs/contract.md, section 6, bounded labels, the quantile sketch.

Budget: < 3 s (one small batch against the shared moto server).
"""

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch  # noqa: F401  (conftest.py has already patched gevent first)
from greenfetch import Config, Engine, Request, Result
from greenfetch._attempts import Attempt
from greenfetch._exposition import render
from greenfetch._metrics import MAX_OPERATIONS, Metrics
from greenfetch._sketch import QuantileSketch

ROW_KEYS = ["operation", "count", "errors", "throttles", "avg_duration", "p50", "p90", "p99", "max"]


def _result(service="s3", operation="ListBuckets", ms=10.0, error=None, attempts=1, params=None):
    request = Request(service, operation, params=params or {})
    return Result(
        0, request, error=error, error_code=error and error.split(":")[0], duration_ms=ms, attempts=attempts
    )


def value(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0.0


# -- the sketch -------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(1e-4, 100.0), min_size=1, max_size=400), st.sampled_from([0.5, 0.9, 0.99]))
def test_sketch_quantiles_within_relative_accuracy(values, q):
    sketch = QuantileSketch(0.01)
    for v in values:
        sketch.add(v)
    ordered = sorted(values)
    true = ordered[max(1, math.ceil(q * len(ordered))) - 1]  # nearest rank
    assert math.isclose(sketch.quantile(q), true, rel_tol=0.0101)
    assert sketch.max == max(values) and sketch.count == len(values)
    assert math.isclose(sketch.mean, sum(values) / len(values), rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(st.floats(0.0, 1e4), st.just(math.nan), st.floats(0.0, 1e-5)), max_size=300),
    st.integers(2, 40),
)
def test_sketch_add_many_is_add_each_in_order(values, max_buckets):
    """What the metrics' batches use: the same buckets (folds included), count, sum, min and max."""
    one, many = QuantileSketch(max_buckets=max_buckets), QuantileSketch(max_buckets=max_buckets)
    for value in values:
        one.add(value)
    many.add_many(values)
    assert many._buckets == one._buckets
    assert (many.count, many.total, many.min, many.max) == (one.count, one.total, one.min, one.max)


def test_sketch_memory_is_bounded_however_many_values():
    sketch = QuantileSketch(0.01, max_buckets=64)
    for i in range(100_000):
        sketch.add(1e-6 * 1.0001**i)  # spans 1 us .. 22 ms: hundreds of buckets
    assert len(sketch) <= 64
    assert math.isclose(sketch.quantile(0.99), 1e-6 * 1.0001**99_000, rel_tol=0.02)


def test_sketch_merge_and_empty():
    a, b = QuantileSketch(), QuantileSketch()
    assert a.quantile(0.5) == 0.0
    for v in (1.0, 2.0):
        a.add(v)
    b.add(3.0)
    a.merge(b)
    assert a.count == 3 and a.max == 3.0
    with pytest.raises(ValueError, match="relative_accuracy"):
        QuantileSketch(1.5)


# -- Metrics ------------------------------------------------------------------------------------


def test_perf_stats_rows_have_the_contract_shape():
    metrics = Metrics()
    for ms in (10, 20, 30, 40, 1000):
        metrics.result(_result(ms=ms))
    metrics.result(_result(ms=5, error="AccessDenied: no"))
    metrics.attempt(Request("s3", "ListBuckets"), Attempt(0.01, 400, "SlowDown"))
    metrics.attempt(Request("s3", "ListBuckets"), Attempt(0.01, 200, None))
    (row,) = metrics.perf_stats()
    assert list(row) == ROW_KEYS
    assert row["operation"] == "s3:ListBuckets"
    assert (row["count"], row["errors"], row["throttles"]) == (6, 1, 1)
    assert row["max"] == 1.0 and math.isclose(row["avg_duration"], 1.105 / 6)
    assert math.isclose(row["p50"], 0.02, rel_tol=0.011) and math.isclose(row["p99"], 1.0, rel_tol=0.011)
    metrics.reset()
    assert metrics.perf_stats() == []
    assert (
        value(
            metrics,
            "greenfetch_request_errors_total",
            service="s3",
            operation="ListBuckets",
            code="AccessDenied",
        )
        == 1
    )  # Prometheus counters stay monotonic across reset


def test_retries_and_throttles_are_counted_from_attempts():
    metrics = Metrics()
    request = Request("dynamodb", "Query")
    metrics.attempt(request, Attempt(0.01, 429, None))  # bare 429, no code
    metrics.attempt(request, Attempt(0.01, 400, "ThrottlingException"))
    metrics.attempt(request, Attempt(0.01, 200, None))
    metrics.result(_result("dynamodb", "Query", attempts=3))
    labels = {"service": "dynamodb", "operation": "Query"}
    assert value(metrics, "greenfetch_throttles_total", **labels) == 2
    assert value(metrics, "greenfetch_retries_total", **labels) == 2


def test_labels_never_carry_params_or_unbounded_values():
    metrics = Metrics()
    metrics.result(_result(params={"SecretString": "hunter2-AKIAIOSFODNN7EXAMPLE"}, error="Boom: hunter2"))
    metrics.result(
        Result(
            1, {"service": "invalid-service-xyz", "operation": "Nope"}, error="x", error_code="UnknownService"
        )
    )
    metrics.result(_result(error="Weird code with spaces: x"))
    for i in range(MAX_OPERATIONS + 10):
        metrics.result(_result("svc", f"Op{i}"))
    text = render(metrics.registry)
    assert "hunter2" not in text and "AKIA" not in text and "invalid-service-xyz" not in text
    assert 'service="invalid"' in text and 'code="other"' in text and 'operation="other"' in text
    label_sets = {
        line.split("{", 1)[1].split("}")[0]
        for line in text.splitlines()
        if line.startswith("greenfetch_request_duration_seconds_count")
    }
    assert len(label_sets) <= MAX_OPERATIONS + 4


def test_every_contract_metric_is_in_the_engines_own_registry(moto_server):
    import prometheus_client

    one = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}))
    two = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}))
    results = one.batch_requests(
        [
            {"service": "s3", "operation": "ListBuckets"},
            {
                "service": "s3",
                "operation": "GetBucketLocation",
                "params": {"Bucket": "no-such-bucket-metrics"},
            },
        ]
    )
    assert [r.ok for r in results] == [True, False]
    one.dedupe_request("k", lambda: 1)
    names = {m.name for m in one.metrics.registry.collect()}
    assert {
        "greenfetch_request_duration_seconds",
        "greenfetch_request_errors",
        "greenfetch_throttles",
        "greenfetch_retries",
        "greenfetch_inflight_requests",
        "greenfetch_concurrency_limit",
        "greenfetch_dedupe",
    } <= names
    assert one.metrics.registry is not prometheus_client.REGISTRY
    assert (
        value(
            one.metrics,
            "greenfetch_request_duration_seconds_count",
            service="s3",
            operation="ListBuckets",
            outcome="success",
        )
        == 1
    )
    assert (
        value(
            two.metrics,
            "greenfetch_request_duration_seconds_count",
            service="s3",
            operation="ListBuckets",
            outcome="success",
        )
        == 0
    )
    assert value(one.metrics, "greenfetch_dedupe_total", outcome="executed") == 1
    rows = {r["operation"]: r for r in one.metrics.perf_stats()}
    assert rows["s3:GetBucketLocation"]["errors"] == 1 and rows["s3:ListBuckets"]["count"] == 1
    assert 0 < rows["s3:ListBuckets"]["p50"] <= rows["s3:ListBuckets"]["max"]
    assert value(one.metrics, "greenfetch_inflight_requests") == 0
    one.close()
    two.close()


# -- the fast path (first-attempt successes) ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ListBuckets", "ListTables", "Describe"]),
            st.booleans(),
            st.integers(1, 3),
            st.booleans(),
        ),
        max_size=40,
    )
)
def test_fast_path_counts_what_the_slow_path_would(calls):
    """Every result lands once in its histogram and its perf row, whichever path took it, and a row
    sent by take_delta never receives a later sample (it is gone from the table, and from the cache)."""
    metrics = Metrics()
    sent_counts = {}
    for operation, ok, attempts, delta_now in calls:
        metrics.result(_result(operation=operation, error=None if ok else "Boom: no", attempts=attempts))
        if delta_now:
            for key, (sketch, _errors, _throttles) in metrics.take_delta()["rows"].items():
                sent_counts[key] = sent_counts.get(key, 0) + sketch.count
                frozen = sketch.count
                metrics.result(_result(operation=operation))  # must land in a new row, not `sketch`
                assert sketch.count == frozen
    for operation in {c[0] for c in calls}:
        total = sum(
            value(
                metrics,
                "greenfetch_request_duration_seconds_count",
                service="s3",
                operation=operation,
                outcome=o,
            )
            for o in ("success", "error")
        )
        rows = {r["operation"]: r["count"] for r in metrics.perf_stats()}
        assert rows.get(f"s3:{operation}", 0) + sent_counts.get(f"s3:{operation}", 0) == total


def test_inflight_gauge_counts_calls_in_flight_and_ends_at_zero_on_threads():
    """The in-flight count is a lock-free deque: on real threads it must neither drift nor miss."""
    from greenfetch.testing import MockCaller

    engine = Engine(Config.resolve({"backend": "threads", "region": "us-east-1"}))
    seen = []
    engine.caller = MockCaller(
        lambda request: seen.append(value(engine.metrics, "greenfetch_inflight_requests")) or {"ok": True}
    )
    results = engine.batch_requests([{"service": "s3", "operation": "ListBuckets"}] * 400, concurrency=16)
    assert all(r.ok for r in results)
    assert min(seen) >= 1 and max(seen) <= 16
    assert value(engine.metrics, "greenfetch_inflight_requests") == 0
    engine.close()


# -- the exposition, against prometheus_client used plainly --------------------------------------

_EVENT = st.one_of(
    st.tuples(
        st.just("result"),
        st.sampled_from(["ListTables", "Query", "Scan", "Bad op!", "Bad op?"]),  # the last two: "other"
        st.sampled_from([None, None, None, "ThrottlingException", "AccessDenied", "Boom"]),
        st.sampled_from([1, 1, 1, 2, 3]),
        st.floats(0.0, 40_000.0),
    ),
    st.tuples(st.just("throttle"), st.sampled_from(["ListTables", "Query"]), st.sampled_from([429, 400])),
    st.tuples(st.just("read"), st.sampled_from(["render", "perf_stats", "take_delta", "reset"])),
)


def _samples(text):
    """The sample lines of the four per-request families, without the creation timestamps."""
    families = (
        "greenfetch_request_duration_seconds",
        "greenfetch_request_errors_total",
        "greenfetch_throttles_total",
        "greenfetch_retries_total",
    )
    return sorted(
        line
        for line in text.splitlines()
        if line.startswith(families) and not line.split("{")[0].endswith("_created")
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(_EVENT, max_size=700), st.integers(0, 3))
def test_exposition_and_perf_stats_are_what_plain_prometheus_and_a_sketch_give(events, tail):
    """A mixed batch (first-attempt successes, errors, throttled attempts, retries; scrapes, perf_stats,
    take_delta and reset between them) gives the series, labels and values (sums bit for bit) that
    prometheus_client's own ``observe``/``inc`` give fed one result at a time in order, and perf rows
    equal to a sketch fed the same way: however ``Metrics`` batches its fast path."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from greenfetch._metrics import BUCKETS

    metrics = Metrics()
    plain = CollectorRegistry()
    duration = Histogram(
        "greenfetch_request_duration_seconds",
        "Time from dispatch to result per request, retries included.",
        ["service", "operation", "outcome"],
        registry=plain,
        buckets=BUCKETS,
    )
    errors = Counter(
        "greenfetch_request_errors_total",
        "Requests whose result is an error.",
        ["service", "operation", "code"],
        registry=plain,
    )
    throttles = Counter(
        "greenfetch_throttles_total", "HTTP attempts AWS throttled.", ["service", "operation"], registry=plain
    )
    retries = Counter(
        "greenfetch_retries_total",
        "HTTP attempts beyond the first of each request.",
        ["service", "operation"],
        registry=plain,
    )
    rows = {}  # operation -> [sketch, errors, throttles], as perf_stats should show them

    def row(operation):
        return rows.setdefault(f"dynamodb:{operation}", [QuantileSketch(), 0, 0])

    def label(operation):
        return operation if " " not in operation else "other"

    events = events + [("result", "ListTables", None, 1, 3.25)] * (300 * tail)  # past the batch size
    # two operations whose labels are both "other", interleaved, with durations whose float sum
    # depends on the order it is taken in
    awkward = random.Random(7)
    events += [("result", f"Bad op{'!?'[i % 2]}", None, 1, awkward.random() * 100) for i in range(20)]
    for event in events:
        if event[0] == "result":
            _, given, code, attempts, ms = event
            operation = label(given)
            error = f"{code}: no" if code else None
            metrics.result(_result("dynamodb", given, ms=ms, error=error, attempts=attempts))
            outcome = "error" if code else "success"
            duration.labels("dynamodb", operation, outcome).observe(ms / 1000.0)
            if code:
                errors.labels("dynamodb", operation, code).inc()
            if attempts > 1:
                retries.labels("dynamodb", operation).inc(attempts - 1)
            row(operation)[0].add(ms / 1000.0)
            row(operation)[1] += bool(code)
        elif event[0] == "throttle":
            _, operation, status = event
            code = "ThrottlingException" if status == 400 else None
            metrics.attempt(Request("dynamodb", operation), Attempt(0.01, status, code))
            throttles.labels("dynamodb", operation).inc()
            row(operation)[2] += 1
        elif event[1] == "render":
            assert _samples(render(metrics.registry)) == _samples(render(plain))
        elif event[1] in ("take_delta", "reset"):
            getattr(metrics, event[1])()
            rows.clear()
        else:
            assert metrics.perf_stats() == _perf_rows(rows)
    assert _samples(render(metrics.registry)) == _samples(render(plain))
    assert metrics.perf_stats() == _perf_rows(rows)


def _perf_rows(rows):
    return [
        {
            "operation": name,
            "count": sketch.count,
            "errors": errors,
            "throttles": throttles,
            "avg_duration": sketch.mean,
            "p50": sketch.quantile(0.5),
            "p90": sketch.quantile(0.9),
            "p99": sketch.quantile(0.99),
            "max": sketch.max if sketch.count else 0.0,
        }
        for name, (sketch, errors, throttles) in sorted(rows.items())
    ]
