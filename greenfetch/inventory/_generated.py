"""The generated tier: resource types derived from the installed botocore's service models.

The rules, applied to each service's ``service-2`` model, ``paginators-1`` and the endpoint data
(pure functions on botocore's raw JSON, so a test can run them over every service at once):

- candidates are operations named ``List*``/``Describe*``, and ``Get*`` ones that list resources (a
  paginator, or one list member named as the operation's noun), with no required input once a
  required page size (the paginator's limit key, ``MaxResults`` and the like) is filled;
- items: the paginator's first result key, else the one list member of the output shape; an
  operation whose output has no list, or several and no paginator, is not a listing;
- id: noun-anchored, ``{Noun}Arn`` > ``{Noun}Id`` > ``{Noun}Identifier`` > ``{Noun}Name`` > ``Arn``/``Id``/``Name`` (nouns
  from the result key, the item shape's name and the operation); a list of strings is its own id;
- paginated wherever botocore has a paginator;
- scope: global for services the ``aws`` partition marks not regionalized (or whose only endpoint
  is ``aws-global``), called in the signing region of that endpoint (us-east-1; us-west-2 for
  networkmanager), else regional;
- name: ``service.snake_noun``; when two operations of a service give one noun, the first by verb
  (List, Describe, Get) keeps it and the others get ``_<verb>`` (``stacks_describe``).

Deriving every service reads ~430 models (~5 s), so the result is cached per botocore version and
rules version as one JSON file in the cache directory; without that file, a lookup of a few
services derives only those. Curated fixes, denials and the core types are the overlay's
(``_overlay.py``), applied on top in ``_catalog_rows.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["GeneratedTier", "derive_service", "rules_version", "snake_noun"]

VERBS = ("List", "Describe", "Get")
_VERB = re.compile(r"^(List|Describe|Get)(?=[A-Z])")
# Required input a listing may still be called with: the page size, filled from its shape's range.
_PAGE_SIZE = frozenset(
    {
        "maxresults",
        "maxrecords",
        "maxitems",
        "limit",
        "pagesize",
        "maxkeys",
        "maxentries",
        "maxcount",
        "maxresult",
        "maxsize",
        "maxpagesize",
    }
)
_PAGE_DEFAULT, _PAGE_CAP = 100, 1000
# Suffixes of item shape names that are not part of the resource noun (FileSystemDescription -> FileSystem).
_SHAPE_SUFFIXES = (
    "Summary",
    "Summaries",
    "Description",
    "Details",
    "Detail",
    "Information",
    "Info",
    "Item",
    "Entry",
    "Data",
    "Metadata",
    "Output",
    "Result",
    "Record",
    "Reference",
    "Overview",
    "Object",
    "Properties",
    "Attributes",
    "ListEntry",
    "ListItem",
    "Response",
    "Descriptor",
)
_FORMAT = "greenfetch-generated-catalog"


def rules_version() -> str:
    """A digest of this module's source: a change to the rules invalidates every cached catalog."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def snake_noun(operation: str) -> str:
    """``DescribeFileSystems`` -> ``file_systems`` (botocore's own snake_case of the rest)."""
    from botocore import xform_name

    noun: str = xform_name(_VERB.sub("", operation, count=1))
    return noun


# -- one service ---------------------------------------------------------------------------------


