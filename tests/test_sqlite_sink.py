"""The SQLite sink on real files: schema, appends, the ``latest`` view, strict JSON, a shard given twice,
foreign files, a run SIGKILLed mid-way (a real ``greenfetch inventory`` on the loopback server), the same
database from ``--processes 2`` and from ``--broker`` (a real redis-server and ``greenfetch worker``), 100,000
resources in bounded memory, and the real ``nu`` reading the file with ``query db``."""

import contextlib
import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from greenfetch.inventory import InventoryError, SQLiteSink, open_sink
from greenfetch.inventory._sinks import FileSink
from greenfetch.testing import RedisServer, inventory_server, start_worker, stop_processes

ROOT = Path(__file__).resolve().parents[1]
NU = ROOT / ".nu" / "node_modules" / "@nushell" / "linux-x64" / "bin" / "nu"


def rec(rtype, items, account="111111111111", region="us-east-1", status="ok", error=None):
    return {
        "resource_type": rtype,
        "account": account,
        "region": region,
        "items": items,
        "status": status,
        "error": error,
    }


def vpcs(*ids, **extra):
    return [{"VpcId": i, "CidrBlock": "10.0.0.0/16", **extra} for i in ids]


def query(path, sql, *args):
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, args).fetchall()


def test_schema_is_the_contracts_with_indexes_view_and_wal(tmp_path):
    path = tmp_path / "inv.db"
    with SQLiteSink(path) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1")))
    with sqlite3.connect(path) as conn:
        cols = lambda t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]  # noqa: E731
        assert cols("runs") == ["run_id", "started_at", "finished_at", "summary"]
        assert cols("resources") == ["run_id", "resource_type", "account", "region", "resource_id", "data"]
        indexes = {
            r[0]: r[1] for r in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        }
        assert "(run_id, resource_type" in indexes["resources_run_type"]
        assert "(resource_type, resource_id)" in indexes["resources_type_id"]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = " ".join(
            str(r)
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM resources WHERE run_id = 1 AND resource_type = 'ec2.vpcs'"
            )
        )
        assert "resources_run_type" in plan
        plan = " ".join(
            str(r)
            for r in conn.execute(
                "EXPLAIN QUERY PLAN SELECT * FROM resources WHERE resource_type = 'ec2.vpcs' AND resource_id = 'x'"
            )
        )
        assert "resources_type_id" in plan


def test_each_run_appends_and_latest_is_each_resource_as_of_the_last_good_fetch(tmp_path):
    path = tmp_path / "inv.db"
    with SQLiteSink(path) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
        sink.add(rec("ec2.vpcs", vpcs("vpc-9"), region="eu-west-1"))
    second = SQLiteSink(path)
    second.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-3")))
    second.add(
        rec("ec2.vpcs", [], region="eu-west-1", status="denied", error="ec2.DescribeVpcs: AccessDenied")
    )
    second.close({"resources": {"ec2.vpcs": 2}})
    runs = query(
        path,
        "SELECT run_id, finished_at IS NOT NULL, json_extract(summary, '$.resources.\"ec2.vpcs\"') "
        "FROM runs ORDER BY run_id",
    )
    assert runs == [(1, 1, None), (2, 1, 2)]
    assert query(path, "SELECT run_id, count(*) FROM resources GROUP BY run_id") == [(1, 3), (2, 2)]
    # us-east-1 as of run 2; eu-west-1 was denied in run 2, so it stays as of run 1 (not "gone")
    assert query(path, "SELECT run_id, region, resource_id FROM latest ORDER BY region, resource_id") == [
        (1, "eu-west-1", "vpc-9"),
        (2, "us-east-1", "vpc-1"),
        (2, "us-east-1", "vpc-3"),
    ]
    third = SQLiteSink(path)  # unfinished runs do not count for latest
    third.add(rec("ec2.vpcs", vpcs("vpc-7")))
    third.abort()
    assert query(path, "SELECT finished_at FROM runs WHERE run_id = 3") == [(None,)]
    assert query(path, "SELECT count(*) FROM resources WHERE run_id = 3") == [(1,)]
    assert "vpc-7" not in {r[0] for r in query(path, "SELECT resource_id FROM latest")}


