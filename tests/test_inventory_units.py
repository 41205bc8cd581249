"""Inventory logic without sockets: accounts, roles, regions, catalog, status store, cache, files."""

import json
import math
import os
import re
import stat

import pytest
from _cache_rows import cache_entries, cache_rows, write_row
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch.inventory import (
    Account,
    InventoryError,
    RegionStatusStore,
    accounts_from_list,
    expand_regions,
    known_regions,
    role_arn_for,
    status_from_error,
)
from greenfetch.inventory._cache import InventoryCache, parse_s3_uri
from greenfetch.inventory._catalog import CATALOG, resolve_types
from greenfetch.inventory._pagefile import NAME
from greenfetch.inventory._sinks import FileSink

KNOWN = known_regions()


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


# -- accounts and roles ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["12345", "1234567890123", "12345678901a", "", "arn:aws:iam::1"])
def test_malformed_account_id_names_the_value(bad):
    with pytest.raises(InventoryError, match="12 digits") as err:
        Account(bad)
    assert repr(bad) in str(err.value)


def test_account_list_dedupes_and_keeps_order():
    accounts = accounts_from_list(" 222222222222,111111111111,222222222222 ", role="Reader")
    assert [a.account_id for a in accounts] == ["222222222222", "111111111111"]
    assert all(a.role == "Reader" for a in accounts)


def test_role_name_becomes_an_arn_in_the_regions_partition():
    assert role_arn_for("111111111111", "Reader") == "arn:aws:iam::111111111111:role/Reader"
    assert (
        role_arn_for("111111111111", "Reader", region="cn-north-1")
        == "arn:aws-cn:iam::111111111111:role/Reader"
    )


def test_role_arn_in_the_wrong_partition_is_refused_with_the_right_one():
    with pytest.raises(InventoryError, match="partition 'aws-cn'.*arn:aws:iam::111111111111:role/Reader"):
        role_arn_for("111111111111", "arn:aws-cn:iam::111111111111:role/Reader", region="us-east-1")


def test_role_arn_of_another_account_is_refused():
    with pytest.raises(InventoryError, match="belongs to account 222222222222"):
        role_arn_for("111111111111", "arn:aws:iam::222222222222:role/Reader")


# -- regions -------------------------------------------------------------------------------------


def test_wildcards_and_exclusions():
    regions = expand_regions("us-*,eu-west-1", KNOWN, exclude="us-west-*,us-gov-*,us-iso*")
    assert regions[:2] == ["us-east-1", "us-east-2"] and "eu-west-1" in regions
    assert not any(r.startswith(("us-west-", "us-gov-", "us-iso")) for r in regions)


def test_unknown_region_is_named_with_a_suggestion():
    with pytest.raises(InventoryError, match="'us-east-9' is not an AWS region.*did you mean"):
        expand_regions("us-east-1,us-east-9", KNOWN)


def test_pattern_matching_nothing_and_excluding_everything_fail():
    with pytest.raises(InventoryError, match="matches no region"):
        expand_regions("xx-*", KNOWN)
    with pytest.raises(InventoryError, match="removes every region"):
        expand_regions("eu-west-1", KNOWN, exclude="eu-*")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=8), st.lists(st.sampled_from(KNOWN), max_size=4))
def test_expansion_is_a_duplicate_free_subset_without_exclusions(wanted, excluded):
    if set(wanted) <= set(excluded):
        return
    regions = expand_regions(wanted, KNOWN, exclude=excluded)
    assert len(regions) == len(set(regions))
    assert set(regions) == set(wanted) - set(excluded)


# -- catalog -------------------------------------------------------------------------------------


def test_catalog_has_30_types_with_unique_names_and_known_shapes():
    assert len(CATALOG) >= 30
    assert {t.scope for t in CATALOG.values()} == {"regional", "global"}
    assert {"iam.roles", "route53.hosted_zones", "s3.buckets"} <= {
        n for n, t in CATALOG.items() if t.is_global
    }


def test_unknown_type_lists_the_valid_ones():
    with pytest.raises(
        InventoryError, match="unknown resource type 'ec2.vpc'.*did you mean ec2.vpcs.*valid types:"
    ):
        resolve_types("ec2.vpcs,ec2.vpc")


