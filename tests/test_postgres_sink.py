"""The PostgreSQL sink on a real PostgreSQL (a throwaway cluster: ``greenfetch.testing.PostgresServer``):
the gevent hub while a query waits, the schema and its version, appends and the ``latest`` view, a batch
streaming into one open COPY, a record given twice, text PostgreSQL cannot hold, a shard delivered twice, a
run SIGKILLed mid-way, an abort with a batch in hand, a commit whose answer was lost, the server killed and
restarted mid-run, bounded memory, and bad URLs, passwords and databases through the CLI (exit 2, one line,
no password)."""

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip(
    "psycopg", reason="the postgres extra is not installed: pip install 'greenfetch[postgres]'"
)

import greenfetch  # noqa: E402,F401  (patches for gevent; conftest did already)
from greenfetch import StorageError  # noqa: E402
from greenfetch.cli import load_commands  # noqa: E402
from greenfetch.inventory import (  # noqa: E402
    InventoryError,
    PostgresDB,
    PostgresShardSink,
    PostgresSink,
    diff_runs,
    open_sink,
)
from greenfetch.inventory._postgres import SCHEMA_VERSION, public_conninfo  # noqa: E402
from greenfetch.testing import wait_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.fixture
def db(postgres_server, request):
    """A new database of this test's own; its URL (with the password)."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:50]
    return postgres_server.create_database(name)


def q(server, url, sql):
    return server.psql(sql, url.rsplit("/", 1)[1])


# -- the driver under gevent ------------------------------------------------------------------------------


def test_a_query_that_waits_does_not_stop_the_hub(db):
    """psycopg waits on its socket with its own wait functions; under greenfetch's patch they must yield
    to the hub: another greenlet keeps ticking through a pg_sleep(1)."""
    import gevent
    import psycopg

    ticks = []

    def tick():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    ticker = gevent.spawn(tick)
    with psycopg.connect(db) as conn:
        started = time.monotonic()
        conn.execute("SELECT pg_sleep(1)")
        waited = time.monotonic() - started
    ticker.kill()
    during = [t for t in ticks if started <= t <= started + waited]
    assert waited >= 1.0 and len(during) >= 40, (
        waited,
        len(during),
    )  # ~100 at 10 ms; 0 if the hub were stuck


# -- schema, appends, latest --------------------------------------------------------------------------------


def test_schema_tables_indexes_and_version(postgres_server, db):
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", Tags=[{"Key": "team", "Value": "data"}])))
    cols = q(
        postgres_server,
        db,
        "SELECT table_name, string_agg(column_name || ':' || data_type, ',' ORDER BY "
        "ordinal_position) FROM information_schema.columns WHERE table_schema = 'public' "
        "GROUP BY 1 ORDER BY 1",
    ).splitlines()
    tables = dict(line.split("|") for line in cols)
    assert tables["runs"] == (
        "run_id:bigint,started_at:timestamp with time zone,finished_at:timestamp with time zone,summary:jsonb"
    )
    assert (
        tables["resources"]
        == "run_id:bigint,resource_type:text,account:text,region:text,resource_id:text,data:jsonb"
    )
    assert tables["fetches"].startswith(
        "run_id:bigint,resource_type:text,account:text,region:text,status:text,error:text,items:integer"
    )
    assert tables["latest"] == tables["resources"]
    assert q(postgres_server, db, "SELECT version FROM greenfetch_schema") == str(SCHEMA_VERSION)
    plan = q(
        postgres_server,
        db,
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM resources WHERE run_id = 1 "
        "AND resource_type = 'ec2.vpcs'",
    )
    assert "resources_run_type" in plan
    plan = q(
        postgres_server,
        db,
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM resources WHERE "
        "resource_type = 'ec2.vpcs' AND resource_id = 'x'",
    )
    assert "resources_type_id" in plan
    plan = q(
        postgres_server,
        db,
        "SET enable_seqscan = off; EXPLAIN SELECT * FROM resources WHERE data -> 'Tags' "
        """@> '[{"Key": "team", "Value": "data"}]'""",
    )
    assert "resources_tags" in plan


def test_each_run_appends_and_latest_is_each_resource_as_of_the_last_good_fetch(postgres_server, db):
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
        sink.add(rec("ec2.vpcs", vpcs("vpc-9"), region="eu-west-1"))
    second = PostgresSink(db)
    second.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-3")))
    second.add(
        rec("ec2.vpcs", [], region="eu-west-1", status="denied", error="ec2.DescribeVpcs: AccessDenied")
    )
    second.close({"resources": {"ec2.vpcs": 2}})
    assert (
        q(
            postgres_server,
            db,
            "SELECT run_id, finished_at IS NOT NULL, summary #>> '{resources,ec2.vpcs}' "
            "FROM runs ORDER BY run_id",
        )
        == "1|t|\n2|t|2"
    )
    assert (
        q(postgres_server, db, "SELECT run_id, count(*) FROM resources GROUP BY 1 ORDER BY 1") == "1|3\n2|2"
    )
    latest = "SELECT run_id, region, resource_id FROM latest ORDER BY region, resource_id"
    assert q(postgres_server, db, latest) == "1|eu-west-1|vpc-9\n2|us-east-1|vpc-1\n2|us-east-1|vpc-3"
    third = PostgresSink(db)  # an unfinished run does not count for latest
    third.add(rec("ec2.vpcs", vpcs("vpc-7")))
    third.abort()
    assert q(postgres_server, db, "SELECT run_id FROM runs WHERE finished_at IS NULL") == "3"
    assert q(postgres_server, db, latest) == "1|eu-west-1|vpc-9\n2|us-east-1|vpc-1\n2|us-east-1|vpc-3"
    assert q(
        postgres_server, db, "SELECT data ->> 'CidrBlock' FROM resources WHERE resource_id = 'vpc-7'"
    ) == ("10.0.0.0/16")  # abort keeps what was added


def test_a_record_given_twice_replaces_the_first_even_across_batches(postgres_server, db):
    sink = PostgresSink(db, batch_rows=1)
    sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
    sink.add(rec("sqs.queues", ["https://q/1"]))
    sink.add(rec("ec2.vpcs", vpcs("vpc-3")))  # a shard that ran twice
    sink.close()
    assert q(postgres_server, db, "SELECT resource_id FROM resources ORDER BY 1") == "https://q/1\nvpc-3"
    assert (
        q(postgres_server, db, "SELECT resource_type, items FROM fetches ORDER BY 1")
        == "ec2.vpcs|1\nsqs.queues|1"
    )


def test_a_batch_streams_into_one_open_copy_and_every_batch_uses_one_connection(postgres_server, db):
    """Rows reach the server while the batch is still open (its COPY is in progress, nothing committed),
    and a run's batches share one connection. Before, the stream broke at its first row and every
    batch was sent again whole on a new connection."""
    sink = PostgresSink(db, batch_rows=300, stream_rows=50)
    backend = sink._writer.conn.info.backend_pid
    big = [{"VpcId": f"vpc-0-{k}", "Description": "d" * 300} for k in range(60)]  # ~20 KB: past libpq's 8 KB
    sink.add(rec("ec2.vpcs", big))
    copying = f"SELECT tuples_processed FROM pg_stat_progress_copy WHERE pid = {backend}"
    wait_until(
        lambda: int(q(postgres_server, db, copying) or 0) > 0, 10, "the server copying the streamed rows"
    )
    assert q(postgres_server, db, "SELECT count(*) FROM resources") == "0"  # streamed, not committed
    for n in range(1, 10):  # 600 rows: two batches commit on the way
        sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-{n}-{k}" for k in range(60))), account=f"{n:012d}"))
    assert sink._writer.conn.info.backend_pid == backend
    sink.close()
    assert q(postgres_server, db, "SELECT count(*), count(DISTINCT resource_id) FROM resources") == "600|600"
    assert q(postgres_server, db, "SELECT count(*), sum(items) FROM fetches") == "10|600"


def test_abort_keeps_the_batch_in_hand_streamed_or_not(postgres_server, db):
    """A batch far from full, partly streamed (an open COPY) and partly not, when the run stops:
    ``abort`` writes all of it, each fetch row with all its resources, and leaves the run unfinished."""
    sink = PostgresSink(db, stream_rows=50)
    sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-a{k}" for k in range(80)))))  # streamed
    sink.add(rec("ec2.vpcs", vpcs("vpc-b1", "vpc-b2"), region="eu-west-1"))  # not yet sent
    assert sink._stream is not None and sink._chunks[sink._sent :]
    sink.abort()
    assert q(postgres_server, db, "SELECT finished_at IS NULL FROM runs") == "t"
    assert (
        q(postgres_server, db, "SELECT region, items FROM fetches ORDER BY 1") == "eu-west-1|2\nus-east-1|80"
    )
    assert q(postgres_server, db, "SELECT count(*), count(DISTINCT resource_id) FROM resources") == "82|82"


class _LoseTheCommitsAnswer:
    """A TCP proxy in front of PostgreSQL that, once ``armed``, passes one COMMIT on, waits for the
    server's answer and cuts the connection instead of passing it back: the batch is committed and
    the client cannot know."""

    def __init__(self, port):
        from gevent.server import StreamServer

        self.port, self.armed, self.cut = port, False, 0
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.server.start()

    def url(self, url):
        return url.replace(f":{self.port}/", f":{self.server.server_port}/")

    def _handle(self, client, _):
        import socket

        import gevent

        upstream = socket.create_connection(("127.0.0.1", self.port))
        committing = []

        def up():
            with contextlib.suppress(OSError):  # the other side closed
                while data := client.recv(65536):
                    if self.armed and b"COMMIT\x00" in data:
                        self.armed = False
                        committing.append(True)
                    upstream.sendall(data)

        def down():
            with contextlib.suppress(OSError):
                while data := upstream.recv(65536):
                    if committing:  # the answer to the COMMIT: the server has committed
                        self.cut += 1
                        break
                    client.sendall(data)

        gevent.joinall([gevent.spawn(up), gevent.spawn(down)], count=1)
        for sock in (client, upstream):
            sock.close()


def test_a_commit_whose_answer_was_lost_is_sent_again_without_writing_twice(postgres_server, db):
    """The stream's COMMIT reaches the server, the answer never comes back: the sink cannot know
    whether the batch is in, so it sends it again on a new connection, deleting its scopes first."""
    proxy = _LoseTheCommitsAnswer(postgres_server.port)
    try:
        sink = PostgresSink(proxy.url(db), batch_rows=100, stream_rows=20)
        sink.add(rec("ec2.vpcs", vpcs("vpc-first"), account="000000000000"))  # the run's row is in
        proxy.armed = True
        for n in range(1, 5):  # 120 rows: the batch commits at the 4th record
            sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-{n}-{k}" for k in range(30))), account=f"{n:012d}"))
        sink.close()
    finally:
        proxy.server.stop()
    assert proxy.cut == 1
    assert q(postgres_server, db, "SELECT count(*), count(DISTINCT resource_id) FROM resources") == "121|121"
    assert q(postgres_server, db, "SELECT count(*), sum(items) FROM fetches") == "5|121"
    assert q(postgres_server, db, "SELECT finished_at IS NOT NULL FROM runs") == "t"


def test_nul_and_lone_surrogates_in_key_columns_become_u_fffd(postgres_server, db):
    """PostgreSQL's text holds neither: U+FFFD in their place, as in ``data``; other text as it is."""
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-\x00x", "vpc-\ud800y", "vpc-café"), account="1111\x0011"))
    assert q(postgres_server, db, "SELECT account, resource_id FROM resources ORDER BY 2") == (
        "1111\ufffd11|vpc-café\n1111\ufffd11|vpc-\ufffdx\n1111\ufffd11|vpc-\ufffdy"
    )


