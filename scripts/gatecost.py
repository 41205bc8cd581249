"""Instructions per request of the adaptive gate's pieces (callgrind): the A/B tool of issue 24's gate section.

    python scripts/gatecost.py [--n N] [TREE...]

Each TREE (a source tree put first on PYTHONPATH: a checkout of the code before a change; default this
one) runs a child under ``valgrind --tool=callgrind --instr-atstart=no``; the child times each piece in
its own window (``percall._Window``: instrumentation switched on and off from inside), ``N`` times, and
the count is divided by ``N``. No server, no hub, no botocore: the gate alone, on a simulated clock
that advances 0.5 ms a request (2,000 calls/s, the fast server's CPU-bound client), so every run makes
the same decisions and the count is deterministic up to the interpreter's own caches.

Pieces:

- ``steady``: one request through an existing scope's gate at steady state: the fast server's case
  (limit 128 = max, 50 ms answers, flat latency, ~100 in flight, the client saturated: load 0.95, CPU
  0.9): the slot's acquire and release, ``Gate.attempt`` (``signal_of``, ``ClientLoad.read``,
  ``Controller.sample``, a window closed and its ``TracePoint`` about once per round trip).
- ``steady idle``: the same with the client idle (load 0.3, CPU 0.2): the latency law's path.
- ``steady, the engine's way``: ``steady`` with each answer observed as the engine has since issue 24
  part 7e: through the limiter the gate gave the request at the slot (``Limiter.observe``), so the
  request's scope is found once, not again by ``Gate.attempt``.
- ``steady sample``: ``steady``'s ``Controller.sample`` alone (a loop's own cost included).
- ``Controller()``: a controller made (a new scope's, or ``Limits.reset``'s).
- ``first sample``: a new controller's first ``sample`` (an inventory's one-call scope).
- ``new limiter``: ``Limits.limiter`` for a scope not seen before.
- ``one-call scope``: one request through a new scope's gate (the limiter made, a slot, a sample).
- ``feed``: ``FairFeed`` handing out one request of a scope of its own, and its ``done``.
- ``one-call scope, fed``: the inventory's one-call scope whole: ``FairFeed`` with the inventory's
  cap (the scope's limiter's limit), one request through a new scope's gate, its sample, ``done``.
- ``one-call scope, the inventory's way``: the same as the inventory and the engine run it since
  issue 24 parts 6-7e: the feed keyed by the unit's own scope (``operator.attrgetter``), the answer
  observed through the slot while it is held (``Limiter.observe``), not ``Gate.attempt`` after.
- ``one-call scope, throttled``: a new scope's one request answered by a throttle (a sample that
  moves the rate and the limit: a lazily made limiter makes its controller for it).
- ``one-call scope, answered late``: its answer 1.5 s after its limiter was made (past ``max_window``:
  its window closes), as most of an inventory's are under callgrind, ~50x slower than native.
- ``one-call scope, past the bound``: ``one-call scope``s of a long-lived engine that already keeps
  10,000 scopes of earlier runs, in runs of 1,000, each through a gate of its own: a new scope's share
  of the sweeps that forget the earlier runs' (``Limits._sweep``), amortized over 10,000.
- ``gate opening, S scopes``: a long-lived engine's run starting (``open_gate``, the inventory's
  settings), per opening: S scopes each made and used by one request in the first run, then 70 runs
  that reach none of them (the engine a worker keeps between tasks); 1,000 and 10,000 scopes, and
  1,000 with the settings changed at every opening (per opening over 64: what is deferred to each
  limiter's next use is not in it).

    python scripts/gatecost.py --decisions [TREE...]

The check that a cut kept every decision: each TREE's child (no valgrind) prints what the rules
decided, every float by its ``repr`` (all its digits): the simulator's five cases
(``tests/_simservers.five_cases``) on every machine profile, seeds 1-2; the whole trace of 20 s
``simulate`` runs on the knee, plateau, token-bucket and flat servers and of a ``simulate_client`` run
from 5 on the fast server; and a gated run (``gated``): requests through ``Gate`` and ``Limiter`` on
a simulated clock with random latencies, throttles, timeouts and connection errors, its limit and
rate after every request and its trace; and runs of many short scopes (``scopes``: an inventory's,
where a limiter makes its controller only when first needed), every scope's whole controller state
at the end. The first tree's output is the reference; any other that
differs is named with its first difference (exit 1).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STEP = 0.0005  # simulated seconds per request: 2,000 calls/s
LATENCY = 0.05
INFLIGHT = 100


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _quiet_limits() -> tuple[_Clock, Any]:
    """A new ``Limits`` on a simulated clock whose load watcher counts as running and is never late
    (no watcher greenlet, no stall): the gate's own work only."""
    from greenfetch._adaptive import Limits
    from greenfetch._metrics import Metrics

    clock = _Clock()
    limits = Limits(Metrics(), clock=clock, gevent=True)
    limits.load.clock = clock
    limits.load._running, limits.load._due = True, 1e12
    return clock, limits


