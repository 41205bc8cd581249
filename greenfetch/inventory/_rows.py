"""What a resource row holds, in SQLite and PostgreSQL alike: its id, its JSON text, the times.

``_resource_id``: the catalog's id for an item (an ARN or the type's id field), else a common ARN/id
field, else a hash of the item's JSON, so the same item gets the same id in either database.
``dumps_strict``: the JSON text of ``data`` and ``summary``, keys sorted. ``utc_now``: a run's times.
``LATEST``: the query behind the ``latest`` view, the same in both.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from .._jsonable import to_json
from ._resource_type import ResourceType
from ._types import utc_iso

__all__ = ["LATEST", "dumps_strict", "utc_now"]

# The ``latest`` view: every resource as of the newest finished run that fetched its (type, account,
# region) with status ok. Both databases create the view from this text.
LATEST = """
    WITH newest AS (
        SELECT f.resource_type, f.account, f.region, MAX(f.run_id) AS run_id
        FROM fetches AS f JOIN runs AS r ON r.run_id = f.run_id
        WHERE r.finished_at IS NOT NULL AND f.status = 'ok'
        GROUP BY f.resource_type, f.account, f.region)
    SELECT res.run_id, res.resource_type, res.account, res.region, res.resource_id, res.data
    FROM newest JOIN resources AS res
      ON res.run_id = newest.run_id AND res.resource_type = newest.resource_type
     AND res.account = newest.account AND res.region = newest.region"""


def utc_now() -> str:
    """Now as ISO-8601 UTC with milliseconds and a ``Z``: SQLite's date functions and Nushell's
    ``into datetime`` both read it, and it sorts as text."""
    return utc_iso(time.time())


def dumps_strict(value: Any) -> str:
    """Strict JSON text (``to_json``: no NaN/Infinity, non-ASCII kept as is), keys sorted so that two
    fetches of an unchanged resource store the same text."""
    return to_json(value, sort_keys=True)


_ID_FIELDS = ("Arn", "ARN", "arn", "Id", "id", "Name", "name")


def _resource_id(kind: ResourceType | None, item: Any, data: str) -> str:
    if kind is not None:
        rid = kind.resource_id(item)
    elif isinstance(item, Mapping):
        rid = next((str(item[k]) for k in _ID_FIELDS if item.get(k)), "")
    else:
        rid = str(item)
    # No id at all (a field the API left out): a hash of the content, stable while the item is unchanged.
    return rid or "sha256:" + hashlib.sha256(data.encode()).hexdigest()[:16]