def derive_service(
    service: str, model: Mapping[str, Any], paginators: Mapping[str, Any], endpoints: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Every listing of one service as plain rows (JSON-able), sorted by name.

    A row: ``name``, ``operation``, ``items``, ``id`` (a field; None when the item is its own id;
    "" when no field identifies it), ``arn`` (the ARN field or None), ``paginate``, ``params``
    (a filled page size), ``scope`` and ``api_region``. ``paginators`` is the ``pagination`` map
    of ``paginators-1``; ``endpoints`` the endpoint data (``endpoints.json``)."""
    shapes = model["shapes"]
    scope, api_region = service_scope(model, endpoints)
    rows: list[dict[str, Any]] = []
    for operation in sorted(model["operations"]):
        row = _derive(operation, model["operations"][operation], shapes, paginators.get(operation))
        if row is not None:
            rows.append({**row, "scope": scope, "api_region": api_region})
    _name(service, rows)
    return sorted(rows, key=lambda r: r["name"])


def candidate(
    operation: str, spec: Mapping[str, Any], shapes: Mapping[str, Any], paginator: Mapping[str, Any] | None
) -> tuple[bool, str]:
    """(True, "") when the rules make ``operation`` a listing, else (False, why not)."""
    verb = _VERB.match(operation)
    if verb is None:
        return False, "not a List/Describe/Get operation"
    if spec.get("deprecated"):
        return False, "deprecated"
    page_key = paginator.get("limit_key") if paginator else None
    inp = shapes[spec["input"]["shape"]] if "input" in spec else {}
    needs = [m for m in inp.get("required", ()) if m != page_key and m.lower() not in _PAGE_SIZE]
    if needs:
        return False, f"needs input: {', '.join(needs)}"
    if verb.group(1) == "Get" and not (paginator and "result_key" in paginator):
        lists = _list_members(spec, shapes)
        noun = _VERB.sub("", operation, count=1).lower()
        if len(lists) != 1 or lists[0].lower() != noun:
            return False, "a Get that returns no list named as its noun"
    return True, ""


def _derive(
    operation: str, spec: Mapping[str, Any], shapes: Mapping[str, Any], paginator: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    ok, _ = candidate(operation, spec, shapes, paginator)
    if not ok:
        return None
    paginated = bool(paginator and "result_key" in paginator)
    if paginated:
        assert paginator is not None
        keys = paginator["result_key"]
        items = keys if isinstance(keys, str) else keys[0]
    else:
        lists = _list_members(spec, shapes)
        if len(lists) != 1:
            return None
        items = lists[0]
    out = spec["output"]["shape"] if "output" in spec else None
    element = _element_shape(shapes, out, items)
    if element is None:
        return None
    id_field, arn = identify(operation, items, element, shapes)
    return {
        "operation": operation,
        "items": items,
        "id": id_field,
        "arn": arn,
        "paginate": paginated,
        "params": _page_size(spec, shapes, paginator),
    }


def _list_members(spec: Mapping[str, Any], shapes: Mapping[str, Any]) -> list[str]:
    if "output" not in spec:
        return []
    members = shapes[spec["output"]["shape"]].get("members", {})
    return [name for name, m in members.items() if shapes[m["shape"]]["type"] == "list"]


def _page_size(
    spec: Mapping[str, Any], shapes: Mapping[str, Any], paginator: Mapping[str, Any] | None
) -> dict[str, int]:
    """Required page-size members, each filled with the largest size its shape allows (capped)."""
    if "input" not in spec:
        return {}
    inp = shapes[spec["input"]["shape"]]
    page_key = paginator.get("limit_key") if paginator else None
    filled: dict[str, int] = {}
    for name in inp.get("required", ()):
        if name == page_key or name.lower() in _PAGE_SIZE:
            shape = shapes[inp["members"][name]["shape"]]
            top = int(shape.get("max", _PAGE_DEFAULT))
            filled[name] = max(int(shape.get("min", 1)), min(top, _PAGE_CAP))
    return filled


def _element_shape(shapes: Mapping[str, Any], output: str | None, path: str) -> str | None:
    """The shape name of one item at ``path`` (a result key: ``A``, ``A.B``, ``A[].B``) in the output."""
    if output is None:
        return None
    current = output
    for part in path.split("."):
        part = part.removesuffix("[]")
        shape = shapes[current]
        if shape["type"] == "list":
            current, shape = shape["member"]["shape"], shapes[shape["member"]["shape"]]
        member = shape.get("members", {}).get(part)
        if member is None:
            return None
        current = member["shape"]
    shape = shapes[current]
    return shape["member"]["shape"] if shape["type"] == "list" else None


# -- the id --------------------------------------------------------------------------------------


def _singulars(word: str) -> list[str]:
    out = []
    if word.endswith("ies"):
        out.append(word[:-3] + "y")
    if word.endswith("es"):
        out.append(word[:-2])
    if word.endswith("s"):
        out.append(word[:-1])
    return out + [word]


def _words(name: str) -> list[str]:
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)


def nouns(operation: str, items: str, element: str) -> list[str]:
    """Candidate resource nouns, most specific first: the result key's, the item shape's, the
    operation's, then the last word of each (``DBClusterSnapshots`` -> ``Snapshot``)."""
    key = items.replace("[]", "").split(".")[-1]
    key = key[:1].upper() + key[1:]
    shape = element
    for suffix in _SHAPE_SUFFIXES:
        if shape.endswith(suffix) and len(shape) > len(suffix):
            shape = shape[: -len(suffix)]
            break
    op = _VERB.sub("", operation, count=1)
    found: list[str] = []
    for base in (key, shape, element, op):
        for noun in _singulars(base):
            if noun and noun not in found:
                found.append(noun)
    for base in (key, shape, op):
        words = _words(base)
        if len(words) > 1:
            for noun in _singulars(words[-1]):
                if noun not in found:
                    found.append(noun)
    return found


def identify(
    operation: str, items: str, element: str, shapes: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """(id field, ARN field) of an item shape: None id for a string (its own id), "" for no match."""
    shape = shapes[element]
    if shape["type"] != "structure":
        return (None, None) if shape["type"] == "string" else ("", None)
    members: dict[str, str] = {name.lower(): name for name in shape.get("members", {})}
    candidates = nouns(operation, items, element)

    def pick(suffix: str) -> str | None:
        for noun in candidates:
            if (hit := members.get(noun.lower() + suffix)) is not None:
                return hit
        return None

    noun_arn = pick("arn")
    arn = noun_arn or members.get("arn")
    id_field = (
        noun_arn
        or pick("id")
        or pick("identifier")
        or pick("name")
        or arn
        or members.get("id")
        or members.get("name")
    )
    return id_field or "", arn


# -- scope ---------------------------------------------------------------------------------------


def service_scope(model: Mapping[str, Any], endpoints: Mapping[str, Any] | None) -> tuple[str, str]:
    """("global", signing region) for a service the ``aws`` partition does not regionalize (iam,
    route53, cloudfront, organizations: us-east-1; networkmanager: us-west-2), else ("regional", "")."""
    if not endpoints:
        return "regional", ""
    prefix = model.get("metadata", {}).get("endpointPrefix")
    aws: Mapping[str, Any] = next(
        (p for p in endpoints.get("partitions", ()) if p.get("partition") == "aws"), {}
    )
    entry = aws.get("services", {}).get(prefix) or {}
    keys = {k for k in entry.get("endpoints", {}) if "fips" not in k}
    partition_endpoint = entry.get("partitionEndpoint") or ("aws-global" if keys == {"aws-global"} else None)
    if not partition_endpoint:
        return "regional", ""
    if entry.get("isRegionalized") is False or keys <= {partition_endpoint}:
        scope = entry.get("endpoints", {}).get(partition_endpoint, {}).get("credentialScope", {})
        return "global", str(scope.get("region") or "us-east-1")
    return "regional", ""


# -- names ---------------------------------------------------------------------------------------


def _verb(operation: str) -> str:
    """``List``, ``Describe`` or ``Get``: a row's operation is a candidate, so it starts with one."""
    verb = _VERB.match(operation)
    assert verb is not None, operation
    return verb.group(1)


def _name(service: str, rows: list[dict[str, Any]]) -> None:
    """``service.snake_noun``; a noun given by several operations goes to the first by verb order,
    the others get their verb as a suffix (stable: it depends only on the clashing operations)."""
    by_noun: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_noun.setdefault(snake_noun(row["operation"]), []).append(row)
    for noun, group in by_noun.items():
        group.sort(key=lambda r: (VERBS.index(_verb(r["operation"])), r["operation"]))
        for rank, row in enumerate(group):
            suffix = "" if rank == 0 else "_" + _verb(row["operation"]).lower()
            row["name"] = f"{service}.{noun}{suffix}"
        names = [r["name"] for r in group]
        for i, row in enumerate(group):  # same verb, same noun (ListFooBars, ListFoobars): number them
            if names.count(row["name"]) > 1:
                row["name"] += f"_{names[:i].count(row['name']) + 1}"


# -- loading and the cache -----------------------------------------------------------------------


class GeneratedTier:
    """The generated rows per service, from the cache file, else derived on demand.

    ``services()`` lists every service botocore ships (a directory listing, no model read);
    ``rows(service)`` derives one service (or reads it from the cache file); ``all_rows()`` derives
    every service once and writes the cache file (atomically; a directory that cannot be written
    only costs the next start the same ~5 s). ``rows=`` gives every service's rows up front."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        session: Any = None,
        rows: Mapping[str, list[dict[str, Any]]] | None = None,
    ):
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._session = session
        self._rows: dict[str, list[dict[str, Any]]] = dict(rows or {})
        self._complete = (
            rows is not None
        )  # rows given (a test that loaded the models itself): nothing to read
        self._file_read = rows is not None
        self._endpoints: Mapping[str, Any] | None = None
        self._services: list[str] | None = None
        self._lock = threading.RLock()

    @property
    def botocore_version(self) -> str:
        import botocore

        return str(botocore.__version__)

    @property
    def path(self) -> Path | None:
        if self._cache_dir is None:
            return None
        return (
            self._cache_dir / "catalog" / f"generated-botocore-{self.botocore_version}-{rules_version()}.json"
        )

    def _loader(self) -> Any:
        if self._session is None:
            import botocore.loaders
            import botocore.session

            # botocore's loader keeps every model it reads (~450 MB for all of them); this one reads
            # from the same places and keeps none, so deriving every service peaks at one model.
            paths = botocore.session.get_session().get_component("data_loader").search_paths
            loader = botocore.loaders.Loader(
                extra_search_paths=list(paths), include_default_search_paths=False
            )
            loader._cache = _NoModels()  # what botocore's instance_cache reads and writes
            self._session = _Session(loader)
        return self._session.get_component("data_loader")

    def services(self) -> list[str]:
        with self._lock:
            if self._services is None:
                self._read_file()
                if self._complete:
                    self._services = sorted(self._rows)
                else:
                    self._services = sorted(self._loader().list_available_services("service-2"))
            return list(self._services)

    def rows(self, service: str) -> list[dict[str, Any]]:
        with self._lock:
            self._read_file()
            if service not in self._rows:
                if self._complete or service not in self.services():
                    return []
                self._rows[service] = self._derive(service)
            return self._rows[service]

    def all_rows(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            self._read_file()
            if not self._complete:
                for service in self.services():
                    if service not in self._rows:
                        self._rows[service] = self._derive(service)
                self._complete = True
                self._write_file()
            return dict(self._rows)

    def model(self, service: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """botocore's raw ``service-2`` model and ``pagination`` map of one service."""
        loader = self._loader()
        model = loader.load_service_model(service, "service-2")
        try:
            paginators = loader.load_service_model(service, "paginators-1").get("pagination", {})
        except Exception:  # noqa: BLE001 - a service without paginators (botocore's DataNotFoundError)
            paginators = {}
        return model, paginators

    def endpoints(self) -> Mapping[str, Any]:
        if self._endpoints is None:
            self._endpoints = self._loader().load_data("endpoints")
        return self._endpoints

    def _derive(self, service: str) -> list[dict[str, Any]]:
        model, paginators = self.model(service)
        return derive_service(service, model, paginators, self.endpoints())

    def _read_file(self) -> None:
        if self._file_read:
            return
        self._file_read = True
        path = self.path
        if path is None:
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if (
            not isinstance(data, dict)
            or data.get("format") != _FORMAT
            or data.get("botocore") != self.botocore_version
            or data.get("rules") != rules_version()
            or not isinstance(data.get("services"), dict)
        ):
            return
        self._rows.update(data["services"])
        self._complete = True

    def _write_file(self) -> None:
        path = self.path
        if path is None:
            return
        from ._fileio import atomic_write_text

        text = json.dumps(
            {
                "format": _FORMAT,
                "botocore": self.botocore_version,
                "rules": rules_version(),
                "services": self._rows,
            },
            separators=(",", ":"),
            sort_keys=True,
        )
        with contextlib.suppress(OSError):
            atomic_write_text(path, text, 0o644)


class _NoModels(dict[tuple[Any, ...], Any]):
    """botocore's ``instance_cache`` for a loader, keeping its directory listings but no model."""

    _DROP = frozenset({"load_service_model", "load_data_with_path", "load_data"})

    def __setitem__(self, key: tuple[Any, ...], value: Any) -> None:  # key: (method name, *arguments)
        if key[0] not in self._DROP:
            super().__setitem__(key, value)


class _Session:
    def __init__(self, loader: Any):
        self.loader = loader

    def get_component(self, name: str) -> Any:
        return self.loader


def derive_all(
    models: Mapping[str, Mapping[str, Any]],
    paginators: Mapping[str, Mapping[str, Any]],
    endpoints: Mapping[str, Any] | None,
    services: Iterable[str] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """``derive_service`` over already loaded models (tests load them once per session)."""
    return {
        s: derive_service(s, models[s], paginators.get(s, {}), endpoints)
        for s in (services or sorted(models))
    }
