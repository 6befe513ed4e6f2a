"""CrossGuard policy pack: ``pulumi preview --policy-pack policy``.

Each rule of :mod:`infra.rules` becomes one mandatory policy; the offline preview
and the tests run the very same functions over the resources recorded under mocks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pulumi_policy import (  # noqa: E402
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from infra import rules  # noqa: E402

PACK_NAME = "mlops-security"


def resource_validator(
    rule: rules.ResourceRule,
) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        for message in rule.check(args.resource_type, args.props):
            report_violation(message, None)

    return validate


def _stack_resources(args: StackValidationArgs) -> list[rules.StackResource]:
    return [
        rules.StackResource(
            type=r.resource_type,
            urn=r.urn,
            props=r.props,
            property_dependencies={
                prop: frozenset(dep.urn for dep in deps)
                for prop, deps in (r.property_dependencies or {}).items()
            },
        )
        for r in args.resources
    ]


def stack_validator(
    rule: rules.StackRule,
) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for urn, message in rule.check(_stack_resources(args)):
            report_violation(message, urn)

    return validate


def policies() -> list[Any]:
    resource_policies: list[Any] = [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=resource_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in rules.RESOURCE_RULES
    ]
    stack_policies = [
        StackValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=stack_validator(rule),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for rule in rules.STACK_RULES
    ]
    return resource_policies + stack_policies


if __name__ == "__main__":
    PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
