"""Fixtures of the control-plane tests: moto's stack, a Lambda context, UpdateEndpoint."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator

import pytest
from lambdas_helpers import (
    ARTIFACTS,
    CAPTURE,
    DRIFT_ALARM,
    ENDPOINT,
    GROUP,
    MODEL,
    RAW,
    REGION,
    TABLE,
    Stack,
    _Context,
)
from moto import mock_aws

from lambdas import constants as c
from lambdas.aws import Clients, client


@pytest.fixture(name="aws_credentials")
def aws_credentials_fixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and region, so nothing can reach a real AWS account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(name="stack")
def stack_fixture(aws_credentials: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """Buckets, table, topic (+ SQS to read alerts), role, key, group and alarm in moto.

    The control plane's environment is also set in ``os.environ`` so ``handler(event,
    context)`` runs exactly as in Lambda.
    """
    with mock_aws():
        s3 = client("s3", REGION)
        for bucket in (RAW, ARTIFACTS, CAPTURE):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=RAW, VersioningConfiguration={"Status": "Enabled"})
        client("dynamodb", REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sns = client("sns", REGION)
        topic = sns.create_topic(Name="mlops-alerts")["TopicArn"]
        sqs = client("sqs", REGION)
        queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        role = client("iam", REGION).create_role(
            RoleName="mlops-sagemaker",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "sagemaker.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        key = client("kms", REGION).create_key()["KeyMetadata"]["Arn"]
        client("sagemaker", REGION).create_model_package_group(ModelPackageGroupName=GROUP)
        client("cloudwatch", REGION).put_metric_alarm(
            AlarmName=DRIFT_ALARM,
            Namespace=c.DEFAULT_METRIC_NAMESPACE,
            MetricName=c.DRIFT_METRIC_NAME,
            Dimensions=[{"Name": "Model", "Value": MODEL}, {"Name": "Feature", "Value": "_max"}],
            Statistic="Maximum",
            Period=3600,
            EvaluationPeriods=1,
            Threshold=0.2,
            ComparisonOperator="GreaterThanThreshold",
        )
        env = {
            c.MODEL_NAME: MODEL,
            c.RAW_BUCKET: RAW,
            c.ARTIFACTS_BUCKET: ARTIFACTS,
            c.CAPTURE_BUCKET: CAPTURE,
            c.KMS_KEY_ARN: key,
            c.SAGEMAKER_ROLE_ARN: role,
            c.MODEL_PACKAGE_GROUP: GROUP,
            c.ENDPOINT_NAME: ENDPOINT,
            c.IDEMPOTENCY_TABLE: TABLE,
            c.ALERT_TOPIC_ARN: topic,
            c.CODE_S3_URI: f"s3://{ARTIFACTS}/{c.CODE_BUNDLE_KEY}",
            c.DRIFT_ALARM_NAME: DRIFT_ALARM,
            c.DRIFT_MIN_ROWS: "20",
            "AWS_REGION": REGION,
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield Stack(env=env, clients=Clients(REGION), queue_url=queue_url)


@pytest.fixture(name="lambda_context")
def lambda_context_fixture() -> _Context:
    return _Context()


@pytest.fixture(name="update_endpoint_standin")
def update_endpoint_standin_fixture(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """STAND-IN for SageMaker ``UpdateEndpoint``, which moto does not implement.

    The local cloud's :func:`mlops.localcloud.update_endpoint.repoint`, narrow on purpose:
    it checks that the endpoint and the new endpoint config exist and points moto's
    endpoint at the new config, which is what a successful blue/green update ends with.
    Anything about the rollout itself (fleets, canary, baking, alarms) is not simulated.
    Each request is recorded in ``stack.updates`` (so tests can read the DeploymentConfig).
    Set ``stack.env["_FAIL_UPDATE"]`` to make it fail like AWS would.
    """
    from mlops.localcloud import update_endpoint

    def record(request: update_endpoint.UpdateEndpointRequest) -> None:
        stack.updates.append(
            {
                "EndpointName": request.endpoint_name,
                "EndpointConfigName": request.endpoint_config_name,
                "DeploymentConfig": request.deployment_config,
            }
        )

    update_endpoint.install(
        functools.partial(monkeypatch.setattr, raising=False),
        on_request=record,
        failure=lambda: stack.env.get("_FAIL_UPDATE"),
    )
    return stack
