"""``python -m greenfetch.drs RUNS.json``: run several syncs in one process, print one JSON document.

RUNS.json is a list of ``{"name", "options": SyncOptions fields, "status_file": path | null,
"now": ISO-8601}``. The output is
``[{"name", "response", "records", "items", "statuses", "timings"}]``, every part but the timings in
a stable order, so two processes (``GREENFETCH_ENGINE=gevent`` and ``threads``) given the same runs
can be compared part for part. This is what the engine comparison tests drive: one
process per engine for a whole set of scenarios.
"""

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import greenfetch  # noqa: F401  (first: gevent patches before botocore is imported)

from .._jsonable import jsonable


def _fixed(stamp: datetime) -> Callable[[], datetime]:
    return lambda: stamp


def run(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ..inventory import RegionStatusStore
    from ._pipeline import SyncOptions, client_budget, sync_source_server_inventory

    config = greenfetch.Config.resolve()
    engine = greenfetch.Engine(config.replace(max_clients=client_budget(config.concurrency)))
    out = []
    for spec in runs:
        store = RegionStatusStore(spec["status_file"]) if spec.get("status_file") else None
        stamp = datetime.fromisoformat(spec.get("now") or "2026-01-01T00:00:00+00:00")
        result = sync_source_server_inventory(
            engine, SyncOptions(**spec["options"]), store=store, now=_fixed(stamp)
        )
        out.append(
            {
                "name": spec.get("name"),
                "response": result.response,
                "records": result.records,
                "items": result.items,
                "statuses": [o.status_record() for o in result.outcomes],
                "timings": result.timings,
            }
        )
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m greenfetch.drs RUNS.json", file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as handle:
        runs = json.load(handle)
    json.dump(jsonable(run(runs)), sys.stdout, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
