"""Each HTTP attempt botocore makes, as ``_attempts``' hooks record it: against the loopback server,
which answers throttles, bare 429s, 5xx and dropped connections on demand. The metrics and the adaptive
gate read these records: a status or code lost here is a throttle nobody backs off from.

Budget: ~2 s of wall time (botocore's backoff between the two attempts), well under 1 s of CPU.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from greenfetch import Config, Engine
from greenfetch._attempts import Attempt, AttemptRecorder, current, recording

LIST = {"service": "dynamodb", "operation": "ListTables"}
LATENCY = 0.01


@pytest.fixture
def engine(loopback: Any) -> Any:
    made = Engine(Config.resolve({"region": "us-east-1", "endpoint_url": loopback.url, "max_attempts": 2}))
    yield made
    made.close()


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        ({}, [(200, None)]),
        ({"throttle_rate": 1.0}, [(400, "ThrottlingException")] * 2),
        ({"http429_rate": 1.0}, [(429, "429")]),  # a bare 429: botocore does not retry it
        ({"error_rate": 1.0}, [(500, "InternalServerError")] * 2),
        ({"drop_rate": 1.0}, [(None, "ConnectionClosedError")] * 2),  # no answer: the exception's name
    ],
)
def test_each_attempt_has_the_status_and_code_the_server_answered_and_its_own_latency(
    loopback: Any, engine: Any, knobs: dict[str, Any], expected: list[tuple[Any, Any]]
) -> None:
    loopback.control(latency=LATENCY, **knobs)
    seen: list[Attempt] = []
    engine.metrics.attempt = lambda request, attempt: seen.append(attempt)  # what the metrics would read
    started = time.perf_counter()
    result = engine.execute(LIST)
    elapsed = time.perf_counter() - started
    assert [(a.http_status, a.error_code) for a in seen] == expected
    assert result.attempts == len(seen) == loopback.stats()["requests"]
    # each attempt's own time: at least the server's latency, and together no more than the call took
    # (botocore's backoff sleeps between the attempts are in neither)
    assert all(a.seconds >= LATENCY for a in seen) and sum(a.seconds for a in seen) <= elapsed


def test_a_recording_inside_another_gives_the_outer_one_back(loopback: Any, engine: Any) -> None:
    """A call made while another call is recorded on the same greenlet (a credential refresh inside a
    call): once it ends, the outer call's later attempts are the outer call's again, and after both
    nothing records."""
    outer, inner = AttemptRecorder(), AttemptRecorder()
    with recording(outer):
        with recording(inner):
            assert current() is inner
        assert current() is outer
        engine.execute(LIST)  # the engine records into a recorder of its own, then gives this one back
        assert current() is outer
    assert current() is None


@pytest.mark.parametrize(
    ("request_", "code", "guidance"),
    [
        (
            {"service": "dynamodb", "operation": "ListTables", "params": {"Limit": "ten"}},
            "ParamValidation",
            None,
        ),
        (
            {"service": "dynamodb", "operation": "ListTabels"},
            "UnknownOperation",
            "nearest valid names: ListTables",
        ),
        # a parameter that breaks botocore's endpoint rules: refused before a connection is even chosen
        (
            {"service": "dynamodb", "operation": "DescribeTable", "params": {"TableName": 5}},
            "EndpointResolutionError",
            None,
        ),
    ],
)
def test_a_request_botocore_cannot_build_used_no_attempt_and_says_what_was_meant(
    loopback: Any, engine: Any, request_: dict[str, Any], code: str, guidance: str | None
) -> None:
    """Refused before anything was sent: no attempt counted (none reached the server), and the
    guidance the refusal carries (the nearest valid names) is the Result's, not the classifier's."""
    (result,) = engine.batch_requests([request_])
    assert (result.error_code, result.attempts, loopback.stats()["requests"]) == (code, 0, 0)
    if guidance is not None:
        assert (result.guidance or "").startswith(guidance)
