"""Pulumi entry point (``main: infra/`` in Pulumi.yaml): config -> Settings -> build().

This is the only module that reads ``pulumi.Config``. ``pulumi up`` runs it as a
script; :func:`infra.preview.run_program` imports it and calls :func:`main` under
Pulumi's mock runtime with the same configuration values.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # the CLI runs this file with infra/ as the cwd
    sys.path.insert(0, str(REPO_ROOT))

import pulumi  # noqa: E402
from pulumi.runtime import config as runtime_config  # noqa: E402

from infra.config import Settings, load_settings  # noqa: E402
from infra.program import build  # noqa: E402


def _get(key: str) -> str | None:
    namespace, _, name = key.partition(":")
    return pulumi.Config(namespace).get(name)


def read_settings() -> Settings:
    """Validate the stack's configuration (raises StackConfigError naming the bad key)."""
    # Every key that is set (to catch typos): the CLI passes them either way.
    keys = {*runtime_config.get_config_env(), *runtime_config.CONFIG.get()}
    return load_settings(
        _get, stack=pulumi.get_stack(), project=pulumi.get_project(), all_keys=keys
    )


def main(repo_root: Path = REPO_ROOT, **build_options: Any) -> dict[str, Any]:
    outputs = build(read_settings(), repo_root, **build_options)
    for name, value in outputs.items():
        pulumi.export(name, value)
    return outputs


if __name__ == "__main__":
    main()
