"""Compare captured traffic with the champion's training data (PSI per feature).

``handler(event, context)`` runs on a schedule (any event is accepted: it only starts a
run). A run:

1. finds the champion: the model the endpoint serves now (endpoint -> endpoint config ->
   model -> ``ModelDataUrl``) and reads ``baseline.json`` out of its ``model.tar.gz``;
2. reads the capture files written since the last run: per variant, keys after the last
   key processed (``s3://<artifacts>/drift-state/<model>.json``); SageMaker's key layout
   ``<endpoint>/<variant>/YYYY/MM/DD/HH/<MM-SS-mmm>-<uuid>.jsonl`` sorts by time;
3. bins each feature's captured values with the baseline's bins and computes PSI;
4. publishes ``FeatureDriftPSI`` per feature and for ``_max`` (dimensions Model, Feature);
5. a feature drifts when its PSI is over ``MLOPS_DRIFT_THRESHOLD`` (0.25) and, for a
   categorical one, a chi-squared test says its counts differ (p < 0.01); over
   ``MLOPS_DRIFT_WARN_THRESHOLD`` (0.1) it is a warning. When at least
   ``MLOPS_DRIFT_MIN_SHARE`` of the features drift (0: any one) for ``MLOPS_DRIFT_WINDOWS``
   runs in a row, it alerts and sets the drift alarm to ALARM; the alarm's EventBridge rule
   invokes the retrain function (``CloudWatch Alarm State Change``).

No endpoint or champion, no new traffic, too little traffic, unreadable files: a clear
logged outcome, never an exception. Too little traffic (fewer than
``MLOPS_DRIFT_MIN_ROWS`` rows) does not move the state, so rows add up across runs.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Mapping
from datetime import datetime
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
)
from lambdas.captures import parse_capture
from lambdas.config import Config, JsonDict
from lambdas.handling import iso, utcnow
from lambdas.psi import feature_stats
from lambdas.quality_data import capture_variants

logger = Logger(service="mlops-drift")

MAX_FILES_PER_RUN = 500
# a categorical feature drifts only if its counts also fail a chi-squared test at this level:
# PSI says how large the change is, the test that it is not the noise of a small sample
SIGNIFICANCE = 0.01


def _significant(stats: Mapping[str, Any]) -> bool:
    p = stats.get("chi2_p")
    return p is None or p < SIGNIFICANCE


# --- champion and state -----------------------------------------------------------------------


def serving_model(config: Config, clients: Clients) -> JsonDict | None:
    """``{"endpoint", "endpoint_config", "model_name", "model_data_url"}`` now serving, or None."""
    sm = clients.sagemaker
    try:
        endpoint = sm.describe_endpoint(EndpointName=config.endpoint_name)
    except ClientError as exc:
        if error_code(exc) == "ValidationException":
            return None
        raise
    endpoint_config = endpoint["EndpointConfigName"]
    variants = sm.describe_endpoint_config(EndpointConfigName=endpoint_config)["ProductionVariants"]
    model_name = variants[0]["ModelName"]
    model = sm.describe_model(ModelName=model_name)
    container = model.get("PrimaryContainer") or (model.get("Containers") or [{}])[0]
    return {
        "endpoint": config.endpoint_name,
        "endpoint_config": endpoint_config,
        "model_name": model_name,
        "model_data_url": container.get("ModelDataUrl"),
    }


def _state_key(config: Config) -> str:
    return f"{c.DRIFT_STATE_KEY_PREFIX}{config.model_name}.json"


def new_capture_files(
    config: Config, clients: Clients, after: Mapping[str, str], limit: int
) -> list[tuple[str, str]]:
    """``(variant, key)`` of capture files after each variant's last key, oldest first."""
    s3, bucket, prefix = clients.s3, config.capture_bucket, f"{config.endpoint_name}/"
    variants = capture_variants(s3, bucket or "", config.endpoint_name or "")
    files: list[tuple[str, str]] = []
    # a rollout's challenger sees (a copy of) the same traffic: the trial judges it
    for variant in sorted(v for v in variants if v != c.CHALLENGER_VARIANT_NAME):
        kwargs = {"Bucket": bucket, "Prefix": f"{prefix}{variant}/"}
        if after.get(variant):
            kwargs["StartAfter"] = after[variant]
        for page in s3.get_paginator("list_objects_v2").paginate(**kwargs):
            files += [
                (variant, o["Key"]) for o in page.get("Contents", []) if o["Key"].endswith(".jsonl")
            ]
            if len(files) >= limit:
                return files[:limit]
    return files


