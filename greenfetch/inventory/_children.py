"""Child types: a type listed once per item of its parent type, in one account and region.

``ChildTypes`` is a run's child types. The plan hands it each child type's unit (``plan``): the parent's
outcome there when it is known (served from the cache, not offered, a child completed), else the
parent's unit, which the fetch reports back when its record is in (``held_up_by``, ``parent_listed``);
then one call per parent item (``_ChildCall``) joins the fetch's feed, each call's items get
``parent``, and the child's record completes when its last call is in (``answered``). A parent type not
selected (or served by no record) is listed for its child alone: a unit of its own, not shown.

``_Children`` is one child type's calls in one account and region and what they gave; only its own
methods write its fields.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .._adaptive import Limits
from .._errors import classify
from .._models import Request, Result
from ._catalog import GLOBAL, ResourceType
from ._items import _detail_param, _params
from ._plan import _ancestors, _Fetch, _where
from ._types import Record, record

__all__ = ["ChildTypes"]

_Done = list[tuple[Record, float]]  # records completed, with their fetch times
_Add = Callable[[list[Any]], None]  # where a child type's calls go (the fetch's feed, or the misses)


@dataclass(eq=False)
class _Children:
    """A child type in one account and region: one call per item of its parent, and what they gave."""

    unit: _Fetch  # the child's own (its request is the template of its calls)
    pending: int = 0  # calls not yet answered
    items: list[Any] = field(default_factory=list)
    calls: int = 0
    failure: Record | None = None  # the first call that failed (or the parent), as the child's record
    code: str | None = None  # that failure's error code

    def expect(self, calls: int) -> None:
        """This many calls were started."""
        self.pending = calls

    def fail(self, rec: Record, code: str | None = None) -> None:
        """The child's record is this failure, unless an earlier one stands."""
        if self.failure is None:
            self.failure, self.code = rec, code

    def answered(self, parent_id: str, result: Result) -> None:
        """One call is in: its attempts counted, its items (each with ``parent``) kept."""
        self.pending -= 1
        self.calls += result.attempts
        if result.ok:
            for item in self.unit.rtype.extract(result.result):
                if isinstance(item, dict):
                    item["parent"] = parent_id
                self.items.append(item)

    def record(self) -> Record:
        """The child's record: its first failure, else every call's items."""
        unit = self.unit
        return self.failure or record(unit.rtype.name, unit.account, unit.region, self.items)


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


