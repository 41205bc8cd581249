"""Celery workers over a real Redis: real `greenfetch worker` processes, a real redis-server started
here on a free loopback port (with a password), moto's server as AWS, and the coordinator as a real
`greenfetch inventory --broker` process. Workers and coordinator share the output directory.

Account ids start with 5557 so they never collide with other modules sharing the moto server.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from greenfetch import Config, ConfigError, Engine, Request
from greenfetch.distributed import check_broker_url, redact
from greenfetch.inventory import accounts_from_list, assume_role, resolve_types
from greenfetch.inventory._fetch import Inventory, RunSummary
from greenfetch.inventory._shard import DirectoryShardSink, Shard, merge_shard, run_shard
from greenfetch.inventory._shard_s3 import S3ShardSink, open_shard_sink, sink_spec
from greenfetch.inventory._types import InventoryError
from greenfetch.testing import RedisServer, free_port, start_worker, stop_processes, wait_until

ROLE = "InventoryReader"
PASSWORD = "hunter2-Broker-Secret"
ACCOUNTS = [f"55570000{n:04d}" for n in range(1, 9)]
CHILD_ACCOUNTS = ["555700010001", "555700010002"]  # parents with children: families
TYPES = "ec2.vpcs,sqs.queues,sns.topics,iam.roles"
REGIONS = "us-east-1,eu-west-1,ap-south-1"
REDELIVER = "8s"  # time limit 4s; moto is warmed by the local run first, shards then take well under 1s

pytestmark = pytest.mark.slow


# -- real parts ------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    with RedisServer(tmp_path, password=PASSWORD) as server:
        yield server


class Workers:
    """Real worker processes (``greenfetch worker`` or ``celery -A greenfetch.distributed``)."""

    def __init__(self, directory: Path, broker_url: str):
        self.directory, self.broker_url = directory, broker_url
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "GREENFETCH_BROKER_URL": self.broker_url,
            "GREENFETCH_REDELIVER_AFTER": REDELIVER,
            "GREENFETCH_CACHE_DIR": str(self.directory / "cache"),
        }

    def start(self, name: str, concurrency: int = 2, *, celery_cli: bool = False) -> subprocess.Popen[bytes]:
        log = self.directory / f"worker-{name}.log"
        self.logs.append(log)
        proc = start_worker(self.env(), log, name=name, concurrency=concurrency, celery_cli=celery_cli)
        self.procs.append(proc)
        return proc

    def text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs)

    def stop(self) -> None:
        stop_processes(self.procs)


@pytest.fixture
def workers(tmp_path, redis_server):
    pool = Workers(tmp_path, redis_server.url)
    yield pool
    pool.stop()


@pytest.fixture(scope="module")
def seeded(moto_server):
    """A VPC, a queue and a topic per account; returns the CLI's global options for moto."""
    engine = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16}, environ={}
        )
    )
    for n, account in enumerate(ACCOUNTS):
        creds = assume_role(engine, account, ROLE)
        calls = [
            Request(
                "ec2", "CreateVpc", {"CidrBlock": f"10.{n}.0.0/16"}, region="eu-west-1", credentials=creds
            ),
            Request("sqs", "CreateQueue", {"QueueName": f"q-{n}"}, region="us-east-1", credentials=creds),
            Request("sns", "CreateTopic", {"Name": f"t-{n}"}, region="ap-south-1", credentials=creds),
        ]
        assert all(r.ok for r in engine.batch_requests(calls, 4))
    engine.close()
    return ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "2"]


def _inventory_args(out: Path, accounts=ACCOUNTS, types=TYPES) -> list[str]:
    return [
        "inventory",
        "--accounts",
        ",".join(accounts),
        "--role-name",
        ROLE,
        "--regions",
        REGIONS,
        "--types",
        types,
        "--out",
        str(out),
        "--cache-ttl",
        "0",
        "--no-progress",
    ]


def _local_run(seeded, out: Path, accounts=ACCOUNTS, types=TYPES, extra=()) -> dict[str, list]:
    from greenfetch.cli import load_commands

    result = CliRunner().invoke(load_commands(), [*seeded, *_inventory_args(out, accounts, types), *extra])
    assert result.exit_code == 0, result.output
    return _files(out)


