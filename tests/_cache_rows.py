"""The inventory cache's local entries as a test reads them: straight from its SQLite file."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from typing import Any

from greenfetch.inventory._pagefile import NAME


def cache_file(directory: str | os.PathLike[str]) -> str:
    return os.path.join(directory, NAME)


def cache_rows(directory: str | os.PathLike[str]) -> dict[str, str]:
    """key -> the entry's text, as written (empty when there is no file)."""
    path = cache_file(directory)
    if not os.path.exists(path):
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return dict(conn.execute("SELECT key, body FROM entries"))


def cache_entries(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """key -> the entry's envelope, parsed."""
    return {key: json.loads(text) for key, text in cache_rows(directory).items()}


def write_row(directory: str | os.PathLike[str], key: str, body: Any) -> None:
    """Put ``body`` (text, or bytes for what is not even text) under ``key``, as a broken writer might."""
    with contextlib.closing(sqlite3.connect(cache_file(directory))) as conn, conn:
        conn.execute("INSERT OR REPLACE INTO entries (key, body) VALUES (?, ?)", (key, body))
