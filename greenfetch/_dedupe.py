"""Placeholder singleflight (the primitives issue replaces it with the real table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Singleflight"]


class Singleflight:
    def __init__(self, metrics: Any = None):
        self.metrics = metrics

    def do(self, key: str, fn: Callable[[], Any], window: Any = 5.0) -> Any:
        return fn()