@pytest.fixture(scope="module")
def local(seeded, tmp_path_factory) -> dict[str, list]:
    """The local run's files for ACCOUNTS and TYPES, made once for the scenarios that compare a broker
    run with it: none of them changes what those accounts hold (the S3 test's bucket is the caller's
    account's; ``families`` seeds CHILD_ACCOUNTS). Making it also warms moto's backends for every
    account and region, so the workers' shards take well under their time limit (REDELIVER)."""
    return _local_run(seeded, tmp_path_factory.mktemp("local"))


def _files(out: Path) -> dict[str, list]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))}


def _coordinator(
    seeded, out: Path, workers: Workers, tmp_path: Path, *extra: str, accounts=ACCOUNTS, types=TYPES
) -> subprocess.Popen[str]:
    """`greenfetch inventory --broker` (from GREENFETCH_BROKER_URL), stopped with the workers."""
    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": workers.broker_url,
        "GREENFETCH_REDELIVER_AFTER": REDELIVER,
        "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenfetch.cli", *seeded, *_inventory_args(out, accounts, types), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers.procs.append(proc)  # type: ignore[arg-type]
    return proc


def _run_keys(client, name: str) -> list[bytes]:
    return list(client.scan_iter(f"greenfetch:run:*:{name}"))


# -- the scenarios ---------------------------------------------------------------------------------


def test_killed_worker_loses_nothing_and_matches_a_local_run(seeded, local, redis_server, workers, tmp_path):
    first = workers.start("a", concurrency=1)
    out = tmp_path / "shared"
    coordinator = _coordinator(seeded, out, workers, tmp_path)
    client = redis_server.client

    def first_worker_started() -> bool:
        return any(
            v.decode().endswith(f":{first.pid}")
            for key in _run_keys(client, "started")
            for v in client.hgetall(key).values()
        )

    wait_until(first_worker_started, 60, "worker a to start a shard")
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    (started,) = _run_keys(client, "started")
    pending = started.decode().replace(":started", ":pending")
    in_flight = [
        k
        for k, v in client.hgetall(started).items()
        if v.decode().endswith(f":{first.pid}") and client.sismember(pending, k)
    ]
    assert in_flight, "worker a finished its shard before the kill; nothing to redeliver"
    workers.start("b")
    workers.start(
        "c", celery_cli=True
    )  # `celery -A greenfetch.distributed worker -P gevent` is the same worker
    stdout, stderr = coordinator.communicate(timeout=100)
    assert coordinator.returncode == 0, stderr
    reran = int(stderr.split(" ran more than once")[0].rsplit("; ", 1)[1])
    assert reran >= len(in_flight)
    distributed = _files(out)
    assert distributed == local  # same files, same records, same order
    keys = [(r["resource_type"], r["account"], r["region"]) for recs in distributed.values() for r in recs]
    assert len(keys) == len(set(keys)) and {k[1] for k in keys} == set(ACCOUNTS)
    assert not (out / ".greenfetch-shards").exists()
    assert _run_keys(client, "pending") == [] and _run_keys(client, "plan") == []
    assert "accounts: 8 ok, 0 failed" in stderr
    logs = workers.text()
    assert logs.count(" records, ") >= len(ACCOUNTS)  # one line per shard run
    for text in (logs, stdout, stderr, *(p.read_text() for p in out.iterdir())):
        assert PASSWORD not in text
    assert f"redis://:**@127.0.0.1:{redis_server.port}/0" in logs  # Celery's banner masks it too


def test_shards_on_s3_give_the_local_run_s_records_with_no_shared_directory(
    seeded, local, moto_server, redis_server, workers, tmp_path
):
    """`--shards s3://BUCKET/PREFIX`: workers put their shards on S3 (moto) and the coordinator reads
    them back only from there (a shard anywhere else would be missing: error records, exit 1)."""
    bucket = _bucket(moto_server, "greenfetch-shards-e2e")
    workers.start("a")
    workers.start("b", concurrency=1)
    out = tmp_path / "coordinator-only"
    coordinator = _coordinator(seeded, out, workers, tmp_path, "--shards", f"s3://{bucket}/runs/team")
    stdout, stderr = coordinator.communicate(timeout=100)
    assert coordinator.returncode == 0, stderr + workers.text()
    assert _files(out) == local  # same files, same records, same order
    assert not (out / ".greenfetch-shards").exists()
    assert _objects(moto_server, bucket) == []  # the run's shard objects are deleted when it ends
    assert workers.text().count(" records, ") >= len(ACCOUNTS)
    for text in (workers.text(), stdout, stderr):
        assert PASSWORD not in text


