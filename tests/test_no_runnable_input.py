"""Input with no runnable request, and one-line usage errors (issue 19).

An empty file, a file holding only ``{not json``, JSON Lines whose every line is unreadable: exit 2 with
one line naming the problem, nothing sent (``{not json`` was exit 1 with only a result on stdout, an
empty file exit 0). A usage error of any kind is one line on stderr (click printed three: the usage, a
"Try --help" hint, the error), and still names the bad value and what would be valid."""

import json
import os
import shutil
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch.cli import load_commands
from greenfetch.cli._input import read_requests

cli = load_commands()
CLI_CMD = (
    [shutil.which("greenfetch")] if shutil.which("greenfetch") else [sys.executable, "-m", "greenfetch.cli"]
)
GOOD = json.dumps({"service": "dynamodb", "operation": "ListTables", "region": "us-east-1"})


def invoke(*args, stdin=None):
    result = CliRunner().invoke(
        cli, list(args), input=stdin, env={"GREENFETCH_MAX_ATTEMPTS": "1"}, prog_name="greenfetch"
    )
    return result.exit_code, result.stdout, result.stderr.splitlines()


def one_line(lines, *needles):
    assert len(lines) == 1, lines
    assert lines[0].startswith("Error: ") and "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


NO_REQUEST = [
    ("empty", b"", "is empty"),
    ("blank lines", b"\n  \n\t\n", "is empty"),
    ("only {not json", b"{not json\n", "holds no request that can be read"),
    ("{not json, no newline", b"{not json", "holds no request that can be read"),
    ("every line unreadable", b'{x\n\n{y\n{"a": NaN}\n', "and 2 more unreadable lines"),
    ("a cut-off object", b'{"service": "s3", "operation"\n', "holds no request that can be read"),
]


@pytest.mark.parametrize(
    ("content", "named"), [case[1:] for case in NO_REQUEST], ids=[c[0] for c in NO_REQUEST]
)
@pytest.mark.parametrize("output", ["json", "jsonl", "table"])
@pytest.mark.parametrize("command", ["batch", "adaptive"])
def test_input_with_no_runnable_request_is_exit_2_one_line_and_nothing_sent(
    loopback, tmp_path, command, output, content, named
):
    path = tmp_path / "requests.txt"
    path.write_bytes(content)
    code, stdout, err = invoke("--endpoint-url", loopback.url, command, str(path), "-o", output)
    assert code == 2
    one_line(err, str(path), named)
    assert stdout == ""
    assert loopback.stats()["requests"] == 0  # nothing sent


def test_stdin_with_nothing_in_it_names_stdin():
    code, _, err = invoke("batch", "-", stdin="")
    assert code == 2
    one_line(err, "the input (stdin) is empty")


def test_unreadable_lines_before_a_readable_one_still_run_in_their_places(loopback, tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_text("{not json\n\n{x\n" + GOOD + "\n{y\n")
    code, stdout, err = invoke("--endpoint-url", loopback.url, "batch", str(path), "-o", "jsonl")
    assert code == 1, err  # some requests failed: not a usage error
    rows = sorted((json.loads(line) for line in stdout.splitlines()), key=lambda r: r["index"])
    assert [r["error_code"] for r in rows] == ["InvalidInput", "InvalidInput", None, "InvalidInput"]
    assert [r["request"].get("line") for r in rows] == [1, 3, None, 5]


def test_an_empty_json_array_is_zero_requests_not_an_error(tmp_path):
    path = tmp_path / "none.json"
    path.write_text("[]\n")
    code, stdout, err = invoke("batch", str(path), "-o", "json")
    assert code == 0, err
    assert json.loads(stdout) == []


def test_the_real_command_says_one_line_for_a_garbage_file(tmp_path):
    """The probe's case 7, as a user runs it: exit 1, nothing on stderr, a result on stdout."""
    path = tmp_path / "garbage.txt"
    path.write_text("{not json\n")
    proc = subprocess.run(
        [*CLI_CMD, "--endpoint-url", "http://127.0.0.1:9", "batch", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GREENFETCH_MAX_ATTEMPTS": "1"},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    one_line(proc.stderr.splitlines(), "garbage.txt line 1 is not valid JSON")


# -- every usage error is one line --------------------------------------------------------------------

USAGE_ERRORS = [
    (["batch", "--concurency", "3"], ["--concurency", "--concurrency", "greenfetch batch --help"]),
    (["diff"], ["Missing argument 'DATABASE'", "greenfetch diff --help"]),
    (["batch", "-o", "xml", "-"], ["'xml' is not one of 'json', 'jsonl', 'table'"]),
    (["batch", "--concurrency", "0", "-"], ["--concurrency", "0 is not in the range x>=1"]),
    (["--processes", "lots", "batch", "-"], ["--processes", "'lots'", "auto"]),
    (["--pushgateway", "not a url", "batch", "-"], ["not a URL"]),
    (["bach"], ["No such command 'bach'", "batch"]),
    (["inventory", "--types", "ec2.vpc"], ["unknown resource type 'ec2.vpc'", "did you mean ec2.vpcs"]),
    (["inventory", "--regions", "us-east-9", "--types", "ec2.vpcs"], ["'us-east-9' is not an AWS region"]),
    (["inventory", "--cache-ttl", "-1"], ["'-1' is negative"]),
    (["adaptive", "--target-latency", "fast", "-"], ["fast"]),
    (["stats"], ["stats needs exactly one source"]),
    (["cache", "info", "--cache-dirr", "x"], ["--cache-dirr", "greenfetch cache info --help"]),
]


@pytest.mark.parametrize(("args", "needles"), USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_every_usage_error_is_one_line_naming_the_bad_value(tmp_path, args, needles):
    code, stdout, err = invoke("--endpoint-url", "http://127.0.0.1:9", *args, stdin=GOOD + "\n")
    assert code == 2, err
    one_line(err, *needles)
    assert "Usage:" not in stdout


def test_a_setting_from_the_environment_is_one_line_in_process_too():
    result = CliRunner().invoke(cli, ["batch", "-"], input=GOOD, env={"GREENFETCH_CONCURRENCY": "many"})
    assert result.exit_code == 2
    one_line(result.stderr.splitlines(), "GREENFETCH_CONCURRENCY", "'many'")


def test_the_real_command_prints_one_line_for_a_usage_error():
    proc = subprocess.run(
        [*CLI_CMD, "batch", "--concurency", "3"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    one_line(proc.stderr.splitlines(), "--concurrency")


def test_help_is_still_the_full_usage():
    code, stdout, _ = invoke("batch", "--help")
    assert code == 0 and stdout.startswith("Usage: ") and "--concurrency" in stdout


# -- the reader's rule, as an invariant ---------------------------------------------------------------

_line = st.one_of(
    st.just(GOOD), st.sampled_from(["{not json", "{", '{"a": NaN}', '{"x": 1e999}']), st.just("  ")
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, max_size=8))
def test_the_reader_refuses_input_exactly_when_no_line_can_be_read(lines):
    import io

    text = "\n".join(lines) + "\n"
    readable = [line for line in lines if line == GOOD]
    stream = io.BytesIO(text.encode())
    if not readable:
        with pytest.raises(click.BadParameter):
            list(read_requests(stream, "f"))
        return
    items = list(read_requests(stream, "f"))
    assert len(items) == sum(1 for line in lines if line.strip())  # one item per non-blank line, in place
    assert [isinstance(i, dict) and "service" in i for i in items] == [
        line == GOOD for line in lines if line.strip()
    ]
