"""The stack's security rules as pure functions, shared by CrossGuard and offline checks.

A resource rule is ``check(resource_type, props) -> [violation message, ...]`` over the
resource's camelCase input properties, exactly as Pulumi's mocks record them and as
CrossGuard hands them to a ``ResourceValidationPolicy`` (``policy/__main__.py``). A
stack rule sees every resource at once (companion resources of each bucket, the
endpoint's deployment safety).

Only plain ``Mapping`` / ``Sequence`` access is used: CrossGuard wraps props in
proxies that raise on values unknown at preview, which makes the policy skip (and
run again at ``pulumi up``, when the values are known).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- resource types -----------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
ENCRYPTION_V2 = (
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
)
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
VERSIONING_V2 = "aws:s3/bucketVersioningV2:BucketVersioningV2"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LIFECYCLE_V2 = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
LOGGING_V2 = "aws:s3/bucketLoggingV2:BucketLoggingV2"
OBJECT = "aws:s3/bucketObject:BucketObject"
OBJECT_V2 = "aws:s3/bucketObjectv2:BucketObjectv2"
KMS_KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
USER_POLICY_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_POLICY_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
TABLE = "aws:dynamodb/table:Table"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
FUNCTION = "aws:lambda/function:Function"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

#: Resources whose ``policy`` property is an IAM or resource policy document.
POLICY_DOCUMENT_TYPES = frozenset(
    {
        ROLE_POLICY,
        POLICY,
        USER_POLICY,
        GROUP_POLICY,
        BUCKET_POLICY,
        QUEUE_POLICY,
        TOPIC_POLICY,
        KMS_KEY,
        QUEUE,
        TOPIC,
    }
)
RESOURCE_POLICY_TYPES = frozenset(
    {BUCKET_POLICY, QUEUE_POLICY, TOPIC_POLICY, KMS_KEY, QUEUE, TOPIC}
)
ATTACHMENT_TYPES = frozenset(
    {ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, USER_POLICY_ATTACHMENT, GROUP_POLICY_ATTACHMENT}
)
FORBIDDEN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


# --- data types --------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    types: frozenset[str]
    check: Callable[[str, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class StackResource:
    """What a stack rule sees of one resource."""

    type: str
    urn: str
    props: Mapping[str, Any]
    #: property name -> URNs of the resources that property's value came from
    property_dependencies: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: Callable[[Sequence[StackResource]], list[tuple[str, str]]]  # -> [(urn, message)]


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    resource_type: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.urn}: {self.message}"


# --- helpers -----------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return [value[i] for i in range(len(value))]
    return [value]


def _get(props: Any, *path: str) -> Any:
    """``props[a][b]...`` or None; a list along the way means its first element
    (Pulumi sometimes models single nested blocks as one-element lists)."""
    current = props
    for key in path:
        if isinstance(current, Sequence) and not isinstance(current, str | bytes):
            current = current[0] if len(current) else None
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _set(value: Any) -> bool:
    return value is not None and value != ""


def parse_policy(value: Any) -> Mapping[str, Any] | None:
    """A policy document from a JSON string or a mapping; None if absent; raises ValueError
    if it is not a JSON object."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        parsed = json.loads(value)
        if not isinstance(parsed, Mapping):
            raise ValueError("policy is not a JSON object")
        return parsed
    if isinstance(value, Mapping):
        return value
    raise ValueError(f"policy has an unexpected type {type(value).__name__}")


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if document is None:
        return []
    return [s for s in _list(document.get("Statement")) if isinstance(s, Mapping)]


def _documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(label, raw document) pairs of a resource."""
    docs: list[tuple[str, Any]] = []
    if resource_type in POLICY_DOCUMENT_TYPES:
        docs.append(("policy", props.get("policy")))
    if resource_type == ROLE:
        for inline in _list(props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                docs.append((f"inline policy {inline.get('name')}", inline.get("policy")))
    return docs


def _sid(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"#{index}")


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or "*" in _list(v) for v in principal.values())
    return False


# --- resource rules ----------------------------------------------------------------------


def no_wildcard_actions(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No Allow of every action (``*``), of a whole service (``svc:*``) on every
    resource, and no Allow with NotAction."""
    problems = []
    for label, raw in _documents(resource_type, props):
        try:
            document = parse_policy(raw)
        except ValueError as exc:
            problems.append(f"{label}: not a valid policy document ({exc})")
            continue
        for i, statement in enumerate(statements(document)):
            if statement.get("Effect") != "Allow":
                continue
            sid = _sid(statement, i)
            if "NotAction" in statement:
                problems.append(f"{label}: statement {sid} allows NotAction")
            resources = _list(statement.get("Resource"))
            for action in _list(statement.get("Action")):
                if action == "*":
                    problems.append(f"{label}: statement {sid} allows every action ('*')")
                elif isinstance(action, str) and action.endswith(":*") and "*" in resources:
                    problems.append(f"{label}: statement {sid} allows {action} on '*'")
    return problems


