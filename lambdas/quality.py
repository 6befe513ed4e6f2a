"""Live model quality: captured predictions joined to late ground-truth labels.

``handler(event, context)`` runs on a schedule and on new objects under ``ground-truth/``
of the raw bucket (any event only starts a run). A run over the window
``[now - MLOPS_QUALITY_WINDOW_HOURS, now)``:

1. finds the champion the endpoint serves and reads its ``evaluation.json`` (labels,
   positive class, primary metric, features and its test metrics: the expectation); the
   window starts no earlier than the champion's endpoint config (older predictions were
   another model's);
2. reads the window's captured predictions that carry an ``inferenceId``, and the
   labels uploaded since the window began (:mod:`lambdas.quality_data`);
3. joins them by inference ID; a label for the previous window's prediction is late, one
   for an ID never served unknown, one that is not a class of the model unknown too;
4. publishes ``ModelQuality`` (dimensions Model, Metric), ``LabelledRows`` (Model),
   ``ModelQualityEstimated`` (CBPE from the served probabilities, every window) and
   ``ModelQualityShortfall`` (the expectation minus the realised primary metric);
5. a window whose primary metric falls below the expectation by more than
   ``MLOPS_QUALITY_TOLERANCE`` is a breach; ``MLOPS_QUALITY_WINDOWS`` in a row set the
   quality alarm (whose EventBridge rule starts a retrain) and alert;
6. with ``MLOPS_FEEDBACK_TO_TRAINING``, rows labelled since the last run (captured
   features + true label) go to ``incoming/<date>/feedback-<time>.csv``, for the next
   retrain (a feedback file starts none itself).

Missing champion, traffic or labels, bad files: counted and reported, never raised.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import (
    Clients,
    error_code,
    error_text,
    get_json,
    publish_alert,
    put_json,
    read_tar_members,
    sse_args,
)
from lambdas.config import Config, JsonDict
from lambdas.drift import serving_model
from lambdas.ground_truth import Labels
from lambdas.handling import iso, utcnow
from lambdas.quality_data import Captured, Served, norm_label, read_captures, read_labels
from lambdas.quality_metrics import ESTIMATED, REALISED, estimated, realised

logger = Logger(service="mlops-quality")

MAX_PROBLEMS = 20  # problems listed in the outcome (all are counted)
ROLLOUT_SLACK = timedelta(minutes=1)


def champion_spec(model_data_url: str, clients: Clients) -> JsonDict:
    """What the champion's ``evaluation.json`` says about how to score it."""
    raw = read_tar_members(clients.s3, model_data_url, [c.EVALUATION_FILE])
    if c.EVALUATION_FILE not in raw:
        raise ValueError(f"{c.EVALUATION_FILE} is not in {model_data_url}")
    evaluation = json.loads(raw[c.EVALUATION_FILE])
    if evaluation.get("task") != "binary":
        raise ValueError(f"the champion's task is {evaluation.get('task')!r}: binary only")
    primary = str(evaluation.get("primary_metric") or "f1")
    judged_by = primary if primary in REALISED else "f1"
    return {
        "features": [str(f) for f in evaluation["features"]],
        "labels": [norm_label(v) for v in evaluation["labels"]],
        "positive": norm_label(evaluation["positive_label"]),
        "target": str(evaluation.get("target") or "label"),
        "primary": judged_by,
        "primary_note": None if judged_by == primary else f"{primary} is not tracked live: f1",
        "expected": {k: evaluation.get("metrics", {}).get(k) for k in REALISED},
    }


def _serving_since(clients: Clients, endpoint_config: str) -> datetime | None:
    """When the champion's endpoint config was made, less ``ROLLOUT_SLACK`` (the new fleet
    takes traffic minutes later; a prediction or two of the old one may slip in)."""
    described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint_config)
    created = described.get("CreationTime")
    return created - ROLLOUT_SLACK if isinstance(created, datetime) else None


