"""Policies of the roles the ML runs under: the SageMaker execution role (training jobs
and the endpoint's model) and the EC2 training host's role."""

from __future__ import annotations

from collections.abc import Sequence

from infra.config import parse_image_uri
from infra.naming import Names
from infra.policies.grants import (
    grant_stack_key,
    list_prefixes,
    objects,
    pinned_objects,
    put_metrics,
    use_stack_key,
)
from infra.policies.statements import Document, Statement, allow, document
from lambdas import constants as c


def _pull_images(n: Names, image_uris: Sequence[str]) -> list[Statement]:
    repos = []
    for uri in image_uris:
        account, region, repo = parse_image_uri(uri)
        arn = f"arn:{n.partition}:ecr:{region}:{account}:repository/{repo}"
        if arn not in repos:
            repos.append(arn)
    return [
        # ecr:GetAuthorizationToken has no resource-level permission (the token is
        # account-wide); it grants nothing without the pull actions below.
        allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
        allow(
            "PullFrameworkImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            repos,
        ),
    ]


def _training_data_access(n: Names) -> list[Statement]:
    return [
        list_prefixes(
            "ListTrainingData",
            n,
            n.raw_bucket,
            [c.INCOMING_PREFIX],
            ["s3:ListBucket", "s3:ListBucketVersions"],
        ),
        allow(
            "ReadTrainingData",
            ["s3:GetObject", "s3:GetObjectVersion"],
            objects(n, n.raw_bucket, c.INCOMING_PREFIX),
        ),
        # the code bundle, the champion's model.tar.gz (the "champion" channel: an
        # S3Prefix channel lists, then reads the object) and, serving, models/<job>/: read
        # only, promote alone writes what serves
        list_prefixes(
            "ListArtifacts",
            n,
            n.artifacts_bucket,
            [c.CODE_PREFIX, c.TRAINING_PREFIX, c.MODELS_PREFIX, c.REFERENCE_PREFIX],
        ),
        allow(
            # and the frozen reference set (the "reference" channel)
            "ReadCodeAndModels",
            ["s3:GetObject"],
            [
                objects(n, n.artifacts_bucket, c.CODE_PREFIX),
                objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
                objects(n, n.artifacts_bucket, c.MODELS_PREFIX),
                # the CSV only (an S3Prefix channel on its key: keys starting with it); the
                # manifest and history are promote's
                f"{n.bucket_arn(n.artifacts_bucket)}/{c.REFERENCE_PREFIX}*/reference.csv*",
            ],
        ),
        allow(
            "WriteTrainingOutput",
            ["s3:PutObject"],
            objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
    ]


def sagemaker_execution_policy(
    n: Names,
    *,
    kms_key_arn: str,
    image_uris: Sequence[str],
    metric_namespace: str,
    extra_model_data_urls: Sequence[str] = (),
) -> Document:
    """The SageMaker execution role (training jobs and the endpoint's model)."""
    statements = [
        *_training_data_access(n),
        allow("WriteDataCapture", ["s3:PutObject"], objects(n, n.capture_bucket, "")),
        use_stack_key(n, kms_key_arn, "sagemaker"),
        grant_stack_key(n, kms_key_arn),
        allow(
            "WriteJobAndEndpointLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            [
                n.log_group_arn("/aws/sagemaker/TrainingJobs") + ":*",
                n.log_group_arn(f"/aws/sagemaker/Endpoints/{n.endpoint}") + ":*",
            ],
        ),
        *_pull_images(n, image_uris),
        put_metrics(["/aws/sagemaker/*", metric_namespace]),
        allow(
            # Deployment guardrails: the execution role reads the auto-rollback alarms.
            "ReadRollbackAlarms",
            ["cloudwatch:DescribeAlarms"],
            [n.alarm_arn(name) for name in n.rollback_alarms],
        ),
    ]
    pinned = pinned_objects(n, extra_model_data_urls)
    if pinned:
        statements.append(allow("ReadPinnedModel", ["s3:GetObject"], pinned))
    return document(*statements)


def ec2_training_policy(
    n: Names, *, kms_key_arn: str, image_uris: Sequence[str], metric_namespace: str
) -> Document:
    """The EC2 training host's role. The host takes its job from the stack's job queue,
    reads the job's lineage (the exact object versions to train on), reports the outcome
    as a training-state event from the control plane's source and takes itself out of
    its group (decrementing it to 0)."""
    return document(
        allow(
            "TakeTrainingJobs",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
            n.training_jobs_queue_arn,
        ),
        allow(
            "ScaleInOwnGroup",
            ["autoscaling:TerminateInstanceInAutoScalingGroup"],
            n.training_hosts_arn,
        ),
        allow(
            # `aws s3api get-object --version-id`: exactly the versions the lineage lists
            "ReadLineageDataVersions",
            ["s3:GetObject", "s3:GetObjectVersion"],
            objects(n, n.raw_bucket, c.INCOMING_PREFIX),
        ),
        allow("ReadCodeBundle", ["s3:GetObject"], objects(n, n.artifacts_bucket, c.CODE_PREFIX)),
        allow("ReadLineage", ["s3:GetObject"], objects(n, n.artifacts_bucket, c.LINEAGE_PREFIX)),
        allow(
            # `aws s3 cp` of the champion's model (the "champion" channel): scored on the
            # same test split as the new model. Models only, no other job output.
            "ReadChampionModel",
            ["s3:GetObject"],
            [
                f"{n.bucket_arn(n.artifacts_bucket)}/{c.MODELS_PREFIX}*/model.tar.gz",
                f"{n.bucket_arn(n.artifacts_bucket)}/{c.TRAINING_PREFIX}*/output/model.tar.gz",
            ],
        ),
        allow(
            # `aws s3 cp` of the frozen reference set (the "reference" channel)
            "ReadReferenceSet",
            ["s3:GetObject"],
            f"{n.bucket_arn(n.artifacts_bucket)}/{c.REFERENCE_PREFIX}*/reference.csv",
        ),
        allow(
            # model.tar.gz, output.tar.gz, failure, host.log under training/<job>/output/
            "WriteTrainingOutput",
            ["s3:PutObject"],
            objects(n, n.artifacts_bucket, f"{c.TRAINING_PREFIX}*/output/"),
        ),
        allow(
            "ReportTrainingState",
            ["events:PutEvents"],
            n.arn("events", "event-bus/default"),
            Condition={
                "StringEquals": {
                    "events:source": c.EVENT_SOURCE,
                    "events:detail-type": c.TRAINING_STATE_CHANGE,
                }
            },
        ),
        use_stack_key(n, kms_key_arn, "ec2-training"),
        allow(
            "WriteHostLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            n.log_group_arn(f"/mlops/{n.prefix}/ec2-training") + ":*",
        ),
        *_pull_images(n, image_uris),
        put_metrics([metric_namespace]),
    )