@pytest.fixture(scope="module")
def families(seeded, moto_server):
    """Parents and their children in CHILD_ACCOUNTS: ECS clusters with services (regional), IAM users
    with access keys (global). Returns {child type: {child id: parent id}} as moto made them."""
    engine = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}, environ={}))
    made: dict[str, dict[str, str]] = {"ecs.services": {}, "iam.access_keys": {}}
    estate = {  # account: ({region: {cluster: services}}, {user: access keys})
        CHILD_ACCOUNTS[0]: (
            {"eu-west-1": {"shop": ("web", "worker")}, "us-east-1": {"idle": ()}},
            {"alice": 2, "bob": 0},
        ),
        CHILD_ACCOUNTS[1]: ({"ap-south-1": {"api": ("edge",)}}, {"carol": 1}),
    }
    for account, (clusters, users) in estate.items():
        creds = assume_role(engine, account, ROLE)

        def call(service, operation, params, region="us-east-1", creds=creds):
            result = engine.execute(Request(service, operation, params, region=region, credentials=creds))
            assert result.ok, result.error
            return result.result

        for region, named in clusters.items():
            container = {"name": "web", "image": "nginx", "memory": 128}
            family = call(
                "ecs",
                "RegisterTaskDefinition",
                {"family": "web", "containerDefinitions": [container]},
                region,
            )["taskDefinition"]["taskDefinitionArn"]
            for cluster, services in named.items():
                arn = call("ecs", "CreateCluster", {"clusterName": cluster}, region)["cluster"]["clusterArn"]
                for name in services:
                    params = {"cluster": cluster, "serviceName": name, "taskDefinition": family}
                    made["ecs.services"][
                        call("ecs", "CreateService", params, region)["service"]["serviceArn"]
                    ] = arn
        for user, keys in users.items():
            arn = call("iam", "CreateUser", {"UserName": user})["User"]["Arn"]
            for _ in range(keys):
                key = call("iam", "CreateAccessKey", {"UserName": user})["AccessKey"]["AccessKeyId"]
                made["iam.access_keys"][key] = arn
    engine.close()
    return made


def test_child_types_through_workers_name_their_parents_as_a_local_run_does(
    seeded, families, redis_server, workers, tmp_path, monkeypatch
):
    """A child type is listed per item of its parent in the same shard (one per account): through a
    real worker, each service names its cluster and each access key its user, and the files are the
    local run's. Selected alone, the child's parent is listed for it but not written. A child type of
    the user's own catalog file (--catalog) too: the file goes with the shards, not the worker's."""
    from greenfetch.cli import load_commands

    mine = tmp_path / "mine.json"
    row = {"operation": "ListAccessKeys", "parent": "iam.users", "each": {"UserName": "UserName"}}
    mine.write_text(json.dumps({"format": "greenfetch-catalog/1", "types": {"iam.user_keys": row}}))
    children = {
        "ecs.services": "serviceArn",
        "iam.access_keys": "AccessKeyId",
        "iam.user_keys": "AccessKeyId",
    }
    families = {**families, "iam.user_keys": families["iam.access_keys"]}
    workers.start("a")
    monkeypatch.setenv("GREENFETCH_REDELIVER_AFTER", REDELIVER)
    runs = [
        ("ecs.clusters,ecs.services,iam.users,iam.access_keys", ()),
        ("ecs.services,iam.access_keys", ()),  # the parents alone: listed, not written
        ("iam.user_keys", ("--catalog", str(mine))),
    ]
    for n, (types, extra) in enumerate(runs):
        local = _local_run(seeded, tmp_path / f"local-{n}", CHILD_ACCOUNTS, types, extra)
        out = tmp_path / f"broker-{n}"
        args = [*seeded, *_inventory_args(out, CHILD_ACCOUNTS, types), *extra, "--broker", redis_server.url]
        result = CliRunner().invoke(load_commands(), args)
        assert result.exit_code == 0, result.output + workers.text()
        distributed = _files(out)
        assert distributed == local  # same files, same records, same order
        assert set(distributed) == {f"{name}.json" for name in types.split(",")}
        for child in set(children) & set(types.split(",")):
            records = distributed[f"{child}.json"]
            assert all(r["status"] == "ok" for r in records), records
            got = {i[children[child]]: i["parent"] for r in records for i in r["items"]}
            assert got == families[child]
            for r in records:  # the parent was listed in the child's own account and region
                for i in r["items"]:
                    assert f":{r['region']}:{r['account']}:" in i["parent"].replace("::", ":global:")
    assert workers.text().count(" records, ") >= len(runs) * len(CHILD_ACCOUNTS)  # shards ran on the worker


