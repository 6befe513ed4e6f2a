"""Least privilege, end to end: every AWS call a handler makes is allowed by its own role.

Realistic scenarios run the three handlers in moto with the environment the Pulumi
program gives them (``Pulumi.prod.yaml``: instance endpoint, canary, rollback alarms,
autoscaling) and the names :class:`infra.naming.Names` generates. A botocore
``before-parameter-build`` hook on each handler's clients records every API call. Each
call is mapped to what IAM authorizes: its action (``s3:ListBucketVersions`` for
``ListObjectVersions``, ...), the resource ARN it touches and the condition keys it
carries, plus what AWS checks on the caller behind it (``iam:PassRole`` for a role
argument, ``sagemaker:AddTags`` for tags on create, KMS for SSE-KMS objects, the alarms a
target-tracking policy or an auto-rollback deployment uses...). A small, explicit evaluator
then checks each against the role policy :mod:`infra.policies` writes for that function:

- every recorded call is allowed by its own role (and an unmapped call fails the test,
  so a new boto3 call cannot slip past it);
- removing one statement denies a specific call (the check can fail);
- every statement's every action is used by some call, or is listed with the reason the
  scenarios cannot exercise it (no unused grant);
- separation of duties: drift cannot train, retrain cannot deploy, promote cannot train.

The evaluator is stricter than IAM where it simplifies: ``Resource: "*"`` matches only
actions that have no resource-level permission (:data:`STAR_ONLY`), and a condition
whose key the call does not carry does not hold.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import pytest
from lambdas_helpers import (
    _Context,
    baseline,
    evaluation,
    load_event,
    model_tar,
    set_job_status,
)
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from infra import policies
from infra.config import settings_for_stack
from infra.naming import Names
from infra.program import lambda_environment
from infra.serving import ServingArgs, serving_environment
from lambdas import constants as c
from lambdas import drift, promote, quality, retrain
from lambdas.aws import Clients
from lambdas.config import Config
from lambdas.ground_truth import ground_truth_record
from lambdas.packages import update_package
from lambdas.training import render_boot_script, render_user_data
from mlops.localcloud import update_endpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS, _ = settings_for_stack("prod", REPO_ROOT)
REGION = SETTINGS.region
N = Names.from_settings(SETTINGS, DEFAULT_ACCOUNT_ID)
LIMITS = policies.Limits.from_settings(SETTINGS)
VIA_S3 = (("kms:ViaService", f"s3.{REGION}.amazonaws.com"),)
MODEL = N.job_prefix  # MLOPS_MODEL_NAME
JOB_1 = f"{MODEL}-20240501-120000-0000000a"
JOB_2 = f"{MODEL}-20240502-120000-0000000b"
SLR_SERVICE = "sagemaker.application-autoscaling.amazonaws.com"

#: Actions without resource-level permissions: the only ones a ``"*"`` statement may grant.
STAR_ONLY = {
    "sagemaker:ListTrainingJobs",
    "cloudwatch:GetMetricStatistics",
    "application-autoscaling:DescribeScalingPolicies",
    "cloudwatch:PutMetricData",
    "autoscaling:DescribeAutoScalingGroups",
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


# --- what IAM authorizes for one call --------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One authorization AWS makes for a call: action, resource ARN, condition context."""

    action: str
    resource: str
    # a multi-valued key (sagemaker:InstanceTypes, ...) carries a tuple of values
    context: tuple[tuple[str, str | tuple[str, ...]], ...] = ()
    call: str = ""  # the API call it comes from, for messages

    def __str__(self) -> str:
        extra = f" {dict(self.context)}" if self.context else ""
        return f"{self.action} on {self.resource}{extra} (for {self.call})"


@dataclass
class Call:
    service: str  # the Clients attribute's AWS service name
    operation: str
    params: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.service}.{self.operation}"


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _sm(resource_type: str, name: str) -> str:
    if name.startswith("arn:"):
        return name.lower()
    return N.sagemaker_arn(resource_type, name)


_SAGEMAKER_RESOURCES = {
    "CreateTrainingJob": ("training-job", "TrainingJobName"),
    "DescribeTrainingJob": ("training-job", "TrainingJobName"),
    "CreateModel": ("model", "ModelName"),
    "DescribeModel": ("model", "ModelName"),
    "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "CreateEndpoint": ("endpoint", "EndpointName"),
    "DescribeEndpoint": ("endpoint", "EndpointName"),
    "UpdateEndpoint": ("endpoint", "EndpointName"),
    "DescribeModelPackage": ("model-package", "ModelPackageName"),
    "UpdateModelPackage": ("model-package", "ModelPackageArn"),
}


