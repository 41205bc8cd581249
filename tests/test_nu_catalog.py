"""``aws catalog`` and ``aws inventory`` under the real nu, against greenfetch's own command line.

One nu run answers every question of the module at once (a record of results, as JSON), so the plugin
starts once and reads the generated catalog once (from the session's cache directory, which the
in-process ``greenfetch catalog`` fills first). The inventory runs against moto's server over HTTP, in
an account of its own (assumed role, ids 5557...), and against the loopback inventory server, whose
per-operation counts tell whether records streamed (``| first 1`` stops the run) and whether Ctrl-C
cancelled it. Budget: about 15 s.
"""

import greenfetch  # noqa: F401,I001  (first: gevent patches before anything else)

import json
import os
import signal
import subprocess

import pytest
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import assume_role, catalog
from greenfetch.testing import inventory_server, wait_until
from greenfetch.testing._inventory_pages import REGIONS as SERVER_REGIONS
from test_nu_plugin import NU, SCRIPTS, Nu

pytestmark = [
    pytest.mark.nu,
    pytest.mark.skipif(
        not NU.exists(), reason="nu is not installed: run scripts/install-nu (scripts/test does)"
    ),
]

ACCOUNT, ROLE = "555700000001", "Reader"
REGIONS = ["us-east-1", "us-west-2"]
TYPES = ["efs", "sqs.queues", "events.rules", "sns.topics", "iam.roles"]
LIST_TABLES = "DynamoDB_20120810.ListTables"
# every region the loopback inventory server answers: 17 ListTables calls for one run of dynamodb.tables
SLOW_REGIONS = ",".join(SERVER_REGIONS)


def _cli(*args, exit_codes=(0,)):
    out = CliRunner().invoke(load_commands(), list(args))
    assert out.exit_code in exit_codes, out.output
    return out.stdout


@pytest.fixture(scope="module")
def cli_catalog():
    """greenfetch catalog -o json, in process (it also writes the generated catalog's cache file)."""
    return json.loads(_cli("catalog", "-o", "json")), json.loads(
        _cli("catalog", "-o", "json", "--service", "efs")
    )


@pytest.fixture(scope="module")
def seeded(moto_server):
    """One resource of each type in ACCOUNT, across both regions and the global scope."""
    engine = Engine(
        Config.resolve(
            {"endpoint_url": moto_server.url, "region": "us-east-1", "max_attempts": 1}, environ={}
        )
    )
    try:
        creds = assume_role(engine, ACCOUNT, ROLE)
        calls = [
            ("us-east-1", "efs", "CreateFileSystem", {"CreationToken": "nu-fs"}),
            ("us-west-2", "sqs", "CreateQueue", {"QueueName": "nu-queue"}),
            ("us-east-1", "events", "PutRule", {"Name": "nu-rule", "ScheduleExpression": "rate(1 day)"}),
            ("us-west-2", "sns", "CreateTopic", {"Name": "nu-topic"}),
            ("us-east-1", "iam", "CreateRole", {"RoleName": "nu-role", "AssumeRolePolicyDocument": "{}"}),
        ]
        for region, service, operation, params in calls:
            result = engine.execute(Request(service, operation, params, region=region, credentials=creds))
            assert result.ok, result.error
            if operation == "CreateFileSystem":  # and a mount target: efs.mount_targets, a child type
                fs = result.result["FileSystemId"]
                vpc = engine.execute(
                    Request(
                        "ec2", "CreateVpc", {"CidrBlock": "10.7.0.0/16"}, region=region, credentials=creds
                    )
                ).result["Vpc"]["VpcId"]
                subnet = engine.execute(
                    Request(
                        "ec2",
                        "CreateSubnet",
                        {"VpcId": vpc, "CidrBlock": "10.7.1.0/24"},
                        region=region,
                        credentials=creds,
                    )
                ).result["Subnet"]["SubnetId"]
                made = engine.execute(
                    Request(
                        "efs",
                        "CreateMountTarget",
                        {"FileSystemId": fs, "SubnetId": subnet},
                        region=region,
                        credentials=creds,
                    )
                )
                assert made.ok, made.error
    finally:
        engine.close()


def _inventory_flags(endpoint):
    return [
        "--endpoint-url",
        endpoint,
        "--max-attempts",
        "1",
        "inventory",
        "--accounts",
        ACCOUNT,
        "--role-name",
        ROLE,
        "--regions",
        ",".join(REGIONS),
        "--types",
        ",".join(TYPES),
        "--cache-ttl",
        "0",
        "--no-progress",
    ]