def _state_key(config: Config) -> str:
    return f"{c.QUALITY_STATE_KEY_PREFIX}{config.model_name}.json"


def _outcome(status: str, reason: str, **extra: Any) -> JsonDict:
    return {"status": status, "reason": reason, **extra}


def run_quality(config: Config, clients: Clients, *, now: datetime | None = None) -> JsonDict:
    """One quality run; see the module docstring. ``status`` is ``no-champion``,
    ``no-evaluation``, ``no-labels`` (too few joined rows: estimates only), ``ok`` or
    ``degraded`` (a breach; ``alarm`` once enough windows in a row breached)."""
    config.require("endpoint_name", "capture_bucket", "raw_bucket", "artifacts_bucket")
    now = now or utcnow()
    start = now - timedelta(hours=config.quality_window_hours)
    window = {"start": iso(start), "end": iso(now)}
    serving = serving_model(config, clients)
    if serving is None or not serving.get("model_data_url"):
        return _outcome("no-champion", f"endpoint {config.endpoint_name} serves nothing")
    try:
        spec = champion_spec(serving["model_data_url"], clients)
    except (ClientError, OSError, EOFError, tarfile.TarError, ValueError, KeyError) as exc:
        return _outcome("no-evaluation", f"champion {serving['model_name']}: {error_text(exc)}")
    since = _serving_since(clients, serving["endpoint_config"])
    if since is not None and start < since < now:
        # the previous champion's predictions are not this one's quality
        start = since
        window = {"start": iso(start), "end": iso(now), "from": "the champion's deployment"}
    problems: list[str] = []
    captured = read_captures(config, clients, start, now, spec, problems)
    labels = read_labels(config, clients, start, now, problems)
    joined, counts = _join(captured, labels, spec)
    served = list(captured.served.values())
    positive = spec["positive"]
    estimate = estimated([s.predicted == positive for s in served], [s.score for s in served])
    result: JsonDict = {
        "champion": serving["model_name"],
        "window": window,
        "primary_metric": spec["primary"],
        "expected": spec["expected"],
        "estimated": {k: estimate[k] for k in ESTIMATED} if served else None,
        "counts": counts,
        "problems": problems[:MAX_PROBLEMS],
    }
    if spec["primary_note"]:
        result["primary_note"] = spec["primary_note"]

    state = _load_state(config, clients, serving["model_name"])
    if len(joined) < config.quality_min_rows:
        _publish(config, clients, now, None, result["estimated"], len(joined), None)
        result["realised"] = None
        outcome = _outcome(
            "no-labels",
            f"{len(joined)} labelled predictions in the window (< {config.quality_min_rows}): "
            "estimates only",
            **result,
        )
        _save_state(config, clients, state, now, labels, outcome)
        return outcome
    truth = [label == positive for _, _, label in joined]
    said = [s.predicted == positive for _, s, _ in joined]
    scores = realised(truth, said, [s.score for _, s, _ in joined])
    result["realised"] = scores
    expected = spec["expected"].get(spec["primary"])
    value = scores.get(spec["primary"])
    shortfall = None if expected is None or value is None else float(expected) - float(value)
    result["shortfall"] = shortfall
    _publish(config, clients, now, scores, result["estimated"], len(joined), shortfall)
    breach = shortfall is not None and shortfall > config.quality_tolerance
    state["breaches"] = state.get("breaches", 0) + 1 if breach else 0
    result["breaches"] = state["breaches"]
    if config.feedback_to_training:
        result["feedback"] = _feedback(config, clients, now, joined, labels, state, spec)
    if not breach:
        _settle_alarm(config, clients, state)
        outcome = _outcome(
            "ok",
            f"{spec['primary']} {value:.4f} over {len(joined)} labelled rows; expected "
            f"{expected} within {config.quality_tolerance}",
            **result,
        )
    else:
        reason = (
            f"{spec['primary']} {value:.4f} over {len(joined)} labelled rows is "
            f"{shortfall:.4f} below the champion's {expected} (tolerance "
            f"{config.quality_tolerance}); {state['breaches']} window(s) in a row"
        )
        if state["breaches"] >= config.quality_windows:
            result["alarm"] = _raise_alarm(config, clients, reason, result)
            state["alarmed"] = True
        outcome = _outcome("degraded", reason, **result)
    _save_state(config, clients, state, now, labels, outcome)
    return outcome


