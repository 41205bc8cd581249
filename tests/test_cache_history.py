"""The inventory cache never rewrites history: real runs of ``greenfetch inventory`` on moto's server over
HTTP (and the inventory loopback server), each with its own cache directory, then ``greenfetch diff``.

The rule under test (docs/inventory.md, "The cache"): every fetch records when its page was fetched; a
fresh page is always cached (``--cache-ttl 0`` only stops reads); a run into a database never serves a
page fetched at or before the newest fetch the database records; ``diff`` never compares a page no newer
than the one it is compared with; cache keys include the endpoint.

Account ids start with 5558 so they never collide with other modules sharing the moto server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from _cache_rows import cache_rows
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import InventoryDB, SQLiteSink, assume_role
from greenfetch.inventory._rows import utc_now
from greenfetch.inventory._shard import DirectoryShardSink, Shard, run_shard
from greenfetch.inventory._sqlite_schema import APPLICATION_ID, SCHEMA_VERSION
from greenfetch.testing import RedisServer, inventory_server, start_worker, stop_processes

ROLE = "InventoryReader"
TYPES = "sns.topics,sqs.queues"


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(
        Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 8}, environ={})
    )
    yield eng
    eng.close()


def _caller(engine, account):
    creds = assume_role(engine, account, ROLE)
    assert creds is not None

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region="us-east-1", credentials=creds))
        assert result.ok, result.error
        return result.result

    return call


def _inventory(moto_server, account, cache, *args, out=None):
    """``greenfetch inventory`` in this process, with ``cache`` as GREENFETCH_CACHE_DIR; returns the result."""
    cmd = [
        "--endpoint-url",
        moto_server.url,
        "--region",
        "us-east-1",
        "inventory",
        "--accounts",
        account,
        "--role-name",
        ROLE,
        "--regions",
        "us-east-1",
        "--types",
        TYPES,
        "--no-progress",
        "-c",
        "4",
        *args,
    ]
    if out is not None:
        cmd += ["--out", str(out)]
    result = CliRunner().invoke(load_commands(), cmd, env={"GREENFETCH_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    return result


def _diff(path, *args):
    result = CliRunner().invoke(load_commands(), ["diff", str(path), "-o", "json", *map(str, args)])
    assert result.exit_code == 0, result.output
    return {
        (c["change"], c["resource_id"].rsplit(":", 1)[-1].rsplit("/", 1)[-1])
        for c in json.loads(result.stdout)
    }


def _summary(path, run_id):
    with InventoryDB(path) as db:
        return next(r["summary"] for r in db.runs() if r["run_id"] == run_id)


def _query(path, sql, *args):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, args).fetchall()


# -- the newcomer's sequence -------------------------------------------------------------------------


def test_run_change_fresh_run_default_run_gives_a_true_diff(engine, moto_server, tmp_path):
    """Run (default TTL), change the estate, run with --cache-ttl 0, run with the default: the last
    run must not serve the first run's pages (it did: the deleted topic came back as added and the new
    queue was reported removed)."""
    account, cache, db = "555800000001", tmp_path / "cache", tmp_path / "inv.db"
    call = _caller(engine, account)
    topic = call("sns", "CreateTopic", {"Name": "gone-soon"})["TopicArn"]
    call("sqs", "CreateQueue", {"QueueName": "first"})
    _inventory(moto_server, account, cache, out=db)
    call("sns", "DeleteTopic", {"TopicArn": topic})
    call("sqs", "CreateQueue", {"QueueName": "second"})
    _inventory(moto_server, account, cache, "--cache-ttl", "0", out=db)
    _inventory(moto_server, account, cache, out=db)

    assert _diff(db) == set()  # run 2 -> 3: nothing changed in between
    assert _diff(db, "--from", 1, "--to", 3) == {("removed", "gone-soon"), ("added", "second")}
    assert _diff(db, "--from", 1, "--to", 2) == {("removed", "gone-soon"), ("added", "second")}
    third = _summary(db, 3)
    assert third["cached"] == 0 and third["calls"] >= 2 and third["cached_fetched_at"] is None


def test_a_second_run_into_a_database_within_the_ttl_is_fresh(engine, moto_server, tmp_path):
    account, cache, db = "555800000002", tmp_path / "cache", tmp_path / "inv.db"
    call = _caller(engine, account)
    call("sqs", "CreateQueue", {"QueueName": "q"})
    _inventory(moto_server, account, cache, out=db)
    call("sqs", "CreateQueue", {"QueueName": "added-between"})
    second = _inventory(moto_server, account, cache, out=db)  # well within the default hour

    assert _summary(db, 2)["cached"] == 0 and _summary(db, 2)["calls"] >= 2
    assert "0 from cache" in second.stderr
    assert _diff(db) == {("added", "added-between")}
    times = _query(
        db,
        "SELECT a.fetched_at, b.fetched_at FROM fetches a JOIN fetches b USING "
        "(resource_type, account, region) WHERE a.run_id = 1 AND b.run_id = 2",
    )
    assert len(times) == 2 and all(first < later for first, later in times)


def test_pages_newer_than_the_database_are_served_and_marked(engine, moto_server, tmp_path):
    """A page fetched after the database's newest fetch (here by a run to stdout) may be served into
    it: the fetch keeps its own time, the runs row and the summary line say so, and diff compares it
    as what it is, a page newer than run 1's."""
    account, cache, db = "555800000003", tmp_path / "cache", tmp_path / "inv.db"
    call = _caller(engine, account)
    call("sqs", "CreateQueue", {"QueueName": "q"})
    _inventory(moto_server, account, cache, out=db)
    call("sqs", "CreateQueue", {"QueueName": "seen-by-stdout"})
    _inventory(moto_server, account, cache, "--cache-ttl", "0")  # to stdout: fetched afresh, and cached
    call("sqs", "CreateQueue", {"QueueName": "after-the-cache"})
    served = _inventory(moto_server, account, cache, out=db)

    summary = _summary(db, 2)
    assert summary["cached"] == 2 and summary["calls"] == 0
    (started,) = _query(db, "SELECT started_at FROM runs WHERE run_id = 2")[0]
    fetched = [t for (t,) in _query(db, "SELECT fetched_at FROM fetches WHERE run_id = 2")]
    assert len(fetched) == 2 and all(t < started for t in fetched)  # older than the run: the cache's age
    assert summary["cached_fetched_at"] == min(fetched)
    assert (
        f"2 from cache (the oldest fetched {min(fetched)}; --cache-ttl 0 fetches every page afresh)"
        in served.stderr
    )
    assert _diff(db) == {("added", "seen-by-stdout")}  # true as of the page's time, and not "after-the-cache"