def _sagemaker_context(op: str, p: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    """The condition keys SageMaker sets on a create call (service authorization
    reference): keys, instance types, run time, VPC, the served models, serverless size."""
    context: dict[str, str | tuple[str, ...]] = {}
    vpc = p.get("VpcConfig") or {}
    if vpc:
        context["sagemaker:VpcSubnets"] = tuple(vpc["Subnets"])
        context["sagemaker:VpcSecurityGroupIds"] = tuple(vpc["SecurityGroupIds"])
    if op == "CreateTrainingJob":
        resources, output = p["ResourceConfig"], p["OutputDataConfig"]
        context["sagemaker:InstanceTypes"] = (resources["InstanceType"],)
        context["sagemaker:MaxRuntimeInSeconds"] = str(
            p["StoppingCondition"]["MaxRuntimeInSeconds"]
        )
        context["sagemaker:NetworkIsolation"] = str(p.get("EnableNetworkIsolation", False)).lower()
        if resources.get("VolumeKmsKeyId"):
            context["sagemaker:VolumeKmsKey"] = resources["VolumeKmsKeyId"]
        if output.get("KmsKeyId"):
            context["sagemaker:OutputKmsKey"] = output["KmsKeyId"]
    elif op == "CreateEndpointConfig":
        # shadow variants serve models too, on instances of their own
        variants = p["ProductionVariants"] + p.get("ShadowProductionVariants", [])
        context["sagemaker:ModelArn"] = tuple(_sm("model", v["ModelName"]) for v in variants)
        types = tuple(v["InstanceType"] for v in variants if v.get("InstanceType"))
        if types:
            context["sagemaker:InstanceTypes"] = types
        if p.get("KmsKeyId"):
            context["sagemaker:VolumeKmsKey"] = p["KmsKeyId"]
        for v in variants:
            if v.get("ServerlessConfig"):
                serverless = v["ServerlessConfig"]
                context["sagemaker:ServerlessMemorySize"] = str(serverless["MemorySizeInMB"])
                context["sagemaker:ServerlessMaxConcurrency"] = str(serverless["MaxConcurrency"])
    return context


def _scaling_context(p: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    return {
        "application-autoscaling:service-namespace": p["ServiceNamespace"],
        "application-autoscaling:scalable-dimension": p["ScalableDimension"],
    }


def needs(call: Call, key_arn: str) -> list[Need]:
    """Every authorization AWS makes for ``call``; an unknown call fails loudly."""
    p, op = call.params, call.operation
    out: list[tuple[str, str, dict[str, str]]] = []

    def add(action: str, resource: str, **context: str | tuple[str, ...]) -> None:
        out.append((action, resource, context))

    def via(service: str) -> dict[str, str]:
        # the service a call goes through uses the key with the caller's credentials
        return {"kms:ViaService": f"{service}.{REGION}.amazonaws.com"}

    if call.service == "s3":
        bucket = p["Bucket"]
        if op in {"ListObjectVersions", "ListObjectsV2"}:
            action = "s3:ListBucketVersions" if op == "ListObjectVersions" else "s3:ListBucket"
            context = {"s3:prefix": p["Prefix"]} if "Prefix" in p else {}
            add(action, f"arn:aws:s3:::{bucket}", **context)
        elif op in {"GetObject", "HeadObject"}:
            action = "s3:GetObjectVersion" if p.get("VersionId") else "s3:GetObject"
            add(action, _s3_object(bucket, p["Key"]))
            add("kms:Decrypt", key_arn, **via("s3"))  # every bucket is SSE-KMS by default
        elif op == "PutObject":
            add("s3:PutObject", _s3_object(bucket, p["Key"]))
            add("kms:GenerateDataKey", p.get("SSEKMSKeyId", key_arn), **via("s3"))
        else:
            raise AssertionError(f"unmapped S3 call {call}: map it to IAM here")
    elif call.service == "sagemaker":
        if op == "ListTrainingJobs":
            add(f"sagemaker:{op}", "*")
        elif op == "ListModelPackages":  # a listing names no one package
            add(f"sagemaker:{op}", _sm("model-package", "*"))
        elif op == "ListTags":
            add("sagemaker:ListTags", p["ResourceArn"])
        elif op == "CreateModelPackage":
            add(
                "sagemaker:CreateModelPackage",
                _sm("model-package", f"{p['ModelPackageGroupName']}/1"),
            )
        elif op in _SAGEMAKER_RESOURCES:
            resource_type, param = _SAGEMAKER_RESOURCES[op]
            add(f"sagemaker:{op}", _sm(resource_type, p[param]), **_sagemaker_context(op, p))
        else:
            raise AssertionError(f"unmapped SageMaker call {call}: map it to IAM here")
        resource = out[0][1]
        if p.get("Tags"):
            add("sagemaker:AddTags", resource)
        for role in (p.get("RoleArn"), p.get("ExecutionRoleArn")):
            if role:
                add("iam:PassRole", role, **{"iam:PassedToService": "sagemaker.amazonaws.com"})
        capture_key = (p.get("DataCaptureConfig") or {}).get("KmsKeyId")
        for key in {p.get("KmsKeyId"), capture_key} - {None}:
            add("kms:CreateGrant", key, **{"kms:GrantIsForAWSResource": "true"}, **via("sagemaker"))
        rollback = (p.get("DeploymentConfig") or {}).get("AutoRollbackConfiguration") or {}
        for alarm in rollback.get("Alarms", []):
            add("cloudwatch:DescribeAlarms", N.alarm_arn(alarm["AlarmName"]))
    elif call.service == "dynamodb":
        if op not in {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}:
            raise AssertionError(f"unmapped DynamoDB call {call}: map it to IAM here")
        add(f"dynamodb:{op}", N.arn("dynamodb", f"table/{p['TableName']}"))
        add("kms:Decrypt", key_arn, **via("dynamodb"))  # the table's customer managed key
    elif call.service == "sns":
        if op != "Publish":
            raise AssertionError(f"unmapped SNS call {call}: map it to IAM here")
        add("sns:Publish", p["TopicArn"])
        # the topic is SSE-KMS: the publisher's data key
        add("kms:GenerateDataKey", key_arn, **via("sns"))
        add("kms:Decrypt", key_arn, **via("sns"))
    elif call.service == "cloudwatch":
        if op == "PutMetricData":
            add("cloudwatch:PutMetricData", "*", **{"cloudwatch:namespace": p["Namespace"]})
        elif op == "GetMetricStatistics":
            add("cloudwatch:GetMetricStatistics", "*")
        elif op == "SetAlarmState":
            add("cloudwatch:SetAlarmState", N.alarm_arn(p["AlarmName"]))
        else:
            raise AssertionError(f"unmapped CloudWatch call {call}: map it to IAM here")
    elif call.service == "application-autoscaling":
        target = N.arn("application-autoscaling", "scalable-target/0123456789abcdef0123")
        if op == "DescribeScalingPolicies":
            add(f"application-autoscaling:{op}", "*")
        elif op == "RegisterScalableTarget":
            add(f"application-autoscaling:{op}", target, **_scaling_context(p))
            # Application Auto Scaling validates the caller's access to the variant and
            # creates its service-linked role as the caller.
            endpoint = _sm("endpoint", p["ResourceId"].split("/")[1])
            add("sagemaker:DescribeEndpoint", endpoint)
            add("sagemaker:UpdateEndpointWeightsAndCapacities", endpoint)
            add(
                "iam:CreateServiceLinkedRole",
                N.arn(
                    "iam",
                    f"role/aws-service-role/{SLR_SERVICE}/"
                    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                    region=False,
                ),
                **{"iam:AWSServiceName": SLR_SERVICE},
            )
        elif op == "PutScalingPolicy":
            add(f"application-autoscaling:{op}", target, **_scaling_context(p))
            if p.get("TargetTrackingScalingPolicyConfiguration"):
                # the policy's alarms are created as the caller
                for side in ("AlarmHigh", "AlarmLow"):
                    alarm = N.alarm_arn(f"TargetTracking-{p['ResourceId']}-{side}-1a2b3c")
                    add("cloudwatch:PutMetricAlarm", alarm)
                    add("cloudwatch:DescribeAlarms", alarm)
        else:
            raise AssertionError(f"unmapped Application Auto Scaling call {call}: map it here")
    elif call.service == "autoscaling":  # EC2 Auto Scaling: the training hosts' group
        if op == "DescribeAutoScalingGroups":
            add("autoscaling:DescribeAutoScalingGroups", "*")
        elif op == "SetDesiredCapacity":
            group = "autoScalingGroup:0b1c2d3e-aaaa-bbbb-cccc-0123456789ab:autoScalingGroupName/"
            add(
                "autoscaling:SetDesiredCapacity",
                N.arn("autoscaling", group + p["AutoScalingGroupName"]),
            )
        else:
            raise AssertionError(f"unmapped EC2 Auto Scaling call {call}: map it here")
    elif call.service == "sqs":
        if op != "SendMessage":
            raise AssertionError(f"unmapped SQS call {call}: map it here")
        queue = p["QueueUrl"].rstrip("/").rsplit("/", 1)[1]
        add("sqs:SendMessage", N.arn("sqs", queue))
        # an SSE-KMS queue: the sender's data key
        add("kms:GenerateDataKey", key_arn, **via("sqs"))
        add("kms:Decrypt", key_arn, **via("sqs"))
    else:
        raise AssertionError(f"unmapped service {call.service}")
    return [Need(a, r, tuple(sorted(ctx.items())), str(call)) for a, r, ctx in out]


# --- the evaluator ---------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(
    condition: dict[str, dict[str, Any]], context: dict[str, str | tuple[str, ...]]
) -> bool:
    """IAM's operators as the policies use them. A key the call does not carry fails
    the condition, except for ``Null`` (that is what it asks) and ``ForAllValues:`` (true
    for no values, as in IAM)."""
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            values = [str(v) for v in _as_list(expected)]
            if operator == "Null":
                held = (key not in context) == (values == ["true"])
            elif operator.startswith("ForAllValues:"):
                base = operator.removeprefix("ForAllValues:")
                actual = context.get(key, ())
                held = all(_matches(base, a, values) for a in _as_list(list(actual)))
            elif key not in context:
                return False  # IAM: a missing key makes the condition false
            else:
                actual = context[key]
                assert isinstance(actual, str), f"{key} is multi-valued: use ForAllValues"
                held = _matches(operator, actual, values)
            if not held:
                return False
    return True


def _matches(operator: str, actual: str, values: list[str]) -> bool:
    if operator in {"StringEquals", "ArnEquals", "Bool"}:
        return actual in values
    if operator in {"StringLike", "ArnLike"}:
        return any(fnmatchcase(actual, v) for v in values)
    if operator == "NumericLessThanEquals":
        return any(float(actual) <= float(v) for v in values)
    if operator == "NumericLessThan":
        return any(float(actual) < float(v) for v in values)
    raise AssertionError(f"the evaluator does not know {operator}")


def allowing_statement(doc: dict[str, Any], need: Need) -> str | None:
    """The Sid of the first Allow statement granting ``need``, or None (denied)."""
    context = dict(need.context)
    for s in doc["Statement"]:
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s
        if not any(fnmatchcase(need.action.lower(), a.lower()) for a in _as_list(s["Action"])):
            continue
        resources = _as_list(s["Resource"])
        if resources == ["*"]:
            if need.action not in STAR_ONLY:
                continue
        elif not any(fnmatchcase(need.resource, r) for r in resources):
            continue
        if _condition_holds(s.get("Condition", {}), context):
            return str(s["Sid"])
    return None


# --- recording ---------------------------------------------------------------------------------


@dataclass
class Recorder:
    calls: list[Call] = field(default_factory=list)

    def clients(self) -> Clients:
        """Fresh clients (not the cached ones) with the recording hook."""
        made = {}
        for attr, service in Clients.SERVICES.items():
            client = boto3.client(service, region_name=REGION)  # type: ignore[call-overload]
            client.meta.events.register("before-parameter-build", self._record)
            made[attr] = client
        return Clients(REGION, **made)

    def _record(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append(Call(model.service_model.service_name, model.name, dict(params)))


@dataclass
class Scenario:
    function: str  # retrain | promote | drift
    outcome: dict[str, Any]
    calls: list[Call]
    ec2_backend: bool = False
    rollout: bool = False  # run with mlops:rolloutMode shadow


@dataclass
class World:
    key_arn: str
    queue_url: str
    scenarios: dict[str, Scenario]

    def role_policy(
        self, function: str, *, ec2_backend: bool = False, rollout: bool = False
    ) -> dict[str, Any]:
        """The function's role policy as infra/identity.py (+ training.py) attach it."""
        sagemaker_role = N.role_arn("sagemaker")
        if function == "retrain":
            doc = policies.retrain_policy(
                N, kms_key_arn=self.key_arn, sagemaker_role_arn=sagemaker_role, limits=LIMITS
            )
            if ec2_backend:
                start = policies.start_training_host_policy(N)
                doc = policies.document(*doc["Statement"], *start["Statement"])
            return doc
        if function == "promote":
            # the trial's read-only statements are granted in the shadow / ab modes only
            limits = replace(LIMITS, rollout_mode="shadow") if rollout else LIMITS
            return policies.promote_policy(
                N, kms_key_arn=self.key_arn, sagemaker_role_arn=sagemaker_role, limits=limits
            )
        if function == "quality":
            return policies.quality_policy(
                N, kms_key_arn=self.key_arn, metric_namespace=SETTINGS.metric_namespace
            )
        return policies.drift_policy(
            N, kms_key_arn=self.key_arn, metric_namespace=SETTINGS.metric_namespace
        )

    def needs_of(self, scenario: Scenario) -> list[Need]:
        return [n for call in scenario.calls for n in needs(call, self.key_arn)]


def _environment(key_arn: str, queue_url: str) -> dict[str, str]:
    """What the program sets on the three functions (infra/program.py, serving.py)."""
    s = SETTINGS
    serving = serving_environment(
        ServingArgs(
            names=N,
            endpoint_mode=s.endpoint_mode,
            serving_image_uri=s.serving_image_uri,
            serverless_memory_mb=s.serverless_memory_mb,
            serverless_max_concurrency=s.serverless_max_concurrency,
            endpoint_instance_type=s.endpoint_instance_type,
            endpoint_instance_count=s.endpoint_instance_count,
            capture_sample_percent=s.capture_sample_percent,
            canary_percent=s.canary_percent,
            autoscaling_min=s.autoscaling_min,
            autoscaling_max=s.autoscaling_max,
            autoscaling_target=s.autoscaling_target,
            rollback_alarm_names=list(N.rollback_alarms),
        )
    )
    env = lambda_environment(
        s,
        N,
        kms_key_arn=key_arn,
        sagemaker_role_arn=N.role_arn("sagemaker"),
        alert_topic_arn=N.topic_arn,
        training_hosts=N.training_hosts,
        training_jobs_queue_url=queue_url,
        serving=serving,
    )
    return {**{k: str(v) for k, v in env.items()}, c.IDEMPOTENCY_TABLE: N.table}


def _create_stack_resources() -> tuple[str, str]:
    """The resources the handlers use, named as infra names them; (key ARN, job queue URL)."""
    s3 = boto3.client("s3", region_name=REGION)
    for bucket in (N.raw_bucket, N.artifacts_bucket, N.capture_bucket):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=N.raw_bucket, VersioningConfiguration={"Status": "Enabled"})
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=N.table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    topic = boto3.client("sns", region_name=REGION).create_topic(Name=N.topic)["TopicArn"]
    assert topic == N.topic_arn
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName=N.role("sagemaker"),
        AssumeRolePolicyDocument=json.dumps(policies.assume_role_policy("sagemaker.amazonaws.com")),
    )["Role"]["Arn"]
    assert role == N.role_arn("sagemaker")
    key = boto3.client("kms", region_name=REGION).create_key()["KeyMetadata"]["Arn"]
    boto3.client("sagemaker", region_name=REGION).create_model_package_group(
        ModelPackageGroupName=N.model_package_group
    )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    for alarm in (N.drift_alarm, N.quality_alarm, *N.rollback_alarms):
        cloudwatch.put_metric_alarm(
            AlarmName=alarm,
            Namespace=SETTINGS.metric_namespace,
            MetricName=c.DRIFT_METRIC_NAME,
            Statistic="Maximum",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=SETTINGS.drift_threshold,
            ComparisonOperator="GreaterThanThreshold",
        )
    template = boto3.client("ec2", region_name=REGION).create_launch_template(
        LaunchTemplateName=N.launch_template,
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    boto3.client("autoscaling", region_name=REGION).create_auto_scaling_group(
        AutoScalingGroupName=N.training_hosts,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    queue = boto3.client("sqs", region_name=REGION).create_queue(QueueName=N.training_jobs_queue)[
        "QueueUrl"
    ]
    return key, queue


def _put(bucket: str, key: str, body: bytes) -> None:
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=body)


def _training_event(job: str) -> dict[str, Any]:
    event = load_event("training_completed")
    event["detail"]["TrainingJobName"] = job
    event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] = (
        f"s3://{N.artifacts_bucket}/{c.TRAINING_PREFIX}{job}/output/model.tar.gz"
    )
    return event


