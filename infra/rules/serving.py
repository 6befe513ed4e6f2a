"""Serving rules: captured data encrypted, instance endpoints deployed blue/green with
auto-rollback on the stack's own alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.rules.props import as_list, is_false, is_set, lookup
from infra.rules.registry import RuleSet, StackResource
from infra.rules.resource_types import ENDPOINT, ENDPOINT_CONFIG, METRIC_ALARM

RULES = RuleSet()


@RULES.resource(
    "sagemaker-capture-kms",
    "Instance-based endpoint configs capture data encrypted with the stack key",
    {ENDPOINT_CONFIG},
)
def endpoint_capture_kms(resource_type: str, props: Mapping[str, Any]) -> list[str]:
    """Instance-based endpoint configs capture data, encrypted with the stack key.
    (Serverless variants support no data capture, so the rule does not apply to them.)"""
    variants = as_list(props.get("productionVariants"))
    if variants and all(lookup(v, "serverlessConfig") is not None for v in variants):
        return []
    capture = lookup(props, "dataCaptureConfig")
    if capture is None:
        return ["no data capture (dataCaptureConfig)"]
    problems = []
    if is_false(lookup(capture, "enableCapture")):
        problems.append("data capture is disabled")
    if not is_set(lookup(capture, "kmsKeyId")):
        problems.append("captured data is not encrypted with the stack key (kmsKeyId)")
    return problems


@RULES.stack(
    "sagemaker-endpoint-safe-deployment",
    "Instance endpoints deploy blue/green with auto-rollback on the stack's alarms",
)
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
        variants = as_list(config.props.get("productionVariants")) if config else []
        if not variants or all(lookup(v, "serverlessConfig") is not None for v in variants):
            continue  # serverless (or unknown): no instance deployment guardrails to check
        deployment = endpoint.props.get("deploymentConfig")
        if lookup(deployment, "blueGreenUpdatePolicy") is None:
            problems.append((endpoint.urn, "no blue/green deployment policy"))
        names = [
            lookup(a, "alarmName")
            for a in as_list(lookup(deployment, "autoRollbackConfiguration", "alarms"))
        ]
        if not names:
            problems.append((endpoint.urn, "no auto-rollback alarms"))
        for name in names:
            if name not in alarms:
                problems.append((endpoint.urn, f"rollback alarm {name!r} is not in the stack"))
    return problems
