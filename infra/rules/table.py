"""The rule table, every rule in a fixed order, and the functions that run it.

The order is the order CrossGuard declares the policies and violations are reported in:
IAM, storage, training host, control plane, serving.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from infra.rules import control_plane, grants, iam, serving, storage, training
from infra.rules.registry import ResourceRule, StackResource, StackRule, Violation

_RULE_SETS = (
    iam.RULES,
    grants.RULES,
    storage.RULES,
    training.RULES,
    control_plane.RULES,
    serving.RULES,
)

RESOURCE_RULES: tuple[ResourceRule, ...] = tuple(
    rule for rule_set in _RULE_SETS for rule in rule_set.resource_rules
)
STACK_RULES: tuple[StackRule, ...] = tuple(
    rule for rule_set in _RULE_SETS for rule in rule_set.stack_rules
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
