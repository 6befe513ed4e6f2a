"""Trust policies: which AWS service may assume a role, and on whose behalf."""

from __future__ import annotations

from typing import Any

from infra.policies.statements import Document, document


def assume_role_policy(
    service: str, *, source_account: str | None = None, source_arn: str | None = None
) -> Document:
    """Trust policy letting one AWS service principal assume the role.

    ``source_account`` / ``source_arn`` add the confused-deputy guard AWS recommends
    (``aws:SourceAccount``, ``aws:SourceArn``): the service may assume the role only when
    acting for this account (and its resources). Only for services that set those keys
    when they assume a role: EC2 does not for an instance profile, so its trust has none
    (that role is reachable only through the stack's instance profile and launch
    template, and ``iam:PassRole`` to it is limited to EC2)."""
    statement: dict[str, Any] = {
        "Sid": "TrustService",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    condition: dict[str, Any] = {}
    if source_account:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return document(statement)