def test_values_jsonb_cannot_hold_are_kept_as_the_sqlite_sink_keeps_them_or_nearly(postgres_server, db):
    import datetime

    import psycopg

    item = {
        "VpcId": "vpc-1",
        "Nul": "a\x00b",
        "Text": "\\u0000",
        "Nan": float("nan"),
        "When": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
        "Café": "naïve",
        "Bytes": b"hi",
    }
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", [item, {"no": "id"}]))
    with psycopg.connect(db) as conn:
        rows = dict(conn.execute("SELECT resource_id, data FROM resources").fetchall())
    assert rows["vpc-1"] == {
        "VpcId": "vpc-1",
        "Nul": "a\ufffdb",
        "Text": "\\u0000",
        "Nan": "nan",
        "When": "2026-01-02T03:04:05+00:00",
        "Café": "naïve",
        "Bytes": "hi",
    }
    from greenfetch.inventory._rows import _resource_id, dumps_strict

    assert (
        _resource_id(None, {"no": "id"}, dumps_strict({"no": "id"})) in rows
    )  # the id the SQLite sink gives


def test_a_newer_schema_or_foreign_tables_are_refused_with_one_line(postgres_server, db):
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1")))
    q(postgres_server, db, f"UPDATE greenfetch_schema SET version = {SCHEMA_VERSION + 1}")
    for make in (PostgresSink, PostgresDB):
        with pytest.raises(
            InventoryError,
            match=rf"newer greenfetch \(schema {SCHEMA_VERSION + 1}, this one reads "
            rf"{SCHEMA_VERSION}\); upgrade greenfetch",
        ) as err:
            make(db)
        assert postgres_server.password not in str(err.value) and "\n" not in str(err.value)
    other = postgres_server.create_database("t_foreign")
    q(postgres_server, other, "CREATE TABLE runs (id int)")
    with pytest.raises(InventoryError, match="has tables greenfetch did not make \\(runs\\)"):
        PostgresSink(other)
    assert q(postgres_server, other, "SELECT to_regclass('resources') IS NULL") == "t"  # nothing was created


