"""The engine's own rules on a MockCaller: order, fail-fast, attempts, error mapping, dedupe sharing,
adaptive gating and settings, in milliseconds and with no socket. The server-backed tests
(test_engine_loopback, test_engine_moto) keep one real path per face."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import gevent
import gevent.event
import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st

import greenfetch
from greenfetch import BatchFailed, Config, Engine, GreenfetchError, Request
from greenfetch.testing import MockCaller, client_error


def _engine(handler: Any, **config: Any) -> Engine:
    return Engine(Config.resolve({"region": "us-east-1", **config}, environ={}), caller=MockCaller(handler))


def _req(i: int, **extra: Any) -> dict[str, Any]:
    return {"service": "dynamodb", "operation": "ListTables", "params": {"Limit": i}, **extra}


class InFlight:
    """A handler that counts calls in flight; ``gevent.sleep(0)`` lets the others start meanwhile."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    def __call__(self, request: Request) -> dict[str, Any]:
        self.now += 1
        self.peak = max(self.peak, self.now)
        gevent.sleep(0)
        self.now -= 1
        return {"TableNames": [str(request.params["Limit"])]}


# -- one result per request, order, indexes ------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    outcomes=st.lists(st.sampled_from(["ok", "denied", "throttled", "bad"]), max_size=40),
    concurrency=st.integers(1, 12),
)
def test_every_request_gets_exactly_one_result_in_request_order(
    outcomes: list[str], concurrency: int
) -> None:
    def handler(request: Request) -> dict[str, Any]:
        gevent.sleep(0)
        kind = outcomes[request.params["Limit"]]
        if kind == "denied":
            raise client_error("AccessDeniedException", status=400)
        if kind == "throttled":
            raise client_error("ThrottlingException", status=400)
        return {"TableNames": []}

    requests = [_req(i) if kind != "bad" else {"service": "dynamodb"} for i, kind in enumerate(outcomes)]
    results = _engine(handler).batch_requests(requests, concurrency)
    assert [r.index for r in results] == list(range(len(outcomes)))
    assert [r.ok for r in results] == [kind == "ok" for kind in outcomes]


def test_concurrency_is_the_bound_on_calls_in_flight() -> None:
    handler = InFlight()
    results = _engine(handler).batch_requests([_req(i) for i in range(50)], 7)
    assert handler.peak == 7 and all(r.ok for r in results)


def test_iter_results_pulls_requests_lazily() -> None:
    pulled = []

    def requests() -> Any:
        for i in range(1000):
            pulled.append(i)
            yield _req(i)

    stream = _engine(InFlight()).iter_results(requests(), 5)
    first = [next(stream) for _ in range(3)]
    assert len(first) == 3 and len(pulled) <= 3 + 5 + 1
    stream.close()


# -- fail-fast ----------------------------------------------------------------------------------


def test_fail_fast_raises_with_the_failure_and_cancels_what_is_in_flight() -> None:
    release = gevent.event.Event()
    finished = []

    def handler(request: Request) -> dict[str, Any]:
        if request.params["Limit"] == 3:
            raise client_error("AccessDenied", "no", status=403)
        release.wait()  # the others never finish on their own: fail-fast must kill them
        finished.append(request)
        return {}

    with pytest.raises(BatchFailed) as caught:
        _engine(handler).batch_requests([_req(i) for i in range(20)], 5, fail_fast=True)
    release.set()
    gevent.sleep(0)
    assert str(caught.value).startswith("Batch failed")
    assert caught.value.failure.index == 3 and caught.value.failure.error_code == "AccessDenied"
    assert [r.index for r in caught.value.results] == [3] and finished == []


# -- error mapping, attempts, request ids --------------------------------------------------------


def test_a_client_error_becomes_a_described_and_classified_result() -> None:
    def handler(request: Request) -> dict[str, Any]:
        raise client_error("ThrottlingException", "Rate exceeded", request_id="rid-1")

    (result,) = _engine(handler).batch_requests([_req(0)])
    assert result.error == "dynamodb.ListTables: ThrottlingException: Rate exceeded"
    assert (result.error_code, result.retryable, result.request_id) == ("ThrottlingException", True, "rid-1")
    assert "lower the concurrency" in (result.guidance or "") and result.result is None


