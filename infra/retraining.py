"""Retraining: the control-plane Lambdas, their queues and logs, the triggers, the table."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.naming import FUNCTIONS, Names
from lambdas import constants as c

RUNTIME = "python3.11"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


def lambda_code(lambdas_dir: Path) -> pulumi.AssetArchive:
    """The functions' zip: the ``lambdas/`` package only (boto3 comes with the runtime,
    Powertools with its layer)."""
    return pulumi.AssetArchive({"lambdas": pulumi.FileArchive(str(lambdas_dir))})


def s3_object_created_pattern(raw_bucket: str, prefix: str = c.INCOMING_PREFIX) -> dict[str, Any]:
    return {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [raw_bucket]},
            "object": {"key": [{"prefix": prefix}]},
        },
    }


def training_state_pattern(job_prefix: str) -> dict[str, Any]:
    return {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Training Job State Change"],
        "detail": {
            "TrainingJobName": [{"prefix": f"{job_prefix}-"}],
            "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
        },
    }


def control_plane_pattern(
    detail_types: list[str], job_prefix: str | None = None, model: str | None = None
) -> dict[str, Any]:
    """Events the control plane itself sends (the CLI's requests, the EC2 training host),
    for this stack only: a job name of its own, or ``detail.model`` its model name."""
    pattern: dict[str, Any] = {"source": [c.EVENT_SOURCE], "detail-type": detail_types}
    detail: dict[str, Any] = {}
    if job_prefix is not None:
        detail["TrainingJobName"] = [{"prefix": f"{job_prefix}-"}]
    if model is not None:
        detail["model"] = [model]
    if detail:
        pattern["detail"] = detail
    return pattern


def package_state_pattern(group: str) -> dict[str, Any]:
    """A person approved or rejected one of this stack's model packages (or the gate did)."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [c.PACKAGE_STATE_CHANGE],
        "detail": {
            "ModelPackageGroupName": [group],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }


def endpoint_state_pattern(endpoint: str) -> dict[str, Any]:
    """This stack's endpoint finished a change (a rollout ended, or rolled back). The event
    spells the status as EventBridge's examples show (IN_SERVICE), not as the API does."""
    return {
        "source": ["aws.sagemaker"],
        "detail-type": [c.ENDPOINT_STATE_CHANGE],
        "detail": {"EndpointName": [endpoint], "EndpointStatus": ["IN_SERVICE", "FAILED"]},
    }


def alarm_state_pattern(alarm_name: str) -> dict[str, Any]:
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
    }


def _dlq_policy_json(n: Names, kind: str, role_arn: str) -> str:
    return json.dumps(policies.dlq_policy(n, kind, role_arn))


@dataclass(frozen=True)
class Trigger:
    """One EventBridge rule and the function it invokes."""

    kind: str  # rule name suffix
    function: str
    description: str
    schedule: str | None = None
    pattern: dict[str, Any] | None = None
    input: dict[str, Any] | None = None  # the event the target gets instead of the rule's


