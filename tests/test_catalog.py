"""The catalog's faces and rules without AWS: selection (``--types``/``--exclude-types``), the
``greenfetch catalog`` command, the overlay format's checks, the generated tier's cache, and the
engine's pagination through empty pages (a scripted SSM endpoint on 127.0.0.1).

The whole catalog comes from the cache file in the cache directory when there is one; the first
test to ask for every service builds it (~5 s).
"""

import json

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from greenfetch import Config, Engine
from greenfetch.cli import load_commands
from greenfetch.inventory import (
    CATALOG,
    Account,
    Catalog,
    InventoryError,
    catalog,
    load_overlay,
    resolve_types,
)
from greenfetch.inventory._fetch import Inventory
from greenfetch.inventory._generated import GeneratedTier
from greenfetch.inventory._overlay import parse_overlay, shipped_overlay
from greenfetch.testing import Reply, ScriptedServer, http_response

CORE = list(CATALOG)


def _names(types):
    return [t.name for t in types]


# -- selection ----------------------------------------------------------------------------------


def test_no_types_means_the_core_tier_in_its_order():
    assert _names(resolve_types(None)) == CORE == _names(resolve_types("core"))
    assert len(CORE) == 36


def test_all_is_every_type_but_the_denied():
    every = resolve_types("all")
    assert len(every) >= 1500 and set(CORE) <= set(_names(every))
    assert not any(t.denied for t in every) and len(set(_names(every))) == len(every)


def test_a_service_a_glob_and_a_comma_list():
    assert _names(resolve_types("efs")) == [
        "efs.access_points",
        "efs.file_systems",
        "efs.mount_targets",
        "efs.replication_configurations",
    ]
    ec2 = resolve_types("ec2.*")
    assert {t.service for t in ec2} == {"ec2"} and {"ec2.vpcs", "ec2.launch_templates"} <= set(_names(ec2))
    clusters = _names(resolve_types("*.clusters"))
    assert {"ecs.clusters", "eks.clusters", "rds.clusters", "emr.clusters", "dax.clusters"} <= set(clusters)
    mixed = _names(resolve_types("events.rules, acm.certificates,efs,ec2.vpcs"))
    assert (
        mixed[:2] == ["events.rules", "acm.certificates"]
        and "efs.file_systems" in mixed
        and mixed[-1] == "ec2.vpcs"
    )


def test_exclude_takes_the_same_forms():
    chosen = _names(resolve_types("ec2.*", "ec2.vpcs,ec2.i*,ec2.launch_templates"))
    assert "ec2.subnets" in chosen and not {"ec2.vpcs", "ec2.instances", "ec2.launch_templates"} & set(chosen)
    assert "iam.roles" not in _names(resolve_types("core", "iam"))
    with pytest.raises(InventoryError, match="removes every type"):
        resolve_types("efs", "efs.*")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ec2.vpc", r"unknown resource type 'ec2.vpc' \(did you mean ec2.vpcs"),
        ("ecc.vpcs", r"unknown resource type 'ecc.vpcs' \(did you mean ec2.vpcs"),
        ("efz", r"unknown resource type 'efz' \(did you mean efs"),
        ("ec2.nothing*", r"pattern 'ec2.nothing\*' matches no resource type"),
        (
            "ec2.instance_types",
            r"ec2.instance_types \(ec2.DescribeInstanceTypes\) is never called: aws-owned",
        ),
        ("sts", r"service 'sts' has no resource type greenfetch calls"),
        ("", r"no resource types given"),
    ],
)
def test_bad_names_say_what_would_be_valid(spec, message):
    with pytest.raises(InventoryError, match=message):
        resolve_types(spec)


def test_bad_exclusions_name_their_flag():
    with pytest.raises(InventoryError, match="unknown --exclude-types resource type 'ec2.vpc'"):
        resolve_types("ec2.*", "ec2.vpc")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from([*CORE, "ec2", "iam", "s3.*", "*.tables", "ec2.*_gateways", "core"]),
        min_size=1,
        max_size=5,
    ),
    st.lists(st.sampled_from([*CORE, "ec2.v*", "iam", "*.queues"]), max_size=3),
)
def test_selection_is_the_union_of_the_names_minus_the_exclusions(types, exclude):
    kinds = catalog()
    wanted = {t.name for token in types for t in kinds.select(token)}
    dropped = {t.name for token in exclude for t in kinds.select(token)}
    try:
        chosen = _names(kinds.select(types, exclude))
    except InventoryError:
        assert wanted <= dropped
        return
    assert len(chosen) == len(set(chosen)) and set(chosen) == wanted - dropped


