"""The scale-out parts for tests and benchmarks: a real redis-server and real ``greenfetch worker``
processes, started here and stopped by their pids.

``RedisServer(directory, password=...)`` runs redis-server on a free loopback port with no persistence
(a restart loses the queue and every key, as an unpersisted Redis does); ``stop()`` kills it,
``start()`` brings it back on the same port. ``start_worker(env, log)`` starts a worker (or Celery's
own ``celery -A greenfetch.distributed worker -P gevent``) and returns once it logged ``ready.``.
redis-server comes from scripts/install-redis; callers check ``shutil.which("redis-server")``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ._moto import free_port
from ._wait import wait_until

__all__ = ["RedisServer", "start_worker", "stop_processes"]


class RedisServer:
    """redis-server on a free loopback port: no persistence, ``requirepass`` when a password is given,
    its log in ``directory/redis-PORT.log``. ``url`` is the broker URL; ``client`` a redis-py client
    (2 s socket timeout). Started by the constructor unless ``start=False``."""

    def __init__(self, directory: str | Path, *, password: str | None = None, start: bool = True):
        import redis

        self.directory = Path(directory)
        self.password = password
        self.port = free_port()
        self.url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{self.port}/0"
        self.client = redis.Redis.from_url(self.url, socket_timeout=2)
        self.proc: subprocess.Popen[bytes] | None = None
        if start:
            self.start()

    def start(self) -> None:
        """Start it (again, on the same port) and return once it answers PING."""
        auth = ["--requirepass", self.password] if self.password else []
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                *auth,
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / f"redis-{self.port}.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, 10, "redis-server to answer")

    def answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except Exception:  # noqa: BLE001 - not listening (yet, or any more)
            return False

    def stop(self) -> None:
        """SIGKILL, as a crash: nothing is saved. Safe to call twice."""
        if self.proc is not None:
            stop_processes([self.proc])

    def restart(self) -> None:
        """Killed and started again on the same port: empty, as an unpersisted Redis comes back."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self.client.close()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_worker(
    env: Mapping[str, str],
    log: str | Path,
    *,
    name: str = "worker",
    concurrency: int = 2,
    celery_cli: bool = False,
    timeout: float = 60.0,
    args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """A real worker process (``greenfetch worker -c N -n NAME@%h``, or with ``celery_cli`` Celery's
    own command for the same app) with ``env`` and its output in ``log``, returned once it logged
    ``ready.``. One that exits first is an AssertionError holding its log; one that is not ready within
    ``timeout`` is killed and the AssertionError names it."""
    if celery_cli:
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "greenfetch.distributed",
            "worker",
            "-P",
            "gevent",
            "-c",
            str(concurrency),
            "-n",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "INFO",
        ]
    else:
        cmd = [sys.executable, "-m", "greenfetch.cli", "worker", "-c", str(concurrency), "-n", f"{name}@%h"]
    path = Path(log)
    with open(path, "wb") as handle:
        proc = subprocess.Popen([*cmd, *args], env=dict(env), stdout=handle, stderr=subprocess.STDOUT)
    try:
        wait_until(
            lambda: "ready." in path.read_text(errors="replace") or proc.poll() is not None,
            timeout,
            f"worker {name} to start",
        )
    except BaseException:
        stop_processes([proc])
        raise
    assert proc.poll() is None, path.read_text(errors="replace")
    return proc


def stop_processes(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGKILL each process still running and reap it (only these pids)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
