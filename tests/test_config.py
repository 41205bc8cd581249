"""Flag beats environment beats default; bad values name themselves."""

import dataclasses
import re
import resource
import subprocess
import sys

import pytest

from greenfetch import Config, ConfigError, parse_duration
from greenfetch._config import MAX_CONCURRENCY, format_duration, parse_processes, usable_cpus


def test_flag_beats_environment_beats_default():
    env = {"GREENFETCH_CONCURRENCY": "30", "GREENFETCH_MAX_ATTEMPTS": "7"}
    assert Config.resolve({}, env).concurrency == 30
    assert Config.resolve({"concurrency": 5}, env).concurrency == 5
    assert Config.resolve({"concurrency": None}, env).concurrency == 30
    assert Config.resolve({}, {}).concurrency == Config().concurrency == 10
    assert Config.resolve({}, env).max_attempts == 7


def test_region_from_aws_region_then_default_region():
    assert Config.resolve({}, {"AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    assert (
        Config.resolve({}, {"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "us-east-2"}).region
        == "us-east-2"
    )


def test_lambda_profile_uses_tmp_and_wider_fan_out():
    cfg = Config.resolve({}, {"AWS_LAMBDA_FUNCTION_NAME": "sync"})
    assert cfg.cache_dir.startswith("/tmp/") and cfg.concurrency > Config().concurrency
    assert Config.resolve({"concurrency": 3}, {"AWS_LAMBDA_FUNCTION_NAME": "sync"}).concurrency == 3


@pytest.mark.parametrize(
    ("flags", "env", "named"),
    [
        ({"concurrency": 0}, {}, "concurrency: 0"),
        ({}, {"GREENFETCH_CONCURRENCY": "many"}, "'many'"),
        ({}, {"GREENFETCH_ENGINE": "fibers"}, "'fibers'"),
        ({"max_attempts": 0}, {}, "max_attempts"),
        ({}, {"GREENFETCH_CACHE_TTL": "soon"}, "'soon'"),
        ({"concurency": 3}, {}, "concurency"),
    ],
)
def test_bad_settings_name_the_value(flags, env, named):
    with pytest.raises(ConfigError, match=named):
        Config.resolve(flags, env)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1min", 60.0), (0.25, 0.25), ("3", 3.0), ("100us", 1e-4)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["fast", "5 parsecs", True, ""])
def test_parse_duration_rejects_with_the_value(bad):
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(bad, "target_latency")


# -- the mutation audit (docs/testing.md): each test below failed on a one-line change to _config.py
# that the tests above let through


def test_an_empty_environment_variable_is_not_given():
    """``export GREENFETCH_CONCURRENCY=`` (a variable cleared, not unset) leaves the default."""
    env = {"GREENFETCH_CONCURRENCY": "", "GREENFETCH_CACHE_TTL": "", "GREENFETCH_ENGINE": ""}
    assert Config.resolve({}, env) == Config.resolve({}, {})


def test_flags_are_parsed_as_the_environment_is():
    assert Config.resolve({"engine": "threads"}, {}).backend == "threads"  # the older flag name
    assert Config.resolve({"backend": " Threads "}, {}).backend == "threads"
    assert Config.resolve({"processes": "auto"}, {}).processes == usable_cpus()
    assert Config.resolve({"processes": "2"}, {}).processes == 2


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        ({"concurrency": True}, "concurrency: True"),
        ({"cache_ttl": float("nan")}, "cache_ttl: nan"),
        ({"metrics_port": True}, "metrics_port: True"),
        ({"metrics_port": 65536}, "metrics_port: 65536"),
        ({"processes": 0}, "processes: 0"),
        ({"processes": True}, "processes: True"),
        ({"retry_mode": "fast"}, "retry_mode: 'fast'"),
    ],
)
def test_bad_flags_name_the_value(flags, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        Config.resolve(flags, {})


def test_replace_keeps_what_it_is_not_given_and_validates_what_it_is():
    config = Config.resolve({"region": "eu-west-1"}, {})
    assert config.replace(region=None, concurrency=4) == dataclasses.replace(config, concurrency=4)
    with pytest.raises(ConfigError, match="concurrency: 0"):
        config.replace(concurrency=0)


def test_home_region_is_the_runs_region_else_us_east_1():
    assert Config.resolve({}, {}).home_region == "us-east-1"
    assert Config.resolve({}, {"AWS_REGION": "eu-west-1"}).home_region == "eu-west-1"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1h"), (5400, "1.5h"), (60, "1min"), (59, "59s"), (1, "1s"), (0.5, "500ms"), (0, "0s")],
)
def test_format_duration_is_parse_duration_the_other_way(seconds, text):
    assert format_duration(seconds) == text and parse_duration(text) == seconds


_AT_THE_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from greenfetch import Config, ConfigError
assert Config.resolve({"concurrency": 192}, {}).concurrency == 192  # 256 files less the 64 kept aside
try:
    Config.resolve({"concurrency": 193}, {})
except ConfigError as exc:
    print(exc)
"""


def test_concurrency_is_allowed_up_to_the_open_file_limit_less_its_margin_and_no_further():
    """In a child whose hard limit is 256 (it cannot raise it): 192 sockets fit beside the 64
    descriptors a run keeps for itself, 193 do not."""
    proc = subprocess.run([sys.executable, "-c", _AT_THE_LIMIT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "concurrency: 193" in proc.stdout and "ulimit -n" in proc.stdout


def test_the_maximum_concurrency_itself_is_allowed():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < MAX_CONCURRENCY + 64:
        pytest.skip("this machine's hard open-file limit is below what 10,000 sockets need")
    assert Config.resolve({"concurrency": MAX_CONCURRENCY}, {}).concurrency == MAX_CONCURRENCY


@pytest.mark.parametrize("bad", [0, -1, "0", True, "many"])
def test_a_processes_count_below_one_is_refused_where_a_call_gives_it_too(bad):
    """``batch_requests(..., processes=N)`` parses N here, past Config's validation: 0 is refused, not
    run as 1."""
    with pytest.raises(ConfigError, match=f"processes: {re.escape(repr(bad))} is"):
        parse_processes(bad)


def test_a_metrics_port_is_0_to_65535_in_the_config_and_in_serve():
    """One rule for both faces: 0 (any free port) to 65535; anything else is named, with what would do."""
    from prometheus_client import CollectorRegistry

    from greenfetch._exceptions import ConfigError, ExpositionError
    from greenfetch._exposition import serve

    assert Config.resolve({"metrics_port": 0}, environ={}).metrics_port == 0
    for bad in (-1, 65536, True):
        with pytest.raises(
            ConfigError, match=rf"^metrics_port: {bad!r} is not a port; use a number from 0 to 65535"
        ):
            Config.resolve({"metrics_port": bad}, environ={})
        with pytest.raises(
            ExpositionError, match=rf"^metrics port: {bad!r} is not a port; .* \(0: any free port\)"
        ):
            serve(CollectorRegistry(), bad)
