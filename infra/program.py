"""The Pulumi program: composes one component per concern from :class:`Settings`.

``infra/__main__.py`` (what ``pulumi up`` runs) reads the configuration and calls
:func:`build`; the offline preview and the tests call the same ``__main__.main()``
under Pulumi's mock runtime (see :mod:`infra.preview`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.bundle import build_bundle
from infra.config import AL2023_AMI_PARAMETER, Settings
from infra.identity import Identity, IdentityArgs
from infra.monitoring import Monitoring, MonitoringArgs
from infra.naming import FUNCTIONS, Names
from infra.registry import Registry, RegistryArgs
from infra.retraining import Retraining, RetrainingArgs
from infra.serving import Serving, ServingArgs
from infra.storage import Storage, StorageArgs
from infra.training import Training, TrainingArgs
from lambdas import constants as c


def lambda_environment(
    settings: Settings,
    n: Names,
    *,
    kms_key_arn: pulumi.Input[str],
    sagemaker_role_arn: pulumi.Input[str],
    alert_topic_arn: pulumi.Input[str],
    training_hosts: pulumi.Input[str],
    training_jobs_queue_url: pulumi.Input[str],
    serving: dict[str, str],
) -> dict[str, pulumi.Input[str]]:
    """The one environment of the three functions (the table is added by Retraining).

    Left unset on purpose (the handlers default them): MLOPS_PRIMARY_METRIC,
    MLOPS_SUBNET_IDS, MLOPS_SECURITY_GROUP_IDS and the tuning knobs with defaults in
    ``lambdas.constants.DEFAULTS`` that this stack does not configure.
    """
    return {
        c.MODEL_NAME: n.job_prefix,
        c.RAW_BUCKET: n.raw_bucket,
        c.ARTIFACTS_BUCKET: n.artifacts_bucket,
        c.CAPTURE_BUCKET: n.capture_bucket,
        c.KMS_KEY_ARN: kms_key_arn,
        c.SAGEMAKER_ROLE_ARN: sagemaker_role_arn,
        c.MODEL_PACKAGE_GROUP: n.model_package_group,
        c.ALERT_TOPIC_ARN: alert_topic_arn,
        c.TRAINING_BACKEND: settings.training_backend,
        c.TRAINING_IMAGE_URI: settings.training_image_uri,
        c.TRAINING_INSTANCE_TYPE: settings.training_instance_type,
        c.TRAINING_MAX_SECONDS: str(settings.training_max_seconds),
        c.TRAINING_HYPERPARAMETERS: settings.training_hyperparameters,
        c.CODE_S3_URI: n.code_bundle_uri,
        c.NETWORK_ISOLATION: "false",
        c.TRAINING_HOSTS: training_hosts,
        c.TRAINING_JOBS_QUEUE_URL: training_jobs_queue_url,
        c.PROMOTION_MARGIN: repr(settings.promotion_margin),
        c.MAX_RETRIES: str(settings.max_retries),
        c.RETRY_BACKOFF_SECONDS: str(settings.retry_backoff_seconds),
        c.MIN_MINORITY_RECALL: repr(settings.min_minority_recall),
        c.APPROVAL_MODE: settings.approval_mode,
        c.REFERENCE_TOLERANCE: repr(settings.reference_tolerance),
        **(
            {}
            if settings.max_fairness_gap is None
            else {c.MAX_FAIRNESS_GAP: repr(settings.max_fairness_gap)}
        ),
        c.FAIRNESS_ACTION: settings.fairness_action,
        c.MAX_LABEL_SHIFT: repr(settings.max_label_shift),
        c.MIN_LABEL_AGREEMENT: repr(settings.min_label_agreement),
        c.MIN_LABEL_LEARNABILITY: repr(settings.min_label_learnability),
        c.MAX_DUPLICATE_SHARE: repr(settings.max_duplicate_share),
        c.DEPLOY_WAIT_SECONDS: str(settings.deploy_wait_seconds),
        c.ROLLOUT_MODE: settings.rollout_mode,
        c.AB_TRAFFIC_PERCENT: str(settings.ab_traffic_percent),
        c.ROLLOUT_MIN_REQUESTS: str(settings.rollout_min_requests),
        c.DRIFT_THRESHOLD: repr(settings.drift_threshold),
        c.DRIFT_ALARM_NAME: n.drift_alarm,
        c.DRIFT_WARN_THRESHOLD: repr(settings.drift_warn_threshold),
        c.DRIFT_WINDOWS: str(settings.drift_windows),
        c.DRIFT_MIN_SHARE: repr(settings.drift_min_share),
        c.QUALITY_WINDOW_HOURS: str(settings.quality_window_hours),
        c.QUALITY_TOLERANCE: repr(settings.quality_tolerance),
        c.QUALITY_WINDOWS: str(settings.quality_windows),
        c.QUALITY_MIN_ROWS: str(settings.quality_min_rows),
        c.QUALITY_ALARM_NAME: n.quality_alarm,
        c.FEEDBACK_TO_TRAINING: settings.feedback_to_training,
        c.METRIC_NAMESPACE: settings.metric_namespace,
        **serving,
    }


def build(
    settings: Settings,
    repo_root: Path,
    *,
    account_id: str | None = None,
    build_dir: Path | None = None,
) -> dict[str, Any]:
    """Declare every resource of the stack; return the stack outputs (not yet exported).

    ``account_id`` defaults to the caller's account (``aws.get_caller_identity``).
    """
    if account_id is None:
        account_id = aws.get_caller_identity().account_id
    n = Names.from_settings(settings, account_id)

    storage = Storage(
        "storage",
        StorageArgs(
            names=n,
            noncurrent_version_days=settings.noncurrent_version_days,
            capture_retention_days=settings.capture_retention_days,
            access_log_retention_days=settings.access_log_retention_days,
            raw_expiration_days=settings.raw_expiration_days,
        ),
    )
    key_arn = storage.key.arn

    monitoring = Monitoring(
        "monitoring",
        MonitoringArgs(
            names=n,
            kms_key_arn=key_arn,
            drift_threshold=settings.drift_threshold,
            drift_windows=settings.drift_windows,
            quality_tolerance=settings.quality_tolerance,
            quality_windows=settings.quality_windows,
            metric_namespace=settings.metric_namespace,
            endpoint_latency_p99_ms=settings.endpoint_latency_p99_ms,
            alert_email=settings.alert_email,
        ),
    )

    identity = Identity(
        "identity",
        IdentityArgs(
            names=n,
            kms_key_arn=key_arn,
            image_uris=[settings.training_image_uri, settings.serving_image_uri],
            metric_namespace=settings.metric_namespace,
            pinned_model_data_urls=(
                [settings.pinned_model_data_url] if settings.pinned_model_data_url else []
            ),
            limits=policies.Limits.from_settings(settings),
        ),
    )
    registry = Registry("registry", RegistryArgs(names=n))

    ami_id: pulumi.Input[str] = (
        settings.ec2_ami_id or aws.ssm.get_parameter_output(name=AL2023_AMI_PARAMETER).value
    )
    training = Training(
        "training",
        TrainingArgs(
            names=n,
            kms_key_arn=key_arn,
            artifacts_bucket=storage.buckets["artifacts"].id,
            bundle=build_bundle(repo_root, build_dir),
            ami_id=ami_id,
            ec2_instance_type=settings.ec2_instance_type,
            instance_profile_arn=identity.instance_profile.arn,
            ec2_role_arn=identity.roles["ec2-training"].arn,
            retrain_role=identity.roles["retrain"].id,
            retrain_role_arn=identity.roles["retrain"].arn,
            autoscaling_role_arn=storage.autoscaling_role.arn,
            availability_zones=aws.get_availability_zones_output(state="available").names,
        ),
    )

    serving = Serving(
        "serving",
        ServingArgs(
            names=n,
            endpoint_mode=settings.endpoint_mode,
            serving_image_uri=settings.serving_image_uri,
            serverless_memory_mb=settings.serverless_memory_mb,
            serverless_max_concurrency=settings.serverless_max_concurrency,
            endpoint_instance_type=settings.endpoint_instance_type,
            endpoint_instance_count=settings.endpoint_instance_count,
            capture_sample_percent=settings.capture_sample_percent,
            canary_percent=settings.canary_percent,
            autoscaling_min=settings.autoscaling_min,
            autoscaling_max=settings.autoscaling_max,
            autoscaling_target=settings.autoscaling_target,
            rollback_alarm_names=monitoring.rollback_alarm_names,
            pinned_model_data_url=settings.pinned_model_data_url,
            sagemaker_role_arn=identity.roles["sagemaker"].arn,
            kms_key_arn=key_arn,
            capture_bucket=n.capture_bucket,
            depends_on=[
                identity.role_policies["sagemaker"],
                training.code_bundle,
                *(monitoring.alarms[a] for a in ("endpoint-5xx", "endpoint-latency")),
            ],
        ),
    )

    retraining = Retraining(
        "retraining",
        RetrainingArgs(
            names=n,
            kms_key_arn=key_arn,
            role_arns={kind: identity.roles[kind].arn for kind in FUNCTIONS},
            environment=lambda_environment(
                settings,
                n,
                kms_key_arn=key_arn,
                sagemaker_role_arn=identity.roles["sagemaker"].arn,
                alert_topic_arn=monitoring.topic.arn,
                training_hosts=training.hosts.name,
                training_jobs_queue_url=training.jobs_queue.url,
                serving=serving.environment,
            ),
            lambdas_dir=repo_root / "lambdas",
            powertools_layer_arn=settings.powertools_layer_arn,
            timeout_seconds=settings.lambda_timeout_seconds,
            memory_mb=settings.lambda_memory_mb,
            reserved_concurrency=settings.lambda_reserved_concurrency,
            log_retention_days=settings.log_retention_days,
            retrain_schedule=settings.retrain_schedule,
            drift_schedule=settings.drift_schedule,
            quality_schedule=settings.quality_schedule,
            rollout_check_schedule=(
                settings.rollout_check_schedule if settings.rollout_mode != "direct" else None
            ),
            depends_on=[identity.role_policies[kind] for kind in FUNCTIONS],
        ),
    )

    buckets = storage.buckets
    return {
        "region": settings.region,
        "modelName": n.job_prefix,
        "rawBucket": buckets["raw"].bucket,
        "artifactsBucket": buckets["artifacts"].bucket,
        "captureBucket": buckets["capture"].bucket,
        "accessLogBucket": buckets["accessLog"].bucket,
        "kmsKeyArn": key_arn,
        "sagemakerRoleArn": identity.roles["sagemaker"].arn,
        "retrainRoleArn": identity.roles["retrain"].arn,
        "promoteRoleArn": identity.roles["promote"].arn,
        "driftRoleArn": identity.roles["drift"].arn,
        "qualityRoleArn": identity.roles["quality"].arn,
        "ec2TrainingRoleArn": identity.roles["ec2-training"].arn,
        "ec2InstanceProfileArn": identity.instance_profile.arn,
        "retrainFunctionName": retraining.functions["retrain"].name,
        "promoteFunctionName": retraining.functions["promote"].name,
        "driftFunctionName": retraining.functions["drift"].name,
        "qualityFunctionName": retraining.functions["quality"].name,
        "idempotencyTable": retraining.table.name,
        "alertTopicArn": monitoring.topic.arn,
        "modelPackageGroupName": registry.group.model_package_group_name,
        "endpointName": serving.endpoint_name,
        "endpointMode": settings.endpoint_mode,
        "pulumiManagedEndpoint": serving.endpoint is not None,
        "launchTemplateId": training.launch_template.id,
        "trainingHosts": training.hosts.name,
        "trainingJobsQueueUrl": training.jobs_queue.url,
        "codeBundleUri": training.code_bundle_uri,
        "driftAlarmName": n.drift_alarm,
        "qualityAlarmName": n.quality_alarm,
        "rollbackAlarmNames": list(n.rollback_alarms),
        "lambdaEnvironment": retraining.environment,
    }
