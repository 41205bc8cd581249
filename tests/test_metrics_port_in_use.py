"""Issue 15: a metrics port another process already holds is a setting error like any other: one line
on stderr naming the port and a port that would work, exit 2, and no call made (it was exit 1)."""

import json
import os
import re
import socket
import subprocess
import sys

import pytest


@pytest.fixture
def held_port():
    """A port some other program listens on (all addresses, as --metrics-port binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("0.0.0.0", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.fixture
def endpoint():
    """A listening socket standing in for AWS: any connection to it is a call the run made."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        yield server


@pytest.mark.parametrize("via", ["flag", "environment"])
@pytest.mark.parametrize("command", ["batch", "adaptive"])
def test_metrics_port_in_use_is_one_line_and_exit_2_before_any_call(held_port, endpoint, via, command):
    url = f"http://127.0.0.1:{endpoint.getsockname()[1]}"
    requests = [{"service": "s3", "operation": "ListBuckets", "region": "us-east-1"}] * 3
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")}
    args = [command, "-", "--endpoint-url", url]
    if via == "flag":
        args = ["--metrics-port", str(held_port), *args]
    else:
        environ["GREENFETCH_METRICS_PORT"] = str(held_port)
    proc = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", *args],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()  # one line, no traceback, no usage text
    assert f"metrics port {held_port}" in line and "already in use" in line
    suggested = int(re.search(r"a free port such as (\d+)", line)[1])
    assert suggested != held_port
    assert proc.stdout == ""  # not even an empty array: nothing ran
    with pytest.raises(BlockingIOError):  # and nothing reached the endpoint
        endpoint.accept()


def test_the_suggested_port_is_one_that_would_work(held_port):
    """What the message offers serves /metrics (the same start function the CLI uses)."""
    from prometheus_client import CollectorRegistry

    from greenfetch import ExpositionError
    from greenfetch._exposition import serve

    registry = CollectorRegistry()
    with pytest.raises(ExpositionError) as failed:
        serve(registry, held_port)
    suggested = int(re.search(r"a free port such as (\d+)", str(failed.value))[1])
    server = serve(registry, suggested)
    try:
        assert server.server_port == suggested
    finally:
        server.shutdown()
        server.server_close()
