"""Issue 15: SIGTERM and SIGHUP stop an idle `greenfetch worker` the way Celery's warm shutdown does.

A real worker process on a real redis-server (free loopback port, ``requirepass``): once it says
``ready.``, the signal must end it promptly with Celery's warm-shutdown exit code (0, ``EX_OK``), no
traceback, and the broker password nowhere in what it printed.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from greenfetch.testing import free_port, wait_until

PASSWORD = "sigterm-Broker-Secret-7"
WARM_SHUTDOWN = 0  # celery.platforms.EX_OK: what Celery's TERM handler ("worker: Warm shutdown") exits with

pytestmark = pytest.mark.slow


@pytest.fixture
def broker_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed; scripts/install-redis installs Debian's redis-server")
    import redis

    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--requirepass", PASSWORD, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(url, socket_timeout=2)

    def answers() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    try:
        wait_until(answers, 10, "redis-server to answer")
        yield url
    finally:
        client.close()
        server.kill()
        server.wait(10)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_an_idle_worker_warmly(broker_url, tmp_path, signum):
    log = tmp_path / "worker.log"
    env = {**os.environ, "GREENFETCH_BROKER_URL": broker_url, "GREENFETCH_CACHE_DIR": str(tmp_path / "cache")}
    with open(log, "wb") as handle:
        proc = subprocess.Popen([sys.executable, "-m", "greenfetch.cli", "worker", "-c", "2", "-n", "sig@%h"],
                                env=env, stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "ready." in log.read_text(errors="replace") or proc.poll() is not None, 60,
                   "the worker to be ready")
        assert proc.poll() is None, log.read_text(errors="replace")
        proc.send_signal(signum)
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log.read_text(errors="replace")
    assert code == WARM_SHUTDOWN, text
    assert "Warm shutdown" in text
    assert "Traceback" not in text
    assert PASSWORD not in text
    assert "redis://:**@127.0.0.1" in text  # the banner names the broker, masked
