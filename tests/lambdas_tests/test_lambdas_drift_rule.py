"""The drift alarm's rule: warn and alarm thresholds, runs in a row, share of features,
chi-squared significance for categoricals; the statistics against scipy's."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from lambdas_helpers import (
    CAPTURE,
    ENDPOINT,
    Stack,
    alerts,
    evaluation,
    job_name,
    write_model_artifacts,
)
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2, chisquare

from lambdas import drift, psi, serving
from lambdas.config import Config

JOB = job_name("20240501-120000", "0000000c")


def _champion(stack: Stack) -> None:
    url = write_model_artifacts(stack, JOB, evaluation())
    serving.deploy(stack.config, stack.clients, job_name=JOB, model_data_url=url)


def _traffic(stack: Stack, name: str, rows: list[list[Any]]) -> None:
    record = {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "data": "\n".join(",".join(map(str, r)) for r in rows),
                "encoding": "CSV",
            }
        },
        "eventMetadata": {"eventId": "e", "inferenceTime": "2024-05-01T12:00:00Z"},
    }
    key = f"{ENDPOINT}/AllTraffic/2024/05/01/12/{name}.jsonl"
    stack.clients.s3.put_object(Bucket=CAPTURE, Key=key, Body=json.dumps(record).encode())


def _rows(young: int, middle: int, old: int, basic: int, pro: int) -> list[list[Any]]:
    ages = [25] * young + [35] * middle + [60] * old
    plans = ["basic"] * basic + ["pro"] * pro
    assert len(ages) == len(plans)
    return [[a, p] for a, p in zip(ages, plans, strict=True)]


def _run(stack: Stack, **env: str) -> dict[str, Any]:
    return drift.run_drift(Config.from_env({**stack.env, **env}), stack.clients)


def _alarm(stack: Stack) -> str:
    [alarm] = stack.clients.cloudwatch.describe_alarms(
        AlarmNames=[stack.env["MLOPS_DRIFT_ALARM_NAME"]]
    )["MetricAlarms"]
    return str(alarm["StateValue"])


def test_a_moderate_shift_warns_without_the_alarm(stack: Stack) -> None:
    _champion(stack)
    # age 25/45/30 % instead of 40/40/20: PSI ~0.1-0.25; plan as in training
    _traffic(stack, "a", _rows(50, 90, 60, 140, 60))

    outcome = _run(stack)

    assert outcome["status"] == "warn", outcome
    assert outcome["warned_features"] == ["age"] and outcome["drifted_features"] == []
    assert 0.1 < outcome["psi"]["age"] <= 0.25
    assert _alarm(stack) != "ALARM" and alerts(stack) == []


def test_the_alarm_waits_for_runs_in_a_row(stack: Stack) -> None:
    _champion(stack)
    _traffic(stack, "a", _rows(0, 0, 100, 0, 100))

    first = _run(stack, MLOPS_DRIFT_WINDOWS="2")
    assert (first["status"], first["windows_over"]) == ("drift-pending", 1), first
    assert _alarm(stack) != "ALARM" and alerts(stack) == []

    _traffic(stack, "b", _rows(0, 0, 100, 0, 100))
    second = _run(stack, MLOPS_DRIFT_WINDOWS="2")
    assert (second["status"], second["windows_over"]) == ("drift", 2), second
    assert _alarm(stack) == "ALARM" and len(alerts(stack)) == 1


def test_a_calm_run_resets_the_count(stack: Stack) -> None:
    _champion(stack)
    _traffic(stack, "a", _rows(0, 0, 100, 0, 100))
    assert _run(stack, MLOPS_DRIFT_WINDOWS="2")["windows_over"] == 1
    _traffic(stack, "b", _rows(40, 40, 20, 70, 30))
    assert _run(stack, MLOPS_DRIFT_WINDOWS="2")["status"] == "ok"
    _traffic(stack, "c", _rows(0, 0, 100, 0, 100))

    assert _run(stack, MLOPS_DRIFT_WINDOWS="2")["status"] == "drift-pending"


def test_the_share_rule_needs_enough_drifted_features(stack: Stack) -> None:
    _champion(stack)
    _traffic(stack, "a", _rows(0, 0, 100, 70, 30))  # only age moves

    half = _run(stack, MLOPS_DRIFT_MIN_SHARE="0.6")

    assert half["status"] == "warn" and half["drifted_features"] == ["age"], half
    assert half["drifted_share"] == 0.5 and _alarm(stack) != "ALARM"


def test_a_small_categorical_change_is_not_significant(stack: Stack) -> None:
    _champion(stack)
    # 20 rows, 11 pro instead of 6: PSI 0.26 but chi-squared p 0.015
    _traffic(stack, "a", _rows(8, 8, 4, 9, 11))

    outcome = _run(stack, MLOPS_DRIFT_MIN_ROWS="10")

    assert outcome["psi"]["plan"] > 0.25
    assert outcome["tests"]["plan"]["chi2_p"] > 0.01
    assert "plan" not in outcome["drifted_features"] and "plan" in outcome["warned_features"]


@pytest.mark.parametrize("seed", range(5))
def test_statistics_equal_scipys(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    expected = rng.dirichlet(np.ones(k) * 20)  # every bin expects >= 5 rows of >= 500
    counts = rng.multinomial(int(rng.integers(500, 5000)), rng.dirichlet(np.ones(k) * 20))
    actual = counts / counts.sum()

    assert psi.js_distance(list(expected), list(actual)) == pytest.approx(
        jensenshannon(expected, actual, base=2), abs=1e-12
    )
    p = psi.chi_squared_p(list(expected), [int(c) for c in counts])
    assert p is not None
    assert p == pytest.approx(
        chisquare(counts, expected * counts.sum()).pvalue, rel=1e-9, abs=1e-300
    )
    for dof in (1, 3, 10):
        for x in (0.2, 2.0, 15.0, 80.0):
            assert psi._chi2_sf(x, dof) == pytest.approx(chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_chi_squared_needs_five_expected_rows_per_bin() -> None:
    assert psi.chi_squared_p([0.5, 0.5], [2, 3]) is None
    assert psi.chi_squared_p([0.9, 0.1, 0.0], [40, 10, 1]) == 0.0  # a bin training never saw
