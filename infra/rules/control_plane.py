"""Rules for the control plane's queues, topic, table, log groups and functions: encrypted
with the stack key, bounded, traced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.rules.props import is_set, is_true, lookup
from infra.rules.registry import RuleSet
from infra.rules.resource_types import FUNCTION, LOG_GROUP, QUEUE, TABLE, TOPIC

RULES = RuleSet()


@RULES.resource(
    "sqs-kms",
    "SQS queues are KMS-encrypted",
    {QUEUE},
)
def queue_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not is_set(props.get("kmsMasterKeyId")):
        return ["queue is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


@RULES.resource(
    "sns-kms",
    "SNS topics are KMS-encrypted",
    {TOPIC},
)
def topic_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not is_set(props.get("kmsMasterKeyId")):
        return ["topic is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


@RULES.resource(
    "dynamodb-kms-pitr",
    "DynamoDB tables use a customer-managed KMS key and point-in-time recovery",
    {TABLE},
)
def table_kms_pitr(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if not (
        is_true(lookup(props, "serverSideEncryption", "enabled"))
        and is_set(lookup(props, "serverSideEncryption", "kmsKeyArn"))
    ):
        problems.append("table is not encrypted with a customer-managed KMS key")
    if not is_true(lookup(props, "pointInTimeRecovery", "enabled")):
        problems.append("point-in-time recovery is off")
    return problems


@RULES.resource(
    "logs-kms-retention",
    "Log groups are KMS-encrypted and have a retention",
    {LOG_GROUP},
)
def log_group_kms_retention(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if not is_set(props.get("kmsKeyId")):
        problems.append("log group is not encrypted with a KMS key (kmsKeyId)")
    retention = props.get("retentionInDays")
    if not isinstance(retention, int | float) or retention <= 0:
        problems.append("log group keeps logs forever (retentionInDays unset)")
    return problems


@RULES.resource(
    "lambda-dlq-concurrency-tracing",
    "Lambda functions have a DLQ, reserved concurrency and active tracing",
    {FUNCTION},
)
def lambda_hardened(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A dead-letter queue, reserved concurrency and active tracing."""
    problems = []
    if not is_set(lookup(props, "deadLetterConfig", "targetArn")):
        problems.append("no dead-letter queue (deadLetterConfig.targetArn)")
    reserved = props.get("reservedConcurrentExecutions")
    if not isinstance(reserved, int | float) or reserved < 1:
        problems.append("no reserved concurrency (reservedConcurrentExecutions >= 1)")
    if lookup(props, "tracingConfig", "mode") != "Active":
        problems.append("X-Ray tracing is not Active")
    return problems
