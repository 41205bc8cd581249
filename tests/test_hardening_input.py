"""Issue 15: bad bytes in, strict JSON out. A JSON array (or input that is no requests at all) the
probe crashed on is exit 2 with one line that names the place; a bad JSON Lines line is a failed
Result in its place (InvalidInput, naming the line) while every other line runs; whatever comes out is
strict JSON (RFC 8259) in valid UTF-8.

The matrices run in-process through click's CliRunner (the group the console entry point runs); one
case per path also runs the real command in a fresh interpreter: an unreadable JSON array, a bad JSON
Lines line, worker processes."""

import json
import math
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from greenfetch._jsonable import JSONInputError, jsonable, loads_strict
from greenfetch.cli import load_commands

UNREACHABLE = "http://127.0.0.1:9"
GOOD = {"service": "s3", "operation": "ListBuckets", "region": "us-east-1"}


def cli(*args, stdin=b"", timeout=60, **env_vars):
    """The real command in a child process: (rc, stdout bytes, stderr text)."""
    env = {**os.environ, "GREENFETCH_MAX_ATTEMPTS": "1", **env_vars}
    proc = subprocess.run(
        [sys.executable, "-m", "greenfetch.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=env,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace")


def invoke(*args, stdin=b"", **env_vars):
    """The same command in-process, the same (rc, stdout bytes, stderr text)."""
    result = CliRunner().invoke(
        load_commands(),
        list(args),
        input=stdin,
        prog_name="greenfetch",
        env={"GREENFETCH_MAX_ATTEMPTS": "1", **env_vars},
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # what the real command would print as a traceback
    return result.exit_code, result.stdout_bytes, result.stderr


def strict(data: bytes):
    """Parse output as strict JSON only: valid UTF-8, no NaN/Infinity."""

    def reject(name):
        raise AssertionError(f"non-standard JSON constant {name} in output")

    return json.loads(data.decode("utf-8"), parse_constant=reject)


UNREADABLE = [
    (b"\xff\n", "0xff"),
    (("[" * 1000 + "]" * 1000).encode(), "nested deeper"),
    (("[" * 50000 + "]" * 50000).encode(), "nested deeper"),
    (b'[{"service":"s3","operation":"ListBuckets","id":' + b"9" * 5000 + b"}]", "out of range"),
    (b'[{"service":"s3","operation":"ListBuckets","id":1e400}]', "1e400"),
    (b'[{"service":"s3","operation":"ListBuckets","params":{"x":NaN}}]', "NaN"),
    (b'[{"service":"s3","operation":"ListBuckets","id":"\\ud800"}]', "surrogate"),
    (b'[{"service":"s3","operation":"ListBuckets","id":"\\udc80"}]', "surrogate"),
    (b"\n\n[1,\n2,]", "line 4"),
]


def assert_unreadable(rc, out, err, named):
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert named in err
    assert out == b""


@pytest.mark.parametrize(("stdin", "named"), UNREADABLE)
def test_unreadable_input_is_one_line_and_exit_2(stdin, named):
    assert_unreadable(*invoke("batch", "-", "--endpoint-url", UNREACHABLE, stdin=stdin), named)


def test_unreadable_input_is_one_line_and_exit_2_from_the_real_command():
    stdin, named = UNREADABLE[0]
    assert_unreadable(*cli("batch", "-", "--endpoint-url", UNREACHABLE, stdin=stdin), named)


# One bad JSON Lines line of each kind the probe found, and what its error must name.
BAD_LINES = [
    (b"\xff\xfe", "0xff"),
    (b"{broken", "column 2"),
    (b'{"service":"s3","operation":"ListBuckets","params":{"x":NaN}}', "NaN"),
    (b'{"service":"s3","operation":"ListBuckets","id":1e400}', "1e400"),
    (b'{"service":"s3","operation":"ListBuckets","id":' + b"9" * 5000 + b"}", "out of range"),
    (b'{"a":' + b"[" * 50000 + b"]" * 50000 + b"}", "nested deeper"),
    (b'{"service":"s3","operation":"ListBuckets","id":"\\ud800"}', "surrogate"),
    (
        b'{"service":"s3","operation":"ListBuckets","credentials":{"SecretAccessKey":"s3cr3t-in-a-bad-line"',
        "column",
    ),
]


def _bad_line_among_good_ones(run, moto_server, command, bad, named):
    lines = [json.dumps({**GOOD, "id": i}).encode() for i in range(3)] + [
        bad,
        json.dumps({**GOOD, "id": 4}).encode(),
    ]
    rc, out, err = run(
        command, "-", "-o", "json", "--endpoint-url", moto_server.url, stdin=b"\n\n".join(lines) + b"\n"
    )  # blank lines between: line numbers still count them
    assert rc == 1, err  # some requests failed: the contract's code, not a usage error
    assert "Traceback" not in err
    rows = strict(out)
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["request"].get("id") for r in rows if r["error"] is None] == [0, 1, 2, 4]
    (failed,) = (r for r in rows if r["error"] is not None)
    assert failed["index"] == 3 and failed["error_code"] == "InvalidInput" and failed["attempts"] == 0
    # the real command reads click's wrapper of stdin (named "<stdin>"); under CliRunner, stdin itself ("-")
    assert failed["request"] == {"input": "<stdin>" if run is cli else "-", "line": 7}
    assert "line 7" in failed["error"] and named in failed["error"]
    assert not failed["retryable"] and "JSON Lines" in failed["guidance"]
    assert b"s3cr3t" not in out and "s3cr3t" not in err


@pytest.mark.parametrize(("bad", "named"), BAD_LINES)
@pytest.mark.parametrize("command", ["batch", "adaptive"])
def test_a_bad_json_lines_line_is_a_failed_result_and_the_others_run(moto_server, command, bad, named):
    _bad_line_among_good_ones(invoke, moto_server, command, bad, named)


def test_a_bad_json_lines_line_is_a_failed_result_from_the_real_command(moto_server):
    bad, named = BAD_LINES[-1]  # the cut-off line with a secret in it: never echoed, not even in a log
    _bad_line_among_good_ones(cli, moto_server, "batch", bad, named)


def test_a_bad_first_line_of_json_lines_is_a_failed_result_too(moto_server):
    rc, out, err = invoke(
        "batch",
        "-",
        "-o",
        "jsonl",
        "--endpoint-url",
        moto_server.url,
        stdin=b'{"service": "s3",\n' + json.dumps(GOOD).encode() + b"\n",
    )
    assert rc == 1, err
    rows = sorted((strict(line) for line in out.splitlines()), key=lambda r: r["index"])
    assert [(r["index"], r["error_code"]) for r in rows] == [(0, "InvalidInput"), (1, None)]
    assert "line 1" in rows[0]["error"] and "Expecting" in rows[0]["error"]


def test_a_bad_line_with_processes_and_fail_fast(moto_server):
    """With worker processes the placeholder crosses a pipe and fails the same way; fail-fast stops at
    it (exit 3) like at any other failed request."""
    lines = b"\n".join([json.dumps(GOOD).encode(), b"\xc3(", json.dumps(GOOD).encode()]) + b"\n"
    rc, out, err = cli("--processes", "2", "batch", "-", "--endpoint-url", moto_server.url, stdin=lines)
    assert rc == 1, err
    assert [r["error_code"] for r in strict(out)] == [None, "InvalidInput", None]
    rc, out, err = invoke(
        "batch", "-", "-c", "1", "--fail-fast", "--endpoint-url", moto_server.url, stdin=lines
    )
    assert rc == 3 and "line 2" in err and "0xc3" in err, err


def test_output_is_strict_json_and_utf8_even_for_odd_values():
    """A lone surrogate that reaches a Result another way (the Python API) is written as U+FFFD; NaN
    and the infinities as the strings "nan", "inf", "-inf" (documented in the README)."""
    value = jsonable({"id\udc80": ["x\ud800", float("nan"), float("inf"), -math.inf], "ok": "é"})
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    assert text.encode("utf-8")
    assert value == {"id\ufffd": ["x\ufffd", "nan", "inf", "-inf"], "ok": "é"}


@pytest.mark.parametrize("text", ["[1]", '{"a": [1, {"b": "\\ud83d\\ude00"}]}', '"é"', "1.5e300", "-0"])
def test_strict_reader_accepts_ordinary_json(text):
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(text.encode()) == json.loads(text)


def test_strict_reader_names_the_line_and_byte_of_bad_utf8():
    with pytest.raises(JSONInputError, match=r"line 2 byte 6: 0xc3"):
        loads_strict(b"[1,\n2,\xc3(]")


# -- the fuzzer: random JSON values and random bytes into `greenfetch batch -` --------------------

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
_values = st.recursive(
    _scalars,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)
_field = st.one_of(_values, st.sampled_from(["s3", "sts", "ListBuckets", "GetCallerIdentity", "us-east-1"]))
_records = st.dictionaries(
    st.sampled_from(["service", "operation", "params", "region", "id", "paginate", "x"]), _field, max_size=5
)


# No shrinking: a hang costs the 10 s below per call, and these inputs are small enough to read as found.
FUZZ_PHASES = [Phase.explicit, Phase.reuse, Phase.generate]


def _run_fuzz(data: bytes, output: str):
    import gevent

    # A batch that never ends (a worker greenlet that died, its result never sent) fails here, naming the
    # input: the session's child processes keep gevent from raising LoopExit, and pytest-timeout's one
    # alarm per test would not stop Hypothesis calling the test again and again.
    hang = AssertionError(f"batch did not end within 10 s on {data!r}")
    with gevent.Timeout(10, hang):
        result = CliRunner().invoke(
            load_commands(),
            ["batch", "-", "-o", output, "--endpoint-url", UNREACHABLE, "--concurrency", "4"],
            input=data,
            catch_exceptions=True,
        )
    assert result.exception is not hang, repr(hang)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 1, 2), result.output
    return result


