"""Which worker process takes a request, and how many calls each may run: ``Router``, pure (no
process, no I/O), so its rules are tested without spawning children; ``ProcessPool`` asks it per request.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from .._adaptive import Limits
from .._config import Config
from .._models import Request, RequestError

__all__ = ["Routable", "Router"]


class Routable(Protocol):
    """A child as the router sees it: its slot, and the requests it has not answered yet."""

    @property
    def slot(self) -> int: ...

    @property
    def outstanding(self) -> set[int]: ...


C = TypeVar("C", bound=Routable)


class Router:
    """Which child takes a request, and how many calls each child may run at once.

    A run is *pinned* when some scope's state lives in the process, so one process must own it: the
    adaptive gate and botocore's ``adaptive`` retry mode (a rate limiter per client) pin by the
    limiter's scope (service, region, account), a dedupe window by the request's signature. Otherwise
    the run is *spread*: each request goes to the child with the fewest unanswered requests. Pure: no
    process, no I/O."""

    def __init__(
        self,
        processes: int,
        concurrency: int,
        *,
        by_scope: bool = False,
        by_signature: bool = False,
        region: str | None = None,
    ):
        self.processes = processes
        self.concurrency = concurrency
        self.by_scope = by_scope
        self.pinned = by_scope or by_signature
        self.region = region  # the run's default region: part of a request's scope and signature
        self._working = [self.share(slot) > 0 for slot in range(processes)]  # slots that get work when spread

    @classmethod
    def for_run(
        cls, config: Config, processes: int, concurrency: int, *, adaptive: bool, dedupe: bool
    ) -> Router:
        by_scope = adaptive or config.retry_mode == "adaptive"
        return cls(processes, concurrency, by_scope=by_scope, by_signature=dedupe, region=config.region)

    @property
    def window(self) -> int:
        """How many requests the parent holds unanswered: ``concurrency``, and in a spread run as many
        again queued in the children (so a child starts its next call as one ends, without a round
        trip through the parent)."""
        return self.concurrency if self.pinned else 2 * self.concurrency

    def share(self, slot: int) -> int:
        """How many of the ``concurrency`` calls the child in ``slot`` may run. Pinned: all of them (its
        scopes may be all there are; the parent holds no more than that). Spread: an even split, and
        slots beyond ``concurrency`` get none."""
        if self.pinned:
            return self.concurrency
        return self.concurrency // self.processes + (1 if slot < self.concurrency % self.processes else 0)

    def credits(self, slot: int) -> int:
        """What the child is told it may run at once: its share, at least 1 (one with no share gets no
        work, but may take a re-sent request if it is the last one left)."""
        return max(1, self.share(slot))

    def key(self, raw: Any) -> str | None:
        """What pins a request to one child (None: the least loaded child takes it)."""
        if not self.pinned:
            return None
        try:
            request = Request.coerce(raw)
        except RequestError:
            return None  # fails wherever it runs
        if request.region is None and self.region:
            request = request._evolve(region=self.region)
        return Limits.scope_of(request) if self.by_scope else request.signature

    def pick(self, raw: Any, live: Sequence[C]) -> C:
        """The child of ``live`` (not empty) that takes ``raw``: the owner of its key (the slot the key
        hashes to, or the same share of the live ones if that slot's child is gone), or the least loaded."""
        key = self.key(raw)
        if key is None:
            usable = [child for child in live if self._working[child.slot]] or live
            return min(usable, key=lambda child: len(child.outstanding))
        owner = zlib.crc32(key.encode()) % self.processes
        return next((child for child in live if child.slot == owner), live[owner % len(live)])
