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
from pathlib import Path

import pytest

from greenfetch.testing import wait_until

pytestmark = pytest.mark.slow


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
        wait_until(
            lambda: (
                "In another terminal, as printed:" in log.read_text(errors="replace")
                or demo.poll() is not None
            ),
            90,
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
        shell = subprocess.run(
            ["bash", "-ec", "\n".join(pasted)], env=clean, capture_output=True, text=True, timeout=60
        )
        assert shell.returncode == 0, shell.stderr[-3000:]
        assert "accounts: 3 ok, 0 failed" in shell.stderr and (out / "inventory.db").is_file()
        demo.send_signal(signal.SIGINT)  # Ctrl-C ends the demo, its server with it; the files stay
        assert demo.wait(timeout=30) == 130
        assert f"stopped moto's server at {url}; the files stay in {out}" in log.read_text(errors="replace")
        assert not _listening(url) and (out / "inventory.db").is_file()
        assert shlex.quote(str(out)) == str(out)  # printed paths need no quoting here
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)
        if out is not None and out.name.startswith("greenfetch-demo-"):
            subprocess.run(["rm", "-rf", str(out)], check=False)
