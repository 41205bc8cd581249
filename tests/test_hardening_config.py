"""Issue 15: every bad setting, flag or environment, at import or at run time, is one line on stderr
and exit 2, before any call is made; absurd limits are refused, never allocated."""

import json
import os
import subprocess
import sys

import pytest

from greenfetch import Config, ConfigError
from greenfetch._config import MAX_CONCURRENCY

ONE = [{"service": "s3", "operation": "ListBuckets", "region": "us-east-1", "endpoint_url": "http://127.0.0.1:9"}]


def cli(args, env=None, timeout=60, ulimit=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GREENFETCH_")}
    environ.update(env or {})
    command = [sys.executable, "-m", "greenfetch.cli", *args]
    if ulimit is not None:  # the limit applies to the child only
        command = ["bash", "-c", f'ulimit -n {ulimit} && exec "$@"', "_", *command]
    return subprocess.run(command, input=json.dumps(ONE), capture_output=True, text=True, timeout=timeout,
                          env=environ)


@pytest.mark.parametrize(("args", "env", "named"), [
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
])
def test_bad_setting_is_one_line_and_exit_2(args, env, named):
    proc = cli(args, env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert named in proc.stderr
    assert proc.stdout == ""  # refused before any call: no results, not even an empty array


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
    proc = cli(["--pushgateway", "http://127.0.0.1:9", "batch", "-"])
    assert proc.returncode == 1  # the request failed (unreachable endpoint): the run's own code
    assert "warning" in proc.stderr and "Traceback" not in proc.stderr
    assert len(json.loads(proc.stdout)) == 1


def test_inventory_negative_cache_ttl_is_refused_like_the_environment():
    proc = cli(["inventory", "--accounts", "111111111111", "--regions", "us-east-1", "--types", "ec2.vpcs",
                "--cache-ttl", "-1"])
    assert proc.returncode == 2, proc.stderr
    assert "negative" in proc.stderr and "Traceback" not in proc.stderr


def test_a_low_soft_open_file_limit_is_raised_toward_the_hard_one_when_needed():
    code = ("import resource, greenfetch\n"
            "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
            "assert greenfetch.Config.resolve({'concurrency': 1000}).concurrency == 1000\n"
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 1000 + 64
