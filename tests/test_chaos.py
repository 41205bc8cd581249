"""The whole pipeline under chaos (issue 19): a ``--broker`` inventory into SQLite survives Redis
restarted mid-run, a worker SIGKILLed mid-shard and role sessions that expire mid-shard, and files
every (type, account, region) exactly once, with its true status, as a run without a broker does.

Nothing is mocked: the inventory loopback server is AWS (role sessions of SESSION seconds, one account
whose sessions it always refuses, one whose AssumeRole it denies), redis-server runs without
persistence (a restart loses the queue and the run's keys), the workers are real ``greenfetch
worker`` processes and the coordinator is the real CLI. Each step waits on what it can see (Redis
keys, the workers' pids in them, the shard files, the workers' logs), never on a clock. About 25 s.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

import pytest

from greenfetch.testing import RedisServer, inventory_server, start_worker, stop_processes, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "chaos-Broker-Secret-19"
HEALTHY = ["710000000001", "710000000002", "710000000003", "710000000004", "710000000005"]
EXPIRED = "720000000006"  # the loopback refuses every session of this account: ExpiredToken, however fresh
DENIED = "730000000007"  # AssumeRole is denied
ACCOUNTS = [HEALTHY[0], EXPIRED, HEALTHY[1], HEALTHY[2], DENIED, HEALTHY[3], HEALTHY[4]]
TYPES = ["ec2.vpcs", "sqs.queues", "dynamodb.tables", "lambda.functions"]
REGIONS = ["us-east-1", "eu-west-1"]
LATENCY = 0.1  # per call: a shard's region lookups (SSM, one per service) alone outlast a role session
SESSION = 0.4  # seconds a role session lasts: every shard must assume its role again before its lists
# a killed worker's shard is back after 10 s + a sweep (2.5 s); a shard may run 5 s (the slowest, a worker's
# first, which also builds the worker's engine, takes 2-3 s on a busy 2-core machine)
REDELIVER = "10s"
GONE = re.compile(r"the broker is not answering|Connection to broker lost|could not record the failure")


def _inventory(aws, out, env, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--endpoint-url",
            aws.url,
            "--region",
            "us-east-1",
            "inventory",
            "--accounts",
            ",".join(ACCOUNTS),
            "--role-name",
            "Reader",
            "--regions",
            ",".join(REGIONS),
            "--types",
            ",".join(TYPES),
            "--out",
            str(out),
            "--cache-ttl",
            "0",
            "--concurrency",
            "4",
            "--no-progress",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _query(path, sql):
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def _fetches(path):
    return _query(
        path, "SELECT resource_type, account, region, status, items, error FROM fetches ORDER BY 1, 2, 3"
    )


def _resources(path):
    return _query(
        path, "SELECT resource_type, account, region, resource_id, data FROM resources ORDER BY 1, 2, 3, 4"
    )


def _keys(client, name):
    return [k.decode() for k in client.scan_iter(f"greenfetch:run:*:{name}")]


def _mid_shard(client, shards, pids, skip=()):
    """(key, run id, pid) of a shard that a worker with one of ``pids`` started and has not finished
    (pending in Redis, no shard file yet), or None."""
    for started in _keys(client, "started"):
        run_id = started.split(":")[2]
        pending = started.replace(":started", ":pending")
        for key, who in client.hgetall(started).items():
            key, pid = key.decode(), int(who.decode().rpartition(":")[2])
            if (
                pid in pids
                and key not in skip
                and client.sismember(pending, key)
                and not (shards / run_id / f"{key}.json").exists()
            ):
                return key, run_id, pid
    return None


def _log(path):
    return path.read_text(errors="replace")


def test_a_broker_run_through_a_redis_restart_a_killed_worker_and_expiring_sessions(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    with (
        inventory_server(
            latency=LATENCY,
            items=2,
            session_seconds=SESSION,
            expired_accounts=[EXPIRED],
            deny_assume=[DENIED],
        ) as aws,
        RedisServer(tmp_path, password=PASSWORD) as redis,
    ):
        local_env = {
            **os.environ,
            "GREENFETCH_CACHE_DIR": str(tmp_path / "cache-local"),
            "PYTHONUNBUFFERED": "1",
        }
        env = {
            **local_env,
            "GREENFETCH_BROKER_URL": redis.url,
            "GREENFETCH_REDELIVER_AFTER": REDELIVER,
            "GREENFETCH_CACHE_DIR": str(tmp_path / "cache-workers"),
        }
        procs = []
        try:
            local = _inventory(aws, tmp_path / "local.db", local_env)  # runs while the workers start
            procs.append(local)
            a = start_worker(env, tmp_path / "worker-a.log", name="a", concurrency=1)
            procs.append(a)
            b = start_worker(env, tmp_path / "worker-b.log", name="b", concurrency=2)
            procs.append(b)
            local_out, local_err = local.communicate(timeout=60)
            assert local.returncode == 1, local_err  # two accounts failed: exit 1, the files still written

            out = tmp_path / "broker" / "inventory.db"
            out.parent.mkdir()
            shards = out.parent / ".greenfetch-shards"
            coordinator = _inventory(aws, out, env)
            procs.append(coordinator)
            client = redis.client

            # 1. Redis goes away while worker b is mid-shard, and comes back empty (no persistence) once b
            # has felt it (its shard could not record itself done, or its consumer lost the connection)
            first = wait_until(
                lambda: _mid_shard(client, shards, {b.pid}, skip={DENIED}), 60, "worker b to be mid-shard"
            )
            run_id = first[1]
            client.client_pause(60_000, all=False)  # writes wait: no shard starts or ends before the stop
            before = {k.decode() for k in client.hkeys(f"greenfetch:run:{run_id}:started")}
            redis.stop()
            wait_until(
                lambda: GONE.search(_log(tmp_path / "worker-b.log")), 60, "worker b to find the broker gone"
            )
            redis.start()
            # the coordinator finds its run gone, and sends again every shard the sink lacks
            wait_until(
                lambda: client.exists(f"greenfetch:run:{run_id}:plan"), 60, "the coordinator to re-plan"
            )

            # 2. then a worker SIGKILLed mid-shard (a shard that no run before the restart had started, so
            # nothing else runs it): its shard is delivered again after REDELIVER
            killed, _, pid = wait_until(
                lambda: _mid_shard(client, shards, {a.pid, b.pid}, skip={DENIED, *before}),
                60,
                "a worker to be mid-shard after the restart",
            )
            os.kill(pid, signal.SIGKILL)
            (a if pid == a.pid else b).wait(10)
            assert not (shards / run_id / f"{killed}.json").exists()  # killed before its records were written

            stdout, stderr = coordinator.communicate(timeout=90)
            logs = _log(tmp_path / "worker-a.log") + _log(tmp_path / "worker-b.log")
        finally:
            stop_processes(procs)

    # exit 1: EXPIRED and DENIED failed, as in the local run
    assert coordinator.returncode == 1, stderr + logs
    assert "Traceback" not in stderr and "Error:" not in stderr, stderr
    # every (type, account, region) exactly once, with its true status
    fetched = _fetches(out)
    scopes = [row[:3] for row in fetched]
    assert len(scopes) == len(set(scopes))
    expected = {(t, acc, region): "ok" for t in TYPES for acc in HEALTHY for region in REGIONS}
    expected |= {(t, EXPIRED, region): "expired" for t in TYPES for region in REGIONS}
    expected |= {(t, DENIED, "*"): "denied" for t in TYPES}
    assert {row[:3]: row[3] for row in fetched} == expected
    assert all(row[4] == 2 for row in fetched if row[3] == "ok")
    # the run finished, and holds what the local run holds
    (run,) = _query(out, "SELECT finished_at, summary FROM runs")
    assert run[0] is not None
    summary = json.loads(run[1])
    assert summary["accounts_ok"] == len(HEALTHY) and set(summary["accounts_failed"]) == {EXPIRED, DENIED}
    assert "ExpiredToken" in summary["accounts_failed"][EXPIRED]  # the first failed fetch's error: any type
    assert "AccessDenied" in summary["accounts_failed"][DENIED]
    ((local_summary,),) = _query(tmp_path / "local.db", "SELECT summary FROM runs")
    same = ("resources", "errors", "accounts_ok", "records", "resources_written")
    assert {k: summary[k] for k in same} == {k: json.loads(local_summary)[k] for k in same}
    assert fetched == _fetches(tmp_path / "local.db")
    assert _resources(out) == _resources(tmp_path / "local.db")
    assert len(_resources(out)) == len(TYPES) * len(HEALTHY) * len(REGIONS) * 2
    # what happened is what the test meant to happen
    assert not shards.exists()
    runs = re.findall(
        rf"shard (\d+) of run {run_id}: \d+ records, \d+ calls, (ok|account failed) in ([\d.]+)s", logs
    )
    assert killed in {key for key, _, _ in runs}, logs  # the killed worker's shard ran again, to the end
    # every healthy shard outlived its first role session (and so assumed the role again mid-shard)
    assert all(float(took) > SESSION for key, _, took in runs if key in HEALTHY), runs
    for text in (stdout, stderr, logs):
        assert PASSWORD not in text
    print(f"killed mid-shard {killed}; {stderr.strip().splitlines()[0]}")
