"""Deploy and destroy a whole stack: run the program under `DeployingMocks`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops.deploy import resources  # noqa: F401 - importing it registers every handler
from mlops.deploy.errors import DeployError
from mlops.deploy.mocks import Ctx, DeployingMocks, delete_stack
from mlops.deploy.shapes import jsonable
from mlops.deploy.state import DeployState, state_path


@dataclass(frozen=True)
class DeployResult:
    stack: str
    outputs: dict[str, Any]
    resource_count: int
    created: list[str]
    seconds: float


def deploy(
    stack: str,
    endpoint_url: str,
    state_dir: Path,
    repo_root: Path,
    *,
    overrides: Mapping[str, str] | None = None,
) -> DeployResult:
    """Run the program for `stack` and create/update every resource in moto.

    Raises `DeployError` naming the first resource that failed; everything
    created before it is in the state file, so a re-run picks up from there.
    """
    from infra.config import settings_for_stack
    from infra.preview import run_program

    settings, _ = settings_for_stack(stack, repo_root, overrides)
    ctx = Ctx(endpoint_url=endpoint_url, region=settings.region)
    state = DeployState.load(state_path(state_dir, stack))
    mocks = DeployingMocks(ctx, state)
    start = time.perf_counter()
    try:
        run = run_program(
            stack,
            repo_root,
            overrides=overrides,
            mocks=mocks,
            build_dir=state_dir / "build",
        )
    except Exception as exc:
        if mocks.failures:
            raise DeployError(
                f"deploy of stack {stack!r} stopped at {mocks.failures[0]}; "
                f"{len(mocks.created)} resources are in place and recorded, re-run to converge"
            ) from exc
        raise
    if mocks.failures:
        raise DeployError(f"deploy of stack {stack!r} failed: {'; '.join(mocks.failures)}")
    outputs = jsonable(dict(run.outputs))
    state.outputs = outputs
    state.save()
    return DeployResult(
        stack, outputs, len(run.custom_resources), mocks.created, time.perf_counter() - start
    )


def destroy(stack: str, endpoint_url: str, state_dir: Path, region: str) -> list[str]:
    """Delete a locally deployed stack; returns the resources that could not go."""
    state = DeployState.load(state_path(state_dir, stack))
    return delete_stack(Ctx(endpoint_url=endpoint_url, region=region), state)


def stack_outputs(state_dir: Path, stack: str) -> dict[str, Any]:
    return DeployState.load(state_path(state_dir, stack)).outputs