def _one_call_requests(n: int) -> list[Any]:
    """``n`` requests, each its own scope (one region each): an inventory's one-call scopes."""
    from greenfetch._models import Request

    return [Request("dynamodb", "ListTables", region=f"r{i}", account="111111111111") for i in range(n)]


def _steady(n: int, load: float, cpu: float, through_slot: bool = False) -> Any:
    """A scope at its max with ``INFLIGHT`` requests in flight; returns the run of ``n`` more. With
    ``through_slot`` each answer is observed as the engine does since part 7e: by the limiter the
    gate gave the request (``Limiter.observe``), not ``Gate.attempt`` by request."""
    from greenfetch._adaptive import open_gate
    from greenfetch._attempts import Attempt
    from greenfetch._models import Request

    clock, limits = _quiet_limits()
    limits.load.value, limits.load.cpu = load, cpu
    gate = open_gate(limits, 128, 5.0, 1, 128)
    request = Request("dynamodb", "ListTables", region="us-east-1")
    answer = Attempt(LATENCY, 200, None)
    held: list[Any] = []

    def one() -> None:
        clock.now += STEP
        slot = gate(request)
        slot.__enter__()
        held.append(slot)
        if len(held) > INFLIGHT:
            done = held.pop(0)
            done.__exit__(None, None, None)
            if through_slot:
                done.observe(answer)
            else:
                gate.attempt(request, answer)

    for _ in range(4 * n):  # windows closed, the baseline known: steady state
        one()

    def run() -> None:
        for _ in range(n):
            one()

    return run


def _long_lived(scopes: int, openings: int, changed: bool = False) -> Any:
    """An engine's limits with ``scopes`` scopes made and used once in its first run, then 70 runs
    that reach none of them; returns ``openings`` more runs' openings (other settings each time with
    ``changed``). Returned with how many it runs (the window's count is per opening)."""
    from greenfetch._adaptive import open_gate
    from greenfetch._attempts import Attempt

    clock, limits = _quiet_limits()
    gate = open_gate(limits, 5, 5.0, 1, 64)
    answer = Attempt(LATENCY, 200, None)
    for request in _one_call_requests(scopes):
        clock.now += STEP
        slot = gate(request)
        with slot:
            slot.observe(answer)
    for _ in range(70):
        clock.now += 1.0
        open_gate(limits, 5, 5.0, 1, 64)

    def run() -> None:
        for n in range(openings):
            clock.now += 1.0
            open_gate(limits, 5, 5.0, 1, 64 if not changed or n % 2 else 32)

    return run


_BOUND_NEW = 10_000  # the new scopes of ``_past_the_bound``'s window: four sweeps at the default bound


def _past_the_bound(scopes: int) -> Any:
    """A long-lived engine's new one-call scopes, the inventory's way, in runs of 1,000 (a gate each),
    once it keeps ``SCOPES_KEPT`` (10,000) scopes of earlier runs: each new scope's share of the
    sweeps that forget the earlier ones (a tree without the bound keeps them all)."""
    from greenfetch._adaptive import open_gate
    from greenfetch._attempts import Attempt

    clock, limits = _quiet_limits()
    answer = Attempt(LATENCY, 200, None)
    requests = _one_call_requests(10_000 + scopes)

    def runs(part: list[Any]) -> None:
        for start in range(0, len(part), 1000):
            clock.now += 1.0
            gate = open_gate(limits, 5, 5.0, 1, 64)
            for request in part[start : start + 1000]:
                clock.now += STEP
                slot = gate(request)
                with slot:
                    slot.observe(answer)

    runs(requests[:10_000])
    return lambda: runs(requests[10_000:])


