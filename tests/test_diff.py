"""``greenfetch diff`` and each catalog type's ``resource_id``: the pure merge (hypothesis), the choice of
runs, every type's declared fields against botocore's shapes, then moto's server: one resource of every type
inventoried into a real SQLite file, two runs with a change between them, the real ``nu``."""

import json
import re
import subprocess
import sys
from pathlib import Path

import botocore.session
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine
from greenfetch.cli import load_commands
from greenfetch.inventory import CATALOG, InventoryDB, InventoryError, SQLiteSink, diff_runs
from greenfetch.inventory._diff import DiffCounts, comparable, diff_resources, pick_runs

sys.path.insert(0, str(Path(__file__).parent))
from _every_type import ROLE, caller, seed_every_type  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NU = ROOT / ".nu" / "node_modules" / "@nushell" / "linux-x64" / "bin" / "nu"

# -- the merge, pure --------------------------------------------------------------------------------

_ids = st.sampled_from([f"r-{n}" for n in range(12)])
_data = st.fixed_dictionaries({"Size": st.integers(0, 2)})
_side = st.dictionaries(
    st.tuples(st.sampled_from(["ec2.vpcs", "sqs.queues"]), st.sampled_from(["a", "b"]), _ids),
    _data,
    max_size=20,
)


def _rows(side):
    return [((t, acct, "us-east-1", rid), json.dumps(d)) for (t, acct, rid), d in sorted(side.items())]


@settings(max_examples=200, deadline=None)
@given(before=_side, after=_side)
def test_the_merge_finds_exactly_the_set_differences(before, after):
    counts = DiffCounts()
    changes = list(diff_resources(_rows(before), _rows(after), compared=lambda scope: True, counts=counts))
    got = {(c.change, c.resource_type, c.account, c.resource_id) for c in changes}
    want = (
        {("removed", *k) for k in before.keys() - after.keys()}
        | {("added", *k) for k in after.keys() - before.keys()}
        | {("changed", *k) for k in before.keys() & after.keys() if before[k] != after[k]}
    )
    assert got == want and len(changes) == len(want)
    assert counts.unchanged == sum(before[k] == after[k] for k in before.keys() & after.keys())
    assert all(c.fields == ["Size"] for c in changes if c.change == "changed")


@settings(max_examples=100, deadline=None)
@given(side=_side, skipped=st.sets(st.sampled_from(["a", "b"])))
def test_what_was_not_fetched_by_both_runs_is_never_added_or_removed(side, skipped):
    counts = DiffCounts()
    changes = list(
        diff_resources(_rows(side), [], compared=lambda scope: scope[1] not in skipped, counts=counts)
    )
    assert {c.account for c in changes}.isdisjoint(skipped)
    assert counts.not_compared == sum(acct in skipped for _, acct, _ in side)


def test_volatile_fields_and_order_are_not_changes_but_values_are():
    before = {
        "DBInstanceArn": "arn:db",
        "LatestRestorableTime": "10:00",
        "Tags": [{"Key": "a"}, {"Key": "b"}],
        "Endpoint": {"Port": 5432, "Address": "x"},
    }
    moved = {**before, "LatestRestorableTime": "10:05", "Tags": [{"Key": "b"}, {"Key": "a"}]}
    resized = {**moved, "Endpoint": {"Port": 5433, "Address": "x"}}
    row = lambda d: [(("rds.instances", "a", "r", "arn:db"), json.dumps(d))]  # noqa: E731
    volatile = lambda t: CATALOG[t].volatile  # noqa: E731
    assert list(diff_resources(row(before), row(moved), compared=lambda s: True, volatile=volatile)) == []
    [change] = diff_resources(row(before), row(resized), compared=lambda s: True, volatile=volatile)
    assert change.fields == ["Endpoint.Port"] and change.after["Endpoint"]["Port"] == 5433
    assert comparable({"S": {"T": 1, "U": 2}}, ["S.T"]) == {"S": {"U": 2}}


def _run(n, finished=True):
    return {"run_id": n, "started_at": f"t{n}", "finished_at": f"t{n}" if finished else None, "summary": None}


