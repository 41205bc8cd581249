"""Ctrl-C stops a CLI run cleanly: exit 130, what completed is written, no traceback."""

import json
import os
import signal
import subprocess
import sys

import pytest

from greenfetch.testing import LoopbackServer, wait_until


@pytest.fixture(scope="module")
def slow_server():
    with (server := LoopbackServer(latency=0.3)):
        yield server


def _start(url, output):
    requests = [{"service": "dynamodb", "operation": "ListTables", "id": i} for i in range(400)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenfetch.cli", "--endpoint-url", url, "--region", "us-east-1", "batch",
         "-c", "10", "-o", output],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    proc.stdin.write(json.dumps(requests))
    proc.stdin.close()
    return proc


def test_interrupt_streaming_run_keeps_what_completed(slow_server):
    proc = _start(slow_server.url, "jsonl")
    first = proc.stdout.readline()  # a result has been written: the run is under way
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=30)
    lines = [first, *rest.splitlines()]
    assert proc.returncode == 130, err
    assert 1 <= len(lines) < 400
    assert all(json.loads(line)["error"] is None for line in lines)
    assert "Interrupted" in err and "Traceback" not in err


def test_interrupt_json_run_flushes_completed_results(slow_server):
    proc = _start(slow_server.url, "json")
    wait_until(lambda: slow_server.stats()["ok"] >= 20, 20, "20 answers")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    rows = json.loads(out)
    assert 0 < len(rows) < 400
    assert [r["index"] for r in rows] == sorted(r["index"] for r in rows)