@pytest.mark.usefixtures("local")  # moto warmed for the shards
def test_redis_stopped_mid_run_is_a_clear_error_not_a_gap(seeded, redis_server, workers, tmp_path):
    workers.start("a", concurrency=1)
    out = tmp_path / "shared"
    coordinator = _coordinator(seeded, out, workers, tmp_path)
    client = redis_server.client

    def some_shards_done() -> bool:
        return any(0 < client.scard(k) < len(ACCOUNTS) for k in _run_keys(client, "pending"))

    wait_until(some_shards_done, 60, "the first shards to finish")
    redis_server.stop()
    stdout, stderr = coordinator.communicate(timeout=60)
    assert coordinator.returncode == 1, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in stderr
    assert f"the broker at redis://:***@127.0.0.1:{redis_server.port}/0 stopped answering" in lines[0]
    assert "no files were written" in lines[0]
    assert list(out.glob("*.json")) == [] and not (out / ".greenfetch-shards").exists()
    for text in (stdout, stderr, workers.text()):
        assert PASSWORD not in text


def test_redis_restarted_mid_run_still_completes_the_run(seeded, local, redis_server, workers, tmp_path):
    """No persistence: the restart loses the queue, the pending set and the run's state. The coordinator
    re-sends what the sink lacks; the worker whose shard could not be acknowledged gets its slot back."""
    workers.start("a", concurrency=1)
    out = tmp_path / "shared"
    coordinator = _coordinator(seeded, out, workers, tmp_path)
    client = redis_server.client
    wait_until(lambda: bool(_run_keys(client, "started")), 60, "the first shard to start")
    redis_server.stop()
    redis_server.start()
    stdout, stderr = coordinator.communicate(timeout=100)
    assert coordinator.returncode == 0, stderr + workers.text()
    assert _files(out) == local
    assert "in 1 round(s)" not in stderr  # the lost shards were sent again
    for text in (stdout, stderr, workers.text()):
        assert PASSWORD not in text


def test_no_worker_is_a_clear_error_after_twice_the_redelivery_delay(
    seeded, redis_server, tmp_path, monkeypatch
):
    from greenfetch.cli import load_commands

    monkeypatch.setenv("GREENFETCH_REDELIVER_AFTER", "2s")  # no progress for 2 x 2s + 2 sweeps of 1s
    result = CliRunner().invoke(
        load_commands(),
        [*seeded, *_inventory_args(tmp_path / "o", ACCOUNTS[:2]), "--broker", redis_server.url],
    )
    assert result.exit_code == 1, result.output
    assert "no shard finished for 6s (2 of 2 still pending)" in result.stderr
    # said early (after 2s here, 10s by default), once, while it still waited
    notice = (
        f"waiting: no worker has taken a shard yet; start `greenfetch worker` with --broker "
        f"redis://:***@127.0.0.1:{redis_server.port}/0 (or GREENFETCH_BROKER_URL)"
    )
    assert result.stderr.count(notice) == 1 and result.stderr.index(notice) < result.stderr.index("Error:")
    assert f"reach redis://:***@127.0.0.1:{redis_server.port}/0" in result.stderr
    assert PASSWORD not in result.output and "Traceback" not in result.output
    assert list((tmp_path / "o").glob("*.json")) == []
    assert _run_keys(redis_server.client, "plan") == []  # the run's state is cleaned up


