"""The whole catalog against botocore's own models: every row of every tier is callable as written.

botocore's ~430 service models are read once for the session (~5 s); the generated tier is derived
from them in memory (the same rules as ``greenfetch catalog``, without its cache file). Each row is
checked against its model: the operation exists, its required input is filled, every parameter is
one the operation takes (enums from the model), the items path lands on a list in a synthetic
response built from the output shape, the id and ARN fields are members of the item shape. The
reviewed list (tests/data/catalog_reviewed.txt) makes a botocore upgrade that adds or drops a
listing fail until someone looks at it.
"""

import os
import re
from pathlib import Path

import botocore.session
import jmespath
import pytest
from botocore.exceptions import DataNotFoundError

from greenfetch.inventory import Catalog, InventoryError
from greenfetch.inventory._generated import GeneratedTier, candidate, derive_all, derive_service
from greenfetch.inventory._overlay import shipped_overlay

REVIEWED = Path(__file__).parent / "data" / "catalog_reviewed.txt"
CORE = Path(__file__).parent / "data" / "catalog_core_types.json"
_FILTER = re.compile(r"\[\?([^\]]*)\]")
_WORD = re.compile(r"'[^']*'|`[^`]*`|\b([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()")


@pytest.fixture(scope="session")
def models():
    loader = botocore.session.get_session().get_component("data_loader")
    services = loader.list_available_services("service-2")
    raw = {s: loader.load_service_model(s, "service-2") for s in services}
    pages = {}
    for s in services:
        try:
            pages[s] = loader.load_service_model(s, "paginators-1").get("pagination", {})
        except DataNotFoundError:
            pages[s] = {}
    return raw, pages, loader.load_data("endpoints")


@pytest.fixture(scope="session")
def kinds(models):
    raw, pages, endpoints = models
    return Catalog(shipped_overlay(), GeneratedTier(rows=derive_all(raw, pages, endpoints)))


def _example(shapes, name, depth=0):
    """A response with every member set (one element per list), deep enough for items paths."""
    shape = shapes[name]
    kind = shape["type"]
    if kind == "structure":
        return (
            {}
            if depth > 5
            else {m: _example(shapes, s["shape"], depth + 1) for m, s in shape.get("members", {}).items()}
        )
    if kind == "list":
        return [_example(shapes, shape["member"]["shape"], depth + 1)]
    if kind == "map":
        return {}
    if kind in ("integer", "long", "float", "double"):
        return 1
    if kind == "boolean":
        return True
    return shape.get("enum", ["x"])[0]


def _check_value(shapes, shape_name, value, where):
    shape = shapes[shape_name]
    kind = shape["type"]
    if kind == "structure":
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in shape["members"], f"{where}: {key!r} is not a member of {shape_name}"
            _check_value(shapes, shape["members"][key]["shape"], item, f"{where}.{key}")
    elif kind == "list":
        assert isinstance(value, list), where
        for item in value:
            _check_value(shapes, shape["member"]["shape"], item, f"{where}[]")
    elif "enum" in shape:
        assert value in shape["enum"], f"{where}: {value!r} is not one of {shape['enum']}"


def _problems(row, model):
    """What is wrong with one catalog row against its service's model (empty: nothing)."""
    ops, shapes = model["operations"], model["shapes"]
    if row.operation not in ops:
        return [f"{row.service} has no operation {row.operation}"]
    spec, out = ops[row.operation], []
    inp = shapes[spec["input"]["shape"]] if "input" in spec else {"members": {}}
    missing = set(inp.get("required", ())) - set(row.params) - set(row.each)
    if missing:
        out.append(f"required input not filled: {sorted(missing)}")
    for param in row.each:
        if param not in inp.get("members", {}):
            out.append(f"each.{param} is not a parameter of {row.operation}")
    try:
        _check_value(shapes, spec["input"]["shape"], dict(row.params), "params") if row.params else None
    except AssertionError as exc:
        out.append(str(exc))
    if "output" not in spec:
        return out + ["no output"]
    found = jmespath.search(_FILTER.sub("[]", row.items), _example(shapes, spec["output"]["shape"]))
    if not isinstance(found, list) or not found:
        return out + [f"items {row.items!r} finds no list in the output shape"]
    item = found[0]
    if row.id_field is None:
        if isinstance(item, dict):
            out.append("id is the item itself, but an item is a structure")
    elif isinstance(item, dict):
        for field in filter(None, (row.id_field, row.arn)):
            if field not in item:
                out.append(f"{field!r} is not a member of the item ({sorted(item)[:8]}...)")
        for condition in _FILTER.findall(row.items):
            for name in filter(None, _WORD.findall(condition)):
                if name not in item and name not in ("null", "true", "false"):
                    out.append(f"the filter names {name!r}, not a member of the item")
        for path in row.volatile:
            if path.split(".")[0] not in item:
                out.append(f"volatile {path!r} is not a member of the item")
    elif row.id_field:
        out.append(f"id {row.id_field!r} given, but an item is not a structure")
    for detail in row.details:
        if detail.operation not in _all_ops(row.service, model):
            out.append(f"detail step {detail.operation} is not an operation of {row.service}")
    if row.parent_type is not None:
        out += _parent_problems(row, model)
    return out