def test_default_runs_are_the_last_two_finished_and_bad_runs_are_named():
    runs = [_run(1), _run(2), _run(3, finished=False), _run(4), _run(5, finished=False)]
    assert [r["run_id"] for r in pick_runs(runs, None, None)] == [2, 4]
    assert [r["run_id"] for r in pick_runs(runs, 1, None)] == [1, 4]
    assert [r["run_id"] for r in pick_runs(runs, None, 2)] == [1, 2]
    assert [r["run_id"] for r in pick_runs(runs, 3, 5)] == [3, 5]  # named unfinished runs are allowed
    with pytest.raises(
        InventoryError, match=r"--from 9: no such run in x.db; runs there: 1-5 \(finished: 1-2, 4\)"
    ):
        pick_runs(runs, 9, None, "x.db")
    with pytest.raises(InventoryError, match="no finished run before run 1"):
        pick_runs(runs, None, 1)
    with pytest.raises(InventoryError, match="no finished run after run 4"):
        pick_runs(runs, 4, None)
    with pytest.raises(InventoryError, match="has no finished run to compare with; it has no runs yet"):
        pick_runs([], None, None)


# -- every type's resource id ---------------------------------------------------------------------------


def _item_shape(rtype):
    shape = (
        botocore.session.get_session()
        .get_service_model(rtype.service)
        .operation_model(rtype.operation)
        .output_shape
    )
    for part in rtype.items.replace("[]", "").split("."):
        shape = shape.members[part]
        shape = shape.member if shape.type_name == "list" else shape
    return shape


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_type_declares_fields_its_api_returns(name):
    rtype = CATALOG[name]
    shape = _item_shape(rtype)
    if rtype.id_field is None:
        assert shape.type_name == "string" and rtype.arn is None
        return
    assert rtype.id_field in shape.members
    assert rtype.arn is None or rtype.arn in shape.members
    for path in rtype.volatile:
        inner = shape
        for part in path.split("."):
            assert part in inner.members, f"{name}: volatile {path!r} is not in {rtype.operation}'s items"
            inner = inner.members[part]
    assert rtype.describe()["resource_id"] == (rtype.arn or rtype.id_field)


def test_resource_id_prefers_the_arn_and_falls_back_to_the_id_field():
    ssm = CATALOG["ssm.parameters"]  # SSM is left out of the moto runs: its item as the API returns it
    item = {
        "Name": "/app/db-url",
        "ARN": "arn:aws:ssm:eu-west-1:111111111111:parameter/app/db-url",
        "Type": "String",
    }
    assert ssm.resource_id(item) == item["ARN"]
    assert ssm.resource_id({"Name": "/app/db-url"}) == "/app/db-url"
    assert CATALOG["dynamodb.tables"].resource_id("orders") == "orders"


# -- moto: every type, and two runs with a change ----------------------------------------------------------

ACCOUNT, CHANGING = "555000001401", "555000001402"
NOT_SSM = ",".join(n for n in CATALOG if n != "ssm.parameters")


@pytest.fixture(scope="module")
def engine(moto_server):
    eng = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "concurrency": 16, "max_attempts": 2},
            environ={},
        )
    )
    yield eng
    eng.close()


def _inventory(moto_server, account, types, out):
    # moto's threaded server now and then answers a call with its own crash page (HTML, 500) when the
    # machine is loaded: the engine retries it like any 5xx (tests/test_unreadable_errors.py)
    result = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            moto_server.url,
            "--region",
            "us-east-1",
            "--max-attempts",
            "3",
            "inventory",
            "--accounts",
            account,
            "--role-name",
            ROLE,
            "--regions",
            "us-east-1",
            "--types",
            types,
            "--out",
            str(out),
            "--cache-ttl",
            "0",
            "--concurrency",
            "8",
        ],
    )  # moto's server has answered 500 under heavier fan-outs
    if result.exit_code != 0 and Path(out).exists():  # say which fetch failed
        with InventoryDB(out) as db:
            failed = db.conn.execute("SELECT resource_type, status, error FROM fetches WHERE status != 'ok'")
            raise AssertionError(f"exit {result.exit_code}: {failed.fetchall()}\n{result.output}")
    assert result.exit_code == 0, result.output
    return result


def _diff(*args):
    return CliRunner().invoke(load_commands(), ["diff", *map(str, args)])