class ChildTypes:
    """A run's child types and what they wait for. ``complete(unit, record, calls, error_code)`` is the
    fetch's: a completed record's details, tags, cache entry and region status, emitted (returns it
    with its fetch time); ``failed(unit, result)`` makes a failed call's record; ``cache_key`` names a
    unit's page in ``cache``."""

    def __init__(
        self,
        types: Sequence[ResourceType],
        *,
        cache: Any,
        cache_key: Callable[[_Fetch], str],
        complete: Callable[[_Fetch, Record, int, str | None], tuple[Record, float]],
        failed: Callable[[_Fetch, Result], Record],
    ):
        self.parents = _ancestors(types)  # the type names a child type of the run may wait for
        self._cache, self._cache_key = cache, cache_key
        self._complete, self._failed = complete, failed
        self._waiting: dict[int, list[_Children]] = {}  # id(parent unit) -> the child types it holds up
        # what the plan knows of a possible parent per (type, account, region): its record, or its unit
        self._known: dict[tuple[str, str, str], Record | _Fetch] = {}

    def know(self, unit: _Fetch, outcome: Record | _Fetch) -> None:
        """A parent type's unit is planned: its record (cached, not offered), or the unit itself (a miss)."""
        self._known[_where(unit)] = outcome

    def waiting(self) -> bool:
        """Some child type waits for a parent still to be listed."""
        return bool(self._waiting)

    def held_up_by(self, unit: _Fetch) -> list[_Children] | None:
        """The child types waiting for ``unit`` (a parent being listed), no longer waiting; or None."""
        return self._waiting.pop(id(unit), None)

    def plan(self, unit: _Fetch, misses: list[_Fetch | _ChildCall]) -> Iterator[tuple[Record, float]]:
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
            hit = self._cache.lookup(self._cache_key(hidden)) if self._cache is not None else None
            if hit is not None:
                known[key] = record(parent_type.name, unit.account, unit.region, hit[0])
            elif parent_type.parent_type is not None:  # a child itself: its own parent first
                yield from self.plan(hidden, misses)
            else:
                known[key] = hidden
                misses.append(hidden)
        parent = known[key]  # a record once it is complete (a child of a known parent may be already)
        if isinstance(parent, _Fetch):
            self._waiting.setdefault(id(parent), []).append(family)
        else:
            yield from self._start(family, parent, misses.extend)

    def parent_listed(self, families: list[_Children], parent: Record, add: _Add, code: str | None) -> _Done:
        """The parent ``families`` waited for (``held_up_by``) is listed: their calls go to ``add``;
        the records of those complete already."""
        done: _Done = []
        for family in families:
            done += self._start(family, parent, add, code)
        return done

    def answered(self, call: _ChildCall, result: Result, add: _Add) -> _Done:
        """One child call is in: its items (each with ``parent``) join the child's. A parent item that
        is gone by now (not found) gives none; any other failure fails the child, naming the parent
        item. Returns the child's record once its last call is in."""
        family = call.family
        family.answered(call.parent_id, result)
        unit = family.unit
        if (
            not result.ok
            and family.failure is None
            and classify(result.error_code, service=unit.rtype.service).status != "not_found"
        ):
            rec = self._failed(unit, result)
            ptype = unit.rtype.parent_type
            rec["error"] = f"{rec['error']} (for {ptype.name if ptype else 'parent'} {call.parent_id!r})"
            family.fail(rec, result.error_code)
        return self._finish(family, add) if family.pending == 0 else []

    def _start(self, family: _Children, parent: Record, add: _Add, code: str | None = None) -> _Done:
        """The parent's record is in: one call per parent item goes to ``add``. A parent that was not
        listed gives the child its status (``code``: the parent's error code), naming the parent; a
        parent with no items, an ok record with none. Returns the child's record when it is complete already."""
        unit = family.unit
        ptype = unit.rtype.parent_type
        assert ptype is not None
        if parent["status"] != "ok":
            error = f"its parent type {ptype.name} was not listed: {parent['error']}"
            family.fail(record(unit.rtype.name, unit.account, unit.region, [], parent["status"], error), code)
            return self._finish(family, add)
        calls: list[_ChildCall] = []
        where = {"account": unit.account, "region": unit.request.region}
        for item in parent["items"]:
            given = {name: _detail_param(spec, item, where) for name, spec in unit.rtype.each.items()}
            absent = [name for name, value in given.items() if value is None]
            if absent:  # leaving it out would list something else (ECS: the default cluster)
                family.fail(
                    record(
                        unit.rtype.name,
                        unit.account,
                        unit.region,
                        [],
                        "error",
                        f"{ptype.name} item {ptype.resource_id(item)!r} gives no {absent[0]} "
                        f"(each.{absent[0]}: {unit.rtype.each[absent[0]]!r}); nothing was called for it",
                    )
                )
                continue
            params = {**unit.request.params, **given}
            request = replace(unit.request, params=params)
            calls.append(_ChildCall(family, ptype.resource_id(item), request))
        family.expect(len(calls))
        if not calls:
            return self._finish(family, add)
        add(calls)
        return []

    def _finish(self, family: _Children, add: _Add) -> _Done:
        """The child's record (when shown), and its own child types' calls started."""
        unit = family.unit
        rec, fetched_at = self._complete(unit, family.record(), family.calls, family.code)
        self._known[_where(unit)] = rec
        done = [(rec, fetched_at)] if unit.shown else []
        for child in self._waiting.pop(id(unit), ()):
            done += self._start(child, rec, add, family.code)
        return done
