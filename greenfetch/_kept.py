"""A memo of what a run repeats (names, tags, texts, answers), bounded by emptying it when full.

Every such memo in greenfetch keeps its entries with :func:`kept`: the one rule for how big it may
grow. Emptying rather than evicting costs one miss an entry after a clear and never a scan or an
order to keep; a hit is the caller's own ``dict.get``, with no call here.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["kept"]

K = TypeVar("K")
V = TypeVar("V")


def kept(memo: dict[K, V], key: K, value: V, most: int) -> V:
    """``memo[key] = value``, the memo emptied first when it already holds ``most`` entries; ``value``."""
    if len(memo) >= most:
        memo.clear()
    memo[key] = value
    return value