def test_two_sinks_creating_a_new_database_at_once_both_succeed(postgres_server, db):
    import gevent

    sinks = gevent.joinall([gevent.spawn(PostgresSink, db) for _ in range(3)], raise_error=True)
    for n, job in enumerate(sinks):
        job.value.add(rec("ec2.vpcs", vpcs(f"vpc-{n}")))
        job.value.close()
    assert q(postgres_server, db, "SELECT count(*) FROM greenfetch_schema") == "1"
    assert q(postgres_server, db, "SELECT count(*) FROM runs WHERE finished_at IS NOT NULL") == "3"


def _no_nul(value):
    """``value`` as PostgreSQL keeps it: U+FFFD for every NUL, in keys and strings."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    return value


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    records=st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),  # account: any text, NUL included
            st.lists(st.tuples(st.text(min_size=1, max_size=30), _JSON), max_size=6),
        ),
        min_size=1,
        max_size=4,
        unique_by=lambda r: r[0],
    )
)
def test_any_text_and_json_go_through_binary_copy_as_postgresql_can_hold_them(postgres_server, db, records):
    """The hand-made binary COPY rows hold whatever a record holds: the server takes every row, and
    each key column and ``data`` come back as written, NUL as U+FFFD (the one thing text cannot hold)."""
    import psycopg

    with PostgresSink(db, stream_rows=3) as sink:
        for account, items in records:
            sink.add(rec("ec2.vpcs", [{"VpcId": i, "Value": v} for i, v in items], account=account))
        run = sink.run_id
    with psycopg.connect(db) as conn:
        got = conn.execute(
            "SELECT account, resource_id, data FROM resources WHERE run_id = %s", (run,)
        ).fetchall()
        fetched = conn.execute("SELECT account, items FROM fetches WHERE run_id = %s", (run,)).fetchall()
    want = [
        (_no_nul(account), _no_nul(i), _no_nul({"VpcId": i, "Value": v}))
        for account, items in records
        for i, v in items
    ]
    key = json.dumps
    assert sorted(got, key=key) == sorted(want, key=key)
    assert sorted(fetched) == sorted((_no_nul(a), len(items)) for a, items in records)


# -- shards written by workers -----------------------------------------------------------------------------


def test_a_shard_delivered_twice_leaves_one_set_of_rows(postgres_server, db):
    sink = PostgresSink(db)
    shards = sink.shard_sink()
    spec = shards.spec()
    assert postgres_server.password not in json.dumps(spec) and "password" not in spec["conninfo"]
    first = [rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")), rec("ec2.vpcs", vpcs("vpc-8"), region="eu-west-1")]
    again = [
        rec("ec2.vpcs", vpcs("vpc-1")),
        rec("sqs.queues", ["https://q/1"]),
    ]  # eu-west-1 not fetched this time
    os.environ["PGPASSWORD"] = postgres_server.password  # a worker's own credential, never the message's
    try:
        worker = PostgresShardSink.from_spec(spec)
        worker.put("uuid", "111111111111", first, {"records": 2})
        worker.put("uuid", "111111111111", again, {"records": 2})
        worker.put(
            "uuid", "222222222222", [rec("ec2.vpcs", vpcs("vpc-5"), account="222222222222")], {"records": 1}
        )
    finally:
        del os.environ["PGPASSWORD"]
    assert shards.keys("uuid") == {"111111111111", "222222222222"}
    records, summary = shards.get("uuid", "111111111111")
    assert [(r["resource_type"], r["region"], len(r["items"])) for r in records] == [
        ("ec2.vpcs", "us-east-1", 1),
        ("sqs.queues", "us-east-1", 1),
    ] and summary == {"records": 2}
    assert shards.get("uuid", "333333333333") is None
    assert q(postgres_server, db, "SELECT account, resource_id FROM resources ORDER BY 1, 2") == (
        "111111111111|https://q/1\n111111111111|vpc-1\n222222222222|vpc-5"
    )
    shards.discard("uuid")
    sink.close()
    with pytest.raises(InventoryError, match="run 1 is over; shard 111111111111 was not written"):
        PostgresShardSink(db, 1).put(
            "uuid", "111111111111", first, {}
        )  # a late worker never changes a finished run
    assert q(postgres_server, db, "SELECT count(*) FROM resources") == "3"
    assert q(postgres_server, db, "SELECT count(*) FROM greenfetch_shards") == "0"


# -- a killed run, a restarted server -------------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import greenfetch, sys, time
    from greenfetch.inventory import PostgresSink
    sink = PostgresSink(sys.argv[1], batch_rows=50, stream_rows=20)
    for n in range(100000):
        sink.add({"resource_type": "ec2.vpcs", "account": f"{n:012d}", "region": "us-east-1", "status": "ok",
                  "error": None, "items": [{"VpcId": f"vpc-{n}-{k}"} for k in range(20)]})
        time.sleep(0.002)
""")


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENFETCH_", "PG"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        }
    )
    return env


