"""Simulated servers and a simulated-time client for the pure adaptive controller (Vector ARC style).

Each server answers ``call(now, inflight) -> (latency, throttled)``. ``simulate`` keeps the
controller's limit in flight (honouring its rate cap, like ``_limiter.Limiter``) with infinite demand,
or until ``calls`` requests have succeeded; an optional client CPU cost per answer models a CPU-bound
client (answers wait for the client, and it reports the share of the last 100 ms it was busy as
``load`` and ``cpu``, as ``_clientload.ClientLoad`` does); ``neighbours`` adds a share of time spent waiting
for a CPU other processes hold to the load it reports, not to its CPU share (a loaded machine).
``simulate_client`` runs the same servers against a ``CpuClient`` (gevent's hub as one CPU with a run
queue, its load read by the real ``ClientLoad``), and ``five_cases`` the bench's primitives verdicts on
it (``python tests/_simservers.py N`` prints them for seeds 1-N on each machine profile,
``PROFILES``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import random
import statistics
from collections import deque
from typing import Any

from greenfetch._controller import Controller, Settings


class Clock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _jitter(rng: random.Random, spread: float = 0.1) -> float:
    return 1.0 - spread + 2 * spread * rng.random()


class Flat:
    """No knee: latency S (+-10%) at any concurrency."""

    def __init__(self, s: float = 0.05, seed: int = 1):
        self.s, self.rng = s, random.Random(seed)

    def best(self, limit: int) -> float:
        return limit / self.s

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        return self.s * _jitter(self.rng), False


class SquareKnee(Flat):
    """The loopback server's cliff: latency S x (n/C)^2 beyond C; throughput *falls* past the knee."""

    def __init__(self, c: int = 32, s: float = 0.05, seed: int = 1):
        super().__init__(s, seed)
        self.c = c

    def best(self, limit: int) -> float:
        return self.c / self.s

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        return self.s * _jitter(self.rng) * max(1.0, inflight / self.c) ** 2, False


class FifoKnee(SquareKnee):
    """C workers, FIFO queue beyond C: flat to C, then latency grows with the queue."""

    def __init__(self, c: int = 32, s: float = 0.05, seed: int = 1):
        super().__init__(c, s, seed)
        self.free = [0.0] * c

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        start = max(now, heapq.heappop(self.free))
        done = start + self.s * _jitter(self.rng)
        heapq.heappush(self.free, done)
        return done - now, False


class LinearPlateau(SquareKnee):
    """Latency S x n/C beyond C: throughput plateaus at C/S; more in flight only adds latency."""

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        return self.s * _jitter(self.rng) * max(1.0, inflight / self.c), False


class Drifting(LinearPlateau):
    """A linear plateau whose service time drifts from S to ``factor`` x S over ``over`` seconds."""

    def __init__(self, c: int = 32, s: float = 0.05, factor: float = 2.0, over: float = 20.0, seed: int = 1):
        super().__init__(c, s, seed)
        self.s0, self.factor, self.over = s, factor, over

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        self.s = self.s0 * (1 + (self.factor - 1) * min(1.0, now / self.over))
        return super().call(now, inflight)


class Noisy(LinearPlateau):
    """A linear plateau with log-normal latency noise (sigma 0.3): p99 is ~2x the median at no load."""

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        return self.s * math.exp(self.rng.gauss(0.0, 0.3)) * max(1.0, inflight / self.c), False


class Bucket(Flat):
    """A token bucket of R/s with a burst of ``burst`` (the loopback server's: one second's worth);
    over the rate an immediate (2 ms) ThrottlingException."""

    def __init__(self, rate: float = 200.0, burst: float | None = None, s: float = 0.05, seed: int = 1):
        super().__init__(s, seed)
        self.rate, self.burst = rate, rate if burst is None else burst
        self.tokens, self.t = self.burst, 0.0

    def best(self, limit: int) -> float:
        return self.rate

    def call(self, now: float, inflight: int) -> tuple[float, bool]:
        self.tokens = min(self.burst, self.tokens + (now - self.t) * self.rate)
        self.t = now
        if self.tokens >= 1:
            self.tokens -= 1
            return self.s * _jitter(self.rng), False
        return 0.002, True