def child(n: int) -> dict[str, Any]:
    import greenfetch  # noqa: F401  (first: patches)

    sys.path.insert(0, str(HERE))
    from percall import _Window

    from greenfetch._adaptive import Limits, open_gate
    from greenfetch._attempts import Attempt
    from greenfetch._controller import Controller, Settings
    from greenfetch._metrics import Metrics
    from greenfetch.inventory._pacing import FairFeed

    settings = Settings(initial=5, target_latency=5.0, max=64)
    answer = Attempt(LATENCY, 200, None)
    out: dict[str, Any] = {}

    def window(name: str, run: Any, per: int | None = None) -> None:
        run_ = run()  # set-up outside the window
        gc.collect()  # every window starts with the collector's counts at 0
        with _Window(name):
            run_()
        out[name] = per  # the count is divided by this (None: ``n``)

    window("steady", lambda: _steady(n, 0.95, 0.9))
    window("steady idle", lambda: _steady(n, 0.3, 0.2))
    window("steady, the engine's way", lambda: _steady(n, 0.95, 0.9, through_slot=True))

    def samples() -> Any:  # ``steady``'s controller alone: its ``sample`` per answer
        clock = _Clock()
        ctl = Controller(Settings(initial=128, target_latency=5.0, max=128), clock)

        def one() -> None:
            clock.now += STEP
            ctl.sample(LATENCY, inflight=INFLIGHT, load=0.95, cpu=0.9)

        for _ in range(4 * n):
            one()
        return lambda: [one() for _ in range(n)]

    window("steady sample", samples)

    def controllers() -> Any:
        clock = _Clock()
        return lambda: [Controller(settings, clock) for _ in range(n)]

    window("Controller()", controllers)

    def first_samples() -> Any:
        clock = _Clock()
        made = [Controller(settings, clock) for _ in range(n)]

        def run() -> None:
            for ctl in made:
                clock.now += STEP
                ctl.sample(LATENCY, inflight=1, load=0.3, cpu=0.2)

        return run

    window("first sample", first_samples)

    def new_limiters() -> Any:
        limits = Limits(Metrics(), clock=_Clock(), gevent=True)
        names = [f"dynamodb/r{i}/111111111111" for i in range(n)]

        def run() -> None:
            for name in names:
                limits.limiter(name)

        return run

    window("new limiter", new_limiters)

    def one_call_scopes() -> Any:
        clock, limits = _quiet_limits()
        gate = open_gate(limits, 5, 5.0, 1, 64)
        requests = _one_call_requests(n)

        def run() -> None:
            for request in requests:
                clock.now += STEP
                with gate(request):
                    pass
                gate.attempt(request, answer)

        return run

    window("one-call scope", one_call_scopes)

    def feeds() -> Any:
        requests = _one_call_requests(n)

        def run() -> None:
            feed = FairFeed(requests, Limits.scope_of, lambda scope: 5)
            for request in feed:
                feed.done(request)

        return run

    window("feed", feeds)

    def inventory_scopes() -> Any:  # the feed as the inventory sets it up, and the gate, together
        clock, limits = _quiet_limits()
        gate = open_gate(limits, 5, 5.0, 1, 64)
        requests = _one_call_requests(n)

        def run() -> None:
            feed = FairFeed(requests, Limits.scope_of, lambda scope: limits.limiter(scope).limit)
            for request in feed:
                clock.now += STEP
                with gate(request):
                    pass
                gate.attempt(request, answer)
                feed.done(request)

        return run

    window("one-call scope, fed", inventory_scopes)

    def inventory_way() -> Any:  # as ``Inventory._run`` and ``Engine.execute`` do it
        import operator

        clock, limits = _quiet_limits()
        gate = open_gate(limits, 5, 5.0, 1, 64)
        units = [_Unit(request) for request in _one_call_requests(n)]
        key = operator.attrgetter("scope")

        def run() -> None:
            feed = FairFeed(units, key, lambda scope: limits.limiter(scope).limit)
            for unit in feed:
                clock.now += STEP
                slot = gate(unit.request)
                with slot:
                    slot.observe(answer)
                feed.done(unit)

        return run

    window("one-call scope, the inventory's way", inventory_way)

    def throttled_scopes() -> Any:  # a new scope whose first answer moves it: its controller is made
        clock, limits = _quiet_limits()
        gate = open_gate(limits, 5, 5.0, 1, 64)
        requests = _one_call_requests(n)
        throttle = Attempt(LATENCY, 400, "ThrottlingException")

        def run() -> None:
            for request in requests:
                clock.now += STEP
                slot = gate(request)
                with slot:
                    slot.observe(throttle)

        return run

    window("one-call scope, throttled", throttled_scopes)

    def late_scopes() -> Any:  # a new scope whose one answer comes after ``max_window``
        clock, limits = _quiet_limits()
        gate = open_gate(limits, 5, 5.0, 1, 64)
        requests = _one_call_requests(n)
        late = Attempt(1.5, 200, None)

        def run() -> None:
            for request in requests:
                slot = gate(request)
                with slot:
                    clock.now += 1.5  # (an answer past ``max_window``: the window it opened closes)
                    slot.observe(late)

        return run

    window("one-call scope, answered late", late_scopes)
    window("one-call scope, past the bound", lambda: _past_the_bound(_BOUND_NEW), _BOUND_NEW)
    window("gate opening, 1,000 scopes", lambda: _long_lived(1000, 10), 10)
    window("gate opening, 10,000 scopes", lambda: _long_lived(10_000, 4), 4)
    window("gate opening, 1,000 scopes, settings changed", lambda: _long_lived(1000, 64, True), 64)
    return out