def test_a_worker_that_cannot_see_out_is_named_with_the_path(seeded, redis_server, tmp_path, monkeypatch):
    """The worker runs in a mount namespace of its own with a tmpfs over --out: it writes every shard
    where the coordinator cannot see it, and logs "ok". The error says so and names the path, where it
    said "no worker finished it"."""
    from greenfetch.cli import load_commands

    out = tmp_path / "out"
    out.mkdir()
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "tmpfs", str(out)],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount here (unshare -m): {probe.stderr.decode().strip()}")
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": redis_server.url,
        "GREENFETCH_REDELIVER_AFTER": REDELIVER,
        "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
    }
    script = 'mount -t tmpfs tmpfs "$1" && exec "$2" -m greenfetch.cli worker -c 2 -n blind@%h'
    with open(log, "wb") as handle:
        worker = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", str(out), sys.executable],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: "ready." in log.read_text(errors="replace") or worker.poll() is not None,
            60,
            "the worker to start",
        )
        monkeypatch.setenv("GREENFETCH_REDELIVER_AFTER", REDELIVER)
        result = CliRunner().invoke(
            load_commands(), [*seeded, *_inventory_args(out, ACCOUNTS[:1]), "--broker", redis_server.url]
        )
    finally:
        worker.kill()
        worker.wait(10)
    assert result.exit_code == 1, result.output
    assert log.read_text(errors="replace").count(f"shard {ACCOUNTS[0]} of run ") == 3  # "ok", every time
    assert (
        f"shard {ACCOUNTS[0]} did not complete in 3 deliveries: worker " in result.stderr
        and f"finished it, but it is not in {out}: do the workers see --out at this same path"
        in result.stderr
    )
    assert "no worker finished it" not in result.stderr


# -- the command line's checks (no workers needed) ---------------------------------------------------


@pytest.mark.parametrize(
    "broker, code, message",
    [
        ("http://127.0.0.1:1/0", 2, "broker 'http://127.0.0.1:1/0' is not a Redis URL"),
        (
            f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0",
            1,
            "cannot reach the broker at redis://:***@127.0.0.1:",
        ),
        (f"redis://:{PASSWORD}@127.0.0.1:notaport/0", 2, "is not a Redis URL"),
    ],
)
def test_bad_or_unreachable_broker_is_one_clear_line(seeded, tmp_path, broker, code, message):
    from greenfetch.cli import load_commands

    url = broker.replace("{port}", str(free_port()))
    result = CliRunner().invoke(
        load_commands(), [*seeded, *_inventory_args(tmp_path / "o", ACCOUNTS[:1]), "--broker", url]
    )
    assert result.exit_code == code, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert PASSWORD not in result.output
    assert list((tmp_path / "o").glob("*.json")) == [] if (tmp_path / "o").exists() else True