@pytest.fixture(scope="module")
def every_db(engine, moto_server, tmp_path_factory):
    """One resource of every type (an open security group, a public bucket, a tagged instance among
    them), inventoried; then a new queue, and a second run of the queues only (``latest`` takes each
    type from the newest run that fetched it)."""
    call = seed_every_type(engine, ACCOUNT)
    path = tmp_path_factory.mktemp("every") / "inventory.db"
    _inventory(moto_server, ACCOUNT, NOT_SSM, path)
    call("sqs", "CreateQueue", {"QueueName": "between-runs"})
    _inventory(moto_server, ACCOUNT, "sqs.queues", path)
    return path


def test_every_type_has_its_resource_id(every_db):
    path = every_db
    with InventoryDB(path) as db:
        rows = db.conn.execute(
            "SELECT resource_type, resource_id, data FROM resources WHERE run_id = 1"
        ).fetchall()
        fetched = db.fetched(1)
    assert {t for t, _, _ in rows} == set(NOT_SSM.split(","))  # one resource (at least) of every type
    assert set(fetched.values()) == {"ok"}
    for rtype, rid, data in rows:
        item, kind = json.loads(data), CATALOG[rtype]
        expected = item[kind.arn] if kind.arn else kind.id_of(item)
        assert rid == expected and rid, (rtype, rid)
        if kind.arn:
            assert rid.startswith("arn:aws:"), (rtype, rid)
    keys = [(t, rid) for t, rid, _ in rows]
    assert len(keys) == len(set(keys))  # unique within the run (one account and region)
    assert "never-read" not in path.read_bytes().decode("utf-8", "replace")  # secret values are never read