def _parent_problems(row, model):
    """A child type's ``each``, evaluated on an example item of its parent: every parameter gets a value."""
    parent = row.parent_type
    spec = model["operations"][parent.operation]
    found = jmespath.search(
        _FILTER.sub("[]", parent.items), _example(model["shapes"], spec["output"]["shape"])
    )
    item = found[0]
    return [
        f"each.{param}: {expression!r} finds nothing in a {parent.name} item"
        for param, expression in row.each.items()
        if jmespath.search(expression, item) is None
    ]


def _all_ops(service, model):
    return set(model["operations"])


def test_every_row_of_every_tier_is_callable_as_written(models, kinds):
    raw = models[0]
    rows = kinds.rows()
    assert len(rows) >= 2000
    assert not [t.name for t in rows if (t.deny_reason or "").startswith("broken overlay row")]
    bad = {
        f"{t.name} ({t.service}.{t.operation}, {t.tier})": p
        for t in rows
        if (p := _problems(t, raw[t.service]))
    }
    assert not bad, f"{len(bad)} rows do not match botocore's models:\n" + "\n".join(
        f"{k}: {v}" for k, v in bad.items()
    )


def test_generated_rows_follow_the_rules(models, kinds):
    raw, pages, _ = models
    overlaid = {(e.service, e.operation) for e in kinds.overlay.types}
    for t in kinds.rows():
        paginator = pages[t.service].get(t.operation)
        assert not t.paginate or paginator, (
            f"{t.name}: paginate, but botocore has no paginator for {t.operation}"
        )
        if t.tier == "core" or (t.service, t.operation) in overlaid:
            continue
        assert t.paginate == bool(paginator and "result_key" in paginator), t.name
        if t.paginate:
            keys = paginator["result_key"]
            assert t.items == (keys if isinstance(keys, str) else keys[0]), t.name
        assert re.fullmatch(r"[a-z0-9-]+\.[a-z0-9_]+", t.name), t.name
        assert t.operation.startswith(("List", "Describe", "Get")), t.name


def test_child_types_have_their_parent_and_fill_its_parameters(kinds):
    children = {t.name: t.parent for t in kinds.rows() if t.parent is not None}
    assert children == {
        "ecs.services": "ecs.clusters",
        "ecs.tasks": "ecs.clusters",
        "ecs.container_instances": "ecs.clusters",
        "iam.access_keys": "iam.users",
        "iam.mfa_devices": "iam.users",
        "iam.ssh_public_keys": "iam.users",
        "iam.service_specific_credentials": "iam.users",
        "iam.signing_certificates": "iam.users",
        "elbv2.listeners": "elbv2.load_balancers",
        "elbv2.rules": "elbv2.listeners",
        "efs.mount_targets": "efs.file_systems",
        "s3vectors.indexes": "s3vectors.vector_buckets",
        "iam.attached_role_policies": "iam.roles",
        "iam.attached_user_policies": "iam.users",
        "iam.attached_group_policies": "iam.groups",
        "iam.role_policies": "iam.roles",
        "iam.user_policies": "iam.users",
        "cloudformation.stack_resources": "cloudformation.stacks",
    }
    assert all(kinds[name].parent_type is not None for name in children)


def test_names_are_unique_and_every_name_resolves_to_its_own_row(kinds):
    rows = kinds.rows()
    names = [t.name for t in rows]
    assert len(names) == len(set(names))
    for t in rows[::37]:
        assert kinds.service(t.service) and t in kinds.service(t.service)
        if not t.denied:
            assert kinds[t.name] == t