def test_a_killed_run_leaves_earlier_runs_intact_and_itself_unfinished(postgres_server, db):
    with PostgresSink(db) as sink:
        sink.add(rec("ec2.vpcs", vpcs("vpc-1", "vpc-2")))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, db], env=_env())
    try:
        wait_until(
            lambda: int(q(postgres_server, db, "SELECT count(*) FROM fetches WHERE run_id = 2")) >= 5,
            30,
            "the second run to commit a few batches",
        )
        proc.kill()
        assert proc.wait(30) < 0
    finally:
        proc.kill()
    assert q(postgres_server, db, "SELECT run_id, finished_at IS NULL FROM runs ORDER BY 1") == "1|f\n2|t"
    assert (
        q(postgres_server, db, "SELECT resource_id FROM resources WHERE run_id = 1 ORDER BY 1")
        == "vpc-1\nvpc-2"
    )
    # every fetch row that made it has all of its resources: no half-written fetch
    assert (
        q(
            postgres_server,
            db,
            "SELECT count(*) FROM fetches AS f WHERE run_id = 2 AND items != (SELECT count(*) "
            "FROM resources AS r WHERE r.run_id = 2 AND r.resource_type = f.resource_type AND "
            "r.account = f.account AND r.region = f.region)",
        )
        == "0"
    )
    assert (
        q(
            postgres_server,
            db,
            "SELECT count(*) FROM resources AS r WHERE run_id = 2 AND NOT EXISTS (SELECT 1 FROM "
            "fetches AS f WHERE f.run_id = 2 AND f.account = r.account)",
        )
        == "0"
    )