def _create_job(job: str, status: str = "Completed", reason: str | None = None) -> None:
    """The job as retrain creates it (moto completes it at once), for promote to verify."""
    boto3.client("sagemaker", region_name=REGION).create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={
            "TrainingImage": SETTINGS.training_image_uri,
            "TrainingInputMode": "File",
        },
        RoleArn=N.role_arn("sagemaker"),
        OutputDataConfig={"S3OutputPath": f"s3://{N.artifacts_bucket}/training/"},
        ResourceConfig={
            "InstanceType": "ml.m5.large",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": "mlops:model", "Value": MODEL}],
    )
    set_job_status(job, status, reason)


TEST_SPLIT = ("age,plan,label\n" + "30,basic,0\n61,pro,1\n" * 15).encode()
REFERENCE_SHA256 = hashlib.sha256(TEST_SPLIT).hexdigest()


def _write_model(job: str, f1: float, **guard: float) -> None:
    """The job's model.tar.gz (scored on the reference set the first job froze) and its
    output.tar.gz with its test split."""
    _create_job(job)
    doc = evaluation(f1=f1, **guard)
    doc["reference"] = {
        "sha256": REFERENCE_SHA256,
        "n": 30,
        "metrics": doc["metrics"],
        "champion": {"metrics": evaluation(f1=0.8)["metrics"]},
    }
    files = {
        c.MODEL_FILE: b"not really a model",
        c.EVALUATION_FILE: doc,
        c.BASELINE_FILE: baseline(),
    }
    key = f"{c.TRAINING_PREFIX}{job}/output/model.tar.gz"
    _put(N.artifacts_bucket, key, model_tar(files))
    output = f"{c.TRAINING_PREFIX}{job}/output/{c.OUTPUT_ARCHIVE}"
    _put(N.artifacts_bucket, output, model_tar({c.TEST_SPLIT_FILE: TEST_SPLIT}))


