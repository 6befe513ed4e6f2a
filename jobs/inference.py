"""Serving functions for the SageMaker scikit-learn container.

``model_fn`` / ``input_fn`` / ``predict_fn`` / ``output_fn`` follow the
container's contract. This module imports nothing else from ``jobs`` so it
also works when the container loads it as a top-level script. Bad requests
raise ``ValueError`` with a message saying what was wrong (HTTP 400).
"""

# Python 3.9 runs this in the SageMaker scikit-learn 1.2-1 container: no zip(strict=).
# ruff: noqa: B905
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np

MODEL_FILE = "model.joblib"
EVALUATION_FILE = "evaluation.json"
# set by promote on the serving Model: the model.joblib digest the gate approved
MODEL_SHA256_ENV = "MLOPS_MODEL_SHA256"
CSV = "text/csv"
JSON = "application/json"
_REQUIRED_KEYS = ("pipeline", "features", "categorical", "labels", "threshold", "positive_label")


def category_value(value: Any) -> Any:
    """Normalise one categorical value the same way in training and serving.

    Missing stays ``nan``; whole-number floats lose their ``.0`` (a column of
    zip codes with a gap reads as floats in pandas but as ints from JSON).
    """
    if value is None:
        return np.nan
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return np.nan
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value)


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model_fn(model_dir: str) -> dict[str, Any]:
    """Load the model dict after checking its SHA-256 against ``evaluation.json``."""
    folder = Path(model_dir)
    path = folder / MODEL_FILE
    evaluation = folder / EVALUATION_FILE
    if not evaluation.is_file():
        raise RuntimeError(f"{EVALUATION_FILE} not found in {folder}; cannot verify {MODEL_FILE}")
    expected = json.loads(evaluation.read_text())["model"]["sha256"]
    actual = sha256_file(path)
    if actual != expected:
        raise RuntimeError(
            f"{MODEL_FILE} SHA-256 is {actual} but training recorded {expected}; refusing to load"
        )
    approved = os.environ.get(MODEL_SHA256_ENV)
    if approved and actual != approved:
        raise RuntimeError(
            f"{MODEL_FILE} SHA-256 is {actual} but the promotion gate approved {approved} "
            f"({MODEL_SHA256_ENV}); refusing to load"
        )
    model: dict[str, Any] = joblib.load(path)
    absent = [k for k in _REQUIRED_KEYS if k not in model]
    if absent:
        raise RuntimeError(f"{MODEL_FILE} lacks key(s): {', '.join(absent)}")
    labels = list(model["labels"])
    model["_positive_index"] = (
        labels.index(model["positive_label"]) if model["positive_label"] is not None else None
    )
    model["_negative_index"] = (
        next(i for i, label in enumerate(labels) if label != model["positive_label"])
        if model["positive_label"] is not None
        else None
    )
    model["_label_keys"] = [str(label) for label in labels]
    return model


@dataclass
class Rows:
    """A parsed request: a float array when every value was numeric, else raw rows."""

    values: np.ndarray | list[Any]
    content_type: str


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def input_fn(input_data: str | bytes, content_type: str) -> Rows:
    """Parse a ``text/csv`` or ``application/json`` request body."""
    media = _media_type(content_type)
    if media not in (CSV, JSON):
        raise ValueError(f"unsupported content type '{content_type}'; use {CSV} or {JSON}")
    if isinstance(input_data, (bytes, bytearray)):
        try:
            text = bytes(input_data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"request body is not UTF-8: {exc}") from exc
    else:
        text = input_data
    if not text.strip():
        raise ValueError("empty request body")
    rows: list[Any]
    if media == CSV and '"' not in text:
        # the common case, plain numbers: about twice as fast as csv + numpy's str parsing
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
        try:
            return Rows(np.array([list(map(float, row)) for row in rows]), media)
        except ValueError:
            pass  # blanks, words or ragged rows: predict_fn sorts them out
    elif media == CSV:
        rows = [row for row in csv.reader(io.StringIO(text)) if row]
    else:
        rows = _json_rows(text)
    if not rows:
        raise ValueError("the request has no rows")
    try:
        return Rows(np.array(rows, dtype=np.float64), media)
    except (ValueError, TypeError):
        return Rows(rows, media)  # strings, dicts or ragged rows: predict_fn sorts them out