def test_broker_needs_a_shared_out_directory_and_a_valid_redeliver_after(seeded, tmp_path, monkeypatch):
    from greenfetch.cli import load_commands

    result = CliRunner().invoke(
        load_commands(),
        [
            *seeded,
            *_inventory_args(tmp_path / "o"),
            "--broker",
            "redis://127.0.0.1:1/0",
            "--shards",
            "/tmp/shared",
        ],
    )
    assert (
        result.exit_code == 2
        and "--shards '/tmp/shared' is not an S3 URI; use s3://BUCKET/PREFIX" in result.stderr
    )
    result = CliRunner().invoke(
        load_commands(), [*seeded, *_inventory_args(tmp_path / "o"), "--shards", "s3://b/p"]
    )
    assert result.exit_code == 2 and "--shards is where --broker workers leave their shards" in result.stderr
    result = CliRunner().invoke(
        load_commands(),
        [
            *seeded,
            *_inventory_args(tmp_path / "o"),
            "--broker",
            "redis://127.0.0.1:1/0",
            "--shards",
            "s3://no-such-bucket-gf/p",
        ],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert (
        "shard store s3://no-such-bucket-gf/p/: ListObjectsV2 failed" in result.stderr
    )  # before any shard is sent

    args = [a for a in _inventory_args(tmp_path / "o") if a not in ("--out", str(tmp_path / "o"))]
    result = CliRunner().invoke(load_commands(), [*seeded, *args, "--broker", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 2 and "--broker needs --out DIR" in result.stderr
    monkeypatch.setenv("GREENFETCH_REDELIVER_AFTER", "soon")
    result = CliRunner().invoke(
        load_commands(), [*seeded, *_inventory_args(tmp_path / "o"), "--broker", "redis://127.0.0.1:1/0"]
    )
    assert result.exit_code == 2 and "GREENFETCH_REDELIVER_AFTER: 'soon' is not a duration" in result.stderr
    result = CliRunner().invoke(load_commands(), ["worker"])
    assert result.exit_code == 2 and "no broker: give --broker" in result.stderr


# -- the shard function, in process ---------------------------------------------------------------------


@pytest.mark.parametrize("tags", [False, True], ids=["plain", "tags"])
def test_shards_run_twice_overwrite_and_merge_to_the_local_summary(seeded, moto_server, tmp_path, tags):
    """With --tags too: the shard option reaches each worker's fetch, and the tagging calls merge."""
    engine = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16}, environ={}
        )
    )
    accounts, types, regions = ACCOUNTS[:3], resolve_types(TYPES), REGIONS.split(",")
    local = Inventory(
        engine, accounts_from_list(",".join(accounts), role=ROLE), types, regions=regions, tags=tags
    )
    local_records = list(local.run())
    sink = DirectoryShardSink(tmp_path)
    merged = RunSummary()
    shards = [
        Shard(
            "run-1",
            a,
            tuple(t.name for t in types),
            tuple(regions),
            role=ROLE,
            options={"cache_ttl": 0, "tags": tags},
        )
        for a in accounts
    ]
    for shard in shards:
        run_shard(engine, shard, sink)
    run_shard(engine, shards[0], sink)  # a redelivery: same key, overwritten
    assert sink.keys("run-1") == set(accounts)
    records = []
    for shard in shards:
        got, summary = sink.get("run-1", shard.key)
        records += got
        merge_shard(merged, got, summary)
    assert sorted(json.dumps(r, sort_keys=True) for r in records) == sorted(
        json.dumps(r, sort_keys=True, default=str) for r in local_records
    )
    drop = lambda d: {k: v for k, v in d.items() if k not in ("wall_seconds", "tag_seconds")}  # noqa: E731
    assert drop(merged.to_dict()) == drop(local.summary.to_dict())
    assert merged.tag_calls == (len(accounts) * len(regions) if tags else 0)
    sink.discard("run-1")
    assert not (tmp_path / ".greenfetch-shards").exists()
    engine.close()


def test_a_shard_lists_the_coordinator_s_catalog_not_the_worker_s(
    families, moto_server, tmp_path, monkeypatch
):
    """The same user type in two files: the coordinator's (sent with the shard) wins over the worker's
    GREENFETCH_CATALOG; a shard without one (an older coordinator) still reads the worker's."""
    from greenfetch.inventory._shard import user_catalog

    def overlay(path: Path, each: str) -> str:
        row = {"operation": "ListAccessKeys", "parent": "iam.users", "each": {"UserName": each}}
        path.write_text(json.dumps({"format": "greenfetch-catalog/1", "types": {"iam.user_keys": row}}))
        return str(path)

    mine = overlay(tmp_path / "mine.json", "UserName")
    monkeypatch.setenv(
        "GREENFETCH_CATALOG", overlay(tmp_path / "worker.json", "join('', [UserName, '-gone'])")
    )
    engine = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}, environ={}))
    sink = DirectoryShardSink(tmp_path)

    def keys(**options) -> set[str]:
        shard = Shard(
            "run-c", CHILD_ACCOUNTS[0], ("iam.user_keys",), ("us-east-1",), role=ROLE, options=options
        )
        run_shard(engine, shard, sink)
        (rec,), _ = sink.get("run-c", shard.key)
        assert rec["status"] == "ok", rec
        return {i["AccessKeyId"] for i in rec["items"]}

    try:
        alice = {k for k, user in families["iam.access_keys"].items() if CHILD_ACCOUNTS[0] in user}
        assert len(alice) == 2
        assert keys(cache_ttl=0, catalog=user_catalog(mine)) == alice
        assert keys(cache_ttl=0) == set()  # the worker's row: every user looks gone
        with pytest.raises(InventoryError, match="unknown resource type 'iam.user_keys'"):
            keys(cache_ttl=0, catalog=None)  # the coordinator had no file: the shipped catalog alone
    finally:
        engine.close()


def _s3(moto_server) -> Engine:
    return Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1"}, environ={}))