class _Unit:
    """An inventory's unit as the feed and the gate see it: its request and its scope."""

    __slots__ = ("request", "scope")

    def __init__(self, request: Any) -> None:
        from greenfetch._adaptive import Limits

        self.request, self.scope = request, Limits.scope_of(request)


def _gated(seed: int) -> list[Any]:
    """``--decisions``' gated run: 3,000 requests through one scope's ``Gate``, up to 64 in flight,
    answers from ``random.Random(seed)``; the limit and rate after each, then the trace."""
    import random

    from greenfetch._adaptive import Limits, open_gate
    from greenfetch._attempts import Attempt
    from greenfetch._models import Request

    rng = random.Random(seed)
    clock, limits = _quiet_limits()
    time.sleep = lambda seconds: setattr(clock, "now", clock.now + seconds)  # the pacer's wait, simulated
    watcher = limits.load
    gate = open_gate(limits, 5, 0.5, 1, 128)
    request = Request("dynamodb", "ListTables", region="us-east-1", account="111111111111")
    held: list[Any] = []
    out: list[Any] = []
    for i in range(3000):
        clock.now += rng.choice((0.0002, 0.0005, 0.002, 0.02))
        watcher.value = rng.random()
        watcher.cpu = watcher.value * rng.random()
        if (
            len(held) < max(1, int(limits.limiter(Limits.scope_of(request)).controller.limit))
            and len(held) < 64
        ):
            slot = gate(request)
            slot.__enter__()
            held.append(slot)
        if held and (len(held) >= 8 or rng.random() < 0.5):
            held.pop(0).__exit__(None, None, None)
            roll = rng.random()
            latency = 0.05 * (1 + (i // 500) % 3) * (0.8 + 0.4 * rng.random())
            if roll < 0.01:
                answer = Attempt(latency, 400, "ThrottlingException")
            elif roll < 0.015:
                answer = Attempt(latency, None, "ReadTimeoutError")
            elif roll < 0.02:
                answer = Attempt(latency, None, "ConnectionError")
            else:
                answer = Attempt(latency, 200, None)
            gate.attempt(request, answer)
        controller = limits.limiter(Limits.scope_of(request)).controller
        out.append((repr(controller.limit), repr(controller.rate)))
    out.append([point.to_dict() for point in limits.limiter(Limits.scope_of(request)).controller.trace])
    return out


def _state(controller: Any) -> dict[str, str]:
    """Everything a controller holds (its rate cap's too), each value by its repr; the trace through
    its property (a controller that never closed a window may not have made its deque yet)."""
    from greenfetch._controller import Controller
    from greenfetch._ratecap import RateCap

    skip = ("cap", "clock", "_trace")
    found = {name: repr(getattr(controller, name)) for name in Controller.__slots__ if name not in skip}
    found["trace"] = repr([point.to_dict() for point in controller.trace])
    cap = controller.cap
    found.update({f"cap.{name}": repr(getattr(cap, name)) for name in RateCap.__slots__ if name != "clock"})
    return found


def _scopes_run(seed: int) -> list[Any]:
    """``--decisions``' run of many short scopes (an inventory's, and what a lazily made limiter must
    get right): 1,500 steps over up to 120 scopes, most seeing one to three requests, each request one
    to three attempts observed while its slot is held or after (the engine's two orders); answers
    plain, throttled, timed out, connection errors, 500s, below 0.1 ms, past the target; a second
    request sent while the first is out; bursts of plain answers one at a time (``min_samples``); the clock jumping past ``max_window``; stalls that held an
    answer; new gates with other settings (a limit clamped by them), ``reset=True``, ``Limits.reset``
    of one scope, ``limit_values``, ``trace`` and ``scopes`` read between. Out: what each read
    returned, and at the end every scope's whole controller state (``_state``)."""
    import random

    from greenfetch._adaptive import open_gate
    from greenfetch._attempts import Attempt
    from greenfetch._models import Request

    rng = random.Random(seed)
    clock, limits = _quiet_limits()
    time.sleep = lambda seconds: setattr(clock, "now", clock.now + seconds)  # the pacer's wait, simulated
    watcher = limits.load
    gates = [(5, 5.0, 1, 64), (2, 0.5, 1, 16), (8, 0.5, 8, 64), (1, 5.0, 1, 4), (12, 0.2, 12, 12)]
    gate = open_gate(limits, *gates[0])
    requests = [
        Request(("dynamodb", "sqs", "kms")[n % 3], "List", region=f"r{n % 40}", account=f"{n // 40:012d}")
        for n in range(120)
    ]
    inflight: list[tuple[Request, Any, int]] = []
    out: list[Any] = []
    made = clock.now
    for n, after in enumerate((1.0, 1.0 - 2**-20)):  # an answer ``max_window`` after its scope was made
        slot = gate(Request("ec2", "Describe", region=f"edge{n}", account="000000000009"))  # (and just
        slot.__enter__()  # before): the first closes its window, the second not
        clock.now = made + after
        slot.observe(Attempt(0.5, 200, None))
        slot.__exit__(None, None, None)
        clock.now = made
    clock.now = made + 1.0

    def answer() -> Attempt:
        roll = rng.random()
        latency = rng.choice((0.00005, 0.02, 0.05, 0.3, 0.8, 6.0)) * (0.8 + 0.4 * rng.random())
        if roll < 0.03:
            return Attempt(latency, 400, "ThrottlingException")
        if roll < 0.05:
            return Attempt(latency, None, "ReadTimeoutError")
        if roll < 0.08:
            return Attempt(latency, None, "ConnectionError")
        if roll < 0.11:
            return Attempt(latency, 500, "InternalError")
        return Attempt(latency, 200, None)

    def observe(slot: Any, attempts: int) -> None:
        for _ in range(attempts):
            watcher.value = rng.random()
            watcher.cpu = watcher.value * rng.random()
            watcher._due = clock.now - rng.choice((1e12, 1e12, 0.003, 0.02, 0.06))  # a stall, or none
            slot.observe(answer())

    for step in range(1500):
        clock.now += rng.choice((0.0002, 0.002, 0.02, 0.2, 1.1)) if rng.random() < 0.05 else 0.0005
        roll = rng.random()
        if roll < 0.5:  # a request: most to a scope not seen yet, some to one seen (maybe in flight)
            request = requests[min(len(requests) - 1, int(rng.expovariate(1 / 30)))]
            scope = limits.scope_of(request)
            limiter = limits.limiter(scope)
            if sum(1 for r, _, _ in inflight if r is request) < limiter.limit:
                slot = gate(request)
                out.append(("enter", step, slot.__enter__()))
                inflight.append((request, slot, rng.choice((1, 1, 1, 2, 3))))
        elif roll < 0.52:  # a burst of plain answers one at a time (a window's ``min_samples``, lazily)
            request = rng.choice(requests)
            for _ in range(rng.randint(15, 25)):
                clock.now += 0.002
                slot = gate(request)
                if sum(1 for r, _, _ in inflight if r is request) < slot.limit:
                    out.append(("enter", step, slot.__enter__()))
                    slot.observe(Attempt(0.001, 200, None))
                    slot.__exit__(None, None, None)
        elif roll < 0.9 and inflight:  # one in flight ends: its attempts seen while held, or after
            request, slot, attempts = inflight.pop(rng.randrange(len(inflight)))
            if rng.random() < 0.7:
                observe(slot, attempts)
                slot.__exit__(None, None, None)
            else:
                slot.__exit__(None, None, None)
                observe(slot, attempts)
        elif roll < 0.93:
            out.append(("limits", step, [(name, repr(limit)) for name, limit in limits.limit_values()]))
        elif roll < 0.95:
            scope = limits.scope_of(rng.choice(requests))
            out.append(("trace", step, scope, [p.to_dict() for p in limits.trace(scope)]))
        elif roll < 0.97:
            limits.reset(limits.scope_of(rng.choice(requests)))
        elif roll < 0.99:  # a new run (the last one's requests still out): other settings, maybe a reset
            out.append(("gate trace", step, {k: [p.to_dict() for p in v] for k, v in gate.trace().items()}))
            gate = open_gate(limits, *rng.choice(gates), reset=rng.random() < 0.3)
        else:
            out.append(("scopes", step, limits.scopes()))
    out.append(("gate trace", {k: [p.to_dict() for p in v] for k, v in gate.trace().items()}))
    out.append([(scope, _state(limits.limiter(scope).controller)) for scope in limits.scopes()])
    return out


def decisions() -> dict[str, Any]:
    """What the rules decided (``--decisions``): every float by its repr."""
    import greenfetch  # noqa: F401  (first: patches)

    sys.path.insert(0, str(ROOT / "tests"))
    import _simservers as sim

    from greenfetch._controller import Settings

    out: dict[str, Any] = {}
    for profile, knobs in sim.PROFILES.items():
        for seed in (1, 2):
            cases = sim.five_cases(sim.CpuClient(seed=seed, **knobs), seed)
            out[f"five {profile} {seed}"] = {key: repr(value) for key, value in cases.items()}
    servers = {
        "knee": sim.SquareKnee(),
        "plateau": sim.LinearPlateau(),
        "bucket": sim.Bucket(),
        "flat": sim.Flat(),
    }
    for name, server in servers.items():
        run = sim.simulate(server, duration=20.0)
        out[f"simulate {name}"] = [point.to_dict() for point in run.controller.trace]
    run = sim.simulate_client(sim.Flat(), sim.CpuClient(), Settings(max=128), calls=5000)
    out["simulate_client fresh"] = [point.to_dict() for point in run.controller.trace]
    for seed in (1, 2):
        out[f"gated {seed}"] = _gated(seed)
    for seed in (1, 2, 3, 4):
        out[f"scopes {seed}"] = _scopes_run(seed)
    return json.loads(json.dumps(out, default=repr))


def _compare(trees: list[str]) -> int:
    found: dict[str, Any] = {}
    for tree in trees:
        env = {**os.environ, "PYTHONPATH": tree}
        done = subprocess.run(
            ["nice", "-n", "5", sys.executable, __file__, "--decisions-child"],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        found[tree] = json.loads(done.stdout)
    reference, status = found[trees[0]], 0
    for tree in trees[1:]:
        differ = [key for key in reference if found[tree].get(key) != reference[key]]
        if differ:
            status = 1
            print(f"{tree}: differs from {trees[0]} in {', '.join(differ)}")
        else:
            print(f"{tree}: the same decisions as {trees[0]} ({len(reference)} runs, every float's repr)")
    return status


def _total(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {path}")


def _dump_name(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("desc: Trigger: Client Request: "):
            return line.split(": ")[-1]
    return path.name


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("trees", nargs="*", default=[str(ROOT)])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--decisions", action="store_true", help="compare the trees' decisions")
    parser.add_argument("--decisions-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.n)))
        return
    if args.decisions_child:
        print(json.dumps(decisions()))
        return
    if args.decisions:
        sys.exit(_compare(args.trees))
    workdir = Path(tempfile.mkdtemp(prefix="gatecost-"))
    table: dict[str, dict[str, float]] = {}
    for i, tree in enumerate(args.trees):
        out = workdir / f"t{i}.out"
        env = {**os.environ, "PYTHONPATH": tree, "PERCALL_CALLGRIND": "1"}
        done = subprocess.run(
            [
                "nice",
                "-n",
                "5",
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                "-q",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                "--child",
                "--n",
                str(args.n),
            ],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        per = json.loads(done.stdout.strip().splitlines()[-1])  # a piece's divisor (None: N)
        for part in sorted(workdir.glob(f"t{i}.out.*"), key=lambda p: int(p.suffix[1:])):
            name = _dump_name(part)
            table.setdefault(name, {})[tree] = _total(part) / (per.get(name) or args.n) / 1000
    width = max(len(name) for name in table)
    print(f"{'instructions per op (k)':{width}}  " + "  ".join(Path(t).name[-14:] for t in args.trees))
    for name, by_tree in table.items():
        print(f"{name:{width}}  " + "  ".join(f"{by_tree.get(t, float('nan')):14.1f}" for t in args.trees))


if __name__ == "__main__":
    main()