def test_postgres_restarted_mid_run_the_run_completes_with_every_row_once(postgres_server, db):
    import gevent

    sink = PostgresSink(
        db, batch_rows=100, stream_rows=20
    )  # a batch streams in chunks: the kill lands mid-COPY
    back = None
    for n in range(30):
        sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-{n}-{k}" for k in range(20))), account=f"{n:012d}"))
        if n == 12:  # SIGKILL mid-batch: what was not committed is gone; the server is back 0.5 s later
            postgres_server.kill()
            back = gevent.spawn_later(0.5, postgres_server.start)
    sink.close({"records": 30})
    back.get(timeout=30)
    assert q(postgres_server, db, "SELECT count(*), count(DISTINCT resource_id) FROM resources") == "600|600"
    assert q(postgres_server, db, "SELECT count(*), sum(items) FROM fetches") == "30|600"
    assert q(postgres_server, db, "SELECT finished_at IS NOT NULL FROM runs") == "t"


def test_postgres_gone_for_good_fails_the_run_with_one_line_and_leaves_it_unfinished(postgres_server, db):
    sink = PostgresSink(db, batch_rows=10, retry_seconds=1.5)
    sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-{k}" for k in range(10)))))
    postgres_server.kill()
    try:
        with pytest.raises(StorageError) as err:
            sink.add(rec("ec2.vpcs", vpcs(*(f"vpc-x{k}" for k in range(10))), region="eu-west-1"))
        sink.abort()
    finally:
        postgres_server.start()
    message = str(err.value)
    name = db.replace(postgres_server.password, "***")
    assert message.startswith(
        f"PostgreSQL at '{name}' stopped answering for 1.5s (connection to server at"
    ) and ("Connection refused" in message and "\n" not in message), message
    assert "run 1 is left unfinished with 10 resources written" in message
    assert postgres_server.password not in message
    assert (
        q(postgres_server, db, "SELECT finished_at IS NULL, (SELECT count(*) FROM resources) FROM runs")
        == "t|10"
    )


