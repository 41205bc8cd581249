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

    python scripts/gatecost.py --decisions [TREE...]

The check that a cut kept every decision: each TREE's child (no valgrind) prints what the rules
decided, every float by its ``repr`` (all its digits): the simulator's five cases
(``tests/_simservers.five_cases``) on every machine profile, seeds 1-2; the whole trace of 20 s
``simulate`` runs on the knee, plateau, token-bucket and flat servers and of a ``simulate_client`` run
from 5 on the fast server; and a gated run (``gated``): requests through ``Gate`` and ``Limiter`` on
a simulated clock with random latencies, throttles, timeouts and connection errors, its limit and
rate after every request and its trace. The first tree's output is the reference; any other that
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

    def window(name: str, run: Any) -> None:
        run_ = run()  # set-up outside the window
        gc.collect()  # every window starts with the collector's counts at 0
        with _Window(name):
            run_()
        out[name] = None

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
    return out


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
        subprocess.run(
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
            stdout=subprocess.DEVNULL,
        )
        for part in sorted(workdir.glob(f"t{i}.out.*"), key=lambda p: int(p.suffix[1:])):
            table.setdefault(_dump_name(part), {})[tree] = _total(part) / args.n / 1000
    width = max(len(name) for name in table)
    print(f"{'instructions per op (k)':{width}}  " + "  ".join(Path(t).name[-14:] for t in args.trees))
    for name, by_tree in table.items():
        print(f"{name:{width}}  " + "  ".join(f"{by_tree.get(t, float('nan')):14.1f}" for t in args.trees))


if __name__ == "__main__":
    main()