def _capture_file(rows: list[list[Any]]) -> bytes:
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "\n".join(",".join(map(str, r)) for r in rows),
                "encoding": "CSV",
            }
        }
    }
    return json.dumps(record).encode()


def _put_served_and_labelled(
    rows: int, *, variants: tuple[str, ...] = (c.VARIANT_NAME,), ids: str = "id"
) -> None:
    """``rows`` one-row predictions captured just now (by each variant), wrong labels for
    them, and (for a trial's evidence) the variants' SageMaker metrics."""
    when = datetime.now(UTC)
    answer = {"predictions": [{"label": 1, "probabilities": {"0": 0.1, "1": 0.9}}]}
    lines = [
        json.dumps(
            {
                "captureData": {
                    "endpointInput": {
                        "observedContentType": "text/csv",
                        "data": "30,basic",
                        "encoding": "CSV",
                    },
                    "endpointOutput": {
                        "observedContentType": "application/json",
                        "data": json.dumps(answer),
                        "encoding": "JSON",
                    },
                },
                "eventMetadata": {
                    "eventId": f"e-{i}",
                    "inferenceId": f"{ids}-{i}",
                    "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
            }
        )
        for i in range(rows)
    ]
    hour = when.strftime("%Y/%m/%d/%H")
    for variant in variants:
        key = f"{N.endpoint}/{variant}/{hour}/{ids}.jsonl"
        _put(N.capture_bucket, key, "\n".join(lines).encode())
        dims = [
            {"Name": "EndpointName", "Value": N.endpoint},
            {"Name": "VariantName", "Value": variant},
        ]
        boto3.client("cloudwatch", region_name=REGION).put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[{"MetricName": "Invocations", "Dimensions": dims, "Value": float(rows)}],
        )
    labels = "\n".join(ground_truth_record(f"{ids}-{i}", "0") for i in range(rows))
    _put(N.raw_bucket, f"{c.GROUND_TRUTH_PREFIX}{hour}/{ids}-labels.jsonl", labels.encode())


def _update_endpoint_standin(monkeypatch: pytest.MonkeyPatch, fail: dict[str, bool]) -> None:
    """moto has no UpdateEndpoint: repoint the endpoint (the stand-in lambdas_helpers uses
    too), or fail like AWS while ``fail["now"]``."""
    update_endpoint.install(
        functools.partial(monkeypatch.setattr, raising=False),
        failure=lambda: "endpoint is being updated" if fail["now"] else None,
    )


@pytest.fixture(name="world", scope="module")
def world_fixture() -> Iterator[World]:
    """One stack's life, recorded: retrain (twice), first promotion, blue/green update,
    an operator's promote request, a failed deployment, a failed job, retrain with the
    champion's model as a channel, drift over the threshold, retrain on the EC2 backend."""
    monkeypatch = pytest.MonkeyPatch()
    with mock_aws():
        try:
            yield _record_a_stacks_life(monkeypatch)
        finally:
            monkeypatch.undo()


