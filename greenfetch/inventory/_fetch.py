"""The orchestrator: accounts x regions x types -> requests through the engine -> records.

One record per (resource type, account, region): ``{resource_type, account, region, items, status,
error}``; global types use region ``global``; an account whose role cannot be assumed gets one
record per type with region ``*`` and the STS error. Nothing here raises for one account, region or
type going wrong: that becomes the record's status (``ok`` or a ``greenfetch.classify`` status such
as denied, unavailable, throttled) and the rest of the run continues.

The plan (``_plan.Plan``: one small unit per fetch) is built up front, cache hits are answered from it,
and the misses go through ``engine.iter_results``, paced per scope (service, region, account) by the
engine's adaptive gate and fed least-busy scope first (``_pacing.FairFeed``); results become records as
they complete, so response memory is bounded by the concurrency and by what the caller keeps (the jsonl
sink keeps nothing). A child type's calls join the feed when its parent's record is in
(``_children.ChildTypes``); a completed record gets its detail steps (``_details``) and its tags
(``_tags``). Every record has the time its page was fetched (``run_with_times``): now for a fresh
fetch, the original fetch for a page served from the cache. Every fresh page is written to the cache
(whatever its TTL for reading), so the cache never holds a page older than the last one fetched.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from .._adaptive import Gate, open_gate
from .._caller import BotocoreCaller
from .._engine import Engine
from .._errors import classify
from .._models import Result
from ._catalog import ResourceType
from ._children import ChildTypes, _ChildCall
from ._credentials import AccountCredentials
from ._details import fetch_details
from ._pacing import FairFeed
from ._plan import Plan, _Fetch, _parents_first
from ._region_status import RegionStatusStore, record_status, status_of
from ._summary import RunSummary
from ._tags import TagMaps
from ._types import Account, Record, record

__all__ = ["Inventory", "RunSummary"]

# the fetch's adaptive gate: a scope starts at this many in flight (slow start grows it up to the run's
# concurrency); an attempt's latency above the ceiling cuts its scope (high: inventory pages are slow)
_INITIAL = 5
_TARGET_LATENCY = 5.0
_scope_of_unit = operator.attrgetter("scope")  # FairFeed's key: no Python frame a unit
_request_of = operator.attrgetter("request")  # what the feed hands the engine: no generator frame a unit
_RESENDS = 2  # a call that ends throttled (botocore's retries spent) is sent again this many times


class Inventory:
    """One inventory run. ``regions`` is an explicit list of region names, or ``"enabled"`` /
    ``"active"`` (per account from DescribeRegions, and for ``active`` also the status store)."""

    def __init__(
        self,
        engine: Engine,
        accounts: Sequence[Account],
        types: Sequence[ResourceType],
        *,
        regions: str | Sequence[str] = "enabled",
        exclude: Iterable[str] = (),
        credentials: AccountCredentials | None = None,
        status_store: RegionStatusStore | None = None,
        cache: Any = None,
        concurrency: int | None = None,
        detail_concurrency: int = 16,
        filter_offered: bool = True,
        on_record: Callable[[Record], None] | None = None,
        tags: bool = False,
    ):
        self.engine, self.accounts, self.types = engine, list(accounts), _parents_first(types)
        self.regions, self.exclude = regions, set(exclude)
        self.credentials = credentials or AccountCredentials(engine)
        self.store, self.cache = status_store, cache
        self.concurrency = concurrency or engine.config.concurrency
        self.detail_concurrency, self.filter_offered = detail_concurrency, filter_offered
        self.on_record = on_record
        self.tags = tags  # join the Resource Groups Tagging API's tags into every item (``_tags``)
        self.summary = RunSummary()
        self._plan = Plan(
            engine,
            self.types,
            regions=regions,
            exclude=self.exclude,
            credentials=self.credentials,
            store=status_store,
            cache=cache,
            concurrency=self.concurrency,
            filter_offered=filter_offered,
            tags=tags,
            summary=self.summary,
        )
        self._tag_maps = TagMaps(engine, self.concurrency, self.summary)
        self._gate: Gate | None = None  # the fetch's adaptive gate (docs/inventory.md, pacing)
        # answers parsed by botocore, whose dicts have str keys only (member names, maps' string keys):
        # the cache need not look for other keys in a page's text (any other caller's answer may hold any)
        self._str_keys = type(getattr(engine, "caller", None)) is BotocoreCaller
        # (items, jsonable(items) or None when not made, marked_json of that) the cache last wrote
        self._plain: tuple[Any, Any, str | None] = (None, None, None)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Iterator[Record]:
        """Records as they complete (cached ones first)."""
        for rec, _ in self.run_with_times():
            yield rec

    def plain_items(self, rec: Record) -> Any:
        """``jsonable(rec["items"])`` if the cache just made it (its memory tier keeps it: a TTL above
        0), for the record this run yielded last (its items unchanged since: a sink that writes JSON
        need not walk them again); else None. With a TTL of 0 the cache writes the items' text without
        making it (``items_json`` is there all the same)."""
        items, plain, _ = self._plain
        return plain if items is rec["items"] and items is not None else None

    def items_json(self, rec: Record) -> str | None:
        """``marked_json(jsonable(rec["items"]))`` if the cache just wrote it, for the record this run
        yielded last: the items' JSON text, which a file sink's record takes rather than encode the
        items again; else None."""
        items, _, marked = self._plain
        return marked if items is rec["items"] and items is not None else None

    def run_with_times(self) -> Iterator[tuple[Record, float]]:
        """``(record, fetched_at)`` as they complete: epoch seconds (whole milliseconds) when the
        record's page was fetched, by this run or, for a page served from the cache, by an earlier one."""
        throttles_before = _throttles(self.engine)
        creds = self.credentials.prefetch(self.accounts)
        ready: list[tuple[Account, Any]] = []
        for account in self.accounts:
            status = self.credentials.status(account)
            if status is None or not status.ok:  # no status is no credentials: never "use the caller's own"
                error = (
                    status.error if status is not None else "no credentials were looked up for this account"
                )
                code = status.status if status is not None else "error"
                self.summary.accounts_failed[account.account_id] = error or code
                for rtype in self.types:
                    yield self._emit(record(rtype.name, account.account_id, "*", [], code, error))
                continue
            self.summary.accounts_ok.add(account.account_id)
            ready.append((account, creds.get(account.account_id)))
        plan = self._plan
        candidates = plan.candidate_regions(ready)
        plan.prefetch_offered(candidates)
        misses: list[_Fetch | _ChildCall] = []
        children: list[_Fetch] = []  # child types to fetch (their calls join the feed later)
        # what a child type may wait for; made for this run, not kept: it calls back into this
        # Inventory, which then would be a reference cycle the collector frees only in a full collection
        child_types = ChildTypes(
            self.types,
            cache=self.cache,
            cache_key=plan.cache_key,
            complete=self._complete,
            failed=self._failed,
        )
        parents = child_types.parents
        reading = self.cache is not None and getattr(self.cache, "enabled", True)  # a TTL of 0 reads nothing
        for unit in plan.units(ready, candidates):
            if not unit.offered:
                rec = plan.not_offered(unit)
                if unit.rtype.name in parents:
                    child_types.know(unit, rec)
                yield self._emit(rec)
                continue
            hit = self.cache.lookup(plan.cache_key(unit)) if reading else None
            if hit is not None:
                items, fetched_at = hit
                rec = record(unit.rtype.name, unit.account, unit.region, items)
                if unit.rtype.name in parents:
                    child_types.know(unit, rec)
                yield self._emit(rec, cached=True, fetched_at=fetched_at)
            elif unit.rtype.parent_type is not None:
                children.append(unit)
                yield from child_types.plan(unit, misses)
            else:
                if unit.rtype.name in parents:
                    child_types.know(unit, unit)
                misses.append(unit)
        if self.tags and (misses or children):
            self._tag_maps.fetch([u for u in misses if isinstance(u, _Fetch)] + children)
        yield from self._fetch(misses, child_types)
        if self.store is not None:
            self.store.flush()
        if hasattr(self.cache, "flush"):  # the run's last pages, for the next run to read
            self.cache.flush()
        self.summary.throttle_attempts = _throttles(self.engine) - throttles_before
        self.summary.wall_seconds = time.perf_counter() - self.summary.started

    def _fetch(
        self, units: list[_Fetch | _ChildCall], child_types: ChildTypes
    ) -> Iterator[tuple[Record, float]]:
        """The misses through the engine, paced per scope (service, region, account): the adaptive
        gate caps each scope's concurrency and, after a throttle, its send rate; the fair feeder
        (``_pacing.FairFeed``) hands out the least busy scope's request first and never more for a
        scope than its limit, so requests waiting on one throttled scope do not hold the run's slots."""
        if not units:
            return
        limits = self.engine.limits
        self._gate = gate = open_gate(
            limits, min(_INITIAL, self.concurrency), _TARGET_LATENCY, 1, self.concurrency
        )
        feed = FairFeed(units, _scope_of_unit, lambda scope: limits.limiter(scope).limit)
        results = self.engine.iter_results(map(_request_of, feed), self.concurrency, gate=gate)
        resent: dict[int, int] = {}  # id(unit) -> times sent again after ending throttled
        waits = child_types.waiting()  # a child type waits for a parent among these (the plan is done)
        try:
            for result in results:
                unit = feed.sent[result.index]
                again = (  # result.ok: no Python call a result
                    result.error is not None
                    and self._throttled(unit, result)
                    and resent.get(id(unit), 0) < _RESENDS
                )
                if again:  # botocore's retries ran out: once more, now behind its scope's pacer
                    feed.done(unit, again=True)
                    resent[id(unit)] = resent.get(id(unit), 0) + 1
                    self.summary.calls += result.attempts
                    continue
                if isinstance(unit, _ChildCall):
                    done = child_types.answered(unit, result, feed.add)
                    feed.done(unit)
                    yield from done
                    continue
                held = child_types.held_up_by(unit) if waits else None
                if held is None and unit.shown:  # the common case: no child type waits for it
                    feed.done(unit)
                    yield self._fetched(unit, result)
                    continue
                rec, fetched_at = self._fetched(unit, result)
                done = [(rec, fetched_at)] if unit.shown else []
                if held:  # their calls join the feed before the parent is done
                    done += child_types.parent_listed(held, rec, feed.add, result.error_code)
                feed.done(unit)
                yield from done
        finally:
            feed.close()
            close = getattr(results, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _throttled(unit: _Fetch | _ChildCall, result: Result) -> bool:
        return (
            not result.ok
            and record_status(result.error_code, service=unit.rtype.service, operation=unit.rtype.operation)
            == "throttled"
        )

    def _fetched(self, unit: _Fetch, result: Result) -> tuple[Record, float]:
        if result.error is None:  # result.ok: the record made here (a Python frame less a record)
            rtype = unit.rtype
            rec = record(rtype.name, unit.account, unit.region, rtype.extract(result.result))
        else:
            rec = self._failed(unit, result)
        return self._complete(unit, rec, result.attempts, result.error_code)

    def _complete(
        self, unit: _Fetch, rec: Record, calls: int, error_code: str | None
    ) -> tuple[Record, float]:
        """A fetched record's details, tags, cache entry and region status; emitted unless the unit
        is a parent listed only for its child type (its calls still count)."""
        fetched_at = _now()
        if rec["status"] == "ok" and unit.rtype.details and rec["items"]:
            calls += fetch_details(self.engine, unit, rec["items"], self.detail_concurrency, self._gate)
        if self.tags and rec["status"] == "ok":
            self._tag_maps.join(unit, rec["items"])
        if rec["status"] == "ok" and self.cache is not None:  # written whatever the TTL for reading
            plain, marked = self.cache.store(  # by position (stored_at, str_keys, plain_key): no keywords
                self._plan.cache_key(unit),
                rec["items"],
                fetched_at,
                self._str_keys and not unit.rtype.details,  # a type's details may add any keys
                self._plan.plain_keys,  # the key's parts need no escape: it is written as it is
            )
            unit.key = None  # (kept from the lookup for this store only: not held to the run's end)
            self._plain = (rec["items"], plain, marked)
        if not unit.shown:
            self.summary.calls += calls
            return rec, fetched_at
        if self.store is not None and rec["status"] != "not_offered":  # not_offered: nothing was called
            self._remember(unit, rec, error_code)
        return self._emit(rec, calls, False, fetched_at)  # positional: no keywords matched a record

    def _emit(
        self, rec: Record, calls: int = 0, cached: bool = False, fetched_at: float | None = None
    ) -> tuple[Record, float]:
        fetched_at = _now() if fetched_at is None else fetched_at
        self.summary.add(rec, calls, cached, fetched_at)
        if self.on_record is not None:
            self.on_record(rec)
        return rec, fetched_at

    def _failed(self, unit: _Fetch, result: Result) -> Record:
        """The record of a call that failed (its status from its error; refused credentials noted)."""
        rtype = unit.rtype
        info = classify(result.error_code, service=rtype.service, operation=rtype.operation)
        assumed = self.credentials.status(unit.account)
        if info.credentials or (
            assumed is not None and not assumed.ok
        ):  # refused credentials, or a failed refresh
            self.summary.credentials_failed(unit.account, result.error or info.status)
        status = record_status(
            result.error_code, service=rtype.service, operation=rtype.operation, message=result.error or ""
        )
        return record(rtype.name, unit.account, unit.region, [], status, result.error)

    def _remember(self, unit: _Fetch, rec: Record, code: str | None) -> None:
        if self.store is None or unit.rtype.is_global:
            return
        ok = rec["status"] == "ok"
        count = len(rec["items"]) if ok else None
        status = status_of(ok, count or 0, code, unit.rtype.service, rec["error"] or "")
        # keyed by resource type, not service: ec2.vpcs found (a default VPC) must not be overwritten
        # by ec2.instances empty in the same region, or ``active`` would skip VPCs next time.
        self.store.update(unit.account, unit.rtype.name, unit.region, status, code, count)


def _now() -> float:
    """Now in epoch seconds, to the millisecond a database stores it with: the double nearest a whole
    millisecond, as ``round(time.time(), 3)`` gives, from the clock's integer nanoseconds (a float's
    ``round`` to 3 digits goes through its decimal text: ~3k instructions a record)."""
    return (time.time_ns() + 500_000) // 1_000_000 / 1000


def _throttles(engine: Engine) -> int:
    try:
        return sum(int(row.get("throttles", 0)) for row in engine.metrics.perf_stats())
    except AttributeError:  # an engine without metrics
        return 0
