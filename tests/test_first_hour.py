"""A newcomer's first hour: `greenfetch demo --keep` leaves moto's server and the files for the next
command, and the commands it prints work as pasted into a shell that has nothing of greenfetch on
its PATH. A real demo process (its own moto server), a real bash, and a real stop.
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # the waits below are bounded by CPU, not wall


def _tree_cpu(pid: int) -> float:
    """CPU seconds spent by process ``pid`` and its live descendants (with the children they reaped)."""
    tick, total, todo = os.sysconf("SC_CLK_TCK"), 0.0, [pid]
    while todo:
        proc = todo.pop()
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
            for task in os.listdir(f"/proc/{proc}/task"):
                todo += map(int, Path(f"/proc/{proc}/task/{task}/children").read_text().split())
        except (OSError, ValueError):
            continue  # it ended meanwhile
    return total


def _wait_while_working(pid, done, what, cpu=90.0, still=30.0):
    """``done()``'s first truthy value, while process ``pid``'s tree works towards it. Bounded by the
    CPU it spends (``cpu`` s: about ten times what it needs), not by the wall clock, which a loaded
    machine stretches (at load 20 on 2 cores the demo's 9 s of CPU took over 90 s); and by ``still`` s
    of wall in which it spent no CPU at all (hung: even a starved process is given a CPU that often)."""
    began = last = _tree_cpu(pid)
    moved = time.monotonic()
    while not (value := done()):
        used = _tree_cpu(pid)
        assert used - began <= cpu, f"{what}: not done after {cpu:g} s of CPU"
        if used > last:
            last, moved = used, time.monotonic()
        assert time.monotonic() - moved <= still, f"{what}: no CPU spent for {still:g} s (hung?)"
        time.sleep(0.05)
    return value


def _listening(url: str) -> bool:
    host, port = url.rsplit("/", 1)[-1].split(":")
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_demo_keep_prints_next_commands_that_work_as_pasted(tmp_path):
    log = tmp_path / "demo.out"
    env = {**os.environ, "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as handle:
        demo = subprocess.Popen(
            [sys.executable, "-m", "greenfetch.cli", "demo", "--keep"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    out = None
    try:
        _wait_while_working(
            demo.pid,
            lambda: (
                "In another terminal, as printed:" in log.read_text(errors="replace")
                or demo.poll() is not None
            ),
            "the demo to print its next commands",
        )
        text = log.read_text(errors="replace")
        assert demo.poll() is None, text[-3000:]
        url = re.search(r"moto's server: (http://127\.0\.0\.1:\d+)", text)[1]
        out = Path(re.search(r"the inventory's files: (\S+)", text)[1])
        pasted = [
            line[2:]
            for line in text.split("In another terminal, as printed:\n", 1)[1].splitlines()
            if line.startswith("  ")
        ]
        assert [line.split()[0] for line in pasted] == ["export", "export", "greenfetch"], pasted
        assert sorted(p.name for p in out.glob("*.json"))  # the demo's own files are still there
        # a shell with nothing of greenfetch on its PATH (PYTHONPATH kept: this checkout's code)
        clean = {
            "HOME": str(tmp_path),
            "PATH": "/usr/bin:/bin",
            "GREENFETCH_CACHE_DIR": str(tmp_path / "cache"),
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}),
        }
        assert subprocess.run(["bash", "-c", "command -v greenfetch"], env=clean).returncode != 0
        err = tmp_path / "shell.err"
        with open(err, "wb") as handle:
            shell = subprocess.Popen(
                ["bash", "-ec", "\n".join(pasted)], env=clean, stdout=subprocess.DEVNULL, stderr=handle
            )
        try:
            _wait_while_working(shell.pid, lambda: shell.poll() is not None, "the pasted commands")
        finally:
            if shell.poll() is None:
                shell.kill()
        stderr = err.read_text(errors="replace")
        assert shell.returncode == 0, stderr[-3000:]
        assert "accounts: 3 ok, 0 failed" in stderr and (out / "inventory.db").is_file()
        demo.send_signal(signal.SIGINT)  # Ctrl-C ends the demo, its server with it; the files stay
        _wait_while_working(demo.pid, lambda: demo.poll() is not None, "the demo to stop on Ctrl-C", cpu=20)
        assert demo.returncode == 130
        assert f"stopped moto's server at {url}; the files stay in {out}" in log.read_text(errors="replace")
        assert not _listening(url) and (out / "inventory.db").is_file()
        assert shlex.quote(str(out)) == str(out)  # printed paths need no quoting here
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        if out is not None and out.name.startswith("greenfetch-demo-"):
            subprocess.run(["rm", "-rf", str(out)], check=False)