def test_the_deny_list_and_fixes_name_operations_the_rules_would_list(models, kinds):
    """A deny entry for an operation that needs input (or no longer exists) is dead weight: the
    rules never list it. Every entry must be a live candidate, and carry a reason."""
    raw, pages, _ = models
    overlay = kinds.overlay
    stale = []
    for service, ops in overlay.deny.items():
        assert service in raw, f"deny names service {service!r}, which botocore does not have"
        for op, reason in ops.items():
            assert reason.split(":")[0] in (
                "aws-owned",
                "history",
                "settings",
                "needs input",
                "not a resource",
                "duplicate",
                "retired",
                "special endpoint",
                "costs money",
                "slow",
            ), (service, op, reason)
            if op == "*":
                continue
            spec = raw[service]["operations"].get(op)
            ok = spec is not None and candidate(op, spec, raw[service]["shapes"], pages[service].get(op))[0]
            if not ok or not any(t.operation == op and t.denied for t in kinds.service(service)):
                stale.append(f"{service}.{op}")
    for entry in overlay.types:
        assert entry.operation in raw[entry.service]["operations"], entry.name
    assert not stale, f"deny entries the rules never list (remove them): {stale}"


def test_todays_36_core_types_are_unchanged(kinds):
    import dataclasses
    import json

    frozen = json.loads(CORE.read_text())
    core = {t.name: t for t in kinds.core()}
    assert list(core) == list(frozen) or set(core) == set(frozen)
    for name, fields in frozen.items():
        now = json.loads(json.dumps(dataclasses.asdict(core[name]), default=list))
        now.pop("tier"), now.pop("deny_reason")
        for later in (
            "parent",
            "each",
            "parent_type",
            "id_per_parent",
        ):  # child types came later; a core type has none
            assert not now.pop(later), (name, later)
        for step in (
            now.get("details") or []
        ):  # detail steps gained `paginate` later; False is the old behaviour
            if step.get("paginate") is False:
                del step["paginate"]
        assert now == fields, name


def test_the_traps_are_filtered_or_denied(kinds):
    """Public AMIs and snapshots, AWS-managed policies and AWS-owned documents never reach a record."""
    assert kinds["ec2.images"].params == {"Owners": ["self"]}
    assert kinds["ec2.snapshots"].params == {"OwnerIds": ["self"]}
    assert kinds["ec2.fpga_images"].params == {"Owners": ["self"]}
    assert kinds["iam.policies"].params == {"Scope": "Local"}
    assert kinds["ssm.documents"].params == {"Filters": [{"Key": "Owner", "Values": ["Self"]}]}
    assert kinds["ssm.patch_baselines"].params["Filters"][0]["Values"] == ["Self"]
    by_op = {(t.service, t.operation): t for t in kinds.rows()}
    for key in [
        ("ec2", "DescribeInstanceTypes"),
        ("ec2", "DescribeSpotPriceHistory"),
        ("ssm", "DescribeAvailablePatches"),
        ("rds", "DescribeDBEngineVersions"),
        ("ce", "GetAnomalyMonitors"),
        ("cloudwatch", "ListMetrics"),
        ("ec2", "DescribeVpcEndpointServices"),
        ("ec2", "DescribePrefixLists"),
    ]:
        assert by_op[key].denied and by_op[key].deny_reason, key
    with pytest.raises(InventoryError, match="never called: aws-owned"):
        kinds.select("ec2.instance_types")
    stacks = kinds["cloudformation.stacks_list"].params["StackStatusFilter"]
    assert "DELETE_COMPLETE" not in stacks and len(stacks) == 22


def test_live_state_filters_cover_every_live_state_botocore_knows(models, kinds):
    """When botocore adds a stack or cluster state, the filter must be looked at again."""
    shapes = models[0]["cloudformation"]["shapes"]
    statuses = set(shapes["StackStatus"]["enum"])
    assert set(kinds["cloudformation.stacks_list"].params["StackStatusFilter"]) == statuses - {
        "DELETE_COMPLETE"
    }
    states = set(models[0]["emr"]["shapes"]["ClusterState"]["enum"])
    assert set(kinds["emr.clusters"].params["ClusterStates"]) == states - {
        "TERMINATED",
        "TERMINATED_WITH_ERRORS",
    }