def test_a_service_name_selects_its_types_of_every_tier():
    chosen = resolve_types("iam")
    assert {"iam.roles", "iam.users", "iam.policies"} < {t.name for t in chosen}
    assert {t.service for t in chosen} == {"iam"} and {t.tier for t in chosen} == {"core", "generated"}


def test_extract_follows_nested_keys_and_keeps_only_allowed_fields():
    page = {
        "Reservations": [{"Instances": [{"InstanceId": "i-1"}, {"InstanceId": "i-2"}]}, {"Instances": []}]
    }
    assert [i["InstanceId"] for i in CATALOG["ec2.instances"].extract(page)] == ["i-1", "i-2"]
    secret = {"SecretList": [{"Name": "db", "ARN": "arn:x", "Description": "d", "Tags": []}]}
    assert CATALOG["secretsmanager.secrets"].extract(secret) == [{"Name": "db", "ARN": "arn:x"}]


# -- region status store -------------------------------------------------------------------------


def test_active_regions_skip_empty_and_denied_until_the_ttl(tmp_path):
    clock = Clock()
    path = tmp_path / "status.json"
    store = RegionStatusStore(path, ttl=3600, clock=clock)
    store.update("111111111111", "ec2", "us-east-1", "ok", count=3)
    store.update("111111111111", "ec2", "eu-west-1", "empty", count=0)
    store.update(
        "111111111111",
        "ec2",
        "ap-south-1",
        status_from_error("UnauthorizedOperation"),
        "UnauthorizedOperation",
    )
    store.update("111111111111", "ec2", "sa-east-1", status_from_error("RequestLimitExceeded"))
    store.flush()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = RegionStatusStore(path, ttl=3600, clock=clock)
    regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1", "us-west-2"]
    assert again.active_regions("111111111111", "ec2", regions) == ["us-east-1", "sa-east-1", "us-west-2"]
    assert again.get("111111111111", "ec2", "ap-south-1").status == "denied"
    clock.now += 3600
    assert again.active_regions("111111111111", "ec2", regions) == regions


def test_status_store_rejects_unknown_status_and_survives_a_corrupt_file(tmp_path):
    path = tmp_path / "status.json"
    path.write_text("{not json")
    store = RegionStatusStore(path)
    assert store.all() == []
    with pytest.raises(InventoryError, match="'weird' is not one of ok, empty, denied, unavailable, error"):
        store.update("111111111111", "ec2", "us-east-1", "weird")


# -- cache ---------------------------------------------------------------------------------------


def test_cache_hit_promotes_from_disk_and_expires(tmp_path):
    clock = Clock()
    with InventoryCache(60, tmp_path, clock=clock) as first:
        first.set("sig", [{"name": "café"}])
    second = InventoryCache(60, tmp_path, clock=clock)  # a new process: memory is empty
    assert second.get("sig") == [{"name": "café"}] and second.hits["disk"] == 1
    assert second.get("sig") == [{"name": "café"}] and second.hits["memory"] == 1
    clock.now += 61
    assert second.get("sig") is None and InventoryCache(60, tmp_path, clock=clock).get("sig") is None


def test_cache_file_is_owner_only_and_holds_json(tmp_path):
    cache = InventoryCache(60, tmp_path / "c")
    cache.set("sig", {"a": 1})
    cache.flush()  # written, and the connection still open: its write-ahead log is there too
    files = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert files == [NAME, NAME + "-shm", NAME + "-wal"]
    assert {stat.S_IMODE((tmp_path / "c" / name).stat().st_mode) for name in files} == {0o600}
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    assert cache_entries(tmp_path / "c")["sig"]["value"] == {"a": 1}


@pytest.mark.parametrize("content", ["{truncated", "[1, 2]", '{"key": "sig", "value": 1}', b"\x80\x81"])
def test_corrupt_or_foreign_cache_entry_is_a_miss(tmp_path, content):
    with InventoryCache(60, tmp_path) as cache:
        cache.set("sig", 1)
    write_row(tmp_path, "sig", content)
    assert InventoryCache(60, tmp_path).get("sig") is None
    assert cache_rows(tmp_path) == {}


def test_cache_entry_under_another_key_is_a_miss(tmp_path):
    with InventoryCache(60, tmp_path) as cache:
        cache.set("sig-a", 1)
    write_row(tmp_path, "sig-b", cache_rows(tmp_path)["sig-a"])
    assert InventoryCache(60, tmp_path).get("sig-b") is None


