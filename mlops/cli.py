"""The `mlops` command: preview, the local cloud, deploys and the model's life."""

from __future__ import annotations

import json
import sys
import webbrowser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from mlops.target import DEFAULT_STATE_DIR, TargetError, connect

app = typer.Typer(
    help="One model's MLOps stack on AWS: preview, deploy, train, promote, serve, monitor.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
local_app = typer.Typer(help="The local cloud: a moto server plus what moto lacks.")
app.add_typer(local_app, name="local")

console = Console()
err = Console(stderr=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
StackOpt = Annotated[str, typer.Option("--stack", "-s", help="Stack config: Pulumi.<stack>.yaml")]
StateOpt = Annotated[Path, typer.Option("--state-dir", help="Where local state lives")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _target(stack: str, state_dir: Path) -> Any:
    try:
        return connect(stack, state_dir)
    except TargetError as exc:
        raise _fail(str(exc)) from None


# --- preview ---------------------------------------------------------------------


@app.command()
def preview(stack: StackOpt = "dev") -> None:
    """Evaluate the real Pulumi program offline (mock runtime) and check the policy pack."""
    from infra.config import ConfigError
    from infra.preview import check_rules, run_program

    try:
        with console.status(f"evaluating the program for stack {stack!r}…"):
            run = run_program(stack, REPO_ROOT, build_dir=DEFAULT_STATE_DIR / "build")
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    violations = check_rules(run)
    console.print(_resource_tree(run))
    summary = Table(title=f"Stack {stack!r}: key security properties")
    summary.add_column("property")
    summary.add_column("value")
    for key, value in _security_facts(run).items():
        summary.add_row(key, value)
    console.print(summary)
    custom = len(run.custom_resources)
    console.print(f"{custom} resources in {run.seconds:.2f}s (under Pulumi's mock runtime)")
    if violations:
        table = Table(title="Policy pack: violations", style="red")
        for column in ("rule", "resource", "message"):
            table.add_column(column)
        for v in violations:
            table.add_row(v.rule, v.urn.rsplit("::", 1)[-1], v.message)
        console.print(table)
        raise typer.Exit(1)
    console.print("[green]policy pack: all rules pass[/]")


def _resource_tree(run: Any) -> Tree:
    tree = Tree(f"[bold]stack {run.stack}[/]")
    nodes: dict[str, Tree] = {}
    # components first, so their children find them
    for resource in sorted(run.resources, key=lambda r: (r.custom, r.urn)):
        parent = nodes.get(resource.parent, tree)
        facts = _facts(resource.type, resource.inputs)
        label = f"{resource.name} [dim]{resource.type}[/]" + (f" [cyan]{facts}[/]" if facts else "")
        nodes[resource.urn] = parent.add(label)
    return tree


def _facts(typ: str, props: Any) -> str:
    """The security properties worth seeing next to a resource in the preview."""
    short = typ.rsplit(":", 1)[-1]
    if short == "Key":
        return "rotation on" if props.get("enableKeyRotation") else "ROTATION OFF"
    if short == "BucketServerSideEncryptionConfiguration":
        rule = (props.get("rules") or [{}])[0]
        algorithm = (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
        return f"{algorithm}{', bucket key' if rule.get('bucketKeyEnabled') else ''}"
    if short == "BucketPublicAccessBlock":
        flags = (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
        return f"{sum(bool(props.get(f)) for f in flags)}/4 public-access blocks"
    if short == "BucketPolicy":
        return "TLS only" if "aws:SecureTransport" in str(props.get("policy")) else "NO TLS DENY"
    if short == "LaunchTemplate":
        tokens = (props.get("metadataOptions") or {}).get("httpTokens")
        return f"IMDSv2 {tokens}"
    if short == "Function":
        dlq = "DLQ" if props.get("deadLetterConfig") else "NO DLQ"
        return f"{dlq}, reserved {props.get('reservedConcurrentExecutions')}"
    if short in {"Queue", "Topic"}:
        return "KMS" if props.get("kmsMasterKeyId") else "NOT ENCRYPTED"
    if short == "Table":
        sse = (props.get("serverSideEncryption") or {}).get("enabled")
        pitr = (props.get("pointInTimeRecovery") or {}).get("enabled")
        return f"{'KMS' if sse else 'NO KMS'}, {'PITR' if pitr else 'NO PITR'}"
    if short == "LogGroup":
        return (
            f"{'KMS' if props.get('kmsKeyId') else 'NO KMS'}, {props.get('retentionInDays')} days"
        )
    return ""


def _security_facts(run: Any) -> dict[str, str]:
    def count(typ: str) -> int:
        return len(run.of_type(typ))

    buckets = count("aws:s3/bucket:Bucket")
    keys = run.of_type("aws:kms/key:Key")
    templates = run.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    tokens = [(t.inputs.get("metadataOptions") or {}).get("httpTokens") for t in templates]
    functions = run.of_type("aws:lambda/function:Function")
    with_dlq = sum(bool(f.inputs.get("deadLetterConfig")) for f in functions)
    return {
        "KMS keys (rotation on)": f"{sum(bool(k.inputs.get('enableKeyRotation')) for k in keys)}"
        f"/{len(keys)}",
        "buckets": str(buckets),
        "SSE-KMS configs": str(
            count(
                "aws:s3/bucketServerSideEncryptionConfiguration:"
                "BucketServerSideEncryptionConfiguration"
            )
        ),
        "public access blocks": str(
            count("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        ),
        "bucket policies (TLS only)": str(count("aws:s3/bucketPolicy:BucketPolicy")),
        "IAM roles": str(count("aws:iam/role:Role")),
        "launch template IMDSv2": ", ".join(str(t) for t in tokens) or "-",
        "Lambda functions (with DLQ)": f"{with_dlq}/{len(functions)}",
        "alarms": str(count("aws:cloudwatch/metricAlarm:MetricAlarm")),
        "Pulumi-managed endpoint": str(bool(run.outputs.get("pulumiManagedEndpoint"))),
    }


# --- the local cloud ------------------------------------------------------------------


@local_app.command("start")
def local_start(
    port: Annotated[int, typer.Option(help="Port of the moto server")] = 5000,
    tick: Annotated[float | None, typer.Option(help="Fire schedules every N seconds")] = None,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Start a moto server plus job runner, event router and endpoints, in the background."""
    from mlops import localcloud

    try:
        with console.status(f"starting the local cloud on 127.0.0.1:{port}…"):
            info = localcloud.start(state_dir, port=port, tick=tick, repo_root=REPO_ROOT)
    except localcloud.LocalCloudError as exc:
        raise _fail(str(exc)) from None
    console.print(f"local cloud running at [bold]{info.endpoint_url}[/] (pid {info.pid})")
    console.print(f"  boto3: AWS_ENDPOINT_URL={info.endpoint_url}; aws --endpoint-url ...")


@local_app.command("stop")
def local_stop(state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Stop the background local cloud (its resources live in memory and go with it)."""
    from mlops import localcloud

    if localcloud.stop(state_dir):
        for stale in (state_dir / "stacks").glob("*.json"):
            stale.unlink()
        console.print("local cloud stopped")
    else:
        console.print("no local cloud was running")


@local_app.command("status")
def local_status(state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Is the local cloud running, and what has it delivered?"""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        console.print("no local cloud running (start one with `mlops local start`)")
        raise typer.Exit(1)
    state = client.status(info)
    table = Table(title=f"local cloud {info.endpoint_url}")
    table.add_column("key")
    table.add_column("value")
    for key, value in state.items():
        table.add_row(key, str(value))
    console.print(table)


@local_app.command("fire")
def local_fire(rule: str, state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Fire a schedule rule now (schedules do not tick unless started with --tick)."""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        raise _fail("no local cloud running: `mlops local start`")
    console.print(f"{client.fire_schedule(info, rule)} deliveries queued")


@local_app.command("wait")
def local_wait(
    timeout: Annotated[float, typer.Option(help="Seconds")] = 300,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Wait until no job runs and no event is pending."""
    from mlops import localcloud
    from mlops.localcloud import client

    info = localcloud.status(state_dir)
    if info is None:
        raise _fail("no local cloud running: `mlops local start`")
    if not client.wait_idle(info, timeout):
        raise _fail(f"still busy after {timeout:.0f}s")
    console.print("idle")


# --- deploys ------------------------------------------------------------------------------


@app.command()
def up(
    stack: StackOpt = "local",
    local: Annotated[bool, typer.Option("--local", help="Deploy into the local cloud")] = False,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Deploy the stack: into the running local cloud with --local, else via the Pulumi CLI."""
    from infra.config import ConfigError
    from mlops import localcloud
    from mlops.deploy import DeployError, deploy

    if not local:
        console.print(
            "Deploying to AWS uses the Pulumi CLI (not needed for anything offline):\n"
            f"  pulumi stack select {stack} || pulumi stack init {stack}\n"
            "  pulumi config set aws:region <region>\n"
            "  pulumi up\n"
            "Offline: `mlops local start` then `mlops up --local`."
        )
        return
    info = localcloud.status(state_dir)
    if info is None:
        raise _fail("no local cloud running: start it with `mlops local start`")
    try:
        with console.status(f"deploying stack {stack!r} into {info.endpoint_url}…"):
            result = deploy(stack, info.endpoint_url, state_dir, REPO_ROOT)
    except (ConfigError, DeployError) as exc:
        raise _fail(str(exc)) from None
    table = Table(
        title=f"stack {stack!r}: {result.resource_count} resources in {result.seconds:.1f}s"
    )
    table.add_column("output")
    table.add_column("value")
    for key, value in result.outputs.items():
        if key != "lambdaEnvironment":
            table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(table)


@app.command()
def down(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Delete a locally deployed stack from the local cloud."""
    from mlops import localcloud
    from mlops.deploy import destroy, stack_outputs

    info = localcloud.status(state_dir)
    if info is None:
        raise _fail("no local cloud running; its resources went with it")
    region = str(stack_outputs(state_dir, stack).get("region", "us-east-1"))
    problems = destroy(stack, info.endpoint_url, state_dir, region)
    for problem in problems:
        err.print(f"[yellow]could not delete[/] {problem}")
    console.print("stack deleted" if not problems else "stack partly deleted; re-run `mlops down`")


# --- the model's life -------------------------------------------------------------------


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV or Parquet files with a label")],
    day: Annotated[str | None, typer.Option(help="incoming/<day>/ (default today)")] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Upload labelled data to raw/incoming/; the upload itself triggers retraining."""
    from mlops import ops

    target = _target(stack, state_dir)
    try:
        for uri in ops.ingest(target, files, day):
            console.print(f"uploaded {uri}")
    except ops.OpsError as exc:
        raise _fail(str(exc)) from None


@app.command()
def train(
    reason: Annotated[str, typer.Option(help="Recorded on the job")] = "manual",
    force: Annotated[
        bool, typer.Option(help="Train again even if this data version was trained")
    ] = False,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Request a retrain now (same guards as the Lambda: idempotent, one job in flight)."""
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.train(_target(stack, state_dir), reason, force)
    _print_outcome(outcome)


@app.command()
def promote(job: str, stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Gate a finished job against the champion and deploy it if it wins."""
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.promote_job(_target(stack, state_dir), job)
    _print_outcome(outcome)


@app.command()
def drift(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Run the drift monitor now over captured traffic."""
    from mlops import ops

    with _quiet_handlers():
        outcome = ops.run_drift(_target(stack, state_dir))
    _print_outcome(outcome)


@contextmanager
def _quiet_handlers() -> Iterator[None]:
    """The handlers log their outcome as JSON for CloudWatch; the CLI prints it instead."""
    from lambdas import drift, promote, retrain

    loggers = [module.logger for module in (retrain, promote, drift)]
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

    target = _target(stack, state_dir)
    jobs = Table(title="training jobs")
    for column in ("job", "trigger", "status", "failure"):
        jobs.add_column(column)
    for job in ops.jobs(target):
        jobs.add_row(job["name"], job["trigger"], job["status"], job["failure"][:80])
    console.print(jobs)
    packages = Table(title="model packages (the champion is the newest Approved)")
    for column in ("version", "status", "reason"):
        packages.add_column(column)
    for package in ops.packages(target):
        packages.add_row(str(package["version"]), package["status"], package["description"][:100])
    console.print(packages)
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
        record = ops.lineage(_target(stack, state_dir), job)
    except ops.OpsError as exc:
        raise _fail(str(exc)) from None
    serving = " [green](serving)[/]" if record["serving"] else ""
    console.print(f"[bold]{record['job']}[/]{serving}")
    trigger = record.get("trigger") or {}
    console.print(f"data version {record['data_version']}; trigger: {trigger.get('kind', '?')}")
    champion = record.get("champion") or {}
    if champion:
        console.print(f"champion: {champion.get('package') or champion.get('reason', '-')}")
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
            f"package v{package['version']}: {package['status']}: {package['description']}"
        )


@app.command()
def predict(
    source: Annotated[str, typer.Argument(help="CSV file of feature rows, or - for stdin")],
    content_type: Annotated[str, typer.Option(help="text/csv or application/json")] = "text/csv",
    accept: Annotated[str, typer.Option(help="Response type")] = "text/csv",
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Send rows to the deployed endpoint and print its predictions."""
    from mlops import ops

    body = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    try:
        answer, _ = ops.predict(_target(stack, state_dir), body, content_type, accept)
    except ops.OpsError as exc:
        raise _fail(str(exc)) from None
    sys.stdout.write(answer.decode())


@app.command()
def report(
    job: str,
    out: Annotated[Path, typer.Option(help="Folder for the report")] = DEFAULT_STATE_DIR
    / "reports",
    open_browser: Annotated[bool, typer.Option("--open", help="Open it in a browser")] = False,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Fetch a job's report.html (metrics, confusion matrix, ROC and PR curves)."""
    from mlops import ops

    try:
        path = ops.report(_target(stack, state_dir), job, out)
    except ops.OpsError as exc:
        raise _fail(str(exc)) from None
    console.print(str(path))
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="A model folder, a model.tar.gz or a job name")],
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    host: Annotated[str, typer.Option(help="Address")] = "127.0.0.1",
    capture_dir: Annotated[Path | None, typer.Option(help="Write data capture here")] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Serve one model over the SageMaker container contract, in the foreground."""
    from mlops import endpoint, ops

    path = Path(model)
    if not path.exists():
        if "/" in model or model.endswith((".tar.gz", ".joblib")):
            raise _fail(f"no such model folder or archive: {model}")
        try:
            path = ops.model_tarball(connect(stack, state_dir), model, state_dir / "models")
        except (ops.OpsError, TargetError) as exc:
            raise _fail(f"{model!r} is neither a path nor a finished job: {exc}") from None
    capture = (
        endpoint.CaptureWriter(endpoint_name="local", directory=capture_dir)
        if capture_dir is not None
        else None
    )
    console.print(f"serving {path} on http://{host}:{port} (/ping, /invocations); Ctrl-C stops")
    try:
        endpoint.serve(path, host, port, capture=capture)
    except endpoint.EndpointError as exc:
        raise _fail(str(exc)) from None


@app.command()
def demo(
    rows: Annotated[int, typer.Option(help="Transactions per day")] = 20_000,
    seed: Annotated[int, typer.Option(help="Data seed")] = 7,
) -> None:
    """The whole loop offline: deploy, ingest, train, promote, serve, drift, retrain, gate."""
    from mlops import demo as demo_module

    console.print("[bold]mlops demo[/]: the whole loop in a local cloud of its own\n")
    try:
        result = demo_module.run(REPO_ROOT, rows=rows, seed=seed, console=console)
    except KeyboardInterrupt:
        raise _fail("interrupted; everything the demo started has been stopped", 130) from None
    except demo_module.DemoError as exc:
        raise _fail(str(exc)) from None
    demo_module.print_summary(result, console)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
