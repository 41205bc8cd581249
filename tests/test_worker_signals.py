"""How a `greenfetch worker` stops, or refuses to start.

Issue 15: SIGTERM and SIGHUP stop a `greenfetch worker` the way Celery's warm shutdown does.

A real worker process on a real redis-server (free loopback port, ``requirepass``): once it says
``ready.``, the signal must end it promptly with Celery's warm-shutdown exit code (0, ``EX_OK``), no
traceback, and the broker password nowhere in what it printed. A worker that is BUSY with a shard
when SIGTERM comes loses nothing: the shard either finishes before the worker exits, or runs again
elsewhere, and the coordinator writes the same files as a run without workers.

Issue 19: a busy worker whose Redis went away still stops on SIGTERM; a wrong broker password, or no
celery extra, is one line on stderr.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from greenfetch.testing import RedisServer, inventory_server, start_worker, stop_processes, wait_until

PASSWORD = "sigterm-Broker-Secret-7"
WARM_SHUTDOWN = 0  # celery.platforms.EX_OK: what Celery's TERM handler ("worker: Warm shutdown") exits with

pytestmark = pytest.mark.slow


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server on a free loopback port with ``requirepass``; killed by pid."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    with RedisServer(tmp_path, password=PASSWORD) as server:
        yield server


@pytest.fixture
def broker_url(redis_server):
    return redis_server.url


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_an_idle_worker_warmly(broker_url, tmp_path, signum):
    log = tmp_path / "worker.log"
    env = {**os.environ, "GREENFETCH_BROKER_URL": broker_url, "GREENFETCH_CACHE_DIR": str(tmp_path / "cache")}
    proc = start_worker(env, log, name="sig", concurrency=2)
    try:
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
    finally:
        stop_processes([proc])
    text = log.read_text(errors="replace")
    assert code == WARM_SHUTDOWN, text
    assert "Warm shutdown" in text
    assert "Traceback" not in text
    assert PASSWORD not in text
    assert "redis://:**@127.0.0.1" in text  # the banner names the broker, masked


# -- a worker busy with a shard -------------------------------------------------------------------------

ACCOUNTS = ["411111111111", "422222222222", "433333333333", "444444444444"]
SLOW = 1.0  # seconds per call while the workers run: a shard (AssumeRole, then its lists) takes >= 2 x SLOW


@pytest.fixture(scope="module")
def pages_server():
    """The inventory pages on loopback for the module: what they answer is fixed by ``items``."""
    with inventory_server(items=2) as server:
        yield server


@pytest.fixture
def pages(pages_server):
    """The module's pages as if just started: fast (a test slows them with ``control`` for the workers),
    nothing of an earlier test in flight, the counters zeroed."""
    wait_until(lambda: pages_server.stats()["inflight"] <= 0, 30, "an earlier test's calls to end")
    pages_server.control(latency=0.0)
    pages_server.reset_stats()
    return pages_server


@pytest.fixture(scope="module")
def expected(pages_server, tmp_path_factory):
    """The files a run without workers writes (once: the pages do not change): what every run with
    workers must write too."""
    tmp_path = tmp_path_factory.mktemp("local")
    env = {**os.environ, "GREENFETCH_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("GREENFETCH_BROKER_URL", None)
    pages_server.control(latency=0.0)
    local = _inventory(pages_server, tmp_path / "local", env)
    _, err = local.communicate(timeout=60)
    assert local.returncode == 0, err
    files = _files(tmp_path / "local")
    assert len(files) == 2 and all(len(records) == 2 * len(ACCOUNTS) for records in files.values())
    return files


def _inventory(pages, out, env, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "greenfetch.cli",
            "--endpoint-url",
            pages.url,
            "--region",
            "us-east-1",
            "inventory",
            "--accounts",
            ",".join(ACCOUNTS),
            "--role-name",
            "Reader",
            "--regions",
            "us-east-1,eu-west-1",
            "--types",
            "ec2.vpcs,dynamodb.tables",
            "--out",
            str(out),
            "--cache-ttl",
            "0",
            "--no-progress",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _files(out):
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(Path(out).glob("*.json"))}


def _all_acknowledged(client):
    """Nothing left for Redis to hand out again: every delivery acknowledged (the last one lands just
    after the run ends) and the queue empty."""
    wait_until(
        lambda: client.hlen("unacked") == 0 and client.llen("greenfetch") == 0,
        30,
        "every shard delivery to be acknowledged",
    )


def _stop(procs, client):
    stop_processes(procs)
    client.close()


def _worker(env, log, name):
    return start_worker(env, log, name=name, concurrency=1)


def test_sigterm_to_a_busy_worker_loses_no_shard(broker_url, pages, expected, tmp_path):
    import redis

    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": broker_url,
        "GREENFETCH_REDELIVER_AFTER": "30s",
        "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    pages.control(latency=SLOW)
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    procs = [a := _worker(env, log_a, "a")]
    coordinator = _inventory(pages, tmp_path / "shared", env)
    procs.append(coordinator)  # type: ignore[arg-type]
    try:

        def busy_shard():
            """The key of a shard worker a started and has not finished while the server holds a call."""
            for started in client.scan_iter("greenfetch:run:*:started"):
                pending = started.replace(b":started", b":pending")
                for key, who in client.hgetall(started).items():
                    if (
                        who.decode().endswith(f":{a.pid}")
                        and client.sismember(pending, key)
                        and pages.stats()["inflight"] >= 1
                    ):
                        return key.decode()
            return None

        wait_until(busy_shard, 60, "worker a to be busy with a shard")
        shard = busy_shard()
        a.send_signal(signal.SIGTERM)
        procs.append(_worker(env, log_b, "b"))  # where the rest (and a redelivered shard) can run
        code_a = a.wait(timeout=60)
        out, err = coordinator.communicate(timeout=120)
        _all_acknowledged(client)
    finally:
        _stop(procs, client)
    text_a = log_a.read_text(errors="replace")
    text_b = log_b.read_text(errors="replace")
    assert code_a == WARM_SHUTDOWN, text_a
    assert "Traceback" not in text_a + text_b, text_a + text_b
    assert coordinator.returncode == 0, err + text_a + text_b
    assert _files(tmp_path / "shared") == expected  # every record, exactly once, as without workers
    assert not (tmp_path / "shared" / ".greenfetch-shards").exists()
    # Which way nothing was lost: the shard finished in worker a after the signal, or it ran again.
    finished_in_a = re.search(rf"Warm shutdown.*shard {shard} of run \S+: \d+ records", text_a, re.DOTALL)
    ran_again = f"shard {shard} of run" in text_b
    assert finished_in_a or ran_again, text_a + text_b
    assert PASSWORD not in text_a + text_b + out + err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_second_signal_to_a_busy_worker_hands_its_shard_back(broker_url, pages, expected, tmp_path, signum):
    """A second Ctrl-C (or SIGTERM) is Celery's cold shutdown: the busy worker stops at once. Celery
    ignored a second SIGTERM; and for a second Ctrl-C two things went wrong:
    the handler joined the pool inside the signal handler, where gevent may not block (a traceback,
    "Unrecoverable error"), and the gevent pool reported the killed shard as a success, so it was
    acknowledged and gone (the run stalled until the coordinator gave up). Now the worker ends with no
    traceback, the shard goes back to the queue, and another worker finishes the run: same files."""
    import redis

    env = {
        **os.environ,
        "GREENFETCH_BROKER_URL": broker_url,
        "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    pages.control(latency=SLOW * 5)  # a shard takes >= 10 s: only the second Ctrl-C can end it in time
    client = redis.Redis.from_url(broker_url, socket_timeout=5)
    log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
    procs = [a := _worker(env, log_a, "a")]
    coordinator = _inventory(pages, tmp_path / "shared", env)
    procs.append(coordinator)  # type: ignore[arg-type]
    try:
        wait_until(
            lambda: (
                any(client.hlen(k) for k in client.scan_iter("greenfetch:run:*:started"))
                and pages.stats()["inflight"] >= 1
            ),
            60,
            "worker a to be busy with a shard",
        )
        a.send_signal(signum)
        wait_until(lambda: "Warm shutdown" in log_a.read_text(errors="replace"), 30, "the warm shutdown")
        a.send_signal(signum)
        code_a = a.wait(timeout=8)  # well before the shard could finish
        pages.control(latency=0.0)
        procs.append(_worker(env, log_b, "b"))
        out, err = coordinator.communicate(timeout=120)
        _all_acknowledged(client)
    finally:
        _stop(procs, client)
    text_a, text_b = log_a.read_text(errors="replace"), log_b.read_text(errors="replace")
    assert code_a in (0, 1), (code_a, text_a[-300:])  # Celery's codes for a stop, not a crash
    assert "Traceback" not in text_a + text_b and "Unrecoverable error" not in text_a, text_a + text_b
    assert coordinator.returncode == 0, err + text_a + text_b
    assert _files(tmp_path / "shared") == expected  # the abandoned shard ran again, in worker b
    assert len(re.findall(r"shard \d+ of run \S+: \d+ records", text_b)) == len(ACCOUNTS)
    assert PASSWORD not in text_a + text_b + out + err


# -- a worker whose Redis went away -------------------------------------------------------------------


def test_sigterm_stops_a_busy_worker_whose_redis_went_away(redis_server, tmp_path):
    """Redis dies under a busy worker: its shard cannot be recorded done, and Celery's event heartbeat
    (every 2 s, holding the event dispatcher's lock) retried its publish forever, so the consumer's
    restart waited for that lock and no signal ended the worker ("Warm shutdown", "Cold shutdown",
    then nothing until SIGKILL). Now the worker runs without the event heartbeat, and a stopping
    worker's shard stops retrying the broker: SIGTERM ends it in seconds, exit 0, no traceback."""
    from greenfetch.distributed._broker import TASK, new_app
    from greenfetch.distributed._runstate import RunState, redis_client
    from greenfetch.inventory._shard import DirectoryShardSink, Shard
    from greenfetch.inventory._shard_s3 import sink_spec

    url, server = redis_server.url, redis_server
    log = tmp_path / "worker.log"
    with inventory_server(latency=0.5, items=2) as pages:
        # AWS from the worker's own environment (the shard names no endpoint): botocore logged a "Found
        # endpoint" line per client at INFO, half of a worker's log; the shard's own line is enough
        env = {
            **os.environ,
            "GREENFETCH_BROKER_URL": url,
            "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONUNBUFFERED": "1",
            "AWS_ENDPOINT_URL": pages.url,
        }
        worker = _worker(env, log, "gone")
        try:
            shard = Shard(
                "gone1",
                ACCOUNTS[0],
                ("ec2.vpcs",),
                ("us-east-1",),
                role="Reader",
                options={"cache_ttl": 0, "filter_offered": False},
            )
            state = RunState(redis_client(url), shard.run_id)
            state.begin([shard.key])
            sink = sink_spec(DirectoryShardSink(tmp_path / "shards"))
            app = new_app(url, 30.0, name="test-sender")
            app.send_task(
                TASK, args=[{"shard": shard.to_dict(), "sink": sink, "engine": {"region": "us-east-1"}}]
            )
            wait_until(lambda: pages.stats()["inflight"] >= 1, 60, "the worker to be busy with the shard")
            server.stop()
            # the shard's retries back off 0.2, 0.4, 0.8, 1.6 s: five tries are 3 s with Redis gone, past
            # a heartbeat (every 2 s) that would now be retrying its publish
            wait_until(
                lambda: log.read_text(errors="replace").count("the broker is not answering") >= 5,
                30,
                "the shard to retry the broker for 3 s",
            )
            worker.send_signal(signal.SIGTERM)
            code = worker.wait(timeout=10)  # the old worker never exited
        finally:
            _stop([worker], state.client)
    text = log.read_text(errors="replace")
    assert code == WARM_SHUTDOWN, text[-2000:]
    assert "Warm shutdown" in text and "Traceback" not in text, text[-2000:]
    assert re.search(
        rf"shard {ACCOUNTS[0]} of run gone1: records written, but the broker is not answering", text
    )
    # none of botocore's own lines (greenfetch's may name it: Python 3.10's HTTP session is botocore's)
    theirs = [line for line in text.splitlines() if "botocore" in line and "greenfetch: " not in line]
    assert "Found endpoint" not in text and not theirs, text[-2000:]
    assert PASSWORD not in text


# -- a worker that cannot work says so in one line -------------------------------------------------------


def test_a_wrong_broker_password_is_one_line_not_100_retries(redis_server, tmp_path):
    url = redis_server.url
    wrong = url.replace(PASSWORD, "Wrong-Pass-Marker-55")
    env = {**os.environ, "GREENFETCH_BROKER_URL": wrong, "GREENFETCH_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", "worker", "-c", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )  # the old worker retried for minutes
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    port = url.rsplit(":", 1)[1].split("/")[0]
    assert lines[0].startswith(
        f"Error: the broker at redis://:***@127.0.0.1:{port}/0 refused the credentials: "
    )
    assert "Wrong-Pass-Marker-55" not in done.stdout + done.stderr


def test_a_worker_without_the_celery_extra_says_how_to_install_it(tmp_path):
    """The README promises one line; it was a ModuleNotFoundError traceback. Celery is hidden from a
    real `greenfetch worker` process by an import hook (this venv has the extra installed)."""
    hide = (
        "import sys\n"
        "class Hide:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('celery', 'kombu'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Hide())\n"
        "sys.argv = ['greenfetch', 'worker', '--broker', 'redis://127.0.0.1:1/0']\n"
        "from greenfetch.cli import run\n"
        "run()\n"
    )
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert "greenfetch worker needs the celery extra (No module named 'celery')" in line
    assert "pip install 'greenfetch[celery]' (from a checkout: pip install -e '.[celery]')" in line
