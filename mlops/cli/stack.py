"""Commands on the stack as a whole: `preview` (offline, with the policy pack), `up`, `down`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from mlops.cli.common import (
    REPO_ROOT,
    USER_ERRORS,
    StackOpt,
    StateOpt,
    app,
    console,
    err,
    fail,
    waiting,
)
from mlops.target import DEFAULT_STATE_DIR


@app.command()
def preview(stack: StackOpt = "dev") -> None:
    """Evaluate the real Pulumi program offline (mock runtime) and check the policy pack."""
    from infra.preview import check_rules, run_program

    try:
        with console.status(f"evaluating the program for stack {stack!r}…"):
            run = run_program(stack, REPO_ROOT, build_dir=DEFAULT_STATE_DIR / "build")
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
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


@app.command()
def init(
    stack: Annotated[str, typer.Argument(help="The new stack's name: Pulumi.<stack>.yaml")],
    model_name: Annotated[str, typer.Option(help="Your model's short name")],
    target_column: Annotated[str, typer.Option(help="The column your model predicts")],
    base: Annotated[str, typer.Option("--from", help="The stack file to start from")] = "local",
) -> None:
    """Write a stack file for your own model (offline `pulumi new` / `pulumi config set`)."""
    from mlops.stackfile import init_stack

    try:
        path = init_stack(
            REPO_ROOT, stack, model_name=model_name, target_column=target_column, base=base
        )
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {path.name}: model {model_name!r}, target column {target_column!r}")
    console.print(
        f"next: mlops check YOUR.csv --stack {stack}, then mlops up --local --stack {stack}"
    )


@app.command()
def up(
    stack: StackOpt = "local",
    local: Annotated[bool, typer.Option("--local", help="Deploy into the local cloud")] = False,
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Deploy the stack: into the running local cloud with --local, else via the Pulumi CLI."""
    from mlops import localcloud
    from mlops.deploy import deploy

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
        raise fail("no local cloud running: start it with `mlops local start`")
    try:
        with waiting(f"stack {stack!r} to deploy into {info.endpoint_url}"):
            result = deploy(stack, info.endpoint_url, state_dir, REPO_ROOT)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    table = Table(
        title=f"stack {stack!r}: {result.resource_count} resources in {result.seconds:.1f}s"
    )
    table.add_column("output")
    table.add_column("value")
    for key, value in result.outputs.items():
        if key != "lambdaEnvironment":
            table.add_row(key, json.dumps(value) if not isinstance(value, str) else value)
    console.print(table)
    flag = "" if stack == "local" else f" --stack {stack}"
    console.print(
        f"deployed {result.resource_count} resources in {result.seconds:.0f}s; next: "
        f"`mlops ingest FILE{flag}` (no data yet? `mlops sample`)"
    )


@app.command()
def down(stack: StackOpt = "local", state_dir: StateOpt = DEFAULT_STATE_DIR) -> None:
    """Delete a locally deployed stack from the local cloud."""
    from mlops import localcloud
    from mlops.deploy import destroy, stack_outputs

    info = localcloud.status(state_dir)
    if info is None:
        raise fail("no local cloud running; its resources went with it")
    region = str(stack_outputs(state_dir, stack).get("region", "us-east-1"))
    problems = destroy(stack, info.endpoint_url, state_dir, region)
    for problem in problems:
        err.print(f"[yellow]could not delete[/] {problem}")
    console.print("stack deleted" if not problems else "stack partly deleted; re-run `mlops down`")