def test_cache_ttl_0_fetches_afresh_and_still_writes_the_cache(engine, moto_server, tmp_path):
    account, cache = "555800000004", tmp_path / "cache"
    _caller(engine, account)("sqs", "CreateQueue", {"QueueName": "q"})
    fresh = _inventory(moto_server, account, cache, "--cache-ttl", "0")
    assert "0 from cache" in fresh.stderr and len(cache_rows(cache)) >= 2
    again = _inventory(moto_server, account, cache)  # the default TTL reads what the fresh run wrote
    assert "2 fetches, 0 calls, 2 from cache" in again.stderr
    assert sorted(again.stdout.splitlines()) == sorted(fresh.stdout.splitlines()) and "/q" in again.stdout


def test_help_shows_the_default_ttl():
    result = CliRunner().invoke(load_commands(), ["inventory", "--help"], terminal_width=200)
    text = " ".join(result.output.split())
    assert "[default: 1h; GREENFETCH_CACHE_TTL]" in text and "0 fetches every page afresh" in text


# -- diff -----------------------------------------------------------------------------------------------


def _rec(rtype, items, region="us-east-1"):
    return {
        "resource_type": rtype,
        "account": "111111111111",
        "region": region,
        "items": items,
        "status": "ok",
        "error": None,
    }