def _record_a_stacks_life(monkeypatch: pytest.MonkeyPatch) -> World:
    fail = {"now": False}
    _update_endpoint_standin(monkeypatch, fail)
    key_arn, queue_url = _create_stack_resources()
    # prod asks a person for every model; the calls of that path are the held package's
    # below, so the rest of the life runs as a stack that approves on evidence
    env = {**_environment(key_arn, queue_url), c.APPROVAL_MODE: "auto"}
    context = _Context()
    scenarios: dict[str, Scenario] = {}

    def run(
        name: str, function: str, handle: Callable[..., dict[str, Any]], event: Any, **over: str
    ) -> dict[str, Any]:
        recorder = Recorder()
        outcome = handle(event, {**env, **over}, context, clients=recorder.clients())
        ec2_backend = over.get(c.TRAINING_BACKEND) == "ec2"
        rollout = over.get(c.ROLLOUT_MODE, "direct") != "direct"
        scenarios[name] = Scenario(function, outcome, recorder.calls, ec2_backend, rollout)
        return outcome

    s3_event = load_event("s3_object_created")
    s3_event["detail"]["bucket"]["name"] = N.raw_bucket
    _put(N.raw_bucket, "incoming/2024-05-01/batch-001.csv", b"age,plan,label\n30,basic,0\n")
    started = run("retrain: new data starts a job", "retrain", retrain.handle, s3_event)
    assert started["status"] == "started", started

    # moto completes jobs at once: the next trigger checks the lock holder's state
    _put(N.raw_bucket, "incoming/2024-05-02/batch-002.csv", b"age,plan,label\n61,pro,1\n")
    again = run("retrain: more data after the job", "retrain", retrain.handle, s3_event)
    assert again["status"] == "started", again

    _write_model(JOB_1, f1=0.80)
    first = run(
        "promote: first model creates the endpoint",
        "promote",
        promote.handle,
        _training_event(JOB_1),
    )
    assert first["status"] == "deployed" and first["action"] == "created", first
    assert first["autoscaling"] == "registered", first
    assert first["reference"].startswith("frozen: "), first

    _write_model(JOB_2, f1=0.86)
    better = run(
        "promote: better challenger, blue/green update",
        "promote",
        promote.handle,
        _training_event(JOB_2),
    )
    assert better["status"] == "deployed" and better["action"] == "updated", better

    # an operator's PromoteRequest looks the job up (DescribeTrainingJob)
    request = {
        "source": c.EVENT_SOURCE,
        "detail-type": c.PROMOTE_REQUEST,
        "detail": {"TrainingJobName": JOB_2},
    }
    manual = run("promote: operator's request", "promote", promote.handle, request)
    assert manual["status"] in {"deployed", "not-promoted"}, manual

    # a failed blue/green update: package set to Rejected, alert, champion serves
    job_3 = f"{MODEL}-20240503-120000-0000000c"
    _write_model(job_3, f1=0.95)
    fail["now"] = True
    broken = run(
        "promote: deployment fails, the champion keeps serving",
        "promote",
        promote.handle,
        _training_event(job_3),
    )
    fail["now"] = False
    assert broken["status"] == "deploy-failed", broken

    # a challenger whose new labels disagree with the champion waits for a person, who
    # approves it in the registry: the package state change deploys it
    job_4 = f"{MODEL}-20240503-123000-0000000f"
    _write_model(job_4, f1=0.97, label_agreement=0.1)
    held = run("promote: doubtful data is held", "promote", promote.handle, _training_event(job_4))
    assert held["status"] == "pending-approval", held
    # (moto drops the metadata an UpdateModelPackage omits; SageMaker merges it)
    update_package(
        Clients.for_config(Config.from_env(env)), held["model_package_arn"], status="Approved"
    )
    change = {
        "source": "aws.sagemaker",
        "detail-type": c.PACKAGE_STATE_CHANGE,
        "detail": {
            "ModelPackageGroupName": N.model_package_group,
            "ModelPackageArn": held["model_package_arn"],
            "ModelApprovalStatus": "Approved",
        },
    }
    approved = run("promote: a person approves a held package", "promote", promote.handle, change)
    assert approved["status"] == "deployed", approved
    ended = {
        "source": "aws.sagemaker",
        "detail-type": c.ENDPOINT_STATE_CHANGE,
        "detail": {"EndpointName": N.endpoint, "EndpointStatus": "InService"},
    }
    follow = run("promote: a rollout's end is checked", "promote", promote.handle, ended)
    assert follow["status"] == "ignored", follow

    failed = _training_event(f"{MODEL}-20240503-130000-0000000d")
    failed["detail"].update(TrainingJobStatus="Failed", FailureReason="AlgorithmError: boom")
    _create_job(failed["detail"]["TrainingJobName"], "Failed", "AlgorithmError: boom")
    alerted = run("promote: failed training alerts", "promote", promote.handle, failed)
    assert alerted["status"] == "training-failed", alerted

    # with a champion the next job gets its model as the "champion" channel
    _put(N.raw_bucket, "incoming/2024-05-03/batch-002b.csv", b"age,plan,label\n39,basic,0\n")
    with_champion = run(
        "retrain: the champion's model goes to the next job",
        "retrain",
        retrain.handle,
        s3_event,
    )
    assert with_champion["status"] == "started" and with_champion["champion"], with_champion

    drifted = [[80, "enterprise"]] * 60
    _put(
        N.capture_bucket,
        f"{N.endpoint}/{c.VARIANT_NAME}/2024/05/03/12/00-01-000-a.jsonl",
        _capture_file(drifted),
    )
    # prod waits for two drifted runs; one is enough to record the alarm's calls
    over = run("drift: over the threshold", "drift", drift.handle, {}, **{c.DRIFT_WINDOWS: "1"})
    assert over["status"] == "drift" and over["alarm"] == N.drift_alarm, over

    _put_served_and_labelled(40)
    poor = run(
        "quality: below the champion, feedback written",
        "quality",
        quality.handle,
        {},
        **{c.QUALITY_WINDOWS: "1"},
    )
    assert poor["status"] == "degraded" and poor["alarm"] == N.quality_alarm, poor
    assert poor["feedback"]["rows"] == 40, poor

    # a shadow rollout: the next challenger goes on trial, the check judges and promotes it
    job_5 = f"{MODEL}-20240503-140000-00000010"
    _write_model(job_5, f1=0.98)
    shadow = {c.ROLLOUT_MODE: "shadow", c.ROLLOUT_MIN_REQUESTS: "30", c.QUALITY_MIN_ROWS: "30"}
    trial = run(
        "promote: a challenger goes on a shadow trial",
        "promote",
        promote.handle,
        _training_event(job_5),
        **shadow,
    )
    assert trial["status"] == "on-trial", trial
    _put_served_and_labelled(40, variants=(c.VARIANT_NAME, c.CHALLENGER_VARIANT_NAME), ids="t")
    check = {"source": c.EVENT_SOURCE, "detail-type": c.ROLLOUT_CHECK, "detail": {}}
    judged = run(
        "promote: the rollout check promotes it", "promote", promote.handle, check, **shadow
    )
    assert judged["status"] == "deployed" and judged["evidence"]["paired"] == 40, judged

    _put(N.raw_bucket, "incoming/2024-05-04/batch-003.csv", b"age,plan,label\n44,pro,0\n")
    ec2 = run(
        "retrain: EC2 backend starts a host",
        "retrain",
        retrain.handle,
        s3_event,
        **{c.TRAINING_BACKEND: "ec2"},
    )
    assert ec2["status"] == "started" and ec2["backend"] == "ec2", ec2
    return World(key_arn, queue_url, scenarios)


SCENARIOS = [
    "retrain: new data starts a job",
    "retrain: more data after the job",
    "promote: first model creates the endpoint",
    "promote: better challenger, blue/green update",
    "promote: operator's request",
    "promote: deployment fails, the champion keeps serving",
    "promote: failed training alerts",
    "promote: doubtful data is held",
    "promote: a person approves a held package",
    "promote: a rollout's end is checked",
    "retrain: the champion's model goes to the next job",
    "drift: over the threshold",
    "quality: below the champion, feedback written",
    "promote: a challenger goes on a shadow trial",
    "promote: the rollout check promotes it",
    "retrain: EC2 backend starts a host",
]


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_call_is_allowed_by_the_functions_own_role(world: World, name: str) -> None:
    scenario = world.scenarios[name]
    doc = world.role_policy(
        scenario.function, ec2_backend=scenario.ec2_backend, rollout=scenario.rollout
    )
    recorded = world.needs_of(scenario)
    assert recorded, f"{name}: no AWS call recorded"
    denied = [str(n) for n in recorded if allowing_statement(doc, n) is None]
    assert denied == [], f"{name}: the {scenario.function} role denies:\n" + "\n".join(denied)


