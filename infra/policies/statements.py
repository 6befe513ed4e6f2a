"""The shape of a policy document and of one Allow statement.

Every policy module builds its documents from these two, so each document has the same
version and each statement the same key order (the JSON Pulumi sends stays stable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Statement = dict[str, Any]
Document = dict[str, Any]

VERSION = "2012-10-17"


def document(*statements: Statement) -> Document:
    """A policy document holding ``statements`` in order."""
    return {"Version": VERSION, "Statement": list(statements)}


def allow(
    sid: str, actions: Sequence[str], resources: Sequence[str] | str, **extra: Any
) -> Statement:
    """An Allow statement; ``extra`` adds keys such as ``Principal`` or ``Condition``."""
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }
    statement.update(extra)
    return statement
