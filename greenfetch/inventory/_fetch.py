"""The orchestrator: accounts x regions x types -> requests through the engine -> records.

One record per (resource type, account, region): ``{resource_type, account, region, items, status,
error}``; global types use region ``global``; an account whose role cannot be assumed gets one
record per type with region ``*`` and the STS error. Nothing here raises for one account, region or
type going wrong: that becomes the record's status (``ok`` or a ``greenfetch.classify`` status such
as denied, unavailable, throttled) and the rest of the run continues.

The plan (one small unit per fetch) is built up front, cache hits are answered from it, and the
misses go through ``engine.iter_results``, paced per scope (service, region, account) by the engine's
adaptive gate and fed least-busy scope first (``_pacing.FairFeed``); results become records as they complete, so response
memory is bounded by the concurrency and by what the caller keeps (the jsonl sink keeps nothing).
Every record has the time its page was fetched (``run_with_times``): now for a fresh fetch, the
original fetch for a page served from the cache. Every fresh page is written to the cache (whatever
its TTL for reading), so the cache never holds a page older than the last one fetched.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from .._adaptive import Gate, Limits, open_gate
from .._engine import Engine
from .._errors import classify
from .._models import Request, Result
from ._catalog import GLOBAL, Detail, ResourceType
from ._children import _ChildCall, _Children
from ._credentials import AccountCredentials
from ._items import _detail_param, _join_tags, _merge, _params, _tag_map
from ._pacing import FairFeed
from ._plan import _CACHE_VERSION, _ancestors, _Fetch, _parents_first, _unit, _where
from ._region_status import RegionStatusStore, record_status, status_of
from ._regions import endpoint_regions, offered_regions_many, opted_in
from ._summary import RunSummary
from ._types import Account, Record, record

__all__ = ["Inventory", "RunSummary"]

# the fetch's adaptive gate: a scope starts at this many in flight (slow start grows it up to the run's
# concurrency); an attempt's latency above the ceiling cuts its scope (high: inventory pages are slow)
_INITIAL = 5
_TARGET_LATENCY = 5.0
_scope_of_unit = operator.attrgetter("scope")  # FairFeed's key: no Python frame a unit
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
        self.tags = tags  # join the Resource Groups Tagging API's tags into every item (see _tag_maps)
        self._tag_maps: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
        self.summary = RunSummary()
        self._offered: dict[str, set[str] | None] = {}
        self._endpoints: dict[str, set[str] | None] = {}
        self._gate: Gate | None = None  # the fetch's adaptive gate (docs/inventory.md, pacing)
        self._waiting: dict[int, list[_Children]] = {}  # id(parent unit) -> the child types it holds up
        # what the plan knows of a possible parent per (type, account, region): its record, or its unit
        self._known: dict[tuple[str, str, str], Record | _Fetch] = {}
        # (items, jsonable(items), marked_json of that) the cache last wrote
        self._plain: tuple[Any, Any, str | None] = (None, None, None)

    # -- the run -------------------------------------------------------------------------------

    def run(self) -> Iterator[Record]:
        """Records as they complete (cached ones first)."""
        for rec, _ in self.run_with_times():
            yield rec

    def plain_items(self, rec: Record) -> Any:
        """``jsonable(rec["items"])`` if the cache just made it, for the record this run yielded last
        (its items unchanged since: a sink that writes JSON need not walk them again); else None."""
        items, plain, _ = self._plain
        return plain if items is rec["items"] and items is not None else None

    def items_json(self, rec: Record) -> str | None:
        """``marked_json(jsonable(rec["items"]))`` if the cache just made it (see ``plain_items``): the
        items' JSON text, which a file sink's record takes rather than encode the items again."""
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
        candidates = self._candidate_regions(ready)
        if self.filter_offered and ready and any(candidates.values()):
            self._prefetch_offered()
        misses: list[_Fetch | _ChildCall] = []
        children: list[_Fetch] = []  # child types to fetch (their calls join the feed later)
        known, parents = self._known, _ancestors(self.types)  # what a child type may wait for
        reading = self.cache is not None and getattr(self.cache, "enabled", True)  # a TTL of 0 reads nothing
        for unit in self._units(ready, candidates):
            if not unit.offered:
                rec = self._not_offered(unit)
                if unit.rtype.name in parents:
                    known[_where(unit)] = rec
                yield self._emit(rec)
                continue
            hit = self.cache.lookup(self._cache_key(unit)) if reading else None
            if hit is not None:
                items, fetched_at = hit
                rec = record(unit.rtype.name, unit.account, unit.region, items)
                if unit.rtype.name in parents:
                    known[_where(unit)] = rec
                yield self._emit(rec, cached=True, fetched_at=fetched_at)
            elif unit.rtype.parent_type is not None:
                children.append(unit)
                yield from self._plan_children(unit, misses)
            else:
                if unit.rtype.name in parents:
                    known[_where(unit)] = unit
                misses.append(unit)
        if self.tags and (misses or children):
            self._fetch_tags([u for u in misses if isinstance(u, _Fetch)] + children)
        yield from self._fetch(misses)
        if self.store is not None:
            self.store.flush()
        self.summary.throttle_attempts = _throttles(self.engine) - throttles_before
        self.summary.wall_seconds = time.perf_counter() - self.summary.started

    def _fetch(self, units: list[_Fetch | _ChildCall]) -> Iterator[tuple[Record, float]]:
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
        results = self.engine.iter_results((u.request for u in feed), self.concurrency, gate=gate)
        resent: dict[int, int] = {}  # id(unit) -> times sent again after ending throttled
        try:
            for result in results:
                unit = feed.sent[result.index]
                again = self._throttled(unit, result) and resent.get(id(unit), 0) < _RESENDS
                if again:  # botocore's retries ran out: once more, now behind its scope's pacer
                    feed.done(unit, again=True)
                    resent[id(unit)] = resent.get(id(unit), 0) + 1
                    self.summary.calls += result.attempts
                    continue
                if isinstance(unit, _ChildCall):
                    done = self._child_answered(unit, result, feed.add)
                    feed.done(unit)
                    yield from done
                    continue
                children = self._waiting.pop(id(unit), None) if self._waiting else None
                if children is None and unit.shown:  # the common case: no child type waits for it
                    feed.done(unit)
                    yield self._fetched(unit, result)
                    continue
                rec, fetched_at = self._fetched(unit, result)
                done = [(rec, fetched_at)] if unit.shown else []
                for family in children or ():  # their calls join the feed before the parent is done
                    done += self._start_children(family, rec, feed.add, result.error_code)
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
        return self._complete(unit, self._record(unit, result), result.attempts, result.error_code)

    def _complete(
        self, unit: _Fetch, rec: Record, calls: int, error_code: str | None
    ) -> tuple[Record, float]:
        """A fetched record's details, tags, cache entry and region status; emitted unless the unit
        is a parent listed only for its child type (its calls still count)."""
        fetched_at = _now()
        if rec["status"] == "ok" and unit.rtype.details and rec["items"]:
            calls += self._details(unit, rec["items"])
        if self.tags and rec["status"] == "ok":
            _join_tags(
                unit.rtype, rec["items"], self._tag_maps.get((unit.account, unit.request.region or ""))
            )
        if rec["status"] == "ok" and self.cache is not None:  # written whatever the TTL for reading
            plain, marked = self.cache.store(self._cache_key(unit), rec["items"], stored_at=fetched_at)
            self._plain = (rec["items"], plain, marked)
        if not unit.shown:
            self.summary.calls += calls
            return rec, fetched_at
        if rec["status"] != "not_offered":  # a child of a parent not offered there: nothing was called
            self._remember(unit, rec, error_code)
        return self._emit(rec, calls=calls, fetched_at=fetched_at)

    def _emit(
        self, rec: Record, *, calls: int = 0, cached: bool = False, fetched_at: float | None = None
    ) -> tuple[Record, float]:
        fetched_at = _now() if fetched_at is None else fetched_at
        self.summary.add(rec, calls=calls, cached=cached, fetched_at=fetched_at)
        if self.on_record is not None:
            self.on_record(rec)
        return rec, fetched_at

    def _record(self, unit: _Fetch, result: Result) -> Record:
        if result.ok:
            return record(unit.rtype.name, unit.account, unit.region, unit.rtype.extract(result.result))
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

    # -- planning ------------------------------------------------------------------------------

    def _candidate_regions(self, ready: list[tuple[Account, Any]]) -> dict[str, list[str]]:
        """Per account, the regions to consider before per-service filtering."""
        if not isinstance(self.regions, str):
            return {a.account_id: [r for r in self.regions if r not in self.exclude] for a, _ in ready}
        if not any(not t.is_global for t in self.types):
            return {a.account_id: [] for a, _ in ready}
        fallback = [self.engine.config.home_region]
        requests = [
            Request(
                "ec2",
                "DescribeRegions",
                {"AllRegions": True},
                region=fallback[0],
                account=a.account_id,
                role=self._role_arn(a),
                credentials=c,
            )
            for a, c in ready
        ]
        out: dict[str, list[str]] = {}
        for result in self.engine.batch_requests(requests, self.concurrency):
            account = ready[result.index][0].account_id
            regions = opted_in(result.result) if result.ok else fallback
            out[account] = [r for r in regions if r not in self.exclude]
        return out

    def _units(self, ready: list[tuple[Account, Any]], candidates: dict[str, list[str]]) -> Iterator[_Fetch]:
        """Account-major, then region, then type: the calls that share a botocore client (same
        account, region and service) run close together, so the engine's client LRU stays hot
        instead of re-creating clients (several ms and ~1 MB each) once per resource type."""
        for account, creds in ready:
            wanted, absent = {}, {}
            for t in self.types:
                regions, missing = self._regions_for(t, account.account_id, candidates[account.account_id])
                wanted[t.name], absent[t.name] = set(regions), set(missing)
            who = account.account_id  # ``Limits.scope_of``'s third part: the request's account
            role = self._role_arn(account)  # one account's, the same for every unit of it
            for region in [GLOBAL, *candidates[account.account_id]]:
                for rtype in self.types:
                    offered = region in wanted[rtype.name]
                    if not offered and region not in absent[rtype.name]:
                        continue
                    api_region = rtype.api_region if region == GLOBAL else region
                    request = Request.built(  # Request(...) without the frozen __init__'s cost
                        rtype.service,
                        rtype.operation,
                        _params(rtype.params, who),
                        region=api_region,
                        account=who,
                        role=role,
                        credentials=creds,
                        paginate=rtype.paginate,
                    )
                    scope = f"{rtype.service}/{api_region or 'default'}/{who}"  # Limits.scope_of(request)
                    yield _unit(rtype, who, region, request, scope, offered)

    def _regions_for(
        self, rtype: ResourceType, account: str, candidates: list[str]
    ) -> tuple[list[str], list[str]]:
        """(the regions to call, the candidates where the type's service is not offered)."""
        if rtype.is_global:
            return [GLOBAL], []
        regions, missing = candidates, []
        if self.filter_offered:
            offered = self._offered_for(rtype)
            if offered is not None:
                regions = [r for r in candidates if r in offered]
                missing = [r for r in candidates if r not in offered]
        if self.regions == "active" and self.store is not None:
            active = self.store.active_regions(account, rtype.name, regions)
            self.summary.regions_skipped += len(regions) - len(active)
            regions = active
        return regions, missing

    def _offered_for(self, rtype: ResourceType) -> set[str] | None:
        """Where the type's service is offered: SSM's list, else botocore's endpoint data, else None
        (nothing knows: called everywhere rather than dropped)."""
        name = rtype.ssm_service or rtype.service
        if name not in self._offered:
            self._offered.update(offered_regions_many(self.engine, [name], cache=self.cache))
        if self._offered[name] is not None:
            return self._offered[name]
        if rtype.service not in self._endpoints:
            self._endpoints.update(endpoint_regions(self.engine, [rtype.service]))
        return self._endpoints[rtype.service]

    def _not_offered(self, unit: _Fetch) -> Record:
        name = unit.rtype.ssm_service or unit.rtype.service
        source = (
            "SSM's global-infrastructure list"
            if self._offered.get(name) is not None
            else "botocore's endpoint data"
        )
        return record(
            unit.rtype.name,
            unit.account,
            unit.region,
            [],
            "not_offered",
            f"{unit.rtype.service} is not offered in {unit.region} ({source}); nothing was called",
        )

    def _prefetch_offered(self) -> None:
        """Where each regional type's service is offered, read for every service at once."""
        names = {t.ssm_service or t.service for t in self.types if not t.is_global} - set(self._offered)
        if names:
            self._offered.update(
                offered_regions_many(
                    self.engine, sorted(names), cache=self.cache, concurrency=self.concurrency
                )
            )

    def _role_arn(self, account: Account) -> str | None:
        status = self.credentials.status(account)
        return status.role_arn if status is not None else None

    def _cache_key(self, unit: _Fetch) -> str:
        """The request's signature and the endpoint its page comes from (a test server's page is not AWS's)."""
        endpoint = self.engine.config.endpoint_url
        tagged = "+tags" if self.tags else ""  # a page cached without the tags join is not one with them
        return f"{_CACHE_VERSION}:{unit.rtype.name}{tagged}:{unit.request.signature}" + (
            f"@{endpoint}" if endpoint else ""
        )

    # -- detail steps ---------------------------------------------------------------------------

    def _details(self, unit: _Fetch, items: list[Any]) -> int:
        """Run each detail step for every item, in parallel; returns the calls made."""
        calls = 0
        for detail in unit.rtype.details:
            requests = [self._detail_request(unit, detail, item) for item in items]
            for result in self.engine.iter_results(requests, self.detail_concurrency, gate=self._gate):
                _merge(items[result.index], detail, result)
                calls += result.attempts
        return calls

    def _detail_request(self, unit: _Fetch, detail: Detail, item: dict[str, Any]) -> Request:
        where = {"account": unit.account, "region": unit.request.region}
        given = {name: _detail_param(spec, item, where) for name, spec in detail.params.items()}
        params = {**detail.extra, **{k: v for k, v in given.items() if v is not None}}
        region = (item.get(detail.region_from) if detail.region_from else None) or unit.request.region
        return replace(
            unit.request, operation=detail.operation, params=params, region=region, paginate=detail.paginate
        )

    # -- child types -----------------------------------------------------------------------------

    def _plan_children(
        self, unit: _Fetch, misses: list[_Fetch | _ChildCall]
    ) -> Iterator[tuple[Record, float]]:
        """A child type's (account, region) to fetch: its parent's outcome there, or the parent listed
        for it (a unit of its own, not shown, when the parent type is not selected or was skipped).
        A parent already known (cached, not offered) starts the child's calls at once."""
        parent_type = unit.rtype.parent_type
        assert parent_type is not None
        family, known = _Children(unit), self._known
        known[_where(unit)] = unit  # the parent of its own child types, if any
        key = (parent_type.name, unit.account, unit.region)
        if key not in known:
            request = replace(
                unit.request,
                operation=parent_type.operation,
                params=_params(parent_type.params, unit.account),
                region=parent_type.api_region if unit.region == GLOBAL else unit.region,
                paginate=parent_type.paginate,
            )
            hidden = _Fetch(
                parent_type, unit.account, unit.region, request, Limits.scope_of(request), shown=False
            )
            hit = self.cache.lookup(self._cache_key(hidden)) if self.cache is not None else None
            if hit is not None:
                known[key] = record(parent_type.name, unit.account, unit.region, hit[0])
            elif parent_type.parent_type is not None:  # a child itself: its own parent first
                yield from self._plan_children(hidden, misses)
            else:
                known[key] = hidden
                misses.append(hidden)
        parent = known[key]  # a record once it is complete (a child of a known parent may be already)
        if isinstance(parent, _Fetch):
            self._waiting.setdefault(id(parent), []).append(family)
        else:
            yield from self._start_children(family, parent, misses.extend)

    def _start_children(
        self,
        family: _Children,
        parent: Record,
        add: Callable[[list[Any]], None],
        code: str | None = None,
    ) -> list[tuple[Record, float]]:
        """The parent's record is in: one call per parent item goes to ``add``. A parent that was not
        listed gives the child its status (``code``: the parent's error code), naming the parent; a
        parent with no items, an ok record with none. Returns the child's record when it is complete already."""
        unit = family.unit
        ptype = unit.rtype.parent_type
        assert ptype is not None
        if parent["status"] != "ok":
            error = f"its parent type {ptype.name} was not listed: {parent['error']}"
            family.failure = record(unit.rtype.name, unit.account, unit.region, [], parent["status"], error)
            family.code = code
            return self._finish_children(family, add)
        calls: list[_ChildCall] = []
        where = {"account": unit.account, "region": unit.request.region}
        for item in parent["items"]:
            given = {name: _detail_param(spec, item, where) for name, spec in unit.rtype.each.items()}
            absent = [name for name, value in given.items() if value is None]
            if absent:  # leaving it out would list something else (ECS: the default cluster)
                family.failure = family.failure or record(
                    unit.rtype.name,
                    unit.account,
                    unit.region,
                    [],
                    "error",
                    f"{ptype.name} item {ptype.resource_id(item)!r} gives no {absent[0]} "
                    f"(each.{absent[0]}: {unit.rtype.each[absent[0]]!r}); nothing was called for it",
                )
                continue
            params = {**unit.request.params, **given}
            request = replace(unit.request, params=params)
            calls.append(_ChildCall(family, ptype.resource_id(item), request))
        family.pending = len(calls)
        if not calls:
            return self._finish_children(family, add)
        add(calls)
        return []

    def _child_answered(
        self, call: _ChildCall, result: Result, add: Callable[[list[Any]], None]
    ) -> list[tuple[Record, float]]:
        """One child call is in: its items (each with ``parent``) join the child's. A parent item that
        is gone by now (not found) gives none; any other failure fails the child, naming the parent
        item. Returns the child's record once its last call is in."""
        family = call.family
        family.pending -= 1
        family.calls += result.attempts
        unit = family.unit
        if result.ok:
            for item in unit.rtype.extract(result.result):
                if isinstance(item, dict):
                    item["parent"] = call.parent_id
                family.items.append(item)
        elif (
            family.failure is None
            and classify(result.error_code, service=unit.rtype.service).status != "not_found"
        ):
            rec = self._record(unit, result)
            ptype = unit.rtype.parent_type
            rec["error"] = f"{rec['error']} (for {ptype.name if ptype else 'parent'} {call.parent_id!r})"
            family.failure, family.code = rec, result.error_code
        return self._finish_children(family, add) if family.pending == 0 else []

    def _finish_children(
        self, family: _Children, add: Callable[[list[Any]], None]
    ) -> list[tuple[Record, float]]:
        """The child's record (when shown), and its own child types' calls started."""
        unit = family.unit
        rec = family.failure or record(unit.rtype.name, unit.account, unit.region, family.items)
        rec, fetched_at = self._complete(unit, rec, family.calls, family.code)
        self._known[_where(unit)] = rec
        done = [(rec, fetched_at)] if unit.shown else []
        for child in self._waiting.pop(id(unit), ()):
            done += self._start_children(child, rec, add, family.code)
        return done

    # -- tags ------------------------------------------------------------------------------------

    def _fetch_tags(self, units: list[_Fetch]) -> None:
        """The tags of every taggable resource, once per (account, API region) the units call: one
        paginated GetResources (100 resources a page), all of them at once through the engine. A
        failed one leaves that region's items with their own tags only and is named in the summary."""
        wanted: dict[tuple[str, str], Request] = {}
        for unit in units:
            key = (unit.account, unit.request.region or "")
            if key not in wanted:
                wanted[key] = replace(
                    unit.request,
                    service="resourcegroupstaggingapi",
                    operation="GetResources",
                    params={"ResourcesPerPage": 100},
                    paginate=True,
                )
        keys = list(wanted)
        started = time.perf_counter()
        for result in self.engine.iter_results(list(wanted.values()), self.concurrency):
            key = keys[result.index]
            self.summary.calls += result.attempts
            self.summary.tag_calls += result.attempts
            if not result.ok:
                self.summary.tags_failed[f"{key[0]}/{key[1]}"] = result.error_code or "error"
                continue
            found = (result.result or {}).get("ResourceTagMappingList") or []
            self._tag_maps[key] = {
                row["ResourceARN"]: _tag_map(row.get("Tags"))
                for row in found
                if isinstance(row, dict) and row.get("ResourceARN")
            }
        self.summary.tag_seconds += time.perf_counter() - started


def _now() -> float:
    """Now in epoch seconds, to the millisecond a database stores it with."""
    return round(time.time(), 3)


def _throttles(engine: Engine) -> int:
    try:
        return sum(int(row.get("throttles", 0)) for row in engine.metrics.perf_stats())
    except AttributeError:  # an engine without metrics
        return 0
