"""IAM and resource policy documents as pure functions returning dicts.

Every statement is scoped to this stack's own buckets, prefixes, key, table, topic,
queues, alarms, model package group, endpoint and roles. ``Resource: "*"`` appears
only where the action has no resource-level permission; each such place says why
and carries a condition where AWS offers one. Components ``json.dumps`` the result
at the edge, inside ``Output.apply`` where an input (the key ARN) is an Output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.config import parse_image_uri
from infra.naming import Names
from lambdas import constants as c

Statement = dict[str, Any]
Document = dict[str, Any]

VERSION = "2012-10-17"
KMS_DATA_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
#: Explicit key administration + use for the account (instead of the default "kms:*").
KMS_ACCOUNT_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]


def document(*statements: Statement) -> Document:
    return {"Version": VERSION, "Statement": list(statements)}


def _allow(
    sid: str, actions: Sequence[str], resources: Sequence[str] | str, **extra: Any
) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }
    statement.update(extra)
    return statement


def assume_role_policy(service: str) -> Document:
    """Trust policy letting one AWS service principal assume the role."""
    return document(
        {
            "Sid": "TrustService",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
        }
    )


# --- resource policies ------------------------------------------------------------------


def kms_key_policy(n: Names) -> Document:
    """Key policy: the account administers and uses the key through IAM; the AWS services
    that encrypt on this stack's behalf get only data-key use, conditioned on this account
    (and, for CloudWatch Logs, on this stack's log groups)."""
    logs_context = n.arn("logs", f"log-group:/aws/lambda/{n.prefix}-*")
    return document(
        # In a key policy "Resource": "*" means "this key".
        _allow(
            "AccountAdministersAndUsesKeyThroughIam",
            KMS_ACCOUNT_ACTIONS,
            "*",
            Principal={"AWS": n.account_root_arn},
        ),
        _allow(
            "CloudWatchLogsEncryptsThisStacksLogGroups",
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "*",
            Principal={"Service": f"logs.{n.region}.amazonaws.com"},
            Condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": logs_context}},
        ),
        _allow(
            # Alarms publish to the KMS-encrypted alert topic.
            "CloudWatchAlarmsPublishToEncryptedTopic",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            "*",
            Principal={"Service": "cloudwatch.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": n.account_id}},
        ),
        _allow(
            # Server access logs land in the SSE-KMS access-log bucket.
            "S3ServerAccessLogDelivery",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            "*",
            Principal={"Service": "logging.s3.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": n.account_id}},
        ),
    )


def _deny_insecure_transport(service: str, resources: list[str]) -> Statement:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        # Same as "*" for AWS; the map form also parses in moto's logging check.
        "Principal": {"AWS": "*"},
        "Action": f"{service}:*",
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_policy(n: Names, bucket: str, log_source_buckets: Sequence[str] = ()) -> Document:
    """Deny non-TLS (and TLS < 1.2) requests; for the access-log bucket, let the S3 logging
    service write the logs of this stack's buckets only."""
    arn = n.bucket_arn(bucket)
    resources = [arn, f"{arn}/*"]
    statements: list[Statement] = [
        _deny_insecure_transport("s3", resources),
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]
    if log_source_buckets:
        statements.append(
            _allow(
                "S3ServerAccessLogDelivery",
                ["s3:PutObject"],
                f"{arn}/*",  # a plain string: moto's logging check reads no list
                Principal={"Service": "logging.s3.amazonaws.com"},
                Condition={
                    "ArnLike": {"aws:SourceArn": [n.bucket_arn(b) for b in log_source_buckets]},
                    "StringEquals": {"aws:SourceAccount": n.account_id},
                },
            )
        )
    return document(*statements)


def dlq_policy(n: Names, kind: str, role_arn: str) -> Document:
    """A function's dead-letter queue: only that function's role may send to it (the Lambda
    service sends failed async events with the function's execution role)."""
    queue_arn = n.queue_arn(kind)
    return document(
        _allow("FunctionRoleSends", ["sqs:SendMessage"], queue_arn, Principal={"AWS": role_arn}),
        {
            "Sid": "DenyOtherSenders",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": role_arn}},
        },
        _deny_insecure_transport("sqs", [queue_arn]),
    )


