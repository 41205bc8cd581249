"""The generated catalog against moto's server over HTTP: resources created in 26 services the core
types do not cover come back through ``greenfetch inventory --types ...`` with the right ids, and the
traps (moto's 1,301 public AMIs, its 1,582 AWS managed IAM policies) never reach a record.
moto's backends load on first use (0.3-2 s a service), which is most of this module's time.

The traps need a moto server of their own (``traps``): the session's server loads neither the AWS
managed policies (MOTO_IAM_LOAD_MANAGED_POLICIES) nor the public AMIs (conftest's SESSION_MOTO).
Account ids start with 5553.
"""

import json

import pytest
from click.testing import CliRunner

from greenfetch import Config, Engine, Request
from greenfetch.cli import load_commands
from greenfetch.inventory import assume_role, catalog
from greenfetch.testing import MotoServer

ACCOUNT, TRAPS, ROLE = "555300000001", "555300000002", "Reader"
REGION = "us-east-1"
STATE_MACHINE = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
LEXICON = (
    '<?xml version="1.0" encoding="UTF-8"?><lexicon version="1.0" xmlns="http://www.w3.org/2005/01/'
    'pronunciation-lexicon" alphabet="ipa" xml:lang="en-US"><lexeme><grapheme>W3C</grapheme>'
    "<alias>World Wide Web Consortium</alias></lexeme></lexicon>"
)


@pytest.fixture(scope="module")
def moto(moto_server):
    return moto_server.url


def _engine(url):
    return Engine(
        Config.resolve(
            {"endpoint_url": url, "region": REGION, "concurrency": 32, "max_attempts": 1}, environ={}
        )
    )


@pytest.fixture(scope="module")
def traps():
    """The module's own moto server, with both traps loaded: 1,582 AWS managed policies, 1,301 public
    AMIs. Both trap tests use it, each in the TRAPS account, asserting only on what it made itself."""
    settings = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "MOTO_EC2_LOAD_DEFAULT_AMIS": "true"}
    with MotoServer(settings=settings) as url:
        yield url


@pytest.fixture(scope="module")
def engine(moto):
    eng = _engine(moto)
    yield eng
    eng.close()


def _caller(engine, account):
    creds = assume_role(engine, account, ROLE)

    def call(service, operation, params):
        result = engine.execute(Request(service, operation, params, region=REGION, credentials=creds))
        assert result.ok, result.error
        return result.result

    return call


