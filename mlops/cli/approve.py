"""`mlops approve` / `mlops reject` a held package; `mlops reference show|set`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlops.cli.card import package_arn
from mlops.cli.common import USER_ERRORS, StackOpt, StateOpt, app, console, fail, target_for
from mlops.target import DEFAULT_STATE_DIR

reference_app = typer.Typer(help="The frozen reference set every challenger is scored on.")
app.add_typer(reference_app, name="reference")

VersionArg = Annotated[
    str, typer.Argument(help="A model package version of this stack's group, or its ARN")
]


def _decide(version: str, status: str, reason: str, stack: str, state_dir: Path) -> None:
    from mlops import approvals

    target = target_for(stack, state_dir)
    try:
        done = approvals.decide(target, package_arn(target, version), status, reason)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"version {done['version']}: {done['text']}")
    console.print(
        "promote acts on the registry's state change: "
        + ("it verifies the package and deploys it" if status == "Approved" else "recorded")
        + f"; see `mlops status -s {stack}` and `mlops card {done['version']} -s {stack}`"
    )


@app.command()
def approve(
    version: VersionArg,
    reason: Annotated[str, typer.Option(help="Why (recorded on the package)")] = "looked right",
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Approve a package the gate held for a person; promote then deploys it."""
    _decide(version, "Approved", reason, stack, state_dir)


@app.command()
def reject(
    version: VersionArg,
    reason: Annotated[str, typer.Option(help="Why (recorded on the package)")],
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Reject a package the gate held for a person; the champion keeps serving."""
    _decide(version, "Rejected", reason, stack, state_dir)


@reference_app.command("show")
def reference_show(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """The reference set in force: where it is, its digest, rows, origin, who set it."""
    from mlops import approvals

    try:
        manifest = approvals.show_reference(target_for(stack, state_dir))
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    if manifest is None:
        console.print("no reference set yet: the first approved model's test split becomes it")
        return
    table = Table(title="reference set", show_header=False)
    for key in ("uri", "sha256", "rows", "set_by", "set_at", "reason"):
        table.add_row(key, str(manifest.get(key, "")))
    source = manifest.get("source") or {}
    table.add_row("source", ", ".join(f"{k}={v}" for k, v in source.items() if v))
    console.print(table)


@reference_app.command("set")
def reference_set(
    source: Annotated[
        str, typer.Argument(help="A labelled CSV with a header, or a training job (its test split)")
    ],
    reason: Annotated[str, typer.Option(help="Why (recorded in the manifest and history)")],
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Replace the reference set; every later challenger and champion is scored on it."""
    from mlops import approvals

    try:
        manifest = approvals.set_reference_from(target_for(stack, state_dir), source, reason)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(
        f"reference set: {manifest['uri']} ({manifest['rows']} rows, sha256 "
        f"{manifest['sha256'][:16]}), set by {manifest['set_by']}"
    )
