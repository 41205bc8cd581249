"""moto's server in a child process, on a free loopback port, spoken to over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from ._child import ChildServer, server_environ

__all__ = ["MotoServer", "free_port"]

_CHILD = Path(__file__).with_name("_moto_child.py")  # moto.server's main, less its per-request waste


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MotoServer(ChildServer):
    """``with MotoServer() as url:`` runs moto's server until the block ends.

    A child process keeps moto's own botocore imports (and their patching) out of the caller.
    ``settings``: moto's own switches (``MOTO_*`` variables) for this server, over the environment's,
    e.g. ``{"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}``.
    """

    def __init__(
        self,
        port: int | None = None,
        startup_timeout: float = 30.0,
        settings: Mapping[str, str] | None = None,
    ):
        self._chosen = port is None  # a port we picked may be taken before moto binds it: pick again
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._timeout = startup_timeout
        self._settings = dict(settings or {})
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        env = server_environ({k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")})
        env.setdefault("MOTO_ALLOW_NONEXISTENT_REGION", "false")
        env.update(self._settings)
        deadline = time.monotonic() + self._timeout
        for attempt in range(3 if self._chosen else 1):
            if attempt:  # ``free_port`` lets its port go before moto binds it: another process's by now
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"
            url = self._started(env, deadline)
            if url is not None:
                return url
        assert self._proc is not None
        raise RuntimeError(f"moto server exited with code {self._proc.returncode} (port {self.port})")

    def _started(self, env: dict[str, str], deadline: float) -> str | None:
        """The URL once moto answers on ``self.port``; None if it exited first (its port taken)."""
        self._proc = subprocess.Popen(
            [sys.executable, str(_CHILD), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return None
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return self.url
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto server did not answer on {self.url} within {self._timeout}s")

    def stop(self) -> None:
        """Kill the server: it holds nothing but memory, and a SIGTERM made it exit the slow way (freeing
        every backend it built: 2-3 s of CPU and up to 10 s of wall after a lane's worth of tests)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
        super().stop()  # reaps it and closes its pipes

    def reset(self) -> None:
        """Forget every resource, so tests start from nothing."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()