def _seed(call):
    """One resource in each of 26 services outside the core types; type name -> the id it must get."""
    role = call("iam", "CreateRole", {"RoleName": "svc", "AssumeRolePolicyDocument": "{}"})["Role"]["Arn"]
    call("s3", "CreateBucket", {"Bucket": "trail-logs-5553"})
    want = {
        "efs.file_systems": call("efs", "CreateFileSystem", {"CreationToken": "fs1"})["FileSystemArn"],
        "events.rules": call("events", "PutRule", {"Name": "nightly", "ScheduleExpression": "rate(1 day)"})[
            "RuleArn"
        ],
        "acm.certificates": call("acm", "RequestCertificate", {"DomainName": "example.com"})[
            "CertificateArn"
        ],
        "stepfunctions.state_machines": call(
            "stepfunctions",
            "CreateStateMachine",
            {"name": "flow", "definition": STATE_MACHINE, "roleArn": role},
        )["stateMachineArn"],
        "cognito-idp.user_pools": call("cognito-idp", "CreateUserPool", {"PoolName": "users"})["UserPool"][
            "Id"
        ],
        "cognito-identity.identity_pools": call(
            "cognito-identity",
            "CreateIdentityPool",
            {"IdentityPoolName": "ids", "AllowUnauthenticatedIdentities": False},
        )["IdentityPoolId"],
        "apigateway.rest_apis": call("apigateway", "CreateRestApi", {"name": "api"})["id"],
        "apigatewayv2.apis": call("apigatewayv2", "CreateApi", {"Name": "http", "ProtocolType": "HTTP"})[
            "ApiId"
        ],
        "backup.backup_vaults": call("backup", "CreateBackupVault", {"BackupVaultName": "vault"})[
            "BackupVaultArn"
        ],
        "elasticbeanstalk.applications": call(
            "elasticbeanstalk", "CreateApplication", {"ApplicationName": "webapp"}
        )["Application"]["ApplicationArn"],
        "appsync.graphql_apis": call(
            "appsync", "CreateGraphqlApi", {"name": "gql", "authenticationType": "API_KEY"}
        )["graphqlApi"]["arn"],
        "iot.things": call("iot", "CreateThing", {"thingName": "sensor"})["thingArn"],
        "cloudtrail.trails": call(
            "cloudtrail", "CreateTrail", {"Name": "audit", "S3BucketName": "trail-logs-5553"}
        )["TrailARN"],
        "guardduty.detectors": call("guardduty", "CreateDetector", {"Enable": True})["DetectorId"],
        "amp.workspaces": call("amp", "CreateWorkspace", {"alias": "prom"})["arn"],
        "mediastore.containers": call("mediastore", "CreateContainer", {"ContainerName": "media"})[
            "Container"
        ]["ARN"],
        "resource-groups.groups": call(
            "resource-groups",
            "CreateGroup",
            {
                "Name": "team",
                "ResourceQuery": {
                    "Type": "TAG_FILTERS_1_0",
                    "Query": json.dumps(
                        {
                            "ResourceTypeFilters": ["AWS::AllSupported"],
                            "TagFilters": [{"Key": "team", "Values": ["a"]}],
                        }
                    ),
                },
            },
        )["Group"]["GroupArn"],
        "scheduler.schedule_groups": call("scheduler", "CreateScheduleGroup", {"Name": "jobs"})[
            "ScheduleGroupArn"
        ],
        "emr.clusters": call(
            "emr",
            "RunJobFlow",
            {
                "Name": "spark",
                "ReleaseLabel": "emr-6.10.0",
                "JobFlowRole": "EMR_EC2_DefaultRole",
                "ServiceRole": "EMR_DefaultRole",
                "Instances": {
                    "MasterInstanceType": "m5.xlarge",
                    "InstanceCount": 1,
                    "KeepJobFlowAliveWhenNoSteps": True,
                },
            },
        )["ClusterArn"],
    }
    # the account id as a parameter: the catalog's {account}, filled per account by the fetch
    source = call(
        "quicksight",
        "CreateDataSource",
        {"AwsAccountId": ACCOUNT, "DataSourceId": "ds1", "Name": "ds1", "Type": "ATHENA"},
    )["Arn"]
    call(
        "budgets",
        "CreateBudget",
        {
            "AccountId": ACCOUNT,
            "Budget": {
                "BudgetName": "monthly",
                "BudgetLimit": {"Amount": "10", "Unit": "USD"},
                "TimeUnit": "MONTHLY",
                "BudgetType": "COST",
            },
        },
    )
    call("glue", "CreateDatabase", {"DatabaseInput": {"Name": "lake"}})
    call("athena", "CreateWorkGroup", {"Name": "analysts"})
    call("polly", "PutLexicon", {"Name": "lex1", "Content": LEXICON})
    call("sesv2", "CreateEmailIdentity", {"EmailIdentity": "example.org"})
    call(
        "firehose",
        "CreateDeliveryStream",
        {
            "DeliveryStreamName": "fh",
            "ExtendedS3DestinationConfiguration": {
                "RoleARN": role,
                "BucketARN": "arn:aws:s3:::trail-logs-5553",
            },
        },
    )
    namespace = call("servicediscovery", "CreateHttpNamespace", {"Name": "ns"})["OperationId"]
    want.update(
        {
            "quicksight.data_sources": source,
            "budgets.budgets": "monthly",
            "glue.databases": "lake",
            "athena.work_groups": "analysts",
            "polly.lexicons": "lex1",
            "sesv2.email_identities": "example.org",
            "firehose.delivery_streams": "fh",
        }
    )
    assert namespace
    return want


