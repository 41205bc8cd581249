"""A test's process in another time zone for a while."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator


@contextlib.contextmanager
def in_zone(name: str) -> Iterator[None]:
    """The process's TZ set to ``name`` (dateutil's ``tzlocal`` reads ``time.timezone`` when made and
    asks ``time.localtime`` whether a datetime is in DST), put back after."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