def test_a_shard_resolves_its_names_one_service_at_a_time(tmp_path):
    """Workers get exact names; a name reads only its service (here: a catalog with no cache file)."""
    loads = []
    kinds = Catalog(shipped_overlay(), GeneratedTier(tmp_path, session=_CountingSession(loads)))
    assert _names(kinds.select(["efs.file_systems", "events.rules", "ec2.vpcs"])) == [
        "efs.file_systems",
        "events.rules",
        "ec2.vpcs",
    ]
    assert sorted({s for s, kind in loads if kind == "service-2"}) == ["efs", "events"]


# -- the generated tier's cache ------------------------------------------------------------------


class _CountingSession:
    """A botocore session whose loader knows three services and records every model it reads."""

    SERVICES = ["efs", "events", "sqs"]

    def __init__(self, loads):
        import botocore.session

        self.real = botocore.session.get_session().get_component("data_loader")
        self.loads = loads

    def get_component(self, name):
        return self

    def list_available_services(self, kind):
        return list(self.SERVICES)

    def load_service_model(self, service, kind):
        self.loads.append((service, kind))
        return self.real.load_service_model(service, kind)

    def load_data(self, name):
        return self.real.load_data(name)


def test_the_generated_tier_is_cached_per_botocore_version_and_rules(tmp_path):
    loads = []
    cold = GeneratedTier(tmp_path, session=_CountingSession(loads))
    assert cold.rows("efs") and not cold.path.exists()  # one service: derived alone, nothing written
    every = cold.all_rows()
    assert sorted(every) == _CountingSession.SERVICES and cold.path.exists()
    assert "botocore-" in cold.path.name
    loads.clear()
    warm = GeneratedTier(tmp_path, session=_CountingSession(loads))
    assert warm.all_rows() == every and warm.rows("events") == every["events"] and loads == []
    assert warm.services() == _CountingSession.SERVICES


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps(
            {"format": "greenfetch-generated-catalog", "botocore": "0.0.1", "rules": "x", "services": {}}
        ),
    ],
)
def test_a_corrupt_or_foreign_cache_file_is_a_miss(tmp_path, content):
    path = GeneratedTier(tmp_path).path
    path.parent.mkdir(parents=True)
    path.write_text(content)
    loads = []
    tier = GeneratedTier(tmp_path, session=_CountingSession(loads))
    assert [r["name"] for r in tier.rows("sqs")] == ["sqs.queues"] and ("sqs", "service-2") in loads


def test_an_unwritable_cache_directory_costs_time_not_a_failure(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    tier = GeneratedTier(blocker, session=_CountingSession([]))  # its "catalog" folder cannot be made
    assert sorted(tier.all_rows()) == _CountingSession.SERVICES


# -- the overlay format ----------------------------------------------------------------------------


def _overlay(**parts):
    return {"format": "greenfetch-catalog/1", **parts}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "an overlay is a JSON object"),
        ({"format": "v0"}, "this greenfetch reads 'greenfetch-catalog/1'"),
        (_overlay(typez={}), r"unknown top-level key\(s\) typez"),
        (
            _overlay(types={"Efs.Things": {"operation": "ListThings"}}),
            "types.Efs.Things: a type name is service.snake_noun",
        ),
        (_overlay(types={"efs.x": {"items": "A"}}), 'types.efs.x: "operation" is missing'),
        (
            _overlay(types={"efs.x": {"operation": "ListX", "scop": "global"}}),
            r"unknown key 'scop' \(did you mean scope\?\)",
        ),
        (
            _overlay(types={"efs.x": {"operation": "ListX", "scope": "world"}}),
            'types.efs.x.scope: "world" is not valid; use regional or global',
        ),
        (
            _overlay(types={"efs.x": {"operation": "ListX", "items": "A[?"}}),
            "types.efs.x.items: 'A\\[\\?' is not a JMESPath expression",
        ),
        (
            _overlay(types={"efs.x": {"operation": "ListX", "details": [{"operation": "GetX"}]}}),
            r"details\[0\]: missing params, into",
        ),
        (_overlay(deny={"efs": {"ListX": ""}}), "deny.efs.ListX: the reason must be a non-empty string"),
        (_overlay(deny={"efs": {"listx": "no"}}), "deny.efs.listx: not an operation name"),
        (
            _overlay(types={"efs.x": {"operation": "ListX"}}, deny={"efs": {"ListX": "slow: yes"}}),
            "keep one of them",
        ),
    ],
)
def test_a_bad_overlay_row_is_named(data, message):
    with pytest.raises(InventoryError, match=message):
        parse_overlay(data, source="mine.json")


