"""Issue 15: a server that invents error codes cannot grow the metrics without bound: known codes
keep their own ``code`` label value, the rest beyond MAX_CODES become ``other``."""

import json

import pytest

from greenfetch import Config, Engine
from greenfetch._metrics import MAX_CODES
from greenfetch.testing import LoopbackServer


def invent_code(target, headers, body):
    """Loopback handler: the error code is whatever the request's ExclusiveStartTableName says."""
    code = json.loads(body or b"{}").get("ExclusiveStartTableName", "Nothing")
    return (
        400,
        {"Content-Type": "application/x-amz-json-1.0"},
        json.dumps({"__type": code, "message": "made up"}),
    )


@pytest.fixture(scope="module")
def server():
    with LoopbackServer(handler=f"{__name__}:invent_code", latency=0.0) as url:
        yield url


def _codes(engine):
    return {
        s.labels["code"]
        for m in engine.metrics.registry.collect()
        if m.name == "greenfetch_request_errors"
        for s in m.samples
        if s.name == "greenfetch_request_errors_total"
    }


def _request(code):
    return {"service": "dynamodb", "operation": "ListTables", "params": {"ExclusiveStartTableName": code}}


def test_invented_codes_fold_into_other_and_known_codes_stay(server):
    engine = Engine(Config.resolve({"endpoint_url": server, "region": "us-east-1", "max_attempts": 1}))
    try:
        invented = [_request(f"Err{n:05d}x") for n in range(MAX_CODES + 150)]
        results = engine.batch_requests(invented, concurrency=20)
        assert {r.error_code for r in results} == {
            f"Err{n:05d}x" for n in range(MAX_CODES + 150)
        }  # results keep it
        late = engine.batch_requests(
            [_request("AccessDeniedException"), _request("ValidationException"), _request("Err00003x")]
        )
        assert [r.error_code for r in late] == ["AccessDeniedException", "ValidationException", "Err00003x"]
        codes = _codes(engine)
    finally:
        engine.close()
    assert "other" in codes
    assert {"AccessDeniedException", "ValidationException", "Err00003x"} <= codes
    assert len(codes - {"other", "AccessDeniedException", "ValidationException"}) == MAX_CODES
