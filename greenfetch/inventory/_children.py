"""Child types: a type listed once per item of its parent type, in one account and region.

``_Children`` is a child type's calls in one account and region and what they gave; ``_ChildCall`` one
call of it (its operation with one parent item's parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._models import Request
from ._catalog import ResourceType
from ._plan import _Fetch
from ._types import Record


@dataclass(eq=False)
class _Children:
    """A child type in one account and region: one call per item of its parent, and what they gave."""

    unit: _Fetch  # the child's own (its request is the template of its calls)
    pending: int = 0  # calls not yet answered
    items: list[Any] = field(default_factory=list)
    calls: int = 0
    failure: Record | None = None  # the first call that failed (or the parent), as the child's record
    code: str | None = None  # that failure's error code


@dataclass(frozen=True, eq=False)
class _ChildCall:
    """One call of a child type: its operation with one parent item's parameters."""

    family: _Children
    parent_id: str  # the parent item's resource id, written into each item as ``parent``
    request: Request

    @property
    def rtype(self) -> ResourceType:
        return self.family.unit.rtype

    @property
    def scope(self) -> str:  # its request is the family's with other params: the same scope
        return self.family.unit.scope
