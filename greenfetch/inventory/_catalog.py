"""The resource catalog: one declarative row per resource type, dispatched by name.

A row says which call lists the type, where the items sit in the response (a JMESPath expression),
whether it is regional or global, which field identifies an item, and optional detail steps (one
call per item, run in parallel, merged into the item: S3 buckets get their region and an access
check). Adding a type is adding a row; nothing branches on type names.

Two more columns serve the SQLite sink and ``greenfetch diff``: ``arn`` names the field holding the
ARN where the API returns one (the resource id is then the ARN, else the ``id_field``), and
``volatile`` names fields that change between two fetches of an unchanged resource (a restore
window that moves every five minutes, bytes stored, an alarm's last evaluation), which a diff ignores.

The rows come in three tiers: ``core`` (the curated types, written in the shipped overlay,
``catalog.json``), ``generated`` (derived from botocore's models, ``_generated.py``, with the
overlay's fixes applied) and ``denied`` (operations the overlay says are never called, with the
reason). ``Catalog`` joins them lazily, a service at a time, and selects types for ``--types``.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, overload

from .._errors import suggest
from .._paging import _getter
from ._generated import VERBS, GeneratedTier, snake_noun
from ._overlay import Overlay, TypeEntry, load_overlay, merge_overlays, parse_overlay, shipped_overlay
from ._types import InventoryError

__all__ = [
    "ACCOUNT_PLACEHOLDER",
    "CATALOG",
    "Catalog",
    "Detail",
    "GLOBAL",
    "ResourceType",
    "TIERS",
    "catalog",
    "resolve_types",
]

GLOBAL = "global"
ACCOUNT_PLACEHOLDER = "{account}"  # a parameter value the fetch replaces with the account's id
TIERS = ("core", "generated", "denied")
_GLOB = re.compile(r"[*?\[]")
_WORDS = ("core", "all")
_T = TypeVar("_T")


@dataclass(frozen=True)
class Detail:
    """One call per item: each ``params`` value is a JMESPath into the item (``{"Bucket": "Name"}``)
    or a template of them (``"arn:aws:s3:::{Name}"``; ``{account}`` and ``{region}`` are the
    record's where the item has no such field). On success the item gets ``into`` = the response
    at JMESPath ``pick`` (or True when ``pick`` is None); on failure ``into`` = ``fail_value`` and
    ``<into>Error`` = the AWS error code. ``region_from`` names an item field holding the region to
    call (S3 objects live in theirs); ``paginate`` follows the operation's paginator."""

    operation: str
    params: Mapping[str, str]
    into: str
    pick: str | None = None
    default: Any = None
    fail_value: Any = None
    region_from: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    paginate: bool = False


# a type's ``items`` expression -> ``jmespath.search`` with it (a chain of plain fields read with
# ``dict.get``, as JMESPath reads it; any other expression compiled once)
_SEARCHES: dict[str, Any] = {}


@dataclass(frozen=True)
class ResourceType:
    name: str
    service: str
    operation: str
    items: str  # JMESPath into the (merged) response
    id_field: str | None  # None: the item itself is the id (a name or URL string); "": no id field
    params: Mapping[str, Any] = field(default_factory=dict)
    paginate: bool = True
    scope: str = "regional"  # or GLOBAL: called once per account, recorded as region "global"
    api_region: str = "us-east-1"  # where a global type's API is called
    keep: tuple[str, ...] = ()  # when set, only these fields are kept (Secrets Manager: names only)
    details: tuple[Detail, ...] = ()
    ssm_service: str | None = None  # name in SSM's global-infrastructure parameters, if not ``service``
    arn: str | None = None  # the item's ARN field, where the API returns one (see resource_id)
    volatile: tuple[str, ...] = ()  # dotted paths a diff ignores: they move without the resource changing
    tier: str = "core"  # core, generated, or denied (never called; see deny_reason)
    deny_reason: str | None = None
    parent: str | None = None  # a child type: listed once per item of this type (same account and region)
    each: Mapping[str, str] = field(default_factory=dict)  # child parameter -> JMESPath into a parent item
    parent_type: ResourceType | None = field(default=None, compare=False, repr=False)  # the parent, resolved
    id_per_parent: bool = False  # the id is unique only among one parent's items: see resource_id

    @property
    def is_global(self) -> bool:
        return self.scope == GLOBAL

    @property
    def depth(self) -> int:
        """How many parent types this type has above it (0: none)."""
        return 0 if self.parent_type is None else 1 + self.parent_type.depth

    @property
    def denied(self) -> bool:
        return self.tier == "denied"

    def extract(self, response: Any) -> list[Any]:
        search = _SEARCHES.get(self.items)  # jmespath.search parses and makes an interpreter per call
        if search is None:
            search = _SEARCHES.setdefault(self.items, _getter(self.items)[1])
        found = search(response) or []
        if self.keep:
            found = [{k: item[k] for k in self.keep if k in item} for item in found]
        return list(found)

    def id_of(self, item: Any) -> str:
        if self.id_field is None or not isinstance(item, Mapping):
            return str(item)
        own = str(item.get(self.id_field, ""))
        return f"{item.get('parent')}/{own}" if self.id_per_parent else own

    def resource_id(self, item: Any) -> str:
        """The stable id of an item in the SQLite sink: its ARN where the type declares one and the
        item carries it, else ``id_of`` (the id field, or the item itself for name/URL lists). A child
        type whose ids are unique only within a parent (a policy attached to two roles) prefixes the
        parent's: ``<parent resource id>/<id>``."""
        if self.arn is not None and isinstance(item, Mapping) and item.get(self.arn):
            own = str(item[self.arn])
            return f"{item.get('parent')}/{own}" if self.id_per_parent else own
        return self.id_of(item)

    def describe(self) -> dict[str, Any]:
        id_field = "(item)" if self.id_field is None else (self.id_field or "(none)")
        return {
            "name": self.name,
            "service": self.service,
            "operation": self.operation,
            "scope": self.scope,
            "items": self.items,
            "id_field": id_field,
            "resource_id": ("parent/" if self.id_per_parent else "") + (self.arn or id_field),
            "tier": self.tier,
            "deny_reason": self.deny_reason,
            "paginate": self.paginate,
            "params": dict(self.params),
            "api_region": self.api_region,
            "details": ",".join(d.operation for d in self.details),
            "parent": self.parent,
            "each": dict(self.each),
        }


# -- rows to types ---------------------------------------------------------------------------------


def _from_row(service: str, row: Mapping[str, Any], name: str, reason: str | None) -> ResourceType:
    return ResourceType(
        name,
        service,
        row["operation"],
        row["items"],
        row["id"],
        params=dict(row["params"]),
        paginate=row["paginate"],
        scope=row["scope"],
        api_region=row["api_region"] or "us-east-1",
        arn=row["arn"],
        tier="denied" if reason else "generated",
        deny_reason=reason,
    )


def _from_entry(entry: TypeEntry, base: Mapping[str, Any] | None, source: str) -> ResourceType:
    """An overlay row as a type. A ``generated`` row on an operation the generator lists takes the
    fields it does not give from the generated row (its params are merged); a ``core`` row, or one on
    an operation the generator does not list, is complete in itself. A row that is neither (the
    installed botocore does not list its operation) is a denied row saying so: never called, shown."""
    f = entry.fields
    inherit = base if entry.tier != "core" else None
    if inherit is None and ("items" not in f or "id" not in f):
        return ResourceType(
            entry.name,
            entry.service,
            entry.operation,
            f.get("items", ""),
            f.get("id", ""),
            tier="denied",
            deny_reason=f"broken overlay row ({source}): {entry.service}."
            f"{entry.operation} is not a listing in this botocore, so the row must give items and id",
        )
    g: Mapping[str, Any] = inherit or {}
    params = {**(g.get("params") or {}), **f.get("params", {})}
    details = tuple(
        Detail(
            d["operation"],
            dict(d["params"]),
            d["into"],
            d.get("pick"),
            d.get("default"),
            d.get("fail_value"),
            d.get("region_from"),
            dict(d.get("extra", {})),
            d.get("paginate", False),
        )
        for d in f.get("details", ())
    )
    id_field = f["id"] if "id" in f else g.get("id")
    if (details or "parent" in f) and id_field is None:
        what = "detail steps need" if details else "a child type (parent) has"
        return ResourceType(
            entry.name,
            entry.service,
            entry.operation,
            f.get("items", g.get("items", "")),
            None,
            tier="denied",
            deny_reason=f"broken overlay row ({source}): {what} object "
            "items and this type's items are strings; make objects in items, e.g. "
            '"TableNames[].{TableName: @}" with "id": "TableName"',
            parent=f.get("parent"),
        )
    return ResourceType(
        entry.name,
        entry.service,
        entry.operation,
        f.get("items", g.get("items")),
        id_field,
        params=params,
        paginate=f.get("paginate", g.get("paginate", True)),
        scope=f.get("scope", g.get("scope", "regional")),
        api_region=f.get("api_region", g.get("api_region") or "us-east-1"),
        keep=tuple(f.get("keep", ())),
        details=details,
        ssm_service=f.get("ssm_service"),
        arn=f["arn"] if "arn" in f else g.get("arn"),
        volatile=tuple(f.get("volatile", ())),
        tier=entry.tier,
        parent=f.get("parent"),
        each=dict(f.get("each", {})),
        id_per_parent=f.get("id_per_parent", False),
    )


_DEPTH = 3  # a child of a child of a child at most (elbv2: load balancers, listeners, rules)


def _with_parents(rows: list[ResourceType], source: str) -> list[ResourceType]:
    """A service's rows with each child type's parent resolved (a parent may be a child itself, up to
    ``_DEPTH`` levels); a child whose parent is not a type greenfetch calls (unknown, denied, of
    another scope, a loop) is a denied row saying so."""
    by_name = {t.name: t for t in rows}
    done: dict[str, ResourceType] = {}

    def resolve(t: ResourceType, seen: tuple[str, ...]) -> ResourceType:
        if t.name in done:
            return done[t.name]
        if t.parent is None or t.denied:
            return t
        parent = by_name.get(t.parent)
        where = f"broken overlay row ({source}): types.{t.name}.parent: {t.parent!r}"
        if parent is not None and (parent.name in seen or parent.name == t.name):
            problem = f"{where} makes a loop ({' <- '.join((parent.name, t.name, *reversed(seen)))})"
        else:
            parent = resolve(parent, (*seen, t.name)) if parent is not None else None
            if parent is None or parent.denied:
                live = [n for n, p in by_name.items() if not p.denied and n != t.name]
                near = suggest(t.parent, live, n=1)
                why = (
                    f"is never called ({parent.deny_reason})"
                    if parent is not None
                    else f"is not a type of {t.service}" + (f" (did you mean {near[0]}?)" if near else "")
                )
                problem = f"{where} {why}; the parent must be a type greenfetch calls"
            elif parent.scope != t.scope:
                problem = f"{where} is {parent.scope} and this type is {t.scope}; both must be one scope"
            elif parent.depth >= _DEPTH:
                problem = (
                    f"{where} has {parent.depth} parents above it; a child type is at most {_DEPTH} "
                    "levels below a type with no parent"
                )
            else:
                done[t.name] = replace(t, parent_type=parent)
                return done[t.name]
        done[t.name] = replace(t, tier="denied", deny_reason=problem)
        return done[t.name]

    return [resolve(t, ()) for t in rows]


def _verb(operation: str) -> str:
    return next((v for v in VERBS if operation.startswith(v)), "")


# -- the catalog -----------------------------------------------------------------------------------


class Catalog(Mapping[str, ResourceType]):
    """Every type by name: the overlay's core and fixed types, the generated tier, the denied rows.

    ``catalog[name]`` and ``get`` answer any type that may be called (not a denied one) and read only
    that type's service; ``service(name)`` gives a service's rows, denied included; iterating (or
    ``rows()``) reads every service, from the cached generated catalog when there is one."""

    def __init__(self, overlay: Overlay | None = None, generated: GeneratedTier | None = None):
        self.overlay = overlay if overlay is not None else shipped_overlay()
        self.generated = generated if generated is not None else GeneratedTier(_cache_dir())
        self._services: dict[str, list[ResourceType]] = {}
        self._lock = threading.RLock()
        self._core = [self._core_type(e) for e in self.overlay.types if e.tier == "core"]

    def _core_type(self, entry: TypeEntry) -> ResourceType:
        return _from_entry(entry, None, self.overlay.source)

    # -- per service --------------------------------------------------------------------------------

    def services(self) -> list[str]:
        """Every service with a row: botocore's services and the overlay's."""
        return sorted(set(self.generated.services()) | {e.service for e in self.overlay.types})

    def service(self, service: str) -> list[ResourceType]:
        """The rows of one service, sorted by name (denied included; empty for an unknown service)."""
        with self._lock:
            if service not in self._services:
                self._services[service] = self._build(service, self.generated.rows(service))
            return self._services[service]

    def _build(self, service: str, rows: list[dict[str, Any]]) -> list[ResourceType]:
        entries = [e for e in self.overlay.types if e.service == service]
        claimed = {e.name for e in entries}
        generated = {row["operation"]: row for row in rows}
        out: list[ResourceType] = []
        for row in rows:
            if any(e.operation == row["operation"] for e in entries):
                continue  # the overlay's rows replace it
            name = row["name"]
            if name in claimed:  # an overlay type holds the name: the generated one takes its verb
                name = f"{service}.{snake_noun(row['operation'])}_{_verb(row['operation']).lower()}"
            while name in claimed:
                name += "_2"
            claimed.add(name)
            out.append(_from_row(service, row, name, self.overlay.deny_reason(service, row["operation"])))
        for entry in entries:
            if entry.tier == "core":
                out.append(next(t for t in self._core if t.name == entry.name))
            else:
                out.append(_from_entry(entry, generated.get(entry.operation), self.overlay.source))
        return sorted(_with_parents(out, self.overlay.source), key=lambda t: t.name)

    # -- every service ------------------------------------------------------------------------------

    def rows(self, *, service: str | None = None, denied: bool = True) -> list[ResourceType]:
        """Every row (or one service's), core first in the overlay's order, then by name."""
        if service is not None:
            found = self.service(service)
        else:
            every = self.generated.all_rows()
            with self._lock:
                for name in self.services():
                    if name not in self._services:
                        self._services[name] = self._build(name, every.get(name, []))
            found = [t for name in self.services() for t in self._services[name]]
        core = [t for t in self._core if service is None or t.service == service]
        rest = [t for t in found if t.tier != "core" and (denied or not t.denied)]
        return core + rest

    def listing(
        self, *, service: str | None = None, types: str | Iterable[str] | None = None
    ) -> list[ResourceType]:
        """The rows ``greenfetch catalog`` shows: every row (denied included), or ``service``'s, or the
        types ``types`` selects (never denied ones) within ``service``. InventoryError for an unknown
        service (with the nearest names) or a bad ``types``."""
        if service is not None and service not in self.services():
            near = suggest(service, self.services(), n=3)
            raise InventoryError(
                f"--service {service!r} is not a service greenfetch knows"
                + (f" (did you mean {', '.join(near)}?)" if near else "")
                + "; see greenfetch catalog --counts"
            )
        if types is None:
            return self.rows(service=service)
        return [t for t in self.select(types) if service is None or t.service == service]

    def core(self) -> list[ResourceType]:
        return list(self._core)

    @property
    def volatile(self) -> Mapping[str, tuple[str, ...]]:
        """Type name -> the fields a diff ignores, read a service at a time (for ``diff_runs``)."""
        return _Volatile(self)

    # -- Mapping ------------------------------------------------------------------------------------

    @overload
    def get(self, name: str) -> ResourceType | None: ...
    @overload
    def get(self, name: str, default: _T) -> ResourceType | _T: ...
    def get(self, name: str, default: object = None) -> object:
        for t in self._core:
            if t.name == name:
                return t
        service = name.split(".", 1)[0]
        found = next((t for t in self.service(service) if t.name == name), None) if "." in name else None
        return found if found is not None and not found.denied else default

    def __getitem__(self, name: str) -> ResourceType:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter([t.name for t in self.rows(denied=False)])

    def __len__(self) -> int:
        return len(self.rows(denied=False))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    # -- selection ----------------------------------------------------------------------------------

    def select(
        self, types: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
    ) -> list[ResourceType]:
        """The types ``--types`` names (default ``core``), minus ``--exclude-types``; InventoryError
        naming a bad name and the nearest valid ones."""
        wanted = _tokens(types) if types is not None else ["core"]
        if not wanted:
            raise InventoryError(
                "no resource types given; use core, all, a service name (ec2), type names "
                "(ec2.vpcs) or patterns (ec2.*), comma-separated"
            )
        chosen: dict[str, ResourceType] = {}
        for token in wanted:
            for t in self._match(token, "--types"):
                chosen.setdefault(t.name, t)
        for token in _tokens(exclude):
            for t in self._match(token, "--exclude-types"):
                chosen.pop(t.name, None)
        if not chosen:
            raise InventoryError(
                f"--exclude-types {','.join(_tokens(exclude))} removes every type selected by "
                f"--types {','.join(wanted)}"
            )
        return list(chosen.values())

    def _match(self, token: str, flag: str) -> list[ResourceType]:
        if token == "core":
            return self.core()
        if token == "all":
            return self.rows(denied=False)
        core = next((t for t in self._core if t.name == token), None)
        if core is not None:  # a core name needs no model read
            return [core]
        service, dot, rest = token.partition(".")
        if _GLOB.search(token):
            if dot and not _GLOB.search(service):
                self._known_service(service, token, flag)
                pool = self.rows(service=service, denied=False)
            else:
                pool = self.rows(denied=False)
            hits = [
                t for t in pool if fnmatch.fnmatchcase(t.name, token) or fnmatch.fnmatchcase(t.service, token)
            ]
            if not hits:
                raise InventoryError(
                    f"{flag} pattern {token!r} matches no resource type; see greenfetch catalog"
                )
            return hits
        if not dot:
            if token in self.services():
                hits = [t for t in self.rows(service=token) if not t.denied]
                if not hits:
                    raise InventoryError(
                        f"{flag}: service {token!r} has no resource type greenfetch calls "
                        f"(see greenfetch catalog --service {token} --all)"
                    )
                return hits
            self._unknown(token, flag, [*_WORDS, *self.services(), *(t.name for t in self._core)])
        self._known_service(service, token, flag)
        row = next((t for t in self.rows(service=service) if t.name == token), None)
        if row is None:
            self._unknown(token, flag, [t.name for t in self.rows(service=service, denied=False)])
        assert row is not None
        if row.denied:
            raise InventoryError(
                f"{flag}: {token} ({service}.{row.operation}) is never called: {row.deny_reason}"
            )
        return [row]

    def _known_service(self, service: str, token: str, flag: str) -> None:
        services = self.services()
        if service in services:
            return
        _, _, rest = token.partition(".")
        near = [f"{s}.{rest}" if rest else s for s in suggest(service, services, n=3)]
        if rest and not _GLOB.search(rest):
            near = [n for n in near if self.get(n) is not None] or near
        self._unknown(token, flag, [], near=near)

    @staticmethod
    def _unknown(token: str, flag: str, valid: Iterable[str], *, near: list[str] | None = None) -> None:
        valid = list(valid)  # a service has hundreds of names: only close ones are worth a hint
        near = (
            near
            if near is not None
            else (suggest(token, valid, n=3, cutoff=0.7) or suggest(token, valid, n=1))
        )
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        what = "resource type" if flag == "--types" else f"{flag} resource type"
        raise InventoryError(
            f"unknown {what} {token!r}{hint}; valid types: a name from greenfetch catalog, a "
            "service name (ec2), core, all, or a pattern (ec2.*, *.clusters)"
        )


def _tokens(spec: str | Iterable[str] | None) -> list[str]:
    if spec is None:
        return []
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    return [p.strip() for p in parts if p and p.strip()]


def _cache_dir() -> str | None:
    """Where the generated catalog is cached: the config's cache directory (GREENFETCH_CACHE_DIR)."""
    from .._config import Config, ConfigError

    try:
        return Config.resolve().cache_dir
    except ConfigError:  # a bad unrelated setting: its own command reports it; the catalog just is not cached
        return None


_CATALOGS: dict[str, Catalog] = {}
_CATALOG_LOCK = threading.Lock()
_FROM_CONFIG: Any = object()


def catalog(user_file: str | None = _FROM_CONFIG) -> Catalog:
    """The process-wide catalog (shipped overlay, botocore's models, cached generated tier), with a
    user's overlay file merged over the shipped one: ``user_file``, by default the config's
    ``catalog`` setting (``--catalog FILE``, ``GREENFETCH_CATALOG``); None or "" for none. A bad file
    raises InventoryError naming its bad row."""
    if user_file is _FROM_CONFIG:
        user_file = _config_catalog()
    key = user_file or ""
    with _CATALOG_LOCK:
        if "" not in _CATALOGS:
            _CATALOGS[""] = Catalog()
        if key not in _CATALOGS:  # the generated tier (and its cache) is shared
            _CATALOGS[key] = _overlaid(_CATALOGS[""], load_overlay(key, base=_CATALOGS[""].overlay))
        return _CATALOGS[key]


def catalog_over_shipped(data: Any, source: str) -> Catalog:
    """The shipped catalog with a user's overlay document (``data``, as read from ``source``) merged
    over it: what ``catalog(path)`` builds from a file, from the document itself (a worker gets it
    with a shard). A bad row raises InventoryError naming it."""
    shipped = catalog(None)
    return _overlaid(shipped, parse_overlay(data, source=source, base=shipped.overlay))


def _overlaid(shipped: Catalog, user: Overlay) -> Catalog:
    return Catalog(merge_overlays(shipped.overlay, user), shipped.generated)


def _config_catalog() -> str | None:
    from .._config import Config, ConfigError

    try:
        return Config.resolve().catalog
    except ConfigError:  # a bad unrelated setting: its own command reports it
        return None


def resolve_types(
    spec: str | Iterable[str] | None,
    exclude: str | Iterable[str] | None = None,
    *,
    user_file: str | None = _FROM_CONFIG,
) -> list[ResourceType]:
    """``--types`` and ``--exclude-types``: ``core`` (the default), ``all``, service names, type
    names and shell patterns, comma-separated. An unknown name raises InventoryError. ``user_file``
    as for ``catalog``."""
    return catalog(user_file).select(spec, exclude)


class _Volatile(Mapping[str, tuple[str, ...]]):
    def __init__(self, kinds: Catalog):
        self._kinds = kinds

    def __getitem__(self, name: str) -> tuple[str, ...]:
        found = self._kinds.get(name)
        if found is None:
            raise KeyError(name)
        return found.volatile

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)


class _Core(Mapping[str, ResourceType]):
    """``CATALOG``: the core tier by name, in the overlay's order (read on first use)."""

    def _types(self) -> dict[str, ResourceType]:
        return {t.name: t for t in catalog().core()}

    def __getitem__(self, name: str) -> ResourceType:
        return self._types()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types())

    def __len__(self) -> int:
        return len(self._types())


CATALOG: Mapping[str, ResourceType] = _Core()