def test_an_unreadable_overlay_file_is_one_line(tmp_path):
    with pytest.raises(InventoryError, match="catalog file .*missing.json' cannot be read"):
        load_overlay(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InventoryError, match="is not JSON"):
        load_overlay(tmp_path / "bad.json")


def test_an_overlay_adds_types_fixes_generated_ones_and_denies(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(
        json.dumps(
            _overlay(
                types={
                    "efs.mine": {
                        "operation": "DescribeFileSystems",
                        "params": {"CreationToken": "t"},
                        "volatile": ["SizeInBytes"],
                    },
                    "sqs.queue_urls": {
                        "tier": "core",
                        "operation": "ListQueues",
                        "items": "QueueUrls",
                        "id": None,
                    },
                },
                deny={"events": {"ListRules": "slow: too many rules here"}},
            )
        )
    )
    kinds = Catalog(load_overlay(path), GeneratedTier(tmp_path, session=_CountingSession([])))
    mine = kinds["efs.mine"]  # inherits items, id and ARN from the generated row; keeps its own params
    assert (mine.items, mine.id_field, mine.arn, mine.paginate, mine.tier) == (
        "FileSystems",
        "FileSystemArn",
        "FileSystemArn",
        True,
        "generated",
    )
    assert mine.params == {"CreationToken": "t"} and "efs.file_systems" not in kinds
    assert _names(kinds.core()) == ["sqs.queue_urls"] and kinds["sqs.queue_urls"].id_field is None
    rules = next(t for t in kinds.service("events") if t.operation == "ListRules")
    assert rules.denied and rules.deny_reason == "slow: too many rules here" and "events.rules" not in kinds


def test_a_fix_for_an_operation_botocore_does_not_list_is_shown_denied_not_raised(tmp_path):
    """A user's row fixing ListGone (not in this botocore) must not break every lookup in efs."""
    overlay = parse_overlay(
        _overlay(types={"efs.gone": {"operation": "ListGone", "params": {"A": 1}}}), source="mine.json"
    )
    kinds = Catalog(overlay, GeneratedTier(tmp_path, session=_CountingSession([])))
    assert "efs.file_systems" in kinds and "efs.gone" not in kinds
    gone = next(t for t in kinds.service("efs") if t.name == "efs.gone")
    assert gone.denied and "broken overlay row (mine.json): efs.ListGone is not a listing" in gone.deny_reason


def test_a_generated_name_taken_by_the_overlay_moves_to_its_verb():
    logs = {t.operation: t for t in catalog().service("logs")}
    assert logs["DescribeLogGroups"].name == "logs.log_groups" and logs["DescribeLogGroups"].tier == "core"
    assert logs["ListLogGroups"].name == "logs.log_groups_list" and logs["ListLogGroups"].denied
    assert catalog()["cloudformation.stacks"].operation == "DescribeStacks"
    assert catalog()["cloudformation.stacks_list"].operation == "ListStacks"


# -- greenfetch catalog ---------------------------------------------------------------------------


def _cli(*args):
    return CliRunner().invoke(load_commands(), ["catalog", *args])


def test_catalog_json_lists_every_row_with_its_columns():
    out = _cli("-o", "json")
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    live = [r for r in rows if r["tier"] != "denied"]
    assert len(live) >= 1500 and len({r["service"] for r in live}) >= 300
    assert {
        "name",
        "service",
        "operation",
        "scope",
        "items",
        "id_field",
        "resource_id",
        "tier",
        "deny_reason",
    } <= set(rows[0])
    assert [r["name"] for r in rows[:36]] == CORE and all(r["tier"] == "core" for r in rows[:36])
    denied = [r for r in rows if r["tier"] == "denied"]
    assert len(denied) > 500 and all(r["deny_reason"] for r in denied)
    efs = next(r for r in rows if r["name"] == "efs.file_systems")
    assert (efs["operation"], efs["items"], efs["id_field"], efs["scope"]) == (
        "DescribeFileSystems",
        "FileSystems",
        "FileSystemArn",
        "regional",
    )


def test_catalog_table_shows_denied_rows_only_with_all():
    plain, every = _cli("--service", "ec2"), _cli("--service", "ec2", "--all")
    assert plain.exit_code == every.exit_code == 0
    assert "ec2.instance_types" not in plain.stdout and "ec2.instance_types" in every.stdout
    assert "deny_reason" in every.stdout.splitlines()[0] and "aws-owned: instance types" in every.stdout
    assert "13 core" in plain.stderr and "denied not shown: --all" in plain.stderr


def test_catalog_counts_and_selection():
    counts = json.loads(_cli("--counts", "-o", "json").stdout)
    efs = next(c for c in counts if c["service"] == "efs")
    assert (efs["core"], efs["generated"], efs["denied"]) == (0, 4, 0)
    assert sum(c["core"] for c in counts) == 36
    picked = json.loads(_cli("--types", "*.clusters", "-o", "json").stdout)
    assert {r["name"] for r in picked} >= {"ecs.clusters", "emr.clusters"} and all(
        r["name"].endswith(".clusters") for r in picked
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "efz"], "--service 'efz' is not a service greenfetch knows (did you mean efs"),
        (["--types", "ec2.vpc"], "did you mean ec2.vpcs"),
    ],
)
def test_catalog_bad_input_exits_2(args, message):
    out = _cli(*args)
    assert out.exit_code == 2 and message in out.stderr and "Traceback" not in out.output


