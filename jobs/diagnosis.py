"""Over- and underfitting: the chosen model's train, validation and test scores, and a verdict.

Rules (primary metric, the model before its refit, at the tuned threshold):
``overfit`` when train beats validation by more than ``OVERFIT_GAP``; ``underfit`` when
validation beats the majority-class baseline by less than ``UNDERFIT_MARGIN`` (a model
that learned next to nothing); else ``ok``. Boosting stops early on its own validation
fraction above 10,000 rows (``early-stopping=auto``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OVERFIT_GAP = 0.10
UNDERFIT_MARGIN = 0.02


def diagnose(
    train: Mapping[str, Any],
    validation: Mapping[str, Any],
    test: Mapping[str, Any],
    baseline: Mapping[str, Any],
    metric: str,
) -> dict[str, Any]:
    """``evaluation.json["diagnosis"]``: the three scores, the gap and the verdict."""
    scores = {
        name: part.get(metric)
        for name, part in (
            ("train", train),
            ("validation", validation),
            ("test", test),
            ("baseline", baseline),
        )
    }
    tr, va, base = scores["train"], scores["validation"], scores["baseline"]
    if not (
        isinstance(tr, int | float)
        and isinstance(va, int | float)
        and isinstance(base, int | float)
    ):
        return {**scores, "metric": metric, "verdict": "unknown", "rule": "a score is undefined"}
    gap = float(tr) - float(va)
    if gap > OVERFIT_GAP:
        verdict, rule = "overfit", f"train - validation {gap:.4f} > {OVERFIT_GAP}"
    elif float(va) - float(base) < UNDERFIT_MARGIN:
        verdict = "underfit"
        rule = f"validation - baseline {float(va) - float(base):.4f} < {UNDERFIT_MARGIN}"
    else:
        verdict, rule = "ok", f"gap {gap:.4f} <= {OVERFIT_GAP}, beats the baseline"
    return {**scores, "metric": metric, "gap": round(gap, 6), "verdict": verdict, "rule": rule}


def calibration(is_pos: Any, scores: Any, bins: int = 10) -> dict[str, Any]:
    """``evaluation.json["calibration"]``: Brier score and the reliability curve on test.

    The probabilities are the model's own (not recalibrated): live monitoring estimates
    precision and recall from them, so how far they are from the observed rates matters.
    """
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    observed, predicted = calibration_curve(is_pos, scores, n_bins=bins, strategy="quantile")
    return {
        "brier": round(float(brier_score_loss(is_pos, scores)), 6),
        "calibrated": False,
        "curve": {
            "mean_predicted": [round(float(v), 6) for v in predicted],
            "fraction_positive": [round(float(v), 6) for v in observed],
        },
        "bins": bins,
        "strategy": "quantile",
    }
