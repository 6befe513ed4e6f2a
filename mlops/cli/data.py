"""Data before the cloud: the sample data set, and a CSV checked against the contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlops.cli.common import REPO_ROOT, USER_ERRORS, StackOpt, app, console, fail


@app.command()
def sample(
    rows: Annotated[int, typer.Option(help="Transactions per day")] = 2000,
    days: Annotated[int, typer.Option(help="Labelled daily files")] = 3,
    out: Annotated[Path, typer.Option(help="Folder to write into")] = Path("data"),
    seed: Annotated[int, typer.Option(help="Data seed")] = 7,
) -> None:
    """Write the demo's data set: labelled day<N>.csv, rows.csv for predict, labels.csv."""
    from mlops.sample import write_sample

    try:
        written = write_sample(out, rows=rows, days=days, seed=seed)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    for path in written.days:
        console.print(f"{path}  labelled transactions (target column 'label')")
    console.print(f"{written.rows}  features with an id column: mlops predict --id-column id")
    console.print(f"{written.labels}  what really happened to those rows: mlops label")
    console.print(f"next: mlops check {written.days[0]}, then mlops ingest {written.days[0]}")


@app.command()
def check(
    file: Annotated[Path, typer.Argument(help="CSV to check before uploading it")],
    target: Annotated[
        str | None, typer.Option(help="Target column (default: the stack's targetColumn)")
    ] = None,
    categorical: Annotated[
        str | None, typer.Option(help="Comma-separated categorical columns (as the job takes)")
    ] = None,
    stack: StackOpt = "local",
) -> None:
    """Check a CSV against the training contract: the job's own checks, no cloud needed."""
    from infra.config import settings_for_stack
    from mlops.check import check_file

    try:
        column = target or settings_for_stack(stack, REPO_ROOT)[0].target_column
        report = check_file(file, column, categorical=categorical)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{file} against the training contract (target '{column}')")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for item in report.checks:
        table.add_row(item.name, "[green]ok[/]" if item.ok else "[red]FAIL[/]", item.detail)
    console.print(table)
    if not report.ok:
        raise fail(f"{file} would fail training: fix what is marked FAIL, then check again")
    console.print(f"{file} is ready: mlops ingest {file}")
