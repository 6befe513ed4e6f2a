"""Capture files: SageMaker data-capture JSON lines back into feature rows. Pure."""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from lambdas.psi import MISSING


def _rows_from_payload(content_type: str, text: str, features: Sequence[str]) -> list[list[Any]]:
    """Rows (in ``features`` order) of one request body, per docs/contracts.md "Serving"."""
    if "json" in content_type:
        doc = json.loads(text)
        instances = doc.get("instances", doc) if isinstance(doc, dict) else doc
        if isinstance(instances, dict) or (
            isinstance(instances, list) and instances and not isinstance(instances[0], list | dict)
        ):
            instances = [instances]  # a single row
        if not isinstance(instances, list):
            raise ValueError("JSON body has no list of instances")
        rows = []
        for instance in instances:
            if isinstance(instance, dict):
                rows.append([instance.get(f, MISSING) for f in features])
            elif isinstance(instance, list):
                if len(instance) != len(features):
                    raise ValueError(f"row has {len(instance)} values, expected {len(features)}")
                rows.append(list(instance))
            else:
                raise ValueError(f"instance is a {type(instance).__name__}")
        return rows
    if "csv" in content_type or not content_type:
        rows = []
        for row in csv.reader(io.StringIO(text)):
            if not row or row == list(features):
                continue  # blank line or header row
            if len(row) != len(features):
                raise ValueError(f"CSV row has {len(row)} values, expected {len(features)}")
            rows.append(list(row))
        return rows
    raise ValueError(f"unsupported content type {content_type!r}")


def record_rows(record: Any, features: Sequence[str]) -> list[list[Any]]:
    """Feature rows of one capture record's request body."""
    request = record["captureData"]["endpointInput"]
    data, encoding = request["data"], str(request.get("encoding", "CSV")).upper()
    content_type = str(request.get("observedContentType", "")).lower()
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
    return _rows_from_payload(content_type, str(data), features)


def parse_capture(text: str, features: Sequence[str]) -> tuple[list[list[Any]], list[str]]:
    """Rows of the request bodies in one SageMaker capture file, and per-record errors."""
    rows: list[list[Any]] = []
    errors: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows += record_rows(json.loads(line), features)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            errors.append(f"line {number}: {type(exc).__name__}: {exc}")
    return rows, errors
