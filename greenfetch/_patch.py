"""The gevent monkey-patching story, in one place.

gevent makes sockets cooperative by patching the standard library. That must happen before
``ssl``, ``urllib3`` or ``botocore`` are imported: patching later leaves SSL contexts built on the
unpatched classes, which ends in ``RecursionError`` deep inside ``ssl`` at the first HTTPS call.

So ``import greenfetch`` patches when it is still safe, and otherwise stops with a message that says
how to fix the program. ``GREENFETCH_ENGINE=threads`` opts out of gevent entirely.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["EngineImportError", "engine_kind", "ensure_patched", "is_patched"]

from ._config import parse_backend
from ._exceptions import ConfigError, EngineImportError

_TOO_LATE = ("ssl", "urllib3", "botocore", "requests")


def engine_kind(environ: os._Environ[str] | dict[str, str] | None = None) -> str:
    """The backend this process runs on: ``GREENFETCH_ENGINE`` or ``gevent``, parsed as Config parses it."""
    env = os.environ if environ is None else environ
    try:
        return parse_backend(env.get("GREENFETCH_ENGINE") or "gevent")
    except ConfigError as exc:
        raise EngineImportError(str(exc)) from None


def is_patched() -> bool:
    if "gevent.monkey" not in sys.modules:
        return False
    from gevent import monkey

    return bool(monkey.is_module_patched("socket") and monkey.is_module_patched("ssl"))


def ensure_patched() -> str:
    """Patch the standard library for gevent if needed and still safe; return the engine kind."""
    kind = engine_kind()
    if kind == "threads" or is_patched():
        return kind
    early = [name for name in _TOO_LATE if name in sys.modules]
    if early:
        raise EngineImportError(
            "greenfetch runs on gevent, which must patch the standard library before "
            f"{', '.join(early)} is imported, and this program imported it first. Fix: import greenfetch "
            "(or call gevent.monkey.patch_all()) at the very top of your program, before boto3, "
            "botocore, requests or ssl; or set GREENFETCH_ENGINE=threads to run on threads instead."
        )
    from gevent import monkey

    with _entry_points_scanned_once():
        monkey.patch_all()
    return kind


@contextlib.contextmanager
def _entry_points_scanned_once() -> Iterator[None]:
    """gevent asks importlib.metadata for plugin entry points about 25 times while patching, and each
    ask scans every installed package: 0.1-0.2 s of every process start (the CLI, the Nushell plugin).
    Scan once and answer the rest from that, only for the duration of the patching."""
    from importlib import metadata

    scan = metadata.entry_points
    everything = scan()

    def cached(**params: Any) -> Any:
        return everything.select(**params) if params else everything

    metadata.entry_points = cached
    try:
        yield
    finally:
        metadata.entry_points = scan
