"""One resource of every catalog type (SSM parameters aside) in one moto account and region, through
the engine: what ``tests/test_diff.py`` inventories to check each type's ``resource_id``."""

import io
import json
import zipfile

from greenfetch import Request
from greenfetch.inventory import assume_role

ROLE = "EveryTypeReader"
_AMI = "ami-12c6146b"  # one of moto's built-in images
_TEMPLATE = json.dumps(
    {"Resources": {"Q": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "cfn-q"}}}}
)


def _zip():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return 1\n")
    return buf.getvalue()


def caller(engine, account, region="us-east-1"):
    """``call(service, operation, params)`` in the account (its role assumed), asserting success."""
    creds = assume_role(engine, account, ROLE)
    assert creds is not None

    def call(service, operation, params, where=region):
        result = engine.execute(Request(service, operation, params, region=where, credentials=creds))
        assert result.ok, result.error
        return result.result

    return call


def seed_every_type(engine, account, region="us-east-1"):
    """Returns a caller bound to the account (for changes between runs)."""
    call = caller(engine, account, region)
    vpc = call("ec2", "CreateVpc", {"CidrBlock": "10.30.0.0/16"})["Vpc"]["VpcId"]
    subnets = [
        call(
            "ec2",
            "CreateSubnet",
            {"VpcId": vpc, "CidrBlock": f"10.30.{n}.0/24", "AvailabilityZone": f"{region}{az}"},
        )["Subnet"]["SubnetId"]
        for n, az in ((1, "a"), (2, "b"))
    ]
    group = call("ec2", "CreateSecurityGroup", {"GroupName": "every", "Description": "d", "VpcId": vpc})[
        "GroupId"
    ]
    call(
        "ec2",
        "AuthorizeSecurityGroupIngress",
        {
            "GroupId": group,
            "IpPermissions": [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        },
    )
    instance = call(
        "ec2",
        "RunInstances",
        {
            "ImageId": _AMI,
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
            "SubnetId": subnets[0],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "data"}]}],
        },
    )["Instances"][0]["InstanceId"]
    volume = call("ec2", "CreateVolume", {"AvailabilityZone": f"{region}a", "Size": 1})["VolumeId"]
    call("ec2", "CreateSnapshot", {"VolumeId": volume})
    call("ec2", "CreateImage", {"InstanceId": instance, "Name": "every-image"})
    call("ec2", "CreateKeyPair", {"KeyName": "every-key"})
    gateway = call("ec2", "CreateInternetGateway", {})["InternetGateway"]["InternetGatewayId"]
    call("ec2", "AttachInternetGateway", {"InternetGatewayId": gateway, "VpcId": vpc})
    allocation = call("ec2", "AllocateAddress", {"Domain": "vpc"})["AllocationId"]
    call("ec2", "CreateNatGateway", {"SubnetId": subnets[0], "AllocationId": allocation})
    call("ec2", "CreateRouteTable", {"VpcId": vpc})
    call("ec2", "CreateNetworkInterface", {"SubnetId": subnets[1]})
    call("s3", "CreateBucket", {"Bucket": f"every-type-{account}"})
    call("s3", "CreateBucket", {"Bucket": f"every-public-{account}"})
    call(
        "s3",
        "PutBucketPolicy",
        {
            "Bucket": f"every-public-{account}",
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::every-public-{account}/*",
                        }
                    ],
                }
            ),
        },
    )
    role = call("iam", "CreateRole", {"RoleName": "every-fn", "AssumeRolePolicyDocument": "{}"})["Role"][
        "Arn"
    ]
    call("iam", "CreateUser", {"UserName": "every-user"})
    call(
        "iam",
        "CreatePolicy",
        {
            "PolicyName": "every-policy",
            "PolicyDocument": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
                }
            ),
        },
    )
    call(
        "lambda",
        "CreateFunction",
        {
            "FunctionName": "every-fn",
            "Runtime": "python3.12",
            "Role": role,
            "Handler": "app.handler",
            "Code": {"ZipFile": _zip()},
        },
    )
    call(
        "rds",
        "CreateDBInstance",
        {
            "DBInstanceIdentifier": "every-db",
            "DBInstanceClass": "db.t3.micro",
            "Engine": "postgres",
            "MasterUsername": "u",
            "MasterUserPassword": "p4ssword!",
            "AllocatedStorage": 20,
        },
    )
    call(
        "rds",
        "CreateDBCluster",
        {
            "DBClusterIdentifier": "every-cluster",
            "Engine": "aurora-postgresql",
            "MasterUsername": "u",
            "MasterUserPassword": "p4ssword!",
        },
    )
    call(
        "dynamodb",
        "CreateTable",
        {
            "TableName": "every-table",
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        },
    )
    call("sqs", "CreateQueue", {"QueueName": "every-queue"})
    call("sns", "CreateTopic", {"Name": "every-topic"})
    call("ecs", "CreateCluster", {"clusterName": "every-ecs"})
    call(
        "eks",
        "CreateCluster",
        {"name": "every-eks", "roleArn": role, "resourcesVpcConfig": {"subnetIds": subnets}},
    )
    call("cloudformation", "CreateStack", {"StackName": "every-stack", "TemplateBody": _TEMPLATE})
    call("kms", "CreateKey", {"Description": "every"})
    call("route53", "CreateHostedZone", {"Name": "every.example.com", "CallerReference": f"every-{account}"})
    call(
        "cloudwatch",
        "PutMetricAlarm",
        {
            "AlarmName": "every-alarm",
            "MetricName": "CPUUtilization",
            "Namespace": "AWS/EC2",
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 90.0,
            "ComparisonOperator": "GreaterThanThreshold",
        },
    )
    call("secretsmanager", "CreateSecret", {"Name": "every-secret", "SecretString": "never-read"})
    call("logs", "CreateLogGroup", {"logGroupName": "/every/group"})
    call("elbv2", "CreateLoadBalancer", {"Name": "every-lb", "Subnets": subnets, "SecurityGroups": [group]})
    call(
        "autoscaling",
        "CreateLaunchConfiguration",
        {"LaunchConfigurationName": "every-lc", "ImageId": _AMI, "InstanceType": "t3.micro"},
    )
    call(
        "autoscaling",
        "CreateAutoScalingGroup",
        {
            "AutoScalingGroupName": "every-asg",
            "LaunchConfigurationName": "every-lc",
            "MinSize": 0,
            "MaxSize": 1,
            "VPCZoneIdentifier": subnets[0],
        },
    )
    call("ecr", "CreateRepository", {"repositoryName": "every-repo"})
    call("kinesis", "CreateStream", {"StreamName": "every-stream", "ShardCount": 1})
    return call
