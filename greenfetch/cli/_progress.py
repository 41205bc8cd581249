"""A one-line progress report on stderr: done, failed, rate. Silent unless stderr is a terminal or asked."""

from __future__ import annotations

import sys
import time
from typing import IO

__all__ = ["Progress"]


class Progress:
    def __init__(self, total: int | None = None, enabled: bool | None = None, stream: IO[str] | None = None,
                 interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done, self.failed = total, 0, 0
        self._start = self._last = time.monotonic()
        self._interval = interval

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        now = time.monotonic()
        if self.enabled and (now - self._last >= self._interval or self.done == self.total):
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-9)
        of = f"/{self.total}" if self.total else ""
        bar = ""
        if self.total:
            filled = int(24 * self.done / self.total)
            bar = "[" + "#" * filled + "." * (24 - filled) + "] "
        self.stream.write(f"\r{bar}{self.done}{of} done, {self.failed} failed, {rate:,.0f}/s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
