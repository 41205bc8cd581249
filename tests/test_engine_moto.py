"""The seed-003 batch scenarios in Python, against moto's server over real HTTP."""

import gc
import resource

import pytest

import greenfetch
from greenfetch import BatchFailed, Config, Engine


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(Config.resolve({"region": "us-east-1", "endpoint_url": moto_server.url, "max_attempts": 2}))
    eng.batch_requests(
        [
            {"service": "s3", "operation": "CreateBucket", "params": {"Bucket": "test-bucket"}},
            {"service": "s3", "operation": "CreateBucket", "params": {"Bucket": "large-bucket"}},
        ]
    )
    yield eng
    eng.close()


def test_parallel_success_at_concurrency_2(engine):
    requests = [
        {"service": "s3", "operation": "ListBuckets", "params": {}},
        {"service": "ec2", "operation": "DescribeInstances", "params": {}},
        {"service": "lambda", "operation": "ListFunctions", "params": {}},
    ]
    results = engine.batch_requests(requests, concurrency=2)
    assert [r.index for r in results] == [0, 1, 2]
    assert all(r.ok and r.result is not None for r in results), [r.error for r in results]
    assert all(r.request_id for r in results)


def test_resilient_partial_failure_names_the_bad_service(engine):
    requests = [
        {"service": "s3", "operation": "ListBuckets", "params": {}},
        {"service": "invalid-service", "operation": "BadOp", "params": {}},
        {"service": "ec2", "operation": "DescribeInstances", "params": {}},
    ]
    results = engine.batch_requests(requests, concurrency=2, fail_fast=False)
    assert [r.ok for r in results] == [True, False, True]
    failure = results[1]
    assert "invalid-service" in failure.error
    assert failure.error_code == "UnknownService"
    assert failure.request == requests[1]
    assert failure.to_dict()["result"] is None


def test_fail_fast_raises_batch_failed_with_results_so_far(engine):
    requests = [
        {"service": "invalid-service", "operation": "BadOp", "params": {}},
        {"service": "s3", "operation": "ListBuckets", "params": {}},
        {"service": "ec2", "operation": "DescribeInstances", "params": {}},
    ]
    with pytest.raises(BatchFailed) as caught:
        engine.batch_requests(requests, concurrency=1, fail_fast=True)
    assert str(caught.value).startswith("Batch failed")
    assert caught.value.failure.index == 0
    assert len(caught.value.results) <= 2  # at most the failure and the one the single slot may have started


def test_error_correlation_keeps_the_request(engine):
    failing = {
        "service": "s3",
        "operation": "GetObject",
        "params": {"Bucket": "nonexistent-bucket", "Key": "nonexistent-key"},
    }
    results = engine.batch_requests([failing, {"service": "s3", "operation": "ListBuckets"}])
    failure = [r for r in results if not r.ok][0]
    req = failure.to_dict()["request"]
    assert (req["service"], req["operation"], req["params"]["Bucket"]) == (
        "s3",
        "GetObject",
        "nonexistent-bucket",
    )
    assert failure.error_code == "NoSuchBucket"
    assert failure.error.startswith("s3.GetObject: NoSuchBucket:")
    assert failure.request_id


def test_service_grouping_keeps_order_and_shares_clients(engine):
    mixed = [
        {"service": "s3", "operation": "ListBuckets"},
        {"service": "s3", "operation": "ListObjects", "params": {"Bucket": "test-bucket"}},
        {"service": "ec2", "operation": "DescribeInstances"},
        {"service": "ec2", "operation": "describe_images", "params": {"Owners": ["self"]}},
        {"service": "lambda", "operation": "ListFunctions"},
    ]
    before = engine.clients.created
    results = engine.batch_requests(mixed * 4, concurrency=3)
    assert [r.index for r in results] == list(range(20))
    assert [r.request.operation for r in results[:5]] == [
        "ListBuckets",
        "ListObjects",
        "DescribeInstances",
        "DescribeImages",
        "ListFunctions",
    ]
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert engine.clients.created - before <= 3  # one client per service, shared by all its requests


def test_pagination_merges_pages_and_max_items_stops_early(engine):
    puts = [
        {"service": "s3", "operation": "PutObject", "params": {"Bucket": "test-bucket", "Key": f"p/{i:03}"}}
        for i in range(25)
    ]
    assert all(r.ok for r in engine.batch_requests(puts, concurrency=10))
    base = {
        "service": "s3",
        "operation": "ListObjectsV2",
        "params": {"Bucket": "test-bucket", "Prefix": "p/", "MaxKeys": 10},
    }
    one_page, all_pages, capped = engine.batch_requests(
        [base, {**base, "paginate": True}, {**base, "paginate": {"max_items": 12}}]
    )
    assert len(one_page.result["Contents"]) == 10
    assert len(all_pages.result["Contents"]) == 25
    assert len(capped.result["Contents"]) == 12 and capped.result.get("NextToken")


def test_thousand_list_objects_at_concurrency_20_in_bounded_memory(engine):
    requests = (
        {
            "service": "s3",
            "operation": "ListObjectsV2",
            "params": {"Bucket": "large-bucket", "Prefix": f"large-prefix-{i}"},
        }
        for i in range(1000)
    )
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seen = set()
    for result in engine.iter_results(requests, concurrency=20):
        assert result.ok, result.error
        seen.add(result.index)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert seen == set(range(1000))
    assert grown_mb < 100


def test_streaming_body_is_read_into_bytes(engine):
    engine.batch_requests(
        [
            {
                "service": "s3",
                "operation": "PutObject",
                "params": {"Bucket": "test-bucket", "Key": "hello.txt", "Body": "héllo"},
            }
        ]
    )
    (got,) = engine.batch_requests(
        [{"service": "s3", "operation": "GetObject", "params": {"Bucket": "test-bucket", "Key": "hello.txt"}}]
    )
    assert got.result["Body"] == "héllo".encode()
    assert got.to_dict()["result"]["Body"] == "héllo"


def test_module_level_api_uses_one_default_engine(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server.url)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    results = greenfetch.batch_requests([{"service": "s3", "operation": "list_buckets"}] * 3, concurrency=2)
    assert all(r.ok for r in results)
    assert greenfetch.default_engine() is greenfetch.default_engine()
    rows = {row["operation"]: row for row in greenfetch.perf_stats()}
    assert rows["s3:ListBuckets"]["count"] >= 3


def test_role_in_a_request_is_assumed_and_its_account_answers(engine):
    role = "arn:aws:iam::222233334444:role/Reader"
    made = engine.batch_requests(
        [
            {
                "service": "s3",
                "operation": "CreateBucket",
                "role": role,
                "params": {"Bucket": "only-in-222233334444"},
            }
        ]
    )
    assert made[0].ok, made[0].error
    as_role, as_default = engine.batch_requests(
        [
            {"service": "s3", "operation": "ListBuckets", "role": role},
            {"service": "s3", "operation": "ListBuckets"},
        ]
    )
    assert [b["Name"] for b in as_role.result["Buckets"]] == ["only-in-222233334444"]
    assert "only-in-222233334444" not in [b["Name"] for b in as_default.result["Buckets"]]


def test_malformed_role_is_a_failed_result_naming_it(engine):
    (result,) = engine.batch_requests([{"service": "s3", "operation": "ListBuckets", "role": "Reader"}])
    assert result.error_code == "InvalidRole" and "'Reader'" in result.error
