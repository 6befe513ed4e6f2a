"""The gate's fairness guardrail (mlops:maxFairnessGap), on audits the job's code computed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from lambdas_helpers import evaluation

from jobs.fairness import audit
from lambdas import gate

ROWS = 400


def _audited(*, biased: bool, min_rows: int = 30, small_group: bool = False) -> dict[str, Any]:
    """An evaluation whose fairness section is jobs.fairness.audit of a made-up predictor.

    Two groups with the same base rate; a biased predictor says "positive" far more often
    in group b, an unbiased one follows the label in both.
    """
    rng = np.random.default_rng(0)
    group = np.array(["a", "b"] * (ROWS // 2), dtype=object)
    if small_group:
        group[:5] = "c"
    y = (rng.random(ROWS) < 0.3).astype(int)
    pred = y.copy()
    if biased:
        pred[(group == "b") & (rng.random(ROWS) < 0.5)] = 1
    section = audit(
        pd.DataFrame({"region": group}),
        y,
        pred,
        positive=1,
        columns=["region"],
        min_rows=min_rows,
    )
    return {**evaluation(f1=0.9), "fairness": section}


def _gate(doc: dict[str, Any], **kwargs: Any) -> gate.GateDecision:
    return gate.evaluate_gate(doc, evaluation(f1=0.8), min_minority_recall=0.5, **kwargs)


def test_without_the_key_fairness_is_not_a_rule() -> None:
    decision = _gate(_audited(biased=True))
    assert decision.outcome == gate.APPROVED
    assert not {r for r, _, _ in decision.checks} & {"fairness-gap", "fairness-audit"}


def test_a_fair_model_passes_with_its_numbers() -> None:
    doc = _audited(biased=False)
    decision = _gate(doc, max_fairness_gap=0.1)
    assert decision.outcome == gate.APPROVED, decision.reason
    # a perfect predictor's only gap: the groups' base rates differ by chance
    region = doc["fairness"]["features"]["region"]
    assert region["equalized_odds_difference"] == 0.0
    parity = region["demographic_parity_difference"]
    assert 0 < parity < 0.1 and f"largest fairness gap {parity:.4f}" in decision.reason


@pytest.mark.parametrize(("action", "outcome"), [("hold", gate.PENDING), ("reject", gate.REJECTED)])
def test_a_gap_over_the_limit_holds_or_rejects_with_the_numbers(action: str, outcome: str) -> None:
    doc = _audited(biased=True)
    worst = doc["fairness"]["features"]["region"]
    largest = max(worst["demographic_parity_difference"], worst["equalized_odds_difference"])
    assert largest > 0.1  # the made-up bias is real

    decision = _gate(doc, max_fairness_gap=0.1, fairness_action=action)

    assert decision.outcome == outcome, decision.reason
    failing = decision.reason.split("; held:")[0]
    assert f"largest fairness gap {largest:.4f}" in failing and "over region" in failing
    assert "> mlops:maxFairnessGap 0.1000" in failing


def test_a_missing_audit_holds_even_when_the_action_is_reject() -> None:
    decision = _gate(evaluation(f1=0.9), max_fairness_gap=0.1, fairness_action="reject")
    assert decision.outcome == gate.PENDING
    assert "ran no fairness audit" in decision.reason and "sensitive-features" in decision.reason


def test_an_audit_that_measured_no_gap_holds_and_says_why() -> None:
    doc = _audited(biased=True, min_rows=ROWS)  # no group has ROWS rows
    decision = _gate(doc, max_fairness_gap=0.1)
    assert decision.outcome == gate.PENDING
    assert "measured no gap" in decision.reason and "region" in decision.reason


def test_small_groups_are_named_not_dropped_silently() -> None:
    decision = _gate(_audited(biased=False, small_group=True), max_fairness_gap=0.1)
    assert decision.outcome == gate.APPROVED, decision.reason
    doc = _audited(biased=False, small_group=True)
    assert doc["fairness"]["features"]["region"]["small_groups"] == ["c"]


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="fairness_action"):
        _gate(_audited(biased=False), max_fairness_gap=0.1, fairness_action="warn")
