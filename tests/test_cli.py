"""The click CLI, driven in-process with CliRunner against moto's server."""

import json

import pytest
from click.testing import CliRunner

from greenfetch.cli import load_commands

cli = load_commands()


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def base_args(moto_server):
    return ["--endpoint-url", moto_server.url, "--region", "us-east-1", "--max-attempts", "1"]


REQS = [
    {"service": "s3", "operation": "ListBuckets"},
    {"service": "invalid-service", "operation": "BadOp"},
    {"service": "ec2", "operation": "DescribeRegions"},
]


def test_batch_json_output_and_exit_1_when_some_failed(runner, base_args):
    out = runner.invoke(cli, [*base_args, "batch", "-c", "2"], input=json.dumps(REQS))
    assert out.exit_code == 1, out.output
    rows = json.loads(out.stdout)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert [r["error"] is None for r in rows] == [True, False, True]
    assert "invalid-service" in rows[1]["error"]


def test_batch_exit_0_and_jsonl_from_json_lines(runner, base_args):
    lines = "\n".join(json.dumps(r) for r in [REQS[0], REQS[2]]) + "\n"
    out = runner.invoke(cli, [*base_args, "batch", "-o", "jsonl"], input=lines)
    assert out.exit_code == 0, out.output
    assert sorted(json.loads(line)["index"] for line in out.stdout.splitlines()) == [0, 1]


def test_batch_query_like_the_aws_cli(runner, base_args):
    out = runner.invoke(
        cli, [*base_args, "batch", "--query", "[?error==null].request.operation"], input=json.dumps(REQS)
    )
    assert json.loads(out.stdout) == ["ListBuckets", "DescribeRegions"]


def test_fail_fast_exits_3_and_says_batch_failed(runner, base_args):
    out = runner.invoke(cli, [*base_args, "batch", "--fail-fast", "-c", "1"], input=json.dumps(REQS[1:]))
    assert out.exit_code == 3
    assert "Batch failed" in out.stderr


def test_table_output(runner, base_args):
    out = runner.invoke(cli, [*base_args, "batch", "-o", "table"], input=json.dumps(REQS))
    assert "ListBuckets" in out.stdout and "UnknownService" in out.stdout


def test_table_marks_a_value_it_cuts(runner, base_args):
    """A cell cut to fit ends in "…"; it was cut with no mark (a queue URL looked whole and was not)."""
    create = [{"service": "sqs", "operation": "CreateQueue", "params": {"QueueName": "table-mark-queue"}}]
    out = runner.invoke(cli, [*base_args, "batch", "-o", "table"], input=json.dumps(create))
    assert out.exit_code == 0, out.output
    url = json.loads(runner.invoke(cli, [*base_args, "batch"], input=json.dumps(create)).stdout)[0]["result"][
        "QueueUrl"
    ]
    assert len(url) > 24
    (cell,) = [part for part in out.stdout.split() if part.startswith("QueueUrl=")]
    assert cell == f"QueueUrl={url[:23]}…"


@pytest.mark.parametrize(
    ("text", "named"), [("[{not json", "line 1"), ("[1, 2", "not valid JSON"), ("hello", "'hello'")]
)
def test_unreadable_input_is_exit_2_without_traceback(runner, base_args, text, named):
    out = runner.invoke(cli, [*base_args, "batch"], input=text)
    assert out.exit_code == 2
    assert named in out.stderr and "Traceback" not in out.output


def test_bad_query_is_exit_2(runner, base_args):
    out = runner.invoke(cli, [*base_args, "batch", "--query", "[?"], input="[]")
    assert out.exit_code == 2 and "JMESPath" in out.stderr


def test_bad_jsonl_line_is_a_failed_result_and_the_others_run(runner, base_args):
    lines = json.dumps(REQS[0]) + "\n{broken\n" + json.dumps(REQS[2]) + "\n"
    out = runner.invoke(cli, [*base_args, "batch"], input=lines)
    assert out.exit_code == 1, out.output
    rows = json.loads(out.stdout)
    assert [r["error_code"] for r in rows] == [None, "InvalidInput", None]
    assert "line 2" in rows[1]["error"] and rows[1]["request"]["line"] == 2


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help(runner, command):
    out = runner.invoke(cli, [command, "--help"])
    assert out.exit_code == 0 and "Usage" in out.output
