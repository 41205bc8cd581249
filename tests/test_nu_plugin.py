"""nu_plugin_greenfetch under the real nu binary (scripts/install-nu puts nushell 0.115.x in .nu/).

Every nu process gets a private plugin registry, config files, XDG dirs and HOME under tmp, fake AWS
credentials and moto's server as AWS_ENDPOINT_URL: nothing in the user's home is touched. Each
tests/nu/*.nu script runs once per module (nu starts cost time) and prints "ok NAME" or "FAIL NAME"
per scenario; one pytest test per scenario reads its line. Budget: under 30 s for the module.
"""

import greenfetch  # noqa: F401,I001  (first: gevent patches before anything else)

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from greenfetch.testing import wait_until

ROOT = Path(__file__).resolve().parents[1]
NU = ROOT / ".nu" / "node_modules" / "@nushell" / "linux-x64" / "bin" / "nu"
PLUGIN = Path(sys.executable).parent / "nu_plugin_greenfetch"
SCRIPTS = Path(__file__).parent / "nu"

pytestmark = [
    pytest.mark.nu,
    pytest.mark.skipif(
        not NU.exists(), reason="nu is not installed: run scripts/install-nu (scripts/test does)"
    ),
]


class Nu:
    """Runs nu with a private registry/config/home; the plugin is registered once, in its own run."""

    def __init__(self, home: Path, endpoint: str):
        self.home = home
        self.registry = home / "plugins.msgpackz"
        (home / "config.nu").write_text("")
        (home / "env.nu").write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GREENFETCH_"))}
        self.env.update(
            {
                "HOME": str(home),
                "XDG_CONFIG_HOME": str(home / "xdg-config"),
                "XDG_DATA_HOME": str(home / "xdg-data"),
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": str(home / "aws-config"),
                "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-creds"),
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_ENDPOINT_URL": endpoint,
            }
        )

    def add_plugin(self, **env: str) -> subprocess.CompletedProcess[str]:
        # A separate invocation: `plugin use` is a parser keyword and reads the registry at parse time.
        return self.run_raw(
            [
                "--error-style",
                "plain",
                "-n",
                "--no-std-lib",
                "-c",
                f"plugin add --plugin-config '{self.registry}' '{PLUGIN}'",
            ],
            env=env,
        )

    def argv(self) -> list[str]:
        return [
            str(NU),
            "--config",
            str(self.home / "config.nu"),
            "--env-config",
            str(self.home / "env.nu"),
            "--plugin-config",
            str(self.registry),
        ]

    def run_raw(
        self, args: list[str], env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(NU), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=SCRIPTS,
        )

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.argv(), *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=SCRIPTS,
        )


@pytest.fixture(scope="module")
def nu(tmp_path_factory, moto_server):
    runner = Nu(tmp_path_factory.mktemp("nu-home"), moto_server.url)
    added = runner.add_plugin()
    assert added.returncode == 0, added.stderr
    return runner


class ScriptRun:
    """One run of a scenario script: which scenarios passed, and everything nu said."""

    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.proc = proc
        self.lines = proc.stdout.splitlines()

    def check(self, name: str) -> None:
        assert self.proc.returncode == 0, f"script failed before its scenarios:\n{self.proc.stderr}"
        if f"ok {name}" in self.lines:
            return
        mine = [line for line in self.lines if line.startswith(f"FAIL {name}")]
        pytest.fail(
            f"{mine[0] if mine else f'scenario {name} did not run'}\n--- nu stderr:\n{self.proc.stderr}"
        )

    def metric(self, name: str) -> int:
        return int(next(line.split()[2] for line in self.lines if line.startswith(f"metric {name} ")))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


BATCH = [
    "parallel-success",
    "partial-failure",
    "fail-fast",
    "service-grouping-order",
    "connection-reuse-50",
    "error-correlation",
    "perf-stats",
    "input-stream-250",
    "first-3-streams",
    "par-each-concurrent-calls",
    "bad-input-not-a-list",
    "bad-input-items",
    "bad-flags",
    "follows-nu-env",
]
DEDUPE = [
    "dedupe-concurrent",
    "dedupe-window-expiry",
    "dedupe-sequential-reuse",
    "closure-calls-plugin-back",
    "closure-error",
    "dedupe-bad-window",
]
ADAPTIVE = ["adaptive-fast-rises", "adaptive-slow-falls"]


@pytest.fixture(scope="module")
def batch_run(nu):
    return ScriptRun(nu.run("batch.nu", env={"GF_BUCKET": _unique("gf-nu-batch")}))


@pytest.fixture(scope="module")
def dedupe_run(nu, tmp_path_factory):
    scratch = tmp_path_factory.mktemp("dedupe")
    return ScriptRun(nu.run("dedupe.nu", env={"GF_TMP": str(scratch), "GF_KEY": _unique("k")}))


