"""``Pulumi.<stack>.yaml``: read a stack's configuration the way the Pulumi CLI hands it over."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from infra.config.load import load_settings
from infra.config.settings import Settings, StackConfigError


def available_stacks(repo_root: Path) -> list[str]:
    """Names of the stacks that have a ``Pulumi.<stack>.yaml`` in ``repo_root``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in repo_root.glob("Pulumi.*.yaml"))


def _config_string(key: str, value: Any) -> str:
    """Render a YAML config value the way the Pulumi CLI hands it to the program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        raise StackConfigError(f"{key}: secret values cannot be read offline; set a plain value")
    return json.dumps(value)


def load_stack_config(stack: str, repo_root: Path) -> dict[str, str]:
    """Read the ``config:`` block of ``Pulumi.<stack>.yaml`` into ``{"ns:key": "value"}``.

    Values are strings, as the Pulumi CLI passes them (objects and lists as JSON),
    so ``pulumi.runtime.set_all_config`` and :func:`load_settings` see what
    ``pulumi up`` would.
    """
    path = repo_root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        stacks = available_stacks(repo_root)
        raise StackConfigError(
            f"unknown stack {stack!r}: no {path.name} in {repo_root}; available stacks: "
            + (", ".join(stacks) if stacks else "(none)")
        )
    document = yaml.safe_load(path.read_text()) or {}
    block = document.get("config") or {}
    if not isinstance(block, Mapping):
        raise StackConfigError(f"{path.name}: 'config' must be a mapping")
    values: dict[str, str] = {}
    for key, value in block.items():
        if ":" not in str(key):
            raise StackConfigError(
                f"{path.name}: config key {key!r} needs a namespace, e.g. mlops:{key}"
            )
        if isinstance(value, Mapping) and "value" in value and len(value) == 1:
            value = value["value"]  # the long form `key: {value: ...}`
        values[str(key)] = _config_string(str(key), value)
    return values


def settings_for_stack(
    stack: str, repo_root: Path, overrides: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Load and validate ``Pulumi.<stack>.yaml`` (plus overrides): ``(settings, raw values)``."""
    values = load_stack_config(stack, repo_root)
    values.update(overrides or {})
    settings = load_settings(values.get, stack=stack, all_keys=values)
    return settings, values