# --- the check can fail ------------------------------------------------------------------------


def _without(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    kept = [s for s in doc["Statement"] if s["Sid"] != sid]
    assert len(kept) == len(doc["Statement"]) - 1, f"no statement {sid}"
    return {**doc, "Statement": kept}


@pytest.mark.parametrize(
    ("name", "sid", "denied"),
    [
        ("promote: first model creates the endpoint", "IdempotencyRecords", "dynamodb:PutItem"),
        ("promote: first model creates the endpoint", "PassSageMakerRole", "iam:PassRole"),
        (
            "promote: first model creates the endpoint",
            "ManageTargetTrackingAlarms",
            "cloudwatch:PutMetricAlarm",
        ),
        (
            "promote: better challenger, blue/green update",
            "ReadRollbackAlarms",
            "cloudwatch:DescribeAlarms",
        ),
        ("drift: over the threshold", "DescribeServingModel", "sagemaker:DescribeModel"),
        ("drift: over the threshold", "ListCapture", "s3:ListBucket"),
        ("quality: below the champion, feedback written", "ReadLabels", "s3:GetObject"),
        ("quality: below the champion, feedback written", "WriteFeedback", "s3:PutObject"),
        (
            "quality: below the champion, feedback written",
            "RaiseQualityAlarm",
            "cloudwatch:SetAlarmState",
        ),
        ("promote: the rollout check promotes it", "ReadTrialCaptures", "s3:GetObject"),
        ("promote: the rollout check promotes it", "ListTrialLabels", "s3:ListBucket"),
        (
            "promote: the rollout check promotes it",
            "ReadVariantMetrics",
            "cloudwatch:GetMetricStatistics",
        ),
        ("retrain: new data starts a job", "ListIncomingData", "s3:ListBucketVersions"),
        ("retrain: more data after the job", "RunTrainingJobs", "sagemaker:DescribeTrainingJob"),
        ("retrain: EC2 backend starts a host", "QueueTrainingJob", "sqs:SendMessage"),
        (
            "retrain: EC2 backend starts a host",
            "StartTrainingHost",
            "autoscaling:SetDesiredCapacity",
        ),
        ("retrain: new data starts a job", "ListModelPackages", "sagemaker:ListModelPackages"),
        (
            "retrain: the champion's model goes to the next job",
            "ReadChampionPackage",
            "sagemaker:DescribeModelPackage",
        ),
    ],
)
def test_removing_a_statement_denies_the_call_that_needs_it(
    world: World, name: str, sid: str, denied: str
) -> None:
    scenario = world.scenarios[name]
    doc = _without(
        world.role_policy(
            scenario.function, ec2_backend=scenario.ec2_backend, rollout=scenario.rollout
        ),
        sid,
    )
    refused = {n.action for n in world.needs_of(scenario) if allowing_statement(doc, n) is None}
    assert denied in refused, f"{name}: without {sid}, {denied} should be denied"


@pytest.mark.parametrize(
    ("need", "why"),
    [
        (Need("s3:GetObject", f"arn:aws:s3:::{N.artifacts_bucket}/lineage/x.json"), "no such Sid"),
        (Need("s3:GetObject", f"arn:aws:s3:::{N.capture_bucket}/other-endpoint/x"), "resource"),
        (Need("s3:ListBucket", f"arn:aws:s3:::{N.capture_bucket}"), "no s3:prefix in the call"),
        (
            Need("s3:ListBucket", f"arn:aws:s3:::{N.capture_bucket}", (("s3:prefix", "x/"),)),
            "prefix outside the endpoint's",
        ),
        (
            Need("cloudwatch:PutMetricData", "*", (("cloudwatch:namespace", "AWS/EC2"),)),
            "another namespace",
        ),
        (Need("sagemaker:DescribeModelPackage", "*"), "not a star-only action"),
    ],
)
def test_the_evaluator_is_strict(world: World, need: Need, why: str) -> None:
    assert allowing_statement(world.role_policy("drift"), need) is None, why


def _create_call(scenario: Scenario, operation: str) -> Call:
    [call] = [c for c in scenario.calls if c.operation == operation]
    return call


def _with(params: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(params))
    target = out
    for key in path[:-1]:
        target = target[key] if not isinstance(target, list) else target[int(key)]
    target[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("name", "operation", "path", "value", "why"),
    [
        (
            "retrain: new data starts a job",
            "CreateTrainingJob",
            ("ResourceConfig", "InstanceType"),
            "ml.p4d.24xlarge",
            "an instance type the stack does not configure",
        ),
        (
            "retrain: new data starts a job",
            "CreateTrainingJob",
            ("ResourceConfig", "VolumeKmsKeyId"),
            "arn:aws:kms:us-east-1:123456789012:key/another",
            "another volume key",
        ),
        (
            "retrain: new data starts a job",
            "CreateTrainingJob",
            ("StoppingCondition", "MaxRuntimeInSeconds"),
            7 * 24 * 3600,
            "longer than the stack's time limit",
        ),
        (
            "retrain: new data starts a job",
            "CreateTrainingJob",
            ("VpcConfig",),
            {"Subnets": ["subnet-elsewhere"], "SecurityGroupIds": ["sg-elsewhere"]},
            "into a VPC",
        ),
        (
            "promote: first model creates the endpoint",
            "CreateEndpointConfig",
            ("ProductionVariants", "0", "InstanceType"),
            "ml.p4d.24xlarge",
            "an instance type the stack does not configure",
        ),
        (
            "promote: first model creates the endpoint",
            "CreateEndpointConfig",
            ("ProductionVariants", "0", "ModelName"),
            "another-stacks-model",
            "serving a model that is not this stack's",
        ),
        (
            "promote: first model creates the endpoint",
            "CreateEndpointConfig",
            ("KmsKeyId",),
            "arn:aws:kms:us-east-1:123456789012:key/another",
            "another volume key",
        ),
        (
            "promote: first model creates the endpoint",
            "RegisterScalableTarget",
            ("ServiceNamespace",),
            "ecs",
            "another service's scalable target",
        ),
    ],
)
def test_a_create_call_outside_the_stacks_conditions_is_denied(
    world: World, name: str, operation: str, path: tuple[str, ...], value: Any, why: str
) -> None:
    scenario = world.scenarios[name]
    doc = world.role_policy(scenario.function)
    call = _create_call(scenario, operation)
    # the recorded call is allowed...
    assert all(allowing_statement(doc, n) for n in needs(call, world.key_arn))
    # ...the same call with one value changed is not
    changed = Call(call.service, call.operation, _with(call.params, path, value))
    refused = [n for n in needs(changed, world.key_arn) if allowing_statement(doc, n) is None]
    assert refused and refused[0].action.endswith(operation), why


@pytest.mark.parametrize("function", ["retrain", "promote", "drift", "quality"])
def test_the_stack_key_is_usable_only_through_the_services_the_role_calls(
    world: World, function: str
) -> None:
    doc = world.role_policy(function)
    for service, allowed in [
        ("s3", True),
        ("sqs", True),
        ("ec2", False),
        ("secretsmanager", False),
    ]:
        need = Need(
            "kms:Decrypt", world.key_arn, (("kms:ViaService", f"{service}.{REGION}.amazonaws.com"),)
        )
        assert (allowing_statement(doc, need) is not None) == allowed, (function, service)
    # a direct call (no service in between) may not decrypt with the stack key
    assert allowing_statement(doc, Need("kms:Decrypt", world.key_arn)) is None


# --- separation of duties --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "action", "resource"),
    [
        ("drift", "sagemaker:CreateTrainingJob", N.sagemaker_arn("training-job", f"{MODEL}-x")),
        ("drift", "sagemaker:CreateEndpoint", N.sagemaker_arn("endpoint", N.endpoint)),
        ("drift", "iam:PassRole", N.role_arn("sagemaker")),
        ("quality", "sagemaker:CreateTrainingJob", N.sagemaker_arn("training-job", f"{MODEL}-x")),
        ("quality", "sagemaker:UpdateEndpoint", N.sagemaker_arn("endpoint", N.endpoint)),
        # raw data is never overwritten: only new feedback-* files, not a user's upload
        ("quality", "s3:PutObject", f"arn:aws:s3:::{N.raw_bucket}/incoming/2024-05-01/day1.csv"),
        ("quality", "s3:PutObject", f"arn:aws:s3:::{N.raw_bucket}/ground-truth/x.jsonl"),
        ("quality", "cloudwatch:SetAlarmState", N.alarm_arn(N.drift_alarm)),
        ("retrain", "sagemaker:CreateEndpoint", N.sagemaker_arn("endpoint", N.endpoint)),
        ("retrain", "sagemaker:UpdateEndpoint", N.sagemaker_arn("endpoint", N.endpoint)),
        ("retrain", "sagemaker:CreateModelPackage", N.sagemaker_arn("model-package", "g/1")),
        (
            "retrain",
            "sagemaker:UpdateModelPackage",
            N.sagemaker_arn("model-package", f"{N.model_package_group}/1"),
        ),
        (
            "retrain",
            "sagemaker:DescribeModelPackage",
            N.sagemaker_arn("model-package", "another-group/1"),
        ),
        ("retrain", "s3:GetObject", f"arn:aws:s3:::{N.artifacts_bucket}/training/x/model.tar.gz"),
        ("retrain", "cloudwatch:SetAlarmState", N.alarm_arn(N.drift_alarm)),
        ("promote", "sagemaker:CreateTrainingJob", N.sagemaker_arn("training-job", f"{MODEL}-x")),
        ("promote", "ec2:RunInstances", N.arn("ec2", "instance/i-0abc")),
        # the EC2 backend starts hosts through the group only: no instance, no role passed
        ("retrain", "ec2:RunInstances", N.arn("ec2", "instance/i-0abc")),
        ("retrain", "iam:PassRole", N.role_arn("ec2-training")),
        ("promote", "s3:PutObject", f"arn:aws:s3:::{N.raw_bucket}/incoming/x.csv"),
    ],
)
def test_separation_of_duties(world: World, function: str, action: str, resource: str) -> None:
    context = (("iam:PassedToService", "sagemaker.amazonaws.com"),)
    need = Need(action, resource, context if action == "iam:PassRole" else ())
    for ec2_backend in (False, True) if function == "retrain" else (False,):
        doc = world.role_policy(function, ec2_backend=ec2_backend)
        assert allowing_statement(doc, need) is None, f"{function} may {need}"


