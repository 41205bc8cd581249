"""Config.body_limit: a response body over the limit is a failed Result (BodyTooLarge), never a body
cut short that passes for the whole one; the inventory's own S3 readers get whole objects in ranges.

All on moto's server over real HTTP. Before this, GetObject of an object over 1 MiB returned its
first MiB as a success: a >1 MiB shard failed its run with a JSONDecodeError and a >1 MiB S3 cache
entry was always a miss.
"""

import json
import re

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch import Config, ConfigError, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import InventoryCache, S3ShardSink
from greenfetch.inventory._s3_read import read_object
from greenfetch.inventory._types import InventoryError

MIB = 1 << 20
BUCKET = "greenfetch-body-limit"


def _engine(moto_server, **settings_) -> Engine:
    return Engine(
        Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", **settings_}, environ={})
    )


@pytest.fixture(scope="module")
def s3(moto_server):
    engine = _engine(moto_server)
    created = engine.execute(Request("s3", "CreateBucket", {"Bucket": BUCKET}))
    assert created.ok or created.error_code == "BucketAlreadyOwnedByYou", created.error
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def small(moto_server, s3):
    """An engine whose body limit is 64 bytes: every boundary within a few hundred bytes."""
    engine = _engine(moto_server, body_limit=64)
    yield engine
    engine.close()


def _put(engine: Engine, key: str, data: bytes) -> None:
    result = engine.execute(Request("s3", "PutObject", {"Bucket": BUCKET, "Key": key, "Body": data}))
    assert result.ok, result.error


def _size(engine: Engine, key: str) -> int:
    return int(
        engine.execute(Request("s3", "HeadObject", {"Bucket": BUCKET, "Key": key})).result["ContentLength"]
    )


# -- the promise to users: whole, or a failed Result that says why ---------------------------------


def test_a_body_over_the_limit_is_a_failed_result_naming_size_and_limit(s3):
    _put(s3, "user/over", b"x" * (MIB + 1))
    _put(s3, "user/at", b"y" * MIB)
    over, at, part = s3.batch_requests(
        [
            Request("s3", "GetObject", {"Bucket": BUCKET, "Key": "user/over"}),
            Request("s3", "GetObject", {"Bucket": BUCKET, "Key": "user/at"}),
            Request("s3", "GetObject", {"Bucket": BUCKET, "Key": "user/over", "Range": f"bytes=0-{MIB - 1}"}),
        ]
    )
    assert not over.ok and over.result is None  # was: ok, with the first 1,048,576 bytes as if whole
    assert over.error_code == "BodyTooLarge" and not over.retryable
    assert over.error == (
        "s3.GetObject: BodyTooLarge: the response's Body is 1,048,577 bytes, over the body limit "
        "of 1,048,576 bytes (GREENFETCH_BODY_LIMIT); none of it was kept"
    )
    assert "Range" in over.guidance and "body_limit" in over.guidance
    assert over.attempts == 1  # the same answer on every retry: not retried
    assert at.ok and at.result["Body"] == b"y" * MIB  # exactly the limit is whole
    assert part.ok and part.result["Body"] == b"x" * MIB  # the way to read it: in ranges


def test_the_limit_is_the_engines_setting_and_holds_across_worker_processes(moto_server, s3):
    _put(s3, "user/small", b"0123456789" * 10)
    engine = _engine(moto_server, body_limit=64, processes=2)
    try:
        (result,) = engine.batch_requests(
            [Request("s3", "GetObject", {"Bucket": BUCKET, "Key": "user/small"})]
        )
    finally:
        engine.close()
    assert result.error_code == "BodyTooLarge"
    assert "is 100 bytes, over the body limit of 64 bytes" in result.error


