"""`mlops demo`: the whole loop offline, with the code that runs in AWS.

deploy -> ingest day 1 -> train -> evaluate -> promote -> serve (captured) ->
ingest shifted day 2 -> detect drift -> retrain -> gate the challenger -> ingest day 3
with shuffled labels -> its challenger is refused on the reference set and data guard ->
day 4's predictions get their labels late -> live F1 below the champion's -> the quality
alarm retrains on the feedback rows -> that challenger is gated too.

Every step goes through the deployed pieces: files land in the raw bucket, the
event router hands the S3 event to the retrain handler, the job runner runs the
training contract, the promote handler gates and deploys, the endpoint serves
through `invoke_endpoint`, the drift handler reads the capture bucket.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlops import datasets, ops
from mlops.deploy import deploy
from mlops.errors import MlopsError
from mlops.target import Target, from_outputs

STACK = "local"
ROWS = 5_000  # transactions a day
QUALITY_ROWS = 600  # day-4 predictions later labelled (one request each)
# each training job's budget (its max-seconds hyperparameter): the search gets half, the
# optional analyses what is left; the gate's evidence (champion, reference set, data
# guard) always runs. A stack's own default is 60 s.
TRAINING = {"max-seconds": 8, "max-candidates": 6}


class DemoError(MlopsError, RuntimeError):
    """A stage did not reach the state it needs; names the stage and what was seen."""


@dataclass
class DemoResult:
    timings: dict[str, float] = field(default_factory=dict)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    packages: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    predictions: int = 0
    endpoint: dict[str, Any] | None = None
    report: Path | None = None
    resources: int = 0

    @property
    def total_seconds(self) -> float:
        return sum(self.timings.values())


@contextmanager
def _stage(result: DemoResult, name: str, console: Console) -> Iterator[None]:
    start = time.perf_counter()
    # what the demo waits for, and how long it has waited
    columns = (SpinnerColumn(), TextColumn("[bold]{task.description}[/]…"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        progress.add_task(name)
        yield
    result.timings[name] = time.perf_counter() - start
    console.print(f"[green]✓[/] {name} [dim]({result.timings[name]:.1f}s)[/]")


def _wait(cloud: Any, stage: str, timeout: float = 240) -> None:
    if not cloud.wait_idle(timeout):
        raise DemoError(f"{stage}: the local cloud was still busy after {timeout:.0f}s")


def _outcomes(cloud: Any, since: int) -> list[dict[str, Any]]:
    return list(cloud.deliveries[since:])


def run(
    repo_root: Path,
    *,
    rows: int = ROWS,
    seed: int = 7,
    workdir: Path | None = None,
    console: Console | None = None,
    cloud_factory: Callable[..., Any] | None = None,
) -> DemoResult:
    """Run the loop in a local cloud of its own; everything started is stopped on exit."""
    from mlops.localcloud.server import LocalCloud

    console = console or Console()
    result = DemoResult()
    scratch = tempfile.TemporaryDirectory(prefix="mlops-demo-") if workdir is None else None
    root = Path(scratch.name) if scratch is not None else Path(workdir)  # type: ignore[arg-type]
    factory = cloud_factory or LocalCloud
    try:
        with factory(port=0, state_dir=root / "cloud", repo_root=repo_root) as cloud:
            _loop(cloud, repo_root, root, rows, seed, console, result)
    finally:
        if scratch is not None:
            result.report = _keep_report(result.report, repo_root)
            scratch.cleanup()
    return result


def _keep_report(report: Path | None, repo_root: Path) -> Path | None:
    if report is None or not report.exists():
        return None
    kept = repo_root / ".mlops" / "demo" / report.parent.name / report.name
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_bytes(report.read_bytes())
    return kept


def _loop(
    cloud: Any,
    repo_root: Path,
    root: Path,
    rows: int,
    seed: int,
    console: Console,
    result: DemoResult,
) -> None:
    with _stage(result, "deploy the stack (Pulumi program -> moto)", console):
        overrides = {"mlops:trainingHyperparameters": json.dumps(TRAINING)}
        deployed = deploy(STACK, cloud.endpoint_url, root / "cloud", repo_root, overrides=overrides)
        result.resources = deployed.resource_count
        target = from_outputs(STACK, deployed.outputs, cloud.endpoint_url)

    day1 = datasets.transactions(rows, fraud_rate=0.02, seed=seed)
    day2 = datasets.transactions(rows, fraud_rate=0.03, shift=1.0, seed=seed + 1)

    with _stage(result, "day 1: ingest -> train -> gate -> deploy", console):
        seen = len(cloud.deliveries)
        ops.ingest(target, [datasets.write_csv(day1, root / "data" / "day1.csv")], "2026-11-01")
        _wait(cloud, "day 1")
        endpoint = ops.endpoint(target)
        if endpoint is None or endpoint["status"] != "InService":
            raise DemoError(
                "day 1: no endpoint after the first promotion; deliveries: "
                f"{_summary(_outcomes(cloud, seen))}"
            )

    with _stage(result, "serve shifted day-2 traffic (data capture on)", console):
        traffic = day2.sample(n=min(2_000, len(day2)), random_state=seed)
        for start in range(0, len(traffic), 50):
            body = datasets.features_csv(traffic.iloc[start : start + 50]).encode()
            ops.predict(target, body, "text/csv", "application/json")
            result.predictions += min(50, len(traffic) - start)
        _wait(cloud, "traffic")

    with _stage(result, "day 2: ingest labelled data -> challenger training", console):
        ops.ingest(target, [datasets.write_csv(day2, root / "data" / "day2.csv")], "2026-11-02")

    with _stage(result, "drift -> alarm -> retrain request (challenger trains meanwhile)", console):
        seen = len(cloud.deliveries)
        cloud.fire_schedule(_drift_rule(target))
        _wait(cloud, "drift")
        result.drift = _drift_outcome(cloud.deliveries[seen:])

    with _stage(result, "gate the challenger on the same holdout -> update endpoint", console):
        _wait(cloud, "challenger")

    # a feed that sends garbage: day 3's labels are shuffled. On its own test split the
    # challenger may look fine; the reference set and the data guard refuse it
    day3 = datasets.transactions(rows, fraud_rate=0.03, shift=1.0, seed=seed + 2)
    day3["label"] = day3["label"].sample(frac=1.0, random_state=seed).to_numpy()
    # day 4: a new kind of fraud the model has never seen (a share of ordinary-looking
    # transactions turn out to be fraud); the champion serves it while day 3's challenger
    # trains, and its labels arrive after the predictions
    day4 = datasets.transactions(QUALITY_ROWS, fraud_rate=0.03, shift=1.0, seed=seed + 3)
    day4 = day4.head(QUALITY_ROWS).copy()  # the generator adds a few duplicate rows
    unseen = day4.sample(frac=0.05, random_state=seed).index
    day4.loc[unseen, "label"] = 1
    ids = [f"day4-{i}" for i in range(len(day4))]
    with _stage(
        result, "day 3: shuffled labels -> challenger refused; day-4 traffic served", console
    ):
        ops.ingest(target, [datasets.write_csv(day3, root / "data" / "day3.csv")], "2026-11-03")
        _serve_day4(target, day4, ids)
        _wait(cloud, "day 3")
    with _stage(
        result, "day 4: late labels -> live F1 below the champion's -> alarm -> retrain", console
    ):
        result.quality = _late_labels(cloud, target, day4, ids, root / "data")

    result.deliveries = list(cloud.deliveries)
    result.jobs = ops.jobs(target)
    for job in result.jobs:
        if job["status"] == "Completed":
            result.evaluations[job["name"]] = ops.evaluation(target, job["name"])
    result.packages = ops.packages(target)
    result.endpoint = ops.endpoint(target)
    if result.jobs and result.jobs[0]["status"] == "Completed":
        result.report = ops.report(target, result.jobs[0]["name"], root / "reports")


def _serve_day4(target: Target, day: Any, ids: list[str]) -> None:
    """One request per row, each with its inference ID (what the labels will name)."""
    from mlops import labels

    labels.predict_rows(target, datasets.features_csv(day).splitlines(), ids, "application/json")


def _late_labels(
    cloud: Any, target: Target, day: Any, ids: list[str], folder: Path
) -> dict[str, Any]:
    """Upload ``day``'s true labels: the quality function (started by the new label object)
    joins them to the captured predictions, and its alarm asks for a retrain that learns
    from the feedback rows."""
    from mlops import labels

    path = folder / "day4-labels.csv"
    path.write_text(
        "inference_id,label\n"
        + "".join(f"{i},{y}\n" for i, y in zip(ids, day["label"], strict=True))
    )
    seen = len(cloud.deliveries)
    labels.upload_labels(target, path)
    _wait(cloud, "quality")
    for delivery in cloud.deliveries[seen:]:
        outcome = delivery.get("result") or {}
        if str(delivery.get("function", "")).endswith("-quality") and "counts" in outcome:
            return dict(outcome)
    raise DemoError(
        f"quality: no run after the labels; deliveries: {_summary(cloud.deliveries[seen:])}"
    )


def _drift_rule(target: Target) -> str:
    name = str(target.output("driftFunctionName"))
    events = target.client("events")
    for rule in events.list_rules()["Rules"]:
        if not rule.get("ScheduleExpression"):
            continue
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if any(t["Arn"].endswith(f":function:{name}") for t in targets):
            return str(rule["Name"])
    raise DemoError(f"no schedule rule targets the drift function {name!r}")


def _drift_outcome(deliveries: list[dict[str, Any]]) -> dict[str, Any]:
    for delivery in deliveries:
        outcome = delivery.get("result") or {}
        if isinstance(outcome, dict) and "max_psi" in outcome:
            return outcome
    return {}


def _summary(deliveries: list[dict[str, Any]]) -> str:
    parts = []
    for d in deliveries:
        outcome = d.get("result") if isinstance(d.get("result"), dict) else None
        outcome = outcome or {}
        reason = outcome.get("reason", d.get("error", ""))
        parts.append(
            f"{d.get('function', '?')}: {d.get('status')} {outcome.get('status', '')} {reason}"
        )
    return "; ".join(parts) or "none"


def print_summary(result: DemoResult, console: Console) -> None:
    jobs = Table(title="Training jobs (newest first)")
    for column in ("job", "trigger", "status", "primary", "F1", "PR-AUC", "recall", "baseline F1"):
        jobs.add_column(column)
    for job in result.jobs:
        ev = result.evaluations.get(job["name"], {})
        metrics, base = ev.get("metrics", {}), ev.get("baseline", {})
        jobs.add_row(
            job["name"],
            job["trigger"],
            job["status"] if not job["failure"] else f"{job['status']}: {job['failure'][:60]}",
            str(ev.get("primary_metric", "")),
            _fmt(metrics.get("f1")),
            _fmt(metrics.get("pr_auc")),
            _fmt(metrics.get("recall")),
            _fmt(base.get("f1")),
        )
    console.print(jobs)

    gate = Table(title="Model registry (gate decisions)")
    for column in ("version", "status", "reason"):
        gate.add_column(column)
    for package in result.packages:
        gate.add_row(str(package["version"]), package["status"], package["description"][:110])
    console.print(gate)
    for package in result.packages:  # why a challenger was refused or held, rule by rule
        if package["status"] != "Approved":
            failing = package["description"].split("; held: ")[0]
            console.print(f"[bold]version {package['version']} {package['status']}[/]: {failing}")

    if result.drift:
        drift = Table(title=f"Drift (PSI vs champion baseline): {result.drift.get('status')}")
        drift.add_column("feature")
        drift.add_column("PSI", justify="right")
        for feature, score in sorted(result.drift.get("psi", {}).items(), key=lambda i: -i[1]):
            drift.add_row(feature, _fmt(score))
        console.print(drift)

    if result.quality:
        q = result.quality
        quality = Table(
            title=f"Model quality, day-4 predictions joined to late labels: {q.get('status')}"
        )
        for column in ("metric", "champion (test)", "live", "estimated (CBPE)"):
            quality.add_column(column, justify="left" if column == "metric" else "right")
        realised, estimated = q.get("realised") or {}, q.get("estimated") or {}
        expected = q.get("expected") or {}
        for name in ("precision", "recall", "f1", "pr_auc"):
            quality.add_row(
                name, _fmt(expected.get(name)), _fmt(realised.get(name)), _fmt(estimated.get(name))
            )
        feedback = (q.get("feedback") or {}).get("rows", 0)
        quality.caption = f"{realised.get('labelled_rows', 0)} labelled rows; {feedback} fed back"
        console.print(quality)

    events = Table(title="Control-plane deliveries (event -> handler -> outcome)")
    for column in ("event", "function", "outcome", "reason"):
        events.add_column(column)
    for d in result.deliveries:
        outcome = d.get("result") if isinstance(d.get("result"), dict) else {}
        events.add_row(
            str(d.get("detail_type", d.get("event", ""))),
            str(d.get("function", "")).rsplit("-", 1)[-1],
            str((outcome or {}).get("status", d.get("status", ""))),
            str((outcome or {}).get("reason", d.get("error", "")))[:90],
        )
    console.print(events)

    timings = Table(title="Timings")
    timings.add_column("stage")
    timings.add_column("seconds", justify="right")
    for stage, seconds in result.timings.items():
        timings.add_row(stage, f"{seconds:.1f}")
    timings.add_row("[bold]total[/]", f"[bold]{result.total_seconds:.1f}[/]")
    console.print(timings)
    endpoint = result.endpoint or {}
    console.print(
        f"{result.resources} resources deployed; {result.predictions} predictions served; "
        f"endpoint {endpoint.get('name', '-')} {endpoint.get('status', '-')} on "
        f"{endpoint.get('config', '-')}"
    )
    if result.report:
        console.print(f"report: {result.report}")


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"