def test_cache_clear_and_info(tmp_path):
    cache = InventoryCache(60, tmp_path)
    for n in range(3):
        cache.set(f"k{n}", n)
    (tmp_path / "not-ours.txt").write_text("keep me")
    assert cache.info()["fresh_entries"] == 3
    assert cache.clear() == 3 and (tmp_path / "not-ours.txt").exists()
    assert cache.get("k1") is None and cache_rows(tmp_path) == {}


# the cache's rules at their edges (mutation audit, docs/testing.md): each test below failed on a
# one-line change to _cache.py that the tests above let through


def test_cache_entry_is_usable_until_exactly_its_ttl_by_its_own_age(tmp_path):
    """An entry's own age decides (the time its page was fetched), not how long it has been in
    memory: one stored 60 s after its fetch is already stale for a 60 s TTL, from every tier."""
    clock = Clock()
    cache = InventoryCache(60, tmp_path, clock=clock)
    cache.set("young", 1, stored_at=clock.now - 59.999)
    cache.set("exact", 2, stored_at=clock.now - 60)
    cache.set("old", 3, stored_at=clock.now - 61)
    cache.flush()
    for reader in (cache, InventoryCache(60, tmp_path, clock=clock)):  # memory, then disk
        assert [reader.get(k) for k in ("young", "exact", "old")] == [1, None, None]


def test_an_expired_entry_is_not_fresh_and_is_removed_when_read(tmp_path):
    clock = Clock()
    with InventoryCache(60, tmp_path, clock=clock) as cache:
        cache.set("sig", 1)
    clock.now += 60
    later = InventoryCache(60, tmp_path, clock=clock)
    assert (later.info()["entries"], later.info()["fresh_entries"]) == (1, 0)
    assert later.get("sig") is None and cache_rows(tmp_path) == {}


def test_not_before_compares_whole_milliseconds(tmp_path):
    """A database keeps a fetch time to the millisecond: a page stored within the same millisecond as
    the floor is not newer than it."""
    clock, floor = Clock(), 1_000_000.0 - 10
    with InventoryCache(60, tmp_path, clock=clock) as writer:
        writer.set("same-ms", 1, stored_at=floor + 0.0004)
        writer.set("next-ms", 2, stored_at=floor + 0.001)
    reader = InventoryCache(60, tmp_path, clock=clock, not_before=floor)
    assert (reader.get("same-ms"), reader.get("next-ms")) == (None, 2)


@pytest.mark.parametrize(
    "envelope",
    [
        {"key": "sig", "stored_at": 1_000_000.0, "ttl": 60, "value": 1},  # not our marker
        {"greenfetch-cache": 1, "key": "sig", "stored_at": "yesterday", "ttl": 60, "value": 1},
        {"greenfetch-cache": 1, "key": "sig", "stored_at": 1_000_000.0, "ttl": 60},  # no value
    ],
)
def test_an_entry_that_is_not_a_whole_envelope_of_ours_is_a_miss_and_removed(tmp_path, envelope):
    clock = Clock()
    cache = InventoryCache(60, tmp_path, clock=clock)
    cache.set("other", 1)
    cache.close()
    write_row(tmp_path, "sig", json.dumps(envelope))
    assert cache.get("sig") is None and list(cache_rows(tmp_path)) == ["other"]


def test_a_ttl_of_0_never_reads_nor_removes_but_writes(tmp_path):
    clock = Clock()
    with InventoryCache(60, tmp_path, clock=clock) as cache:
        cache.set("sig", 1)
    fresh = InventoryCache(0, tmp_path, clock=clock)
    assert fresh.get("sig") is None and fresh.misses == 0 and "sig" in cache_rows(tmp_path)
    fresh.set("sig", 2)
    fresh.close()
    assert InventoryCache(60, tmp_path, clock=clock).get("sig") == 2


def test_clear_removes_an_earlier_versions_entry_files_and_keeps_one_not_ours(tmp_path):
    """Versions before the SQLite file kept an entry per file (40 hex digits + .json, our marker
    inside): never read now, removed by ``clear``; a file of that name without the marker is kept."""
    theirs, old = tmp_path / ("a" * 40 + ".json"), tmp_path / ("b" * 40 + ".json")
    theirs.write_text('{"report": 1}')
    old.write_text(json.dumps({"greenfetch-cache": 1, "key": "k", "stored_at": 1.0, "ttl": 60, "value": 1}))
    cache = InventoryCache(60, tmp_path)
    assert cache.get("k") is None and cache.info()["earlier_version_files"] == 2
    assert cache.clear() == 1 and theirs.read_text() == '{"report": 1}' and not old.exists()