def _bucket(moto_server, name: str) -> str:
    engine = _s3(moto_server)
    assert engine.execute(Request("s3", "CreateBucket", {"Bucket": name})).ok
    engine.close()
    return name


def _objects(moto_server, bucket: str) -> list[str]:
    engine = _s3(moto_server)
    page = engine.execute(Request("s3", "ListObjectsV2", {"Bucket": bucket})).result
    engine.close()
    return sorted(item["Key"] for item in page.get("Contents") or ())


def test_s3_shard_sink_puts_gets_lists_overwrites_and_discards(moto_server):
    bucket = _bucket(moto_server, "greenfetch-shards-unit")
    engine = _s3(moto_server)
    sink = S3ShardSink(engine, f"s3://{bucket}/pre/fix/")
    one = [
        {"resource_type": "sqs.queues", "account": ACCOUNTS[0], "region": "eu-west-1", "items": [{"n": "é"}]}
    ]
    assert sink.get("run-1", ACCOUNTS[0]) is None and sink.keys("run-1") == set()
    sink.put("run-1", ACCOUNTS[0], one, {"calls": 1})
    sink.put("run-1", f"{ACCOUNTS[1]}.eu-west-1", [], {"calls": 0})
    sink.put("run-2", ACCOUNTS[0], [], {"calls": 9})  # another run under the same prefix
    assert sink.get("run-1", ACCOUNTS[0]) == (one, {"calls": 1})
    assert sink.keys("run-1") == {ACCOUNTS[0], f"{ACCOUNTS[1]}.eu-west-1"}
    sink.put("run-1", ACCOUNTS[0], [], {"calls": 2})  # a redelivered shard: same key, replaced
    assert sink.get("run-1", ACCOUNTS[0]) == ([], {"calls": 2})
    assert f"pre/fix/run-1/{ACCOUNTS[0]}.json" in _objects(moto_server, bucket)
    sink.discard("run-1")
    assert sink.keys("run-1") == set() and sink.get("run-1", ACCOUNTS[0]) is None
    assert _objects(moto_server, bucket) == [f"pre/fix/run-2/{ACCOUNTS[0]}.json"]  # the other run's stays
    assert open_shard_sink(sink_spec(sink), engine).get("run-2", ACCOUNTS[0]) == ([], {"calls": 9})
    assert sink_spec(sink) == {"kind": "s3", "uri": f"s3://{bucket}/pre/fix/"}  # a location, no credential
    missing = S3ShardSink(engine, "s3://no-such-bucket-greenfetch/p")
    with pytest.raises(InventoryError, match="s3://no-such-bucket-greenfetch/p/run-1/: ListObjectsV2 failed"):
        missing.keys("run-1")
    engine.close()


@given(
    account=st.from_regex(r"\A\d{12}\Z"),
    types=st.lists(st.sampled_from(TYPES.split(",")), max_size=4),
    regions=st.one_of(
        st.sampled_from(["enabled", "active"]),
        st.lists(st.sampled_from(REGIONS.split(",")), max_size=3).map(tuple),
    ),
    part=st.one_of(st.none(), st.sampled_from(["global", "eu-west-1"])),
)
def test_a_shard_survives_a_broker_message_and_keeps_its_key(account, types, regions, part):
    shard = Shard("r1", account, tuple(types), regions, role=ROLE, part=part, options={"cache_ttl": 0.0})
    again = Shard.from_dict(json.loads(json.dumps(shard.to_dict())))
    assert again == shard and again.key == shard.key
    assert again.key == (account if part is None else f"{account}.{part}")


@given(
    password=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1).filter(
        lambda p: not any(c in p for c in "@/?#")
    )
)
def test_redact_never_shows_a_password(password):
    url = f"redis://:{password}@127.0.0.1:6379/0"
    assert redact(url) == "redis://:***@127.0.0.1:6379/0"
    assert (
        redact(f"Error connecting to {url}: refused")
        == "Error connecting to redis://:***@127.0.0.1:6379/0: refused"
    )
    encoded = f"redis://:{quote(password, safe='')}@127.0.0.1:6379/0"
    assert check_broker_url(encoded) == encoded
    try:
        check_broker_url(url)  # unencoded: accepted, or refused without showing the password
    except ConfigError as exc:
        assert "redis://:***@127.0.0.1:6379/0" in str(exc) and f":{password}@" not in str(exc)
