"""The catalog's rows as types: a generated row (``_from_row``), an overlay row over the generated one
(``_from_entry``: the overlay's fixes applied), and each child type's parent resolved (``_with_parents``);
a row that cannot be called is a denied row saying why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._errors import suggest
from ._generated import VERBS
from ._overlay import TypeEntry
from ._resource_type import Detail, ResourceType


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
