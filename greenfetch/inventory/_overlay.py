"""The catalog overlay: curated data that wins over the generated tier (format in docs/inventory.md).

An overlay is a JSON document::

    {"format": "greenfetch-catalog/1",
     "types": {"ec2.images": {"operation": "DescribeImages", "params": {"Owners": ["self"]}, ...}, ...},
     "deny": {"ec2": {"DescribeInstanceTypes": "aws-owned: ..."}, "ce": {"*": "costs money: ..."}}}

``types`` adds a type or changes a generated one (matched by service and operation); ``deny`` names
operations that are never called, each with its reason (``*``: every operation of the service). The
shipped overlay is ``catalog.json`` beside this module; a user's file (``--catalog FILE``) has the
same format and is merged over it (``load_overlay(path, base=shipped)``, then ``merge_overlays``).
Loading validates every row and raises InventoryError naming the file, the row and what would be valid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError

from ._types import InventoryError

__all__ = [
    "FORMAT",
    "Overlay",
    "TypeEntry",
    "load_overlay",
    "merge_overlays",
    "parse_overlay",
    "shipped_overlay",
    "template_fields",
]

FORMAT = "greenfetch-catalog/1"
TIERS = ("core", "generated")
SCOPES = ("regional", "global")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.[a-z0-9_]+$")
_OPERATION = re.compile(r"^[A-Z][A-Za-z0-9]+$")
_SHIPPED = Path(__file__).with_name("catalog.json")
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")

# key -> (check, what a valid value is)
_TYPE_KEYS: dict[str, tuple[Any, str]] = {
    "operation": (
        lambda v: isinstance(v, str) and bool(_OPERATION.match(v)),
        "an API operation name such as ListRules",
    ),
    "tier": (lambda v: v in TIERS, "core or generated"),
    "items": (lambda v: isinstance(v, str) and bool(v), "a JMESPath expression into the response"),
    "id": (
        lambda v: v is None or isinstance(v, str),
        'an item field name, "" (none) or null (the item is its id)',
    ),
    "arn": (
        lambda v: v is None or (isinstance(v, str) and bool(v)),
        "the item field holding its ARN, or null",
    ),
    "params": (lambda v: isinstance(v, dict), "an object of API parameters"),
    "paginate": (lambda v: isinstance(v, bool), "true or false"),
    "scope": (lambda v: v in SCOPES, "regional or global"),
    "api_region": (lambda v: isinstance(v, str) and bool(v), "a region name such as us-east-1"),
    "keep": (lambda v: _strings(v), "a list of item field names"),
    "volatile": (lambda v: _strings(v), "a list of dotted item field paths"),
    "ssm_service": (
        lambda v: v is None or isinstance(v, str),
        "the service's name in SSM's global-infrastructure parameters",
    ),
    "details": (lambda v: isinstance(v, list), "a list of detail steps"),
    "parent": (
        lambda v: isinstance(v, str) and bool(_NAME.match(v)),
        "the name of the type whose items this type is listed under, e.g. ecs.clusters",
    ),
    "each": (
        lambda v: isinstance(v, dict) and bool(v) and all(isinstance(x, str) and x for x in v.values()),
        'an object of API parameter -> a JMESPath into the parent item ("UserName", "@") or a '
        'template ("arn:aws:s3:::{Name}")',
    ),
    "id_per_parent": (
        lambda v: isinstance(v, bool),
        "true (a child type whose ids are unique only among one parent's items) or false",
    ),
    "why": (lambda v: isinstance(v, str), "a sentence saying why the entry is here"),
}
_DETAIL_KEYS: dict[str, tuple[Any, str]] = {
    "operation": _TYPE_KEYS["operation"],
    "params": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) and x for x in v.values()),
        'an object of API parameter -> a JMESPath into the item ("Name", "Tags[0].Value", "@") or a '
        'template ("arn:aws:s3:::{Name}")',
    ),
    "into": (lambda v: isinstance(v, str) and bool(v), "the item field the result goes into"),
    "pick": (lambda v: v is None or isinstance(v, str), "a JMESPath expression into the response, or null"),
    "default": (lambda v: True, "any value"),
    "fail_value": (lambda v: True, "any value"),
    "region_from": (lambda v: v is None or isinstance(v, str), "an item field holding the region to call"),
    "extra": (lambda v: isinstance(v, dict), "an object of fixed API parameters"),
    "paginate": (lambda v: isinstance(v, bool), "true (follow the operation's paginator) or false"),
    "why": (lambda v: isinstance(v, str), "a sentence saying why the step is here"),
}
_REQUIRED_DETAIL = ("operation", "params", "into")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) and x for x in value)


@dataclass(frozen=True)
class TypeEntry:
    """One ``types`` row as written: ``fields`` holds only the keys the row gives."""

    name: str
    service: str
    operation: str
    fields: Mapping[str, Any]

    @property
    def tier(self) -> str:
        return str(self.fields.get("tier", "generated"))


@dataclass(frozen=True)
class Overlay:
    source: str
    types: tuple[TypeEntry, ...] = ()
    deny: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def deny_reason(self, service: str, operation: str) -> str | None:
        ops = self.deny.get(service)
        if not ops:
            return None
        return ops.get(operation) or ops.get("*")

    def by_operation(self, service: str) -> dict[str, list[TypeEntry]]:
        out: dict[str, list[TypeEntry]] = {}
        for entry in self.types:
            if entry.service == service:
                out.setdefault(entry.operation, []).append(entry)
        return out


def shipped_overlay() -> Overlay:
    """The overlay shipped with greenfetch (``catalog.json``): the core types, fixes and deny-list."""
    return load_overlay(_SHIPPED)


def template_fields(value: str) -> list[str] | None:
    """The ``{...}`` placeholders of a detail parameter (each a JMESPath into the item), or None when
    the value is not a template but one JMESPath expression."""
    found = _PLACEHOLDER.findall(value)
    return found or None


def merge_overlays(base: Overlay, user: Overlay) -> Overlay:
    """``user`` over ``base``: a user row replaces the base row of the same name (``parse_overlay``
    with ``base`` already merged its keys over it), new rows are added, and the deny-lists are joined,
    except that an operation the user makes a type is no longer denied (the user's row wins)."""
    named = {e.name: e for e in user.types}
    denied = {(service, op) for service, ops in user.deny.items() for op in ops}
    still = [e for e in base.types if e.name in named or not _denies(denied, e.service, e.operation)]
    types = [named.pop(e.name, e) for e in still] + list(named.values())
    wanted = {(e.service, e.operation) for e in user.types}
    deny: dict[str, dict[str, str]] = {}
    for service, ops in base.deny.items():
        kept = {op: why for op, why in ops.items() if (service, op) not in wanted}
        if kept:
            deny[service] = kept
    for service, ops in user.deny.items():
        deny.setdefault(service, {}).update(ops)
    return Overlay(f"{base.source} + {user.source}", tuple(types), deny)


def _denies(denied: set[tuple[str, str]], service: str, operation: str) -> bool:
    return (service, operation) in denied or (service, "*") in denied


def load_overlay(path: str | Path, *, base: Overlay | None = None) -> Overlay:
    return parse_overlay(read_overlay(path), source=str(path), base=base)


def read_overlay(path: str | Path) -> Any:
    """An overlay file's JSON document, not yet validated (``parse_overlay``); InventoryError if the
    file cannot be read or is not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InventoryError(f"catalog file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InventoryError(f"catalog file {str(path)!r} is not JSON: {exc}") from None
    return data


def parse_overlay(data: Any, *, source: str = "catalog", base: Overlay | None = None) -> Overlay:
    """Validate an overlay document; InventoryError names the row and key that are wrong. With
    ``base`` (a user's file over the shipped overlay), a row naming one of ``base``'s types changes
    it: its keys win, ``params`` are merged, and ``operation`` may be left out."""
    if not isinstance(data, dict):
        raise InventoryError(f'{source}: an overlay is a JSON object with "format", "types" and "deny"')
    unknown = set(data) - {"format", "about", "types", "deny"}
    if unknown:
        raise InventoryError(
            f"{source}: unknown top-level key(s) {', '.join(sorted(unknown))}; "
            "valid keys are format, about, types, deny"
        )
    if data.get("format") != FORMAT:
        raise InventoryError(
            f'{source}: "format" is {data.get("format")!r}; this greenfetch reads {FORMAT!r}'
        )
    types = data.get("types", {})
    if not isinstance(types, dict):
        raise InventoryError(f'{source}: "types" must be an object of type name -> row')
    known = {e.name: e for e in base.types} if base is not None else {}
    entries = tuple(_type_entry(source, name, row, known.get(name)) for name, row in types.items())
    deny = data.get("deny", {})
    if not isinstance(deny, dict):
        raise InventoryError(f'{source}: "deny" must be an object of service -> {{operation: reason}}')
    checked: dict[str, dict[str, str]] = {}
    for service, ops in deny.items():
        if not isinstance(ops, dict) or not ops:
            raise InventoryError(f"{source}: deny.{service} must be an object of operation -> reason")
        for operation, reason in ops.items():
            if operation != "*" and not _OPERATION.match(operation):
                raise InventoryError(
                    f"{source}: deny.{service}.{operation}: not an operation name (ListRules) or *"
                )
            if not isinstance(reason, str) or not reason.strip():
                raise InventoryError(
                    f"{source}: deny.{service}.{operation}: the reason must be a non-empty string "
                    "(say why it is never called)"
                )
        checked[service] = dict(ops)
    for entry in entries:
        if entry.operation in checked.get(entry.service, {}):
            raise InventoryError(
                f"{source}: types.{entry.name} lists {entry.service}.{entry.operation}, which deny "
                "also names; keep one of them"
            )
    return Overlay(source, entries, checked)


def _type_entry(source: str, name: Any, row: Any, base: TypeEntry | None = None) -> TypeEntry:
    where = f"{source}: types.{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise InventoryError(
            f"{where}: a type name is service.snake_noun (lower case), e.g. efs.file_systems"
        )
    if not isinstance(row, dict):
        raise InventoryError(f'{where}: a row is an object with at least "operation"')
    _check_keys(where, row, _TYPE_KEYS)
    if base is not None:  # a change to a type the base overlay has: its keys over the base row's
        params = {**base.fields.get("params", {}), **row.get("params", {})}
        row = {**base.fields, **row, **({"params": params} if params else {})}
    if "operation" not in row:
        raise InventoryError(f'{where}: "operation" is missing (the API call that lists the type)')
    if "items" in row:
        _check_jmespath(f"{where}.items", row["items"])
    for i, step in enumerate(row.get("details", ())):
        at = f"{where}.details[{i}]"
        if not isinstance(step, dict):
            raise InventoryError(f"{at}: a detail step is an object with operation, params and into")
        _check_keys(at, step, _DETAIL_KEYS)
        missing = [k for k in _REQUIRED_DETAIL if k not in step]
        if missing:
            raise InventoryError(f"{at}: missing {', '.join(missing)}")
        if step.get("pick") is not None:
            _check_jmespath(f"{at}.pick", step["pick"])
        for param, value in step["params"].items():
            for expression in template_fields(value) or [value]:
                _check_jmespath(f"{at}.params.{param}", expression)
    _check_parent(where, name, row)
    return TypeEntry(name, name.split(".", 1)[0], row["operation"], dict(row))


def _check_parent(where: str, name: str, row: Mapping[str, Any]) -> None:
    """A child row (``parent`` and ``each``): listed once per item of its parent, a type of the same
    service (same account, region and credentials), never of itself."""
    if ("parent" in row) != ("each" in row):
        given, missing = ("parent", "each") if "parent" in row else ("each", "parent")
        raise InventoryError(
            f'{where}: "{given}" needs "{missing}" (a child type names its parent type and how each '
            "parent item fills its parameters)"
        )
    if "parent" not in row:
        if row.get("id_per_parent"):
            raise InventoryError(f'{where}.id_per_parent: only a child type has it; give "parent" and "each"')
        return
    if row.get("tier") == "core":
        raise InventoryError(f'{where}.parent: a core type has no parent; drop "parent" or "tier"')
    service = name.split(".", 1)[0]
    parent = row["parent"]
    if parent == name or parent.split(".", 1)[0] != service:
        raise InventoryError(
            f"{where}.parent: {parent!r} is not valid; use another type of {service} ({service}.NAME), "
            "listed in the same account and region"
        )
    for param, value in row["each"].items():
        for expression in template_fields(value) or [value]:
            _check_jmespath(f"{where}.each.{param}", expression)


def _check_keys(where: str, row: Mapping[str, Any], valid: Mapping[str, tuple[Any, str]]) -> None:
    from .._errors import suggest

    for key, value in row.items():
        if key not in valid:
            near = suggest(key, valid, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise InventoryError(f"{where}: unknown key {key!r}{hint}; valid keys: {', '.join(valid)}")
        check, what = valid[key]
        if not check(value):
            raise InventoryError(f"{where}.{key}: {json.dumps(value)[:80]} is not valid; use {what}")


def _check_jmespath(where: str, expression: str) -> None:
    try:
        jmespath.compile(expression)
    except JMESPathError as exc:
        reason = str(exc).splitlines()[0].rstrip(":") if str(exc) else type(exc).__name__  # one line
        raise InventoryError(f"{where}: {expression!r} is not a JMESPath expression ({reason})") from None