Joined = list[tuple[str, Served, str]]  # (inference id, what was served, true label)


def _join(captured: Captured, labels: Labels, spec: Mapping[str, Any]) -> tuple[Joined, JsonDict]:
    known = set(spec["labels"])
    joined: Joined = []
    late = unknown_id = unknown_label = 0
    for inference_id, raw in labels.by_id.items():
        label = norm_label(raw)
        if inference_id in captured.served:
            if label not in known:
                unknown_label += 1
                continue
            joined.append((inference_id, captured.served[inference_id], label))
        elif inference_id in captured.earlier:
            late += 1
        else:
            unknown_id += 1
    counts = {
        "captured_records": captured.records,
        "joinable_predictions": len(captured.served),
        "without_inference_id": captured.without_id,
        "multi_row_records": captured.multi_row,
        "unreadable_capture_lines": captured.unreadable,
        "label_records": labels.records,
        "duplicate_labels": labels.duplicates,
        "malformed_labels": len(labels.malformed),
        "late_labels": late,
        "unknown_ids": unknown_id,
        "unknown_label_values": unknown_label,
        "labelled_rows": len(joined),
    }
    return joined, counts


# --- state, metrics, alarm, feedback --------------------------------------------------------


def _load_state(config: Config, clients: Clients, champion: str) -> JsonDict:
    state = get_json(
        clients.s3, config.artifacts_bucket or "", _state_key(config), denied_as_missing=True
    )
    if not isinstance(state, dict) or state.get("champion") != champion:
        return {"champion": champion, "breaches": 0}  # a new champion starts clean
    return state


def _save_state(
    config: Config,
    clients: Clients,
    state: JsonDict,
    now: datetime,
    labels: Labels,
    outcome: Mapping[str, Any],
) -> None:
    """Keep the breach count, the last label file fed back, and the run's summary
    (``latest``: what ``mlops quality`` and ``mlops status`` show)."""
    if labels.last_key and labels.last_key > str(state.get("last_label_key") or ""):
        state["last_label_key"] = labels.last_key
    state["updated_at"] = iso(now)
    state["latest"] = summary(outcome)
    put_json(
        clients.s3, config.artifacts_bucket or "", _state_key(config), state, config.kms_key_arn
    )


def summary(outcome: Mapping[str, Any]) -> JsonDict:
    """``{"status", "window", "realised", "estimated", "counts", "alarm"}`` of a run."""
    scores = outcome.get("realised")
    return {
        "status": outcome.get("status"),
        "window": outcome.get("window"),
        "realised": (
            None if not scores else {k: scores.get(k) for k in (*REALISED, "labelled_rows")}
        ),
        "estimated": outcome.get("estimated"),
        "counts": outcome.get("counts"),
        "alarm": {
            "name": outcome.get("alarm"),
            "raised": bool(outcome.get("alarm")),
            "breaches": outcome.get("breaches", 0),
        },
    }


def latest(config: Config, clients: Clients) -> JsonDict | None:
    """The last run's :func:`summary`, or None before the first run."""
    state = get_json(
        clients.s3, config.artifacts_bucket or "", _state_key(config), denied_as_missing=True
    )
    return state.get("latest") if isinstance(state, dict) else None