def triggers(
    n: Names,
    *,
    retrain_schedule: str,
    drift_schedule: str,
    quality_schedule: str,
    rollout_check_schedule: str | None = None,
) -> list[Trigger]:
    """Every EventBridge rule of the stack, in a fixed order; the rollout check only for
    the shadow and A/B rollout modes (a direct rollout has no trial to judge)."""
    rollout = (
        [
            Trigger(
                "rollout-check",
                "promote",
                "Judge the challenger on trial beside the champion",
                schedule=rollout_check_schedule,
                input={"source": c.EVENT_SOURCE, "detail-type": c.ROLLOUT_CHECK, "detail": {}},
            )
        ]
        if rollout_check_schedule
        else []
    )
    return [
        Trigger("retrain-schedule", "retrain", "Scheduled retraining", schedule=retrain_schedule),
        Trigger(
            "raw-object-created",
            "retrain",
            "New data under raw/incoming/",
            pattern=s3_object_created_pattern(n.raw_bucket),
        ),
        Trigger(
            "drift-alarm",
            "retrain",
            "The drift alarm went to ALARM",
            pattern=alarm_state_pattern(n.drift_alarm),
        ),
        Trigger(
            "quality-alarm",
            "retrain",
            "The model-quality alarm went to ALARM",
            pattern=alarm_state_pattern(n.quality_alarm),
        ),
        Trigger(
            "training-state",
            "promote",
            "A training job of this stack finished",
            pattern=training_state_pattern(n.job_prefix),
        ),
        Trigger(
            "ec2-training-state",
            "promote",
            "The EC2 training host reported a finished job, or a manual promote request",
            pattern=control_plane_pattern(
                [c.TRAINING_STATE_CHANGE, c.PROMOTE_REQUEST], job_prefix=n.job_prefix
            ),
        ),
        Trigger(
            "package-approval",
            "promote",
            "A person approved or rejected a held model package: deploy or record it",
            pattern=package_state_pattern(n.model_package_group),
        ),
        Trigger(
            "endpoint-state",
            "promote",
            "The endpoint finished a rollout: confirm it serves the new model",
            pattern=endpoint_state_pattern(n.endpoint),
        ),
        Trigger(
            "training-ended",
            "retrain",
            "A training job ended: follow up data that arrived meanwhile, retry a killed job",
            pattern=training_state_pattern(n.job_prefix),
        ),
        Trigger(
            "ec2-training-ended",
            "retrain",
            "The EC2 training host reported a finished job: follow up, retry",
            pattern=control_plane_pattern([c.TRAINING_STATE_CHANGE], job_prefix=n.job_prefix),
        ),
        Trigger(
            "retrain-request",
            "retrain",
            "A manual retrain request for this stack's model",
            # detail.model is MLOPS_MODEL_NAME: other stacks' requests do not match
            pattern=control_plane_pattern([c.RETRAIN_REQUEST], model=n.job_prefix),
        ),
        Trigger("drift-schedule", "drift", "Scheduled drift check", schedule=drift_schedule),
        Trigger(
            "quality-schedule",
            "quality",
            "Scheduled model-quality check",
            schedule=quality_schedule,
        ),
        Trigger(
            "ground-truth-created",
            "quality",
            "New labels under raw/ground-truth/",
            pattern=s3_object_created_pattern(n.raw_bucket, c.GROUND_TRUTH_PREFIX),
        ),
        *rollout,
    ]


