"""The gate's evidence beyond the test split (pure): data guard re-judged with the stack's
thresholds, the reference-set rule with its paired-bootstrap interval, three outcomes."""

from __future__ import annotations

from typing import Any

import pytest
from lambdas_helpers import data_guard, evaluation

from lambdas import gate
from lambdas.evidence import GuardLimits, data_guard_check, judge_guard_rule, reference_check

MANIFEST = {"sha256": "ab" * 32, "uri": "s3://art/reference/abababab/reference.csv"}


def _scored(value: float, champion: float, **difference: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "sha256": MANIFEST["sha256"],
        "n": 4000,
        "metrics": {"f1": value},
        "champion": {"metrics": {"f1": champion}},
    }
    if difference:
        section["difference"] = {"metric": "f1", **difference}
    return {"reference": section}


# --- the data guard ------------------------------------------------------------------------


def test_the_stacks_threshold_overrules_the_jobs_verdict() -> None:
    check = {"rule": "label-shift", "value": 0.08, "threshold": 0.1, "held": True}

    strict = judge_guard_rule(check, GuardLimits(max_label_shift=0.05))
    lenient = judge_guard_rule({**check, "held": False}, GuardLimits(max_label_shift=0.2))

    assert (strict["held"], strict["threshold"]) == (False, 0.05)
    assert (lenient["held"], lenient["threshold"]) == (True, 0.2)


def test_a_min_rule_trips_below_and_a_value_the_job_could_not_compute_keeps_its_verdict() -> None:
    limits = GuardLimits(min_label_learnability=0.25)
    low = {"rule": "label-learnability", "value": 0.04, "threshold": 0.5, "held": True}
    unknown = {"rule": "label-learnability", "value": None, "held": True, "detail": "too few"}

    assert judge_guard_rule(low, limits)["held"] is False
    assert judge_guard_rule(unknown, limits)["held"] is True


@pytest.mark.parametrize(
    ("section", "held", "why"),
    [
        (None, False, "did not check its new data"),
        ({"status": "error", "reason": "champion unreadable"}, False, "champion unreadable"),
        ({"status": "skipped", "reason": "no new file"}, True, "skipped: no new file"),
        ({"status": "checked", "checks": []}, False, "reported no guard rule"),
    ],
)
def test_a_guard_that_did_not_run_trips_unless_it_had_nothing_to_judge(
    section: dict[str, Any] | None, held: bool, why: str
) -> None:
    doc = {} if section is None else {"data_guard": section}

    ok, text, _ = data_guard_check(doc, GuardLimits(), has_champion=True)

    assert ok is held and why in text


def test_without_a_champion_the_guard_holds() -> None:
    ok, text, _ = data_guard_check({}, GuardLimits(), has_champion=False)
    assert ok and "no champion" in text


def test_feature_drift_alone_never_trips_the_guard() -> None:
    section = data_guard()  # its feature-psi (info) is over its threshold

    ok, text, rules = data_guard_check({"data_guard": section}, GuardLimits(), has_champion=True)

    assert ok, text
    assert "info: feature-psi 0.4 > 0.25" in text
    assert {r["rule"] for r in rules if not r["held"]} == {"feature-psi"}


# --- the reference set -----------------------------------------------------------------------


def test_no_reference_set_yet_holds() -> None:
    ok, text = reference_check({}, metric="f1", reference=None, tolerance=0.02, has_champion=True)
    assert ok and "none frozen yet" in text


@pytest.mark.parametrize(
    ("doc", "held", "why"),
    [
        (_scored(0.79, 0.80), True, "within tolerance 0.0200"),
        (_scored(0.70, 0.80), False, "beyond tolerance 0.0200"),
        (
            _scored(0.72, 0.75, low=-0.07, high=0.01),
            True,
            "[-0.0700, +0.0100] reaches -0.0200: not a clear regression",
        ),
        (
            _scored(0.60, 0.75, low=-0.2, high=-0.09),
            False,
            "[-0.2000, -0.0900] entirely below -0.0200: a regression",
        ),
        ({"reference": {**_scored(0.9, 0.8)["reference"], "sha256": "cd" * 32}}, False, "not abab"),
        ({"reference": {"error": "lacks column(s) plan"}}, False, "scored nothing"),
        (
            {**_scored(0.9, 0.8), "reference": {**_scored(0.9, 0.8)["reference"], "champion": {}}},
            False,
            "the champion's f1 is missing",
        ),
    ],
    ids=["within", "beyond", "noise", "regression", "other set", "unreadable", "no champion score"],
)
def test_the_reference_rule(doc: dict[str, Any], held: bool, why: str) -> None:
    ok, text = reference_check(
        doc, metric="f1", reference=MANIFEST, tolerance=0.02, has_champion=True
    )

    assert ok is held, text
    assert why in text