def test_data_is_strict_json_queryable_with_json_functions(tmp_path):
    path = tmp_path / "inv.db"
    odd = {
        "VpcId": "vpc-1",
        "Tags": [{"Key": "Name", "Value": "café-сервер"}],
        "Ratio": float("nan"),
        "When": __import__("datetime").datetime(2026, 1, 2, 3, 4, 5),
    }
    with SQLiteSink(path) as sink:
        sink.add(rec("ec2.vpcs", [odd]))
        sink.add(rec("dynamodb.tables", ["orders", "users"]))
    data = query(path, "SELECT data FROM resources WHERE resource_type = 'ec2.vpcs'")[0][0]
    assert json.loads(data)["Ratio"] == "nan" and "café-сервер" in data  # strict JSON, UTF-8 kept
    assert query(path, "SELECT value ->> 'Value' FROM resources, json_each(data -> 'Tags')") == [
        ("café-сервер",)
    ]
    assert query(
        path,
        "SELECT resource_id, data ->> '$' FROM resources WHERE resource_type = 'dynamodb.tables' ORDER BY 1",
    ) == [("orders", "orders"), ("users", "users")]


def test_a_record_given_twice_replaces_the_first(tmp_path):
    """A coordinator whose shard ran twice hands the same (type, account, region) again."""
    path = tmp_path / "inv.db"
    with SQLiteSink(path, batch_rows=1) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
    assert query(path, "SELECT resource_id FROM resources ORDER BY 1") == [("vpc-1",), ("vpc-2",)]
    assert query(path, "SELECT items FROM fetches") == [(2,)]


def test_bad_outputs_are_refused_before_anything_is_written(tmp_path):
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(InventoryError, match="other.db.*greenfetch did not write \\(tables: songs\\)"):
        SQLiteSink(foreign)
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database\n" * 100)
    with pytest.raises(InventoryError, match="notes.db.*is not a SQLite database"):
        SQLiteSink(text)
    assert text.read_text().startswith("hello")
    with pytest.raises(InventoryError, match="names a SQLite file but --format is jsonl"):
        open_sink(tmp_path / "x.db", "jsonl")
    assert isinstance(open_sink(tmp_path / "dir"), FileSink)
    (tmp_path / "dir").mkdir(exist_ok=True)
    assert open_sink(tmp_path / "dir", "sqlite").path == tmp_path / "dir" / "inventory.db"
    refused = SQLiteSink(tmp_path / "new.db")  # checked, but nothing written until a record or close
    refused.abort()
    assert not (tmp_path / "new.db").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--out", "x.db", "--format", "jsonl"], "--out 'x.db' names a SQLite file but --format is jsonl"),
        (["--format", "sqlite"], "--format sqlite writes a database file: give --out FILE.db"),
        (
            ["--out", "songs.db"],
            "--out 'songs.db' is a SQLite database greenfetch did not write (tables: songs)",
        ),
    ],
)
def test_cli_refuses_a_bad_sqlite_out_before_any_call(tmp_path, monkeypatch, args, message):
    from click.testing import CliRunner

    from greenfetch.cli import load_commands

    monkeypatch.chdir(tmp_path)
    with contextlib.closing(sqlite3.connect("songs.db")) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            "http://127.0.0.1:9",
            "inventory",
            "--accounts",
            "111111111111",
            "--regions",
            "us-east-1",
            "--types",
            "ec2.vpcs",
            *args,
        ],
    )
    assert out.exit_code == 2, out.output
    assert message in out.stderr and "Traceback" not in out.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["songs.db"]


# -- a run killed mid-way -----------------------------------------------------------------------------

ACCOUNTS = ",".join(f"11111111{n:04d}" for n in range(1, 9))


@pytest.fixture(scope="module")
def slow_aws():
    """The loopback AWS, each answer 0.1 s late: a run of 8 accounts x 6 regions x 3 types at
    concurrency 2 takes ~15 s, long enough to kill it mid-way."""
    with inventory_server(latency=0.1, items=4) as server:
        yield server


def _inventory_argv(url, out, regions):
    return [
        sys.executable,
        "-m",
        "greenfetch.cli",
        "--endpoint-url",
        url,
        "--region",
        "us-east-1",
        "--max-attempts",
        "1",
        "inventory",
        "--accounts",
        ACCOUNTS,
        "--role-name",
        "Reader",
        "--regions",
        regions,
        "--types",
        "ec2.vpcs,dynamodb.tables,lambda.functions",
        "--out",
        str(out),
        "--cache-ttl",
        "0",
        "--concurrency",
        "2",
        "--progress",
    ]


