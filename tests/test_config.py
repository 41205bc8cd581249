"""Flag beats environment beats default; bad values name themselves."""

import pytest

from greenfetch import Config, ConfigError, parse_duration


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
