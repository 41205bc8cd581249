"""The inventory's plan: one small unit per (resource type, account, region) to fetch.

``Plan`` makes the units: per account its candidate regions (the run's list, or the account's enabled
regions from DescribeRegions), per type the regions where its service is offered (SSM's list, else
botocore's endpoint data; a candidate where it is not becomes a ``not_offered`` unit, no call) and, with
``regions="active"``, that the region status store does not skip; in windows of (region, type) pairs
that fit the engine's client LRU, each run account by account (``Plan.units``).
Each unit (``_Fetch``, slots: the type, the account, the record's region, the request and its scope, the
fair feed's key) is made cheaply (``Request.listed``, the unit's plain ``__init__``:
docs/performance/inventory-cost.md, the inventory command's own cost, parts 6 and 14). ``Plan.cache_key`` names a unit's page in the cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .._engine import Engine
from .._jsonable import json_string
from .._models import Request
from ._catalog import GLOBAL, ResourceType
from ._credentials import AccountCredentials
from ._items import _params
from ._region_status import RegionStatusStore
from ._regions import endpoint_regions, offered_regions_many, opted_in
from ._summary import RunSummary
from ._types import Account, Record, record

_CACHE_VERSION = "inv1"


@dataclass(slots=True)
class _Fetch:
    """A unit. Slots, set by the dataclass's plain ``__init__``: a frozen dataclass's fields went into an
    instance dict through keywords (~2.3k instructions a unit made, ~110 bytes more a unit held to the
    run's end), and a named tuple's fields are read through a descriptor CPython 3.11 does not
    specialize (~150 instructions a read more than a slot, ~20 reads a list call). Not changed once made
    but for ``key``: its cache key, kept from the cache's lookup to its store (``Plan.cache_key``)."""

    rtype: ResourceType
    account: str
    region: str  # the record's region ("global" for global types)
    request: Request
    scope: str  # ``Limits.scope_of(request)``, made with the unit: the fair feed's key, read once a unit
    offered: bool = True  # False: the service does not exist in that region (a not_offered record, no call)
    shown: bool = True  # False: a parent listed only for its child type's calls (no record of its own)
    key: str | None = None  # the cache key once made, until its page is stored (``Plan.cache_key``)


class Plan:
    """A run's units and what they need to know: where each type's service is offered (read once per
    service), each account's role. The types come parents first (``_parents_first``)."""

    def __init__(
        self,
        engine: Engine,
        types: list[ResourceType],
        *,
        regions: str | Sequence[str],
        exclude: set[str],
        credentials: AccountCredentials,
        store: RegionStatusStore | None,
        cache: Any,
        concurrency: int,
        filter_offered: bool,
        tags: bool,
        summary: RunSummary,
    ):
        self._engine, self._types, self._regions, self._exclude = engine, types, regions, exclude
        self._credentials, self._store, self._cache = credentials, store, cache
        self._concurrency, self._filter_offered, self._tags = concurrency, filter_offered, tags
        self._summary = summary  # counts the regions ``active`` skips
        self._offered: dict[str, set[str] | None] = {}
        self._endpoints: dict[str, set[str] | None] = {}
        self.plain_keys = _plain_keys(types, engine.config.endpoint_url)

    def candidate_regions(self, ready: list[tuple[Account, Any]]) -> dict[str, list[str]]:
        """Per account, the regions to consider before per-service filtering."""
        if not isinstance(self._regions, str):
            return {a.account_id: [r for r in self._regions if r not in self._exclude] for a, _ in ready}
        if not any(not t.is_global for t in self._types):
            return {a.account_id: [] for a, _ in ready}
        fallback = [self._engine.config.home_region]
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
        for result in self._engine.batch_requests(requests, self._concurrency):
            account = ready[result.index][0].account_id
            regions = opted_in(result.result) if result.ok else fallback
            out[account] = [r for r in regions if r not in self._exclude]
        return out

    def prefetch_offered(self, candidates: dict[str, list[str]]) -> None:
        """Where each regional type's service is offered, read for every service at once (when the run
        filters by it and has a candidate region)."""
        if not (self._filter_offered and any(candidates.values())):
            return
        names = {t.ssm_service or t.service for t in self._types if not t.is_global} - set(self._offered)
        if names:
            self._offered.update(
                offered_regions_many(
                    self._engine, sorted(names), cache=self._cache, concurrency=self._concurrency
                )
            )

    def units(self, ready: list[tuple[Account, Any]], candidates: dict[str, list[str]]) -> Iterator[_Fetch]:
        """Windows of (region, type) pairs, each run account by account. A botocore client serves one
        (service, region) for every account (an account's credentials ride on each request), and the
        engine keeps ``max_clients`` of them. So the pairs (region, then type) are cut into windows of
        at most half that many clients, and each window's calls go account, then region, then type:
        a window's clients stay in the LRU while every account uses them, so each client is made
        once a run (``--types all`` has ~1,300 pairs in 4 regions: planned account by account over
        all of them, every account made every client again, ~2-3 ms of CPU each); and the calls in
        flight are spread over the window's clients, a few each, so each keeps a few connections and
        reuses them from account to account (every account's call of one client at once would open a
        connection each: a TLS handshake each against AWS)."""
        plans = []
        for account, creds in ready:
            wanted, absent = {}, {}
            for t in self._types:
                regions, missing = self._regions_for(t, account.account_id, candidates[account.account_id])
                wanted[t.name], absent[t.name] = set(regions), set(missing)
            # the account (``Limits.scope_of``'s third part) and its role ARN, the same for all its units
            plans.append((account.account_id, self._role_arn(account), creds, wanted, absent))
        every = dict.fromkeys(r for a, _ in ready for r in [GLOBAL, *candidates[a.account_id]])
        pairs = [(region, rtype) for region in every for rtype in self._types]
        for window in _windows(pairs, max(1, self._engine.config.max_clients // 2)):
            for who, role, creds, wanted, absent in plans:
                for region, rtype in window:
                    offered = region in wanted[rtype.name]
                    if not offered and region not in absent[rtype.name]:
                        continue  # (also: a region this account does not have)
                    api_region = rtype.api_region if region == GLOBAL else region
                    service = rtype.service
                    request = Request.listed(  # Request(...) without the frozen __init__'s cost
                        service,
                        rtype.operation,
                        _params(rtype.params, who),
                        api_region,
                        who,
                        role,
                        creds,
                        rtype.paginate,
                    )
                    scope = f"{service}/{api_region or 'default'}/{who}"  # Limits.scope_of(request)
                    yield _Fetch(rtype, who, region, request, scope, offered)

    def not_offered(self, unit: _Fetch) -> Record:
        """The record of a unit whose service is not offered in its region (nothing was called)."""
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

    def cache_key(self, unit: _Fetch) -> str:
        """The request's signature and the endpoint its page comes from (a test server's page is not AWS's).
        Made once a unit: with a TTL over 0 a miss's lookup makes it and its store reads it (the
        signature's canonical text and SHA-256, ~9k instructions); the store lets it go."""
        key = unit.key
        if key is None:
            endpoint = self._engine.config.endpoint_url
            tagged = "+tags" if self._tags else ""  # a page cached without the tags join is not one with them
            key = unit.key = f"{_CACHE_VERSION}:{unit.rtype.name}{tagged}:{unit.request.signature}" + (
                f"@{endpoint}" if endpoint else ""
            )
        return key

    def _regions_for(
        self, rtype: ResourceType, account: str, candidates: list[str]
    ) -> tuple[list[str], list[str]]:
        """(the regions to call, the candidates where the type's service is not offered)."""
        if rtype.is_global:
            return [GLOBAL], []
        regions, missing = candidates, []
        if self._filter_offered:
            offered = self._offered_for(rtype)
            if offered is not None:
                regions = [r for r in candidates if r in offered]
                missing = [r for r in candidates if r not in offered]
        if self._regions == "active" and self._store is not None:
            active = self._store.active_regions(account, rtype.name, regions)
            self._summary.regions_inactive(len(regions) - len(active))
            regions = active
        return regions, missing

    def _offered_for(self, rtype: ResourceType) -> set[str] | None:
        """Where the type's service is offered: SSM's list, else botocore's endpoint data, else None
        (nothing knows: called everywhere rather than dropped)."""
        name = rtype.ssm_service or rtype.service
        if name not in self._offered:
            self._offered.update(offered_regions_many(self._engine, [name], cache=self._cache))
        if self._offered[name] is not None:
            return self._offered[name]
        if rtype.service not in self._endpoints:
            self._endpoints.update(endpoint_regions(self._engine, [rtype.service]))
        return self._endpoints[rtype.service]

    def _role_arn(self, account: Account) -> str | None:
        status = self._credentials.status(account)
        return status.role_arn if status is not None else None


def _plain_keys(types: Sequence[ResourceType], endpoint: str | None) -> bool:
    """Whether every cache key a run of ``types`` makes (``Plan.cache_key``) is text JSON writes as it is,
    between quotes: its parts are the version, a type's name (its own or a hidden parent's) and ``+tags``,
    the request's signature (the call's service and operation, then hexadecimal digits) and the endpoint,
    and JSON's escapes go character by character, so a key needs none when none of its parts does. The
    cache then writes the key into its envelope without the escape's pass over it (``InventoryCache.store``,
    ``plain_key``)."""
    parts = [_CACHE_VERSION, "+tags", endpoint or ""]
    for rtype in types:
        kind: ResourceType | None = rtype
        while kind is not None:  # a child type's parents: their hidden units' keys
            parts += (kind.name, kind.service, kind.operation)
            kind = kind.parent_type
    return all(type(part) is str and json_string(part) == f'"{part}"' for part in parts)


def _where(unit: _Fetch) -> tuple[str, str, str]:
    return (unit.rtype.name, unit.account, unit.region)


def _ancestors(types: Sequence[ResourceType]) -> set[str]:
    """The names of every parent (and its parents) of the child types among ``types``."""
    out: set[str] = set()
    for rtype in types:
        parent = rtype.parent_type
        while parent is not None:
            out.add(parent.name)
            parent = parent.parent_type
    return out


def _parents_first(types: Sequence[ResourceType]) -> list[ResourceType]:
    """The types in their order, but parents before their child types (a child's fetch waits for its
    parent's, and the plan looks the parent's outcome up when it reaches the child)."""
    return sorted(types, key=lambda t: t.depth)


def _windows(pairs: list[tuple[str, ResourceType]], clients: int) -> Iterator[list[tuple[str, ResourceType]]]:
    """``pairs`` in order, cut into runs that need at most ``clients`` botocore clients (one per
    service and API region)."""
    window: list[tuple[str, ResourceType]] = []
    seen: set[tuple[str, str]] = set()
    for region, rtype in pairs:
        client = (rtype.service, rtype.api_region if region == GLOBAL else region)
        if client not in seen and len(seen) >= clients:
            yield window
            window, seen = [], set()
        seen.add(client)
        window.append((region, rtype))
    if window:
        yield window
