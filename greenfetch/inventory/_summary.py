"""``RunSummary``: what a run's end-of-run summary counts (records per type and status, accounts and
regions ok or failed, calls, cache hits, time), added to as each record completes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ._region_status import FAILING
from ._types import Record, utc_iso

__all__ = ["RunSummary"]


@dataclass
class RunSummary:
    """What the end-of-run summary prints: per type counts, account/region outcomes, calls, time.
    ``errors`` counts, per type, the records a user should act on (``FAILING``: denied, expired,
    throttled, error); ``statuses`` counts every record's status per service."""

    items: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    accounts_ok: set[str] = field(default_factory=set)
    accounts_failed: dict[str, str] = field(default_factory=dict)
    regions_ok: set[tuple[str, str]] = field(default_factory=set)
    regions_failed: set[tuple[str, str]] = field(default_factory=set)
    regions_skipped: int = 0
    calls: int = 0
    throttled: int = 0  # fetches that ended throttled (retries exhausted)
    throttle_attempts: int = 0  # HTTP attempts AWS throttled (retried or not), from the engine's metrics
    cached: int = 0
    cached_fetched_at: float | None = None  # when the oldest page served from the cache was fetched
    tag_calls: int = 0  # tagging API calls (--tags), also counted in calls
    tag_seconds: float = 0.0  # wall time of the tags fetch, before the types' fetch
    tags_failed: dict[str, str] = field(default_factory=dict)  # "account/region" -> error code
    records: int = 0
    started: float = field(default_factory=time.perf_counter)
    wall_seconds: float = 0.0
    # per type, its service's counts in ``statuses`` (``add`` finds them once a type, not once a record)
    _counts: dict[str, dict[str, int]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def failed(self) -> bool:
        return bool(self.accounts_failed or any(self.errors.values()))

    def credentials_failed(self, account: str, error: str) -> None:
        """A fetch of ``account`` failed for its credentials (expired, refused, not renewable): the
        account is not ok, whatever its first AssumeRole said."""
        self.accounts_ok.discard(account)
        self.accounts_failed.setdefault(account, error)

    def add(self, rec: Record, calls: int = 0, cached: bool = False, fetched_at: float | None = None) -> None:
        """One record more (``calls`` its API calls; ``cached``: served from the cache, fetched at
        ``fetched_at``). Positional or keyword: the fetch passes them by position (a keyword is matched
        by name at every call, ~0.2k instructions a record each)."""
        rtype, status = rec["resource_type"], rec["status"]
        self.records += 1
        self.calls += calls
        if cached:
            self.cached += cached
            if fetched_at is not None:
                self.cached_since(fetched_at)
        items = self.items
        items[rtype] = items.get(rtype, 0) + len(rec["items"])
        counts = self._counts.get(rtype)
        if counts is None:  # the type's first record: its error count and its service's status counts
            self.errors.setdefault(rtype, 0)
            counts = self._counts[rtype] = self.statuses.setdefault(rtype.partition(".")[0], {})
        counts[status] = counts.get(status, 0) + 1
        if status == "ok":  # not FAILING
            self.regions_ok.add((rec["account"], rec["region"]))
        elif status in FAILING:
            self.errors[rtype] += 1
            self.regions_failed.add((rec["account"], rec["region"]))
            self.throttled += status == "throttled"

    def regions_inactive(self, count: int) -> None:
        """``regions="active"`` left this many of a type's regions out (found empty or failing lately)."""
        self.regions_skipped += count

    def tag_call(self, attempts: int, failed: str | None = None, code: str | None = None) -> None:
        """One tagging API call (``--tags``): its attempts count as calls; a failed one is named by its
        ``failed`` ("account/region") with its error ``code``."""
        self.calls += attempts
        self.tag_calls += attempts
        if failed is not None:
            self.tags_failed[failed] = code or "error"

    def tagging_took(self, seconds: float) -> None:
        """The tags fetch's wall time, before the types' fetch."""
        self.tag_seconds += seconds

    def cached_since(self, fetched_at: float) -> None:
        """Note a page served from the cache that was fetched at ``fetched_at`` (keeps the oldest)."""
        if self.cached_fetched_at is None or fetched_at < self.cached_fetched_at:
            self.cached_fetched_at = fetched_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "resources": dict(sorted(self.items.items())),
            "errors": dict(sorted(self.errors.items())),
            "statuses": {svc: dict(sorted(c.items())) for svc, c in sorted(self.statuses.items())},
            "accounts_ok": len(self.accounts_ok),
            "accounts_failed": dict(sorted(self.accounts_failed.items())),
            "account_regions_ok": len(self.regions_ok - self.regions_failed),
            "account_regions_failed": len(self.regions_failed),
            "regions_skipped": self.regions_skipped,
            "records": self.records,
            "calls": self.calls,
            "cached": self.cached,
            "cached_fetched_at": utc_iso(self.cached_fetched_at)
            if self.cached_fetched_at is not None
            else None,
            "throttled": self.throttled,
            "throttle_attempts": self.throttle_attempts,
            "wall_seconds": round(self.wall_seconds, 3),
            **(
                {
                    "tag_calls": self.tag_calls,
                    "tag_seconds": round(self.tag_seconds, 3),
                    "tags_failed": dict(sorted(self.tags_failed.items())),
                }
                if self.tag_calls
                else {}
            ),
        }
