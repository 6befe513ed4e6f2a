"""lambdas.drift: PSI against the champion's baseline, metrics, alarm (moto, in-process)."""

from __future__ import annotations

import base64
import json
import logging
import math
from typing import Any

import pytest
from lambdas_helpers import (
    ARTIFACTS,
    BASELINE,
    CAPTURE,
    DRIFT_ALARM,
    ENDPOINT,
    MODEL,
    Stack,
    alerts,
    evaluation,
    job_name,
    load_event,
    s3_keys,
    write_model_artifacts,
)

from lambdas import captures, drift, psi, serving
from lambdas import constants as c

JOB = job_name("20240501-120000", "0000000a")

# 20 rows distributed as the baseline: age 40 % < 30, 40 % in [30, 45), 20 % >= 45;
# plan 70 % basic
LIKE_TRAINING = [
    [age, plan]
    for age, plan in zip(
        [25, 29, 22, 28, 19, 27, 29, 21, 35, 40, 30, 33, 38, 41, 44, 31, 50, 60, 70, 45],
        ["basic"] * 14 + ["pro"] * 6,
        strict=True,
    )
]
DRIFTED = [[80, "enterprise"]] * 20


def _deploy_champion(stack: Stack) -> None:
    url = write_model_artifacts(stack, JOB, evaluation())
    serving.deploy(stack.config, stack.clients, job_name=JOB, model_data_url=url)


def _capture_line(rows: list[list[Any]], encoding: str = "CSV") -> str:
    if encoding == "JSON":
        content_type, data = "application/json", json.dumps({"instances": rows})
    else:
        content_type, data = "text/csv", "\n".join(",".join(map(str, r)) for r in rows)
    if encoding == "BASE64":
        data = base64.b64encode(data.encode()).decode()
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": content_type,
                    "mode": "INPUT",
                    "data": data,
                    "encoding": encoding,
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": '{"predictions": []}',
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceTime": "2024-05-01T12:00:00Z"},
            "eventVersion": "0",
        }
    )


def _put_capture(stack: Stack, name: str, lines: list[str] | bytes, hour: str = "12") -> str:
    key = f"{ENDPOINT}/AllTraffic/2024/05/01/{hour}/{name}.jsonl"
    body = lines if isinstance(lines, bytes) else "\n".join(lines).encode()
    stack.clients.s3.put_object(Bucket=CAPTURE, Key=key, Body=body)
    return key


def _metric_features(stack: Stack) -> set[str]:
    listed = stack.clients.cloudwatch.list_metrics(
        Namespace=c.DEFAULT_METRIC_NAMESPACE, MetricName=c.DRIFT_METRIC_NAME
    )["Metrics"]
    features = set()
    for metric in listed:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        assert dims["Model"] == MODEL
        features.add(dims["Feature"])
    return features


def _alarm_state(stack: Stack) -> str:
    alarm = stack.clients.cloudwatch.describe_alarms(AlarmNames=[DRIFT_ALARM])["MetricAlarms"][0]
    return str(alarm["StateValue"])


def test_traffic_like_training_is_under_the_threshold(stack: Stack, lambda_context: Any) -> None:
    # given a serving champion and captured traffic distributed like its training data
    _deploy_champion(stack)
    _put_capture(
        stack, "00-01-000-a", [_capture_line(LIKE_TRAINING[:10]), _capture_line(LIKE_TRAINING[10:])]
    )

    # when the scheduled drift check runs
    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    # then PSI is ~0, metrics are published per feature and for the max, no alarm
    assert outcome["status"] == "ok", outcome
    assert outcome["rows"] == 20
    assert outcome["max_psi"] < 0.01
    assert _metric_features(stack) == {"age", "plan", "_max"}
    assert alerts(stack) == []
    assert _alarm_state(stack) != "ALARM"


def test_drift_over_the_threshold_alerts_and_sets_the_alarm(
    stack: Stack, lambda_context: Any
) -> None:
    # given traffic unlike anything in training (old customers, an unseen plan)
    _deploy_champion(stack)
    _put_capture(stack, "00-01-000-a", [_capture_line(DRIFTED)])

    # when the drift check runs
    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    # then both features drift; alert and alarm (whose rule starts the retrain)
    assert outcome["status"] == "drift"
    assert set(outcome["drifted_features"]) == {"age", "plan"}
    assert outcome["max_psi"] > 1
    assert _metric_features(stack) == {"age", "plan", "_max"}
    [alert] = alerts(stack)
    assert alert["max_psi"] == outcome["max_psi"]
    assert _alarm_state(stack) == "ALARM"


def test_a_second_run_without_new_captures_reports_no_new_traffic(
    stack: Stack, lambda_context: Any
) -> None:
    _deploy_champion(stack)
    _put_capture(stack, "00-01-000-a", [_capture_line(LIKE_TRAINING)])
    drift.handler(load_event("scheduled_event"), lambda_context)

    again = drift.handler(load_event("scheduled_event"), lambda_context)

    assert again["status"] == "no-new-traffic"
    assert f"{c.DRIFT_STATE_KEY_PREFIX}{MODEL}.json" in s3_keys(stack, ARTIFACTS)

    # and a later file is read on its own
    _put_capture(stack, "30-00-000-b", [_capture_line(DRIFTED)], hour="13")
    later = drift.handler(load_event("scheduled_event"), lambda_context)
    assert later["status"] == "drift" and later["rows"] == 20