# --- the run -----------------------------------------------------------------------------------


def _outcome(status: str, reason: str, **extra: Any) -> JsonDict:
    return {"status": status, "reason": reason, **extra}


def run_drift(
    config: Config,
    clients: Clients,
    *,
    now: datetime | None = None,
    max_files: int = MAX_FILES_PER_RUN,
) -> JsonDict:
    """One drift check; never raises for missing champion/traffic or bad capture files.

    Returns
    -------
    dict
        ``status``: ``"no-champion"``, ``"no-baseline"``, ``"no-new-traffic"``,
        ``"too-little-traffic"``, ``"ok"`` (max PSI at or under the threshold) or
        ``"drift"`` (over: alerted, alarm set). With a measurement also ``psi``
        (feature -> PSI), ``max_psi``, ``rows``, ``files``; always ``reason`` and
        ``unreadable`` (``[{"key", "reason"}]``).
    """
    config.require("endpoint_name", "capture_bucket", "artifacts_bucket")
    now = now or utcnow()
    serving = serving_model(config, clients)
    if serving is None or not serving.get("model_data_url"):
        return _outcome(
            "no-champion",
            f"endpoint {config.endpoint_name} does not exist: no champion to watch",
            unreadable=[],
        )
    try:
        raw = read_tar_members(clients.s3, serving["model_data_url"], [c.BASELINE_FILE])
        baseline = json.loads(raw[c.BASELINE_FILE]) if c.BASELINE_FILE in raw else None
    except (ClientError, OSError, EOFError, tarfile.TarError, ValueError) as exc:
        baseline, problem = None, error_text(exc)
    else:
        problem = f"{c.BASELINE_FILE} is not in {serving['model_data_url']}"
    if not isinstance(baseline, dict) or not isinstance(baseline.get("features"), dict):
        return _outcome(
            "no-baseline", f"champion {serving['model_name']}: {problem}", unreadable=[]
        )
    specs: dict[str, Any] = baseline["features"]
    features = [str(f) for f in baseline.get("feature_order") or list(specs)]

    state = (
        get_json(
            clients.s3, config.artifacts_bucket or "", _state_key(config), denied_as_missing=True
        )
        or {}
    )
    after: dict[str, str] = {}
    if state.get("endpoint") == config.endpoint_name:
        after = dict(state.get("variants") or {})
    files = new_capture_files(config, clients, after, max_files)
    if not files:
        return _outcome(
            "no-new-traffic",
            f"no capture files under s3://{config.capture_bucket}/{config.endpoint_name}/ "
            "since the last run",
            unreadable=[],
        )

    rows: list[list[Any]] = []
    unreadable: list[JsonDict] = []
    last = dict(after)
    for variant, key in files:
        last[variant] = key
        try:
            body = clients.s3.get_object(Bucket=config.capture_bucket, Key=key)["Body"].read()
            file_rows, errors = parse_capture(body.decode("utf-8"), features)
        except (ClientError, UnicodeDecodeError, OSError) as exc:
            file_rows, errors = [], [error_text(exc)]
        if errors and not file_rows:
            reason = errors[0]
            unreadable.append({"key": key, "reason": reason})
            logger.warning(f"unreadable capture file {key}: {reason}")
        elif errors:
            logger.warning(f"capture file {key}: skipped {len(errors)} records: {errors[0]}")
        rows += file_rows

    new_state: JsonDict = {
        "endpoint": config.endpoint_name,
        "variants": last,
        "updated_at": iso(now),
    }
    if len(rows) < config.drift_min_rows and len(files) < max_files:
        if unreadable and not rows:
            # unreadable files never become readable: move past them
            put_json(
                clients.s3,
                config.artifacts_bucket or "",
                _state_key(config),
                new_state,
                config.kms_key_arn,
            )
        return _outcome(
            "too-little-traffic",
            f"{len(rows)} captured rows (< {config.drift_min_rows}): waiting for more traffic",
            rows=len(rows),
            files=len(files),
            unreadable=unreadable,
        )

    scores: dict[str, float] = {}
    tests: dict[str, JsonDict] = {}
    for index, feature in enumerate(features):
        spec = specs.get(feature)
        if not isinstance(spec, Mapping):
            continue
        try:
            stats = feature_stats(spec, (row[index] for row in rows))
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning(f"feature {feature}: bad baseline spec: {error_text(exc)}")
            continue
        scores[feature] = round(float(stats["psi"] or 0.0), 6)
        tests[feature] = {k: None if v is None else round(v, 6) for k, v in stats.items()}
    max_psi = max(scores.values(), default=0.0)
    _publish_metrics(config, clients, scores, max_psi, now)

    drifted = sorted(
        (f for f, v in scores.items() if v > config.drift_threshold and _significant(tests[f])),
        key=lambda f: -scores[f],
    )
    warned = sorted(
        (f for f, v in scores.items() if config.drift_warn_threshold < v and f not in drifted),
        key=lambda f: -scores[f],
    )
    share = len(drifted) / len(scores) if scores else 0.0
    over = bool(drifted) and share >= config.drift_min_share
    same = state.get("endpoint") == config.endpoint_name
    previous = int(state.get("windows_over", 0)) if same else 0
    windows_over = previous + 1 if over else 0
    new_state["windows_over"] = windows_over
    put_json(
        clients.s3, config.artifacts_bucket or "", _state_key(config), new_state, config.kms_key_arn
    )
    result = {
        "psi": scores,
        "tests": tests,
        "max_psi": max_psi,
        "rows": len(rows),
        "files": len(files),
        "champion": serving["model_name"],
        "drifted_features": drifted,
        "drifted_share": round(share, 6),
        "warned_features": warned,
        "windows_over": windows_over,
        "unreadable": unreadable,
    }
    rule = (
        f"PSI > {config.drift_threshold} (categorical: and chi-squared p < {SIGNIFICANCE}) on "
        f">= {config.drift_min_share:.0%} of features, {config.drift_windows} run(s) in a row"
    )
    result["rule"] = rule
    if not over:
        status = "warn" if warned or drifted else "ok"
        detail = (
            f"; over {config.drift_warn_threshold}: {', '.join(warned + drifted)}"
            if warned or drifted
            else ""
        )
        return _outcome(
            status,
            f"max PSI {max_psi:.4f} over {len(rows)} rows: no alarm ({rule}){detail}",
            **result,
        )
    if windows_over < config.drift_windows:
        return _outcome(
            "drift-pending",
            f"drifted: {', '.join(drifted)} ({share:.0%} of features); run "
            f"{windows_over} of {config.drift_windows} before the alarm",
            **result,
        )
    reason = (
        f"max PSI {max_psi:.4f} > threshold {config.drift_threshold} over {len(rows)} rows; "
        f"drifted: {', '.join(drifted)} ({share:.0%} of features, "
        f"{windows_over} run(s) in a row)"
    )
    publish_alert(
        clients.sns,
        config.alert_topic_arn,
        f"[mlops] {config.model_name}: data drift (PSI {max_psi:.2f})",
        {"model": config.model_name, "endpoint": config.endpoint_name, "reason": reason, **result},
    )
    if config.drift_alarm_name:
        clients.cloudwatch.set_alarm_state(
            AlarmName=config.drift_alarm_name,
            StateValue="ALARM",
            StateReason=reason[:1023],
            StateReasonData=json.dumps({"max_psi": max_psi, "drifted": drifted[:20]}),
        )
        result["alarm"] = config.drift_alarm_name
    else:
        logger.warning(f"{c.DRIFT_ALARM_NAME} is not set: drift does not start a retrain")
    return _outcome("drift", reason, **result)