def test_ctrl_c_mid_run_keeps_what_completed_and_says_so_without_the_password(postgres_server, db):
    """A real ``greenfetch inventory`` into PostgreSQL (the URL from GREENFETCH_DATABASE_URL, so no
    password in argv) on the slow loopback AWS, interrupted once a batch is in."""
    import signal

    from greenfetch.testing import inventory_server

    accounts = ",".join(f"11111111{n:04d}" for n in range(1, 9))
    with inventory_server(latency=0.05, items=4) as aws:
        argv = [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--endpoint-url",
            aws.url,
            "--region",
            "us-east-1",
            "--max-attempts",
            "1",
            "inventory",
            "--accounts",
            accounts,
            "--role-name",
            "Reader",
            "--regions",
            "us-east-1,us-east-2,us-west-1,us-west-2,eu-west-1,eu-west-2",
            "--types",
            "ec2.vpcs,dynamodb.tables,lambda.functions",
            "--cache-ttl",
            "0",
            "--concurrency",
            "2",
        ]
        proc = subprocess.Popen(
            argv,
            env={**_env(), "GREENFETCH_DATABASE_URL": db},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(
                lambda: (
                    q(postgres_server, db, "SELECT to_regclass('fetches') IS NOT NULL") == "t"
                    and int(q(postgres_server, db, "SELECT count(*) FROM fetches")) > 0
                ),
                60,
                "a batch in",
            )
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 130, stderr
    name = db.replace(postgres_server.password, "***")
    assert f"interrupted: {name} keeps what completed, as a run with no finished_at" in stderr
    assert postgres_server.password not in stderr and "Traceback" not in stderr
    assert q(postgres_server, db, "SELECT finished_at IS NULL FROM runs") == "t"
    fetched = int(q(postgres_server, db, "SELECT count(*) FROM fetches"))
    assert 0 < fetched < 8 * 6 * 3
    assert (
        q(
            postgres_server,
            db,
            "SELECT count(*) FROM fetches AS f WHERE items != (SELECT count(*) FROM resources "
            "AS r WHERE r.resource_type = f.resource_type AND r.account = f.account AND "
            "r.region = f.region)",
        )
        == "0"
    )


# -- memory ---------------------------------------------------------------------------------------------------

_BULK = textwrap.dedent("""
    import greenfetch, json, sys, tracemalloc
    from greenfetch.inventory import PostgresSink

    def records():
        for n in range(100):  # 100 fetches of 100 resources, ~1 KB each: ~10 MB of JSON in all
            yield {"resource_type": "ec2.instances", "account": f"{n:012d}", "region": "us-east-1",
                   "status": "ok", "error": None,
                   "items": [{"InstanceId": f"i-{n:05d}{k:03d}", "Tags": [{"Key": "Name", "Value": "x" * 900}],
                              "State": {"Name": "running"}} for k in range(100)]}

    import psycopg  # noqa: F401  (the driver itself is not the batch)
    tracemalloc.start()
    with PostgresSink(sys.argv[1], batch_rows=1000) as sink:
        for rec in records():
            sink.add(rec)
    print(json.dumps({"traced_peak": tracemalloc.get_traced_memory()[1]}))
""")


def test_memory_is_bounded_by_the_batch_not_the_run(postgres_server, db):
    out = subprocess.run(
        [sys.executable, "-c", _BULK, db], env=_env(), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert (
        q(postgres_server, db, "SELECT count(*), count(DISTINCT resource_id) FROM resources") == "10000|10000"
    )
    assert (
        json.loads(out.stdout)["traced_peak"] < 4_000_000
    )  # one batch (~1 MB of rows), not the run's ~10 MB


# -- bad input through the CLI ---------------------------------------------------------------------------------


def _cli(*args, env=None):
    from click.testing import CliRunner

    return CliRunner().invoke(load_commands(), list(args), env=env)


def _bad_urls(server):
    port = server.port
    return [
        (
            server.url("postgres", password="wrong-Secret"),
            'password authentication failed for user "postgres"',
            "check the password",
        ),
        (server.url("no_such_db"), 'database "no_such_db" does not exist', "create the database first"),
        (
            f"postgresql://postgres:{server.password}@127.0.0.1:1/x",
            "Connection refused",
            "check the host and port",
        ),
        (
            f"postgresql://postgres:{server.password}@127.0.0.1:{port}/x?nonsense=1",
            "is not a PostgreSQL URL libpq can read (invalid URI query parameter",
            "use postgresql://USER@HOST:PORT/DATABASE",
        ),
    ]


def test_bad_url_wrong_password_missing_database_exit_2_one_line_no_password(postgres_server, tmp_path):
    for url, reason, hint in _bad_urls(postgres_server):
        for args in (
            [
                "inventory",
                "--accounts",
                "111111111111",
                "--types",
                "ec2.vpcs",
                "--regions",
                "us-east-1",
                "--out",
                url,
            ],
            ["diff", url],
        ):
            out = _cli(*args)
            assert out.exit_code == 2, (args, out.output)
            errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1 and reason in errors[0] and hint in errors[0], (args, out.stderr)
            assert "Traceback" not in out.output and postgres_server.password not in out.output
            assert "postgresql://postgres:***@127.0.0.1" in errors[0]
    out = _cli(
        "diff", env={"GREENFETCH_DATABASE_URL": postgres_server.url("no_such_db")}
    )  # the URL from the environment
    assert out.exit_code == 2 and 'database "no_such_db" does not exist' in out.stderr
    out = _cli("inventory", "--out", postgres_server.url("postgres"), "--format", "jsonl")
    assert out.exit_code == 2 and "is a PostgreSQL database but --format is jsonl" in out.stderr
    assert postgres_server.password not in out.output


def test_the_url_never_carries_its_password_into_a_broker_message_or_an_error(postgres_server):
    url = postgres_server.url("postgres")
    assert postgres_server.password not in public_conninfo(url)
    assert postgres_server.password not in public_conninfo(url + "?sslmode=disable&password=other")
    assert "other" not in public_conninfo(url + "?password=other")
    sink = open_sink(url)
    assert isinstance(sink, PostgresSink) and postgres_server.password not in sink.name
    sink.abort()


def test_diff_over_postgres_compares_in_the_database(postgres_server, db):
    with PostgresSink(db) as sink:
        sink.add(
            rec(
                "ec2.vpcs",
                vpcs("vpc-1", "vpc-2", Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]),
            )
        )
        sink.add(rec("ec2.vpcs", vpcs("vpc-9"), region="eu-west-1"))
    with PostgresSink(db) as sink:  # tags reordered (not a change), vpc-2 gone, vpc-3 new, eu-west-1 denied
        sink.add(
            rec(
                "ec2.vpcs",
                vpcs("vpc-1", Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}]) + vpcs("vpc-3"),
            )
        )
        sink.add(rec("ec2.vpcs", [], region="eu-west-1", status="denied", error="AccessDenied"))
    with PostgresDB(db) as reader:
        result = diff_runs(reader)
        changes = [(c.change, c.resource_id) for c in result.changes]
    assert changes == [("removed", "vpc-2"), ("added", "vpc-3")]  # key order; vpc-1 only reordered its tags
    assert (result.counts.unchanged, result.counts.not_compared) == (1, 1)