def _publish(
    config: Config,
    clients: Clients,
    now: datetime,
    scores: Mapping[str, Any] | None,
    estimate: Mapping[str, Any] | None,
    rows: int,
    shortfall: float | None,
) -> None:
    model = {"Name": "Model", "Value": config.model_name}

    def point(name: str, value: float, metric: str | None = None) -> JsonDict:
        dims = [model, {"Name": "Metric", "Value": metric}] if metric else [model]
        return {"MetricName": name, "Dimensions": dims, "Timestamp": now, "Value": value}

    data = [point(c.LABELLED_ROWS_METRIC, rows)]
    for name, values in ((c.QUALITY_METRIC, scores), (c.QUALITY_ESTIMATED_METRIC, estimate)):
        for metric in REALISED if name == c.QUALITY_METRIC else ESTIMATED:
            value = (values or {}).get(metric)
            if value is not None:
                data.append(point(name, float(value), metric))
    if shortfall is not None:
        data.append(point(c.QUALITY_SHORTFALL_METRIC, shortfall))
    clients.cloudwatch.put_metric_data(Namespace=config.metric_namespace, MetricData=data)


def _raise_alarm(config: Config, clients: Clients, reason: str, result: JsonDict) -> str | None:
    publish_alert(
        clients.sns,
        config.alert_topic_arn,
        f"[mlops] {config.model_name}: model quality below the champion's test metrics",
        {"model": config.model_name, "reason": reason, **result},
    )
    if not config.quality_alarm_name:
        logger.warning(f"{c.QUALITY_ALARM_NAME} is not set: poor quality starts no retrain")
        return None
    clients.cloudwatch.set_alarm_state(
        AlarmName=config.quality_alarm_name,
        StateValue="ALARM",
        StateReason=reason[:1023],
        StateReasonData=json.dumps({"shortfall": result.get("shortfall")}),
    )
    return config.quality_alarm_name


def _settle_alarm(config: Config, clients: Clients, state: JsonDict) -> None:
    """Back to OK once a window is fine, so the next breach is a new ALARM transition."""
    if state.pop("alarmed", False) and config.quality_alarm_name:
        clients.cloudwatch.set_alarm_state(
            AlarmName=config.quality_alarm_name,
            StateValue="OK",
            StateReason="model quality is within tolerance again",
        )


def _feedback(
    config: Config,
    clients: Clients,
    now: datetime,
    joined: Joined,
    labels: Labels,
    state: Mapping[str, Any],
    spec: Mapping[str, Any],
) -> JsonDict:
    """Rows whose label arrived since the last run, as a new labelled data file."""
    after = str(state.get("last_label_key") or "")
    fresh = [(s, label) for i, s, label in joined if labels.key_of[i] > after]
    if not fresh:
        return {"rows": 0}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*spec["features"], spec["target"]])
    for served, label in fresh:
        writer.writerow([*("" if v is None else v for v in served.row), label])
    key = f"{c.INCOMING_PREFIX}{now:%Y-%m-%d}/{c.FEEDBACK_FILE_PREFIX}{now:%Y%m%dT%H%M%SZ}.csv"
    s3, bucket = clients.s3, config.raw_bucket or ""
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    else:
        return {"rows": 0, "skipped": f"s3://{bucket}/{key} exists: raw data is never overwritten"}
    s3.put_object(
        Bucket=bucket, Key=key, Body=buffer.getvalue().encode(), **sse_args(config.kms_key_arn)
    )
    return {"rows": len(fresh), "key": key}


# --- handler -----------------------------------------------------------------------------------


def handle(
    event: Any, environ: Mapping[str, str], context: Any = None, clients: Clients | None = None
) -> JsonDict:
    """The handler's logic with the environment and clients passed in (for the local cloud)."""
    config = Config.from_env(environ)
    outcome = run_quality(config, clients or Clients.for_config(config))
    level = logger.warning if outcome["status"] == "degraded" else logger.info
    level(f"{outcome['status']}: {outcome['reason']}", extra={"outcome": outcome})
    return outcome


def handler(event: Any, context: Any) -> JsonDict:
    """Lambda entry point: ``lambdas.quality.handler`` (scheduled, or a new label file)."""
    return handle(event, os.environ, context)
