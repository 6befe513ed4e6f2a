"""Statements that several role policies share: object prefixes, the stack key, metrics,
pinned models."""

from __future__ import annotations

from collections.abc import Sequence

from infra.naming import Names
from infra.policies.limits import KEY_SERVICES, via
from infra.policies.statements import Statement, allow

KMS_DATA_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]


def objects(n: Names, bucket: str, prefix: str) -> str:
    return f"{n.bucket_arn(bucket)}/{prefix}*"


def list_prefixes(
    sid: str,
    n: Names,
    bucket: str,
    prefixes: Sequence[str],
    actions: Sequence[str] = ("s3:ListBucket",),
) -> Statement:
    patterns = sorted({p for prefix in prefixes for p in (prefix, f"{prefix}*")})
    return allow(
        sid,
        actions,
        n.bucket_arn(bucket),
        Condition={"StringLike": {"s3:prefix": patterns}},
    )


def use_stack_key(n: Names, kms_key_arn: str, principal: str) -> Statement:
    """Data-key use of the stack key, only through the services ``principal`` calls."""
    return allow(
        "UseStackKey",
        KMS_DATA_ACTIONS,
        kms_key_arn,
        Condition=via(n.region, KEY_SERVICES[principal]),
    )


def grant_stack_key(n: Names, kms_key_arn: str) -> Statement:
    # SageMaker encrypts ML storage volumes and captured data through a grant on the key.
    return allow(
        "GrantStackKeyToAwsServices",
        ["kms:CreateGrant"],
        kms_key_arn,
        Condition={
            "Bool": {"kms:GrantIsForAWSResource": "true"},
            **via(n.region, ("sagemaker",)),
        },
    )


def put_metrics(namespaces: Sequence[str]) -> Statement:
    # cloudwatch:PutMetricData has no resource-level permission: "*" is required; the
    # namespace condition limits it to this stack's metrics.
    return allow(
        "PutOwnMetrics",
        ["cloudwatch:PutMetricData"],
        "*",
        Condition={"StringLike": {"cloudwatch:namespace": list(namespaces)}},
    )


def pinned_objects(n: Names, urls: Sequence[str]) -> list[str]:
    return [f"arn:{n.partition}:s3:::{url.removeprefix('s3://')}" for url in urls]
