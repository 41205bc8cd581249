"""Issue 15: the Nushell plugin with a broken peer. A message nested too deep (100,000 levels) is
dropped with one line on stderr; the reader lives on, so Interrupt and Goodbye sent while a batch
runs are honoured at once (the server's 30 s latency would otherwise hold the plugin), and the
plugin exits 0 without a traceback. Spoken over a pipe to the real plugin process."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greenfetch.testing import wait_until
from nu_plugin import _codec as codec

PLUGIN = Path(sys.executable).parent / "nu_plugin_greenfetch"
HEAD = {"start": 0, "end": 14}
HELLO = {"Hello": {"protocol": "nu-plugin", "version": codec.PROTOCOL_VERSION, "features": []}}


class Peer:
    """The nu side of the protocol: sends messages, answers the plugin's engine calls, keeps replies."""

    def __init__(self, env):
        self.proc = subprocess.Popen(
            [str(PLUGIN), "--stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert self.proc.stdout.read(5) == codec.ENCODING_PREAMBLE
        self.replies = []
        self.send(HELLO)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def send(self, message):
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def _read(self):
        for line in self.proc.stdout:
            message = json.loads(line)
            self.replies.append(message)
            if "EngineCall" in message:  # GetEnvVars: nothing set
                self.send({"EngineCallResponse": [message["EngineCall"]["id"], {"ValueMap": {}}]})


@pytest.mark.skipif(not PLUGIN.exists(), reason="nu_plugin_greenfetch is not installed in this environment")
def test_too_deep_message_is_dropped_and_interrupt_goodbye_still_work(loopback):
    loopback.control(latency=30.0)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": loopback.url,
        "GREENFETCH_NU_DEBUG": "1",
    }
    peer = Peer(env)
    requests = [{"service": "dynamodb", "operation": "ListTables", "id": i} for i in range(40)]
    call = {
        "name": "batch-requests",
        "call": {"head": HEAD, "positional": [codec.to_value(requests, HEAD)], "named": []},
        "input": "Empty",
    }
    peer.send({"Call": [1, {"Run": call}]})
    wait_until(lambda: loopback.stats()["inflight"] >= 2, 20, "two requests in flight")
    peer.send(b"[" * 100_000 + b"]" * 100_000)
    started = time.monotonic()
    peer.send({"Signal": "Interrupt"})
    peer.send(b'"Goodbye"')
    rc = peer.proc.wait(timeout=20)
    elapsed = time.monotonic() - started
    err = peer.proc.stderr.read().decode()
    assert rc == 0, err
    assert elapsed < 10  # not the 30 s the in-flight calls would take
    assert "nested too deep" in err
    assert "Signal Interrupt: cancelling 1 running call(s)" in err
    assert "Traceback" not in err and "LoopExit" not in err
    peer.thread.join(timeout=5)
    assert any("CallResponse" in m for m in peer.replies) or any("Data" in m for m in peer.replies)


def test_decode_message_deep_is_its_own_protocol_error():
    with pytest.raises(codec.MessageTooDeep):
        codec.decode_message(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(codec.ProtocolError):
        codec.decode_message(b"{not json")


# -- the fuzzer: random JSON values and random bytes at the real plugin -------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=10,
)
_fuzz = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _talk(lines, env=None):
    proc = subprocess.run(
        [str(PLUGIN), "--stdio"],
        input=b"".join(line + b"\n" for line in lines),
        capture_output=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout.startswith(codec.ENCODING_PREAMBLE)
    replies = [
        json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} on stdout"))
        for line in proc.stdout[len(codec.ENCODING_PREAMBLE) :].splitlines()
        if line.strip()
    ]
    return proc.returncode, replies, proc.stderr.decode("utf-8", "replace")


@pytest.mark.skipif(not PLUGIN.exists(), reason="nu_plugin_greenfetch is not installed in this environment")
@_fuzz
@given(st.lists(_json, max_size=12))
def test_fuzz_wrong_shaped_messages_never_stop_the_plugin(values):
    stats = {
        "Call": [
            7,
            {
                "Run": {
                    "name": "aws perf stats",
                    "call": {"head": HEAD, "positional": [], "named": []},
                    "input": "Empty",
                }
            },
        ]
    }
    lines = [
        json.dumps(HELLO).encode(),
        *(json.dumps(v).encode() for v in values),
        json.dumps(stats).encode(),
        b'"Goodbye"',
    ]
    rc, replies, err = _talk(lines)
    assert rc == 0, err
    assert "Traceback" not in err
    assert any(r.get("CallResponse", [None])[0] == 7 for r in replies if isinstance(r, dict))


@pytest.mark.skipif(not PLUGIN.exists(), reason="nu_plugin_greenfetch is not installed in this environment")
@_fuzz
@given(st.binary(max_size=300))
def test_fuzz_random_bytes_end_cleanly(data):
    rc, _, err = _talk([json.dumps(HELLO).encode(), data])
    assert rc in (0, 1, 2), err
    assert "Traceback" not in err


# -- start-up: the open-file limit ------------------------------------------------------------------


def _limits(pid):
    """(soft, hard) 'Max open files' of a running process, as the kernel reports them."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-file limit in /proc")


@pytest.mark.skipif(
    not PLUGIN.exists() or not Path("/proc/self/limits").exists(),
    reason="needs the installed plugin and /proc",
)
def test_plugin_start_raises_the_soft_open_file_limit_like_the_cli():
    """Started with a soft limit of 256 (a systemd or container default), the plugin raises it toward
    the hard limit (at most 65,536) before it serves, as `greenfetch` does: same function."""
    proc = subprocess.Popen(
        ["bash", "-c", f'ulimit -Sn 256 && exec "{PLUGIN}" --stdio'],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout.read(5) == codec.ENCODING_PREAMBLE  # serving: start-up is over
        soft, hard = _limits(proc.pid)
    finally:
        proc.stdin.close()  # EOF: the plugin ends
        rc = proc.wait(timeout=20)
    expected = 65536 if hard == "unlimited" else min(int(hard), 65536)
    assert expected > 256, "the hard limit leaves nothing to raise here"
    assert int(soft) == expected
    assert rc == 0 and b"Traceback" not in proc.stderr.read()
