"""What changed between two inventory runs: added, removed and changed resources. Pure logic.

Resources are keyed by (type, account, region, resource_id) and arrive from each run in key order, so
the two runs are merged like sorted files: memory holds one resource per side, never a run.

Only what both runs fetched successfully is compared. A (type, account, region) that one run did not
fetch, or fetched with an error (denied, throttled, an account whose role could not be assumed), says
nothing about its resources: they are counted as ``not_compared``, never reported as removed or added.

A scope the later run took from a page no newer than the earlier run's page of the same scope (served
from a cache, so both runs hold the same page or the later one an older one) says nothing about what
changed in between either: it is counted as ``stale``, never compared, and ``RunDiff.stale_fetches``
lets the caller say so. Runs written before fetch times were recorded cannot be checked this way;
``RunDiff.untimed_cached`` is the later run's count of pages from the cache in that case.

"Changed" is a stable comparison of ``data``: the fields the catalog names volatile for the type are
dropped (a restore window that moves every five minutes is not a change), object keys are unordered, and
so are lists (AWS does not promise an order for tags, rules or attachments, and a reordering is not a
change). ``fields`` names what differs, as dotted paths (``Tags``, ``State.Name``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ._catalog import catalog
from ._types import InventoryError

__all__ = [
    "Change",
    "DiffCounts",
    "RunDiff",
    "changed_fields",
    "comparable",
    "diff_resources",
    "diff_runs",
    "pick_runs",
]

Key = tuple[str, str, str, str]  # resource_type, account, region, resource_id
Scope = tuple[str, str, str]  # resource_type, account, region
Row = tuple[Key, str]  # a key and the resource's data as JSON text


@dataclass(frozen=True)
class Change:
    change: str  # added | removed | changed
    resource_type: str
    account: str
    region: str
    resource_id: str
    fields: list[str] = field(default_factory=list)
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DiffCounts:
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    not_compared: int = 0  # resources in a (type, account, region) not fetched ok by both runs
    stale: int = 0  # resources in a scope the later run took from a page no newer than the other's

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def _without(value: Any, path: Sequence[str]) -> Any:
    """``value`` minus the dotted ``path`` (through objects, and through every element of a list)."""
    if isinstance(value, list):
        return [_without(v, path) for v in value]
    if not isinstance(value, dict) or path[0] not in value:
        return value
    if len(path) == 1:
        return {k: v for k, v in value.items() if k != path[0]}
    return {**value, path[0]: _without(value[path[0]], path[1:])}


def _canonical(value: Any) -> Any:
    """Objects with sorted keys, lists sorted by their elements' canonical JSON."""
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def comparable(data: Any, volatile: Iterable[str] = ()) -> Any:
    """The form two resources are compared in: volatile paths dropped, keys and lists in canonical order."""
    for path in volatile:
        data = _without(data, path.split("."))
    return _canonical(data)


