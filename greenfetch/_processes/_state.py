"""What the pool keeps: each child (``_Child``: its process, channel, ``ChildState``, unanswered
requests, the rows queued for it, the frames it has not acknowledged and the rows whose send to it
failed), each request not yet answered
(``_Pending``) and the run (``_Run``).
"""

from __future__ import annotations

import enum
import subprocess
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .._adaptive import Gate
from .._backends import Task
from ._router import Router
from ._wire import Begin, Channel

__all__ = ["IDLE", "LOST", "RUNNING", "UNREACHABLE", "ChildState"]


class ChildState(enum.Enum):
    IDLE = "idle"  # started; between runs (a run ends when it says Done)
    RUNNING = "running"  # in the current run: requests are routed to it
    UNREACHABLE = (
        "unreachable"  # a send to it failed: nothing more goes to it; its reader will report its end
    )
    LOST = "lost"  # its end was handled: its unanswered requests went elsewhere


# The states by module name: an Enum member looked up on its class costs ~5x an attribute, and the
# router's candidates are read per request.
IDLE, RUNNING, UNREACHABLE, LOST = ChildState


@dataclass(eq=False)
class _Child:
    slot: int
    proc: subprocess.Popen[bytes]
    channel: Channel
    lock: Any  # one sender at a time on its channel
    state: ChildState = ChildState.IDLE
    outstanding: set[int] = field(default_factory=set)  # indexes routed to it and not answered yet
    # pack_request rows for the sender, not yet sent
    buffer: list[tuple[Any, ...]] = field(default_factory=list)
    # indexes of batches whose send to it failed: they never reached it (requeued once its end is handled)
    unsent: list[int] = field(default_factory=list)
    # each frame sent to it and not yet acknowledged (Took), its indexes: they never ran if it dies now
    sent: deque[list[int]] = field(default_factory=deque)
    reader: Task | None = None


@dataclass(eq=False)
class _Pending:
    raw: Any
    child: _Child | None = None
    sends: int = 0


@dataclass(eq=False)
class _Run:
    """One run: how it routes, what each child is told, what is unanswered, the replacements left."""

    router: Router
    begin: Begin  # its credits are set per child
    gate: Gate | None
    respawns: int
    pending: dict[int, _Pending] = field(default_factory=dict)
    over: bool = False  # its sender returns once set (a sender thread cannot be killed)

    def begin_for(self, slot: int) -> Begin:
        return self.begin._replace(credits=self.router.credits(slot))
