"""Which regions to call: explicit lists with wildcards, ``enabled`` per account, ``active`` from the
region status store, minus exclusions, intersected with where a service is offered at all.

Where a service is offered: SSM's global-infrastructure list where SSM knows the service (AWS keeps
it current), else botocore's endpoint data (``endpoint_regions``: the regions of every partition
with a non-deprecated endpoint for the service's endpoint prefix), else nowhere known: such a
service is called in every region asked for, never dropped (docs/inventory.md, "Statuses").

The pure part (``expand_regions``) is separate from the calls (``enabled_regions``,
``offered_regions``) so the selection rules are tested without sockets.
"""

from __future__ import annotations

import fnmatch
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from .._engine import Engine
from .._errors import suggest
from .._models import Request
from ._types import InventoryError

__all__ = [
    "check_service",
    "endpoint_regions",
    "expand_regions",
    "enabled_regions",
    "known_regions",
    "offered_regions",
    "offered_regions_many",
    "parse_list",
    "REGION_MODES",
]

REGION_MODES = ("enabled", "active")
_SSM_PATH = "/aws/service/global-infrastructure/services/{}/regions"


def parse_list(spec: str | Iterable[str] | None) -> list[str]:
    if spec is None:
        return []
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return [p.strip() for p in parts if p and p.strip()]


def known_regions(engine: Engine | None = None) -> list[str]:
    """Every region botocore knows, across partitions (used to reject typos such as ``us-east-9``)."""
    import botocore.session

    session = engine.clients.session(None) if engine is not None else botocore.session.get_session()
    names: set[str] = set()
    for partition in session.get_available_partitions():
        names.update(session.get_available_regions("ec2", partition_name=partition))
    return sorted(names)


def check_service(engine: Engine, service: str, *, flag: str = "--service") -> str:
    """``service`` if botocore knows it; InventoryError with the nearest names otherwise (``ec3``
    would otherwise find no SSM region list and fall back to every region)."""
    import botocore.session

    session = engine.clients.session(None) if engine is not None else botocore.session.get_session()
    names = session.get_available_services()
    if service in names:
        return service
    near = suggest(service, names, n=3)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    raise InventoryError(
        f"{flag}: {service!r} is not an AWS service{hint}; use a service name as in "
        "`aws SERVICE`, such as ec2, s3 or lambda"
    )


def expand_regions(
    spec: str | Iterable[str], known: Sequence[str], *, exclude: str | Iterable[str] = ()
) -> list[str]:
    """Explicit names and ``*``/``?`` wildcards against ``known``, minus ``exclude`` (also wildcards).
    An unknown name or a pattern matching nothing raises InventoryError listing what is valid."""
    wanted = parse_list(spec)
    if not wanted:
        raise InventoryError(
            "no regions given; use 'enabled', 'active', or a comma list such as us-east-1,eu-*"
        )
    chosen: list[str] = []
    for pattern in wanted:
        matches = _match(pattern, known, "--regions")
        chosen += [m for m in matches if m not in chosen]
    dropped = {m for pattern in parse_list(exclude) for m in _match(pattern, known, "--exclude-regions")}
    result = [r for r in chosen if r not in dropped]
    if not result:
        raise InventoryError(
            f"--exclude-regions {','.join(parse_list(exclude))} removes every region selected "
            f"by --regions {','.join(wanted)}"
        )
    return result


