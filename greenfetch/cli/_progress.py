"""The one progress display: a status line on stderr, redrawn at most every ``interval`` seconds.

Silent unless stderr is a terminal or progress was asked for (``--progress``), so piped runs print
only their data. Batches count results (``update``); inventories count records (``record``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from ..inventory import FAILING

__all__ = ["Progress"]


class Progress:
    def __init__(
        self,
        total: int | None = None,
        enabled: bool | None = None,
        stream: IO[str] | None = None,
        interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.total, self.done, self.failed = total, 0, 0
        self.clock, self._interval = clock, interval
        self._start = self._last = clock()
        self._line = self._batch_line
        # inventory records: items and errors per resource type
        self.items: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self._latest = ""

    def update(self, ok: bool) -> None:
        """One result of a batch."""
        self.done += 1
        self.failed += 0 if ok else 1
        self._maybe_draw(final=self.done == self.total)

    def record(self, rec: Mapping[str, Any]) -> None:
        """One inventory record (a resource type in one account and region)."""
        rtype = self._latest = rec["resource_type"]
        self._line = self._record_line
        self.done += 1
        failing = rec["status"] in FAILING  # not_offered and unavailable are no errors
        self.failed += failing
        self.items[rtype] = self.items.get(rtype, 0) + len(rec["items"])
        self.errors[rtype] = self.errors.get(rtype, 0) + failing
        self._maybe_draw()

    def close(self) -> None:
        if self.enabled and self.done:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _maybe_draw(self, final: bool = False) -> None:
        now = self.clock()
        if self.enabled and (final or now - self._last >= self._interval):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        self.stream.write("\r" + self._line() + " ")
        self.stream.flush()

    def _batch_line(self) -> str:
        rate = self.done / max(self.clock() - self._start, 1e-9)
        of, bar = (f"/{self.total}", self._bar()) if self.total else ("", "")
        return f"{bar}{self.done}{of} done, {self.failed} failed, {rate:,.0f}/s"

    def _bar(self) -> str:
        filled = int(24 * self.done / self.total) if self.total else 0
        return "[" + "#" * filled + "." * (24 - filled) + "] "

    def _record_line(self) -> str:
        rtype = self._latest
        return (
            f"{rtype}: {self.items[rtype]} items, {self.errors[rtype]} errors | {self.done} fetches, "
            f"{sum(self.items.values())} resources, {sum(self.errors.values())} errors"
        )