def _publish_metrics(
    config: Config, clients: Clients, scores: Mapping[str, float], max_psi: float, now: datetime
) -> None:
    data = [
        {
            "MetricName": c.DRIFT_METRIC_NAME,
            "Dimensions": [
                {"Name": "Model", "Value": config.model_name},
                {"Name": "Feature", "Value": feature},
            ],
            "Timestamp": now,
            "Value": value,
            "Unit": "None",
        }
        for feature, value in [*scores.items(), ("_max", max_psi)]
    ]
    for start in range(0, len(data), 500):
        clients.cloudwatch.put_metric_data(
            Namespace=config.metric_namespace, MetricData=data[start : start + 500]
        )


# --- handler -----------------------------------------------------------------------------------


def handle(
    event: Any, environ: Mapping[str, str], context: Any = None, clients: Clients | None = None
) -> JsonDict:
    """The handler's logic with the environment and clients passed in (for the local cloud)."""
    config = Config.from_env(environ)
    outcome = run_drift(config, clients or Clients.for_config(config))
    level = logger.warning if outcome["status"] == "drift" or outcome["unreadable"] else logger.info
    level(f"{outcome['status']}: {outcome['reason']}", extra={"outcome": outcome})
    return outcome


def handler(event: Any, context: Any) -> JsonDict:
    """Lambda entry point: ``lambdas.drift.handler`` (scheduled; the event is not used)."""
    return handle(event, os.environ, context)
