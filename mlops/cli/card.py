"""`mlops card`: a model package's model card (what was approved, on which data, why)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import ClientError
from rich.table import Table
from rich.text import Text

from lambdas.aws import error_text
from lambdas.card import CARD_PROPERTY, CardError, metric_rows, read_card, render_card_html
from mlops.cli.common import USER_ERRORS, StackOpt, StateOpt, app, console, fail, target_for
from mlops.errors import MlopsError
from mlops.target import DEFAULT_STATE_DIR, Target


class CardUsageError(MlopsError, ValueError):
    """VERSION names no model package of the stack."""


@app.command()
def card(
    version: Annotated[
        str, typer.Argument(help="A model package version of this stack's group, or its ARN")
    ],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also save the card as HTML here")
    ] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Show a model package's card: approval, metrics, gate rules, data guard, data."""
    target = target_for(stack, state_dir)
    try:
        arn = package_arn(target, version)
        package = target.client("sagemaker").describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        raise fail(f"cannot describe model package {version}: {error_text(exc)}") from None
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    uri = (package.get("CustomerMetadataProperties") or {}).get(CARD_PROPERTY)
    if not uri:
        raise fail(
            f"model package {arn} has no model card (no {CARD_PROPERTY} property): "
            "it was registered before cards existed, or its promotion did not finish"
        )
    try:
        doc = read_card(target.client("s3"), uri)
    except CardError as exc:
        raise fail(f"model package {arn}: {exc}") from None
    print_card(doc)
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_card_html(doc), encoding="utf-8")
        console.print(f"saved {html}")


def package_arn(target: Target, version: str) -> str:
    """The ARN of `version`: an ARN as given, else that version of the stack's group."""
    if version.startswith("arn:"):
        return version
    if not version.isdigit():
        raise CardUsageError(f"{version!r} is neither a model package version number nor an ARN")
    group = target.output("modelPackageGroupName")
    pages = (
        target.client("sagemaker")
        .get_paginator("list_model_packages")
        .paginate(ModelPackageGroupName=group)
    )
    for page in pages:
        for summary in page["ModelPackageSummaryList"]:
            if summary.get("ModelPackageVersion") == int(version):
                return str(summary["ModelPackageArn"])
    raise CardUsageError(f"model package group {group!r} has no version {version}")


def print_card(doc: dict[str, Any]) -> None:
    """The card as summary lines and tables; data is shown as text, never as markup."""
    package = doc.get("package") or {}
    approval = doc.get("approval") or {}
    status = str(approval.get("status"))
    colour = {"Approved": "green", "Rejected": "red"}.get(status, "yellow")
    title = Text(f"{doc.get('model')} v{package.get('version')}", style="bold")
    console.print(title.append(f"  {package.get('arn')}", style="dim"))
    console.print(Text(f"job {doc.get('job')}, card created {doc.get('created_at')}"))
    console.print(
        Text("approval: ")
        .append(status, style=colour)
        .append(f" by {approval.get('by')} at {approval.get('at')}")
    )
    if approval.get("description"):
        console.print(Text(f"  {approval['description']}"))
    for earlier in doc.get("approval_history") or []:
        console.print(
            Text(
                f"  earlier: {earlier.get('status')} by {earlier.get('by')} at {earlier.get('at')}"
            )
        )
    metrics = doc.get("metrics") or {}
    header, rows = metric_rows(metrics)
    if rows:
        table = _table("metrics", header)
        for row in rows:
            style = "bold" if row[0] == metrics.get("primary") else None
            table.add_row(*(_text(v) for v in row), style=style)
        console.print(table)
    else:
        console.print("metrics: none recorded")
    gate = doc.get("gate") or []
    if gate:
        table = _table("gate", ["rule", "held", "why"])
        for rule in gate:
            table.add_row(_text(rule.get("rule")), _held(rule.get("held")), _text(rule.get("why")))
        console.print(table)
    guard = doc.get("data_guard")
    if guard:
        table = _table(
            f"data guard: {guard.get('status')}: {guard.get('reason') or ''}",
            ["rule", "value", "threshold", "held", "severity", "detail"],
        )
        for check in guard.get("checks") or []:
            table.add_row(
                *(_text(check.get(k)) for k in ("rule", "value", "threshold")),
                _held(check.get("held")),
                *(_text(check.get(k)) for k in ("severity", "detail")),
            )
        console.print(table)
    data = doc.get("data")
    if data:
        console.print(
            Text(f"trained on {data.get('count')} objects, data version {data.get('data_version')}")
        )
    artifacts = doc.get("artifacts") or {}
    console.print(Text(f"model data: {artifacts.get('model_data_url')}"))
    for name, digest in sorted((artifacts.get("sha256") or {}).items()):
        console.print(Text(f"  {name} = {digest}"))


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=Text(title))
    for column in columns:
        table.add_column(column)
    return table


def _text(value: Any) -> Text:
    if isinstance(value, float):
        return Text(f"{value:.4f}")
    return Text("-" if value is None else str(value))


def _held(held: Any) -> Text:
    return Text("✓", style="green") if held else Text("✗", style="red")