def test_the_threads_backend_urllib3_keeps_the_same_promise(moto_server, s3):
    _put(s3, "user/65", b"t" * 65)
    _put(s3, "user/64", b"t" * 64)
    engine = _engine(moto_server, body_limit=64, backend="threads")  # botocore's own urllib3 session
    try:
        over, at = engine.batch_requests(
            [Request("s3", "GetObject", {"Bucket": BUCKET, "Key": f"user/{n}"}) for n in (65, 64)]
        )
    finally:
        engine.close()
    assert over.error_code == "BodyTooLarge" and "is 65 bytes, over the body limit of 64 bytes" in over.error
    assert at.ok and at.result["Body"] == b"t" * 64


def test_cli_batch_reports_body_too_large_and_exits_1(moto_server, s3):
    _put(s3, "user/cli", b"z" * (2 * MIB))
    request = {"service": "s3", "operation": "GetObject", "params": {"Bucket": BUCKET, "Key": "user/cli"}}
    result = CliRunner().invoke(
        load_commands(),
        ["--endpoint-url", moto_server.url, "--region", "us-east-1", "batch"],
        input=json.dumps([request]),
    )
    assert result.exit_code == 1, result.output  # was 0, with a 1 MiB "Body" in the output
    (row,) = json.loads(result.stdout)
    assert row["error_code"] == "BodyTooLarge" and row["result"] is None
    assert "2,097,152 bytes, over the body limit of 1,048,576 bytes" in row["error"]


def test_greenfetch_body_limit_raises_the_limit_for_the_cli(moto_server, s3):
    _put(s3, "user/cli-env", b"e" * (2 * MIB))
    request = {"service": "s3", "operation": "GetObject", "params": {"Bucket": BUCKET, "Key": "user/cli-env"}}
    result = CliRunner().invoke(
        load_commands(),
        ["--endpoint-url", moto_server.url, "--region", "us-east-1", "batch"],
        input=json.dumps([request]),
        env={"GREENFETCH_BODY_LIMIT": str(4 * MIB)},
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["error"] is None and row["result"]["Body"]  # the whole 2 MiB body, as the output encodes bytes


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "1MiB"])
def test_a_body_limit_that_is_not_a_whole_number_is_a_setting_error(limit):
    with pytest.raises(
        ConfigError, match=rf"^body_limit: {re.escape(repr(limit))} is not allowed; use a whole number"
    ):
        Config.resolve({"body_limit": limit}, environ={})


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 150))
def test_a_body_is_whole_or_body_too_large_never_cut(small, size):
    data = bytes((7 * n) % 251 for n in range(size))
    _put(small, f"prop/{size}", data)
    result = small.execute(Request("s3", "GetObject", {"Bucket": BUCKET, "Key": f"prop/{size}"}))
    if size <= 64:
        assert result.ok and result.result["Body"] == data
    else:
        assert result.error_code == "BodyTooLarge" and result.result is None


# -- the inventory's own readers: whole objects, in ranges ---------------------------------------


def test_a_shard_over_the_limit_round_trips_through_s3(s3):
    sink = S3ShardSink(s3, f"s3://{BUCKET}/shards")
    records = [
        {
            "resource_type": "ec2.vpcs",
            "account": "555700000001",
            "region": "eu-west-1",
            "items": [{"VpcId": f"vpc-{n:08x}", "Tags": [{"Key": "note", "Value": "é" * 300 + "ü" * 100}]}],
        }
        for n in range(3000)
    ]
    sink.put("run-big", "555700000001", records, {"calls": 3000})
    assert _size(s3, "shards/run-big/555700000001.json") > 2 * MIB  # three ranges at the 1 MiB default
    assert sink.get("run-big", "555700000001") == (records, {"calls": 3000})  # was: JSONDecodeError


def test_a_cache_entry_over_the_limit_is_a_hit_on_the_s3_tier(s3):
    uri = f"s3://{BUCKET}/cache-tier"
    value = [{"Name": f"queue-{n}", "Attributes": {"Policy": "ö" * 500}} for n in range(2000)]
    InventoryCache(600, None, s3_uri=uri, engine=s3).set("sig-big", value)
    fresh = InventoryCache(600, None, s3_uri=uri, engine=s3)  # another machine: memory empty, no directory
    assert fresh.get("sig-big") == value  # was: a miss (None), silently
    assert fresh.hits["s3"] == 1 and fresh.misses == 0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(0, 64 * 5 + 1))
