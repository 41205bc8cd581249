"""Progress on stderr while records arrive, and the end-of-run summary table.

The counting (``Tally``) and the formatting (``format_summary``) are pure; ``InventoryProgress``
only decides when to redraw one status line (a terminal, or when asked).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

from ._types import Record

__all__ = ["InventoryProgress", "format_summary"]


class InventoryProgress:
    """``record(rec)`` per record; the line shows the latest type's items and errors and totals."""

    def __init__(self, enabled: bool | None = None, stream: IO[str] | None = None, interval: float = 0.2,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.clock, self.interval = clock, interval
        self.items: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.records = 0
        self._last = 0.0

    def record(self, rec: Record) -> None:
        rtype = rec["resource_type"]
        self.records += 1
        self.items[rtype] = self.items.get(rtype, 0) + len(rec["items"])
        self.errors[rtype] = self.errors.get(rtype, 0) + (rec["status"] != "ok")
        now = self.clock()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self.stream.write("\r" + self.line(rtype) + " ")
            self.stream.flush()

    def line(self, rtype: str) -> str:
        total, errors = sum(self.items.values()), sum(self.errors.values())
        return (f"{rtype}: {self.items[rtype]} items, {self.errors[rtype]} errors | {self.records} fetches, "
                f"{total} resources, {errors} errors")

    def close(self) -> None:
        if self.enabled and self.records:
            self.stream.write("\n")
            self.stream.flush()


def format_summary(summary: dict[str, Any]) -> str:
    """The summary table: resources and errors per type, then accounts, regions, calls, time."""
    rows = [(t, str(n), str(summary["errors"].get(t, 0))) for t, n in summary["resources"].items()]
    width = max([len("resource type")] + [len(r[0]) for r in rows])
    lines = [f"{'resource type':<{width}}  {'resources':>9}  {'errors':>6}"]
    lines += [f"{t:<{width}}  {n:>9}  {e:>6}" for t, n, e in rows]
    failed = summary["accounts_failed"]
    lines.append(f"accounts: {summary['accounts_ok']} ok, {len(failed)} failed; account-regions: "
                 f"{summary['account_regions_ok']} ok, {summary['account_regions_failed']} with errors, "
                 f"{summary['regions_skipped']} skipped (inactive)")
    lines += [f"  account {acct}: {why}" for acct, why in failed.items()]
    lines.append(f"{summary['records']} fetches, {summary['calls']} calls, {summary['cached']} from cache, "
                 f"{summary['throttled']} throttled ({summary.get('throttle_attempts', 0)} throttled attempts), "
                 f"{summary['wall_seconds']:.2f}s")
    return "\n".join(lines)
