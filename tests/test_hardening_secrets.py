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

from greenfetch import Config, Engine, Result
from greenfetch._redact import REDACTED, RedactingFilter, redact

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