def test_two_runs_with_a_change_and_diff_shows_exactly_that_change(engine, moto_server, tmp_path):
    call = caller(engine, CHANGING)
    path = tmp_path / "inventory.db"
    types = "ec2.vpcs,sqs.queues,sns.topics,iam.users"
    vpc = call("ec2", "CreateVpc", {"CidrBlock": "10.40.0.0/16"})["Vpc"]["VpcId"]
    call(
        "sqs", "CreateQueue", {"QueueName": "every-queue"}
    )  # beside the VPC: a queue and a user that stay, a topic to go
    call("iam", "CreateUser", {"UserName": "every-user"})
    call("sns", "CreateTopic", {"Name": "every-topic"})
    _inventory(moto_server, CHANGING, types, path)
    _inventory(moto_server, CHANGING, types, path)
    assert _diff(path).stdout.strip().endswith("(no changes)")  # nothing changed: nothing reported
    call("ec2", "CreateTags", {"Resources": [vpc], "Tags": [{"Key": "owner", "Value": "ops"}]})
    queue = call("sqs", "CreateQueue", {"QueueName": "new-queue"})["QueueUrl"]
    topic = f"arn:aws:sns:us-east-1:{CHANGING}:every-topic"
    call("sns", "DeleteTopic", {"TopicArn": topic})
    _inventory(moto_server, CHANGING, types, path)

    out = _diff(path, "-o", "json")
    assert out.exit_code == 0, out.output
    changes = json.loads(out.stdout)
    assert [(c["change"], c["resource_type"], c["resource_id"], c["fields"]) for c in changes] == [
        ("changed", "ec2.vpcs", vpc, ["Tags"]),
        ("removed", "sns.topics", topic, []),
        ("added", "sqs.queues", queue, []),
    ]
    assert changes[0]["after"]["Tags"] == [{"Key": "owner", "Value": "ops"}] and not changes[0]["before"].get(
        "Tags"
    )
    assert {c["account"] for c in changes} == {CHANGING} and changes[1]["after"] is None
    assert (
        "run 2 (" in out.stderr
        and "-> run 3 (" in out.stderr
        and "1 added, 1 removed, 1 changed" in out.stderr
    )

    table = _diff(path).stdout.splitlines()
    assert table[0].split() == ["change", "type", "account", "region", "resource", "id", "fields"]
    assert [line.split()[:2] for line in table[2:]] == [
        ["changed", "ec2.vpcs"],
        ["removed", "sns.topics"],
        ["added", "sqs.queues"],
    ]
    lines = [json.loads(x) for x in _diff(path, "-o", "jsonl", "--type", "sqs").stdout.splitlines()]
    assert [(c["change"], c["resource_id"]) for c in lines] == [("added", queue)]
    assert json.loads(_diff(path, "--from", 1, "--to", 2, "-o", "json").stdout) == []
    assert len(json.loads(_diff(path, "--from", 1, "-o", "json").stdout)) == 3

    with InventoryDB(path) as db:  # the Python API gives the same
        again = diff_runs(db)
        assert [c.resource_id for c in again.changes] == [vpc, topic, queue] and again.counts.changed == 1

    if NU.exists():  # the same question from Nushell, on the same file
        script = (
            f"open '{path}' | query db \"select resource_type, count(*) as n from latest "
            'group by resource_type order by resource_type" | to json --raw'
        )
        nu = subprocess.run(
            [str(NU), "-n", "--no-std-lib", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert nu.returncode == 0, nu.stderr
        with InventoryDB(path) as db:
            want = db.conn.execute(
                "SELECT resource_type, count(*) FROM latest GROUP BY 1 ORDER BY 1"
            ).fetchall()
        assert [(r["resource_type"], r["n"]) for r in json.loads(nu.stdout)] == want


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.db"], "'missing.db' does not exist"),
        (["notes.db"], "is not a SQLite database"),
        (["one.db"], "no finished run before run 1 to compare it with"),
        (["one.db", "--to", "7"], "--to 7: no such run in one.db; runs there: 1 (finished: 1)"),
        (["one.db", "--type", "ec2.vpc"], "unknown resource type 'ec2.vpc' (did you mean ec2.vpcs?)"),
        (["one.db", "--from", "x"], "'x' is not a valid integer"),
    ],
)
def test_bad_file_or_run_is_exit_2_with_one_clear_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.db").write_text("not a database\n")
    with SQLiteSink(tmp_path / "one.db") as sink:
        sink.add(
            {
                "resource_type": "ec2.vpcs",
                "account": "111111111111",
                "region": "us-east-1",
                "items": [{"VpcId": "vpc-1"}],
                "status": "ok",
                "error": None,
            }
        )
    out = _diff(*args)
    assert out.exit_code == 2, out.output
    errors = [line for line in out.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "Traceback" not in out.output and out.stdout == ""


def _documented_queries():
    doc = (ROOT / "docs" / "inventory.md").read_text(encoding="utf-8")
    section = doc[doc.index("### Ten queries") :]
    section = section[: section.index("\n## ")]
    return list(
        zip(
            re.findall(r"```sql\n(.*?)```", section, re.S),
            re.findall(r"```nu\n(.*?)```", section, re.S),
            strict=True,
        )
    )


@pytest.mark.nu
@pytest.mark.skipif(not NU.exists(), reason="nu is not installed: run scripts/install-nu (scripts/test does)")
def test_the_ten_documented_queries_answer_the_same_in_sqlite_and_nu(every_db, tmp_path):
    queries = _documented_queries()
    assert len(queries) == 10
    with InventoryDB(every_db) as db:
        instance = db.conn.execute(
            "SELECT resource_id FROM latest WHERE resource_type = 'ec2.instances'"
        ).fetchone()[0]
        answers = [
            db.conn.execute(sql.replace("i-0abc1234567890def", instance)).fetchall() for sql, _ in queries
        ]
    assert all(answers), [
        n for n, rows in enumerate(answers, 1) if not rows
    ]  # the estate has something for each
    assert answers[3][0][4:] == ("tcp", 22, 22) and answers[4][0][1] == f"every-public-{ACCOUNT}"
    assert (
        answers[8] == [("sqs.queues", ACCOUNT, "us-east-1", answers[8][0][3])]
        and "between-runs" in answers[8][0][3]
    )
    for (_, nu), rows in zip(queries, answers, strict=True):
        script = (
            nu.strip()
            .replace("open inventory.db", f"open '{every_db}'")
            .replace("i-0abc1234567890def", instance)
        )
        out = subprocess.run(
            [str(NU), "-n", "--no-std-lib", "-c", script + " | to json --raw"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        )
        assert out.returncode == 0, (script, out.stderr)
        assert len(json.loads(out.stdout)) == len(rows), script
