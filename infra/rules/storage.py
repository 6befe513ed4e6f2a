"""Storage rules: every bucket encrypted, private, TLS only, versioned, logged, with all
its companion resources; uploaded objects encrypted; the key rotates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.rules.documents import parse_policy, public_principal, statements
from infra.rules.props import as_list, is_false, is_set, is_true, lookup
from infra.rules.registry import RuleSet, StackResource
from infra.rules.resource_types import (
    BUCKET,
    BUCKET_POLICY,
    BUCKET_V2,
    ENCRYPTION,
    ENCRYPTION_V2,
    KMS_KEY,
    LIFECYCLE,
    LIFECYCLE_V2,
    LOGGING,
    LOGGING_V2,
    OBJECT,
    OBJECT_V2,
    OWNERSHIP,
    PUBLIC_ACCESS_BLOCK,
    VERSIONING,
    VERSIONING_V2,
)

RULES = RuleSet()


@RULES.resource(
    "s3-encryption-kms",
    "Bucket default encryption is SSE-KMS with a customer-managed key and a bucket key",
    {ENCRYPTION, ENCRYPTION_V2},
)
def bucket_encryption_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Default encryption is SSE-KMS with a customer key and an S3 bucket key."""
    rules = as_list(props.get("rules"))
    if not rules:
        return ["no default encryption rule"]
    problems = []
    for rule in rules:
        default = lookup(rule, "applyServerSideEncryptionByDefault")
        algorithm = lookup(default, "sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            problems.append(f"default encryption is {algorithm!r}, not SSE-KMS ('aws:kms')")
        elif not is_set(lookup(default, "kmsMasterKeyId")):
            problems.append("SSE-KMS without a customer-managed key (kmsMasterKeyId)")
        if not is_true(lookup(rule, "bucketKeyEnabled")):
            problems.append("S3 bucket key is not enabled (bucketKeyEnabled)")
    return problems


PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


@RULES.resource(
    "s3-public-access-block",
    "All four S3 public-access-block settings are on",
    {PUBLIC_ACCESS_BLOCK},
)
def public_access_block(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """All four S3 public-access-block flags are on."""
    return [f"{flag} is not true" for flag in PUBLIC_ACCESS_FLAGS if not is_true(props.get(flag))]


@RULES.resource(
    "s3-deny-insecure-transport",
    "Bucket policies deny requests without TLS (aws:SecureTransport false)",
    {BUCKET_POLICY},
)
def denies_insecure_transport(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The bucket policy denies every request made without TLS (aws:SecureTransport false)."""
    try:
        document = parse_policy(props.get("policy"))
    except ValueError as exc:
        return [f"not a valid policy document ({exc})"]
    for statement in statements(document):
        condition = lookup(statement, "Condition", "Bool", "aws:SecureTransport")
        actions = as_list(statement.get("Action"))
        if (
            statement.get("Effect") == "Deny"
            and public_principal(statement.get("Principal"))
            and ("s3:*" in actions or "*" in actions)
            and any(is_false(v) for v in as_list(condition))
        ):
            return []
    return ["no statement denies s3:* to everyone when aws:SecureTransport is false"]


@RULES.resource(
    "s3-ownership-enforced",
    "S3 object ownership is BucketOwnerEnforced (ACLs disabled)",
    {OWNERSHIP},
)
def ownership_enforced(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """ACLs are disabled: object ownership BucketOwnerEnforced."""
    ownership = lookup(props, "rule", "objectOwnership")
    if ownership != "BucketOwnerEnforced":
        return [f"object ownership is {ownership!r}, not 'BucketOwnerEnforced'"]
    return []


@RULES.resource(
    "s3-versioning-enabled",
    "S3 versioning is Enabled",
    {VERSIONING, VERSIONING_V2},
)
def versioning_enabled(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    status = lookup(props, "versioningConfiguration", "status")
    return [] if status == "Enabled" else [f"versioning status is {status!r}, not 'Enabled'"]


@RULES.resource(
    "s3-object-kms",
    "Objects the stack uploads use SSE-KMS with the stack key",
    {OBJECT, OBJECT_V2},
)
def object_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if props.get("serverSideEncryption") != "aws:kms" or not is_set(props.get("kmsKeyId")):
        return ["object is not uploaded with SSE-KMS and the stack key"]
    return []


@RULES.resource(
    "kms-key-rotation",
    "KMS keys rotate",
    {KMS_KEY},
)
def kms_rotation(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    return [] if is_true(props.get("enableKeyRotation")) else ["key rotation is not enabled"]


#: companion type -> what it gives a bucket
BUCKET_COMPANIONS: dict[str, tuple[frozenset[str], str]] = {
    "encryption": (frozenset({ENCRYPTION, ENCRYPTION_V2}), "default encryption"),
    "public-access-block": (frozenset({PUBLIC_ACCESS_BLOCK}), "public access block"),
    "policy": (frozenset({BUCKET_POLICY}), "bucket policy"),
    "versioning": (frozenset({VERSIONING, VERSIONING_V2}), "versioning"),
    "ownership": (frozenset({OWNERSHIP}), "ownership controls"),
    "lifecycle": (frozenset({LIFECYCLE, LIFECYCLE_V2}), "lifecycle rules"),
}


def _refers_to(resource: StackResource, prop: str, target: StackResource) -> bool:
    """Whether ``resource.props[prop]`` is the target bucket (by name or by dependency)."""
    if target.urn in resource.property_dependencies.get(prop, frozenset()):
        return True
    value = resource.props.get(prop)
    names = {target.props.get("bucket"), target.props.get("id")} - {None, ""}
    return isinstance(value, str) and value in names


@RULES.stack(
    "s3-bucket-companions",
    "Every bucket has encryption, public access block, policy, versioning, ownership "
    "controls, lifecycle rules and access logging",
)
def bucket_companions(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """Every bucket has encryption, a public access block, a policy, versioning, ownership
    controls and lifecycle rules, and logs its access unless it is the log target."""
    buckets = [r for r in resources if r.type in (BUCKET, BUCKET_V2)]
    problems = []
    for bucket in buckets:
        for types, what in BUCKET_COMPANIONS.values():
            if not any(r.type in types and _refers_to(r, "bucket", bucket) for r in resources):
                problems.append((bucket.urn, f"bucket has no {what}"))
        loggings = [r for r in resources if r.type in (LOGGING, LOGGING_V2)]
        is_target = any(_refers_to(r, "targetBucket", bucket) for r in loggings)
        logs = any(_refers_to(r, "bucket", bucket) for r in loggings)
        if not (logs or is_target):
            problems.append((bucket.urn, "bucket has no server access logging"))
    return problems
