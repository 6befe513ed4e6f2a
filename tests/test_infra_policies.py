"""infra/policies/: pure policy documents, scoped to one stack's resources."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest
from infra_helpers import actions, as_list, statement, statements

from infra import policies
from infra.config import default_image_uri, parse_image_uri
from infra.naming import Names
from lambdas import constants as c

N = Names(
    project="mlops", stack="dev", model="fraud", account_id="111122223333", region="eu-west-1"
)
KEY = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SM_ROLE = N.role_arn("sagemaker")
IMAGE = default_image_uri("eu-west-1")
OWN_BUCKETS = {N.raw_bucket, N.artifacts_bucket, N.capture_bucket, N.access_log_bucket}

#: Actions that have no resource-level permission, so "*" is the only valid resource.
STAR_ONLY = {
    "ecr:GetAuthorizationToken",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "sagemaker:ListTrainingJobs",
    "autoscaling:DescribeAutoScalingGroups",
    "application-autoscaling:DescribeScalableTargets",
    "application-autoscaling:DescribeScalingPolicies",
}

ROLE_POLICIES: dict[str, Callable[[], dict[str, Any]]] = {
    "sagemaker": lambda: policies.sagemaker_execution_policy(
        N, kms_key_arn=KEY, image_uris=[IMAGE, IMAGE], metric_namespace="MLOps"
    ),
    "ec2-training": lambda: policies.ec2_training_policy(
        N, kms_key_arn=KEY, image_uris=[IMAGE], metric_namespace="MLOps"
    ),
    "retrain": lambda: policies.retrain_policy(N, kms_key_arn=KEY, sagemaker_role_arn=SM_ROLE),
    "retrain-start-host": lambda: policies.start_training_host_policy(N),
    "promote": lambda: policies.promote_policy(N, kms_key_arn=KEY, sagemaker_role_arn=SM_ROLE),
    "drift": lambda: policies.drift_policy(N, kms_key_arn=KEY, metric_namespace="MLOps"),
}


def _by_action(doc: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in statements(doc) if action in as_list(s["Action"])]


@pytest.mark.parametrize("role", sorted(ROLE_POLICIES))
def test_no_wildcard_actions_and_star_only_where_aws_needs_it(role: str) -> None:
    doc = ROLE_POLICIES[role]()
    json.dumps(doc)  # serialisable as is
    for s in statements(doc):
        assert s["Effect"] == "Allow" and "NotAction" not in s and "Sid" in s
        for action in as_list(s["Action"]):
            assert action != "*" and not action.endswith(":*"), (role, s["Sid"])
            assert "*" not in action, f"{role}/{s['Sid']}: wildcard in action {action}"
        if "*" in as_list(s["Resource"]):
            assert set(as_list(s["Action"])) <= STAR_ONLY, (role, s["Sid"])


@pytest.mark.parametrize("role", sorted(ROLE_POLICIES))
def test_every_arn_belongs_to_this_stack(role: str) -> None:
    for s in statements(ROLE_POLICIES[role]()):
        for arn in as_list(s["Resource"]):
            if arn == "*":
                continue
            if arn.startswith("arn:aws:s3:::"):
                assert arn.removeprefix("arn:aws:s3:::").split("/")[0] in OWN_BUCKETS, arn
            elif ":ecr:" in arn:
                assert arn.endswith("repository/sagemaker-scikit-learn"), arn
            else:
                assert ":111122223333:" in arn, arn
                assert (
                    N.prefix in arn
                    or N.job_prefix in arn
                    or arn == KEY
                    or "/aws/sagemaker/TrainingJobs" in arn
                    or arn.endswith(":event-bus/default")
                    or "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint" in arn
                    or arn.endswith(":scalable-target/*")
                    # a listing names no one package: packages of this account and region
                    or (s["Sid"] == "ListModelPackages" and arn.endswith(":model-package/*"))
                ), f"{role}/{s['Sid']}: {arn} is not scoped to the stack"


@pytest.mark.parametrize(
    "key",
    [f"{c.MODELS_PREFIX}fraud-dev-20240501-120000-0000000a/model.tar.gz", c.MODELS_PREFIX + "x"],
)
def test_only_promote_may_write_what_serves(key: str) -> None:
    # models/ holds the archives promote released: a training job, the EC2 host or the
    # serving role writing there could change what serves after the gate
    target = f"{N.bucket_arn(N.artifacts_bucket)}/{key}"

    writers = {
        role
        for role, build in ROLE_POLICIES.items()
        for s in statements(build())
        if s["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase("s3:PutObject", a) for a in as_list(s["Action"]))
        and any(fnmatch.fnmatchcase(target, r) for r in as_list(s["Resource"]))
    }

    assert writers == {"promote"}


def test_put_metric_data_is_limited_to_own_namespaces() -> None:
    for role in ("sagemaker", "ec2-training", "drift"):
        (s,) = _by_action(ROLE_POLICIES[role](), "cloudwatch:PutMetricData")
        namespaces = s["Condition"]["StringLike"]["cloudwatch:namespace"]
        assert "MLOps" in namespaces and "*" not in namespaces


def test_pass_role_only_to_the_named_service() -> None:
    (retrain,) = _by_action(ROLE_POLICIES["retrain"](), "iam:PassRole")
    assert retrain["Resource"] == SM_ROLE
    assert retrain["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    # the EC2 backend passes no role: the hosts' group launches with its own
    assert _by_action(ROLE_POLICIES["retrain-start-host"](), "iam:PassRole") == []
    (promote,) = _by_action(ROLE_POLICIES["promote"](), "iam:PassRole")
    assert promote["Resource"] == SM_ROLE


def test_sagemaker_role_reads_incoming_data_and_code_and_writes_training_output() -> None:
    doc = ROLE_POLICIES["sagemaker"]()
    listing = statement(doc, "ListTrainingData")
    assert listing["Resource"] == f"arn:aws:s3:::{N.raw_bucket}"
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["incoming/", "incoming/*"]
    assert (
        statement(doc, "ReadTrainingData")["Resource"] == f"arn:aws:s3:::{N.raw_bucket}/incoming/*"
    )
    assert statement(doc, "WriteTrainingOutput")["Resource"] == (
        f"arn:aws:s3:::{N.artifacts_bucket}/training/*"
    )
    read = statement(doc, "ReadCodeAndModels")["Resource"]
    assert f"arn:aws:s3:::{N.artifacts_bucket}/code/*" in read
    account, region, repo = parse_image_uri(IMAGE)
    assert statement(doc, "PullFrameworkImages")["Resource"] == [
        f"arn:aws:ecr:{region}:{account}:repository/{repo}"
    ]
    assert statement(doc, "UseStackKey")["Resource"] == KEY
    grant = statement(doc, "GrantStackKeyToAwsServices")
    assert grant["Condition"] == {
        "Bool": {"kms:GrantIsForAWSResource": "true"},
        "StringEquals": {"kms:ViaService": ["sagemaker.eu-west-1.amazonaws.com"]},
    }


def test_retrain_role() -> None:
    doc = ROLE_POLICIES["retrain"]()
    jobs = statement(doc, "StartTrainingJobs")
    assert jobs["Action"] == ["sagemaker:CreateTrainingJob"]
    assert jobs["Resource"] == "arn:aws:sagemaker:eu-west-1:111122223333:training-job/fraud-dev-*"
    # only as the stack configures a job: its key, instance type, time limit, no VPC
    assert jobs["Condition"]["ArnEquals"] == {
        "sagemaker:VolumeKmsKey": KEY,
        "sagemaker:OutputKmsKey": KEY,
    }
    assert jobs["Condition"]["ForAllValues:StringEquals"] == {
        "sagemaker:InstanceTypes": ["ml.m5.large"]
    }
    assert jobs["Condition"]["Null"] == {
        "sagemaker:VpcSubnets": "true",
        "sagemaker:VpcSecurityGroupIds": "true",
    }
    assert statement(doc, "IdempotencyRecords")["Resource"] == N.table_arn
    assert "dynamodb:Scan" not in actions(statements(doc))  # only `mlops status` scans
    assert statement(doc, "WriteLineage")["Resource"] == (
        f"arn:aws:s3:::{N.artifacts_bucket}/{c.LINEAGE_PREFIX}*"
    )
    # the listing gives the data version: the function reads no object but the name of
    # the reference set
    [read] = [s for s in statements(doc) if "s3:GetObject" in s["Action"]]
    assert read["Resource"] == f"arn:aws:s3:::{N.artifacts_bucket}/{c.REFERENCE_MANIFEST_KEY}"
    assert "ec2:RunInstances" not in actions(statements(doc))
    start = ROLE_POLICIES["retrain-start-host"]()
    assert actions(statements(start)) == {
        "sqs:SendMessage",
        "autoscaling:SetDesiredCapacity",
        "autoscaling:DescribeAutoScalingGroups",
    }
    assert statement(start, "StartTrainingHost")["Resource"] == (
        "arn:aws:autoscaling:eu-west-1:111122223333:autoScalingGroup:*:"
        f"autoScalingGroupName/{N.training_hosts}"
    )


def test_promote_role() -> None:
    doc = ROLE_POLICIES["promote"]()
    packages = statement(doc, "RegisterModelPackages")["Resource"]
    assert packages == [
        "arn:aws:sagemaker:eu-west-1:111122223333:model-package-group/mlops-dev-fraud",
        "arn:aws:sagemaker:eu-west-1:111122223333:model-package/mlops-dev-fraud/*",
    ]
    deploy = statement(doc, "DeployEndpoint")
    assert "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/mlops-dev-fraud" in deploy["Resource"]
    assert statement(doc, "PublishAlerts")["Resource"] == N.topic_arn
    # EventBridge may deliver a state change twice: powertools idempotency on the table
    assert statement(doc, "IdempotencyRecords") == {
        "Sid": "IdempotencyRecords",
        "Effect": "Allow",
        "Action": [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        ],
        "Resource": N.table_arn,
    }
    assert statement(doc, "ManageTargetTrackingAlarms")["Resource"] == (
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:"
        "TargetTracking-endpoint/mlops-dev-fraud/variant/*"
    )
    assert statement(doc, "ReadRollbackAlarms")["Resource"] == [
        N.alarm_arn(name) for name in N.rollback_alarms
    ]
    slr = statement(doc, "CreateAutoscalingServiceLinkedRole")
    assert slr["Condition"]["StringLike"]["iam:AWSServiceName"] == (
        "sagemaker.application-autoscaling.amazonaws.com"
    )


def test_drift_role() -> None:
    doc = ROLE_POLICIES["drift"]()
    assert statement(doc, "ReadCapture")["Resource"] == (
        f"arn:aws:s3:::{N.capture_bucket}/{N.endpoint}/*"
    )
    assert statement(doc, "ListCapture")["Condition"] == {
        "StringLike": {"s3:prefix": [f"{N.endpoint}/", f"{N.endpoint}/*"]}
    }
    assert statement(doc, "DescribeServingModel") == {
        "Sid": "DescribeServingModel",
        "Effect": "Allow",
        "Action": ["sagemaker:DescribeModel"],
        "Resource": [
            "arn:aws:sagemaker:eu-west-1:111122223333:model/fraud-dev-*",
            "arn:aws:sagemaker:eu-west-1:111122223333:model/mlops-dev-fraud-*",
        ],
    }
    pinned = policies.drift_policy(
        N,
        kms_key_arn=KEY,
        metric_namespace="MLOps",
        extra_model_data_urls=[f"s3://{N.artifacts_bucket}/pinned/model.tar.gz"],
    )
    assert statement(pinned, "ReadPinnedModelBaseline")["Resource"] == [
        f"arn:aws:s3:::{N.artifacts_bucket}/pinned/model.tar.gz"
    ]
    assert statement(doc, "ReadWriteDriftState")["Resource"] == (
        f"arn:aws:s3:::{N.artifacts_bucket}/{c.DRIFT_STATE_KEY_PREFIX}*"
    )
    assert statement(doc, "RaiseDriftAlarm") == {
        "Sid": "RaiseDriftAlarm",
        "Effect": "Allow",
        "Action": ["cloudwatch:SetAlarmState"],
        "Resource": "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:mlops-dev-fraud-drift",
    }


def test_ec2_host_reports_state_only_from_the_control_plane_source() -> None:
    doc = ROLE_POLICIES["ec2-training"]()
    report = statement(doc, "ReportTrainingState")
    assert report["Action"] == ["events:PutEvents"]
    assert report["Resource"] == "arn:aws:events:eu-west-1:111122223333:event-bus/default"
    assert report["Condition"] == {
        "StringEquals": {
            "events:source": c.EVENT_SOURCE,
            "events:detail-type": c.TRAINING_STATE_CHANGE,
        }
    }
    assert not [a for a in actions(statements(doc)) if a.startswith("ec2:")]
    # the lineage's exact object versions; writes only under training/<job>/output/
    assert statement(doc, "ReadLineageDataVersions") == {
        "Sid": "ReadLineageDataVersions",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:GetObjectVersion"],
        "Resource": f"arn:aws:s3:::{N.raw_bucket}/incoming/*",
    }
    assert statement(doc, "WriteTrainingOutput")["Resource"] == (
        f"arn:aws:s3:::{N.artifacts_bucket}/training/*/output/*"
    )


def test_key_policy_has_no_kms_star_and_conditions_every_service() -> None:
    doc = policies.kms_key_policy(N)
    assert "kms:*" not in actions(statements(doc))
    account = statement(doc, "AccountAdministersAndUsesKeyThroughIam")
    assert account["Principal"] == {"AWS": "arn:aws:iam::111122223333:root"}
    logs = statement(doc, "CloudWatchLogsEncryptsThisStacksLogGroups")
    assert logs["Condition"]["StringLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/mlops-dev-fraud-*"
    )


def test_bucket_policy_denies_plain_http_and_old_tls() -> None:
    doc = policies.bucket_policy(N, N.raw_bucket)
    deny = statement(doc, "DenyInsecureTransport")
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement(doc, "DenyOutdatedTls")["Condition"] == {
        "NumericLessThan": {"s3:TlsVersion": 1.2}
    }
    assert [s for s in statements(doc) if s["Effect"] == "Allow"] == []


def test_dlq_and_topic_policies() -> None:
    role = N.role_arn("drift")
    dlq = policies.dlq_policy(N, "drift", role)
    assert statement(dlq, "FunctionRoleSends")["Principal"] == {"AWS": role}
    assert statement(dlq, "FunctionRoleSends")["Resource"] == N.queue_arn("drift")
    topic = policies.topic_policy(N)
    alarms = statement(topic, "CloudWatchAlarmsPublish")
    assert alarms["Condition"]["ArnLike"]["aws:SourceArn"] == (
        "arn:aws:cloudwatch:eu-west-1:111122223333:alarm:mlops-dev-fraud-*"
    )


def test_names_are_deterministic_and_fit_aws_limits() -> None:
    assert N.raw_bucket == "mlops-dev-fraud-raw-111122223333"
    assert N.job_prefix == "fraud-dev"
    assert N.code_bundle_uri == "s3://mlops-dev-fraud-artifacts-111122223333/code/jobs.tar.gz"
    assert len(N.access_log_bucket) <= 63
    assert (
        Names("mlops", "prod", "x", "1" * 12, "cn-north-1").bucket_arn("b") == "arn:aws-cn:s3:::b"
    )


def test_image_uri_parsing() -> None:
    assert parse_image_uri(IMAGE) == ("141502667606", "eu-west-1", "sagemaker-scikit-learn")
    with pytest.raises(ValueError, match="not an ECR image URI"):
        parse_image_uri("docker.io/library/python:3.11")


def test_a_serverless_stack_bounds_the_endpoint_size_and_an_instance_stack_its_type() -> None:
    serverless = statement(ROLE_POLICIES["promote"](), "CreateEndpointConfigs")["Condition"]
    assert serverless["NumericLessThanEquals"] == {
        "sagemaker:ServerlessMemorySize": "2048",
        "sagemaker:ServerlessMaxConcurrency": "5",
    }
    limits = policies.Limits(endpoint_mode="instance", endpoint_instance_type="ml.c5.xlarge")
    doc = policies.promote_policy(N, kms_key_arn=KEY, sagemaker_role_arn=SM_ROLE, limits=limits)
    instance = statement(doc, "CreateEndpointConfigs")["Condition"]
    assert instance["ArnEquals"] == {"sagemaker:VolumeKmsKey": KEY}
    assert instance["ForAllValues:StringEquals"] == {"sagemaker:InstanceTypes": ["ml.c5.xlarge"]}
    for condition in (serverless, instance):
        models = condition["ForAllValues:ArnLike"]["sagemaker:ModelArn"]
        assert all(N.prefix in m or N.job_prefix in m for m in models), models


@pytest.mark.parametrize("role", sorted(ROLE_POLICIES))
def test_stack_key_use_names_the_services_it_goes_through(role: str) -> None:
    for s in statements(ROLE_POLICIES[role]()):
        if s["Resource"] == KEY:
            via = s["Condition"]["StringEquals"]["kms:ViaService"]
            assert via and all(v.endswith(".eu-west-1.amazonaws.com") for v in as_list(via))
