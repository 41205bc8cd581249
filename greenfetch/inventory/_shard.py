"""One shard of an inventory, run anywhere: the unit that worker processes and Celery workers share.

A shard is plain data (an account, optionally one part of it such as a region, the resource types and
the run's options) and ``run_shard`` turns it into records with the same ``Inventory`` a local run
uses, so a sharded run writes exactly the records a local one would. The records go to a sink under
a key fixed by the shard (``run_id`` + ``shard.key``): a shard that runs twice (a worker killed after
fetching, a redelivery) overwrites its own key and never duplicates records. Nothing here knows how
the shard arrived (a pipe, a Celery message) or which engine fetches it.

A shard carries no credentials: the worker assumes ``role`` itself, with its own AWS credentials.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._engine import Engine
from .._jsonable import jsonable
from .._kept import kept
from .._storage_errors import storage_error
from ._cache import InventoryCache
from ._catalog import Catalog, catalog, catalog_over_shipped
from ._credentials import AccountCredentials
from ._fetch import Inventory, RunSummary
from ._fileio import atomic_open
from ._overlay import read_overlay
from ._region_status import RegionStatusStore
from ._types import Account, InventoryError, Record, check_account_id

__all__ = ["DirectoryShardSink", "Shard", "ShardSink", "merge_shard", "run_shard", "user_catalog"]

_SHARD_DIR = ".greenfetch-shards"


@dataclass(frozen=True)
class Shard:
    """What one shard fetches. ``regions`` is an explicit list or ``enabled``/``active``. ``part``
    names a slice of the account (say a region, for accounts too big for one worker) when a planner
    splits one; today's planner sends whole accounts (None). A split planner must give each slice
    disjoint types x regions, and an account whose role fails yields ``*`` records in every slice. A
    child type's slice lists its parent itself (written only when the slice's types name it too)."""

    run_id: str
    account: str
    types: tuple[str, ...]
    regions: str | tuple[str, ...] = "enabled"
    exclude_regions: tuple[str, ...] = ()
    role: str | None = None
    account_name: str | None = None
    external_id: str | None = None
    part: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # cache_ttl, cache_not_before, catalog, ...

    def __post_init__(self) -> None:
        check_account_id(self.account)
        for name, value in (("run id", self.run_id), ("part", self.part)):
            if value is None and name == "part":
                continue
            if not value or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
                raise InventoryError(f"shard {name} {value!r} is not valid; use letters, digits, - and _")

    @property
    def key(self) -> str:
        """The sink key: the account, or ``account.part`` for a slice of one."""
        return self.account if self.part is None else f"{self.account}.{self.part}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (a broker message, a pipe frame)."""
        data = asdict(self)
        data["types"] = list(self.types)
        data["regions"] = self.regions if isinstance(self.regions, str) else list(self.regions)
        data["exclude_regions"] = list(self.exclude_regions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Shard:
        regions = data.get("regions", "enabled")
        return cls(
            run_id=data["run_id"],
            account=data["account"],
            types=tuple(data["types"]),
            regions=regions if isinstance(regions, str) else tuple(regions),
            exclude_regions=tuple(data.get("exclude_regions") or ()),
            role=data.get("role"),
            account_name=data.get("account_name"),
            external_id=data.get("external_id"),
            part=data.get("part"),
            options=dict(data.get("options") or {}),
        )


class ShardSink(Protocol):
    """Where shard records go, keyed so a re-run overwrites: ``put`` replaces the key's records."""

    def put(self, run_id: str, key: str, records: list[Record], summary: dict[str, Any]) -> None: ...

    def get(self, run_id: str, key: str) -> tuple[list[Record], dict[str, Any]] | None: ...

    def keys(self, run_id: str) -> set[str]: ...

    def discard(self, run_id: str) -> None: ...


class DirectoryShardSink:
    """One JSON file per shard in ``ROOT/.greenfetch-shards/RUN_ID/KEY.json``, written under a
    temporary name and renamed: a reader sees a shard whole or not at all. ROOT must be a directory
    every worker sees (a shared filesystem; on one machine, the run's ``--out``)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def _dir(self, run_id: str) -> Path:
        return self.root / _SHARD_DIR / run_id

    def put(self, run_id: str, key: str, records: list[Record], summary: dict[str, Any]) -> None:
        text = json.dumps(
            jsonable({"shard": key, "summary": summary, "records": records}), ensure_ascii=False
        )
        path = self._dir(run_id) / f"{key}.json"
        try:
            with atomic_open(path, 0o600) as handle:
                handle.write(text)
        except OSError as exc:  # the worker reports it; the shard is delivered again
            raise storage_error(
                exc, f"cannot write shard file {str(path)!r}", "no partial file is left"
            ) from None

    def get(self, run_id: str, key: str) -> tuple[list[Record], dict[str, Any]] | None:
        """The shard's records and summary; None when it is not there. A file that cannot be read (a
        directory in its place, no permission, not a shard) is a failed shard: no records, and its
        account failed with one line saying why, never a traceback that loses the other shards."""
        path = self._dir(run_id) / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return data["records"], data["summary"]
        except FileNotFoundError:
            return None
        except OSError as exc:
            why = str(storage_error(exc, f"shard {key}: its file {str(path)!r} cannot be read"))
        except (ValueError, KeyError, TypeError) as exc:
            why = f"shard {key}: its file {str(path)!r} is not a shard file ({type(exc).__name__}: {exc})"
        return [], {"accounts_failed": {key.partition(".")[0]: why}}

    def keys(self, run_id: str) -> set[str]:
        folder = self._dir(run_id)
        return {p.name[:-5] for p in folder.glob("*.json")} if folder.is_dir() else set()

    def discard(self, run_id: str) -> None:
        shutil.rmtree(self._dir(run_id), ignore_errors=True)
        try:
            (self.root / _SHARD_DIR).rmdir()  # only when no other run is using it
        except OSError:
            pass


def run_shard(engine: Engine, shard: Shard, sink: ShardSink) -> dict[str, Any]:
    """Fetch one shard with ``engine`` and ``put`` its records; returns the shard's summary.

    Failures of one type, region or role are records (their status says what went wrong), as in a
    local run; only bad shard data raises (InventoryError). The cache is this worker's own
    (``GREENFETCH_CACHE_DIR``), read under the run's rule (``cache_ttl``, ``cache_not_before``) and
    written with every fresh page; the summary carries each record's fetch time (``fetched_at``)."""
    opts = shard.options
    types = _catalog(opts).select(list(shard.types))
    home = engine.config.home_region
    account = Account(shard.account, name=shard.account_name, role=shard.role)
    ttl = opts.get("cache_ttl")
    ttl = engine.config.cache_ttl if ttl is None else float(ttl)
    cache = InventoryCache(ttl, engine.config.cache_dir, not_before=opts.get("cache_not_before"))
    store = _status_store(engine, shard)
    inventory = Inventory(
        engine,
        [account],
        types,
        regions=_regions(shard),
        exclude=shard.exclude_regions,
        credentials=AccountCredentials(engine, shard.role, external_id=shard.external_id, region=home),
        status_store=store,
        cache=cache,
        concurrency=opts.get("concurrency"),
        filter_offered=opts.get("filter_offered", True),
        tags=bool(opts.get("tags", False)),
    )
    try:
        timed = list(inventory.run_with_times())
    finally:  # the pages still waiting for the cache file's next transaction
        cache.close()
    records = [rec for rec, _ in timed]
    summary = {**_summary(inventory.summary), "fetched_at": [when for _, when in timed]}
    sink.put(shard.run_id, shard.key, records, summary)
    return summary


