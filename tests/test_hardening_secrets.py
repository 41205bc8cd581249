"""Issue 15: no secret reaches an output or a log line. Credentials given in a request never come
back in its Result; botocore's DEBUG logging of tokens and assumed-role secrets is masked."""

import io
import json
import logging
import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine, Result
from greenfetch._redact import REDACTED, RedactingFilter, redact, redact_url

SECRET, TOKEN = "INLINESECRET789", "INLINETOKEN456"
CREDS = {"AccessKeyId": "AKIAINLINE", "SecretAccessKey": SECRET, "SessionToken": TOKEN}


@pytest.mark.parametrize("command", ["batch", "adaptive"])
def test_a_request_that_fails_to_build_does_not_echo_its_credentials(command):
    requests = [
        {"service": "no-such-service", "operation": "X", "credentials": CREDS},
        {"service": "s3", "operation": "NoSuchOperation", "region": "us-east-1", "credentials": CREDS},
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", command, "-", "-o", "jsonl"],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 2 and all(r["error"] for r in rows)
    assert SECRET not in proc.stdout + proc.stderr and TOKEN not in proc.stdout + proc.stderr
    unbuilt = next(r for r in rows if r["request"]["service"] == "no-such-service")
    assert unbuilt["request"]["credentials"] == REDACTED


def test_result_to_dict_redacts_credentials_of_a_raw_request():
    result = Result(0, {"service": "x", "operation": "Y", "credentials": CREDS}, error="boom")
    text = json.dumps(result.to_dict())
    assert SECRET not in text and TOKEN not in text
    assert result.to_dict()["request"]["credentials"] == REDACTED


def test_botocore_debug_logging_masks_tokens_and_assumed_role_secrets(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ENVSESSIONTOKEN123")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    engine = Engine(
        Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", "max_attempts": 1})
    )
    try:
        results = engine.batch_requests(
            [
                {"service": "sts", "operation": "GetCallerIdentity"},
                {
                    "service": "sts",
                    "operation": "GetCallerIdentity",
                    "role": "arn:aws:iam::123456789012:role/probe",
                },
                {
                    "service": "sts",
                    "operation": "AssumeRole",
                    "params": {"RoleArn": "arn:aws:iam::123456789012:role/other", "RoleSessionName": "probe"},
                },
            ]
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        engine.close()
    assert all(r.ok for r in results), [r.error for r in results]
    log = stream.getvalue()
    assumed = results[2].result["Credentials"]
    assert "x-amz-security-token" in log.lower()  # botocore did log the header: the mask is what saves it
    assert "ENVSESSIONTOKEN123" not in log
    assert assumed["SecretAccessKey"] not in log and assumed["SessionToken"] not in log
    assert not re.search(r"<SecretAccessKey>(?!<redacted>)", log)
    assert REDACTED in log


def test_redacting_filter_on_a_handler_of_ones_own():
    record = logging.LogRecord(
        "app", logging.DEBUG, __file__, 1, "headers %s", ({"X-Amz-Security-Token": "T0K"},), None
    )
    assert RedactingFilter().filter(record)
    assert "T0K" not in record.getMessage() and REDACTED in record.getMessage()
    assert redact("nothing secret") == "nothing secret"


def test_debug_logging_in_a_fresh_process_masks_the_canonical_request(moto_server):
    """As a user would run it: logging.basicConfig(DEBUG) before anything else, then greenfetch."""
    code = (
        "import logging; logging.basicConfig(level=logging.DEBUG)\n"
        "import greenfetch\n"
        f"r = greenfetch.batch_requests([{{'service': 'sts', 'operation': 'GetCallerIdentity', "
        f"'endpoint_url': {moto_server.url!r}, 'region': 'us-east-1'}}])\n"
        "assert r[0].ok, r[0].error\n"
    )
    env = {**os.environ, "AWS_SESSION_TOKEN": "FRESHTOKEN987"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "x-amz-security-token" in proc.stderr.lower()
    assert "FRESHTOKEN987" not in proc.stderr


# -- the masking rules themselves (mutation audit, docs/testing.md) ---------------------------------

_SECRET = st.text(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+=", min_size=4, max_size=40
)
_SHAPES = [
    "<SecretAccessKey>{}</SecretAccessKey>",  # STS's XML
    "<sessionToken>{}</sessionToken>",
    "<SESSIONTOKEN>{}</SESSIONTOKEN>",
    "x-amz-security-token:{}",  # the canonical request
    "{{'X-Amz-Security-Token': b'{}'}}",  # the headers' repr
    "{{'Authorization': 'AWS4-HMAC-SHA256 Credential={}'}}",
    '{{"accessToken": "{}"}}',  # SSO's JSON
    '{{"refreshToken": "{}", "clientSecret": "{}"}}',
    "{{'aws_secret_access_key': '{}'}}",
    '{{"password": "{}"}}',
]


@settings(max_examples=60, deadline=None)
@given(shape=st.sampled_from(_SHAPES), secret=_SECRET, before=st.sampled_from(["", "DEBUG body: ", "a\n"]))
def test_every_shape_of_a_secret_is_masked_and_masking_twice_changes_nothing(shape, secret, before):
    secret = "Zq9" + secret  # a value no key name or surrounding text contains
    text = before + shape.format(secret, secret) + " (end)"
    masked = redact(text)
    assert secret not in masked and REDACTED in masked and masked.startswith(before)
    assert redact(masked) == masked


@settings(max_examples=30, deadline=None)
@given(signature=st.text("0123456789abcdef", min_size=16, max_size=64))
def test_a_presigned_urls_signature_is_masked(signature):
    url = f"https://b.s3.amazonaws.com/k?X-Amz-Credential=AKIA%2F20261207&X-Amz-Signature={signature}&x=1"
    assert signature not in redact(url) and redact(url).endswith("&x=1")
    assert signature not in redact(f"GET /?Action=List&Signature={signature}")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@broker:6379/0", "redis://:***@broker:6379/0"),
        ("postgresql://app:hunter2@db/inv", "postgresql://app:***@db/inv"),
        (
            "postgresql://app@db/inv?password=hunter2&sslmode=require",
            "postgresql://app@db/inv?password=***&sslmode=require",
        ),
        (
            "host=db sslpassword=x postgresql://db/inv?sslpassword=hunter2",
            "host=db sslpassword=x postgresql://db/inv?sslpassword=***",
        ),
        ("redis://broker:6379/0", "redis://broker:6379/0"),
    ],
)
def test_a_urls_password_is_never_printed(url, shown):
    assert redact_url(f"cannot connect to {url} (refused)") == f"cannot connect to {shown} (refused)"


@pytest.mark.parametrize(
    "logger", ["botocore.auth", "botocore.parsers", "greenfetch.inventory", "urllib3.connectionpool"]
)
def test_a_record_on_any_logger_under_a_masked_namespace_is_masked(logger, caplog):
    with caplog.at_level(logging.DEBUG, logger=logger):
        logging.getLogger(logger).debug("headers %s", {"X-Amz-Security-Token": "T0KEN42"})
    assert [r.getMessage() for r in caplog.records] == [f"headers {{'X-Amz-Security-Token': '{REDACTED}'}}"]


def test_a_record_with_a_broken_format_string_is_left_to_logging():
    record = logging.LogRecord("botocore", logging.DEBUG, __file__, 1, "%d tables", ("x",), None)
    assert RedactingFilter().filter(record)  # kept: logging reports the bad format, not greenfetch
