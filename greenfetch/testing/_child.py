"""What every loopback server of the test kit shares: a child process, stopped the same way."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any

__all__ = ["ChildServer", "server_environ"]


def server_environ(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a server child of the kit, less coverage.py's subprocess switch: under scripts/test's
    coverage the servers (the tests' AWS, not greenfetch) took 90 s of one lane's CPU, against 2 s."""
    return {k: v for k, v in env.items() if k != "COVERAGE_PROCESS_CONFIG"}


class ChildServer:
    """Base of the servers that run in a child process: ``with Server(...) as url:``.

    Subclasses set ``self._proc`` in ``start()`` (which returns the URL).
    """

    _proc: subprocess.Popen[Any] | None = None

    def start(self) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        """Terminate the child (kill it if it lingers) and release its pipes; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