@pytest.fixture(scope="module")
def cli_records(moto_server, seeded):
    # exit 1: moto answers efs.DescribeReplicationConfigurations with a 500 (an error record, in both faces)
    stdout = _cli(*_inventory_flags(moto_server.url), exit_codes=(0, 1))
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.fixture(scope="module")
def nu(tmp_path_factory, moto_server):
    runner = Nu(tmp_path_factory.mktemp("nu-catalog-home"), moto_server.url)
    runner.env["GREENFETCH_CACHE_DIR"] = os.environ["GREENFETCH_CACHE_DIR"]  # the catalog cache, warm
    added = runner.add_plugin()
    assert added.returncode == 0, added.stderr
    return runner


MINE = {
    "format": "greenfetch-catalog/1",
    "types": {
        "sns.my_topics": {"operation": "ListTopics", "items": "Topics", "id": "TopicArn", "arn": "TopicArn"}
    },
}


@pytest.fixture(scope="module")
def overlays(tmp_path_factory):
    """A user's overlay file adding one type, and a bad one (an item path that is not JMESPath)."""
    folder = tmp_path_factory.mktemp("overlays")
    mine, bad = folder / "mine.json", folder / "bad.json"
    mine.write_text(json.dumps(MINE))
    bad.write_text(
        json.dumps(
            {"format": "greenfetch-catalog/1", "types": {"sns.x": {"operation": "ListTopics", "items": "[["}}}
        )
    )
    return str(mine), str(bad)


@pytest.fixture(scope="module")
def cli_mine(moto_server, seeded, overlays):
    """The CLI's records of the user's type, tags joined (the same flags the nu run takes)."""
    flags = _inventory_flags(moto_server.url)
    flags[flags.index("--types") + 1] = "sns.my_topics"
    stdout = _cli(*flags, "--catalog", overlays[0], "--tags")
    return [json.loads(line) for line in stdout.splitlines()]


def _script(moto, slow, overlays=("mine.json", "bad.json")):
    pid = "(plugin list | where name == greenfetch | get pid.0)"
    inventory = (
        f"aws inventory --max-attempts 1 --accounts {ACCOUNT} --role-name {ROLE} "
        f"--regions [{' '.join(REGIONS)}] --cache-ttl 0sec"
    )
    return f"""
    let catalog_count = aws catalog | length
    let pid_before = {pid}
    {{
        catalog_count: $catalog_count,
        all_count: (aws catalog --all | length),
        efs: (aws catalog --service efs),
        selected: (aws catalog --types [efs ec2.vpcs] --service efs | get name),
        bad_service: (try {{ aws catalog --service efx }} catch {{|e| $e.msg }}),
        bad_type: (try {{ aws inventory --types efx }} catch {{|e| {{msg: $e.msg, label: (view span
            $e.details.labels.0.span.start $e.details.labels.0.span.end)}} }}),
        bad_region: (try {{ aws inventory --types efs --regions us-east-7 }} catch {{|e| $e.msg }}),
        records: ({inventory} --types {",".join(TYPES)} | collect),
        efs_ok: ({inventory} --types efs | where status == ok | get resource_type | sort),
        first: (aws inventory --endpoint-url {slow} --types dynamodb.tables --regions {SLOW_REGIONS} -c 1
                --cache-ttl 0sec | first 1 | get region),
        same_plugin: ($pid_before == {pid}),
        help: (help "aws inventory" | into string),
        mine_catalog: (aws catalog --catalog {overlays[0]} --types sns.my_topics | get name),
        mine: ({inventory} --catalog {overlays[0]} --types sns.my_topics --tags | collect),
        bad_catalog: (try {{ aws inventory --catalog {overlays[1]} }} catch {{|e| {{msg: $e.msg, label: (view span
            $e.details.labels.0.span.start $e.details.labels.0.span.end)}} }}),
    }} | to json -r
    """


@pytest.fixture(scope="module")
def nu_run(nu, moto_server, cli_catalog, cli_records, overlays):
    # 0.2 s per ListTables at one call at a time: the 17 calls of the run take 3.4 s
    with inventory_server(items=2) as slow:
        slow.control(targets={LIST_TABLES: {"latency": 0.2}})
        proc = nu.run("-c", _script(moto_server.url, slow.url, overlays))
        counts = slow.stats()["per_target"]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), counts


def test_catalog_is_the_cli_json(nu_run, cli_catalog):
    got, _ = nu_run
    every, efs = cli_catalog
    assert got["catalog_count"] == len(every) == got["all_count"] > 1500
    assert got["efs"] == efs and {r["tier"] for r in efs} >= {"generated"}
    assert next(r["parent"] for r in got["efs"] if r["name"] == "efs.mount_targets") == "efs.file_systems"
    assert got["selected"] == [r["name"] for r in efs if r["tier"] != "denied"]