def test_a_connection_level_exception_is_transient_and_retryable() -> None:
    def handler(request: Request) -> dict[str, Any]:
        raise ReadTimeoutError(endpoint_url="http://127.0.0.1:9")

    (result,) = _engine(handler).batch_requests([_req(0)])
    assert result.error_code == "ReadTimeoutError" and result.retryable


def test_a_success_has_one_attempt_its_request_id_and_no_response_metadata() -> None:
    def handler(request: Request) -> dict[str, Any]:
        return {"TableNames": ["t"], "ResponseMetadata": {"RequestId": "abc", "HTTPStatusCode": 200}}

    (result,) = _engine(handler).batch_requests([_req(0)])
    assert (result.result, result.request_id, result.attempts) == ({"TableNames": ["t"]}, "abc", 1)


def test_a_request_id_only_in_the_headers_is_the_results_too() -> None:
    """An answer whose metadata has no RequestId but the x-amzn-requestid header (mutation audit)."""

    def handler(request: Request) -> dict[str, Any]:
        return {"TableNames": [], "ResponseMetadata": {"HTTPHeaders": {"x-amzn-requestid": "hdr-1"}}}

    (result,) = _engine(handler).batch_requests([_req(0)])
    assert (result.result, result.request_id) == ({"TableNames": []}, "hdr-1")


def test_waiting_for_a_gate_slot_is_not_the_requests_time() -> None:
    """A request's duration starts when its gate let it go (mutation audit): the 0.3 s its slot took
    to open is the gate's queue, not AWS's latency (the adaptive controller and the metrics read it)."""

    class Slot:
        def __enter__(self) -> int:
            gevent.sleep(0.3)  # the slot opens late: what is measured, not a wait for a race
            return 7

        def __exit__(self, *exc: Any) -> None:
            return None

    result = _engine(lambda request: {}).execute(_req(0), gate=lambda request: Slot())
    assert result.ok and result.concurrency == 7 and result.duration_ms < 300


def test_a_gate_that_gives_no_slot_still_hears_the_requests_one_attempt() -> None:
    """A gate that raises instead of giving a slot (mutation audit): the request fails, and its one
    unseen attempt reaches ``gate.attempt`` as any attempt would, so the gate learns of it."""
    heard: list[Any] = []

    class Gate:
        def __call__(self, request: Request) -> Any:
            raise RuntimeError("no slot")

        def attempt(self, request: Request, attempt: Any) -> None:
            heard.append((request.operation, attempt.error_code))

    result = _engine(lambda request: {}).execute(_req(0), gate=Gate())
    assert (result.error_code, result.attempts) == ("RuntimeError", 1)
    assert heard == [("ListTables", "RuntimeError")]


def test_a_gate_whose_slot_observes_nothing_hears_each_attempt_itself() -> None:
    """A gate whose slot has no ``observe`` (mutation audit): each attempt reaches ``gate.attempt``."""
    heard: list[Any] = []

    class Slot:
        def __enter__(self) -> int:
            return 3

        def __exit__(self, *exc: Any) -> None:
            return None

    class Gate:
        def __call__(self, request: Request) -> Slot:
            return Slot()

        def attempt(self, request: Request, attempt: Any) -> None:
            heard.append((request.operation, attempt.error_code))

    def handler(request: Request) -> dict[str, Any]:
        raise client_error("ThrottlingException")

    result = _engine(handler).execute(_req(0), gate=Gate())
    assert (result.error_code, result.concurrency) == ("ThrottlingException", 3)
    assert heard == [("ListTables", "ThrottlingException")]


def test_a_request_that_cannot_be_built_used_no_attempt_and_never_reached_the_caller() -> None:
    caller = MockCaller(lambda request: {})
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=caller)
    (result,) = engine.batch_requests([{"service": "s3", "operation": " ", "params": {}}])
    assert (result.error_code, result.attempts, caller.calls) == ("MissingField", 0, [])
    assert "operation" in (result.error or "")


def test_the_run_defaults_reach_the_request_the_caller_sees() -> None:
    caller = MockCaller(lambda request: {})
    engine = Engine(
        Config.resolve({"region": "eu-west-1", "endpoint_url": "http://127.0.0.1:1"}, environ={}),
        caller=caller,
    )
    engine.batch_requests([_req(0), _req(1, region="us-west-2")])
    assert sorted(r.region for r in caller.calls) == ["eu-west-1", "us-west-2"]
    assert {r.endpoint_url for r in caller.calls} == {"http://127.0.0.1:1"}