def test_global_services_are_called_once_in_their_signing_region(kinds):
    where = {t.name: (t.scope, t.api_region) for t in kinds.rows()}
    assert where["iam.groups"] == ("global", "us-east-1")
    assert where["organizations.accounts"] == ("global", "us-east-1")
    assert where["route53.health_checks"] == ("global", "us-east-1")
    assert where["cloudfront.distributions"] == ("global", "us-east-1")
    assert where["networkmanager.global_networks"] == ("global", "us-west-2")
    assert where["efs.file_systems"][0] == "regional" and where["s3.directory_buckets"][0] == "regional"


def test_the_catalog_meets_its_size(kinds):
    rows = [t for t in kinds.rows() if not t.denied]
    assert len(rows) >= 1500 and len({t.service for t in rows}) >= 300
    assert kinds["efs.file_systems"].operation == "DescribeFileSystems"
    assert kinds["events.rules"].operation == "ListRules"
    assert kinds["acm.certificates"].operation == "ListCertificates"


def test_every_listing_was_reviewed(kinds):
    """The rows the rules alone decide (generated, no overlay entry), against the reviewed list. A
    botocore upgrade that adds a listing fails here until someone decides about it."""
    import botocore

    overlaid = {(e.service, e.operation) for e in kinds.overlay.types}
    now = sorted(
        f"{t.service} {t.operation} {t.name}"
        for t in kinds.rows()
        if t.tier == "generated" and (t.service, t.operation) not in overlaid
    )
    header = f"# botocore {botocore.__version__}: listings the generation rules decide alone (service, operation, name)\n"
    if os.environ.get("ACCEPT_CATALOG") == "1":
        REVIEWED.write_text(header + "\n".join(now) + "\n")
    reviewed = [line for line in REVIEWED.read_text().splitlines() if line and not line.startswith("#")]
    added, dropped = sorted(set(now) - set(reviewed)), sorted(set(reviewed) - set(now))
    assert not added and not dropped, (
        f"botocore {botocore.__version__} changes the generated catalog: {len(added)} new listing(s) "
        f"{added[:40]}, {len(dropped)} gone {dropped[:40]}. For each new one, look at its rows "
        "(greenfetch catalog --service S) and decide: deny it with a reason or fix it in "
        "greenfetch/inventory/catalog.json, or accept what the rules made; then rewrite the list with "
        "ACCEPT_CATALOG=1 python -m pytest tests/test_catalog_models.py -k reviewed"
    )


def test_deriving_one_service_needs_only_its_model(models):
    raw, pages, endpoints = models
    rows = derive_service("efs", raw["efs"], pages["efs"], endpoints)
    assert [r["name"] for r in rows] == [
        "efs.access_points",
        "efs.file_systems",
        "efs.mount_targets",
        "efs.replication_configurations",
    ]
    fs = next(r for r in rows if r["name"] == "efs.file_systems")
    assert (fs["items"], fs["id"], fs["arn"], fs["paginate"]) == (
        "FileSystems",
        "FileSystemArn",
        "FileSystemArn",
        True,
    )


@pytest.mark.parametrize(
    ("service", "operation", "id_field", "arn"),
    [
        ("ec2", "DescribeImages", "ImageId", None),  # a naive "first *Id" picks SourceInstanceId
        ("ec2", "DescribeSnapshots", "SnapshotId", None),  # a naive "first *Arn" picks OutpostArn
        ("ec2", "DescribeLaunchTemplates", "LaunchTemplateId", None),  # Id before Name
        ("ec2", "DescribeSubnets", "SubnetArn", "SubnetArn"),  # the ARN is the id where the item has one
        ("redshift", "DescribeClusters", "ClusterIdentifier", None),
        ("ecs", "ListClusters", None, None),  # a list of strings: the item is its id
        ("events", "ListRules", "Arn", "Arn"),
        ("ssm", "DescribeParameters", "ARN", "ARN"),  # not KeyId
    ],
)
def test_ids_follow_the_resource_noun(models, service, operation, id_field, arn):
    raw, pages, endpoints = models
    row = next(
        r
        for r in derive_service(service, raw[service], pages[service], endpoints)
        if r["operation"] == operation
    )
    assert (row["id"], row["arn"]) == (id_field, arn)