# --- no unused grant ------------------------------------------------------------------------

#: (role, Sid, action) granted but not called by any scenario, and why each is needed.
NOT_CALLED_BY_THE_HANDLERS = {
    # the Lambda service and runtime use these with the function's role
    **{
        (role, sid, action): "Lambda service / runtime"
        for role in ("retrain", "promote", "drift", "quality")
        for sid, action in [
            ("WriteOwnLogs", "logs:CreateLogStream"),
            ("WriteOwnLogs", "logs:PutLogEvents"),
            ("SendToOwnDeadLetterQueue", "sqs:SendMessage"),
            ("WriteTraces", "xray:PutTraceSegments"),
            ("WriteTraces", "xray:PutTelemetryRecords"),
            # env vars, the DLQ, the topic and the table are encrypted with the stack key
            ("UseStackKey", "kms:Encrypt"),
            ("UseStackKey", "kms:DescribeKey"),
            ("UseStackKey", "kms:Decrypt"),
            ("UseStackKey", "kms:GenerateDataKey"),
        ]
    },
    ("retrain", "IdempotencyRecords", "dynamodb:DeleteItem"): "a failed submission frees "
    "its data version and the lock",
    ("promote", "IdempotencyRecords", "dynamodb:GetItem"): "a redelivered event replays",
    ("promote", "IdempotencyRecords", "dynamodb:DeleteItem"): "an exception frees the job",
    ("promote", "ManageEndpointConfigs", "sagemaker:DescribeEndpointConfig"): "Application "
    "Auto Scaling validates the variant (SageMaker's autoscaling prerequisites)",
    ("promote", "ManageTargetTrackingAlarms", "cloudwatch:DeleteAlarms"): "a replaced "
    "target-tracking policy deletes its alarms as the caller",
    ("promote", "ListTrainingOutput", "s3:ListBucket"): "a missing object is a 404, not a 403",
    ("retrain", "ListReferenceSet", "s3:ListBucket"): "no reference set yet is a 404, not a 403",
    ("drift", "ListDriftStateAndBaselines", "s3:ListBucket"): "a missing object is a 404",
    ("quality", "ListQualityStateAndModels", "s3:ListBucket"): "a missing object is a 404",
}


def test_every_granted_action_is_used_or_explained(world: World) -> None:
    used: set[tuple[str, str, str]] = set()
    granted: set[tuple[str, str, str]] = set()
    for scenario in world.scenarios.values():
        role = scenario.function
        doc = world.role_policy(role, ec2_backend=scenario.ec2_backend, rollout=scenario.rollout)
        for s in doc["Statement"]:
            granted |= {(role, s["Sid"], a) for a in _as_list(s["Action"])}
        for need in world.needs_of(scenario):
            sid = allowing_statement(doc, need)
            used.add((role, str(sid), need.action))
    unexplained = sorted(granted - used - set(NOT_CALLED_BY_THE_HANDLERS))
    assert unexplained == [], "granted but never needed: " + ", ".join(map(str, unexplained))
    stale = sorted(set(NOT_CALLED_BY_THE_HANDLERS) - granted)
    assert stale == [], f"explained but not granted any more: {stale}"