def user_catalog(path: str | None) -> dict[str, Any] | None:
    """A shard's ``catalog`` option: the user's overlay file (``--catalog``) as it reads now, so a
    worker lists the types the coordinator planned with their rows (a user's own child type, a row
    the user changed) whatever its own ``GREENFETCH_CATALOG``; None for the shipped catalog alone."""
    return {"source": path, "overlay": read_overlay(path)} if path else None


_USER_CATALOGS: dict[str, Catalog] = {}  # a worker's shards of one run share their catalog


def _catalog(opts: dict[str, Any]) -> Catalog:
    """The shard's catalog: the shipped one with the coordinator's overlay (``user_catalog``) merged
    over it; a shard of a coordinator that sends none (an older greenfetch) gets this process's. A
    shard from ``--broker`` names the overlay by its SHA-256 and the worker puts it in first
    (``greenfetch.distributed``); a shard that names one and carries none raises InventoryError."""
    if "catalog" not in opts:
        return catalog()
    user = opts["catalog"]
    if not user:
        return catalog(None)
    if "overlay" not in user:  # named by digest only: whoever delivered the shard had to put it in
        raise InventoryError(
            f"the shard names its run's catalog file {user.get('source')!r} (sha256 "
            f"{str(user.get('sha256'))[:12]}) but does not carry it; it is not listed with the shipped "
            "catalog in its place"
        )
    key = (
        json.dumps(user, sort_keys=True) if "sha256" not in user else f"{user['sha256']}:{user.get('source')}"
    )
    found = _USER_CATALOGS.get(key)
    if found is None:
        found = kept(_USER_CATALOGS, key, catalog_over_shipped(user["overlay"], str(user["source"])), 8)
    return found