def _match(pattern: str, known: Sequence[str], flag: str) -> list[str]:
    if any(c in pattern for c in "*?["):
        matches = [r for r in known if fnmatch.fnmatchcase(r, pattern)]
        if not matches:
            raise InventoryError(
                f"{flag} pattern {pattern!r} matches no region; known regions: {', '.join(known)}"
            )
        return matches
    if pattern not in known:
        near = suggest(pattern, known, n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise InventoryError(
            f"{flag}: {pattern!r} is not an AWS region{hint}; known regions: {', '.join(known)}"
        )
    return [pattern]


def enabled_regions(
    engine: Engine, *, credentials: Any = None, account: str | None = None, region: str | None = None
) -> tuple[list[str] | None, str | None]:
    """(regions enabled for the account, None) or (None, error): opt-in regions the account has
    not opted into are left out, as Steampipe, CloudQuery and Prowler do."""
    result = engine.execute(
        Request(
            "ec2",
            "DescribeRegions",
            {"AllRegions": True},
            region=region or engine.config.home_region,
            account=account,
            credentials=credentials,
        )
    )
    if not result.ok:
        return None, result.error
    return opted_in(result.result), None


def opted_in(response: Any) -> list[str]:
    """The enabled regions in an ``ec2:DescribeRegions(AllRegions=True)`` response, sorted."""
    return sorted(
        r["RegionName"]
        for r in response.get("Regions", [])
        if r.get("OptInStatus", "opt-in-not-required") in ("opt-in-not-required", "opted-in")
    )


def offered_regions(
    engine: Engine, service: str, *, cache: Any = None, region: str | None = None
) -> set[str] | None:
    """Regions where AWS offers ``service`` (SSM public global-infrastructure parameters), cached;
    None when the parameters cannot be read (then no region is filtered out for that reason)."""
    return offered_regions_many(engine, [service], cache=cache, region=region)[service]


def offered_regions_many(
    engine: Engine,
    services: Iterable[str],
    *,
    cache: Any = None,
    region: str | None = None,
    concurrency: int | None = None,
) -> dict[str, set[str] | None]:
    """``offered_regions`` for many services at once: the uncached ones are read in parallel (an
    inventory of every type asks for ~400 services before its first call)."""
    endpoint = engine.config.endpoint_url  # a test server's list is not AWS's
    suffix = f"@{endpoint}" if endpoint else ""

    def key(service: str) -> str:
        return f"greenfetch:ssm-regions:{service}{suffix}"

    out: dict[str, set[str] | None] = {}
    missing: list[str] = []
    for service in dict.fromkeys(services):
        hit = cache.get(key(service)) if cache is not None else None
        if hit is not None:
            out[service] = set(hit)
        else:
            missing.append(service)
    requests = [
        Request(
            "ssm",
            "GetParametersByPath",
            {"Path": _SSM_PATH.format(s)},
            region=region or engine.config.home_region,
            paginate=True,
        )
        for s in missing
    ]
    for result in (
        engine.batch_requests(requests, concurrency or engine.config.concurrency) if requests else ()
    ):
        service = missing[result.index]
        if not result.ok or not result.result.get("Parameters"):
            out[service] = None
            continue
        names = sorted({p["Value"] for p in result.result["Parameters"]})
        if cache is not None:
            cache.set(key(service), names)
        out[service] = set(names)
    return out


def endpoint_regions(engine: Engine, services: Iterable[str]) -> dict[str, set[str] | None]:
    """Per botocore service name, the regions (of every partition) where botocore's endpoint data has
    a non-deprecated endpoint for it; None where it has none at all (about a quarter of the services
    ship no endpoint list: their rule set resolves any region, which says nothing about where they
    exist). Reads ``endpoints.json`` once and each service's model metadata for its endpoint prefix,
    through the engine's loader, so a model a client loads later is read once."""
    import botocore.exceptions
    import botocore.session

    session = engine.clients.session(None) if engine is not None else botocore.session.get_session()
    loader = session.get_component("data_loader")
    by_prefix = _regions_by_prefix(loader)
    out: dict[str, set[str] | None] = {}
    for service in dict.fromkeys(services):
        try:
            prefix = loader.load_service_model(service, "service-2")["metadata"].get(
                "endpointPrefix", service
            )
        except botocore.exceptions.UnknownServiceError:
            prefix = service
        found = by_prefix.get(prefix)
        out[service] = set(found) if found else None  # the caller's own set: the table is shared
    return out


# Per data loader (an engine's sessions share one), the regions of each endpoint prefix: built from
# ``endpoints.json`` once, not once a service (an inventory of every type asks for ~300 services one
# at a time: 8,000 regions walked each time).
_BY_PREFIX: weakref.WeakKeyDictionary[Any, dict[str, frozenset[str]]] = weakref.WeakKeyDictionary()


def _regions_by_prefix(loader: Any) -> dict[str, frozenset[str]]:
    table = _BY_PREFIX.get(loader)
    if table is None:
        found: dict[str, set[str]] = {}
        for partition in loader.load_data("endpoints").get("partitions", ()):
            names = partition.get("regions", {})
            for prefix, entry in partition.get("services", {}).items():
                found.setdefault(prefix, set()).update(
                    region
                    for region, endpoint in entry.get("endpoints", {}).items()
                    if region in names and not endpoint.get("deprecated")
                )
        table = _BY_PREFIX[loader] = {prefix: frozenset(regions) for prefix, regions in found.items()}
    return table
