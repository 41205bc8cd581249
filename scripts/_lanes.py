"""The suite in two lanes (scripts/test with no arguments): two ordinary pytest processes side by side.

Lane A: the modules that mostly wait (timers, child processes, Redis, PostgreSQL, nu) or need the client
to outrun a server (a token bucket must see throttles), run at normal
priority so their timing margins hold. Lane B: every other module, CPU-bound, under ``nice``. A module
belongs to lane A by being listed in ``LANE_A``; a new module lands in lane B unless listed. Each lane
writes its own log; both are printed whole when they end, then one closing line with the totals.
The exit code is non-zero when either lane failed.

A lane that has not ended after ``LIMIT`` seconds (``GREENFETCH_LANE_LIMIT``) is stopped, with its
children, and counts as failed: under gevent a test can wait forever on a greenlet that died (the hub
still has a child process to watch, so gevent never raises LoopExit), and pytest-timeout's alarm fires
once per test, while Hypothesis shrinking a failure calls the test again. pytest's
``faulthandler_timeout`` (pyproject.toml) has by then printed where each thread was.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANE_A = [
    "test_distributed.py",
    "test_worker_signals.py",
    "test_sqlite_sink.py",
    "test_nu_plugin.py",
    "test_hardening_signals.py",
    "test_prometheus.py",
    "test_drs_signals.py",
    "test_adaptive.py",
    "test_credentials.py",
    "test_postgres_sink.py",
    "test_postgres_e2e.py",
    "test_chaos.py",
]
LIMIT = float(os.environ.get("GREENFETCH_LANE_LIMIT", "1200"))
COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def main() -> int:
    tests = ROOT / "tests"
    lane_a = [str(tests / name) for name in LANE_A if (tests / name).exists()]
    ignore = [f"--ignore={path}" for path in lane_a]
    common = [sys.executable, "-m", "pytest", "--durations=10"]
    logs = Path(tempfile.mkdtemp(prefix="greenfetch-lanes-"))
    lanes = {"A": common + lane_a, "B": ["nice", "-n", "10"] + common + [str(tests)] + ignore}
    started = time.monotonic()
    procs = {}
    try:
        for name, cmd in lanes.items():
            log = open(logs / f"lane-{name}.log", "w")  # noqa: SIM115 (closed below)
            procs[name] = (
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=os.environ.copy(),
                    process_group=0,
                ),
                log,
                time.monotonic(),
            )
        totals: dict[str, int] = {}
        failed = False
        for name, (proc, log, began) in procs.items():
            code, cpu = _wait(proc, began + LIMIT)
            hung = code is None
            if hung:
                code = _stop(proc)
            log.close()
            text = (logs / f"lane-{name}.log").read_text(errors="replace")
            print(f"\n===== lane {name}: exit {code}, {time.monotonic() - began:.0f} s wall, {cpu:.0f} s CPU =====")
            print(text, end="")
            if hung:
                print(
                    f"\nlane {name} did not end within {LIMIT:.0f} s (GREENFETCH_LANE_LIMIT) and was stopped: a "
                    "test hung, and pytest's 'Timeout' dump above shows where each thread was"
                )
            closing = [line for line in text.splitlines() if COUNTS.search(line) and " in " in line]
            for count, what in COUNTS.findall(closing[-1] if closing else ""):
                key = "errors" if what.startswith("error") else what
                totals[key] = totals.get(key, 0) + int(count)
            failed |= code != 0 or hung
    finally:  # Ctrl-C reaches this process only (each lane has its own process group): stop the lanes too
        for proc, _, _ in procs.values():
            if proc.poll() is None:
                _stop(proc)
    print(f"\n===== both lanes: {time.monotonic() - started:.0f} s wall =====")
    print(
        f"{totals.get('passed', 0)} passed, {totals.get('failed', 0) + totals.get('errors', 0)} failed, "
        f"{totals.get('skipped', 0)} skipped"
    )
    return 1 if failed else 0


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> tuple[int | None, float]:
    """Wait for a lane until ``deadline`` (monotonic): its exit code (None if it is still running) and
    the CPU seconds (user + system) it and the children it waited for spent."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, usage.ru_utime + usage.ru_stime
        if time.monotonic() >= deadline:
            return None, 0.0
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    """End a lane and everything it started (its process group): SIGTERM, then SIGKILL after 10 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the lanes were stopped on the way out
        sys.exit(130)
