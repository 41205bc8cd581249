"""The inventory's plan: one small unit per (resource type, account, region) to fetch.

``_Fetch`` is a unit: the type, the account, the record's region, the request and its scope (the fair
feed's key). The parents of a run's child types (``_ancestors``) and the types ordered parents first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._models import Request
from ._catalog import ResourceType

_CACHE_VERSION = "inv1"


@dataclass(frozen=True)
class _Fetch:
    rtype: ResourceType
    account: str
    region: str  # the record's region ("global" for global types)
    request: Request
    scope: str  # ``Limits.scope_of(request)``, made with the unit: the fair feed's key, read once a unit
    offered: bool = True  # False: the service does not exist in that region (a not_offered record, no call)
    shown: bool = True  # False: a parent listed only for its child type's calls (no record of its own)


def _unit(
    rtype: ResourceType, account: str, region: str, request: Request, scope: str, offered: bool
) -> _Fetch:
    """``_Fetch(rtype, account, region, request, scope, offered)``, its fields set at once as
    ``Request.built`` sets a request's: the frozen dataclass's ``__init__`` (7 ``object.__setattr__``
    calls, ~20k instructions in CPython 3.11) was most of what the plan spent a unit."""
    unit = object.__new__(_Fetch)
    unit.__dict__.update(
        rtype=rtype, account=account, region=region, request=request, scope=scope, offered=offered, shown=True
    )
    return unit


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