def test_bad_input_is_a_nushell_error_and_the_plugin_lives_on(nu_run):
    got, _ = nu_run
    assert got["bad_service"].startswith("--service 'efx' is not a service greenfetch knows (did you mean")
    assert "efs" in got["bad_service"]
    assert got["bad_type"]["msg"].startswith("unknown resource type 'efx' (did you mean")
    assert got["bad_type"]["label"] == "--types efx"  # the label sits on the flag
    assert got["bad_region"].startswith("--regions: 'us-east-7' is not an AWS region (did you mean us-east-2")
    assert got["same_plugin"] is True


def test_help_names_the_cli_flags(nu_run):
    got, _ = nu_run
    for flag in (
        "--types",
        "--exclude-types",
        "--regions",
        "--exclude-regions",
        "--accounts",
        "--role-name",
        "--cache-ttl",
        "--concurrency",
        "--endpoint-url",
        "aws inventory --types efs | where status == ok",
    ):
        assert flag in got["help"], flag


def _stable(records, overlay=None):
    """Records in a fixed order, without the fields that move between two fetches (the catalog's volatile)."""
    kinds = catalog(overlay) if overlay else catalog()
    out = []
    for rec in records:
        volatile = kinds.volatile[rec["resource_type"]]
        items = [
            {k: v for k, v in item.items() if k not in volatile} if isinstance(item, dict) else item
            for item in rec["items"]
        ]
        out.append({**rec, "items": items})
    return sorted(out, key=lambda r: (r["resource_type"], r["account"], r["region"]))


def test_inventory_records_are_the_cli_records(nu_run, cli_records):
    got, _ = nu_run
    assert _stable(got["records"]) == _stable(cli_records)
    oks = {r["resource_type"]: r for r in cli_records if r["status"] == "ok" and r["items"]}
    assert {"efs.file_systems", "sqs.queues", "events.rules", "sns.topics", "iam.roles"} <= set(oks)
    assert oks["iam.roles"]["region"] == "global"
    (target,) = oks["efs.mount_targets"]["items"]  # a child type: its file system's ARN as its parent
    assert target["parent"] == oks["efs.file_systems"]["items"][0]["FileSystemArn"]
    assert got["efs_ok"] == sorted(
        r["resource_type"]
        for r in cli_records
        if r["resource_type"].startswith("efs.") and r["status"] == "ok"
    )


def test_a_users_catalog_and_tags_as_the_cli_takes_them(nu_run, cli_mine, overlays):
    got, _ = nu_run
    assert got["mine_catalog"] == ["sns.my_topics"]
    assert _stable(got["mine"], overlays[0]) == _stable(cli_mine, overlays[0])
    topics = [item for rec in cli_mine for item in rec["items"]]
    assert topics and all("tags" in item for item in topics)  # --tags reached the run
    assert (
        got["bad_catalog"]["msg"].startswith(overlays[1]) and "types.sns.x.items" in got["bad_catalog"]["msg"]
    )
    assert got["bad_catalog"]["label"] == f"--catalog {overlays[1]}"  # the label sits on the flag


def test_inventory_streams_and_first_stops_the_run(nu_run):
    """`| first 1` gets its record while the run goes on, and dropping the stream stops it: a run that
    collected its records first would have made all 17 calls."""
    got, counts = nu_run
    assert len(got["first"]) == 1
    assert 1 <= counts[LIST_TABLES] <= 5, counts


@pytest.mark.parametrize(
    ("slow", "in_flight"), [(LIST_TABLES, 2), ("GetCallerIdentity", 1)], ids=["fetch", "accounts"]
)
def test_interrupt_cancels_the_inventory(nu, slow, in_flight):
    """Ctrl-C (SIGINT to nu -> Signal Interrupt to the plugin), while the records stream or while the
    accounts are resolved (a call made before the first record): the calls in flight are cancelled, not
    retried, and no further call starts. Ordered by the server's in-flight count, not by sleeping."""
    with inventory_server(items=1) as server:
        server.control(targets={slow: {"latency": 30.0}})
        script = (
            f"aws inventory --endpoint-url {server.url} --types dynamodb.tables --regions {SLOW_REGIONS} "
            "-c 2 --cache-ttl 0sec | length"
        )
        proc = subprocess.Popen(
            [*nu.argv(), "-c", script],
            env={**nu.env, "GREENFETCH_NU_DEBUG": "1"},
            cwd=SCRIPTS,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: server.stats()["inflight"] >= in_flight, 20, f"{in_flight} calls in flight")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
        assert proc.returncode != 0
        assert "Signal Interrupt: cancelling 1 running call(s)" in err
        stats = wait_until(lambda: (s := server.stats())["inflight"] == 0 and s, 10, "nothing in flight")
        assert stats["per_target"][slow] == in_flight and stats["cancelled"] == in_flight
        assert stats["per_target"].get(LIST_TABLES, 0) == (in_flight if slow == LIST_TABLES else 0)