def test_diff_leaves_out_a_page_no_newer_than_the_earlier_runs_and_says_so(tmp_path):
    """Two runs into one database at once can serve each other's pages: run 2's us-east-1 page is run 1's
    (same time), its eu-west-1 page older still. Those are not compared, and one line says why and
    names the flag that gives a true comparison; the fresh us-west-2 page is compared."""
    db = tmp_path / "inv.db"
    t0 = 1_800_000_000.0
    with SQLiteSink(db) as first:
        first.add(_rec("sns.topics", [{"TopicArn": "arn:aws:sns:us-east-1:111111111111:a"}]), t0 + 10)
        first.add(
            _rec("sns.topics", [{"TopicArn": "arn:aws:sns:eu-west-1:111111111111:b"}], "eu-west-1"), t0 + 10
        )
        first.add(
            _rec("sns.topics", [{"TopicArn": "arn:aws:sns:us-west-2:111111111111:c"}], "us-west-2"), t0 + 10
        )
    with SQLiteSink(db) as second:
        second.add(_rec("sns.topics", []), t0 + 10)
        second.add(
            _rec("sns.topics", [{"TopicArn": "arn:aws:sns:eu-west-1:111111111111:old"}], "eu-west-1"), t0
        )
        second.add(_rec("sns.topics", [], "us-west-2"), t0 + 20)
    result = CliRunner().invoke(load_commands(), ["diff", str(db), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert [(c["change"], c["region"]) for c in json.loads(result.stdout)] == [("removed", "us-west-2")]
    lines = result.stderr.splitlines()
    assert "0 added, 1 removed, 0 changed, 0 unchanged, 0 not compared" in lines[0]
    assert "3 not compared as their pages came from the cache" in lines[0]
    assert lines[1] == (
        "warning: run 2 took 2 fetches from the cache, pages no newer than run 1's (the oldest "
        "fetched 2027-01-15T08:00:00.000Z); they are not compared; for a true comparison, run "
        "`greenfetch inventory --cache-ttl 0 --out FILE.db` (every page fetched afresh)"
    )


# -- databases written before fetch times ------------------------------------------------------------

_V1 = """
CREATE TABLE runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT, summary TEXT);
CREATE TABLE resources (run_id INTEGER NOT NULL REFERENCES runs(run_id), resource_type TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, resource_id TEXT NOT NULL, data TEXT NOT NULL);
CREATE INDEX resources_run_type ON resources (run_id, resource_type, account, region, resource_id);
CREATE INDEX resources_type_id ON resources (resource_type, resource_id);
CREATE TABLE fetches (run_id INTEGER NOT NULL REFERENCES runs(run_id), resource_type TEXT NOT NULL,
    account TEXT NOT NULL, region TEXT NOT NULL, status TEXT NOT NULL, error TEXT, items INTEGER NOT NULL,
    PRIMARY KEY (run_id, resource_type, account, region)) WITHOUT ROWID;
CREATE VIEW latest AS
    WITH newest AS (
        SELECT f.resource_type, f.account, f.region, MAX(f.run_id) AS run_id
        FROM fetches AS f JOIN runs AS r ON r.run_id = f.run_id
        WHERE r.finished_at IS NOT NULL AND f.status = 'ok'
        GROUP BY f.resource_type, f.account, f.region)
    SELECT res.run_id, res.resource_type, res.account, res.region, res.resource_id, res.data
    FROM newest JOIN resources AS res
      ON res.run_id = newest.run_id AND res.resource_type = newest.resource_type
     AND res.account = newest.account AND res.region = newest.region;
"""


def _version_1_database(path, account, queue_urls):
    """What greenfetch wrote before schema 2: two finished runs of sqs.queues, the second one (per its
    summary) served from the cache."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.executescript(f"PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = 1; {_V1}")
        for run_id, (urls, cached) in enumerate(((queue_urls, 0), (queue_urls, 1)), start=1):
            conn.execute(
                "INSERT INTO runs VALUES (?, ?, ?, ?)",
                (
                    run_id,
                    f"2026-01-0{run_id}T00:00:00.000Z",
                    f"2026-01-0{run_id}T00:01:00.000Z",
                    json.dumps({"records": 1, "cached": cached}),
                ),
            )
            conn.executemany(
                "INSERT INTO resources VALUES (?, 'sqs.queues', ?, 'us-east-1', ?, ?)",
                [(run_id, account, url, json.dumps(url)) for url in urls],
            )
            conn.execute(
                "INSERT INTO fetches VALUES (?, 'sqs.queues', ?, 'us-east-1', 'ok', NULL, ?)",
                (run_id, account, len(urls)),
            )
        conn.commit()


def test_a_version_1_database_still_diffs_and_is_migrated_by_the_next_run(engine, moto_server, tmp_path):
    account, cache, db = "555800000005", tmp_path / "cache", tmp_path / "old.db"
    _caller(engine, account)("sqs", "CreateQueue", {"QueueName": "kept"})
    kept, gone = f"{moto_server.url}/{account}/kept", f"{moto_server.url}/{account}/gone"
    _version_1_database(db, account, [kept, gone])
    before = hashlib.sha256(db.read_bytes()).hexdigest()

    old = CliRunner().invoke(load_commands(), ["diff", str(db)])
    assert old.exit_code == 0, old.output
    assert "0 added, 0 removed, 0 changed, 2 unchanged" in old.stderr
    assert (
        "warning: run 2 took 1 fetches from the cache and" in old.stderr
        and "was written before greenfetch recorded when each page was fetched" in old.stderr
    )
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before  # diff only reads

    _inventory(moto_server, account, cache, "--types", "sqs.queues", out=db)  # migrates, then appends run 3
    assert _query(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    rows = _query(
        db,
        "SELECT run_id, fetched_at IS NOT NULL FROM fetches WHERE resource_type = 'sqs.queues' "
        "ORDER BY run_id",
    )
    assert rows == [(1, 0), (2, 0), (3, 1)]
    assert _diff(db) == {("removed", "gone")}
    with InventoryDB(db) as reader:
        assert reader.fetch_times(1) == {("sqs.queues", account, "us-east-1"): None}


def test_a_run_into_an_old_database_does_not_serve_pages_from_before_its_last_run(
    engine, moto_server, tmp_path
):
    """For fetches with no time, a run counts as fetched when it finished: a cache entry written before
    that is not served into the database."""
    account, cache, db = "555800000006", tmp_path / "cache", tmp_path / "old.db"
    _caller(engine, account)("sqs", "CreateQueue", {"QueueName": "q"})
    _inventory(moto_server, account, cache, "--types", "sqs.queues")  # cached now
    _version_1_database(db, account, [])
    with contextlib.closing(sqlite3.connect(db)) as conn:  # its last run finished after the cache was written
        conn.execute("UPDATE runs SET finished_at = ? WHERE run_id = 2", (utc_now(),))
        conn.commit()
    _inventory(moto_server, account, cache, "--types", "sqs.queues", out=db)
    assert _summary(db, 3)["cached"] == 0 and _summary(db, 3)["calls"] >= 1


# -- the endpoint is part of the key (the --broker run that lost a queue) ---------------------------------


def _shard_run(url, cache, run_id, **options):
    """What a ``greenfetch worker`` does with one shard: ``run_shard`` with its own engine and cache dir,
    under the run's cache rule (``options``); returns the queue URLs and the shard's summary."""
    config = Config.resolve({"endpoint_url": url, "region": "us-east-1", "cache_dir": str(cache)}, environ={})
    engine = Engine(config)
    try:
        shard = Shard(
            run_id,
            "555800000007",
            ("sqs.queues",),
            ("us-east-1",),
            role=ROLE,
            options={"cache_ttl": 3600.0, **options},
        )
        sink = DirectoryShardSink(cache.parent / "shards")
        summary = run_shard(engine, shard, sink)
        records, _ = sink.get(run_id, shard.key)
        return records[0]["items"], summary
    finally:
        engine.close()


def test_workers_sharing_a_cache_never_serve_one_endpoints_page_for_another(tmp_path):
    """Two estates with the same account ids behind two endpoints (a test server, LocalStack, moto, a
    second loopback), and workers sharing one cache directory: the second estate's 5 queues were
    reported as the first one's 4, because the cache key left out the endpoint."""
    cache = tmp_path / "cache"
    with inventory_server(items=4) as four:
        first, _ = _shard_run(four.url, cache, "first")
    with inventory_server(items=5) as five:
        second, summary = _shard_run(five.url, cache, "second")
        again, cached = _shard_run(five.url, cache, "again")
    assert (len(first), len(second)) == (4, 5) and summary["cached"] == 0
    assert again == second and cached["cached"] == 1  # the same endpoint still shares its pages


def test_a_shard_honours_the_runs_cache_floor(tmp_path):
    """A ``--broker`` run into a database sends the floor (``cache_not_before``) with every shard: a
    worker's cached page fetched at or before it is not served, a newer one is, with its time."""
    cache = tmp_path / "cache"
    with inventory_server(items=2) as server:
        _, warm = _shard_run(server.url, cache, "warm")
        (written,) = warm["fetched_at"]
        _, at_floor = _shard_run(server.url, cache, "at", cache_not_before=written)
        _, below_floor = _shard_run(server.url, cache, "below", cache_not_before=written - 0.001)
    assert at_floor["cached"] == 0 and at_floor["fetched_at"][0] > written
    assert below_floor["cached"] == 1 and below_floor["cached_fetched_at"] == at_floor["fetched_at"][0]
    assert below_floor["fetched_at"] == at_floor["fetched_at"]  # the served page keeps its own time


def test_the_database_floor_reaches_the_fetch_executor(tmp_path):
    """``run_inventory`` gives a ``fetch`` executor (the --broker coordinator) the TTL and the
    database's newest fetch, and records each record's time as the executor reports it."""
    from greenfetch.inventory import run_inventory

    db = tmp_path / "inv.db"
    with SQLiteSink(db) as sink:
        sink.add(_rec("sqs.queues", []), 1_800_000_000.0)
    seen = {}

    def fetch(on_record, **plan):
        seen.update(plan)
        on_record(_rec("sqs.queues", ["https://queue"]), 1_800_000_100.0)
        on_record(_rec("sns.topics", []))  # an executor that cannot tell: the time it reached the sink
        from greenfetch.inventory import RunSummary

        return RunSummary()

    engine = Engine(Config.resolve({"region": "us-east-1"}, environ={}))
    try:
        run_inventory(engine, accounts="111111111111", regions="us-east-1", types=TYPES, out=db, fetch=fetch)
    finally:
        engine.close()
    assert seen["cache_not_before"] == 1_800_000_000.0 and seen["cache_ttl"] == Config().cache_ttl
    rows = dict(_query(db, "SELECT resource_type, fetched_at FROM fetches WHERE run_id = 2"))
    (started,) = _query(db, "SELECT started_at FROM runs WHERE run_id = 2")[0]
    assert rows["sqs.queues"] == "2027-01-15T08:01:40.000Z" and rows["sns.topics"] >= started


# -- a real --broker run into a database, its workers sharing one cache ------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (scripts/install-redis)"
)
def test_broker_runs_into_a_database_follow_the_same_rule(engine, moto_server, tmp_path):
    """Two ``--broker`` runs into one .db, the estate changed in between, a worker whose cache outlives
    the runs (the default TTL): the second run fetches afresh (it served the first run's pages, so
    ``diff`` said "no changes"), and the times the worker measured reach the database."""
    account, db = "555800000010", tmp_path / "inv.db"
    call = _caller(engine, account)
    topic = call("sns", "CreateTopic", {"Name": "gone-soon"})["TopicArn"]
    redis = RedisServer(tmp_path)
    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": redis.url,
        "GREENFETCH_REDELIVER_AFTER": "20s",
        "GREENFETCH_CACHE_DIR": str(tmp_path / "worker-cache"),
    }
    cli = [sys.executable, "-m", "greenfetch.cli"]
    log = tmp_path / "worker.log"
    worker = None
    try:
        worker = start_worker(env, log, name="cache", concurrency=2)
        args = [
            *cli,
            "--endpoint-url",
            moto_server.url,
            "--region",
            "us-east-1",
            "inventory",
            "--accounts",
            account,
            "--role-name",
            ROLE,
            "--regions",
            "us-east-1",
            "--types",
            TYPES,
            "--no-progress",
            "--out",
            str(db),
        ]
        coordinator_env = {**env, "GREENFETCH_CACHE_DIR": str(tmp_path / "coordinator-cache")}
        first = subprocess.run(args, env=coordinator_env, capture_output=True, text=True, timeout=120)
        assert first.returncode == 0, first.stderr + log.read_text(errors="replace")
        call("sns", "DeleteTopic", {"TopicArn": topic})
        call("sqs", "CreateQueue", {"QueueName": "second"})
        second = subprocess.run(args, env=coordinator_env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
    finally:
        stop_processes([worker] if worker is not None else [])
        redis.close()
    assert cache_rows(tmp_path / "worker-cache")  # the worker cached the pages it fetched
    assert _summary(db, 2)["cached"] == 0 and "0 from cache" in second.stderr
    assert _diff(db) == {("removed", "gone-soon"), ("added", "second")}
    times = _query(
        db,
        "SELECT a.fetched_at, b.fetched_at, r.started_at FROM fetches a JOIN fetches b USING "
        "(resource_type, account, region) JOIN runs r ON r.run_id = b.run_id "
        "WHERE a.run_id = 1 AND b.run_id = 2",
    )
    assert len(times) == 2 and all(first < started <= later for first, later, started in times)