def _regions(shard: Shard) -> str | list[str]:
    return shard.regions if isinstance(shard.regions, str) else list(shard.regions)


def _status_store(engine: Engine, shard: Shard) -> RegionStatusStore | None:
    spec = shard.options.get("status_store")
    if shard.regions != "active" and not spec:
        return None
    return RegionStatusStore.from_spec(engine, spec)


def _summary(summary: RunSummary) -> dict[str, Any]:
    """What records alone cannot tell the coordinator."""
    return {
        "calls": summary.calls,
        "cached": summary.cached,
        "cached_fetched_at": summary.cached_fetched_at,
        "throttle_attempts": summary.throttle_attempts,
        "regions_skipped": summary.regions_skipped,
        "accounts_ok": sorted(summary.accounts_ok),
        "accounts_failed": dict(summary.accounts_failed),
        "records": summary.records,
        "wall_seconds": round(summary.wall_seconds, 3),
        "tag_calls": summary.tag_calls,
        "tag_seconds": round(summary.tag_seconds, 3),
        "tags_failed": dict(summary.tags_failed),
    }


def merge_shard(total: RunSummary, records: list[Record], summary: dict[str, Any]) -> list[float | None]:
    """Fold one shard's records and summary into the run's summary (as if fetched locally); returns
    each record's fetch time (None where the shard did not say: a worker of an older greenfetch)."""
    for rec in records:
        total.add(rec)
    total.calls += int(summary.get("calls", 0))
    total.cached += int(summary.get("cached", 0))
    if summary.get("cached_fetched_at") is not None:
        total.cached_since(float(summary["cached_fetched_at"]))
    total.throttle_attempts += int(summary.get("throttle_attempts", 0))
    total.regions_skipped += int(summary.get("regions_skipped", 0))
    total.accounts_ok.update(summary.get("accounts_ok", ()))
    total.accounts_failed.update(summary.get("accounts_failed", {}))
    total.tag_calls += int(summary.get("tag_calls", 0))
    total.tag_seconds = max(
        total.tag_seconds, float(summary.get("tag_seconds", 0.0))
    )  # shards run side by side
    total.tags_failed.update(summary.get("tags_failed", {}))
    times = summary.get("fetched_at")
    return list(times) if isinstance(times, list) and len(times) == len(records) else [None] * len(records)