def _inventory(moto, account, types):
    out = CliRunner().invoke(
        load_commands(),
        [
            "--endpoint-url",
            moto,
            "--region",
            REGION,
            "--max-attempts",
            "1",
            "inventory",
            "--accounts",
            account,
            "--role-name",
            ROLE,
            "--regions",
            REGION,
            "--types",
            types,
            "--cache-ttl",
            "0",
            "--no-progress",
        ],
    )
    return out, [json.loads(line) for line in out.stdout.splitlines()]


def test_two_dozen_services_beyond_the_core_come_back_with_their_ids(engine, moto):
    want = _seed(_caller(engine, ACCOUNT))
    services = {name.split(".")[0] for name in want}
    kinds = catalog()
    assert len(services) >= 26 and not services & {t.service for t in kinds.core()}
    out, records = _inventory(moto, ACCOUNT, ",".join([*want, "servicediscovery"]))
    assert out.exit_code == 0, out.output
    got = {
        r["resource_type"]: [kinds[r["resource_type"]].resource_id(i) for i in r["items"]] for r in records
    }
    assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"]
    for name, rid in want.items():
        found = got[name]
        assert rid in found, (name, rid, found)
    assert {r["region"] for r in records if r["resource_type"] == "iot.things"} == {REGION}
    assert got["servicediscovery.namespaces"][0].startswith("arn:aws:servicediscovery:")


def test_public_amis_and_aws_owned_documents_never_reach_a_record(traps):
    """moto answers DescribeImages with 1,301 public AMIs: ec2.images keeps the account's own. (moto
    ignores DescribeSnapshots' OwnerIds, so the snapshot trap is checked on the catalog row only.)"""
    engine = _engine(traps)
    try:
        call = _caller(engine, TRAPS)
        assert len(call("ec2", "DescribeImages", {})["Images"]) > 1000
        instance = call("ec2", "RunInstances", {"ImageId": "ami-12c6146b", "MinCount": 1, "MaxCount": 1})[
            "Instances"
        ][0]
        image = call("ec2", "CreateImage", {"InstanceId": instance["InstanceId"], "Name": "mine"})["ImageId"]
        document = call(
            "ssm",
            "CreateDocument",
            {
                "Name": "own-doc",
                "DocumentType": "Command",
                "Content": json.dumps(
                    {
                        "schemaVersion": "2.2",
                        "description": "d",
                        "mainSteps": [
                            {"action": "aws:runShellScript", "name": "s", "inputs": {"runCommand": ["echo"]}}
                        ],
                    }
                ),
            },
        )
    finally:
        engine.close()
    out, records = _inventory(traps, TRAPS, "ec2.images,ssm.documents")
    assert out.exit_code == 0, out.output
    items = {r["resource_type"]: r["items"] for r in records}
    assert [i["ImageId"] for i in items["ec2.images"]] == [image]
    assert [i["Name"] for i in items["ssm.documents"]] == [document["DocumentDescription"]["Name"]]
    assert catalog()["ec2.snapshots"].params == {"OwnerIds": ["self"]}


def test_aws_managed_policies_never_reach_a_record(traps):
    eng = _engine(traps)
    try:
        call = _caller(eng, TRAPS)
        first = call("iam", "ListPolicies", {"MaxItems": 1})
        assert first["IsTruncated"] and first["Policies"][0]["Arn"].startswith("arn:aws:iam::aws:policy/")
        policy = call(
            "iam",
            "CreatePolicy",
            {
                "PolicyName": "own",
                "PolicyDocument": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                    }
                ),
            },
        )
        out, records = _inventory(traps, TRAPS, "iam.policies,iam.groups,iam.roles")
    finally:
        eng.close()
    assert out.exit_code == 0, out.output
    items = {r["resource_type"]: r["items"] for r in records}
    assert [i["Arn"] for i in items["iam.policies"]] == [policy["Policy"]["Arn"]]
    assert set(items) == {"iam.policies", "iam.groups", "iam.roles"}