def no_public_principal(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No resource or trust policy allows ``Principal: "*"`` without a condition."""
    problems = []
    docs = _documents(resource_type, props) if resource_type in RESOURCE_POLICY_TYPES else []
    if resource_type == ROLE:
        docs = [("assume role policy", props.get("assumeRolePolicy"))]
    for label, raw in docs:
        try:
            document = parse_policy(raw)
        except ValueError as exc:
            problems.append(f"{label}: not a valid policy document ({exc})")
            continue
        for i, statement in enumerate(statements(document)):
            if (
                statement.get("Effect") == "Allow"
                and _public_principal(statement.get("Principal"))
                and not statement.get("Condition")
            ):
                problems.append(f"{label}: statement {_sid(statement, i)} allows anyone ('*')")
    return problems


def no_full_access_managed_policies(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """No ``*FullAccess`` (or administrator / power user) AWS managed policy attached."""
    if resource_type == ROLE:
        arns = _list(props.get("managedPolicyArns"))
    else:
        arns = _list(props.get("policyArn"))
    problems = []
    for arn in arns:
        policy_name = str(arn).rsplit("/", 1)[-1]
        if policy_name.endswith("FullAccess") or policy_name in FORBIDDEN_MANAGED_POLICIES:
            problems.append(f"attaches the broad managed policy {policy_name}")
    return problems


def bucket_encryption_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Default encryption is SSE-KMS with a customer key and an S3 bucket key."""
    rules = _list(props.get("rules"))
    if not rules:
        return ["no default encryption rule"]
    problems = []
    for rule in rules:
        default = _get(rule, "applyServerSideEncryptionByDefault")
        algorithm = _get(default, "sseAlgorithm")
        if algorithm not in ("aws:kms", "aws:kms:dsse"):
            problems.append(f"default encryption is {algorithm!r}, not SSE-KMS ('aws:kms')")
        elif not _set(_get(default, "kmsMasterKeyId")):
            problems.append("SSE-KMS without a customer-managed key (kmsMasterKeyId)")
        if not _true(_get(rule, "bucketKeyEnabled")):
            problems.append("S3 bucket key is not enabled (bucketKeyEnabled)")
    return problems


PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def public_access_block(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """All four S3 public-access-block flags are on."""
    return [f"{flag} is not true" for flag in PUBLIC_ACCESS_FLAGS if not _true(props.get(flag))]


def denies_insecure_transport(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """The bucket policy denies every request made without TLS (aws:SecureTransport false)."""
    try:
        document = parse_policy(props.get("policy"))
    except ValueError as exc:
        return [f"not a valid policy document ({exc})"]
    for statement in statements(document):
        condition = _get(statement, "Condition", "Bool", "aws:SecureTransport")
        actions = _list(statement.get("Action"))
        if (
            statement.get("Effect") == "Deny"
            and _public_principal(statement.get("Principal"))
            and ("s3:*" in actions or "*" in actions)
            and any(_false(v) for v in _list(condition))
        ):
            return []
    return ["no statement denies s3:* to everyone when aws:SecureTransport is false"]


def ownership_enforced(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """ACLs are disabled: object ownership BucketOwnerEnforced."""
    ownership = _get(props, "rule", "objectOwnership")
    if ownership != "BucketOwnerEnforced":
        return [f"object ownership is {ownership!r}, not 'BucketOwnerEnforced'"]
    return []


def versioning_enabled(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    status = _get(props, "versioningConfiguration", "status")
    return [] if status == "Enabled" else [f"versioning status is {status!r}, not 'Enabled'"]


def kms_rotation(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    return [] if _true(props.get("enableKeyRotation")) else ["key rotation is not enabled"]


def launch_template_hardened(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """IMDSv2 required, every EBS volume encrypted with a customer key, no public IP."""
    problems = []
    if _get(props, "metadataOptions", "httpTokens") != "required":
        problems.append("metadataOptions.httpTokens is not 'required' (IMDSv2)")
    mappings = _list(props.get("blockDeviceMappings"))
    if not mappings:
        problems.append("no block device mapping: the root volume's encryption is not set")
    for mapping in mappings:
        device = _get(mapping, "deviceName")
        if not _true(_get(mapping, "ebs", "encrypted")):
            problems.append(f"EBS volume {device} is not encrypted")
        elif not _set(_get(mapping, "ebs", "kmsKeyId")):
            problems.append(f"EBS volume {device} is not encrypted with the stack key")
    interfaces = _list(props.get("networkInterfaces"))
    if not interfaces:
        problems.append("no network interface with associatePublicIpAddress 'false'")
    for interface in interfaces:
        if not _false(_get(interface, "associatePublicIpAddress")):
            problems.append("a network interface may get a public IP address")
    return problems


def no_ingress(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Security groups allow no inbound traffic."""
    if resource_type == SECURITY_GROUP:
        ingress = _list(props.get("ingress"))
        return [f"{len(ingress)} inline ingress rule(s)"] if ingress else []
    if resource_type == SECURITY_GROUP_RULE and props.get("type") != "ingress":
        return []
    return ["an ingress rule"]


def queue_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not _set(props.get("kmsMasterKeyId")):
        return ["queue is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


def topic_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if not _set(props.get("kmsMasterKeyId")):
        return ["topic is not encrypted with a KMS key (kmsMasterKeyId)"]
    return []


def table_kms_pitr(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if not (
        _true(_get(props, "serverSideEncryption", "enabled"))
        and _set(_get(props, "serverSideEncryption", "kmsKeyArn"))
    ):
        problems.append("table is not encrypted with a customer-managed KMS key")
    if not _true(_get(props, "pointInTimeRecovery", "enabled")):
        problems.append("point-in-time recovery is off")
    return problems


def log_group_kms_retention(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    problems = []
    if not _set(props.get("kmsKeyId")):
        problems.append("log group is not encrypted with a KMS key (kmsKeyId)")
    retention = props.get("retentionInDays")
    if not isinstance(retention, int | float) or retention <= 0:
        problems.append("log group keeps logs forever (retentionInDays unset)")
    return problems


def lambda_hardened(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """A dead-letter queue, reserved concurrency and active tracing."""
    problems = []
    if not _set(_get(props, "deadLetterConfig", "targetArn")):
        problems.append("no dead-letter queue (deadLetterConfig.targetArn)")
    reserved = props.get("reservedConcurrentExecutions")
    if not isinstance(reserved, int | float) or reserved < 1:
        problems.append("no reserved concurrency (reservedConcurrentExecutions >= 1)")
    if _get(props, "tracingConfig", "mode") != "Active":
        problems.append("X-Ray tracing is not Active")
    return problems


def endpoint_capture_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Instance-based endpoint configs capture data, encrypted with the stack key.
    (Serverless variants support no data capture, so the rule does not apply to them.)"""
    variants = _list(props.get("productionVariants"))
    if variants and all(_get(v, "serverlessConfig") is not None for v in variants):
        return []
    capture = _get(props, "dataCaptureConfig")
    if capture is None:
        return ["no data capture (dataCaptureConfig)"]
    problems = []
    if _false(_get(capture, "enableCapture")):
        problems.append("data capture is disabled")
    if not _set(_get(capture, "kmsKeyId")):
        problems.append("captured data is not encrypted with the stack key (kmsKeyId)")
    return problems


def object_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    if props.get("serverSideEncryption") != "aws:kms" or not _set(props.get("kmsKeyId")):
        return ["object is not uploaded with SSE-KMS and the stack key"]
    return []


RESOURCE_RULES: tuple[ResourceRule, ...] = (
    ResourceRule(
        "iam-no-wildcard-actions",
        "IAM and resource policies allow no '*' action, no 'service:*' on '*', no NotAction",
        POLICY_DOCUMENT_TYPES | {ROLE},
        no_wildcard_actions,
    ),
    ResourceRule(
        "iam-no-public-principal",
        "Resource and trust policies do not allow Principal '*' without a condition",
        RESOURCE_POLICY_TYPES | {ROLE},
        no_public_principal,
    ),
    ResourceRule(
        "iam-no-full-access-managed-policies",
        "No *FullAccess / AdministratorAccess / PowerUserAccess managed policy is attached",
        ATTACHMENT_TYPES | {ROLE},
        no_full_access_managed_policies,
    ),
    ResourceRule(
        "s3-encryption-kms",
        "Bucket default encryption is SSE-KMS with a customer-managed key and a bucket key",
        frozenset({ENCRYPTION, ENCRYPTION_V2}),
        bucket_encryption_kms,
    ),
    ResourceRule(
        "s3-public-access-block",
        "All four S3 public-access-block settings are on",
        frozenset({PUBLIC_ACCESS_BLOCK}),
        public_access_block,
    ),
    ResourceRule(
        "s3-deny-insecure-transport",
        "Bucket policies deny requests without TLS (aws:SecureTransport false)",
        frozenset({BUCKET_POLICY}),
        denies_insecure_transport,
    ),
    ResourceRule(
        "s3-ownership-enforced",
        "S3 object ownership is BucketOwnerEnforced (ACLs disabled)",
        frozenset({OWNERSHIP}),
        ownership_enforced,
    ),
    ResourceRule(
        "s3-versioning-enabled",
        "S3 versioning is Enabled",
        frozenset({VERSIONING, VERSIONING_V2}),
        versioning_enabled,
    ),
    ResourceRule(
        "s3-object-kms",
        "Objects the stack uploads use SSE-KMS with the stack key",
        frozenset({OBJECT, OBJECT_V2}),
        object_kms,
    ),
    ResourceRule("kms-key-rotation", "KMS keys rotate", frozenset({KMS_KEY}), kms_rotation),
    ResourceRule(
        "ec2-launch-template-hardened",
        "Launch templates require IMDSv2, encrypt EBS with a customer key, assign no public IP",
        frozenset({LAUNCH_TEMPLATE}),
        launch_template_hardened,
    ),
    ResourceRule(
        "ec2-security-group-no-ingress",
        "Security groups allow no inbound traffic",
        frozenset({SECURITY_GROUP, SECURITY_GROUP_RULE, INGRESS_RULE}),
        no_ingress,
    ),
    ResourceRule("sqs-kms", "SQS queues are KMS-encrypted", frozenset({QUEUE}), queue_kms),
    ResourceRule("sns-kms", "SNS topics are KMS-encrypted", frozenset({TOPIC}), topic_kms),
    ResourceRule(
        "dynamodb-kms-pitr",
        "DynamoDB tables use a customer-managed KMS key and point-in-time recovery",
        frozenset({TABLE}),
        table_kms_pitr,
    ),
    ResourceRule(
        "logs-kms-retention",
        "Log groups are KMS-encrypted and have a retention",
        frozenset({LOG_GROUP}),
        log_group_kms_retention,
    ),
    ResourceRule(
        "lambda-dlq-concurrency-tracing",
        "Lambda functions have a DLQ, reserved concurrency and active tracing",
        frozenset({FUNCTION}),
        lambda_hardened,
    ),
    ResourceRule(
        "sagemaker-capture-kms",
        "Instance-based endpoint configs capture data encrypted with the stack key",
        frozenset({ENDPOINT_CONFIG}),
        endpoint_capture_kms,
    ),
)
RULES_BY_NAME = {rule.name: rule for rule in RESOURCE_RULES}


def check_resource(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every resource rule that applies: ``[(rule name, message), ...]``."""
    return [
        (rule.name, message)
        for rule in RESOURCE_RULES
        if resource_type in rule.types
        for message in rule.check(resource_type, props)
    ]


# --- stack rules -------------------------------------------------------------------------

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


def endpoint_safe_deployment(resources: Sequence[StackResource]) -> list[tuple[str, str]]:
    """An endpoint on instances deploys blue/green and rolls back on alarms of this stack."""
    configs = {str(r.props.get("name")): r for r in resources if r.type == ENDPOINT_CONFIG}
    alarms = {r.props.get("name") for r in resources if r.type == METRIC_ALARM}
    problems = []
    for endpoint in (r for r in resources if r.type == ENDPOINT):
        config = configs.get(str(endpoint.props.get("endpointConfigName")))
        if config is None:
            config = next(
                (
                    c
                    for c in configs.values()
                    if c.urn in endpoint.property_dependencies.get("endpointConfigName", ())
                ),
                None,
            )
        variants = _list(config.props.get("productionVariants")) if config else []
        if not variants or all(_get(v, "serverlessConfig") is not None for v in variants):
            continue  # serverless (or unknown): no instance deployment guardrails to check
        deployment = endpoint.props.get("deploymentConfig")
        if _get(deployment, "blueGreenUpdatePolicy") is None:
            problems.append((endpoint.urn, "no blue/green deployment policy"))
        names = [
            _get(a, "alarmName")
            for a in _list(_get(deployment, "autoRollbackConfiguration", "alarms"))
        ]
        if not names:
            problems.append((endpoint.urn, "no auto-rollback alarms"))
        for name in names:
            if name not in alarms:
                problems.append((endpoint.urn, f"rollback alarm {name!r} is not in the stack"))
    return problems


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "s3-bucket-companions",
        "Every bucket has encryption, public access block, policy, versioning, ownership "
        "controls, lifecycle rules and access logging",
        bucket_companions,
    ),
    StackRule(
        "sagemaker-endpoint-safe-deployment",
        "Instance endpoints deploy blue/green with auto-rollback on the stack's alarms",
        endpoint_safe_deployment,
    ),
)


def check_stack(resources: Iterable[StackResource]) -> list[Violation]:
    """Run every resource rule and every stack rule over a whole stack."""
    resources = list(resources)
    types = {r.urn: r.type for r in resources}
    violations = [
        Violation(rule, r.urn, r.type, message)
        for r in resources
        for rule, message in check_resource(r.type, r.props)
    ]
    for stack_rule in STACK_RULES:
        for urn, message in stack_rule.check(resources):
            violations.append(Violation(stack_rule.name, urn, types.get(urn, ""), message))
    return violations