def test_an_interval_for_another_metric_is_not_used() -> None:
    doc = _scored(0.70, 0.80, low=-0.2, high=0.1)
    doc["reference"]["difference"]["metric"] = "pr_auc"

    ok, text = reference_check(
        doc, metric="f1", reference=MANIFEST, tolerance=0.02, has_champion=True
    )

    assert not ok and "beyond tolerance" in text


# --- three outcomes --------------------------------------------------------------------------


def _champion() -> dict[str, Any]:
    return evaluation(f1=0.80)


def test_a_tripped_guard_with_better_metrics_asks_a_person() -> None:
    challenger = evaluation(f1=0.9, label_agreement=0.05)

    decision = gate.evaluate_gate(challenger, _champion(), min_minority_recall=0.5)

    assert decision.outcome == gate.PENDING
    assert decision.reason.startswith("pending manual approval: data guard on 500 new rows")
    assert "held: f1 0.9000 >" in decision.reason


def test_a_tripped_guard_and_a_failing_metric_is_rejected() -> None:
    challenger = evaluation(f1=0.7, label_agreement=0.05)

    decision = gate.evaluate_gate(challenger, _champion(), min_minority_recall=0.5)

    assert decision.outcome == gate.REJECTED
    failing = decision.reason.split("; held:")[0]
    assert "f1 0.7000" in failing and "label-agreement 0.05 < 0.25" in failing


def test_manual_mode_asks_a_person_for_a_clear_winner_but_still_rejects_a_loser() -> None:
    winner = gate.evaluate_gate(evaluation(f1=0.9), _champion(), manual=True)
    loser = gate.evaluate_gate(evaluation(f1=0.5), _champion(), manual=True)

    assert winner.outcome == gate.PENDING and "approvalMode is manual" in winner.reason
    assert loser.outcome == gate.REJECTED


def test_every_rule_holds_is_approved() -> None:
    decision = gate.evaluate_gate(evaluation(f1=0.9), _champion(), min_minority_recall=0.5)
    assert decision.outcome == gate.APPROVED and decision.approved
    assert {rule for rule, _, _ in decision.checks} >= {"reference-set", "data-guard"}


# --- the price of drift ----------------------------------------------------------------------


def _drifted(*, test_f1: float = 0.54, reference_f1: float = 0.71, **guard: Any) -> dict:
    """A challenger after drift: better on the current split, worse on the old rows."""
    doc = evaluation(f1=test_f1, **guard)
    doc["champion"] = {"metrics": evaluation(f1=0.33)["metrics"]}
    doc["reference"] = _scored(reference_f1, 0.82, low=-0.19, high=-0.03)["reference"]
    return doc


def _gate(doc: dict[str, Any]) -> gate.GateDecision:
    return gate.evaluate_gate(doc, _champion(), reference=MANIFEST, min_minority_recall=0.5)


def test_drifted_data_with_sane_labels_pays_for_the_old_rows_and_is_approved() -> None:
    decision = _gate(_drifted())

    assert decision.outcome == gate.APPROVED, decision.reason
    [text] = [t for rule, _, t in decision.checks if rule == "reference-set"]
    assert "entirely below -0.0200: a regression" in text
    assert "the new data drifted (feature-psi 0.4)" in text
    assert "gains +0.2100 on the current test split for -0.1100" in text


@pytest.mark.parametrize(
    ("doc", "why"),
    [
        (_drifted(label_agreement=0.05), "a label rule tripped"),
        (_drifted(test_f1=0.40), "it gains less than it loses"),
    ],
    ids=["labels doubtful", "small gain"],
)
def test_the_price_of_drift_is_not_paid_for_doubtful_labels_or_a_small_gain(
    doc: dict[str, Any], why: str
) -> None:
    decision = _gate(doc)

    assert decision.outcome == gate.REJECTED, why
    assert "reference set:" in decision.reason.split("; held:")[0]


def test_without_feature_drift_a_reference_regression_rejects() -> None:
    doc = _drifted()
    doc["data_guard"]["checks"] = [
        c for c in doc["data_guard"]["checks"] if c["rule"] != "feature-psi"
    ]

    assert _gate(doc).outcome == gate.REJECTED
