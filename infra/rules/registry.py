"""What a rule is, what it sees and reports, and how a module declares its rules.

A module makes one :class:`RuleSet` and puts ``@RULES.resource(...)`` or
``@RULES.stack(...)`` right above each check, so a rule's name and description sit
beside the code that enforces them. :mod:`infra.rules.table` joins the modules' sets in
a fixed order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: ``check(resource_type, props) -> [violation message, ...]``
ResourceCheck = Callable[[str, Mapping[str, Any]], list[str]]
#: ``check(resources) -> [(urn, violation message), ...]``
StackCheck = Callable[[Sequence["StackResource"]], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    types: frozenset[str]
    check: ResourceCheck


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
    check: StackCheck


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    resource_type: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.urn}: {self.message}"


class RuleSet:
    """The rules one module declares, in declaration order.

    The decorators return the check unchanged, so it stays a plain function that tests
    and other modules can call directly.
    """

    def __init__(self) -> None:
        self.resource_rules: list[ResourceRule] = []
        self.stack_rules: list[StackRule] = []

    def resource(
        self, name: str, description: str, types: Iterable[str]
    ) -> Callable[[ResourceCheck], ResourceCheck]:
        """Declare the decorated ``check(resource_type, props)`` as the rule ``name``,
        applied to resources of ``types``."""

        def register(check: ResourceCheck) -> ResourceCheck:
            self.resource_rules.append(ResourceRule(name, description, frozenset(types), check))
            return check

        return register

    def stack(self, name: str, description: str) -> Callable[[StackCheck], StackCheck]:
        """Declare the decorated ``check(resources)`` as the stack rule ``name``."""

        def register(check: StackCheck) -> StackCheck:
            self.stack_rules.append(StackRule(name, description, check))
            return check

        return register
