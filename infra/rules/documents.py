"""Policy documents inside resource properties: parsing them and reading statements."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from infra.rules.props import as_list
from infra.rules.resource_types import POLICY_DOCUMENT_TYPES, ROLE


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
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def policy_documents(resource_type: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(label, raw document) pairs of a resource."""
    docs: list[tuple[str, Any]] = []
    if resource_type in POLICY_DOCUMENT_TYPES:
        docs.append(("policy", props.get("policy")))
    if resource_type == ROLE:
        for inline in as_list(props.get("inlinePolicies")):
            if isinstance(inline, Mapping):
                docs.append((f"inline policy {inline.get('name')}", inline.get("policy")))
    return docs


def labelled_statements(
    docs: list[tuple[str, Any]], problems: list[str]
) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    """``(label, statement id, statement)`` of every parsable document in ``docs``; a
    document that does not parse adds its problem to ``problems`` instead."""
    for label, raw in docs:
        try:
            document = parse_policy(raw)
        except ValueError as exc:
            problems.append(f"{label}: not a valid policy document ({exc})")
            continue
        for i, statement in enumerate(statements(document)):
            yield label, statement_id(statement, i), statement


def statement_id(statement: Mapping[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"#{index}")


def public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" or "*" in as_list(v) for v in principal.values())
    return False
