"""Tags for every type (``--tags``): the Resource Groups Tagging API's tags, read once per (account,
API region) the run calls, joined into each listed item by its ARN."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from .._engine import Engine
from .._models import Request
from ._items import _join_tags, _tag_map
from ._plan import _Fetch
from ._summary import RunSummary

__all__ = ["TagMaps"]


class TagMaps:
    """The tagging API's tags per (account, API region): ``fetch`` reads them, ``join`` puts them on a
    page's items. Its calls, time and failures count in ``summary``."""

    def __init__(self, engine: Engine, concurrency: int, summary: RunSummary):
        self._engine, self._concurrency, self._summary = engine, concurrency, summary
        self._maps: dict[tuple[str, str], dict[str, dict[str, str]]] = {}  # (account, region) -> ARN -> tags

    def fetch(self, units: Iterable[_Fetch]) -> None:
        """The tags of every taggable resource, once per (account, API region) the units call: one
        paginated GetResources (100 resources a page), all of them at once through the engine. A
        failed one leaves that region's items with their own tags only and is named in the summary."""
        summary = self._summary
        wanted: dict[tuple[str, str], Request] = {}
        for unit in units:
            key = (unit.account, unit.request.region or "")
            if key not in wanted:
                wanted[key] = replace(
                    unit.request,
                    service="resourcegroupstaggingapi",
                    operation="GetResources",
                    params={"ResourcesPerPage": 100},
                    paginate=True,
                )
        keys = list(wanted)
        started = time.perf_counter()
        for result in self._engine.iter_results(list(wanted.values()), self._concurrency):
            key = keys[result.index]
            if not result.ok:
                summary.tag_call(result.attempts, f"{key[0]}/{key[1]}", result.error_code)
                continue
            summary.tag_call(result.attempts)
            found = (result.result or {}).get("ResourceTagMappingList") or []
            self._maps[key] = {
                row["ResourceARN"]: _tag_map(row.get("Tags"))
                for row in found
                if isinstance(row, dict) and row.get("ResourceARN")
            }
        summary.tagging_took(time.perf_counter() - started)

    def join(self, unit: _Fetch, items: list[Any]) -> None:
        """Each object item of the unit's page gets ``tags`` (``_items._join_tags``)."""
        _join_tags(unit.rtype, items, self._maps.get((unit.account, unit.request.region or "")))