@dataclasses.dataclass
class Run:
    controller: Controller
    done: list[tuple[float, float, bool]]  # (answer time, latency, throttled), every attempt
    limits: list[tuple[float, int]]  # (time, limit) at each answer
    finished: float = math.inf  # when the ``calls``-th success came (finite batches)

    def ok_rate(self, start: float, end: float) -> float:
        return sum(1 for t, _, thr in self.done if start <= t < end and not thr) / (end - start)

    def throttled(self, start: float) -> float:
        after = [thr for t, _, thr in self.done if t >= start]
        return sum(after) / len(after)

    def p99(self, start: float) -> float:
        lat = sorted(x for t, x, thr in self.done if t >= start and not thr)
        return lat[int(0.99 * (len(lat) - 1))]

    def limit_stats(self, start: float) -> tuple[float, float]:
        xs = [limit for t, limit in self.limits if t >= start]
        return statistics.mean(xs), statistics.pstdev(xs) / statistics.mean(xs)

    def windows_to(self, rate: float) -> int | None:
        """Update windows until the next 0.5 s first reach ``rate`` successes/s."""
        for i, point in enumerate(self.controller.trace):
            if self.ok_rate(point.time, point.time + 0.5) >= rate:
                return i
        return None


def simulate(
    server: Any,
    config: Settings = Settings(),
    duration: float = 20.0,
    fixed: int | None = None,
    calls: int | None = None,
    cpu: float = 0.0,
    controller: Controller | None = None,
    clock: Clock | None = None,
    neighbours: float = 0.0,
    attempts: int = 3,
) -> Run:
    """Keep the limit in flight against ``server`` in simulated time; ``cpu`` = client seconds per answer,
    ``neighbours`` = the share of time it waits for a CPU other processes hold (reported load only);
    a throttle is retried as in ``simulate_client`` (botocore's standard mode, up to ``attempts``)."""
    clock = clock or (controller.clock if controller is not None else Clock())  # type: ignore[assignment]
    ctl = controller or Controller(config, clock)
    began = clock.now
    events: list[tuple[float, int, str, float, bool, int]] = []  # (time, seq, kind, sent, throttled, attempt)
    backoff = random.Random(7919)  # the retries' jitter
    seq, inflight, pending, oks, cpu_free = 0, 0, False, 0, began
    busy: deque[tuple[float, float]] = deque()  # the client's busy spans (start, end), the last 100 ms
    run = Run(ctl, [], [])

    def load() -> float:
        while busy and busy[0][1] <= clock.now - 0.1:
            busy.popleft()
        return sum(end - max(start, clock.now - 0.1) for start, end in busy) / 0.1

    def limit() -> int:
        return fixed or max(1, int(ctl.limit))

    def send(attempt: int = 1) -> None:
        nonlocal inflight, seq
        inflight += attempt == 1  # a retry holds the slot its first attempt took
        seq += 1
        latency, throttled = server.call(clock.now, inflight)
        heapq.heappush(events, (clock.now + latency, seq, "answer", clock.now, throttled, attempt))

    def dispatch() -> None:
        nonlocal pending, seq
        while not pending and inflight < limit() and (calls is None or oks + inflight < calls):
            wait = 0.0 if fixed else ctl.reserve()
            if wait > 0:  # paced: one send waits for its turn (the limiter's sleep)
                pending, seq = True, seq + 1
                heapq.heappush(events, (clock.now + wait, seq, "send", 0.0, False, 1))
                return
            send()

    dispatch()
    while events and clock.now - began < duration and (calls is None or oks < calls):
        t, _, kind, sent, throttled, attempt = heapq.heappop(events)
        clock.now = max(clock.now, t)
        if kind == "retry":  # unpaced
            send(attempt)
            continue
        if kind == "send":
            pending = False
            if inflight < limit():
                send()
            dispatch()
            continue
        if cpu:  # the client handles answers one at a time: a busy client sees them late
            handled = max(t, cpu_free) + cpu
            busy.append((handled - cpu, handled))
            cpu_free = clock.now = handled
        latency = clock.now - sent
        share = load()
        ctl.sample(
            latency, throttled=throttled, inflight=inflight, load=min(1.0, share + neighbours), cpu=share
        )
        run.done.append((clock.now - began, latency, throttled))
        run.limits.append((clock.now - began, limit()))
        if throttled and attempt < attempts:  # botocore retries it, the slot still held
            seq += 1
            wait = min(20.0, backoff.random() * 2 ** (attempt - 1))
            heapq.heappush(events, (clock.now + wait, seq, "retry", 0.0, False, attempt + 1))
            continue
        inflight -= 1
        oks += not throttled
        if calls is not None and oks >= calls:
            run.finished = clock.now - began
        dispatch()
    return run