def _env():
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_") or k == "GREENFETCH_CACHE_DIR"
    }
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONPATH": str(ROOT)})
    return env  # the session's cache directory kept: every fresh page is cached, even with --cache-ttl 0


def test_a_killed_run_leaves_earlier_runs_intact_and_itself_unfinished(slow_aws, tmp_path):
    path = tmp_path / "inv.db"
    first = subprocess.run(
        _inventory_argv(slow_aws.url, path, "us-east-1"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    everything = "SELECT run_id, resource_type, account, region, resource_id, data FROM resources"
    before = query(path, everything + " ORDER BY 2, 3, 4, 5")
    assert len(before) == 8 * 3 * 4
    proc = subprocess.Popen(
        _inventory_argv(slow_aws.url, path, "us-east-1,us-east-2,us-west-1,us-west-2,eu-west-1,eu-west-2"),
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        progress, deadline = b"", time.monotonic() + 60
        while b"fetches" not in progress:  # the progress line: it has fetched something
            ready, _, _ = select.select([proc.stderr], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"no progress within 60 s: {progress!r}"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"the run ended before it reported progress: {progress!r}"
            progress += chunk
        while not query(path, "SELECT count(*) FROM fetches WHERE run_id = 2")[0][0]:  # a batch committed
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.stderr.close()
    assert query(path, "PRAGMA integrity_check") == [("ok",)]
    assert query(path, "SELECT run_id, finished_at IS NULL FROM runs ORDER BY run_id") == [(1, 0), (2, 1)]
    assert query(path, everything + " WHERE run_id = 1 ORDER BY 2, 3, 4, 5") == before
    fetched = query(path, "SELECT count(*) FROM fetches WHERE run_id = 2")[0][0]
    assert 0 < fetched < 8 * 3 * 6
    # every fetch row that made it has all of its resources: no half-written fetch
    assert query(
        path,
        "SELECT count(*) FROM fetches AS f WHERE run_id = 2 AND items != (SELECT count(*) FROM "
        "resources AS r WHERE r.run_id = 2 AND r.resource_type = f.resource_type AND "
        "r.account = f.account AND r.region = f.region)",
    ) == [(0,)]
    # the unfinished run is skipped by default: diff compares run 1 with the next finished one
    third = subprocess.run(
        _inventory_argv(slow_aws.url, path, "us-east-1"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert third.returncode == 0, third.stderr
    diff = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", "diff", str(path), "-o", "json"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert diff.returncode == 0, diff.stderr
    assert json.loads(diff.stdout) == []
    assert diff.stderr.startswith("run 1 (") and "-> run 3 (" in diff.stderr and "96 unchanged" in diff.stderr


# -- --processes and --broker: the parent or the coordinator writes the file -----------------------------


def _fetched(path):
    return query(path, "SELECT resource_type, account, region, status, items FROM fetches ORDER BY 1, 2, 3")


def _resources(path):
    return query(
        path, "SELECT resource_type, account, region, resource_id FROM resources ORDER BY 1, 2, 3, 4"
    )


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (scripts/install-redis)"
)
def test_processes_and_broker_runs_write_the_same_database_as_a_local_run(moto_server, tmp_path):
    from greenfetch import Config, Engine, Request
    from greenfetch.inventory import assume_role

    accounts = ["555000001411", "555000001412", "555000001413"]
    engine = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}, environ={}))
    for n, account in enumerate(accounts):
        creds = assume_role(engine, account, "Reader")
        made = engine.batch_requests(
            [
                Request(
                    "ec2", "CreateVpc", {"CidrBlock": f"10.{n}.0.0/16"}, region="eu-west-1", credentials=creds
                ),
                Request("sqs", "CreateQueue", {"QueueName": f"q-{n}"}, region="us-east-1", credentials=creds),
            ],
            2,
        )
        assert all(r.ok for r in made)
    engine.close()
    redis = RedisServer(tmp_path)
    env = {
        **_env(),
        "GREENFETCH_BROKER_URL": redis.url,
        "GREENFETCH_REDELIVER_AFTER": "20s",
        "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    cli = [sys.executable, "-m", "greenfetch.cli"]
    worker = None
    try:
        worker = start_worker(env, tmp_path / "worker.log", name="sqlite", concurrency=4)
        common = ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "2"]
        args = [
            "inventory",
            "--accounts",
            ",".join(accounts),
            "--role-name",
            "Reader",
            "--regions",
            "us-east-1,eu-west-1",
            "--types",
            "ec2.vpcs,sqs.queues,iam.roles",
            "--cache-ttl",
            "0",
            "--no-progress",
        ]
        local = {k: v for k, v in env.items() if k != "GREENFETCH_BROKER_URL"}
        runs = {"local": (local, []), "processes": (local, ["--processes", "2"]), "broker": (env, [])}
        for name, (run_env, extra) in runs.items():
            out = subprocess.run(
                [*cli, *common, *extra, *args, "--out", str(tmp_path / name / "inventory.db")],
                env=run_env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert out.returncode == 0, (name, out.stderr)
    finally:
        stop_processes([worker] if worker is not None else [])
        redis.close()
    dbs = {name: tmp_path / name / "inventory.db" for name in runs}
    assert len(_fetched(dbs["local"])) == 3 * (
        2 * 2 + 1
    )  # (vpcs, queues) x 2 regions + iam.roles, per account
    assert _resources(dbs["local"]) and {r[3] for r in _fetched(dbs["local"])} == {"ok"}
    for name in ("processes", "broker"):
        assert _fetched(dbs[name]) == _fetched(dbs["local"]), name
        assert _resources(dbs[name]) == _resources(dbs["local"]), name
        assert query(dbs[name], "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL") == [(1,)]
    assert sorted(p.name for p in (tmp_path / "broker").iterdir() if not p.name.startswith(".")) == [
        "inventory.db"
    ]


# -- 100,000 resources in bounded memory --------------------------------------------------------------

_BULK = textwrap.dedent("""
    import greenfetch, json, resource, sys, tracemalloc
    from greenfetch.inventory import SQLiteSink

    def records():
        for n in range(1000):  # 1,000 fetches of 100 resources, ~1 KB each: ~100 MB of JSON in all
            yield {"resource_type": "ec2.instances", "account": f"{n:012d}", "region": "us-east-1",
                   "status": "ok", "error": None,
                   "items": [{"InstanceId": f"i-{n:05d}{k:03d}", "Tags": [{"Key": "Name", "Value": "x" * 900}],
                              "State": {"Name": "running"}} for k in range(100)]}

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    with SQLiteSink(sys.argv[1]) as sink:
        for rec in records():
            sink.add(rec)
    print(json.dumps({"traced_peak": tracemalloc.get_traced_memory()[1], "baseline_kb": baseline,
                      "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
""")


@pytest.mark.slow
def test_100000_resources_are_written_in_bounded_memory(tmp_path):
    path = tmp_path / "bulk.db"
    out = subprocess.run(
        [sys.executable, "-c", _BULK, str(path)], env=_env(), capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    mem = json.loads(out.stdout)
    assert query(path, "SELECT count(*), count(DISTINCT resource_id), sum(length(data)) FROM resources")[0][
        :2
    ] == (100_000, 100_000)
    assert query(path, "SELECT sum(length(data)) FROM resources")[0][0] > 90_000_000
    assert mem["traced_peak"] < 20_000_000, mem  # Python objects: a batch, not the run (~100 MB of JSON)
    assert mem["maxrss_kb"] - mem["baseline_kb"] < 60_000, (
        mem
    )  # the process as a whole, SQLite's cache included


# -- the real nu ----------------------------------------------------------------------------------------


@pytest.mark.nu
@pytest.mark.skipif(not NU.exists(), reason="nu is not installed: run scripts/install-nu (scripts/test does)")
def test_nu_reads_the_file_with_query_db(tmp_path):
    path = tmp_path / "inventory.db"
    with SQLiteSink(path) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2", Tags=[{"Key": "Name", "Value": "café"}])))
        sink.add(rec("ec2.vpcs", vpcs("vpc-3"), account="222222222222"))
    script = (
        f"open '{path}' | query db \"select account, count(*) as n, max(data ->> '$.Tags[0].Value') as tag "
        'from latest group by account order by account" | to json --raw'
    )
    out = subprocess.run(
        [str(NU), "-n", "--no-std-lib", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_env(), "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [
        {"account": "111111111111", "n": 2, "tag": "café"},
        {"account": "222222222222", "n": 1, "tag": None},
    ]
