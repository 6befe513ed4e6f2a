"""What the quality monitor reads: captured predictions with inference IDs, and labels.

A capture record joins only when it carries an ``inferenceId`` and one row (the ID names
one prediction); the rest are counted. Labels are read in key (upload time) order, so
the last label of an ID wins.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_text
from lambdas.captures import record_rows
from lambdas.config import Config
from lambdas.ground_truth import Labels

SKEW = timedelta(hours=1)  # labels stamped up to an hour before the window are read


@dataclass(frozen=True)
class Served:
    """One captured prediction: its feature values, predicted label and positive score."""

    row: list[Any]
    predicted: str
    score: float


def norm_label(value: Any) -> str:
    """Labels compare as text, ``1``, ``1.0`` and ``"1"`` alike."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def _hours(start: datetime, end: datetime) -> list[str]:
    hour = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while hour <= end:
        out.append(hour.strftime("%Y/%m/%d/%H"))
        hour += timedelta(hours=1)
    return out


def _keys(s3: Any, bucket: str, prefixes: Iterable[str]) -> list[str]:
    keys: list[str] = []
    for prefix in prefixes:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")]
    return keys


def _read(s3: Any, bucket: str, key: str) -> str:
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body.decode("utf-8")


def _prediction(
    output: Mapping[str, Any], labels: Sequence[str], positive: str
) -> tuple[str, float]:
    """``(predicted label, positive-class probability)`` of a one-row endpoint answer."""
    data, kind = str(output["data"]), str(output.get("observedContentType", "")).lower()
    if "json" in kind:
        [answer] = json.loads(data)["predictions"]
        probabilities = {norm_label(k): float(v) for k, v in answer["probabilities"].items()}
        return norm_label(answer["label"]), probabilities[positive]
    [line] = [r for r in csv.reader(io.StringIO(data)) if r]
    if len(line) != len(labels) + 1:
        raise ValueError(f"CSV answer has {len(line)} values, expected {len(labels) + 1}")
    return norm_label(line[0]), float(line[1 + list(labels).index(positive)])


def capture_variants(s3: Any, bucket: str, endpoint: str) -> list[str]:
    """The variants with capture files under ``<endpoint>/``."""
    prefix = f"{endpoint}/"
    return [
        p["Prefix"][len(prefix) : -1]
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        )
        for p in page.get("CommonPrefixes", [])
    ]


@dataclass
class Captured:
    served: dict[str, Served]
    earlier: set[str]  # inference IDs served in the previous window
    records: int = 0
    without_id: int = 0
    multi_row: int = 0
    unreadable: int = 0


def read_captures(
    config: Config,
    clients: Clients,
    start: datetime,
    end: datetime,
    spec: Mapping[str, Any],
    problems: list[str],
    *,
    variants: Sequence[str] | None = None,
    earlier: bool = True,
) -> Captured:
    """The window's one-row captured predictions by inference ID, and the previous
    window's IDs. A half-written or foreign line is counted, never joined.

    ``variants``: whose captures; by default every variant but a rollout's challenger
    (a shadow copy of the champion's requests, judged by :mod:`lambdas.trial`).
    ``earlier=False``: the previous window's IDs are not wanted (nor read)."""
    s3, bucket = clients.s3, config.capture_bucket or ""
    before = start - (end - start) if earlier else start
    if variants is None:
        variants = [
            v
            for v in capture_variants(s3, bucket, config.endpoint_name or "")
            if v != c.CHALLENGER_VARIANT_NAME
        ]
    variants = [f"{config.endpoint_name}/{v}/" for v in variants]
    prefixes = [f"{v}{hour}/" for v in variants for hour in _hours(before, end)]
    out = Captured({}, set())
    features, labels, positive = spec["features"], spec["labels"], spec["positive"]
    for key in _keys(s3, bucket, prefixes):
        try:
            text = _read(s3, bucket, key)
        except (ClientError, UnicodeDecodeError) as exc:
            out.unreadable += 1
            problems.append(f"capture {key}: {error_text(exc)}")
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                meta = record["eventMetadata"]
                when = datetime.fromisoformat(str(meta["inferenceTime"]).replace("Z", "+00:00"))
                inference_id = meta.get("inferenceId")
                if when < before or when >= end:
                    continue
                if when < start:
                    if inference_id:
                        out.earlier.add(str(inference_id))
                    continue
                out.records += 1
                if not inference_id:
                    out.without_id += 1
                    continue
                rows = record_rows(record, features)
                if len(rows) != 1:
                    out.multi_row += 1
                    continue
                predicted, score = _prediction(
                    record["captureData"]["endpointOutput"], labels, positive
                )
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                out.unreadable += 1
                problems.append(f"capture {key} line {number}: {type(exc).__name__}: {exc}")
                continue
            out.served[str(inference_id)] = Served(rows[0], predicted, score)
    return out


def read_labels(
    config: Config, clients: Clients, start: datetime, end: datetime, problems: list[str]
) -> Labels:
    """Labels from files uploaded in ``[start - SKEW, end]``, in key (time) order."""
    s3, bucket = clients.s3, config.raw_bucket or ""
    prefixes = [f"{c.GROUND_TRUTH_PREFIX}{hour}/" for hour in _hours(start - SKEW, end)]
    labels = Labels()
    for key in sorted(_keys(s3, bucket, prefixes)):
        try:
            labels.add(key, _read(s3, bucket, key))
        except (ClientError, UnicodeDecodeError) as exc:
            labels.malformed.append(f"{key}: {error_text(exc)}")
    problems += labels.malformed
    return labels
