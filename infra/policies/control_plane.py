"""Policies of the control plane's functions: retrain (and its EC2 hosts), promote, drift, quality.

Each function gets its own role; the statements name exactly the resources its handler
touches (tests/lambdas_tests/test_least_privilege.py replays the handlers against these documents).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from infra.naming import Names
from infra.policies.grants import (
    grant_stack_key,
    list_prefixes,
    objects,
    pinned_objects,
    put_metrics,
    use_stack_key,
)
from infra.policies.limits import DEFAULT_LIMITS, Limits
from infra.policies.rollout import trial_statements
from infra.policies.statements import Document, Statement, allow, document
from lambdas import constants as c


def _publish_alerts(n: Names) -> Statement:
    return allow("PublishAlerts", ["sns:Publish"], n.topic_arn)


def _lambda_base(n: Names, kind: str, kms_key_arn: str) -> list[Statement]:
    # The Lambda service and runtime act with the role: logs, the DLQ (SSE-KMS), traces,
    # the environment (encrypted with the stack key).
    return [
        allow(
            "WriteOwnLogs",
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            n.log_group_arn(n.function_log_group(kind)) + ":*",
        ),
        allow("SendToOwnDeadLetterQueue", ["sqs:SendMessage"], n.queue_arn(kind)),
        # X-Ray has no resource-level permissions: "*" is the only valid resource.
        allow("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "*"),
        use_stack_key(n, kms_key_arn, kind),
    ]


def _pass_role(sid: str, role_arn: str, service: str) -> Statement:
    return allow(
        sid,
        ["iam:PassRole"],
        role_arn,
        Condition={"StringEquals": {"iam:PassedToService": service}},
    )


def _list_model_packages(n: Names) -> Statement:
    # The authorization reference gives ListModelPackages the model-package resource type:
    # packages of this account and region (a listing names no one package).
    return allow(
        "ListModelPackages", ["sagemaker:ListModelPackages"], n.sagemaker_arn("model-package", "*")
    )


def _model_packages(n: Names) -> list[str]:
    group = n.model_package_group
    return [
        n.sagemaker_arn("model-package-group", group),
        n.sagemaker_arn("model-package", f"{group}/*"),
    ]


def _idempotency_records(n: Names) -> Statement:
    # powertools idempotency (Get/Put/Update/DeleteItem) and the training lock. No Scan:
    # only `mlops status` scans the table, with the operator's credentials.
    return allow(
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


def _no_vpc() -> dict[str, dict[str, str]]:
    # The stack runs SageMaker without a VPC: a job or model may not be put into one
    # (its network interfaces would land in a network the stack does not own).
    return {"Null": {"sagemaker:VpcSubnets": "true", "sagemaker:VpcSecurityGroupIds": "true"}}


def retrain_policy(
    n: Names, *, kms_key_arn: str, sagemaker_role_arn: str, limits: Limits = DEFAULT_LIMITS
) -> Document:
    """Retrain: start a training job for new data, once, with the champion's model as its
    ``champion`` channel (see also :func:`start_training_host_policy` for the EC2 backend)."""
    return document(
        *_lambda_base(n, "retrain", kms_key_arn),
        allow(
            # Only as the stack configures them: its key on the volume and the output, its
            # instance type, its time limit, no VPC.
            "StartTrainingJobs",
            ["sagemaker:CreateTrainingJob"],
            n.sagemaker_arn("training-job", f"{n.job_prefix}-*"),
            Condition={
                "ArnEquals": {
                    "sagemaker:VolumeKmsKey": kms_key_arn,
                    "sagemaker:OutputKmsKey": kms_key_arn,
                },
                "ForAllValues:StringEquals": {
                    "sagemaker:InstanceTypes": [limits.training_instance_type]
                },
                # numbers as text: IAM's own spelling (and what every validator reads)
                "NumericLessThanEquals": {
                    "sagemaker:MaxRuntimeInSeconds": str(limits.training_max_seconds)
                },
                **_no_vpc(),
            },
        ),
        allow(
            # DescribeTrainingJob: is the job holding the lock still running? AddTags: the
            # job is created with tags.
            "RunTrainingJobs",
            ["sagemaker:DescribeTrainingJob", "sagemaker:AddTags"],
            n.sagemaker_arn("training-job", f"{n.job_prefix}-*"),
        ),
        # sagemaker:ListTrainingJobs has no resource-level permission; it is read-only and
        # needed for the "one training job in flight" guard.
        allow("ListTrainingJobs", ["sagemaker:ListTrainingJobs"], "*"),
        _pass_role("PassSageMakerRole", sagemaker_role_arn, "sagemaker.amazonaws.com"),
        _idempotency_records(n),
        # The data version is computed from the listing (keys, version IDs, ETags): no
        # object is read. SageMaker reads the data and the code bundle with its own role.
        list_prefixes(
            "ListIncomingData", n, n.raw_bucket, [c.INCOMING_PREFIX], ["s3:ListBucketVersions"]
        ),
        allow("WriteLineage", ["s3:PutObject"], objects(n, n.artifacts_bucket, c.LINEAGE_PREFIX)),
        # reference/current.json names the frozen reference set the job is scored on
        # (its "reference" channel, read by SageMaker with its own role); ListBucket makes
        # "none yet" a 404
        list_prefixes("ListReferenceSet", n, n.artifacts_bucket, [c.REFERENCE_PREFIX]),
        allow(
            "ReadReferenceManifest",
            ["s3:GetObject"],
            f"{n.bucket_arn(n.artifacts_bucket)}/{c.REFERENCE_MANIFEST_KEY}",
        ),
        # The champion (the latest Approved package of the group) becomes the job's
        # "champion" channel: its ModelDataUrl, read by SageMaker with its own role.
        _list_model_packages(n),
        allow(
            "ReadChampionPackage",
            ["sagemaker:DescribeModelPackage"],
            n.sagemaker_arn("model-package", f"{n.model_package_group}/*"),
        ),
    )


def start_training_host_policy(n: Names) -> Document:
    """Retrain, EC2 backend: queue the job and ask the hosts' group for one host.

    No ``ec2:RunInstances``, no ``iam:PassRole``: the group launches from the stack's
    launch template with its own service-linked role, so retrain cannot start an instance
    with any other role, image, network or user data (the escalation path those two
    actions open together)."""
    return document(
        allow("QueueTrainingJob", ["sqs:SendMessage"], n.training_jobs_queue_arn),
        allow("StartTrainingHost", ["autoscaling:SetDesiredCapacity"], n.training_hosts_arn),
        # autoscaling:DescribeAutoScalingGroups has no resource-level permission (read-only:
        # the in-flight guard reads the group's desired capacity and hosts).
        allow("DescribeTrainingHosts", ["autoscaling:DescribeAutoScalingGroups"], "*"),
    )


def _endpoint_config_limits(n: Names, kms_key_arn: str, limits: Limits) -> dict[str, Any]:
    # The stack's endpoint shape only, serving this stack's models.
    models = {"ForAllValues:ArnLike": {"sagemaker:ModelArn": _serving_names(n, "model")}}
    if limits.endpoint_mode == "instance":
        return {
            "ArnEquals": {"sagemaker:VolumeKmsKey": kms_key_arn},
            "ForAllValues:StringEquals": {
                "sagemaker:InstanceTypes": [limits.endpoint_instance_type]
            },
            **models,
        }
    return {
        "NumericLessThanEquals": {
            "sagemaker:ServerlessMemorySize": str(limits.serverless_memory_mb),
            "sagemaker:ServerlessMaxConcurrency": str(limits.serverless_max_concurrency),
        },
        **models,
    }


def promote_policy(
    n: Names, *, kms_key_arn: str, sagemaker_role_arn: str, limits: Limits = DEFAULT_LIMITS
) -> Document:
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
        grant_stack_key(n, kms_key_arn),
        allow(
            "ReadTrainingJobs",
            # ListTags: promote believes an event only for a job tagged with this model
            ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
            n.sagemaker_arn("training-job", f"{n.job_prefix}-*"),
        ),
        allow(
            "RegisterModelPackages",
            [
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:UpdateModelPackage",
                "sagemaker:AddTags",
            ],
            _model_packages(n),
        ),
        _list_model_packages(n),
        allow(
            "CreateModels",
            ["sagemaker:CreateModel"],
            _serving_names(n, "model"),
            Condition=_no_vpc(),
        ),
        allow(
            "ManageModels",
            ["sagemaker:DescribeModel", "sagemaker:AddTags"],
            _serving_names(n, "model"),
        ),
        allow(
            "CreateEndpointConfigs",
            ["sagemaker:CreateEndpointConfig"],
            endpoint_configs,
            Condition=_endpoint_config_limits(n, kms_key_arn, limits),
        ),
        allow(
            "ManageEndpointConfigs",
            ["sagemaker:DescribeEndpointConfig", "sagemaker:AddTags"],
            endpoint_configs,
        ),
        allow(
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
        allow(
            # Scalable target ids are generated by AWS; the ARN pattern keeps it to this
            # account and region, the conditions to SageMaker variants' instance counts.
            "ScaleEndpointVariant",
            [
                "application-autoscaling:RegisterScalableTarget",
                "application-autoscaling:PutScalingPolicy",
            ],
            n.arn("application-autoscaling", "scalable-target/*"),
            Condition={
                "StringEquals": {
                    "application-autoscaling:service-namespace": "sagemaker",
                    "application-autoscaling:scalable-dimension": (
                        "sagemaker:variant:DesiredInstanceCount"
                    ),
                }
            },
        ),
        # application-autoscaling:DescribeScalingPolicies has no resource-level permission.
        allow("DescribeScaling", ["application-autoscaling:DescribeScalingPolicies"], "*"),
        allow(
            # PutScalingPolicy (target tracking) creates and manages the policy's alarms
            # as the caller: "TargetTracking-endpoint/<endpoint>/variant/<variant>-Alarm…".
            "ManageTargetTrackingAlarms",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"],
            n.alarm_arn(f"TargetTracking-endpoint/{n.endpoint}/variant/*"),
        ),
        allow(
            # UpdateEndpoint with AutoRollbackConfiguration reads the rollback alarms.
            "ReadRollbackAlarms",
            ["cloudwatch:DescribeAlarms"],
            [n.alarm_arn(name) for name in n.rollback_alarms],
        ),
        _idempotency_records(n),
        allow(
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
        list_prefixes(
            "ListTrainingOutput",
            n,
            n.artifacts_bucket,
            [c.TRAINING_PREFIX, c.MODELS_PREFIX, c.REFERENCE_PREFIX],
        ),
        allow(
            "ReadTrainingOutput",
            ["s3:GetObject"],
            [
                objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
                objects(n, n.artifacts_bucket, c.MODELS_PREFIX),
                objects(n, n.artifacts_bucket, c.REFERENCE_PREFIX),
            ],
        ),
        allow(
            # a job's lineage: its data versions go on the model card (and, EC2 backend,
            # the record retrain wrote is what vouches for the job)
            "ReadLineage",
            ["s3:GetObject"],
            objects(n, n.artifacts_bucket, c.LINEAGE_PREFIX),
        ),
        allow(
            # the first approved model's test split becomes the frozen reference set
            # (reference/<digest>/reference.csv, current.json, history/); jobs never write it
            "FreezeReferenceSet",
            ["s3:PutObject"],
            objects(n, n.artifacts_bucket, c.REFERENCE_PREFIX),
        ),
        allow(
            # models/<job>/model.tar.gz: the approved archive's bytes, what serves, and its
            # model card; no other role may write under models/
            "ReleaseApprovedModels",
            ["s3:PutObject"],
            objects(n, n.artifacts_bucket, c.MODELS_PREFIX),
        ),
        allow(
            # training/<job>/evaluation.json: the copy the model package's metrics point at
            "WriteEvaluationCopies",
            ["s3:PutObject"],
            objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
        ),
        *(trial_statements(n) if limits.rollout_mode != "direct" else []),
    )


def _watch_serving(
    n: Names,
    kind: str,
    *,
    kms_key_arn: str,
    metric_namespace: str,
    extra_model_data_urls: Sequence[str],
    state_prefix: str,
    sids: tuple[str, str, str, str, str],
    alarm_name: str,
) -> list[Statement]:
    """What a monitor of the serving model needs: its own state, the captured traffic, the
    champion's archive (endpoint -> config -> model: a promoted model under ``models/`` or
    ``training/``, or the pinned one), metrics, its alarm and alerts.

    ``sids``: (list state and archives, read/write state, read archives, raise the alarm,
    read the pinned archive)."""
    list_sid, state_sid, read_sid, alarm_sid, pinned_sid = sids
    capture_prefix = f"{n.endpoint}/"  # SageMaker writes <endpoint>/<variant>/YYYY/…
    statements = [
        *_lambda_base(n, kind, kms_key_arn),
        _publish_alerts(n),
        list_prefixes("ListCapture", n, n.capture_bucket, [capture_prefix]),
        allow("ReadCapture", ["s3:GetObject"], objects(n, n.capture_bucket, capture_prefix)),
        # ListBucket makes a missing object a 404 rather than a 403 (the first run has no
        # state yet: get_json returns None).
        list_prefixes(
            list_sid, n, n.artifacts_bucket, [state_prefix, c.TRAINING_PREFIX, c.MODELS_PREFIX]
        ),
        allow(
            state_sid,
            ["s3:GetObject", "s3:PutObject"],
            objects(n, n.artifacts_bucket, state_prefix),
        ),
        allow(
            read_sid,
            ["s3:GetObject"],
            [
                objects(n, n.artifacts_bucket, c.TRAINING_PREFIX),
                objects(n, n.artifacts_bucket, c.MODELS_PREFIX),
            ],
        ),
        put_metrics([metric_namespace]),
        allow(alarm_sid, ["cloudwatch:SetAlarmState"], n.alarm_arn(alarm_name)),
        allow(
            "DescribeEndpoint",
            ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig"],
            [n.sagemaker_arn("endpoint", n.endpoint), *_serving_names(n, "endpoint-config")],
        ),
        # the served model's ModelDataUrl (-> its archive)
        allow("DescribeServingModel", ["sagemaker:DescribeModel"], _serving_names(n, "model")),
    ]
    pinned = pinned_objects(n, extra_model_data_urls)
    if pinned:
        statements.append(allow(pinned_sid, ["s3:GetObject"], pinned))
    return statements


def quality_policy(
    n: Names,
    *,
    kms_key_arn: str,
    metric_namespace: str,
    extra_model_data_urls: Sequence[str] = (),
) -> Document:
    """Quality: join captured predictions to labels, publish, alarm, feed labelled rows back.

    It reads the champion's ``evaluation.json``, captures and ``ground-truth/`` labels; it
    writes only its state and new ``incoming/<date>/feedback-*.csv`` files (never over raw
    data: it checks first)."""
    feedback = f"{c.INCOMING_PREFIX}*/{c.FEEDBACK_FILE_PREFIX}"
    return document(
        *_watch_serving(
            n,
            "quality",
            kms_key_arn=kms_key_arn,
            metric_namespace=metric_namespace,
            extra_model_data_urls=extra_model_data_urls,
            state_prefix=c.QUALITY_STATE_KEY_PREFIX,
            sids=(
                "ListQualityStateAndModels",
                "ReadWriteQualityState",
                "ReadChampionEvaluation",
                "RaiseQualityAlarm",
                "ReadPinnedModelEvaluation",
            ),
            alarm_name=n.quality_alarm,
        ),
        # ListBucket on incoming/ makes the never-overwrite check a 404, not a 403
        list_prefixes(
            "ListLabelsAndFeedback", n, n.raw_bucket, [c.GROUND_TRUTH_PREFIX, c.INCOMING_PREFIX]
        ),
        allow("ReadLabels", ["s3:GetObject"], objects(n, n.raw_bucket, c.GROUND_TRUTH_PREFIX)),
        # GetObject: HeadObject first, so a feedback file never replaces another
        allow(
            "WriteFeedback", ["s3:GetObject", "s3:PutObject"], objects(n, n.raw_bucket, feedback)
        ),
    )


def drift_policy(
    n: Names,
    *,
    kms_key_arn: str,
    metric_namespace: str,
    extra_model_data_urls: Sequence[str] = (),
) -> Document:
    """Drift: read captured traffic, compare with the champion's baseline, raise the alarm."""
    return document(
        *_watch_serving(
            n,
            "drift",
            kms_key_arn=kms_key_arn,
            metric_namespace=metric_namespace,
            extra_model_data_urls=extra_model_data_urls,
            state_prefix=c.DRIFT_STATE_KEY_PREFIX,
            sids=(
                "ListDriftStateAndBaselines",
                "ReadWriteDriftState",
                "ReadBaselines",
                "RaiseDriftAlarm",
                "ReadPinnedModelBaseline",
            ),
            alarm_name=n.drift_alarm,
        )
    )
