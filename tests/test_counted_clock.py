"""The instruction benchmarks' counted runs read a slowed monotonic clock (scripts/bench_inventory.py,
``SLOW_CLOCK``, ``counted``): under callgrind a process runs ~50x slower while the wall clock does not, and
what greenfetch decides by ``time.monotonic`` must happen as in a native run. No valgrind here: the
clock's code and the command's rewriting, run natively."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import bench_inventory  # noqa: E402


def test_a_counted_process_reads_monotonic_slowed_and_the_wall_clocks_as_they_are() -> None:
    probe = (
        "import time\n"
        "m, p = time.monotonic(), time.perf_counter()\n"
        "while time.perf_counter() - p < 0.2:\n"
        "    pass\n"
        "print(time.monotonic() - m, time.perf_counter() - p)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", bench_inventory.SLOW_CLOCK + probe], capture_output=True, text=True, check=True
    )
    slowed, native = map(float, out.stdout.split())
    # the ratio of two clocks read around the same stretch, not a speed: descheduling moves both
    assert native >= 0.2
    assert 0 < slowed <= native / bench_inventory.CLOCK_SLOWDOWN * 1.01 + 1e-6, (slowed, native)


def test_a_counted_command_is_the_same_command_run_after_the_clock_is_slowed(tmp_path: Path) -> None:
    command = bench_inventory._cli_command(
        "http://127.0.0.1:9", str(tmp_path), ["700000000000"], ["us-east-1"], 8
    )
    python, flag, code, *args = bench_inventory.counted(command)
    assert (python, flag) == (sys.executable, "-c")
    assert code.startswith(bench_inventory.SLOW_CLOCK) and "greenfetch.cli" in code
    assert args == command[3:]
    # it runs the real CLI: its own help, with the arguments it was given
    done = subprocess.run(
        [python, flag, code, "inventory", "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0 and "--accounts" in done.stdout, done.stderr[-500:]
