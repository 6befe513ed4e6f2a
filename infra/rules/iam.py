"""IAM rules: no wildcard actions, no public principal, no broad managed policies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra.rules.documents import labelled_statements, policy_documents, public_principal
from infra.rules.props import as_list
from infra.rules.registry import RuleSet
from infra.rules.resource_types import (
    ATTACHMENT_TYPES,
    FORBIDDEN_MANAGED_POLICIES,
    POLICY_DOCUMENT_TYPES,
    RESOURCE_POLICY_TYPES,
    ROLE,
)

RULES = RuleSet()


@RULES.resource(
    "iam-no-wildcard-actions",
    "IAM and resource policies allow no '*' action, no 'service:*' on '*', no NotAction",
    POLICY_DOCUMENT_TYPES | {ROLE},
)
def no_wildcard_actions(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No Allow of every action (``*``), of a whole service (``svc:*``) on every
    resource, and no Allow with NotAction."""
    problems: list[str] = []
    for label, sid, statement in labelled_statements(
        policy_documents(resource_type, props), problems
    ):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement:
            problems.append(f"{label}: statement {sid} allows NotAction")
        resources = as_list(statement.get("Resource"))
        for action in as_list(statement.get("Action")):
            if action == "*":
                problems.append(f"{label}: statement {sid} allows every action ('*')")
            elif isinstance(action, str) and action.endswith(":*") and "*" in resources:
                problems.append(f"{label}: statement {sid} allows {action} on '*'")
    return problems


@RULES.resource(
    "iam-no-public-principal",
    "Resource and trust policies do not allow Principal '*' without a condition",
    RESOURCE_POLICY_TYPES | {ROLE},
)
def no_public_principal(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No resource or trust policy allows ``Principal: "*"`` without a condition."""
    problems: list[str] = []
    docs = policy_documents(resource_type, props) if resource_type in RESOURCE_POLICY_TYPES else []
    if resource_type == ROLE:
        docs = [("assume role policy", props.get("assumeRolePolicy"))]
    for label, sid, statement in labelled_statements(docs, problems):
        if (
            statement.get("Effect") == "Allow"
            and public_principal(statement.get("Principal"))
            and not statement.get("Condition")
        ):
            problems.append(f"{label}: statement {sid} allows anyone ('*')")
    return problems


@RULES.resource(
    "iam-no-full-access-managed-policies",
    "No *FullAccess / AdministratorAccess / PowerUserAccess managed policy is attached",
    ATTACHMENT_TYPES | {ROLE},
)
def no_full_access_managed_policies(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No ``*FullAccess`` (or administrator / power user) AWS managed policy attached."""
    if resource_type == ROLE:
        arns = as_list(props.get("managedPolicyArns"))
    else:
        arns = as_list(props.get("policyArn"))
    problems = []
    for arn in arns:
        policy_name = str(arn).rsplit("/", 1)[-1]
        if policy_name.endswith("FullAccess") or policy_name in FORBIDDEN_MANAGED_POLICIES:
            problems.append(f"attaches the broad managed policy {policy_name}")
    return problems