# -- a CPU-bound client: gevent's hub as one CPU with a run queue ----------------------------------


@dataclasses.dataclass
class CpuClient:
    """A client process whose one thread (gevent's hub) is a CPU with a FIFO run queue, in simulated
    time: each call costs ``pre`` s of CPU before its attempt's timer starts (botocore's serialize and
    sign, before ``before-send``) and ``post`` s inside it (send, read, parse, the hooks), and a new
    connection ``connect`` s more; answers that come while the CPU is busy wait in the run queue, so
    the latency the controller sees rises once the in-flight work is more than the CPU can do (at
    0.5 ms a call, about 2,000 calls/s: the loopback fast server's client). ``stalls`` per second
    (seeded, exponential lengths of mean ``stall_mean`` s) are neighbours holding the CPU: every job
    waits them out. The client's load is read as ``_clientload.ClientLoad`` reads it, by the real class:
    a watcher job every ``interval`` in the same run queue measures the share of time running or
    waiting for the CPU (``value``) and running (``cpu``) and records the stalls it woke late across.
    Defaults: 0.5 ms a call, split as docs/performance.md's profile splits it (about 70% before the
    timer), a TCP connect 0.1 ms. ``runnable`` adds that share of wall time to the time read as
    waiting for a CPU (``ClientLoad.value``, not ``cpu``), as on a loaded machine where an idle client's
    every wake-up waits a few ms for a CPU a neighbour holds."""

    pre: float = 0.00035
    post: float = 0.00015
    connect: float = 0.0001
    stalls: float = 0.0
    stall_mean: float = 0.01
    runnable: float = 0.0
    seed: int = 1


class _Cpu:
    """The hub's CPU: jobs run in arrival order, around the stalls; it keeps the spans it ran and
    waited (runnable while a stall held it) for the watcher's shares."""

    def __init__(self, client: CpuClient, began: float):
        self.rng = random.Random(client.seed)
        self.rate, self.mean = client.stalls, client.stall_mean
        self.next_stall = self._draw(began)
        self.stall = (began, began)  # the stall in force or last passed
        self.free = began  # when the CPU finishes what it has
        self.spans: deque[tuple[float, float, bool]] = deque()  # (start, end, running?) of busy time

    def _draw(self, after: float) -> tuple[float, float]:
        if not self.rate:
            return (math.inf, math.inf)
        start = after + self.rng.expovariate(self.rate)
        return (start, start + self.rng.expovariate(1.0 / self.mean))

    def run(self, ready: float, cost: float) -> float:
        """A job ready at ``ready`` costing ``cost`` s of CPU: when it finishes."""
        t, left = max(ready, self.free), cost
        while True:
            while self.next_stall[0] <= t:  # stalls that began by now
                self.stall = (self.next_stall[0], max(self.next_stall[1], self.stall[1]))
                self.next_stall = self._draw(self.next_stall[0])
            if self.stall[0] <= t < self.stall[1]:  # held: runnable, not running
                self.spans.append((t, self.stall[1], False))
                t = self.stall[1]
                continue
            until = min(t + left, self.next_stall[0])
            if until > t:
                self.spans.append((t, until, True))
            left -= until - t
            t = until
            if left <= 1e-12:
                self.free = t
                return t

    def shares(self, start: float, end: float) -> tuple[float, float]:
        """Seconds running or runnable, and running, within [start, end)."""
        used = ran = 0.0
        while self.spans and self.spans[0][1] <= start - 1.0:
            self.spans.popleft()
        for a, b, running in self.spans:
            overlap = min(b, end) - max(a, start)
            if overlap > 0:
                used += overlap
                ran += overlap if running else 0.0
        return used, ran


