"""lambdas.quality: captured predictions joined to late labels (moto, in-process).

The realised numbers are checked against scikit-learn's on the same joined rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from lambdas_helpers import (
    CAPTURE,
    ENDPOINT,
    FEATURES,
    MODEL,
    RAW,
    Stack,
    alerts,
    evaluation,
    job_name,
    s3_keys,
    write_model_artifacts,
)
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from lambdas import constants as c
from lambdas import quality, serving
from lambdas.config import Config
from lambdas.ground_truth import ground_truth_record
from lambdas.handling import BadEvent
from lambdas.quality_metrics import estimated, realised
from lambdas.triggers import parse_trigger

JOB = job_name("20240501-120000", "0000000b")
NOW = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
QUALITY_ALARM = "churn-quality"


def _sklearn(truth: Any, predicted: Any, scores: Any) -> dict[str, float]:
    tn, fp, _, _ = confusion_matrix(truth, predicted, labels=[False, True]).ravel()
    return {
        "accuracy": accuracy_score(truth, predicted),
        "precision": precision_score(truth, predicted, zero_division=0),
        "recall": recall_score(truth, predicted, zero_division=0),
        "f1": f1_score(truth, predicted, zero_division=0),
        "false_positive_rate": fp / (fp + tn),
        "pr_auc": average_precision_score(truth, scores),
    }


@pytest.mark.parametrize("seed", range(6))
def test_realised_metrics_are_scikit_learns(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 3000))
    truth = rng.random(n) < rng.uniform(0.02, 0.5)
    truth[0], truth[1] = True, False
    scores = np.round(np.clip(truth * 0.3 + rng.random(n) * 0.7, 0, 1), int(rng.integers(1, 4)))
    predicted = scores >= 0.5

    got = realised(list(truth), list(predicted), list(scores))

    for name, value in _sklearn(truth, predicted, scores).items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
    assert got["labelled_rows"] == n


def test_estimates_from_calibrated_probabilities_track_the_realised_values() -> None:
    rng = np.random.default_rng(1)
    scores = rng.beta(0.5, 4, 20_000)
    truth = rng.random(20_000) < scores  # calibrated by construction
    predicted = scores >= 0.3

    guess = estimated(list(predicted), list(scores))
    real = realised(list(truth), list(predicted), list(scores))

    for name in ("precision", "recall", "f1"):
        assert guess[name] == pytest.approx(real[name], abs=0.02), name


# --- the handler in moto -------------------------------------------------------------------


def _champion(stack: Stack, f1: float = 0.8) -> None:
    doc = {**evaluation(f1=f1), "positive_label": 1, "features": FEATURES, "target": "label"}
    url = write_model_artifacts(stack, JOB, doc)
    serving.deploy(stack.config, stack.clients, job_name=JOB, model_data_url=url)


def _capture(inference_id: str | None, row: list[Any], p1: float, when: str) -> str:
    label = 1 if p1 >= 0.5 else 0
    meta = {"eventId": "e", "inferenceTime": when}
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    answer = {"predictions": [{"label": label, "probabilities": {"0": 1 - p1, "1": p1}}]}
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": ",".join(map(str, row)),
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps(answer),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": meta,
            "eventVersion": "0",
        }
    )


def _put(stack: Stack, bucket: str, key: str, lines: list[str]) -> None:
    stack.clients.s3.put_object(Bucket=bucket, Key=key, Body="\n".join(lines).encode())


def _traffic(stack: Stack, n: int, seed: int = 0) -> tuple[list[float], list[str]]:
    rng = np.random.default_rng(seed)
    scores = [round(float(p), 3) for p in rng.random(n)]
    lines = [
        _capture(f"id-{i}", [30 + i % 20, "basic"], p, "2024-05-01T13:10:00Z")
        for i, p in enumerate(scores)
    ]
    _put(stack, CAPTURE, f"{ENDPOINT}/AllTraffic/2024/05/01/13/a.jsonl", lines)
    return scores, [f"id-{i}" for i in range(n)]


def _labels(stack: Stack, name: str, pairs: list[tuple[str, Any]], hour: str = "13") -> None:
    lines = [ground_truth_record(i, str(label)) for i, label in pairs]
    _put(stack, RAW, f"{c.GROUND_TRUTH_PREFIX}2024/05/01/{hour}/{name}.jsonl", lines)


def _config(stack: Stack, **env: str) -> Config:
    return Config.from_env({**stack.env, c.QUALITY_ALARM_NAME: QUALITY_ALARM, **env})


def _metrics(stack: Stack, name: str) -> dict[str, float]:
    found = {}
    listed = stack.clients.cloudwatch.list_metrics(Namespace="MLOps", MetricName=name)["Metrics"]
    for metric in listed:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims["Model"] == MODEL
        found[dims.get("Metric", "")] = 1.0
    return found


def test_labels_join_by_inference_id_and_bad_ones_are_counted(stack: Stack) -> None:
    _champion(stack)
    scores, ids = _traffic(stack, 60)
    # an earlier window's prediction, a prediction without an ID, a half-written line
    _put(
        stack,
        CAPTURE,
        f"{ENDPOINT}/AllTraffic/2024/05/01/12/b.jsonl",
        [
            _capture("old-1", [40, "pro"], 0.9, "2024-04-30T12:30:00Z"),
            _capture(None, [41, "pro"], 0.2, "2024-05-01T12:30:00Z"),
            _capture("id-x", [42, "pro"], 0.2, "2024-05-01T12:31:00Z")[:50],
        ],
    )
    rng = np.random.default_rng(5)
    truth = {i: int(rng.random() < s) for i, s in zip(ids, scores, strict=True)}
    _labels(stack, "first", [(i, 1 - truth[i]) for i in ids[:10]])  # corrected later
    _labels(stack, "second", [*truth.items(), ("never-served", 1), ("old-1", 1), ("id-0", 7)])
    stack.clients.s3.put_object(
        Bucket=RAW, Key=f"{c.GROUND_TRUTH_PREFIX}2024/05/01/13/third.jsonl", Body=b"{not json\n"
    )

    outcome = quality.run_quality(_config(stack), stack.clients, now=NOW)

    assert outcome["status"] in ("ok", "degraded"), outcome
    counts = outcome["counts"]
    assert counts["duplicate_labels"] == 11  # ten corrected, id-0 relabelled with 7
    assert (counts["unknown_ids"], counts["late_labels"]) == (1, 1)
    assert counts["unknown_label_values"] == 1  # id-0's last label, 7, is not a class
    assert counts["malformed_labels"] == 1 and counts["unreadable_capture_lines"] == 1
    assert counts["without_inference_id"] == 1
    joined = ids[1:]
    assert counts["labelled_rows"] == len(joined)
    y = np.array([truth[i] == 1 for i in joined])
    s = np.array(scores[1:])
    for name, value in _sklearn(y, s >= 0.5, s).items():
        assert outcome["realised"][name] == pytest.approx(value, abs=1e-12), name
    assert set(_metrics(stack, c.QUALITY_METRIC)) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "false_positive_rate",
        "pr_auc",
    }
    assert set(_metrics(stack, c.QUALITY_ESTIMATED_METRIC)) == {"precision", "recall", "f1"}
    assert _metrics(stack, c.LABELLED_ROWS_METRIC) == {"": 1.0}


def test_feedback_rows_land_once_under_incoming(stack: Stack) -> None:
    _champion(stack)
    scores, ids = _traffic(stack, 40)
    _labels(stack, "first", [(i, int(s > 0.5)) for i, s in zip(ids, scores, strict=True)])

    first = quality.run_quality(_config(stack), stack.clients, now=NOW)
    again = quality.run_quality(_config(stack), stack.clients, now=NOW.replace(minute=30))

    assert first["feedback"]["rows"] == 40 and again["feedback"] == {"rows": 0}
    [key] = s3_keys(stack, RAW, c.INCOMING_PREFIX)
    assert key == "incoming/2024-05-01/feedback-20240501T140000Z.csv"
    body = stack.clients.s3.get_object(Bucket=RAW, Key=key)["Body"].read().decode()
    assert body.splitlines()[:2] == ["age,plan,label", f"30,basic,{int(scores[0] > 0.5)}"]
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "detail": {"bucket": {"name": RAW}, "object": {"key": key}},
    }
    with pytest.raises(BadEvent, match="feedback from ground truth"):
        parse_trigger(event, _config(stack))
    off = quality.run_quality(
        _config(stack, **{c.FEEDBACK_TO_TRAINING: "false"}), stack.clients, now=NOW
    )
    assert "feedback" not in off


def test_quality_below_the_champion_for_two_windows_sets_the_alarm(stack: Stack) -> None:
    stack.clients.cloudwatch.put_metric_alarm(
        AlarmName=QUALITY_ALARM,
        Namespace="MLOps",
        MetricName=c.QUALITY_SHORTFALL_METRIC,
        Dimensions=[{"Name": "Model", "Value": MODEL}],
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=2,
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
    )
    _champion(stack, f1=0.9)
    scores, ids = _traffic(stack, 50)
    _labels(stack, "wrong", [(i, int(s < 0.5)) for i, s in zip(ids, scores, strict=True)])

    first = quality.run_quality(_config(stack), stack.clients, now=NOW)
    assert (first["status"], first["breaches"]) == ("degraded", 1)
    assert "alarm" not in first and alerts(stack) == []
    second = quality.run_quality(_config(stack), stack.clients, now=NOW.replace(minute=5))

    assert (second["status"], second["breaches"], second["alarm"]) == ("degraded", 2, QUALITY_ALARM)
    assert second["realised"]["f1"] == 0.0 and second["shortfall"] == pytest.approx(0.9)
    [alert] = alerts(stack)
    assert "below the champion" in alert["reason"]
    [alarm] = stack.clients.cloudwatch.describe_alarms(AlarmNames=[QUALITY_ALARM])["MetricAlarms"]
    assert alarm["StateValue"] == "ALARM"
    event = {
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "detail": {"alarmName": QUALITY_ALARM, "state": {"value": "ALARM"}},
    }
    assert parse_trigger(event, _config(stack)).kind == "quality"


def test_without_labels_only_estimates_are_published(stack: Stack) -> None:
    _champion(stack)
    _traffic(stack, 30)

    outcome = quality.run_quality(_config(stack), stack.clients, now=NOW)

    assert outcome["status"] == "no-labels" and outcome["realised"] is None
    assert set(outcome["estimated"]) == {"precision", "recall", "f1"}
    assert _metrics(stack, c.QUALITY_METRIC) == {}
    assert set(_metrics(stack, c.QUALITY_ESTIMATED_METRIC)) == {"precision", "recall", "f1"}


def test_no_champion_is_a_clear_outcome(stack: Stack) -> None:
    outcome = quality.run_quality(_config(stack), stack.clients, now=NOW)

    assert outcome["status"] == "no-champion"
    assert ENDPOINT in outcome["reason"]


def test_the_window_starts_when_the_champion_began_serving(stack: Stack) -> None:
    _champion(stack)
    deployed = datetime.now(UTC)
    before = (deployed - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    after = (deployed + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = [_capture(f"old-{i}", [30, "basic"], 0.9, before) for i in range(40)]
    new = [_capture(f"new-{i}", [30, "basic"], 0.9, after) for i in range(40)]
    for name, lines, when in (
        ("old", old, deployed - timedelta(hours=1)),
        ("new", new, deployed + timedelta(hours=1)),
    ):
        _put(stack, CAPTURE, f"{ENDPOINT}/AllTraffic/{when:%Y/%m/%d/%H}/{name}.jsonl", lines)
    pairs = [(f"old-{i}", 0) for i in range(40)] + [(f"new-{i}", 1) for i in range(40)]
    lines = [ground_truth_record(i, str(label)) for i, label in pairs]
    _put(
        stack,
        RAW,
        f"{c.GROUND_TRUTH_PREFIX}{deployed + timedelta(hours=1):%Y/%m/%d/%H}/l.jsonl",
        lines,
    )

    outcome = quality.run_quality(_config(stack), stack.clients, now=deployed + timedelta(hours=2))

    assert outcome["window"]["from"] == "the champion's deployment"
    assert outcome["counts"]["labelled_rows"] == 40  # only this champion's predictions
    assert outcome["counts"]["late_labels"] == 40
    assert outcome["realised"]["precision"] == 1.0