def _non_finite(value) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return any(_non_finite(v) for _, v in items)


@pytest.mark.parametrize("engine", ["gevent", "threads"])
def test_a_service_or_operation_that_is_not_a_name_is_that_requests_failed_result(engine):
    """Found by the record fuzzer: a list as the service made the failure's classification hash it,
    which killed the worker, so the batch printed [] and a traceback (gevent) or never ended (threads)."""
    odd = [{"service": [None]}, {"service": "s3", "operation": {"a": 1}}, {"service": 7, "operation": "X"}]
    rc, out, err = invoke(
        "batch",
        "-",
        "--endpoint-url",
        UNREACHABLE,
        stdin=json.dumps([*odd, GOOD]).encode(),
        GREENFETCH_ENGINE=engine,
    )
    assert rc == 1, err
    rows = strict(out)
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r["error_code"] for r in rows[:3]] == ["MissingField"] * 3
    assert "[None]" in rows[0]["error"] and "'service'" in rows[0]["error"]
    assert rows[3]["request"]["service"] == "s3"  # the good request still ran


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=FUZZ_PHASES)
@given(st.lists(_records, max_size=4), st.sampled_from(["json", "jsonl"]), st.booleans())
def test_fuzz_records_one_result_each_and_strict_json(records, output, as_lines):
    data = ("\n".join(json.dumps(r) for r in records) if as_lines else json.dumps(records)).encode()
    result = _run_fuzz(data, output)
    if not as_lines and _non_finite(records):  # NaN/inf in a JSON array: no request can run
        assert result.exit_code == 2 and not result.stdout_bytes.strip()
        return
    if as_lines and all(_non_finite(r) for r in records):  # no line (or no readable line): no request at all
        assert result.exit_code == 2 and not result.stdout_bytes.strip()
        return
    assert result.exit_code in (0, 1), result.output  # a NaN line is that request's failed Result
    stdout = result.stdout_bytes
    rows = (
        [strict(line) for line in stdout.splitlines() if line.strip()]
        if output == "jsonl"
        else strict(stdout)
        if stdout.strip()
        else []
    )
    assert len(rows) == len(records)
    assert sorted(r["index"] for r in rows) == list(range(len(records)))
    assert [r["error_code"] == "InvalidInput" for r in sorted(rows, key=lambda r: r["index"])] == [
        as_lines and _non_finite(r) for r in records
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=FUZZ_PHASES)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes_never_a_traceback(data):
    result = _run_fuzz(data, "json")
    if result.stdout_bytes.strip():
        strict(result.stdout_bytes)


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_a_query_that_makes_nan_still_writes_strict_json(output):
    rc, out, err = invoke(
        "batch",
        "-",
        "-o",
        output,
        "--endpoint-url",
        UNREACHABLE,
        "--query",
        "[].to_number('NaN')" if output == "json" else "to_number('Infinity')",
        stdin=json.dumps([GOOD]).encode(),
    )
    assert rc == 1, err
    assert strict(out.splitlines()[0] if output == "jsonl" else out) in (["nan"], "inf")