def simulate_client(
    server: Any,
    client: CpuClient | None = None,
    config: Settings = Settings(),
    duration: float = 20.0,
    fixed: int | None = None,
    calls: int | None = None,
    controller: Controller | None = None,
    clock: Clock | None = None,
    attempts: int = 3,
) -> Run:
    """``simulate`` with a ``CpuClient``: every send and every answer is a job on the client's one CPU,
    the controller's samples come as ``_limiter.Limiter.observe`` gives them (latency from
    ``before-send`` to the parsed answer, the slots held, ``ClientLoad.read``), and the limit grants
    slots as ``Limiter`` does (paced by the rate cap after a throttle). A fixed run has no controller.
    A new pool of connections per call (per server): fixed 128 opens 128 at once, adaptive as it grows.
    A throttle is retried as botocore's standard mode retries it, up to ``attempts`` in all: after
    rand(0, 1) x 2^(retry - 1) s (at most 20 s), unpaced, the request holding its slot all along."""
    from greenfetch._clientload import ClientLoad

    client = client or CpuClient()
    clock = clock or (controller.clock if controller is not None else Clock())  # type: ignore[assignment]
    ctl = None if fixed else controller or Controller(config, clock)
    began = clock.now
    cpu = _Cpu(client, began)
    load = ClientLoad(clock=clock)
    load._running = True  # the watcher is the ``watch`` job below
    load._due = began + load.interval
    events: list[tuple[float, int, str, Any]] = []  # (time, seq, kind, payload)
    seq = 0
    state = {"held": 0, "at_server": 0, "oks": 0, "pending": False, "conns": 0, "watched": began}
    backoff = random.Random(client.seed + 7919)  # the retries' jitter
    run = Run(ctl, [], [])  # type: ignore[arg-type]

    def push(t: float, kind: str, payload: Any = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, payload))

    def limit() -> int:
        return fixed or max(1, int(ctl.limit))  # type: ignore[union-attr]

    def acquire() -> None:  # a slot, then the request's ``pre`` on the CPU
        state["held"] += 1
        if ctl is not None:
            ctl.note_inflight(state["held"])
        cost = client.pre
        if state["conns"] < state["held"]:  # a new connection
            state["conns"] += 1
            cost += client.connect
        push(cpu.run(clock.now, cost), "sent", 1)

    def dispatch() -> None:
        while (
            not state["pending"]
            and state["held"] < limit()
            and (calls is None or state["oks"] + state["held"] < calls)
        ):
            wait = ctl.reserve() if ctl is not None else 0.0
            if wait > 0:  # paced: one sender waits its turn (the limiter's sleep)
                state["pending"] = True
                push(clock.now + wait, "paced")
                return
            acquire()

    push(began + load.interval, "watch")
    dispatch()
    while events and clock.now - began < duration and (calls is None or state["oks"] < calls):
        t, _, kind, payload = heapq.heappop(events)
        clock.now = max(clock.now, t)
        if kind == "watch":  # due now: it runs when the CPU gets to it (a zero-cost job)
            ran_at = cpu.run(clock.now, 0.0)
            if ran_at > clock.now:
                push(ran_at, "woke")
            else:
                heapq.heappush(events, (clock.now, -1, "woke", None))
        elif kind == "woke":
            start = state["watched"]
            used, ran = cpu.shares(start, clock.now)
            used = min(clock.now - start, used + client.runnable * (clock.now - start))
            load.measured(start, clock.now - start, used, ran)
            state["watched"] = clock.now
            load._due = clock.now + load.interval
            push(load._due, "watch")
        elif kind == "paced":
            state["pending"] = False
            if state["held"] < limit():
                acquire()
            dispatch()
        elif kind == "retry":  # the backoff is over: the attempt is signed again (``pre``), unpaced
            push(cpu.run(clock.now, client.pre), "sent", payload)
        elif kind == "sent":  # before-send: the attempt's timer starts, the server has it
            state["at_server"] += 1
            latency, throttled = server.call(clock.now, state["at_server"])
            push(clock.now + latency, "answer", (clock.now, throttled, payload))
        elif kind == "answer":  # into the run queue: parsed when the CPU gets to it
            state["at_server"] -= 1
            push(cpu.run(clock.now, client.post), "parsed", payload)
        elif kind == "parsed":
            sent, throttled, attempt = payload
            latency = clock.now - sent
            if ctl is not None:
                value, share, held = load.read(latency)
                ctl.sample(
                    latency, throttled=throttled, inflight=state["held"], load=value, cpu=share, held=held
                )
            run.done.append((clock.now - began, latency, throttled))
            run.limits.append((clock.now - began, limit()))
            if throttled and attempt < attempts:  # botocore retries it, the slot still held
                push(clock.now + min(20.0, backoff.random() * 2 ** (attempt - 1)), "retry", attempt + 1)
                continue
            state["held"] -= 1
            state["oks"] += not throttled
            if calls is not None and state["oks"] >= calls:
                run.finished = clock.now - began
            dispatch()
    return run