def test_an_entry_with_an_infinite_ttl_reads_back(tmp_path):
    """The Python API may keep entries forever (``ttl=math.inf``): the envelope is still JSON."""
    with InventoryCache(math.inf, tmp_path) as cache:
        cache.set("sig", [1])
    assert InventoryCache(math.inf, tmp_path).get("sig") == [1]


@pytest.mark.parametrize("uri", ["s3:///prefix", "s3://", "bucket/prefix", "S3://bucket"])
def test_an_s3_cache_uri_without_a_bucket_is_refused_naming_it(uri):
    with pytest.raises(InventoryError, match=re.escape(repr(uri))):
        parse_s3_uri(uri)


# -- files ---------------------------------------------------------------------------------------


def _rec(rtype, region, items):
    return {
        "resource_type": rtype,
        "account": "111111111111",
        "region": region,
        "items": items,
        "status": "ok",
        "error": None,
    }


def test_json_files_one_per_type_utf8(tmp_path):
    with FileSink(tmp_path, "json") as sink:
        sink.add(_rec("ec2.vpcs", "eu-west-1", [{"Tags": [{"Key": "Name", "Value": "café-сервер-東京"}]}]))
        sink.add(_rec("ec2.vpcs", "us-east-1", []))
        sink.add(_rec("iam.roles", "global", [{"RoleName": "r"}]))
        paths = sink.close()
    assert sorted(p.name for p in paths) == ["ec2.vpcs.json", "iam.roles.json"]
    raw = (tmp_path / "ec2.vpcs.json").read_bytes()
    assert "café-сервер-東京".encode() in raw  # UTF-8, not \u escapes
    assert [r["region"] for r in json.loads(raw.decode("utf-8"))] == ["eu-west-1", "us-east-1"]


def test_jsonl_streams_and_an_aborted_run_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with FileSink(tmp_path, "jsonl") as sink:
            sink.add(_rec("ec2.vpcs", "eu-west-1", [1]))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with FileSink(tmp_path, "jsonl") as sink:
        sink.add(_rec("ec2.vpcs", "eu-west-1", [1]))
        sink.add(_rec("ec2.vpcs", "us-east-1", [2]))
        (path,) = sink.close()
    assert [json.loads(line)["items"] for line in path.read_text(encoding="utf-8").splitlines()] == [[1], [2]]


def test_unwritable_output_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InventoryError, match="output directory .*file/out.* is not writable"):
        FileSink(blocker / "out")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    readonly.chmod(0o500)
    try:
        if os.access(readonly, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(InventoryError, match="not writable"):
            FileSink(readonly)
    finally:
        readonly.chmod(0o700)


# -- progress ------------------------------------------------------------------------------------


def test_progress_counts_items_and_errors_per_type_and_the_summary_names_failures():
    import io

    from greenfetch.cli._output import render_summary
    from greenfetch.cli._progress import Progress
    from greenfetch.inventory import RunSummary

    stream, clock = io.StringIO(), Clock()
    bar = Progress(enabled=True, stream=stream, interval=0.0, clock=clock)
    summary = RunSummary()
    recs = [
        _rec("ec2.vpcs", "us-east-1", [1, 2]),
        {**_rec("ec2.vpcs", "eu-west-1", []), "status": "throttled", "error": "ec2.DescribeVpcs: Throttling"},
        _rec("iam.roles", "global", [1]),
    ]
    for rec in recs:
        bar.record(rec)
        summary.add(rec, calls=1)
    summary.accounts_failed["999999999999"] = "cannot assume ...: AccessDenied"
    bar.close()
    assert "ec2.vpcs: 2 items, 1 errors" in stream.getvalue()
    text = render_summary(summary.to_dict())
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines()[1:3]}
    assert rows == {"ec2.vpcs": ["2", "1"], "iam.roles": ["1", "0"]}
    assert "0 ok, 1 failed" in text and "account 999999999999: cannot assume" in text
    assert "3 fetches, 3 calls, 0 from cache, 1 throttled" in text
    assert summary.failed
