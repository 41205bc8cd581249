"""adaptive_batch against fixed concurrency and botocore's own adaptive retry mode, on loopback servers.

    scripts/bench --only primitives [--quick] [--write]      (or: python scripts/bench_primitives.py)

Three servers (``greenfetch.testing.LoopbackServer`` children, DynamoDB ListTables):
- knee: 100 ms flat up to C=32 in flight, then ``latency * (n/C)^2``; a fixed-concurrency sweep 1..128
  finds the best fixed limit; adaptive starts at 5.
- throttle: a token bucket of R=200 req/s (50 ms answers) returning ThrottlingException above it;
  adaptive against botocore's ``retry_mode="adaptive"`` (a client-side rate limiter) at fixed concurrency.
- fast: 50 ms, no knee; adaptive against fixed max concurrency (128), i.e. can the controller keep up
  when the client's own CPU is the limit.
Each run pulls requests lazily for ``DURATION`` seconds; throughput counts successes after a warm-up.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import greenfetch  # noqa: F401  (first: gevent patches before botocore in this process)
from greenfetch import Config, Engine
from greenfetch._adaptive import Gate, Settings, limits_of
from greenfetch.testing import LoopbackServer

SECTION = "primitives"
REQUEST = {"service": "dynamodb", "operation": "ListTables"}
KNEE, KNEE_LATENCY, RATE, FAST_LATENCY, MAX = 32, 0.1, 200, 0.05, 128


@dataclass
class Run:
    label: str
    throughput: float = 0.0  # successes / s after the warm-up
    p50: float = 0.0
    p99: float = 0.0
    throttled: float = 0.0  # fraction of HTTP attempts the server throttled, after the warm-up
    failed: int = 0
    limit_mean: float | None = None
    windows_to_90: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def measure(server: LoopbackServer, label: str, duration: float, warmup: float, concurrency: int = MAX,
            adaptive: dict[str, Any] | None = None, retry_mode: str = "standard") -> Run:
    """One run: a fresh engine, requests pulled until ``duration`` s have passed."""
    engine = Engine(Config.resolve({"endpoint_url": server.url, "region": "us-east-1", "retry_mode": retry_mode,
                                    "concurrency": max(concurrency, MAX)}))
    gate = None
    if adaptive is not None:
        limits = limits_of(engine)
        limits.configure(Settings.checked(**adaptive))
        gate = Gate(limits)
    start = time.monotonic()
    deadline = start + duration

    def requests() -> Any:
        while time.monotonic() < deadline:
            yield REQUEST

    done: list[tuple[float, bool, float, int | None]] = []
    before = None
    for result in engine.iter_results(requests(), concurrency, gate=gate):
        now = time.monotonic() - start
        done.append((now, result.ok, result.duration_ms / 1000.0, result.concurrency))
        if before is None and now >= warmup:
            before = server.stats()
    after = server.stats()
    engine.close()
    steady = [d for d in done if warmup <= d[0] < duration]
    latencies = sorted(d[2] for d in steady if d[1])
    run = Run(label, throughput=sum(d[1] for d in steady) / (duration - warmup),
              p50=_q(latencies, 0.5), p99=_q(latencies, 0.99), failed=sum(not d[1] for d in done))
    if before is not None:
        attempts = after["requests"] - before["requests"]
        run.throttled = (after["throttled"] - before["throttled"]) / attempts if attempts else 0.0
    if gate is not None:
        (trace,) = gate.trace().values() or [[]]
        steady_limits = [p.limit for p in trace if p.time - start >= warmup]
        run.limit_mean = statistics.mean(steady_limits) if steady_limits else None
        run.windows_to_90 = _windows_to(trace, done, start, 0.9 * run.throughput)
    return run


def _q(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, int(q * len(values) + 0.5) - 1))] if values else 0.0


def _windows_to(trace: list[Any], done: list[tuple[float, bool, float, int | None]], start: float,
                rate: float) -> int | None:
    """Update windows until the successes of the next 0.5 s first reach ``rate`` per second."""
    for i, point in enumerate(trace):
        t = point.time - start
        if sum(1 for d in done if t <= d[0] < t + 0.5 and d[1]) / 0.5 >= rate:
            return i
    return None


def knee(duration: float, warmup: float, sweep: list[int]) -> tuple[list[Run], Run, Run]:
    with serving(latency=KNEE_LATENCY, knee=KNEE, seed=1) as server:
        noload = measure(server, "fixed 1", duration, warmup, concurrency=1)
        fixed = [measure(server, f"fixed {c}", duration, warmup, concurrency=c) for c in sweep]
        adaptive = measure(server, "greenfetch adaptive (from 5)", duration, warmup,
                           adaptive={"initial_concurrency": 5, "max_concurrency": MAX})
    return fixed, adaptive, noload


def throttle(duration: float, warmup: float) -> tuple[Run, list[Run]]:
    with serving(latency=FAST_LATENCY, token_bucket=RATE, seed=1) as server:
        adaptive = measure(server, "greenfetch adaptive (from 5)", duration, warmup,
                           adaptive={"initial_concurrency": 5, "max_concurrency": MAX})
        peers = [measure(server, f"botocore retry_mode=adaptive, fixed {c}", duration, warmup, concurrency=c,
                         retry_mode="adaptive") for c in (10, 32)]
        peers.append(measure(server, "botocore standard, fixed 32", duration, warmup, concurrency=32))
    return adaptive, peers


def fast(duration: float, warmup: float) -> tuple[Run, Run]:
    with serving(latency=FAST_LATENCY, seed=1) as server:
        fixed = measure(server, f"fixed {MAX} (max)", duration, warmup, concurrency=MAX)
        adaptive = measure(server, "greenfetch adaptive (from 5)", duration, warmup,
                           adaptive={"initial_concurrency": 5, "max_concurrency": MAX})
    return fixed, adaptive


@contextlib.contextmanager
def serving(**knobs: Any) -> Iterator[LoopbackServer]:
    """A started LoopbackServer (the object, for its stats), stopped afterwards."""
    server = LoopbackServer(**knobs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _row(run: Run, *cells: str) -> str:
    limit = f"{run.limit_mean:.1f}" if run.limit_mean is not None else "-"
    windows = str(run.windows_to_90) if run.windows_to_90 is not None else "-"
    return (f"| {run.label} | {run.throughput:.0f} | {run.p50 * 1000:.0f} | {run.p99 * 1000:.0f} | "
            f"{run.throttled:.1%} | {limit} | {windows} | " + " | ".join(cells) + " |")


HEADER = ("| run | ok/s | p50 ms | p99 ms | attempts throttled | mean limit | windows to 90% | verdict |\n"
          "|---|---:|---:|---:|---:|---:|---:|---|")


def run(quick: bool = False) -> str:
    # loopback only: fake credentials, so no real ones are ever read or signed with
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_EC2_METADATA_DISABLED="true")
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    duration, warmup = (2.0, 0.5) if quick else (6.0, 2.0)
    sweep = [8, 32, 64] if quick else [2, 4, 8, 16, 24, 32, 48, 64, 128]
    began, load_before = time.monotonic(), os.getloadavg()[0]
    fixed, adaptive_knee, noload = knee(duration, warmup, sweep)
    best = max(fixed, key=lambda r: r.throughput)
    adaptive_throttle, peers = throttle(duration, warmup)
    fixed_max, adaptive_fast = fast(duration, warmup)
    took = time.monotonic() - began

    def ok(flag: bool) -> str:
        return "**pass**" if flag else "**FAIL**"

    knee_ok = (adaptive_knee.throughput >= 0.9 * best.throughput and adaptive_knee.p99 <= 2 * noload.p50
               and adaptive_knee.windows_to_90 is not None and adaptive_knee.windows_to_90 <= 20)
    throttle_ok = adaptive_throttle.throughput >= 0.85 * RATE and adaptive_throttle.throttled <= 0.05
    fast_ok = adaptive_fast.throughput >= 0.95 * fixed_max.throughput
    lines = [
        "## Primitives: adaptive concurrency", "",
        f"`scripts/bench --only primitives` ({'--quick: numbers meaningless' if quick else 'full'}; {took:.0f} s). "
        f"Each run pulls requests for {duration:.0f} s; ok/s and percentiles count the time after a "
        f"{warmup:.0f} s warm-up. One process (gevent) against a `LoopbackServer` child on a shared "
        f"{os.cpu_count()}-core machine (load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after: "
        "neighbours starve the client at random, so single rows are noisy; compare rows of one table).", "",
        f"### Knee server (flat {KNEE_LATENCY * 1000:.0f} ms up to C={KNEE} in flight, then latency x (n/C)^2)", "",
        f"Targets: >= 90% of the best fixed ok/s, p99 <= 2x the no-load latency "
        f"({noload.p50 * 1000:.0f} ms at concurrency 1), 90% of steady ok/s within 20 update windows.", "",
        HEADER,
        *[_row(r, "best fixed" if r is best else "") for r in [noload, *fixed]],
        _row(adaptive_knee, ok(knee_ok) + f" ({adaptive_knee.throughput / best.throughput:.0%} of best fixed, "
             f"p99 {adaptive_knee.p99 / noload.p50:.1f}x no-load)"), "",
        f"### Throttle server (token bucket R={RATE}/s, {FAST_LATENCY * 1000:.0f} ms answers, ThrottlingException above)",
        "", "Targets: >= 85% of R with <= 5% of attempts throttled. botocore's adaptive mode limits the *rate* per "
        "client after the first throttle; greenfetch limits *concurrency* per scope.", "",
        HEADER,
        _row(adaptive_throttle, ok(throttle_ok) + f" ({adaptive_throttle.throughput / RATE:.0%} of R)"),
        *[_row(r, f"{r.throughput / RATE:.0%} of R") for r in peers], "",
        f"### Fast server ({FAST_LATENCY * 1000:.0f} ms, no knee)", "",
        f"Target: adaptive >= 95% of fixed max concurrency ({MAX}): the client's CPU is the limit here.", "",
        HEADER, _row(fixed_max, ""),
        _row(adaptive_fast, ok(fast_ok) + f" ({adaptive_fast.throughput / max(fixed_max.throughput, 1e-9):.0%} "
             "of fixed max)"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (seconds; numbers meaningless)")
    parser.add_argument("--write", action="store_true", help="write the section into docs/performance.md")
    args = parser.parse_args(argv)
    markdown = run(args.quick)
    print(markdown)
    if args.write:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench import write_section

        write_section(SECTION, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