def topic_policy(n: Names) -> Document:
    """Alert topic: the account and this stack's CloudWatch alarms may publish; TLS only."""
    topic_arn = n.topic_arn
    return document(
        _allow(
            "AccountPublishes",
            ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
            topic_arn,
            Principal={"AWS": n.account_root_arn},
        ),
        _allow(
            "CloudWatchAlarmsPublish",
            ["sns:Publish"],
            topic_arn,
            Principal={"Service": "cloudwatch.amazonaws.com"},
            Condition={
                "StringEquals": {"aws:SourceAccount": n.account_id},
                "ArnLike": {"aws:SourceArn": n.alarm_arn(f"{n.prefix}-*")},
            },
        ),
        _deny_insecure_transport("sns", [topic_arn]),
    )


# --- role policies ----------------------------------------------------------------------


def _objects(n: Names, bucket: str, prefix: str) -> str:
    return f"{n.bucket_arn(bucket)}/{prefix}*"


def _list_prefixes(
    sid: str,
    n: Names,
    bucket: str,
    prefixes: Sequence[str],
    actions: Sequence[str] = ("s3:ListBucket",),
) -> Statement:
    patterns = sorted({p for prefix in prefixes for p in (prefix, f"{prefix}*")})
    return _allow(
        sid,
        actions,
        n.bucket_arn(bucket),
        Condition={"StringLike": {"s3:prefix": patterns}},
    )


def _kms(kms_key_arn: str) -> Statement:
    return _allow("UseStackKey", KMS_DATA_ACTIONS, kms_key_arn)


def _kms_grant(kms_key_arn: str) -> Statement:
    # SageMaker encrypts ML storage volumes and captured data through a grant on the key.
    return _allow(
        "GrantStackKeyToAwsServices",
        ["kms:CreateGrant"],
        kms_key_arn,
        Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
    )


def _put_metrics(namespaces: Sequence[str]) -> Statement:
    # cloudwatch:PutMetricData has no resource-level permission: "*" is required; the
    # namespace condition limits it to this stack's metrics.
    return _allow(
        "PutOwnMetrics",
        ["cloudwatch:PutMetricData"],
        "*",
        Condition={"StringLike": {"cloudwatch:namespace": list(namespaces)}},
    )


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
        _allow("EcrLogin", ["ecr:GetAuthorizationToken"], "*"),
        _allow(
            "PullFrameworkImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            repos,
        ),
    ]


