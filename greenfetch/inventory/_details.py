"""Detail steps: for every item of a listed page, one call per step of its type (S3's bucket location,
policy, ...), run in parallel through the fetch's gate, each answer merged into its item."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .._adaptive import Gate
from .._engine import Engine
from .._models import Request
from ._catalog import Detail
from ._items import _detail_param, _merge
from ._plan import _Fetch

__all__ = ["fetch_details"]


def fetch_details(engine: Engine, unit: _Fetch, items: list[Any], concurrency: int, gate: Gate | None) -> int:
    """Run each detail step for every item, in parallel; returns the calls made."""
    calls = 0
    for detail in unit.rtype.details:
        requests = [_detail_request(unit, detail, item) for item in items]
        for result in engine.iter_results(requests, concurrency, gate=gate):
            _merge(items[result.index], detail, result)
            calls += result.attempts
    return calls


def _detail_request(unit: _Fetch, detail: Detail, item: dict[str, Any]) -> Request:
    where = {"account": unit.account, "region": unit.request.region}
    given = {name: _detail_param(spec, item, where) for name, spec in detail.params.items()}
    params = {**detail.extra, **{k: v for k, v in given.items() if v is not None}}
    region = (item.get(detail.region_from) if detail.region_from else None) or unit.request.region
    return replace(
        unit.request, operation=detail.operation, params=params, region=region, paginate=detail.paginate
    )