def _json_rows(text: str) -> list[Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"request body is not valid JSON: {exc}") from exc
    except RecursionError:
        # a client error (400), not a server one: rows are lists or objects of values
        raise ValueError(
            "request body nests JSON too deep: send rows as lists or objects of values"
        ) from None
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
        if not isinstance(payload, list):
            raise ValueError("'instances' must be a list of rows")
        return payload
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if payload and all(isinstance(row, (list, dict)) for row in payload):
            return payload
        if any(isinstance(v, (list, dict)) for v in payload):
            raise ValueError("a JSON list must hold either rows or one row of values")
        return [payload]
    raise ValueError("JSON body must be an object or a list")


def _number(value: Any, row: int, feature: str) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"row {row}, feature '{feature}': {str(value)[:40]!r} is not a number"
        ) from None


def _code(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _ordered(rows: list[Any], features: list[str]) -> list[list[Any]]:
    """Rows as lists in feature order, checking each row's shape."""
    out = []
    n = len(features)
    for i, row in enumerate(rows):
        if isinstance(row, dict):
            absent = [f for f in features if f not in row]
            if absent:
                raise ValueError(f"row {i} lacks feature(s): {', '.join(absent)}")
            extra = [str(k) for k in row if k not in features]
            if extra:
                raise ValueError(f"row {i} has unknown feature(s): {', '.join(extra)}")
            out.append([row[f] for f in features])
        elif isinstance(row, list):
            if len(row) != n:
                raise ValueError(
                    f"row {i} has {len(row)} values; the model expects {n} features: "
                    + ", ".join(features)
                )
            out.append(row)
        else:
            raise ValueError(f"row {i} is neither a list nor an object")
    return out


def _to_model_input(data: Rows, model: dict[str, Any]) -> Any:
    features: list[str] = model["features"]
    categorical: list[str] = model["categorical"]
    n = len(features)
    if isinstance(data.values, np.ndarray) and not categorical:
        values = data.values
        if values.ndim != 2 or values.shape[1] != n:
            width = values.shape[1] if values.ndim == 2 else 0
            raise ValueError(
                f"rows have {width} values; the model expects {n} features: " + ", ".join(features)
            )
        return values
    rows = data.values.tolist() if isinstance(data.values, np.ndarray) else list(data.values)
    if data.content_type == CSV and rows and [str(v).strip() for v in rows[0]] == features:
        rows = rows[1:]  # a header row
        if not rows:
            raise ValueError("the request has a header but no rows")
    rows = _ordered(rows, features)
    if not categorical:
        return np.array(
            [[_number(v, i, f) for v, f in zip(row, features)] for i, row in enumerate(rows)],
            dtype=np.float64,
        )
    import pandas as pd  # only models with categorical columns need a frame

    numeric_codes = set(model.get("categorical_numeric", []))
    columns: dict[str, list[Any]] = {}
    for j, feature in enumerate(features):
        if feature in numeric_codes:  # read as numbers in training: "20.0", 20 and "20" agree
            columns[feature] = [category_value(_code(row[j])) for row in rows]
        elif feature in categorical:
            columns[feature] = [category_value(None if row[j] == "" else row[j]) for row in rows]
        else:
            columns[feature] = [_number(row[j], i, feature) for i, row in enumerate(rows)]
    frame = pd.DataFrame(columns, columns=features)
    for feature in categorical:
        frame[feature] = frame[feature].astype(object)
    return frame


def predict_fn(input_data: Rows, model: dict[str, Any]) -> dict[str, Any]:
    """Predict labels (with the tuned threshold for binary) and class probabilities."""
    x = _to_model_input(input_data, model)
    proba = model["pipeline"].predict_proba(x)
    labels = model["labels"]
    pos = model["_positive_index"]
    if pos is not None and model["threshold"] is not None:
        chosen = np.where(proba[:, pos] >= model["threshold"], pos, model["_negative_index"])
    else:
        chosen = proba.argmax(axis=1)
    return {
        "labels": [labels[i] for i in chosen.tolist()],
        "probabilities": proba,
        "classes": model["_label_keys"],
    }


def output_fn(prediction: dict[str, Any], accept: str | None) -> str:
    """Format predictions as ``application/json`` (default) or ``text/csv``."""
    media = _media_type(accept)
    keys = prediction["classes"]
    proba = prediction["probabilities"].tolist()
    if media in ("", "*/*", JSON):
        body = {
            "predictions": [
                {"label": label, "probabilities": dict(zip(keys, row))}
                for label, row in zip(prediction["labels"], proba)
            ]
        }
        return json.dumps(body)
    if media == CSV:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        for label, row in zip(prediction["labels"], proba):
            writer.writerow([label, *(repr(p) for p in row)])
        return buffer.getvalue()
    raise ValueError(f"unsupported accept type '{accept}'; use {CSV} or {JSON}")
