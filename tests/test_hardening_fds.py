"""Issue 15: running out of file descriptors is reported as such (TooManyOpenFiles, not retryable,
guidance to raise ``ulimit -n`` or lower the concurrency), never as a transient "could not connect"."""

import json
import subprocess
import sys

from greenfetch import classify

CHILD = r"""
import json, os, sys
import greenfetch
from greenfetch import Config, Engine

url = sys.argv[1]
engine = Engine(Config.resolve({"endpoint_url": url, "region": "us-east-1", "max_attempts": 1}))
request = {"service": "dynamodb", "operation": "ListTables"}
assert engine.execute(request).ok  # client built, one pooled connection
held = []
try:
    while True:
        held.append(os.open(os.devnull, os.O_RDONLY))
except OSError:
    pass
results = engine.batch_requests([request] * 6, concurrency=6)
for fd in held:
    os.close(fd)
print(json.dumps([[r.error_code, r.retryable, r.guidance, r.error] for r in results]))
"""


def test_fd_exhaustion_is_too_many_open_files(loopback):
    loopback.control(latency=0.2)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, loopback.url], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout.splitlines()[-1])
    failed = [row for row in rows if row[0] is not None]
    assert failed, rows  # six at once need new sockets, and none can be opened
    assert {row[0] for row in failed} == {"TooManyOpenFiles"}, rows
    assert not any(row[1] for row in failed)
    assert all("ulimit -n" in row[2] for row in failed)


def test_classifier_rule():
    found = classify("TooManyOpenFiles")
    assert not found.retryable and "ulimit -n" in found.guidance
