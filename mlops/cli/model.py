"""The model's life through the control plane: ingest, train, promote, drift, status, lineage."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mlops.cli.common import (
    USER_ERRORS,
    StackOpt,
    StateOpt,
    app,
    console,
    fail,
    local_time,
    target_for,
    waiting,
)
from mlops.target import DEFAULT_STATE_DIR


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files with a label")],
    day: Annotated[str | None, typer.Option(help="incoming/<day>/ (default today)")] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Upload labelled data to raw/incoming/; the upload itself triggers retraining."""
    from mlops import ops

    target = target_for(stack, state_dir)
    try:
        for uri in ops.ingest(target, files, day):
            console.print(f"uploaded {uri}")
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None


@app.command()
def train(
    reason: Annotated[str, typer.Option(help="Recorded on the job")] = "manual",
    force: Annotated[
        bool, typer.Option(help="Train again even if this data version was trained")
    ] = False,
    wait: Annotated[
        bool, typer.Option(help="Wait for the job to end (SageMaker's status, shown as it goes)")
    ] = False,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Request a retrain now (same guards as the Lambda: idempotent, one job in flight)."""
    from mlops import ops

    target = target_for(stack, state_dir)
    with _quiet_handlers():
        outcome = ops.train(target, reason, force)
    _print_outcome(outcome)
    job = outcome.get("job_name")
    if outcome.get("status") != "started" or not job:
        return
    if not wait:
        console.print(f"next: `mlops train --wait` next time, or `mlops status` to follow {job}")
        return
    started = time.monotonic()
    sm = target.client("sagemaker")
    with waiting(f"training job {job}") as update:
        while True:
            described = sm.describe_training_job(TrainingJobName=job)
            state = described["TrainingJobStatus"]
            update(f"training job {job}: {state} ({described.get('SecondaryStatus', '')})")
            if state in {"Completed", "Failed", "Stopped"}:
                break
            time.sleep(2)
    elapsed = time.monotonic() - started
    console.print(
        f"{job} {state} after {elapsed:.0f}s"
        + (f": {described.get('FailureReason', '')}" if state != "Completed" else "")
        + "; next: `mlops status` (did promote deploy it?)"
    )


@app.command()
def promote(job: str, stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Gate a finished job against the champion and deploy it if it wins."""
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.promote_job(target_for(stack, state_dir), job)
    _print_outcome(outcome)


@app.command()
def drift(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Run the drift monitor now over captured traffic."""
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.run_drift(target_for(stack, state_dir))
    _print_outcome(outcome)


@app.command()
def quality(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object: realised, estimated, counts, alarm")
    ] = False,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Run the model-quality monitor now: captured predictions joined to their labels."""
    from lambdas.quality import summary
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.run_quality(target_for(stack, state_dir))
    if as_json:
        sys.stdout.write(json.dumps(summary(outcome), default=str) + "\n")
        return
    status = outcome.get("status", "?")
    colour = "green" if status == "ok" else "yellow"
    console.print(f"[{colour}]{status}[/]: {outcome.get('reason', '')}")
    if "counts" in outcome:
        console.print(_quality_table(summary(outcome)))


def _quality_table(latest: dict[str, Any]) -> Table:
    table = Table(title=f"model quality: {latest.get('status')}")
    for column in ("metric", "realised", "estimated (CBPE)"):
        table.add_column(column, justify="right" if column != "metric" else "left")
    realised, estimated = latest.get("realised") or {}, latest.get("estimated") or {}
    for name in ("accuracy", "precision", "recall", "f1", "false_positive_rate", "pr_auc"):
        table.add_row(name, _fmt(realised.get(name)), _fmt(estimated.get(name)))
    counts = latest.get("counts") or {}
    table.caption = ", ".join(f"{k}={v}" for k, v in counts.items() if v)
    return table


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


@contextmanager
def _quiet_handlers() -> Iterator[None]:
    """The handlers log their outcome as JSON for CloudWatch; the CLI prints it instead."""
    from lambdas import drift, promote, quality, retrain

    loggers = [module.logger for module in (retrain, promote, drift, quality)]
    levels = [logger.log_level for logger in loggers]
    for logger in loggers:
        logger.setLevel("ERROR")
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _print_outcome(outcome: dict[str, Any]) -> None:
    status = outcome.get("status", "?")
    colour = "green" if status in {"started", "deployed", "ok"} else "yellow"
    console.print(f"[{colour}]{status}[/]: {outcome.get('reason', '')}")
    extra = {k: v for k, v in outcome.items() if k not in {"status", "reason"}}
    if extra:
        console.print_json(json.dumps(extra, default=str))
    if status in {"rejected", "error", "deploy-failed", "training-failed"}:
        raise typer.Exit(1)


@app.command()
def status(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Jobs, champion, packages, endpoint, drift and guards."""
    from mlops import ops

    target = target_for(stack, state_dir)
    jobs = Table(title="training jobs")
    for column in ("job", "started", "trigger", "status", "failure"):
        jobs.add_column(column)
    for job in ops.jobs(target):
        jobs.add_row(
            job["name"],
            local_time(job["created"]),
            job["trigger"],
            job["status"],
            job["failure"][:80],
        )
    console.print(jobs)
    packages = Table(title="model packages (the champion: the newest Approved not on trial)")
    for column in ("version", "registered", "status", "deployment", "the gate's reason"):
        packages.add_column(column)
    for package in ops.packages(target):
        packages.add_row(
            str(package["version"]),
            local_time(package.get("created")),
            package["status"],
            package["deployment"] or "-",
            package["description"][:100],
        )
    console.print(packages)
    champion = ops.champion(target)
    console.print(
        f"champion: v{champion['version']}"
        if champion
        else "champion: none yet (no Approved package)"
    )
    endpoint = ops.endpoint(target)
    console.print(
        "endpoint: "
        + (
            f"{endpoint['name']} {endpoint['status']} on {endpoint['config']}"
            if endpoint
            else "none yet (the first promotion creates it)"
        )
    )
    scores = ops.drift_scores(target)
    if scores:
        console.print(
            "drift (PSI): " + ", ".join(f"{k}={v:.3f}" for k, v in sorted(scores.items()))
        )
    latest = ops.quality_latest(target)
    if latest:
        realised, estimated = latest.get("realised") or {}, latest.get("estimated") or {}
        alarm = latest.get("alarm") or {}
        console.print(
            f"quality ({latest.get('status')}): f1 {_fmt(realised.get('f1'))} over "
            f"{realised.get('labelled_rows', 0)} labelled rows, estimated "
            f"{_fmt(estimated.get('f1'))}; breaches in a row: {alarm.get('breaches', 0)}"
        )
    guards = ops.training_guards(target)
    console.print(
        f"in flight: {guards['in_flight'] or 'none'}; skipped triggers: {len(guards['skipped'])}"
    )


@app.command()
def lineage(
    job: Annotated[
        str | None, typer.Argument(help="A training job (default: the serving model)")
    ] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """From a model back to its data: objects (key, version, ETag), trigger, registry."""
    from mlops import ops

    try:
        record = ops.lineage(target_for(stack, state_dir), job)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    serving = " [green](serving)[/]" if record["serving"] else ""
    console.print(f"[bold]{record['job']}[/]{serving}")
    trigger = record.get("trigger") or {}
    console.print(f"data version {record['data_version']}; trigger: {trigger.get('kind', '?')}")
    console.print(_champion_line(record))
    compared = record.get("champion") or {}
    if compared:
        # what the job was compared with when it trained (lineage), not today's champion
        against = compared.get("package")
        version = f"v{compared['version']}" if compared.get("version") else against
        why = compared.get("reason") or compared.get("error", "-")
        console.print(
            f"trained against: {version}" if against else f"trained against: nothing ({why})"
        )
    if record.get("created_at"):
        console.print(f"started: {local_time(_parse_time(record['created_at']))}")
    objects = Table(title="trained on")
    for column in ("object", "version", "ETag", "bytes"):
        objects.add_column(column)
    for obj in record["objects"]:
        objects.add_row(
            f"s3://{obj['bucket']}/{obj['key']}",
            str(obj.get("version_id")),
            str(obj.get("etag", "")).strip('"'),
            str(obj.get("size", "")),
        )
    console.print(objects)
    for package in record["packages"]:
        console.print(
            f"package v{package['version']} ({local_time(package.get('created'))}): "
            f"{package['status']} (the gate's reason: {package['description']})"
        )


def _champion_line(record: dict[str, Any]) -> str:
    """ "champion: v1 (this model)", or which model is, and what this one is."""
    now = record.get("champion_now")
    if now is None:
        return "champion: none yet (no Approved package)"
    if now["job"] == record["job"]:
        return f"champion: v{now['version']} (this model)"
    mine = ", ".join(f"v{p['version']} {p['status']}" for p in record["packages"]) or "no package"
    return f"champion: v{now['version']} ({now['job']}); this model: {mine}"


def _parse_time(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