# -- dedupe sharing, adaptive gating, metrics ----------------------------------------------------


def test_identical_requests_in_a_dedupe_window_share_one_call() -> None:
    caller = MockCaller(lambda request: (gevent.sleep(0), {"TableNames": ["t"]})[1])
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=caller)
    results = engine.batch_requests([_req(1)] * 10 + [_req(2)], 20, dedupe_window=5)
    assert len(caller.calls) == 2
    assert sum(r.deduped for r in results) == 9 and all(r.result == {"TableNames": ["t"]} for r in results)


def test_adaptive_batch_gates_every_call_and_reports_the_limit_in_force() -> None:
    handler = InFlight()
    results = _engine(handler).adaptive_batch(
        [_req(i) for i in range(200)], initial_concurrency=3, max_concurrency=16
    )
    assert all(r.ok and r.concurrency is not None and 1 <= r.concurrency <= 16 for r in results)
    assert handler.peak <= 16 and results.trace  # type: ignore[attr-defined]


def test_iter_adaptive_streams_results_and_hands_over_the_trace_at_the_end() -> None:
    traces: list[dict[str, Any]] = []
    stream = _engine(InFlight()).iter_adaptive(
        [_req(i) for i in range(50)], initial_concurrency=2, max_concurrency=8, on_trace=traces.append
    )
    first = next(stream)
    assert first.ok and traces == []
    assert len(list(stream)) == 49 and len(traces) == 1


def test_failed_results_of_an_adaptive_batch_carry_their_limit_too() -> None:
    def handler(request: Request) -> dict[str, Any]:
        raise client_error("AccessDenied")

    results = _engine(handler).adaptive_batch([_req(i) for i in range(5)], initial_concurrency=3)
    assert [r.concurrency for r in results] == [3] * 5 and not any(r.ok for r in results)


def test_iter_adaptive_rejects_bad_numbers_before_anything_runs() -> None:
    caller = MockCaller(lambda request: {})
    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}), caller=caller)
    with pytest.raises(greenfetch.ConfigError, match="min_concurrency"):
        engine.iter_adaptive([_req(0)], min_concurrency=9, max_concurrency=2)
    assert caller.calls == []


def test_metrics_count_mocked_calls_and_throttles_like_real_ones() -> None:
    def handler(request: Request) -> dict[str, Any]:
        if request.params["Limit"] % 2:
            raise client_error("ThrottlingException")
        return {}

    engine = _engine(handler)
    engine.batch_requests([_req(i) for i in range(10)])
    (row,) = engine.metrics.perf_stats()
    assert (row["operation"], row["count"], row["errors"], row["throttles"]) == (
        "dynamodb:ListTables",
        10,
        5,
        5,
    )


# -- settings: the two bugs of issue 9 ------------------------------------------------------------


def test_greenfetch_concurrency_reaches_the_module_level_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GREENFETCH_CONCURRENCY", "3")
    handler = InFlight()
    monkeypatch.setattr(greenfetch._api, "_default", Engine(caller=MockCaller(handler)))
    greenfetch.batch_requests([_req(i, region="us-east-1") for i in range(30)])
    assert handler.peak == 3
    handler.peak = 0
    list(greenfetch.iter_results([_req(i, region="us-east-1") for i in range(30)]))
    assert handler.peak == 3


def test_greenfetch_engine_is_parsed_alike_at_import_and_by_config() -> None:
    code = (
        "import sys, greenfetch; e = greenfetch.Engine(); "
        "print(e.config.backend, 'gevent.monkey' in sys.modules)"
    )
    env = {**os.environ, "GREENFETCH_ENGINE": " Threads "}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["threads", "False"]


def test_every_error_greenfetch_raises_on_purpose_is_a_greenfetch_error() -> None:
    from greenfetch import (
        ConfigError,
        EngineImportError,
        ExpositionError,
        InventoryError,
        RequestError,
    )

    for cls in (ConfigError, RequestError, InventoryError, BatchFailed, EngineImportError, ExpositionError):
        assert issubclass(cls, GreenfetchError), cls
    for cls in (ConfigError, RequestError, InventoryError):
        assert issubclass(cls, ValueError), cls  # still caught where ValueError was caught before