def test_read_object_is_whole_for_any_size_and_limit_boundary(small, size):
    data = bytes((7 * n) % 251 for n in range(size))
    _put(small, f"whole/{size}", data)
    assert read_object(small, BUCKET, f"whole/{size}") == data


def test_read_object_missing_key_is_none_and_a_missing_bucket_names_the_object(s3):
    assert read_object(s3, BUCKET, "no/such/key") is None
    with pytest.raises(
        InventoryError, match=r"^s3://no-such-bucket-greenfetch-bl/k: GetObject failed: .*NoSuchBucket"
    ):
        read_object(s3, "no-such-bucket-greenfetch-bl", "k")


class _ReplaceOnce:
    """The real engine, but the object is replaced (a real PutObject) right after the first range is
    read: the moment a shard redelivered to a second worker overwrites it while the coordinator reads."""

    def __init__(self, engine: Engine, key: str, new: bytes):
        self.engine, self.config, self.key, self.new, self.replaced = engine, engine.config, key, new, False

    def execute(self, request):
        result = self.engine.execute(request)
        if not self.replaced:
            self.replaced = True
            _put(self.engine, self.key, self.new)
        return result

    def batch_requests(self, requests, concurrency=None):
        return self.engine.batch_requests(requests, concurrency)


def test_an_object_replaced_between_its_ranges_is_read_again_never_mixed(small):
    old, new = b"o" * 200, b"n" * 300
    _put(small, "replaced", old)
    assert read_object(_ReplaceOnce(small, "replaced", new), BUCKET, "replaced") == new


@pytest.mark.slow
def test_a_real_shard_over_the_limit_goes_through_run_shard_and_back(s3):
    """The reported failure end to end, in process: the shard function itself puts an account's
    records on S3 (an account with 120 VPCs of 40 long tags each: a ~1.4 MB shard) and the
    coordinator's read gives back what a local run of the same account finds."""
    from greenfetch.inventory import accounts_from_list, assume_role, resolve_types
    from greenfetch.inventory._fetch import Inventory
    from greenfetch.inventory._shard import Shard, run_shard

    account, role = "555799990001", "InventoryReader"
    creds = assume_role(s3, account, role)
    tags = [{"Key": f"tag-{n:02d}", "Value": f"{n:02d}" + "v" * 250} for n in range(40)]
    made = s3.batch_requests(
        [
            Request(
                "ec2",
                "CreateVpc",
                {"CidrBlock": f"10.{n}.0.0/16", "TagSpecifications": [{"ResourceType": "vpc", "Tags": tags}]},
                region="eu-west-1",
                credentials=creds,
            )
            for n in range(120)
        ],
        8,
    )
    assert all(r.ok for r in made), next(r.error for r in made if not r.ok)
    types = resolve_types("ec2.vpcs")
    local = list(Inventory(s3, accounts_from_list(account, role=role), types, regions=["eu-west-1"]).run())
    sink = S3ShardSink(s3, f"s3://{BUCKET}/e2e")
    run_shard(
        s3,
        Shard("run-e2e", account, ("ec2.vpcs",), ("eu-west-1",), role=role, options={"cache_ttl": 0}),
        sink,
    )
    assert _size(s3, f"e2e/run-e2e/{account}.json") > MIB + MIB // 4
    got = sink.get("run-e2e", account)
    assert got is not None  # was: JSONDecodeError: Unterminated string ... char 1048...
    records, _summary = got
    assert sorted(json.dumps(r, sort_keys=True) for r in records) == sorted(
        json.dumps(r, sort_keys=True, default=str) for r in local
    )
