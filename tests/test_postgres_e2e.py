"""PostgreSQL against SQLite on the same inventory, with real parts: moto's server as AWS, a throwaway
PostgreSQL cluster, redis-server and real ``greenfetch worker`` processes.

- docs/inventory.md's ten queries give the same answers in SQLite and in PostgreSQL for the same two runs
  (two real inventories into SQLite, copied row for row into PostgreSQL);
- ``greenfetch diff postgresql://...`` prints what ``greenfetch diff FILE.db`` prints for them;
- ``inventory --broker --out postgresql://...`` with two workers, one SIGKILLed mid-shard, writes every
  (type, account, region) exactly once and the rows a local run writes into SQLite.

Account ids start with 5559 so they never collide with other modules sharing the moto server.
"""

import contextlib
import datetime
import decimal
import json
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "psycopg", reason="the postgres extra is not installed: pip install 'greenfetch[postgres]'"
)

from click.testing import CliRunner  # noqa: E402

from greenfetch import Config, Engine, Request  # noqa: E402
from greenfetch.cli import load_commands  # noqa: E402
from greenfetch.inventory import InventoryDB, PostgresSink, assume_role  # noqa: E402
from greenfetch.testing import RedisServer, wait_until  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _every_type import ROLE, seed_every_type  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "555900001401"
# what the ten queries and the diff look at (instances, security groups, buckets, volumes, functions,
# tags on a VPC, a new queue) and a global type
TYPES = (
    "ec2.instances,ec2.security_groups,s3.buckets,ec2.volumes,lambda.functions,ec2.vpcs,sqs.queues,iam.roles"
)


def _inventory(moto_server, account, types, out, *extra):
    result = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            moto_server.url,
            "--region",
            "us-east-1",
            "--max-attempts",
            "3",
            "inventory",
            "--accounts",
            account,
            "--role-name",
            ROLE,
            "--regions",
            "us-east-1",
            "--types",
            types,
            "--out",
            str(out),
            "--cache-ttl",
            "0",
            "--concurrency",
            "8",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return result


def _copy_into_postgres(path, url):
    """Every run of the SQLite file into PostgreSQL through PostgresSink, record by record, with the
    file's times: the same runs in both databases."""
    import psycopg

    with InventoryDB(path) as db:
        for run in db.runs():
            sink = PostgresSink(url)
            sink.started_at = datetime.datetime.fromisoformat(
                run["started_at"].replace("Z", "+00:00")
            ).timestamp()
            fetches = db.conn.execute(
                "SELECT resource_type, account, region, status, error FROM fetches "
                "WHERE run_id = ? ORDER BY 1, 2, 3",
                (run["run_id"],),
            ).fetchall()
            for rtype, account, region, status, error in fetches:
                items = [
                    json.loads(d)
                    for (d,) in db.conn.execute(
                        "SELECT data FROM resources WHERE run_id = ? AND resource_type = ? AND account = ? AND region = ? "
                        "ORDER BY rowid",
                        (run["run_id"], rtype, account, region),
                    )
                ]
                sink.add(
                    {
                        "resource_type": rtype,
                        "account": account,
                        "region": region,
                        "items": items,
                        "status": status,
                        "error": error,
                    }
                )
            sink.close(run["summary"])
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(
                    "UPDATE runs SET finished_at = %s WHERE run_id = %s", (run["finished_at"], sink.run_id)
                )
                assert sink.run_id == run["run_id"]


@pytest.fixture(scope="module")
def two_runs(moto_server, postgres_server, tmp_path_factory):
    """One resource of every type (an open security group, a public bucket, a tagged instance among
    them), inventoried twice into SQLite with a new queue and a new tag in between; the same two runs
    copied into PostgreSQL."""
    engine = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16, "max_attempts": 2},
            environ={},
        )
    )
    call = seed_every_type(engine, ACCOUNT)
    path = tmp_path_factory.mktemp("pg-every") / "inventory.db"
    _inventory(moto_server, ACCOUNT, TYPES, path)
    call("sqs", "CreateQueue", {"QueueName": "between-runs"})
    vpc = call("ec2", "DescribeVpcs", {})["Vpcs"][0]["VpcId"]
    call("ec2", "CreateTags", {"Resources": [vpc], "Tags": [{"Key": "team", "Value": "data"}]})
    _inventory(moto_server, ACCOUNT, TYPES, path)
    engine.close()
    url = postgres_server.create_database("e2e_every")
    _copy_into_postgres(path, url)
    return path, url


def _documented(heading, lang="sql"):
    doc = (ROOT / "docs" / "inventory.md").read_text(encoding="utf-8")
    section = doc[doc.index(heading) :]
    section = section[: re.search(r"\n##? ", section[1:]).start() + 1]
    return re.findall(rf"```{lang}\n(.*?)```", section, re.S)


