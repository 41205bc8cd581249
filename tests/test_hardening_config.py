"""Issue 15: every bad setting, flag or environment, at import or at run time, is one line on stderr
and exit 2, before any call is made; absurd limits are refused, never allocated.

The matrix runs in-process through click's CliRunner (the same group the console entry point runs);
one case per path also runs the real command in a fresh interpreter: a setting from the environment,
the engine chosen before click parses anything, a flag, and the open-file limit (``ulimit``)."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from greenfetch import Config, ConfigError
from greenfetch._config import MAX_CONCURRENCY
from greenfetch.cli import load_commands

ONE = [
    {"service": "s3", "operation": "ListBuckets", "region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}
]


def cli(args, env=None, timeout=60, ulimit=None):
    """The real command in a fresh interpreter (``python -m greenfetch.cli``)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")}
    environ.update(env or {})
    command = [sys.executable, "-m", "greenfetch.cli", *args]
    if ulimit is not None:  # the limit applies to the child only
        command = ["bash", "-c", f'ulimit -n {ulimit} && exec "$@"', "_", *command]
    return subprocess.run(
        command, input=json.dumps(ONE), capture_output=True, text=True, timeout=timeout, env=environ
    )


def invoke(args, env=None):
    """The same command in-process: (exit code, stdout, stderr) as a CompletedProcess, like ``cli``."""
    unset = {k: None for k in os.environ if k.startswith("GREENFETCH_")}
    result = CliRunner().invoke(
        load_commands(), args, input=json.dumps(ONE), env={**unset, **(env or {})}, prog_name="greenfetch"
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # what the real command would print as a traceback
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


BAD_SETTINGS = [
    (["batch", "-"], {"GREENFETCH_CONCURRENCY": "0"}, "concurrency"),
    (["batch", "-"], {"GREENFETCH_CONCURRENCY": "abc"}, "GREENFETCH_CONCURRENCY"),
    (["batch", "-"], {"GREENFETCH_MAX_ATTEMPTS": "-1"}, "max_attempts"),
    (["batch", "-"], {"GREENFETCH_CACHE_TTL": "garbage"}, "GREENFETCH_CACHE_TTL"),
    (["batch", "-"], {"GREENFETCH_METRICS_PORT": "abc"}, "GREENFETCH_METRICS_PORT"),
    (["batch", "-"], {"GREENFETCH_METRICS_PORT": "99999"}, "99999"),
    (["batch", "-"], {"GREENFETCH_ENGINE": "bogus"}, "GREENFETCH_ENGINE"),
    (["--max-attempts", "0", "batch", "-"], {}, "max_attempts"),
    (["--metrics-port", "99999", "batch", "-"], {}, "99999"),
    (["--pushgateway", "not a url", "batch", "-"], {}, "not a url"),
    (["batch", "-", "--query", "foo(bar)"], {}, "foo"),
    (["batch", "-", "--query", "[].bar(@)"], {}, "bar"),
    (["batch", "-", "--concurrency", "99999999999999999999"], {}, str(MAX_CONCURRENCY)),
    (["batch", "-", "--concurrency", "1000000000"], {}, str(MAX_CONCURRENCY)),
    (["adaptive", "-", "--max-concurrency", "1000000000"], {}, "1000000000"),
]
# One per path through the real entry point: Config reading the environment, the engine read before
# click runs (the gevent patch), a flag click parses.
REAL = [BAD_SETTINGS[1], BAD_SETTINGS[6], BAD_SETTINGS[7]]


def assert_refused(proc, named):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr
    assert named in proc.stderr
    assert proc.stdout == ""  # refused before any call: no results, not even an empty array


@pytest.mark.parametrize(("args", "env", "named"), BAD_SETTINGS)
def test_bad_setting_is_one_line_and_exit_2(args, env, named):
    assert_refused(invoke(args, env), named)


@pytest.mark.parametrize(("args", "env", "named"), REAL)
def test_bad_setting_is_one_line_and_exit_2_from_the_real_command(args, env, named):
    assert_refused(cli(args, env), named)


def test_concurrency_past_the_open_file_limit_is_refused_naming_it():
    proc = cli(["batch", "-", "--concurrency", "500"], ulimit=256)
    assert proc.returncode == 2, proc.stderr
    assert "ulimit -n" in proc.stderr and "256" in proc.stderr


def test_config_caps_concurrency_and_checks_ports():
    with pytest.raises(ConfigError, match=str(MAX_CONCURRENCY)):
        Config.resolve({"concurrency": MAX_CONCURRENCY + 1})
    with pytest.raises(ConfigError, match="metrics_port"):
        Config.resolve({"metrics_port": 70000})
    assert Config.resolve({"concurrency": 100}).concurrency == 100


def test_a_failing_pushgateway_after_the_data_is_a_warning_and_keeps_the_exit():
    proc = invoke(["--pushgateway", "http://127.0.0.1:9", "batch", "-"], {"GREENFETCH_MAX_ATTEMPTS": "1"})
    assert proc.returncode == 1  # the request failed (unreachable endpoint): the run's own code
    assert "warning" in proc.stderr and "Traceback" not in proc.stderr
    assert len(json.loads(proc.stdout)) == 1


def test_inventory_negative_cache_ttl_is_refused_like_the_environment():
    proc = invoke(
        [
            "inventory",
            "--accounts",
            "111111111111",
            "--regions",
            "us-east-1",
            "--types",
            "ec2.vpcs",
            "--cache-ttl",
            "-1",
        ]
    )
    assert proc.returncode == 2, proc.stderr
    assert "negative" in proc.stderr and "Traceback" not in proc.stderr


def test_a_low_soft_open_file_limit_is_raised_toward_the_hard_one_when_needed():
    code = (
        "import resource, greenfetch\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "assert greenfetch.Config.resolve({'concurrency': 1000}).concurrency == 1000\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 1000 + 64
