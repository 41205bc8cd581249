"""Every kind of bad request becomes a failed Result that names the bad value; the rest still run."""

import pytest

from greenfetch import Config, ConfigError, Engine


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(Config.resolve({"endpoint_url": moto_server.url, "max_attempts": 1, "connect_timeout": 2}))
    yield eng
    eng.close()


GOOD = {"service": "s3", "operation": "ListBuckets", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("bad", "code", "named"),
    [
        ({"operation": "ListBuckets"}, "MissingField", "'service'"),
        ({"service": "s3"}, "MissingField", "'operation'"),
        (
            {"service": "invalid-service", "operation": "BadOp", "region": "us-east-1"},
            "UnknownService",
            "invalid-service",
        ),
        (
            {"service": "s3", "operation": "ListBukets", "region": "us-east-1"},
            "UnknownOperation",
            "ListBuckets",
        ),
        (
            {"service": "s3", "operation": "GetObject", "params": {"Bucket": 7}, "region": "us-east-1"},
            "ParamValidation",
            "Bucket",
        ),
        ({"service": "ec2", "operation": "DescribeVpcs"}, "NoRegion", "region"),
        (
            {"service": "s3", "operation": "ListBuckets", "region": "us-east-1", "params": [1]},
            "InvalidRequest",
            "params",
        ),
        ({"service": "s3", "operation": "ListBuckets", "regoin": "us-east-1"}, "InvalidRequest", "regoin"),
        ("not a request", "InvalidRequest", "not a request"),
    ],
)
def test_bad_request_is_a_failed_result_and_others_still_run(engine, bad, code, named):
    results = engine.batch_requests([GOOD, bad, GOOD], concurrency=2)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code == code
    assert named in results[1].error
    assert results[1].attempts == 0


def test_unreachable_endpoint_is_a_failed_result():
    eng = Engine(Config.resolve({"max_attempts": 1, "connect_timeout": 1}))
    (result,) = eng.batch_requests([{**GOOD, "endpoint_url": "http://127.0.0.1:9"}])
    assert result.error_code == "EndpointConnectionError"
    assert "127.0.0.1:9" in result.error
    assert result.retryable


@pytest.mark.parametrize("concurrency", [0, -3, "ten", 2.5, True])
def test_bad_concurrency_is_a_clear_error(engine, concurrency):
    with pytest.raises(ConfigError, match="concurrency"):
        engine.batch_requests([GOOD], concurrency=concurrency)