def test_inventory_bad_exclusion_exits_2_before_any_call():
    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            "http://127.0.0.1:9",
            "inventory",
            "--accounts",
            "111111111111",
            "--types",
            "efs",
            "--exclude-types",
            "efs.nope",
        ],
    )
    assert out.exit_code == 2 and "unknown --exclude-types resource type 'efs.nope'" in out.stderr


# -- pagination ------------------------------------------------------------------------------------

JSON = [("Content-Type", "application/x-amz-json-1.1")]
CALLER = (
    '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
    "<Arn>arn:aws:iam::111111111111:user/t</Arn><UserId>AIDA</UserId><Account>111111111111</Account>"
    "</GetCallerIdentityResult></GetCallerIdentityResponse>"
)


def _parameters(pages):
    """An SSM endpoint answering DescribeParameters from ``pages`` (NextToken -> page); STS's
    GetCallerIdentity (the run checks whose credentials it holds) names account 111111111111."""

    def answer(seen):
        if seen.body.startswith(b"Action=GetCallerIdentity"):
            return Reply(http_response(200, CALLER, [("Content-Type", "text/xml")]))
        token = json.loads(seen.body or b"{}").get("NextToken")
        return Reply(http_response(200, json.dumps(pages[token]), JSON))

    return ScriptedServer(answer)


def _fetch(url):
    engine = Engine(
        Config.resolve({"endpoint_url": url, "region": "us-east-1", "max_attempts": 1}, environ={})
    )
    try:
        inventory = Inventory(
            engine,
            [Account("111111111111")],
            [catalog()["ssm.parameters"]],
            regions=["us-east-1"],
            filter_offered=False,
        )
        return list(inventory.run())
    finally:
        engine.close()


def test_tokens_on_empty_pages_are_followed_to_the_last_page():
    """SSM's DescribeParameters may answer an empty page with a NextToken: the items after it count."""
    server = _parameters(
        {
            None: {"Parameters": [], "NextToken": "t1"},
            "t1": {"Parameters": [], "NextToken": "t2"},
            "t2": {
                "Parameters": [{"Name": "db", "ARN": "arn:aws:ssm:us-east-1:1:parameter/db"}],
                "NextToken": "t3",
            },
            "t3": {"Parameters": []},
        }
    )
    with server as url:
        (record,) = _fetch(url)
    assert record["status"] == "ok" and [p["Name"] for p in record["items"]] == ["db"]
    assert len([s for s in server.seen if b"DescribeParameters" in s.head]) == 4


@pytest.mark.timeout(30)
def test_a_token_that_comes_back_unchanged_ends_the_fetch_with_an_error():
    server = _parameters(
        {None: {"Parameters": [], "NextToken": "t1"}, "t1": {"Parameters": [], "NextToken": "t1"}}
    )
    with server as url:
        (record,) = _fetch(url)
    assert record["status"] == "error" and "same next token" in record["error"]
    assert len([s for s in server.seen if b"DescribeParameters" in s.head]) == 2