def changed_fields(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two comparable values differ, descending through objects (a list that
    differs is named as a whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            if before.get(key, _MISSING) != after.get(key, _MISSING):
                out += changed_fields(before.get(key, _MISSING), after.get(key, _MISSING), f"{prefix}{key}.")
        return out
    return [prefix[:-1] or "(value)"]


_MISSING = object()


def _unique(rows: Iterable[Row]) -> Iterator[Row]:
    """The first row of each key (a run with the same id twice in one place keeps one)."""
    last: Key | None = None
    for key, data in rows:
        if key != last:
            last = key
            yield key, data


def diff_resources(
    before: Iterable[Row],
    after: Iterable[Row],
    *,
    compared: Callable[[Scope], bool],
    volatile: Callable[[str], Iterable[str]] = lambda rtype: (),
    counts: DiffCounts | None = None,
    stale: Callable[[Scope], bool] = lambda scope: False,
) -> Iterator[Change]:
    """Merge two key-ordered streams of resources into changes. ``compared(scope)`` says whether that
    (type, account, region) can be compared; a scope that cannot counts as ``stale`` when ``stale(scope)``,
    else as ``not_compared``. ``counts`` (if given) is filled as it goes."""
    counts = counts if counts is not None else DiffCounts()

    def skip(scope: Scope) -> None:
        if stale(scope):
            counts.stale += 1
        else:
            counts.not_compared += 1

    left, right = _unique(before), _unique(after)
    a, b = next(left, None), next(right, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            if compared(a[0][:3]):
                counts.removed += 1
                yield Change("removed", *a[0], before=json.loads(a[1]))
            else:
                skip(a[0][:3])
            a = next(left, None)
        elif a is None or b[0] < a[0]:
            if compared(b[0][:3]):
                counts.added += 1
                yield Change("added", *b[0], after=json.loads(b[1]))
            else:
                skip(b[0][:3])
            b = next(right, None)
        else:
            key = a[0]
            if not compared(key[:3]):
                skip(key[:3])
            elif a[1] == b[1]:
                counts.unchanged += 1
            else:
                old, new = json.loads(a[1]), json.loads(b[1])
                paths = tuple(volatile(key[0]))
                x, y = comparable(old, paths), comparable(new, paths)
                if x == y:
                    counts.unchanged += 1
                else:
                    counts.changed += 1
                    yield Change("changed", *key, fields=changed_fields(x, y), before=old, after=new)
            a, b = next(left, None), next(right, None)


# -- two runs of one database ------------------------------------------------------------------------

# A reader may also have ``differing(before, after, types, equal) -> (before_rows, after_rows)``: both
# runs' rows whose data are not equal, in key order, calling ``equal(scope)`` for every resource equal in
# both (PostgreSQL compares in the database and sends only the keys of what is equal).


class _Reader(Protocol):
    def runs(self) -> list[dict[str, Any]]: ...
    def fetched(self, run_id: int) -> dict[Scope, str]: ...
    def fetch_times(self, run_id: int) -> dict[Scope, str | None]: ...
    def resources(self, run_id: int, types: list[str] | None = None) -> Iterable[Row]: ...


# (before run, after run, types, called with each scope whose rows are equal in both) -> the two runs'
# rows that differ, key-ordered
_Differing = Callable[
    [int, int, list[str] | None, Callable[[Scope], None]], tuple[Iterable[Row], Iterable[Row]]
]


def pick_runs(
    runs: list[dict[str, Any]], from_run: int | None, to_run: int | None, name: str = "the database"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two runs to compare. Named runs must exist (finished or not: asking for a killed run is
    allowed); a missing side is the finished run before ``to`` / the last finished run."""
    by_id = {r["run_id"]: r for r in runs}
    finished = [r["run_id"] for r in runs if r["finished_at"] is not None]
    listing = (
        f"runs there: {_ranges([r['run_id'] for r in runs])} (finished: {_ranges(finished) or 'none'})"
        if runs
        else "it has no runs yet"
    )
    for flag, run in (("--from", from_run), ("--to", to_run)):
        if run is not None and run not in by_id:
            raise InventoryError(f"{flag} {run}: no such run in {name}; {listing}")
    if to_run is None:
        later = [r for r in finished if from_run is None or r > from_run]
        if not later:
            since = f" after run {from_run}" if from_run is not None else ""
            raise InventoryError(f"{name} has no finished run{since} to compare with; {listing}")
        to_run = later[-1]
    if from_run is None:
        earlier = [r for r in finished if r < to_run]
        if not earlier:
            raise InventoryError(
                f"{name} has no finished run before run {to_run} to compare it with; {listing} "
                "(run the inventory again, or name --from and --to)"
            )
        from_run = earlier[-1]
    return by_id[from_run], by_id[to_run]


def _ranges(ids: list[int]) -> str:
    """``1-3, 5``: run ids, briefly."""
    parts: list[str] = []
    for n in ids:
        if parts and parts[-1].split("-")[-1] == str(n - 1):
            parts[-1] = f"{parts[-1].split('-')[0]}-{n}"
        else:
            parts.append(str(n))
    return ", ".join(parts)


@dataclass
class RunDiff:
    """``before``/``after``: the two runs' rows; ``changes``: a one-pass iterator; ``counts`` is
    complete once ``changes`` has been consumed. ``stale_fetches``: scopes both runs fetched ok but the
    later run (the higher run id) holds a page no newer than the earlier one's (served from a cache),
    left out of the comparison; ``stale_oldest``: when the oldest of those pages was fetched.
    ``untimed_cached``: pages the later run took from the cache when the file does not say which ones
    (written before fetch times were recorded); 0 otherwise."""

    before: dict[str, Any]
    after: dict[str, Any]
    changes: Iterator[Change]
    counts: DiffCounts
    stale_fetches: int = 0
    stale_oldest: str | None = None
    untimed_cached: int = 0

    @property
    def later(self) -> dict[str, Any]:
        return self.after if self.after["run_id"] > self.before["run_id"] else self.before

    @property
    def earlier(self) -> dict[str, Any]:
        return self.before if self.later is self.after else self.after


def diff_runs(
    db: _Reader,
    from_run: int | None = None,
    to_run: int | None = None,
    types: list[str] | None = None,
    *,
    volatile: Mapping[str, Iterable[str]] | None = None,
    name: str = "the database",
) -> RunDiff:
    """Changes between two runs of one inventory database (default: the last two finished runs)."""
    before, after = pick_runs(db.runs(), from_run, to_run, name)
    ok_before = {s for s, status in db.fetched(before["run_id"]).items() if status == "ok"}
    ok_after = {s for s, status in db.fetched(after["run_id"]).items() if status == "ok"}
    both = ok_before & ok_after
    earlier, later = sorted((before, after), key=lambda r: r["run_id"])
    later_times = db.fetch_times(later["run_id"])
    stale = _stale(db.fetch_times(earlier["run_id"]), later_times, both)
    untimed = 0
    if (
        None in later_times.values()
    ):  # written before fetch times were recorded: the summary's count is all there is
        untimed = int((later.get("summary") or {}).get("cached") or 0)
    paths = volatile if volatile is not None else catalog().volatile
    counts = DiffCounts()

    def compared(scope: Scope) -> bool:
        return scope in both and scope not in stale

    # PostgreSQL's reader compares in the database (``differing``); SQLite's has no such method
    differing: _Differing | None = getattr(db, "differing", None)
    if differing is not None:  # the database compares: rows equal in both runs are only counted

        def equal(scope: Scope) -> None:
            if compared(scope):
                counts.unchanged += 1
            elif scope in stale:
                counts.stale += 1
            else:
                counts.not_compared += 1

        left, right = differing(before["run_id"], after["run_id"], types, equal)
    else:
        left, right = db.resources(before["run_id"], types), db.resources(after["run_id"], types)
    changes = diff_resources(
        left,
        right,
        compared=compared,
        volatile=lambda t: paths.get(t, ()),
        counts=counts,
        stale=stale.__contains__,
    )
    return RunDiff(
        before,
        after,
        changes,
        counts,
        stale_fetches=len(stale),
        stale_oldest=min(stale.values()) if stale else None,
        untimed_cached=untimed,
    )


def _stale(
    earlier: Mapping[Scope, str | None], later: Mapping[Scope, str | None], scopes: set[Scope]
) -> dict[Scope, str]:
    """Scopes where the later run's page was fetched no later than the earlier run's (ISO-8601 UTC text
    sorts as time) -> the later page's time; scopes without both times are not judged."""
    out: dict[Scope, str] = {}
    for scope in scopes:
        new, old = later.get(scope), earlier.get(scope)
        if new is not None and old is not None and new <= old:
            out[scope] = new
    return out
