"""A trained model's outputs: predictions from the endpoint, a job's report, local serving."""

from __future__ import annotations

import csv
import io
import json
import sys
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from mlops.cli.common import (
    REPO_ROOT,
    USER_ERRORS,
    StackOpt,
    StateOpt,
    app,
    console,
    err,
    fail,
    target_for,
)
from mlops.target import DEFAULT_STATE_DIR, connect


@app.command()
def predict(
    source: Annotated[str, typer.Argument(help="CSV file of feature rows, or - for stdin")],
    content_type: Annotated[str, typer.Option(help="text/csv or application/json")] = "text/csv",
    accept: Annotated[str, typer.Option(help="Response type")] = "text/csv",
    id_column: Annotated[
        str | None,
        typer.Option(help="CSV column of your own inference IDs (the first line is a header)"),
    ] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Send rows to the deployed endpoint and print each one's inference ID and prediction.

    CSV rows go one request each, with an InferenceId (yours from --id-column, or a new
    one): `mlops label` later joins true labels to them. A header line is not sent; a
    labelled CSV's target column (the stack's targetColumn) is dropped, with a note. A
    JSON body goes as one request."""
    from mlops import labels, ops

    body = sys.stdin.buffer.read() if source == "-" else _read(source)
    target = target_for(stack, state_dir)
    try:
        if "json" in content_type:
            if id_column:
                raise labels.LabelError("--id-column needs a CSV body (--content-type text/csv)")
            answer, _ = ops.predict(target, body, content_type, accept)
            sys.stdout.write(answer.decode())
            return
        rows = labels.split_rows(body.decode("utf-8-sig"), id_column, _target_column(stack))
        if rows.dropped_target:
            err.print(
                f"dropped the target column '{rows.dropped_target}': the model predicts it "
                "(its true values are what `mlops label` uploads later)"
            )
        predictions = labels.predict_rows(target, rows.lines, rows.ids, accept)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    json_answer = "json" in accept
    for prediction in predictions:
        if not prediction.answer:  # a header line the model skipped
            continue
        if json_answer:
            doc = {"inference_id": prediction.inference_id, "answer": json.loads(prediction.answer)}
            sys.stdout.write(json.dumps(doc) + "\n")
        else:
            sys.stdout.write(f"{_csv_cell(prediction.inference_id)},{prediction.answer}\n")


def _target_column(stack: str) -> str | None:
    """The stack's target column, to drop from a labelled CSV (None: no stack file)."""
    from infra.config import settings_for_stack

    try:
        return settings_for_stack(stack, REPO_ROOT)[0].target_column
    except USER_ERRORS:
        return None


def _csv_cell(value: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([value])
    return buffer.getvalue()


def _read(source: str) -> bytes:
    path = Path(source)
    if not path.is_file():
        raise fail(f"{source}: no such file")
    return path.read_bytes()


@app.command()
def label(
    source: Annotated[Path, typer.Argument(help="CSV with the header inference_id,label")],
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Upload true labels for served predictions (ground truth, Model Monitor's format)."""
    from mlops import labels

    try:
        uri, count, repeated = labels.upload_labels(target_for(stack, state_dir), source)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"{count} label(s) -> {uri}")
    if repeated:
        console.print(
            f"{repeated} inference ID(s) repeat: the monitor keeps the last label of each"
        )


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
        path = ops.report(target_for(stack, state_dir), job, out)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(str(path))
    if open_browser:
        webbrowser.open(path.resolve().as_uri())


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="A model folder, a model.tar.gz or a job name")],
    port: Annotated[int, typer.Option(help="Port")] = 8080,
    host: Annotated[str, typer.Option(help="Address")] = "127.0.0.1",
    capture_dir: Annotated[Path | None, typer.Option(help="Write data capture here")] = None,
    program: Annotated[
        str | None,
        typer.Option(help="Your serving module in the model's code/ (SAGEMAKER_PROGRAM)"),
    ] = None,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Serve one model over the SageMaker container contract, in the foreground: this
    project's models, or yours with code/inference.py (model_fn, input_fn, ...)."""
    from mlops import endpoint, ops

    path = Path(model)
    if not path.exists():
        if "/" in model or model.endswith((".tar.gz", ".joblib")):
            raise fail(f"no such model folder or archive: {model}")
        try:
            path = ops.model_tarball(connect(stack, state_dir), model, state_dir / "models")
        except USER_ERRORS as exc:
            raise fail(f"{model!r} is neither a path nor a finished job: {exc}") from None
    capture = (
        endpoint.CaptureWriter(endpoint_name="local", directory=capture_dir)
        if capture_dir is not None
        else None
    )
    console.print(f"serving {path} on http://{host}:{port} (/ping, /invocations); Ctrl-C stops")
    try:
        endpoint.serve(path, host, port, capture=capture, program=program)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None


@app.command()
def transform(
    input_s3: Annotated[
        str, typer.Argument(help="s3:// prefix of CSV files of feature rows, one per line")
    ],
    job: Annotated[
        str | None, typer.Option(help="A training job's model instead of the endpoint's")
    ] = None,
    join: Annotated[bool, typer.Option(help="Each output line starts with its input row")] = False,
    wait: Annotated[bool, typer.Option(help="Wait for the job to end")] = True,
    stack: StackOpt = "local",
    state_dir: StateOpt = DEFAULT_STATE_DIR,
) -> None:
    """Batch predictions over S3 objects: a SageMaker transform job with the champion."""
    from mlops import transforms

    target = target_for(stack, state_dir)
    try:
        started = transforms.start(target, input_s3, job=job, join=join)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    console.print(f"transform job {started['name']} ({started['model']}) -> {started['output']}/")
    if not wait:
        return
    described = transforms.wait(target, started["name"])
    status = described["TransformJobStatus"]
    if status != "Completed":
        raise fail(f"{started['name']} {status}: {described.get('FailureReason', '')}")
    console.print(f"{started['name']} Completed: one <input name>.out per input object")
