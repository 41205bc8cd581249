"""Is this process its own bottleneck? ``ClientLoad`` samples its hub's thread (running, and waiting for a
CPU; from ``/proc/thread-self/schedstat`` where Linux has it, ``_Schedstat``) and remembers the hub's
stalls, so the controller (``_controller``) can tell latency in our own run queue from a server's.
``_adaptive``'s gate reads it per answer and starts its watcher while requests are in flight.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable

__all__ = ["ClientLoad"]


class ClientLoad:
    """Is this process its own bottleneck? Two shares of wall time of its hub's thread, sampled every
    ``interval`` while requests are in flight and lightly smoothed: ``value``, running or waiting for
    a CPU (0-1), and ``cpu``, running only.

    When the process is CPU-bound, or starved by its neighbours, every answer waits for its greenlet
    to run, so latency rises although the server is no slower; the controller must not read that as
    the server queueing (the fast-server case: it cut, and lost throughput a fixed limit keeps).
    ``value`` near 1 (``Settings.saturated``) says the thread hardly ever sleeps: answers always wait
    for it. Below that, only ``cpu`` says how busy it keeps *itself* (``Settings.busy``): waiting for
    a CPU a neighbour holds costs each wake-up a few ms however many requests are in flight, while our
    own run queue grows with them; on a loaded machine an idle client wakes often enough to read
    ``value`` 0.6-1 with ``cpu`` 0.1-0.3. Linux tells both parts exactly (``/proc/thread-self/schedstat``:
    time on a CPU and time runnable in its run queue); elsewhere the thread's CPU time (``cpu``) plus
    how late the hub woke this watcher (its loop lag) stand in. The controller reads ``read()``, per answer,
    as ``load`` (1 for an answer stalls held), ``cpu`` and ``held``. Measured on the loopback fast server, 2 cores under load: ``value``
    0.94-0.98 at fixed 64 and 128 (the same calls/s), 0.77-0.87 at 32 (0.8x of them); 0.2-0.6 on the
    100 ms knee server on a quiet machine, 0.8-1.0 at load 5 (``cpu`` 0.25 there: a call cost 1 ms of
    CPU and the client got a quarter of one, so it was the bottleneck at 245 calls/s).
    """

    STALL_SHARE = 0.25  # stalls that held an answer this share of its latency or more: it waited for us
    LATE = 0.2  # a wake-up this share of an interval late or more is a stall ``held`` counts (5 ms)

    def __init__(self, interval: float = 0.025, clock: Callable[[], float] = time.perf_counter):
        self.interval = interval
        self.clock = clock  # the watcher's (the simulated client in the tests drives ``measured`` itself)
        self.value = 0.0
        self.cpu = 0.0
        self._running = False
        self._due = 0.0  # when this watcher should wake next (perf_counter)
        self._stalls: deque[tuple[float, float]] = deque(maxlen=256)  # (end, length) of recent stalls

    def now(self, seconds: float = 0.0) -> float:
        """The load for an answer that took ``seconds``: the smoothed share, or 1 if stalls of the
        hub (this watcher woke, or is, an interval or more late) held it in flight for ``STALL_SHARE``
        of its time or more. Answers that waited out a stall (a neighbour holding the CPU, a garbage
        collection) are handled as soon as the process runs again, before or just after the watcher
        measures it: they waited for us. A stall that is a small part of a long answer's time is not
        what made it long (past a server's cliff every answer is long, and spans some stall)."""
        return self.read(seconds)[0]

    def read(self, seconds: float = 0.0) -> tuple[float, float, float]:
        """For an answer that took ``seconds``: ``now``'s load, the CPU share, and the seconds stalls
        held it (what of its time it may have waited for us, however idle our own CPU was)."""
        if not self._running:
            return self.value, self.cpu, 0.0
        # ``stalled`` and ``held`` in one pass (read per answer: the gate's hot path): the seconds of
        # stalls of ``LATE`` x the interval or more, and of those of an interval or more
        now, interval = self.clock(), self.interval
        least = self.LATE * interval
        late = now - self._due
        held = long = late if late >= least else 0.0
        if late < interval:
            long = 0.0
        since, stalls = now - seconds, self._stalls
        if stalls and stalls[-1][0] > since:  # else no stall ended within it: no iterator made
            drain = self._drain()
            for end, length in reversed(stalls):
                if end <= since:
                    break
                if length >= least and now - drain * length - interval <= end <= now:  # see ``_drain``
                    part = min(length, end - since)
                    held += part
                    if length >= interval:
                        long += part
        stalled = long > 0 and long >= self.STALL_SHARE * seconds
        return (1.0 if stalled else self.value), self.cpu, held

    def stalled(self, now: float, seconds: float) -> bool:
        """Did stalls hold an answer that came at ``now`` after ``seconds`` in flight for
        ``STALL_SHARE`` of them or more? Only stalls of an interval or more count here: the watcher
        is a few ms late whenever the hub has work queued, and an answer is ours (load 1, which no
        latency cut reads) only when a real stall made it long."""
        held = self.held(now, seconds, self.interval)
        return held > 0 and held >= self.STALL_SHARE * seconds

    def held(self, now: float, seconds: float, least: float | None = None) -> float:
        """Seconds of stalls (of ``least`` or more; default ``LATE`` x the interval) within the last
        ``seconds`` before ``now``; one going on now (the watcher overdue) counts as far as it went.
        Slow start reads all of them: a 15-25 ms stall makes a 50 ms answer "slow" (1.5x), and
        before they counted only from 25 ms, such a stall ended slow start at a quarter of the
        limit the client could use (simulated, a loaded machine: 0.57x fixed 128 on 5,000 calls)."""
        least = self.LATE * self.interval if least is None else least
        late = now - self._due
        held = late if late >= least else 0.0
        since, drain = now - seconds, self._drain()
        for end, length in reversed(self._stalls):
            if end <= since:
                break
            # one recorded after ``now`` did not hold this answer, nor one whose backlog had drained
            if length >= least and now - drain * length - self.interval <= end <= now:
                held += min(length, end - since)
        return held

    def _drain(self) -> float:
        """Seconds of run queue a stall leaves per second it lasted, at our CPU share (at most 4):
        what piled up during it (``cpu`` x its length) drains at the share left over. An answer
        that came later than that (an interval more, for the hub's own lag) after a stall's end
        was not in that queue: it came while the answers were flowing again, so the stall did not
        hold it, however much of its flight it overlapped (before, a 48 ms stall while an idle
        client's requests sat at a cliff's server made their slow answers "ours" and slow start
        ran on past the knee: 4x it, not 2.4x)."""
        cpu = self.cpu
        return 4.0 if cpu >= 0.8 else cpu / (1.0 - cpu)

    def ensure(self, busy: Callable[[], bool]) -> None:
        if not self._running:
            import gevent

            self._running, self._due = True, time.perf_counter() + self.interval
            gevent.spawn(self._watch, busy)

    def update(self, share: float, cpu: float | None = None) -> None:
        """One interval's shares of time running or runnable, and running (0-1), lightly smoothed:
        they must follow slow start, which doubles the load every round trip."""
        self.value += 0.7 * (share - self.value)
        self.cpu += 0.7 * ((share if cpu is None else cpu) - self.cpu)
        self.cpu = min(self.cpu, self.value)  # running is a part of running or waiting (not by rounding)

    def measured(self, began: float, wall: float, used: float, ran: float) -> None:
        """One turn of the watcher: it slept ``interval`` from ``began`` and woke ``wall`` s later,
        the thread ``used`` s of it running or waiting for a CPU, ``ran`` s running. Woken late
        (``LATE`` of an interval or more), the hub stalled until now (``held`` and ``stalled``)."""
        if wall - self.interval >= self.LATE * self.interval:
            self._stalls.append((began + wall, wall - self.interval))
        if wall > 0:
            self.update(min(1.0, used / wall), min(1.0, ran / wall))

    def _watch(self, busy: Callable[[], bool]) -> None:
        import gevent

        schedstat = _Schedstat.open()
        try:
            while busy():
                began = time.perf_counter()
                cpu, waiting = schedstat.split() if schedstat else (time.thread_time(), 0.0)
                self._due = began + self.interval
                gevent.sleep(self.interval)
                wall = time.perf_counter() - began
                if schedstat:
                    cpu_now, waiting_now = schedstat.split()
                    used, ran = cpu_now + waiting_now - cpu - waiting, cpu_now - cpu
                else:  # CPU time, and the hub's lateness waking us (runnable, not running; or busy)
                    ran = time.thread_time() - cpu
                    used = ran + max(0.0, wall - self.interval)
                self.measured(began, wall, used, ran)
        finally:
            self._running, self.value, self.cpu = False, 0.0, 0.0
            self._stalls.clear()
            if schedstat:
                schedstat.close()


class _Schedstat:
    """This thread's ``/proc/thread-self/schedstat`` (Linux): nanoseconds on a CPU, then waiting in a
    run queue. ``open`` gives None where there is none (another OS, or a kernel without schedstats)."""

    def __init__(self, fd: int):
        self.fd = fd

    @classmethod
    def open(cls) -> _Schedstat | None:
        try:
            found = cls(os.open("/proc/thread-self/schedstat", os.O_RDONLY))
            found.split()
        except (OSError, ValueError):
            return None
        return found

    def split(self) -> tuple[float, float]:
        """Seconds this thread has been running, and waiting for a CPU."""
        cpu, waiting = os.pread(self.fd, 128, 0).split()[:2]
        return int(cpu) / 1e9, int(waiting) / 1e9

    def close(self) -> None:
        os.close(self.fd)
