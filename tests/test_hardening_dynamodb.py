"""Issue 15: the DynamoDB sink streams. Items are written while the input is still being produced,
the sink never holds more than one window (25 x concurrency), and a run that dies mid-way has
already written everything but that window. On moto's server over real HTTP."""

import uuid

import pytest

from greenfetch import Config, Engine, Request
from greenfetch.inventory import DynamoDBSink

N = 3000


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(Config.resolve({"endpoint_url": moto_server.url, "region": "us-east-1", "max_attempts": 2}))
    yield eng
    eng.close()


def _table(engine):
    name = f"stream-{uuid.uuid4().hex[:8]}"
    result = engine.execute(
        Request(
            "dynamodb",
            "CreateTable",
            {
                "TableName": name,
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                ],
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
            },
        )
    )
    assert result.ok, result.error
    return name


def _count(engine, table):
    result = engine.execute(
        Request("dynamodb", "Scan", {"TableName": table, "Select": "COUNT"}, paginate=True)
    )
    assert result.ok, result.error
    return result.result["Count"]


def test_items_are_written_as_they_come_with_bounded_memory(engine, tmp_path):
    table = _table(engine)
    sink = DynamoDBSink(engine, table, dead_letter_path=tmp_path / "dead.jsonl", concurrency=4)
    held, seen_midway = [], {}

    def items():
        for n in range(N):
            held.append(len(sink._pending))
            if n == N // 2:
                seen_midway["count"] = _count(engine, table)
            yield {"pk": f"p{n % 7}", "sk": f"s{n}", "n": n, "ratio": n / 7}

    report = sink.write(items())
    assert (report.written, report.failed) == (N, 0)
    assert max(held) < sink.window  # never more than one window waiting
    assert seen_midway["count"] >= N // 2 - sink.window  # written while the input was still coming
    assert _count(engine, table) == N


def test_a_run_that_dies_midway_lost_at_most_one_window(engine, tmp_path):
    table = _table(engine)
    sink = DynamoDBSink(engine, table, dead_letter_path=tmp_path / "dead.jsonl", concurrency=2)

    def items():
        for n in range(1000):
            yield {"pk": "p", "sk": f"s{n}"}
        raise RuntimeError("the fetch crashed")

    with pytest.raises(RuntimeError):
        sink.write(items())
    assert _count(engine, table) >= 1000 - sink.window
