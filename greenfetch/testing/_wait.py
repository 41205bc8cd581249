"""Waiting for a condition, never for a time: the one poll loop of the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["wait_until"]


def wait_until(
    condition: Callable[[], Any], timeout: float = 10.0, what: str = "the condition", interval: float = 0.02
) -> Any:
    """``condition()``'s first truthy value, polled every ``interval`` s (cooperative under gevent's
    patching). The timeout only bounds a failing test: past it, AssertionError names ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
