"""Trust policies: which AWS service may assume a role."""

from __future__ import annotations

from infra.policies.statements import Document, document


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