@pytest.fixture(scope="module")
def adaptive_run(nu, loopback_server):
    # 200 ms per answer against a 100 ms target: the limit must come down.
    loopback_server.control(latency=0.2)
    return ScriptRun(
        nu.run(
            "adaptive.nu", env={"GF_BUCKET": _unique("gf-nu-adaptive"), "GF_SLOW_URL": loopback_server.url}
        )
    )


@pytest.mark.parametrize("scenario", BATCH)
def test_batch_scenarios(batch_run, scenario):
    batch_run.check(scenario)


@pytest.mark.parametrize("scenario", DEDUPE)
def test_dedupe_scenarios(dedupe_run, scenario):
    dedupe_run.check(scenario)


@pytest.mark.parametrize("scenario", ADAPTIVE)
def test_adaptive_scenarios(adaptive_run, scenario):
    adaptive_run.check(scenario)


def test_memory_1000_requests_bounded(nu):
    """Seed: 1000 ListObjectsV2 at concurrency 20; the plugin's peak RSS (VmHWM) stays bounded."""
    run = ScriptRun(nu.run("memory.nu", env={"GF_BUCKET": _unique("gf-nu-mem"), "GF_MAX_RSS_MB": "300"}))
    run.check("memory-1000")
    print(f"plugin VmHWM after 1000 requests: {run.metric('plugin_vmhwm_kb') / 1024:.1f} MiB")


def test_help_shows_flags_and_examples(nu):
    proc = nu.run("-c", "help batch-requests")
    assert proc.returncode == 0, proc.stderr
    for text in ("--concurrency", "-c", "--fail-fast", "Batch failed", "batch-requests [{service: s3"):
        assert text in proc.stdout
    stats = nu.run("-c", "help 'aws perf stats'")
    assert "avg_duration" in stats.stdout


def test_version_mismatch_is_reported(tmp_path, moto_server):
    """A plugin advertising another minor is refused by nu, and both sides name the two versions."""
    other = Nu(tmp_path, moto_server.url)
    proc = other.add_plugin(GREENFETCH_NU_PROTOCOL_VERSION="0.114.0")
    assert proc.returncode != 0
    assert "compiled for nushell version 0.114.0, which is not compatible with version 0.115" in proc.stderr
    assert "but this nu is 0.115" in proc.stderr  # the plugin's own message on stderr


def test_interrupt_cancels_the_running_batch(nu, loopback):
    """Ctrl-C (SIGINT to nu -> Signal Interrupt to the plugin): in-flight requests are cancelled and no
    further request starts. Ordered by the server's in-flight count, not by sleeping. The debug log
    shows the plugin acted on the Signal (not merely on nu exiting)."""
    loopback.control(latency=30.0)
    script = (
        "0..<50 | each {|i| {service: dynamodb, operation: ListTables, endpoint_url: '"
        + loopback.url
        + "'}} "
        "| batch-requests -c 2 | length"
    )
    proc = subprocess.Popen(
        [*nu.argv(), "-c", script],
        env={**nu.env, "GREENFETCH_NU_DEBUG": "1"},
        cwd=SCRIPTS,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: loopback.stats()["inflight"] >= 2, 20, "two requests in flight")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode != 0
    assert "interrupted" in err.lower()
    assert "Signal Interrupt: cancelling 1 running call(s)" in err
    stats = wait_until(lambda: (s := loopback.stats())["inflight"] == 0 and s, 10, "nothing in flight")
    assert stats["requests"] == 2 and stats["cancelled"] == 2 and stats["ok"] == 0


def test_plugin_exits_on_goodbye_and_on_eof():
    """Speaks the protocol to the real plugin process: Hello, one Run, then Goodbye (or EOF) -> exit 0."""
    for ending in (b'"Goodbye"\n', b""):
        proc = subprocess.Popen(
            [str(PLUGIN), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdin is not None and proc.stdout is not None
        assert proc.stdout.read(5) == b"\x04json"
        hello = json.loads(proc.stdout.readline())
        assert hello == {"Hello": {"protocol": "nu-plugin", "version": "0.115.1", "features": []}}
        head = {"start": 0, "end": 14}
        proc.stdin.write(b'{"Hello":{"protocol":"nu-plugin","version":"0.115.1","features":[]}}\n')
        run = {
            "Call": [
                0,
                {
                    "Run": {
                        "name": "aws perf stats",
                        "call": {"head": head, "positional": [], "named": []},
                        "input": "Empty",
                    }
                },
            ]
        }
        proc.stdin.write(json.dumps(run).encode() + b"\n" + ending)
        proc.stdin.close()
        reply = json.loads(proc.stdout.readline())
        assert reply["CallResponse"][0] == 0
        assert reply["CallResponse"][1]["PipelineData"]["Value"][0]["List"]["span"] == head
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read() == b""  # nothing stray after the protocol


def test_console_script_without_stdio_prints_usage():
    proc = subprocess.run([str(PLUGIN)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "plugin add (which nu_plugin_greenfetch | get path.0)" in proc.stderr
    assert proc.stdout == ""