# --- the EC2 training host ----------------------------------------------------------------------


def test_the_training_hosts_calls_are_allowed_by_its_role(world: World) -> None:
    """The host's calls are the AWS CLI commands of its user data."""
    job = f"{MODEL}-20240504-120000-0000000e"
    env = _environment(world.key_arn, world.queue_url)
    champion_model = f"training/{JOB_2}/output/model.tar.gz"
    champion = {
        "arn": N.sagemaker_arn("model-package", f"{N.model_package_group}/2"),
        "model_data_url": f"s3://{N.artifacts_bucket}/{champion_model}",
    }
    user_data = render_user_data(Config.from_env(env), job, champion)
    out = f"training/{job}/output"
    for command in [
        f"OUT=s3://{N.artifacts_bucket}/{out}",
        f"LINEAGE=s3://{N.artifacts_bucket}/lineage/{job}.json",
        f"CODE={N.code_bundle_uri}",
        f"CHAMPION=s3://{N.artifacts_bucket}/{champion_model}",
        'aws s3 cp "$CHAMPION" /opt/ml/input/data/champion/model.tar.gz',
        'aws s3api get-object --bucket "$BUCKET" --key "$KEY" --version-id "$VERSION"',
        'aws s3 cp /tmp/model.tar.gz "$OUT/model.tar.gz"',
        'aws s3 cp /tmp/output.tar.gz "$OUT/output.tar.gz"',
        'aws s3 cp /opt/ml/output/failure "$OUT/failure"',
        'aws s3 cp /var/log/mlops-training.log "$OUT/host.log"',
        'aws events put-events --entries "$DETAIL"',
    ]:
        assert command in user_data, command
    assert re.search(r"--sse aws:kms --sse-kms-key-id", user_data)
    boot = render_boot_script(REGION, world.queue_url)
    for command in [
        'aws sqs receive-message --queue-url "$QUEUE"',
        'aws sqs delete-message --queue-url "$QUEUE"',
        'aws autoscaling terminate-instance-in-auto-scaling-group --instance-id "$INSTANCE"',
    ]:
        assert command in boot, command
    artifacts, raw = f"arn:aws:s3:::{N.artifacts_bucket}", f"arn:aws:s3:::{N.raw_bucket}"
    host_needs = [
        # the boot script: take the job from the (SSE-KMS) queue, scale the group in
        Need("sqs:ReceiveMessage", N.training_jobs_queue_arn),
        Need("sqs:DeleteMessage", N.training_jobs_queue_arn),
        Need(
            "autoscaling:TerminateInstanceInAutoScalingGroup",
            N.arn("autoscaling", f"autoScalingGroup:0b1c:autoScalingGroupName/{N.training_hosts}"),
        ),
        Need("s3:GetObject", f"{artifacts}/{c.CODE_BUNDLE_KEY}"),
        Need("s3:GetObject", f"{artifacts}/lineage/{job}.json"),
        Need("s3:GetObject", f"{artifacts}/{champion_model}"),
        Need("s3:GetObjectVersion", f"{raw}/incoming/2024-05-01/batch-001.csv"),
        Need("s3:GetObject", f"{raw}/incoming/2024-05-01/batch-001.csv"),  # version "null"
        *[
            Need("s3:PutObject", f"{artifacts}/{out}/{name}")
            for name in ("model.tar.gz", "output.tar.gz", "failure", "host.log")
        ],
        Need("kms:Decrypt", world.key_arn, VIA_S3),
        Need("kms:GenerateDataKey", world.key_arn, VIA_S3),
        Need("kms:Decrypt", world.key_arn, (("kms:ViaService", f"sqs.{REGION}.amazonaws.com"),)),
        Need(
            "events:PutEvents",
            N.arn("events", "event-bus/default"),
            (("events:detail-type", c.TRAINING_STATE_CHANGE), ("events:source", c.EVENT_SOURCE)),
        ),
    ]
    doc = policies.ec2_training_policy(
        N,
        kms_key_arn=world.key_arn,
        image_uris=[SETTINGS.training_image_uri],
        metric_namespace=SETTINGS.metric_namespace,
    )
    denied = [str(n) for n in host_needs if allowing_statement(doc, n) is None]
    assert denied == [], denied
    # and nothing else: no other job's output, no promotion, no other event
    for need in [
        Need("s3:PutObject", f"{artifacts}/training/{job}/evaluation.json"),
        Need("s3:GetObject", f"{artifacts}/training/{JOB_2}/output/output.tar.gz"),
        Need("s3:GetObject", f"{artifacts}/training/{JOB_2}/evaluation.json"),
        Need("s3:PutObject", f"{artifacts}/lineage/{job}.json"),
        Need("s3:PutObject", f"{raw}/incoming/x.csv"),
        Need(
            "events:PutEvents",
            N.arn("events", "event-bus/default"),
            (("events:detail-type", c.RETRAIN_REQUEST), ("events:source", c.EVENT_SOURCE)),
        ),
    ]:
        assert allowing_statement(doc, need) is None, need


# --- the SageMaker training job's channels ------------------------------------------------------


def test_the_training_jobs_channels_are_readable_by_the_sagemaker_role(world: World) -> None:
    """SageMaker downloads each S3Prefix channel with the execution role: it lists the
    prefix (ListBucket, s3:prefix) and reads the objects; the champion channel is the
    champion's model.tar.gz, the reference channel the frozen reference set."""
    scenario = world.scenarios["retrain: the champion's model goes to the next job"]
    [create] = [call for call in scenario.calls if call.operation == "CreateTrainingJob"]
    channels = {ch["ChannelName"]: ch for ch in create.params["InputDataConfig"]}
    assert set(channels) == {"train", "champion", "reference"}
    reference = channels["reference"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert reference == (
        f"s3://{N.artifacts_bucket}/{c.REFERENCE_PREFIX}{REFERENCE_SHA256[:16]}/reference.csv"
    )
    source = channels["champion"]["DataSource"]["S3DataSource"]
    held_job = f"{MODEL}-20240503-123000-0000000f"
    assert source["S3Uri"] == (f"s3://{N.artifacts_bucket}/models/{held_job}/model.tar.gz"), (
        "the champion is the last Approved package: the held job a person approved, released"
    )
    doc = policies.sagemaker_execution_policy(
        N,
        kms_key_arn=world.key_arn,
        image_uris=[SETTINGS.training_image_uri],
        metric_namespace=SETTINGS.metric_namespace,
    )
    for name, channel in channels.items():
        bucket, prefix = channel["DataSource"]["S3DataSource"]["S3Uri"][5:].split("/", 1)
        key = prefix if prefix.endswith(".tar.gz") else f"{prefix}2024-05-01/batch-001.csv"
        for need in [
            Need("s3:ListBucket", f"arn:aws:s3:::{bucket}", (("s3:prefix", prefix),)),
            Need("s3:GetObject", _s3_object(bucket, key)),
            Need("kms:Decrypt", world.key_arn, VIA_S3),
        ]:
            assert allowing_statement(doc, need) is not None, f"{name}: {need}"
