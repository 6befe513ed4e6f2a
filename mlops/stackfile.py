"""`mlops init`: a new stack file for one's own model, offline (what `pulumi new` and
`pulumi config set` do with the Pulumi CLI)."""

from __future__ import annotations

import re
from pathlib import Path

from infra.config import settings_for_stack
from infra.errors import InfraError
from mlops.errors import MlopsError


class StackFileError(MlopsError, ValueError):
    """The stack file cannot be written as asked."""


def _set(text: str, key: str, value: str) -> str:
    """``text`` with ``  mlops:<key>: value`` in its config block (replaced or added)."""
    line = f"  mlops:{key}: {value}"
    pattern = re.compile(rf"^  mlops:{key}:.*$", re.MULTILINE)
    if pattern.search(text):
        return pattern.sub(line, text, count=1)
    return text.rstrip("\n") + "\n" + line + "\n"


def init_stack(
    root: Path, stack: str, *, model_name: str, target_column: str, base: str = "local"
) -> Path:
    """Write ``Pulumi.<stack>.yaml`` from ``Pulumi.<base>.yaml`` with the model's name and
    target column; checked as the program would load it. Never overwrites a stack file."""
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", stack):
        raise StackFileError(f"stack {stack!r}: lowercase letters, digits, hyphens, up to 20")
    path = root / f"Pulumi.{stack}.yaml"
    if path.exists():
        raise StackFileError(f"{path.name} already exists; edit it or pick another stack name")
    source = root / f"Pulumi.{base}.yaml"
    if not source.is_file():
        raise StackFileError(f"--from {base}: no {source.name} in {root}")
    text = source.read_text()
    text = _set(text, "modelName", model_name)
    text = _set(text, "targetColumn", target_column)
    header = f"# {stack}: model {model_name!r} predicting {target_column!r} (from {source.name})\n"
    path.write_text(header + text)
    try:
        settings_for_stack(stack, root)
    except (InfraError, ValueError) as exc:
        path.unlink()
        raise StackFileError(f"{path.name} not written: {exc}") from None
    return path
