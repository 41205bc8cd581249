"""The resource catalog: one declarative row per resource type, dispatched by name.

A row is a ``ResourceType`` (``_resource_type``: what it says and how an item is read); the rows are
made into types in ``_catalog_rows``. Adding a type is adding a row; nothing branches on type names.

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
from typing import Any, TypeVar, overload

from .._errors import suggest
from ._catalog_rows import _from_entry, _from_row, _verb, _with_parents
from ._generated import GeneratedTier, snake_noun
from ._overlay import Overlay, TypeEntry, load_overlay, merge_overlays, parse_overlay, shipped_overlay
from ._resource_type import ACCOUNT_PLACEHOLDER, GLOBAL, Detail, ResourceType
from ._types import InventoryError

__all__ = [
    "ACCOUNT_PLACEHOLDER",  # these four are _resource_type's, re-exported: _fetch imports them from here
    "CATALOG",
    "Catalog",
    "Detail",
    "GLOBAL",
    "ResourceType",
    "catalog",
    "resolve_types",
]

_GLOB = re.compile(r"[*?\[]")
_WORDS = ("core", "all")
_T = TypeVar("_T")


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