def _plain(value):
    """One value as both databases can give it: booleans as 0/1, times as the SQLite sink's text."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def test_the_ten_queries_answer_the_same_in_sqlite_and_postgresql(two_runs):
    import psycopg

    path, url = two_runs
    sqlite_queries = _documented("### Ten queries, in SQL and in Nushell")
    pg_queries = _documented("### Ten queries in PostgreSQL")
    assert len(sqlite_queries) == len(pg_queries) == 10
    with contextlib.closing(sqlite3.connect(path)) as lite, psycopg.connect(url) as pg:
        instance = lite.execute(
            "SELECT resource_id FROM latest WHERE resource_type = 'ec2.instances'"
        ).fetchone()[0]
        for n, (lite_sql, pg_sql) in enumerate(zip(sqlite_queries, pg_queries, strict=True), 1):
            want = lite.execute(lite_sql.replace("i-0abc1234567890def", instance)).fetchall()
            got = pg.execute(pg_sql.replace("i-0abc1234567890def", instance)).fetchall()
            assert want, f"query {n}: the estate has nothing for it"
            plain = sorted(tuple(_plain(v) for v in row) for row in got)
            assert plain == sorted(want), (n, pg_sql)
        failed = "select resource_type, account, region, status, error from fetches where run_id = 2 and status != 'ok'"
        assert pg.execute(failed).fetchall() == lite.execute(failed).fetchall()


def test_diff_over_postgresql_prints_what_diff_over_sqlite_prints(two_runs):
    path, url = two_runs
    runner = CliRunner()
    for extra in (
        [],
        ["-o", "json"],
        ["-o", "jsonl"],
        ["--type", "sqs", "-o", "json"],
        ["--from", "1", "--to", "2"],
        ["--from", "2", "--to", "1", "-o", "jsonl"],
    ):
        lite = runner.invoke(load_commands(), ["diff", str(path), *extra])
        pg = runner.invoke(load_commands(), ["diff", url, *extra])
        assert lite.exit_code == pg.exit_code == 0, (extra, lite.output, pg.output)
        assert pg.stdout == lite.stdout, extra
        assert pg.stderr == lite.stderr, extra
    changes = json.loads(runner.invoke(load_commands(), ["diff", url, "-o", "json"]).stdout)
    assert {(c["change"], c["resource_type"]) for c in changes} == {
        ("added", "sqs.queues"),
        ("changed", "ec2.vpcs"),
    }
    bad = runner.invoke(load_commands(), ["diff", url, "--to", "9"])
    assert bad.exit_code == 2 and "--to 9: no such run in postgresql://postgres:***@127.0.0.1" in bad.stderr


# -- workers write directly ---------------------------------------------------------------------------------

BROKER_ACCOUNTS = [f"55590000{n:04d}" for n in range(1, 7)]
BROKER_TYPES = "ec2.vpcs,sqs.queues,sns.topics,iam.roles"
BROKER_REGIONS = "us-east-1,eu-west-1"


@pytest.fixture(scope="module")
def seeded(moto_server):
    engine = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16}, environ={}
        )
    )
    for n, account in enumerate(BROKER_ACCOUNTS):
        creds = assume_role(engine, account, ROLE)
        calls = [
            Request(
                "ec2", "CreateVpc", {"CidrBlock": f"10.{n}.0.0/16"}, region="eu-west-1", credentials=creds
            ),
            Request("sqs", "CreateQueue", {"QueueName": f"q-{n}"}, region="us-east-1", credentials=creds),
            Request("sns", "CreateTopic", {"Name": f"t-{n}"}, region="eu-west-1", credentials=creds),
        ]
        assert all(r.ok for r in engine.batch_requests(calls, 4))
    engine.close()
    return ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "2"]


def _broker_args(out):
    return [
        "inventory",
        "--accounts",
        ",".join(BROKER_ACCOUNTS),
        "--role-name",
        ROLE,
        "--regions",
        BROKER_REGIONS,
        "--types",
        BROKER_TYPES,
        "--out",
        out,
        "--cache-ttl",
        "0",
        "--no-progress",
    ]


def _value(client, key):
    kind = client.type(key).decode()
    read = {
        "string": client.get,
        "list": lambda k: client.lrange(k, 0, -1),
        "hash": client.hgetall,
        "set": client.smembers,
        "zset": lambda k: client.zrange(k, 0, -1),
    }.get(kind)
    return [key, read(key) if read else kind]


@pytest.mark.slow
def test_workers_write_postgresql_directly_one_sigkilled_every_scope_once(
    seeded, postgres_server, tmp_path, monkeypatch
):
    import shutil
    import subprocess

    import psycopg

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    from test_distributed import PASSWORD as REDIS_PASSWORD
    from test_distributed import Workers

    local = tmp_path / "local.db"
    CliRunner().invoke(load_commands(), [*seeded, *_broker_args(str(local))])  # also warms moto's backends
    local_pg = postgres_server.create_database("e2e_local")  # a local run into PostgreSQL, no broker
    direct = CliRunner().invoke(load_commands(), [*seeded, *_broker_args(local_pg)])
    assert direct.exit_code == 0, direct.output
    assert (
        f"wrote postgresql://postgres:***@127.0.0.1:{postgres_server.port}/e2e_local (run 1)" in direct.stderr
    )
    assert postgres_server.password not in direct.output
    url = postgres_server.create_database("e2e_broker")
    monkeypatch.setenv("PGPASSWORD", postgres_server.password)  # the workers' own credential
    monkeypatch.setenv("GREENFETCH_REDELIVER_AFTER", "6s")
    redis = RedisServer(tmp_path, password=REDIS_PASSWORD)
    workers = Workers(tmp_path, redis.url)
    try:
        first = workers.start("a", concurrency=1)
        env = {**workers.env(), "GREENFETCH_REDELIVER_AFTER": "6s"}
        env.pop("PGPASSWORD")  # the coordinator's password is in its URL (and must never reach the broker)
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "greenfetch.cli", *seeded, *_broker_args(url)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        workers.procs.append(coordinator)  # type: ignore[arg-type]

        def started_by_first() -> bool:
            return any(
                v.decode().endswith(f":{first.pid}")
                for key in redis.client.scan_iter("greenfetch:run:*:started")
                for v in redis.client.hgetall(key).values()
            )

        wait_until(started_by_first, 60, "worker a to start a shard")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        (started,) = redis.client.scan_iter("greenfetch:run:*:started")
        pending = started.decode().replace(":started", ":pending")
        in_flight = [
            k
            for k, v in redis.client.hgetall(started).items()
            if v.decode().endswith(f":{first.pid}") and redis.client.sismember(pending, k)
        ]
        assert in_flight, "worker a finished its shard before the kill; nothing to redeliver"
        workers.start("b", concurrency=2)
        with psycopg.connect(
            url, autocommit=True
        ) as watch:  # the workers write the rows, not the coordinator
            wait_until(
                lambda: watch.execute("SELECT count(*) FROM greenfetch_shards").fetchone()[0] > 0,
                60,
                "a worker to write a shard into PostgreSQL",
            )
        stdout, stderr = coordinator.communicate(timeout=120)
        assert coordinator.returncode == 0, stderr
        logs = workers.text()
        broker_text = json.dumps([_value(redis.client, k) for k in redis.client.scan_iter("*")], default=str)
    finally:
        workers.stop()
        redis.stop()
    with psycopg.connect(url) as pg, contextlib.closing(sqlite3.connect(local)) as lite:
        assert pg.execute("SELECT run_id, finished_at IS NOT NULL FROM runs").fetchall() == [(1, True)]
        scopes = pg.execute(
            "SELECT resource_type, account, region, status, items FROM fetches ORDER BY 1, 2, 3"
        ).fetchall()
        assert (
            scopes
            == lite.execute(
                "SELECT resource_type, account, region, status, items FROM fetches ORDER BY 1, 2, 3"
            ).fetchall()
        )
        assert len(scopes) == len(BROKER_ACCOUNTS) * (3 * 2 + 1)  # 3 regional types x 2 regions + iam.roles
        rows = "SELECT resource_type, account, region, resource_id, data::text FROM resources ORDER BY 1, 2, 3, 4"
        got = [(t, a, r, i, json.loads(d)) for t, a, r, i, d in pg.execute(rows).fetchall()]
        want = [
            (t, a, r, i, json.loads(d)) for t, a, r, i, d in lite.execute(rows.replace("data::text", "data"))
        ]
        assert got == want and len({g[:4] for g in got}) == len(got)  # every resource once, as the local run
        with psycopg.connect(local_pg) as alone:
            assert [(t, a, r, i, json.loads(d)) for t, a, r, i, d in alone.execute(rows).fetchall()] == want
        assert pg.execute("SELECT count(*) FROM greenfetch_shards").fetchone() == (0,)  # the bookkeeping went
    assert "accounts: 6 ok, 0 failed" in stderr
    assert int(stderr.split(" ran more than once")[0].rsplit("; ", 1)[1]) >= len(in_flight)
    for text in (logs, stdout, stderr, broker_text):
        assert postgres_server.password not in text and REDIS_PASSWORD not in text
