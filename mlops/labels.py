"""The client side of ground truth: predictions made with inference IDs, labels uploaded.

``predict_rows`` sends one ``InvokeEndpoint`` per CSV row with an ``InferenceId`` (the
user's, from ``id_column``, or a new UUID), so a label that arrives later can be joined to
exactly that prediction. ``upload_labels`` turns a CSV of ``inference_id,label`` into a
ground-truth file in SageMaker Model Monitor's format (:mod:`lambdas.ground_truth`).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import ClientError

from lambdas.ground_truth import (
    MAX_INFERENCE_ID,
    ground_truth_key,
    ground_truth_record,
    is_inference_id,
)
from mlops.errors import MlopsError
from mlops.target import Target

PARALLEL_REQUESTS = 8
LABEL_COLUMNS = ("inference_id", "label")


class LabelError(MlopsError, ValueError):
    """Rows or labels that cannot be sent; the message names the row and what is wrong."""


@dataclass(frozen=True)
class Prediction:
    inference_id: str
    answer: str  # the endpoint's answer for the row, as text (one CSV line or JSON)


@dataclass(frozen=True)
class Rows:
    """What ``mlops predict`` sends: feature lines, their IDs, and what it took out."""

    lines: list[str]
    ids: list[str | None]
    dropped_target: str | None = None  # the target column of a labelled CSV
    header: bool = False


def _number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_header(row: Sequence[str], target: str | None) -> bool:
    # a header names columns: no cell of it is a number, or it names the target
    cells = [v.strip() for v in row]
    return (target is not None and target in cells) or not any(_number(v) for v in cells if v)


def split_rows(text: str, id_column: str | None, target: str | None = None) -> Rows:
    """Feature rows (CSV lines) and their IDs (None: make one).

    A first line that is a header (it names ``target``, or holds no number) is not sent;
    with ``id_column`` the first line must be a header naming it. A labelled CSV's
    ``target`` column is taken out of the rows (the model predicts it), as is the ID
    column."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(v.strip() for v in r)]
    header = bool(rows) and (id_column is not None or _is_header(rows[0], target))
    if id_column is not None and (not rows or id_column not in rows[0]):
        raise LabelError(f"--id-column {id_column!r}: the CSV's first line has no such column")
    if not header:
        return Rows([_line(r) for r in rows], [None] * len(rows))
    names = [v.strip() for v in rows[0]]
    drop = [names.index(c) for c in (id_column, target) if c is not None and c in names]
    at = names.index(id_column) if id_column is not None else None
    lines: list[str] = []
    ids: list[str | None] = []
    for number, row in enumerate(rows[1:], start=2):
        if at is not None:
            value = row[at].strip() if at < len(row) else ""
            if not is_inference_id(value):
                raise LabelError(
                    f"line {number}: {id_column} {value!r} is not an inference ID "
                    f"(1 to {MAX_INFERENCE_ID} printable characters)"
                )
            ids.append(value)
        else:
            ids.append(None)
        lines.append(_line([v for i, v in enumerate(row) if i not in drop]))
    given = [i for i in ids if i is not None]
    repeated = len(given) - len(set(given))
    if repeated:
        raise LabelError(f"{id_column}: {repeated} inference ID(s) repeat; each row needs its own")
    dropped = target if target is not None and target in names else None
    return Rows(lines, ids, dropped_target=dropped, header=True)


def _line(values: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue()


def predict_rows(
    target: Target, lines: Sequence[str], ids: Sequence[str | None], accept: str = "text/csv"
) -> list[Prediction]:
    """One request per row, ``PARALLEL_REQUESTS`` at a time, answers in row order."""
    runtime = target.client("sagemaker-runtime")
    endpoint = target.output("endpointName")

    def one(job: tuple[str, str | None]) -> Prediction:
        line, given = job
        inference_id = given or str(uuid.uuid4())
        try:
            result = runtime.invoke_endpoint(
                EndpointName=endpoint,
                Body=line.encode(),
                ContentType="text/csv",
                Accept=accept,
                InferenceId=inference_id,
            )
        except ClientError as exc:
            raise LabelError(f"row {line[:60]!r}: the endpoint refused it: {exc}") from exc
        return Prediction(inference_id, result["Body"].read().decode().strip())

    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        return list(pool.map(one, zip(lines, ids, strict=True)))


def read_labels(path: Path) -> list[tuple[str, str]]:
    """``(inference_id, label)`` rows of a labels CSV (header ``inference_id,label``)."""
    if not path.is_file():
        raise LabelError(f"{path}: no such file")
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    if not rows or [h.strip() for h in rows[0][:2]] != list(LABEL_COLUMNS):
        raise LabelError(f"{path}: the first line must be the header {','.join(LABEL_COLUMNS)}")
    labels, problems = [], []
    for number, row in enumerate(rows[1:], start=2):
        if not row or not any(v.strip() for v in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"line {number}: needs an inference_id and a label, got {row!r}")
            continue
        labels.append((row[0].strip(), row[1].strip()))
    if problems:
        shown = "; ".join(problems[:5])
        raise LabelError(f"{path}: {len(problems)} bad line(s), nothing uploaded: {shown}")
    if not labels:
        raise LabelError(f"{path}: no labels")
    return labels


def upload_labels(target: Target, path: Path, now: datetime | None = None) -> tuple[str, int, int]:
    """Upload ``path`` as one new ground-truth file: ``(s3 uri, labels, repeated IDs)``.

    A new key every time (raw data is never overwritten); repeated IDs are uploaded as
    they are: the quality monitor keeps the last label and counts the others."""
    labels = read_labels(path)
    now = now or datetime.now(UTC)
    bucket = target.output("rawBucket")
    key = ground_truth_key(now, f"{path.stem}-{uuid.uuid4().hex[:12]}")
    body = "".join(ground_truth_record(i, label) + "\n" for i, label in labels)
    target.client("s3").put_object(
        Bucket=bucket,
        Key=key,
        Body=body.encode(),
        ContentType="application/jsonl",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=target.output("kmsKeyArn"),
    )
    repeated = len(labels) - len({i for i, _ in labels})
    return f"s3://{bucket}/{key}", len(labels), repeated
