"""Reading resource properties the way CrossGuard allows.

Only plain ``Mapping`` / ``Sequence`` access is used: CrossGuard wraps props in
proxies that raise on values unknown at preview, which makes the policy skip (and
run again at ``pulumi up``, when the values are known).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return [value[i] for i in range(len(value))]
    return [value]


def lookup(props: Any, *path: str) -> Any:
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


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def is_set(value: Any) -> bool:
    return value is not None and value != ""