# -- the bench's primitives section, simulated -----------------------------------------------------

PROFILES = {  # CpuClient knobs: a quiet machine, and loaded ones (neighbours' stalls; an always-runnable hub)
    "quiet": {},
    "light": {"stalls": 10, "stall_mean": 0.01},
    "loaded": {"stalls": 20, "stall_mean": 0.015},
    "runnable": {"runnable": 0.6, "stalls": 10, "stall_mean": 0.01},
    # neighbours hold the CPU nearly always: load 0.95-1.0 at a CPU share of 0.03-0.2 (load 10-20 on 2 cores)
    "crowded": {"runnable": 0.95, "stalls": 10, "stall_mean": 0.01},
}


def five_cases(client: CpuClient, seed: int = 1) -> dict[str, float]:
    """``scripts/bench_primitives.py``'s verdicts on a ``CpuClient``, in simulated time (~0.7 s of CPU):
    *fresh*, 5,000 calls on the fast server (50 ms, no knee) from 5 (max 128) over fixed 128 (ratio of
    times); *after*, 1,500 calls there right after 600 adaptive calls on the slower plateau server
    (100 ms, C=32) in the same scope (a new batch: ``reconfigure``), over fixed 128; *plateau* and
    *cliff* (100 ms, C=32, ``LinearPlateau`` and ``SquareKnee``), 6 s runs counted from 2 s over the
    best fixed of 24/32/48, with p99 over the no-load latency and the peak limit over C; *bucket*, a
    token bucket of 200/s at 50 ms: ok/s over R and the share of attempts throttled."""
    config = Settings(max=128)
    out: dict[str, float] = {}
    fixed = simulate_client(Flat(seed=seed), client, fixed=128, calls=5000)
    out["fresh"] = fixed.finished / simulate_client(Flat(seed=seed), client, config, calls=5000).finished
    clock = Clock()
    ctl = Controller(config, clock)
    simulate_client(LinearPlateau(s=0.1, seed=seed), client, controller=ctl, clock=clock, calls=600)
    fixed = simulate_client(Flat(seed=seed), client, fixed=128, calls=1500)
    ctl.reconfigure(config)  # a new batch (``Limits.open``)
    after = simulate_client(Flat(seed=seed), client, controller=ctl, clock=clock, calls=1500)
    out["after"] = fixed.finished / after.finished
    for name, server in (("plateau", LinearPlateau), ("cliff", SquareKnee)):
        best = max(
            simulate_client(server(s=0.1, seed=seed), client, fixed=c, duration=6).ok_rate(2, 6)
            for c in (24, 32, 48)
        )
        run = simulate_client(server(s=0.1, seed=seed), client, config, duration=6)
        out[name] = run.ok_rate(2, 6) / best
        out[f"{name} p99"] = run.p99(2) / 0.1
        out[f"{name} peak"] = max(limit for _, limit in run.limits) / 32
    run = simulate_client(Bucket(rate=200, seed=seed), client, config, duration=6)
    out["bucket"], out["throttled"] = run.ok_rate(2, 6) / 200, run.throttled(2)
    return out


if __name__ == "__main__":  # python tests/_simservers.py [seeds]: medians [min-max] per machine profile
    import sys

    seeds = range(1, int(sys.argv[1]) + 1 if len(sys.argv) > 1 else 4)
    for profile, knobs in PROFILES.items():
        rows = [five_cases(CpuClient(seed=seed, **knobs), seed) for seed in seeds]
        print(
            f"{profile:8s}",
            "  ".join(
                f"{key} {statistics.median(r[key] for r in rows):.2f} "
                f"[{min(r[key] for r in rows):.2f}-{max(r[key] for r in rows):.2f}]"
                for key in rows[0]
            ),
        )
