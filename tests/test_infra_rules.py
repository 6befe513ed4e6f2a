"""infra/rules/ and the CrossGuard pack: each rule passes on the stack's own resource
and fails on a deliberately bad copy of it."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from infra_helpers import REPO_ROOT, mutated, pinned, program
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UnknownValueError, unknown_checking_proxy

from infra import rules
from infra.preview import ProgramRun, RecordedResource, check_rules

Props = dict[str, Any]


@dataclass(frozen=True)
class Case:
    rule: str
    resource_type: str
    name: str | None  # logical name in the run; None: build props from scratch (good, bad)
    bad: Callable[[Props], Props]
    stack: str = "prod"
    pinned: bool = False
    good: Props | None = None
    id: str = ""


def _policy(props: Props, doc: dict[str, Any], prop: str = "policy") -> Props:
    return {**props, prop: json.dumps(doc)}


def _add_statement(props: Props, extra: dict[str, Any], prop: str = "policy") -> Props:
    doc = json.loads(props[prop])
    doc["Statement"].append(extra)
    return _policy(props, doc, prop)


def _drop_statement(props: Props, sid: str) -> Props:
    doc = json.loads(props["policy"])
    doc["Statement"] = [s for s in doc["Statement"] if s.get("Sid") != sid]
    return _policy(props, doc)


ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": "*"}
ALLOW_S3_STAR = {"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}
NOT_ACTION = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
PUBLIC_READ = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234"
KEY_USE_DIRECT = {"Sid": "Direct", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": KEY}
GRANT_ANYONE = {"Sid": "Grant", "Effect": "Allow", "Action": "kms:CreateGrant", "Resource": KEY}
UNGUARDED_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}
ROLE = "arn:aws:iam::123456789012:role/x"
PASS_TO_ANY = {"Sid": "Pass", "Effect": "Allow", "Action": "iam:PassRole", "Resource": ROLE}
PASS_ANY_ROLE = {
    "Sid": "PassAny",
    "Effect": "Allow",
    "Action": "iam:PassRole",
    "Resource": "*",
    "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
}
READ_ANY_OBJECT = {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SSE_DEFAULT = ("rules", 0, "applyServerSideEncryptionByDefault")

CASES = [
    Case("iam-no-wildcard-actions", rules.ROLE_POLICY, "identity-retrain-policy",
         lambda p: _add_statement(p, ALLOW_ALL), id="star-action"),
    Case("iam-no-wildcard-actions", rules.ROLE_POLICY, "identity-promote-policy",
         lambda p: _add_statement(p, ALLOW_S3_STAR), id="service-star-on-star"),
    Case("iam-no-wildcard-actions", rules.ROLE_POLICY, "identity-drift-policy",
         lambda p: _add_statement(p, NOT_ACTION), id="not-action"),
    Case("iam-no-wildcard-actions", rules.KMS_KEY, "storage-key",
         lambda p: _add_statement(p, {**ALLOW_ALL, "Principal": {"AWS": "x"}}), id="key-policy"),
    Case("iam-no-wildcard-actions", rules.ROLE_POLICY, "identity-sagemaker-policy",
         lambda p: {**p, "policy": "{not json"}, id="invalid-json"),
    Case("iam-no-public-principal", rules.BUCKET_POLICY, "storage-raw-policy",
         lambda p: _add_statement(p, PUBLIC_READ), id="bucket-policy"),
    Case("iam-no-public-principal", rules.ROLE, "identity-sagemaker",
         lambda p: _policy(p, {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                              "Action": "sts:AssumeRole"}]}, "assumeRolePolicy"),
         id="trust-policy"),
    Case("iam-no-full-access-managed-policies", rules.ROLE, "identity-retrain",
         lambda p: {**p, "managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonS3FullAccess"]},
         id="role-managed-arns"),
    Case("iam-no-full-access-managed-policies", rules.ROLE_POLICY_ATTACHMENT, None,
         lambda p: {**p, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
         good={"role": "r", "policyArn": "arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"},
         id="attachment"),
    Case("kms-use-has-via-service", rules.ROLE_POLICY, "identity-drift-policy",
         lambda p: _add_statement(p, KEY_USE_DIRECT), id="direct-decrypt"),
    Case("kms-use-has-via-service", rules.ROLE_POLICY, "identity-promote-policy",
         lambda p: _add_statement(p, GRANT_ANYONE), id="grant-without-condition"),
    Case("trust-policy-has-source-account", rules.ROLE, "identity-retrain",
         lambda p: _policy(p, UNGUARDED_TRUST, "assumeRolePolicy")),
    Case("passrole-has-passed-to-service", rules.ROLE_POLICY, "identity-retrain-policy",
         lambda p: _add_statement(p, PASS_TO_ANY), id="any-service"),
    Case("passrole-has-passed-to-service", rules.ROLE_POLICY, "identity-promote-policy",
         lambda p: _add_statement(p, PASS_ANY_ROLE), id="any-role"),
    Case("no-resource-star-where-a-resource-type-exists", rules.ROLE_POLICY,
         "identity-quality-policy", lambda p: _add_statement(p, READ_ANY_OBJECT)),
    Case("s3-encryption-kms", SSE, "storage-raw-encryption",
         lambda p: mutated(p, (*SSE_DEFAULT, "sseAlgorithm"), "AES256"), id="sse-s3"),
    Case("s3-encryption-kms", SSE, "storage-capture-encryption",
         lambda p: mutated(p, (*SSE_DEFAULT, "kmsMasterKeyId"), None, delete=True),
         id="aws-managed-key"),
    Case("s3-encryption-kms", SSE, "storage-artifacts-encryption",
         lambda p: mutated(p, ("rules", 0, "bucketKeyEnabled"), False), id="no-bucket-key"),
    Case("s3-public-access-block", rules.PUBLIC_ACCESS_BLOCK, "storage-raw-public-access",
         lambda p: {**p, "restrictPublicBuckets": False}),
    Case("s3-deny-insecure-transport", rules.BUCKET_POLICY, "storage-artifacts-policy",
         lambda p: _drop_statement(p, "DenyInsecureTransport")),
    Case("s3-ownership-enforced", rules.OWNERSHIP, "storage-raw-ownership",
         lambda p: mutated(p, ("rule", "objectOwnership"), "ObjectWriter")),
    Case("s3-versioning-enabled", rules.VERSIONING, "storage-capture-versioning",
         lambda p: mutated(p, ("versioningConfiguration", "status"), "Suspended")),
    Case("s3-object-kms", rules.OBJECT_V2, "training-code-bundle",
         lambda p: mutated(p, ("serverSideEncryption",), None, delete=True)),
    Case("kms-key-rotation", rules.KMS_KEY, "storage-key",
         lambda p: {**p, "enableKeyRotation": False}),
    Case("ec2-launch-template-hardened", rules.LAUNCH_TEMPLATE, "training-host-template",
         lambda p: mutated(p, ("metadataOptions", "httpTokens"), "optional"), id="imdsv1"),
    Case("ec2-launch-template-hardened", rules.LAUNCH_TEMPLATE, "training-host-template",
         lambda p: mutated(p, ("blockDeviceMappings", 0, "ebs", "encrypted"), "false"),
         id="unencrypted-ebs"),
    Case("ec2-launch-template-hardened", rules.LAUNCH_TEMPLATE, "training-host-template",
         lambda p: mutated(p, ("networkInterfaces", 0, "associatePublicIpAddress"), "true"),
         id="public-ip"),
    Case("ec2-launch-template-hardened", rules.LAUNCH_TEMPLATE, "training-host-template",
         lambda p: mutated(p, ("networkInterfaces",), None, delete=True), id="default-network"),
    Case("ec2-security-group-no-ingress", rules.SECURITY_GROUP, "training-host-sg",
         lambda p: {**p, "ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22,
                                      "cidrBlocks": ["0.0.0.0/0"]}]}, id="inline"),
    Case("ec2-security-group-no-ingress", rules.SECURITY_GROUP_RULE, None,
         lambda p: {**p, "type": "ingress"},
         good={"type": "egress", "protocol": "tcp", "fromPort": 443, "toPort": 443},
         id="rule-resource"),
    Case("sqs-kms", rules.QUEUE, "retraining-retrain-dlq",
         lambda p: mutated(p, ("kmsMasterKeyId",), None, delete=True)),
    Case("sns-kms", rules.TOPIC, "monitoring-alerts",
         lambda p: mutated(p, ("kmsMasterKeyId",), None, delete=True)),
    Case("dynamodb-kms-pitr", rules.TABLE, "retraining-idempotency",
         lambda p: mutated(p, ("pointInTimeRecovery", "enabled"), False), id="no-pitr"),
    Case("dynamodb-kms-pitr", rules.TABLE, "retraining-idempotency",
         lambda p: mutated(p, ("serverSideEncryption",), {"enabled": True}), id="aws-owned-key"),
    Case("logs-kms-retention", rules.LOG_GROUP, "retraining-drift-logs",
         lambda p: mutated(p, ("kmsKeyId",), None, delete=True), id="no-kms"),
    Case("logs-kms-retention", rules.LOG_GROUP, "retraining-drift-logs",
         lambda p: mutated(p, ("retentionInDays",), None, delete=True), id="forever"),
    Case("lambda-dlq-concurrency-tracing", rules.FUNCTION, "retraining-retrain",
         lambda p: mutated(p, ("deadLetterConfig",), None, delete=True), id="no-dlq"),
    Case("lambda-dlq-concurrency-tracing", rules.FUNCTION, "retraining-promote",
         lambda p: {**p, "reservedConcurrentExecutions": -1}, id="unreserved"),
    Case("lambda-dlq-concurrency-tracing", rules.FUNCTION, "retraining-drift",
         lambda p: mutated(p, ("tracingConfig", "mode"), "PassThrough"), id="no-tracing"),
    Case("sagemaker-capture-kms", rules.ENDPOINT_CONFIG, "serving-pinned-config",
         lambda p: mutated(p, ("dataCaptureConfig",), None, delete=True), pinned=True,
         id="no-capture"),
    Case("sagemaker-capture-kms", rules.ENDPOINT_CONFIG, "serving-pinned-config",
         lambda p: mutated(p, ("dataCaptureConfig", "kmsKeyId"), None, delete=True), pinned=True,
         id="capture-without-key"),
]  # fmt: skip


def _run(case: Case) -> ProgramRun:
    return pinned(case.stack) if case.pinned else program(case.stack)


def _good_props(case: Case) -> Props:
    if case.name is None:
        assert case.good is not None
        return case.good
    return dict(_run(case).get(case.resource_type, case.name).inputs)


def _ids(case: Case) -> str:
    return f"{case.rule}-{case.id}" if case.id else case.rule


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_rule_passes_on_ours_and_fails_on_a_bad_copy(case: Case) -> None:
    rule = rules.RULES_BY_NAME[case.rule]
    assert case.resource_type in rule.types
    good = _good_props(case)
    assert rule.check(case.resource_type, good) == []
    bad = case.bad(good)
    problems = rule.check(case.resource_type, bad)
    assert problems, f"{case.rule} accepted {bad}"
    assert (case.rule, problems[0]) in rules.check_resource(case.resource_type, bad)


def test_every_resource_rule_has_a_failing_case() -> None:
    assert {case.rule for case in CASES} == set(rules.RULES_BY_NAME)


RULE_ORDER = [
    "iam-no-wildcard-actions",
    "iam-no-public-principal",
    "iam-no-full-access-managed-policies",
    "kms-use-has-via-service",
    "trust-policy-has-source-account",
    "passrole-has-passed-to-service",
    "no-resource-star-where-a-resource-type-exists",
    "s3-encryption-kms",
    "s3-public-access-block",
    "s3-deny-insecure-transport",
    "s3-ownership-enforced",
    "s3-versioning-enabled",
    "s3-object-kms",
    "kms-key-rotation",
    "ec2-launch-template-hardened",
    "ec2-security-group-no-ingress",
    "sqs-kms",
    "sns-kms",
    "dynamodb-kms-pitr",
    "logs-kms-retention",
    "lambda-dlq-concurrency-tracing",
    "sagemaker-capture-kms",
]


def test_rule_table_keeps_its_order_and_unique_names() -> None:
    # The order is what CrossGuard declares and what violations are reported in.
    assert [r.name for r in rules.RESOURCE_RULES] == RULE_ORDER
    assert [r.name for r in rules.STACK_RULES] == [
        "s3-bucket-companions",
        "sagemaker-endpoint-safe-deployment",
    ]
    names = [r.name for r in (*rules.RESOURCE_RULES, *rules.STACK_RULES)]
    assert len(names) == len(set(names)), names


def test_rule_set_declares_a_rule_beside_its_check() -> None:
    rule_set = rules.RuleSet()

    @rule_set.resource("x-rule", "X is fine", [rules.QUEUE, rules.TOPIC])
    def check(resource_type: str, props: Props) -> list[str]:
        return [] if props.get("ok") else ["not ok"]

    @rule_set.stack("x-stack-rule", "Stack is fine")
    def stack_check(resources: Any) -> list[tuple[str, str]]:
        return []

    (rule,) = rule_set.resource_rules
    assert (rule.name, rule.description, rule.types) == (
        "x-rule",
        "X is fine",
        frozenset({rules.QUEUE, rules.TOPIC}),
    )
    assert rule.check is check and check(rules.QUEUE, {}) == ["not ok"]
    assert [(r.name, r.check) for r in rule_set.stack_rules] == [("x-stack-rule", stack_check)]
    # every registered check stays importable under its own name from infra.rules
    for registered in (*rules.RESOURCE_RULES, *rules.STACK_RULES):
        assert getattr(rules, registered.check.__name__) is registered.check


def test_serverless_endpoint_config_is_exempt_from_capture() -> None:
    config = pinned("dev").get(rules.ENDPOINT_CONFIG, "serving-pinned-config")
    assert "dataCaptureConfig" not in config.inputs
    assert rules.endpoint_capture_kms(config.type, config.inputs) == []


# --- stack rules -------------------------------------------------------------------------


def _without(run: ProgramRun, *names: str) -> list[RecordedResource]:
    return [r for r in run if r.name not in names]


def test_bucket_companion_rule() -> None:
    run = program("dev")
    assert check_rules(run) == []
    violations = check_rules(_without(run, "storage-raw-public-access", "storage-capture-logging"))
    found = {(v.rule, v.urn.rsplit("::", 1)[-1], v.message) for v in violations}
    assert found == {
        ("s3-bucket-companions", "storage-raw", "bucket has no public access block"),
        ("s3-bucket-companions", "storage-capture", "bucket has no server access logging"),
    }


def test_bucket_companions_match_by_dependency_when_names_are_unknown() -> None:
    run = program("dev")
    resources = [r.to_stack_resource() for r in run.custom_resources]
    # As in a preview: the companions' bucket input is not known yet, only its dependency.
    blind = [
        replace(r, props={**r.props, "bucket": None}) if r.type != rules.BUCKET else r
        for r in resources
    ]
    assert rules.bucket_companions(blind) == []
    no_deps = [replace(r, property_dependencies={}) for r in blind]
    assert rules.bucket_companions(no_deps)


def test_endpoint_deployment_rule() -> None:
    run = pinned("prod")
    endpoint = run.get(rules.ENDPOINT, "serving-endpoint")
    others = [r for r in run if r is not endpoint]
    assert rules.endpoint_safe_deployment([r.to_stack_resource() for r in run]) == []

    no_deployment = replace(
        endpoint, inputs=mutated(endpoint.inputs, ("deploymentConfig",), None, delete=True)
    )
    violations = check_rules([*others, no_deployment])
    assert {v.message for v in violations} == {
        "no blue/green deployment policy",
        "no auto-rollback alarms",
    }
    foreign_alarm = replace(
        endpoint,
        inputs=mutated(
            endpoint.inputs,
            ("deploymentConfig", "autoRollbackConfiguration", "alarms"),
            [{"alarmName": "someone-elses-alarm"}],
        ),
    )
    assert [v.message for v in check_rules([*others, foreign_alarm])] == [
        "rollback alarm 'someone-elses-alarm' is not in the stack"
    ]
    # serverless (dev): no deployment guardrails to check
    assert rules.endpoint_safe_deployment([r.to_stack_resource() for r in pinned("dev")]) == []


# --- the CrossGuard pack wraps the same functions ------------------------------------------


def _load_pack() -> Any:
    path = REPO_ROOT / "policy" / "__main__.py"
    spec = importlib.util.spec_from_file_location("mlops_policy_pack", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], False, [], None, [], None)


def test_policy_pack_declares_every_rule_as_mandatory() -> None:
    pack = _load_pack()
    declared = pack.policies()
    assert [p.name for p in declared] == [r.name for r in rules.RESOURCE_RULES] + [
        r.name for r in rules.STACK_RULES
    ]
    assert {p.enforcement_level.value for p in declared} == {"mandatory"}
    assert Path(REPO_ROOT / "policy" / "PulumiPolicy.yaml").is_file()


def test_policy_pack_validators_report_through_crossguard_proxies() -> None:
    pack = _load_pack()
    key = program("dev").get(rules.KMS_KEY, "storage-key")
    rule = rules.RULES_BY_NAME["kms-key-rotation"]
    reported: list[tuple[str, str | None]] = []

    def validate(props: Props) -> None:
        args = ResourceValidationArgs(
            rules.KMS_KEY, unknown_checking_proxy(props), "urn:k", "k", _options(), None
        )
        pack.resource_validator(rule)(args, lambda message, urn: reported.append((message, urn)))

    validate(dict(key.inputs))
    assert reported == []
    validate({**key.inputs, "enableKeyRotation": False})
    assert reported == [("key rotation is not enabled", None)]
    # an unknown (preview) value makes CrossGuard skip the policy instead of failing it
    with pytest.raises(UnknownValueError):
        validate({**key.inputs, "enableKeyRotation": UNKNOWN_BOOLEAN_VALUE})


def test_every_rule_runs_on_crossguard_proxies() -> None:
    for resource in pinned("prod").custom_resources:
        proxied = unknown_checking_proxy(dict(resource.inputs))
        assert rules.check_resource(resource.type, proxied) == [], resource.urn


def test_policy_pack_stack_validator() -> None:
    pack = _load_pack()
    run = program("dev")
    kept = _without(run, "storage-raw-versioning")
    resources = [
        PolicyResource(r.type, unknown_checking_proxy(dict(r.inputs)), r.urn, r.name, _options(),
                       None, None, [], {})
        for r in kept
        if r.custom
    ]  # fmt: skip
    reported: list[tuple[str, str | None]] = []
    stack_rule = rules.STACK_RULES[0]
    args = type("Args", (), {"resources": resources})()
    pack.stack_validator(stack_rule)(args, lambda message, urn: reported.append((message, urn)))
    assert reported == [("bucket has no versioning", run.get(rules.BUCKET, "storage-raw").urn)]
