"""Over- and underfitting: the chosen model's train, validation and test scores, and a verdict.

Rules (primary metric, the model before its refit, at the tuned threshold):
``overfit`` when train beats validation by more than ``OVERFIT_GAP``; ``underfit`` when
validation beats the majority-class baseline by less than ``UNDERFIT_MARGIN`` (a model
that learned next to nothing); else ``ok``. Boosting stops early on its own validation
fraction above 10,000 rows (``early-stopping=auto``); :func:`boosting` reports the rounds it
used. :func:`learning_curve` refits on smaller shares of train to show whether more data
would still help.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

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
    """Brier score and the reliability curve (quantile bins) of ``scores`` on test."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss

    observed, predicted = calibration_curve(is_pos, scores, n_bins=bins, strategy="quantile")
    return {
        "brier": round(float(brier_score_loss(is_pos, scores)), 6),
        "curve": {
            "mean_predicted": [round(float(v), 6) for v in predicted],
            "fraction_positive": [round(float(v), 6) for v in observed],
        },
        "bins": bins,
        "strategy": "quantile",
    }


LEARNING_FRACTIONS = (0.25, 0.5)
STILL_LEARNING = 0.01  # validation gain between the last two sizes that says "more data helps"


def learning_curve(
    fit_and_score: Callable[[np.ndarray], tuple[float | None, float | None]],
    train_idx: np.ndarray,
    y: np.ndarray,
    *,
    full: tuple[float | None, float | None],
    metric: str,
    seed: int,
    fractions: Sequence[float] = LEARNING_FRACTIONS,
) -> dict[str, Any]:
    """``diagnosis["learning_curve"]``: train and validation scores by rows fitted.

    ``fit_and_score(rows)`` fits the chosen configuration on ``rows`` and returns its
    (train, validation) score; ``full`` is the score of the model fitted on all of
    train, which the search already has. Subsets are stratified.
    """
    from sklearn.model_selection import train_test_split

    points = []
    for fraction in fractions:
        rows, _ = train_test_split(
            train_idx, train_size=fraction, stratify=y[train_idx], random_state=seed
        )
        tr, va = fit_and_score(np.sort(rows))
        points.append({"rows": len(rows), "train": _round(tr), "validation": _round(va)})
    points.append({"rows": len(train_idx), "train": _round(full[0]), "validation": _round(full[1])})
    last, before = points[-1]["validation"], points[-2]["validation"]
    rising = last is not None and before is not None and last - before > STILL_LEARNING
    return {
        "metric": metric,
        "points": points,
        "still_learning": rising,
        "rule": f"validation gain over the last doubling > {STILL_LEARNING}",
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


def boosting(pipeline: Any) -> dict[str, Any] | None:
    """Early stopping of a gradient-boosting model: rounds used of the maximum."""
    model = pipeline.steps[-1][1] if hasattr(pipeline, "steps") else None
    if model is None or not hasattr(model, "n_iter_") or not hasattr(model, "do_early_stopping_"):
        return None
    return {
        "early_stopping": bool(model.do_early_stopping_),
        "iterations": int(model.n_iter_),
        "max_iter": int(model.max_iter),
        "stopped_early": bool(model.do_early_stopping_) and model.n_iter_ < model.max_iter,
    }
