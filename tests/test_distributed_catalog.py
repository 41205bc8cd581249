"""A user's catalog file through Celery workers, from the Python API: ``run_inventory(catalog_file=...,
fetch=broker_fetch(...))`` lists the user's own type on a real worker over a real Redis, the catalog's
text kept once in the run's state and named by its SHA-256 in each shard (no shard message carries it);
a worker whose run state lacks it fails the shard with a line saying so, never the shipped catalog.

One worker for the module, its own GREENFETCH_CATALOG defining the same type with a row that lists
nothing: a shard listed with anything but the coordinator's file shows. Accounts start with 55570003.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path

import gevent
import pytest

from greenfetch import Config, Engine, Request
from greenfetch.distributed import QUEUE, TASK, Coordinator, RunState, broker_fetch, redis_client
from greenfetch.distributed._runstate import catalog_digest
from greenfetch.inventory import assume_role, run_inventory
from greenfetch.testing import RedisServer, start_worker, stop_processes, wait_until

ROLE = "InventoryReader"
ACCOUNTS = ["555700030001", "555700030002"]
USERS = {ACCOUNTS[0]: {"alice": 2, "bob": 0}, ACCOUNTS[1]: {"carol": 1}}
TYPE = "iam.user_keys"

pytestmark = pytest.mark.slow


def _overlay(path: Path, each: str) -> str:
    row = {"operation": "ListAccessKeys", "parent": "iam.users", "each": {"UserName": each}}
    path.write_text(json.dumps({"format": "greenfetch-catalog/1", "types": {TYPE: row}}))
    return str(path)


@pytest.fixture(scope="module")
def keys(moto_server):
    """IAM users with access keys in ACCOUNTS; returns every access key id made."""
    engine = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}, environ={}))
    made = set()
    for account, users in USERS.items():
        creds = assume_role(engine, account, ROLE)
        for user, count in users.items():
            calls = [Request("iam", "CreateUser", {"UserName": user}, credentials=creds)]
            calls += [Request("iam", "CreateAccessKey", {"UserName": user}, credentials=creds)] * count
            for call in calls:
                result = engine.execute(call)
                assert result.ok, result.error
                made.add((result.result or {}).get("AccessKey", {}).get("AccessKeyId"))
    engine.close()
    return made - {None}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    directory = tmp_path_factory.mktemp("broker")
    with RedisServer(directory, password="catalog-Broker-Secret") as server:
        yield server, directory


@pytest.fixture(scope="module")
def worker(broker):
    """Started on first use: the first test inspects the queue before any worker takes a shard."""
    server, directory = broker
    procs = []
    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": server.url,
        "GREENFETCH_REDELIVER_AFTER": "8s",
        "GREENFETCH_CACHE_DIR": str(directory / "cache"),
        # the same type, its row listing nothing: a shard listed with the worker's own catalog shows
        "GREENFETCH_CATALOG": _overlay(directory / "worker.json", "join('', [UserName, '-gone'])"),
    }
    log = directory / "worker.log"

    def start():
        if not procs:
            procs.append(start_worker(env, log, name="catalog", concurrency=2))
        return log

    yield start
    stop_processes(procs)


def _engine(moto_server) -> Engine:
    return Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "max_attempts": 2}, environ={}
        )
    )


def _files(out: Path) -> dict[str, list]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))}


def _queued(client) -> list[dict]:
    """The shard payloads waiting in the queue, as the workers will read them."""
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[0][0] for m in client.lrange(QUEUE, 0, -1)]


def test_a_python_run_sends_its_catalog_file_to_the_workers_once(moto_server, keys, broker, worker, tmp_path):
    server, _ = broker
    mine = _overlay(tmp_path / "mine.json", "UserName")
    plan = {"accounts": ",".join(ACCOUNTS), "role_name": ROLE, "regions": "us-east-1", "types": TYPE}
    engine = _engine(moto_server)
    try:
        run_inventory(engine, **plan, out=tmp_path / "local", cache_ttl=0, catalog_file=mine)
        local = _files(tmp_path / "local")
        out = str(tmp_path / "broker")
        fetch = broker_fetch(server.url, out, engine.config)
        run = gevent.spawn(
            run_inventory, engine, **plan, out=out, cache_ttl=0, catalog_file=mine, fetch=fetch
        )
        wait_until(lambda: run.dead or server.client.llen(QUEUE) == len(ACCOUNTS), 30, "the shards queued")
        assert not run.dead, run.exception
        payloads = _queued(server.client)
        (run_id,) = {p["shard"]["run_id"] for p in payloads}
        state = RunState(server.client, run_id)
        (digest,) = (k.decode() for k in server.client.hkeys(state.key("catalog")))
        text = state.catalog(digest)
        assert text is not None and json.loads(text)["types"][TYPE]["each"] == {"UserName": "UserName"}
        for payload in payloads:  # named by digest, the text itself not in any message
            assert payload["shard"]["options"]["catalog"] == {"source": mine, "sha256": digest}
        worker()
        report = run.get(timeout=60)
    finally:
        engine.close()
    assert not report.failed, report.summary
    assert _files(Path(out)) == local  # the same records, in the same order
    (records,) = local.values()
    assert {i["AccessKeyId"] for r in records for i in r["items"]} == keys
    assert not server.client.keys(f"greenfetch:run:{run_id}:*")  # the run's state, its catalog too, gone


def test_a_worker_without_the_run_s_catalog_fails_the_shard_with_a_line(
    moto_server, broker, worker, tmp_path
):
    """A shard naming a catalog its run's state does not hold (the run over, or Redis lost it) fails
    on the worker with a line naming the file and the digest; nothing is listed, no shard written."""
    server, _ = broker
    worker()
    coordinator = Coordinator(server.url, tmp_path)
    state = RunState(redis_client(server.url), "run-lost-catalog")
    state.begin([ACCOUNTS[0]])
    digest = catalog_digest('{"format":"greenfetch-catalog/1","types":{}}')
    shard = {
        "run_id": state.run_id,
        "account": ACCOUNTS[0],
        "types": [TYPE],
        "regions": ["us-east-1"],
        "role": ROLE,
        "options": {"cache_ttl": 0, "catalog": {"source": "/gone/mine.json", "sha256": digest}},
    }
    sink = {"kind": "directory", "root": str(tmp_path)}
    coordinator.app.send_task(
        TASK, args=[{"shard": shard, "sink": sink, "engine": {"endpoint_url": moto_server.url}}], queue=QUEUE
    )
    try:
        wait_until(state.failures, 30, "the shard's failure")
        assert state.failures() == {
            ACCOUNTS[
                0
            ]: f"InventoryError: the run's catalog file '/gone/mine.json' (sha256 {digest[:12]}) is "
            "not in the broker's state for this run (the run is over, or Redis lost it); the shard is not "
            "listed with the shipped catalog in its place"
        }
        assert coordinator.sink.keys(state.run_id) == set()
    finally:
        state.end()