def _training_data_access(n: Names) -> list[Statement]:
    return [
        _list_prefixes(
            "ListTrainingData",
            n,
            n.raw_bucket,
            [c.INCOMING_PREFIX],
            ["s3:ListBucket", "s3:ListBucketVersions"],
        ),
        _allow(
            "ReadTrainingData",
            ["s3:GetObject", "s3:GetObjectVersion"],
            _objects(n, n.raw_bucket, c.INCOMING_PREFIX),
        ),
        # the code bundle, and the champion's training/<job>/output/model.tar.gz (the
        # "champion" channel: an S3Prefix channel lists, then reads the object)
        _list_prefixes("ListArtifacts", n, n.artifacts_bucket, [c.CODE_PREFIX, c.TRAINING_PREFIX]),
        _allow(
            "ReadCodeAndModels",
            ["s3:GetObject"],
            [
                _objects(n, n.artifacts_bucket, c.CODE_PREFIX),
                _objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
            ],
        ),
        _allow(
            "WriteTrainingOutput",
            ["s3:PutObject"],
            _objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
    ]


def _pinned_objects(n: Names, urls: Sequence[str]) -> list[str]:
    return [f"arn:{n.partition}:s3:::{url.removeprefix('s3://')}" for url in urls]


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
        _allow("WriteDataCapture", ["s3:PutObject"], _objects(n, n.capture_bucket, "")),
        _kms(kms_key_arn),
        _kms_grant(kms_key_arn),
        _allow(
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
        _put_metrics(["/aws/sagemaker/*", metric_namespace]),
        _allow(
            # Deployment guardrails: the execution role reads the auto-rollback alarms.
            "ReadRollbackAlarms",
            ["cloudwatch:DescribeAlarms"],
            [n.alarm_arn(name) for name in n.rollback_alarms],
        ),
    ]
    pinned = _pinned_objects(n, extra_model_data_urls)
    if pinned:
        statements.append(_allow("ReadPinnedModel", ["s3:GetObject"], pinned))
    return document(*statements)


def ec2_training_policy(
    n: Names, *, kms_key_arn: str, image_uris: Sequence[str], metric_namespace: str
) -> Document:
    """The EC2 training host's role. The host shuts itself down with
    InstanceInitiatedShutdownBehavior=terminate, so it needs no EC2 permission; it reads
    its job's lineage (the exact object versions to train on) and reports the outcome
    as a training-state event from the control plane's source."""
    return document(
        _allow(
            # `aws s3api get-object --version-id`: exactly the versions the lineage lists
            "ReadLineageDataVersions",
            ["s3:GetObject", "s3:GetObjectVersion"],
            _objects(n, n.raw_bucket, c.INCOMING_PREFIX),
        ),
        _allow("ReadCodeBundle", ["s3:GetObject"], _objects(n, n.artifacts_bucket, c.CODE_PREFIX)),
        _allow("ReadLineage", ["s3:GetObject"], _objects(n, n.artifacts_bucket, c.LINEAGE_PREFIX)),
        _allow(
            # `aws s3 cp` of the champion's model (the "champion" channel): scored on the
            # same test split as the new model. Models only, no other job output.
            "ReadChampionModel",
            ["s3:GetObject"],
            f"{n.bucket_arn(n.artifacts_bucket)}/{c.TRAINING_PREFIX}*/output/model.tar.gz",
        ),
        _allow(
            # model.tar.gz, output.tar.gz, failure, host.log under training/<job>/output/
            "WriteTrainingOutput",
            ["s3:PutObject"],
            _objects(n, n.artifacts_bucket, f"{c.TRAINING_PREFIX}*/output/"),
        ),
        _allow(
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
        _kms(kms_key_arn),
        _allow(
            "WriteHostLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            n.log_group_arn(f"/mlops/{n.prefix}/ec2-training") + ":*",
        ),
        *_pull_images(n, image_uris),
        _put_metrics([metric_namespace]),
    )


def _publish_alerts(n: Names) -> Statement:
    return _allow("PublishAlerts", ["sns:Publish"], n.topic_arn)


def _lambda_base(n: Names, kind: str, kms_key_arn: str) -> list[Statement]:
    # The Lambda service and runtime act with the role: logs, the DLQ (SSE-KMS), traces,
    # the environment (encrypted with the stack key).
    return [
        _allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            n.log_group_arn(n.function_log_group(kind)) + ":*",
        ),
        _allow("SendToOwnDeadLetterQueue", ["sqs:SendMessage"], n.queue_arn(kind)),
        # X-Ray has no resource-level permissions: "*" is the only valid resource.
        _allow("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
        _kms(kms_key_arn),
    ]


def _pass_role(sid: str, role_arn: str, service: str) -> Statement:
    return _allow(
        sid,
        ["iam:PassRole"],
        role_arn,
        Condition={"StringEquals": {"iam:PassedToService": service}},
    )


def _list_model_packages() -> Statement:
    # sagemaker:ListModelPackages has no resource-level permission.
    return _allow("ListModelPackages", ["sagemaker:ListModelPackages"], "*")


def _model_packages(n: Names) -> list[str]:
    group = n.model_package_group
    return [
        n.sagemaker_arn("model-package-group", group),
        n.sagemaker_arn("model-package", f"{group}/*"),
    ]


def _idempotency_records(n: Names) -> Statement:
    # powertools idempotency (Get/Put/Update/DeleteItem) and the training lock. No Scan:
    # only `mlops status` scans the table, with the operator's credentials.
    return _allow(
        "IdempotencyRecords",
        ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
        n.table_arn,
    )


def _serving_names(n: Names, resource_type: str) -> list[str]:
    # Promote names SageMaker models and endpoint configs after the training job
    # ("<model>-<stack>-…") or after the endpoint ("<project>-<stack>-<model>-…").
    return [
        n.sagemaker_arn(resource_type, f"{n.job_prefix}-*"),
        n.sagemaker_arn(resource_type, f"{n.prefix}-*"),
    ]


def retrain_policy(n: Names, *, kms_key_arn: str, sagemaker_role_arn: str) -> Document:
    """Retrain: start a training job for new data, once, with the champion's model as its
    ``champion`` channel (see also :func:`launch_training_host_policy` for the EC2 backend)."""
    return document(
        *_lambda_base(n, "retrain", kms_key_arn),
        _allow(
            # DescribeTrainingJob: is the job holding the lock still running? AddTags: the
            # job is created with tags.
            "RunTrainingJobs",
            ["sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:AddTags"],
            n.sagemaker_arn("training-job", f"{n.job_prefix}-*"),
        ),
        # sagemaker:ListTrainingJobs has no resource-level permission; it is read-only and
        # needed for the "one training job in flight" guard.
        _allow("ListTrainingJobs", ["sagemaker:ListTrainingJobs"], "*"),
        _pass_role("PassSageMakerRole", sagemaker_role_arn, "sagemaker.amazonaws.com"),
        _idempotency_records(n),
        # The data version is computed from the listing (keys, version IDs, ETags): no
        # object is read. SageMaker reads the data and the code bundle with its own role.
        _list_prefixes(
            "ListIncomingData", n, n.raw_bucket, [c.INCOMING_PREFIX], ["s3:ListBucketVersions"]
        ),
        _allow("WriteLineage", ["s3:PutObject"], _objects(n, n.artifacts_bucket, c.LINEAGE_PREFIX)),
        # The champion (the latest Approved package of the group) becomes the job's
        # "champion" channel: its ModelDataUrl, read by SageMaker with its own role.
        _list_model_packages(),
        _allow(
            "ReadChampionPackage",
            ["sagemaker:DescribeModelPackage"],
            n.sagemaker_arn("model-package", f"{n.model_package_group}/*"),
        ),
    )


def launch_training_host_policy(
    n: Names, *, launch_template_arn: str, ec2_role_arn: str, kms_key_arn: str
) -> Document:
    """Retrain, EC2 backend: launch the training host from this stack's template only."""
    ec2 = f"arn:{n.partition}:ec2:{n.region}"
    return document(
        _allow(
            # The host's EBS volume is encrypted with the stack key: the launching principal
            # lets EC2 use the key, and only through EC2.
            "EncryptTrainingHostVolume",
            [
                "kms:CreateGrant",
                "kms:Decrypt",
                "kms:DescribeKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
            ],
            kms_key_arn,
            Condition={"StringEquals": {"kms:ViaService": f"ec2.{n.region}.amazonaws.com"}},
        ),
        _allow(
            # Every resource RunInstances touches must come from this stack's launch template.
            "LaunchTrainingHostFromTemplate",
            ["ec2:RunInstances"],
            [
                launch_template_arn,
                f"{ec2}:{n.account_id}:instance/*",
                f"{ec2}:{n.account_id}:volume/*",
                f"{ec2}:{n.account_id}:network-interface/*",
                f"{ec2}:{n.account_id}:security-group/*",
                f"{ec2}:{n.account_id}:subnet/*",
                f"{ec2}::image/*",
            ],
            Condition={"ArnLike": {"ec2:LaunchTemplate": launch_template_arn}},
        ),
        _allow(
            "TagTrainingHostAtLaunch",
            ["ec2:CreateTags"],
            [f"{ec2}:{n.account_id}:instance/*", f"{ec2}:{n.account_id}:volume/*"],
            Condition={"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        ),
        # ec2:DescribeInstances has no resource-level permission (read-only; the in-flight guard).
        _allow("DescribeTrainingHosts", ["ec2:DescribeInstances"], "*"),
        _pass_role("PassTrainingHostRole", ec2_role_arn, "ec2.amazonaws.com"),
    )


def promote_policy(n: Names, *, kms_key_arn: str, sagemaker_role_arn: str) -> Document:
    """Promote: gate a finished job, register its model package, deploy it."""
    endpoint = n.sagemaker_arn("endpoint", n.endpoint)
    endpoint_configs = _serving_names(n, "endpoint-config")
    autoscaling_slr = n.arn(
        "iam",
        "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
        region=False,
    )
    return document(
        *_lambda_base(n, "promote", kms_key_arn),
        _publish_alerts(n),  # failed training, unreadable evaluation, failed deployment
        _kms_grant(kms_key_arn),
        _allow(
            "ReadTrainingJobs",
            # ListTags: promote believes an event only for a job tagged with this model
            ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
            n.sagemaker_arn("training-job", f"{n.job_prefix}-*"),
        ),
        _allow(
            "RegisterModelPackages",
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
                "sagemaker:AddTags",
            ],
            _model_packages(n),
        ),
        _list_model_packages(),
        _allow(
            "ManageModels",
            ["sagemaker:CreateModel", "sagemaker:DescribeModel", "sagemaker:AddTags"],
            _serving_names(n, "model"),
        ),
        _allow(
            "ManageEndpointConfigs",
            [
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:AddTags",
            ],
            endpoint_configs,
        ),
        _allow(
            "DeployEndpoint",
            [
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:UpdateEndpointWeightsAndCapacities",
                "sagemaker:AddTags",
            ],
            [endpoint, *endpoint_configs],
        ),
        _pass_role("PassSageMakerRole", sagemaker_role_arn, "sagemaker.amazonaws.com"),
        _allow(
            # Scalable target ids are generated by AWS; the ARN pattern keeps it to this
            # account and region.
            "ScaleEndpointVariant",
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
            ],
            n.arn("application-autoscaling", "scalable-target/*"),
        ),
        # application-autoscaling:DescribeScalingPolicies has no resource-level permission.
        _allow("DescribeScaling", ["application-autoscaling:DescribeScalingPolicies"], "*"),
        _allow(
            # PutScalingPolicy (target tracking) creates and manages the policy's alarms
            # as the caller: "TargetTracking-endpoint/<endpoint>/variant/<variant>-Alarm…".
            "ManageTargetTrackingAlarms",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            n.alarm_arn(f"TargetTracking-endpoint/{n.endpoint}/variant/*"),
        ),
        _allow(
            # UpdateEndpoint with AutoRollbackConfiguration reads the rollback alarms.
            "ReadRollbackAlarms",
            ["cloudwatch:DescribeAlarms"],
            [n.alarm_arn(name) for name in n.rollback_alarms],
        ),
        _idempotency_records(n),
        _allow(
            "CreateAutoscalingServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            autoscaling_slr,
            Condition={
                "StringLike": {
                    "iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"
                }
            },
        ),
        # ListBucket makes a missing object a 404 rather than a 403: a champion without its
        # evaluation copy falls back to its model.tar.gz (get_json returns None).
        _list_prefixes("ListTrainingOutput", n, n.artifacts_bucket, [c.TRAINING_PREFIX]),
        _allow(
            "ReadTrainingOutput",
            ["s3:GetObject"],
            _objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
        _allow(
            # training/<job>/evaluation.json: the copy the model package's metrics point at
            "WriteEvaluationCopies",
            ["s3:PutObject"],
            _objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
    )


def drift_policy(
    n: Names,
    *,
    kms_key_arn: str,
    metric_namespace: str,
    extra_model_data_urls: Sequence[str] = (),
) -> Document:
    """Drift: read captured traffic, compare with the champion's baseline, raise the alarm.

    The champion is what the endpoint serves (endpoint -> config -> model): a promoted
    model under ``training/``, or the pinned model (``extra_model_data_urls``)."""
    capture_prefix = f"{n.endpoint}/"  # SageMaker writes <endpoint>/<variant>/YYYY/…
    statements = [
        *_lambda_base(n, "drift", kms_key_arn),
        _publish_alerts(n),  # drift over the threshold
        _list_prefixes("ListCapture", n, n.capture_bucket, [capture_prefix]),
        _allow("ReadCapture", ["s3:GetObject"], _objects(n, n.capture_bucket, capture_prefix)),
        # ListBucket makes a missing object a 404 rather than a 403 (the first run has no
        # drift state yet: get_json returns None).
        _list_prefixes(
            "ListDriftStateAndBaselines",
            n,
            n.artifacts_bucket,
            [c.DRIFT_STATE_KEY_PREFIX, c.TRAINING_PREFIX],
        ),
        _allow(
            "ReadWriteDriftState",
            ["s3:GetObject", "s3:PutObject"],
            _objects(n, n.artifacts_bucket, c.DRIFT_STATE_KEY_PREFIX),
        ),
        _allow(
            "ReadBaselines",
            ["s3:GetObject"],
            _objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
        _put_metrics([metric_namespace]),
        _allow("RaiseDriftAlarm", ["cloudwatch:SetAlarmState"], n.alarm_arn(n.drift_alarm)),
        _allow(
            "DescribeEndpoint",
            ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
            [n.sagemaker_arn("endpoint", n.endpoint), *_serving_names(n, "endpoint-config")],
        ),
        # the served model's ModelDataUrl (-> baseline.json)
        _allow("DescribeServingModel", ["sagemaker:DescribeModel"], _serving_names(n, "model")),
    ]
    pinned = _pinned_objects(n, extra_model_data_urls)
    if pinned:
        statements.append(_allow("ReadPinnedModelBaseline", ["s3:GetObject"], pinned))
    return document(*statements)