@dataclass
class RetrainingArgs:
    names: Names
    kms_key_arn: pulumi.Input[str]
    role_arns: Mapping[str, pulumi.Input[str]]  # kind -> role ARN
    environment: Mapping[str, pulumi.Input[str]]  # without the table (created here)
    lambdas_dir: Path
    powertools_layer_arn: str
    timeout_seconds: int
    memory_mb: int
    reserved_concurrency: int
    log_retention_days: int
    retrain_schedule: str
    drift_schedule: str
    quality_schedule: str
    rollout_check_schedule: str | None = None  # shadow / ab rollouts only
    # The role policies: a function is created after them (Lambda checks the DLQ grant).
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class Retraining(pulumi.ComponentResource):
    """Functions ``retrain``, ``promote``, ``drift``, ``quality``: own role, one environment from
    :mod:`lambdas.constants`, timeout, reserved concurrency, X-Ray, an encrypted DLQ only
    the function's role can send to, a KMS-encrypted log group with retention; the
    EventBridge rules that invoke them; the idempotency table (on-demand, KMS, PITR)."""

    functions: dict[str, aws.lambda_.Function]
    queues: dict[str, aws.sqs.Queue]
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    rules: dict[str, aws.cloudwatch.EventRule]

    def __init__(self, name: str, args: RetrainingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:retraining:Retraining", name, None, opts)
        n = args.names
        child = pulumi.ResourceOptions(parent=self)

        self.table = aws.dynamodb.Table(
            f"{name}-idempotency",
            name=n.table,
            billing_mode="PAY_PER_REQUEST",
            hash_key="id",
            attributes=[{"name": "id", "type": "S"}],
            ttl={"attribute_name": "expiration", "enabled": True},
            server_side_encryption={"enabled": True, "kms_key_arn": args.kms_key_arn},
            point_in_time_recovery={"enabled": True},
            opts=child,
        )
        self.environment: dict[str, pulumi.Input[str]] = {
            **args.environment,
            c.IDEMPOTENCY_TABLE: self.table.name,
        }
        code = lambda_code(args.lambdas_dir)

        self.functions, self.queues, self.log_groups = {}, {}, {}
        for kind in FUNCTIONS:
            role_arn = args.role_arns[kind]
            queue = aws.sqs.Queue(
                f"{name}-{kind}-dlq",
                name=n.dlq(kind),
                kms_master_key_id=args.kms_key_arn,
                kms_data_key_reuse_period_seconds=300,
                message_retention_seconds=DLQ_RETENTION_SECONDS,
                opts=child,
            )
            aws.sqs.QueuePolicy(
                f"{name}-{kind}-dlq-policy",
                queue_url=queue.url,
                policy=pulumi.Output.from_input(role_arn).apply(
                    functools.partial(_dlq_policy_json, n, kind)
                ),
                opts=child,
            )
            log_group = aws.cloudwatch.LogGroup(
                f"{name}-{kind}-logs",
                name=n.function_log_group(kind),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            self.queues[kind], self.log_groups[kind] = queue, log_group
            self.functions[kind] = aws.lambda_.Function(
                f"{name}-{kind}",
                name=n.function(kind),
                description=f"{n.prefix}: lambdas.{kind}.handler",
                role=role_arn,
                runtime=RUNTIME,
                handler=f"lambdas.{kind}.handler",
                code=code,
                architectures=["x86_64"],
                layers=[args.powertools_layer_arn] if args.powertools_layer_arn else None,
                timeout=args.timeout_seconds,
                memory_size=args.memory_mb,
                reserved_concurrent_executions=args.reserved_concurrency,
                dead_letter_config={"target_arn": queue.arn},
                environment={"variables": self.environment},
                kms_key_arn=args.kms_key_arn,
                tracing_config={"mode": "Active"},
                logging_config={"log_format": "JSON", "log_group": log_group.name},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, *args.depends_on]),
            )

        self.rules = {}
        for trigger in triggers(
            n,
            retrain_schedule=args.retrain_schedule,
            drift_schedule=args.drift_schedule,
            quality_schedule=args.quality_schedule,
            rollout_check_schedule=args.rollout_check_schedule,
        ):
            function = self.functions[trigger.function]
            rule = aws.cloudwatch.EventRule(
                f"{name}-{trigger.kind}",
                name=n.rule(trigger.kind),
                description=f"{trigger.description} -> {trigger.function}",
                schedule_expression=trigger.schedule,
                event_pattern=json.dumps(trigger.pattern) if trigger.pattern else None,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{trigger.kind}-target",
                rule=rule.name,
                target_id=trigger.function,
                arn=function.arn,
                input=json.dumps(trigger.input) if trigger.input else None,
                retry_policy={"maximum_retry_attempts": 4, "maximum_event_age_in_seconds": 3600},
                opts=child,
            )
            aws.lambda_.Permission(
                f"{name}-{trigger.kind}-invoke",
                action="lambda:InvokeFunction",
                function=function.name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                opts=child,
            )
            self.rules[trigger.kind] = rule

        self.register_outputs(
            {
                "idempotencyTable": self.table.name,
                **{f"{kind}FunctionName": fn.name for kind, fn in self.functions.items()},
                **{f"{kind}DeadLetterQueueUrl": q.url for kind, q in self.queues.items()},
            }
        )