def test_no_champion_is_a_clear_outcome(stack: Stack, lambda_context: Any) -> None:
    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    assert outcome["status"] == "no-champion"
    assert ENDPOINT in outcome["reason"]
    assert _metric_features(stack) == set()


def test_no_traffic_is_a_clear_outcome(stack: Stack, lambda_context: Any) -> None:
    _deploy_champion(stack)

    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    assert outcome["status"] == "no-new-traffic"
    assert _metric_features(stack) == set()


def test_unreadable_capture_files_are_logged_and_skipped(
    stack: Stack, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given one good capture file and two broken ones
    _deploy_champion(stack)
    bad_json = _put_capture(stack, "00-01-000-a", ["{not json"])
    bad_bytes = _put_capture(stack, "00-02-000-b", b"\xff\xfe\x00garbage")
    _put_capture(stack, "00-03-000-c", [_capture_line(LIKE_TRAINING)])

    with caplog.at_level(logging.WARNING):
        outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    # then the broken files are named in the outcome and the log; the good one counts
    assert outcome["status"] == "ok"
    assert outcome["rows"] == 20
    assert [u["key"] for u in outcome["unreadable"]] == [bad_json, bad_bytes]
    assert f"unreadable capture file {bad_json}" in caplog.text
    assert f"unreadable capture file {bad_bytes}" in caplog.text


def test_too_little_traffic_waits_and_adds_up(stack: Stack, lambda_context: Any) -> None:
    _deploy_champion(stack)
    _put_capture(stack, "00-01-000-a", [_capture_line(LIKE_TRAINING[:10])])

    first = drift.handler(load_event("scheduled_event"), lambda_context)
    _put_capture(stack, "00-02-000-b", [_capture_line(LIKE_TRAINING[10:])])
    second = drift.handler(load_event("scheduled_event"), lambda_context)

    assert first["status"] == "too-little-traffic" and first["rows"] == 10
    assert second["status"] == "ok" and second["rows"] == 20


@pytest.mark.parametrize("encoding", ["JSON", "BASE64"])
def test_json_and_base64_captures_are_read(
    stack: Stack, lambda_context: Any, encoding: str
) -> None:
    _deploy_champion(stack)
    _put_capture(stack, "00-01-000-a", [_capture_line(DRIFTED, encoding)])

    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    assert outcome["status"] == "drift" and outcome["rows"] == 20


def test_missing_baseline_is_a_clear_outcome(stack: Stack, lambda_context: Any) -> None:
    url = write_model_artifacts(stack, JOB, evaluation(), baseline_doc=b"not json")
    serving.deploy(stack.config, stack.clients, job_name=JOB, model_data_url=url)
    _put_capture(stack, "00-01-000-a", [_capture_line(LIKE_TRAINING)])

    outcome = drift.handler(load_event("scheduled_event"), lambda_context)

    assert outcome["status"] == "no-baseline"


# --- PSI, as pure functions -------------------------------------------------------------------


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi.psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0


def test_psi_matches_the_formula_and_floors_empty_bins() -> None:
    expected, actual = [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]
    eps = psi.EPSILON
    by_hand = 2 * (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.5 - eps) * math.log(0.5 / eps)

    assert psi.psi(expected, actual) == pytest.approx(by_hand)


@pytest.mark.parametrize(
    ("value", "bin_index"),
    [
        (-5, 0),
        (29.999, 0),
        (30, 1),  # edges[i] <= x < edges[i + 1], as jobs.baseline bins training data
        (44.9, 1),
        (45, 2),
        ("1e9", 2),
        (None, 3),
        ("", 3),
        ("n/a", 3),
        ("inf", 3),  # training counts infinities as missing
        (float("nan"), 3),
    ],
)
def test_numeric_bins_are_left_closed_with_a_missing_bin(value: Any, bin_index: int) -> None:
    _, actual = psi.bin_proportions(BASELINE["features"]["age"], [value])

    assert actual.index(1.0) == bin_index


@pytest.mark.parametrize(
    ("value", "bin_index"), [("basic", 0), ("pro", 1), ("gold", 2), (None, 3), ("", 3)]
)
def test_categorical_bins_have_other_and_missing(value: Any, bin_index: int) -> None:
    _, actual = psi.bin_proportions(BASELINE["features"]["plan"], [value])

    assert actual.index(1.0) == bin_index


def test_capture_parsing_skips_headers_and_reports_bad_records() -> None:
    good = _capture_line([["age", "plan"], [30, "basic"]])
    rows, errors = captures.parse_capture(
        "\n".join([good, _capture_line([[1, 2, 3]]), "{}"]), ["age", "plan"]
    )

    assert rows == [["30", "basic"]]
    assert len(errors) == 2


def test_state_read_denied_counts_as_first_run_only_when_asked() -> None:
    """S3 says 403 for a missing key the caller may not list: harmless for drift state."""
    from unittest import mock

    from botocore.exceptions import ClientError

    from lambdas.aws import get_json

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "GetObject")
    s3 = mock.Mock()
    s3.get_object.side_effect = denied
    assert get_json(s3, "b", "drift-state/m.json", denied_as_missing=True) is None
    with pytest.raises(ClientError):
        get_json(s3, "b", "training/job/evaluation.json")
