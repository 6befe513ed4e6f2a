"""What a person reads before trusting the model, each stage within the job's budget.

The data profile always runs (it samples); permutation importance, partial dependence
of the most important features and the learning curve run when the budget affords them,
their cost estimated from the search's own fit time and the model's predict time per row.
All are measured on the model fitted on train only, on rows it was not fitted on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, f1_score

from jobs.budget import Budget
from jobs.diagnosis import LEARNING_FRACTIONS, boosting, learning_curve
from jobs.eda import profile_features
from jobs.explain import MAX_ROWS as IMPORTANCE_ROWS
from jobs.explain import (
    PDP_FEATURES,
    PDP_GRID,
    PDP_ROWS,
    REPEATS,
    importance,
    partial_dependence_of,
)
from jobs.search import Candidate, fit_candidate, take


def _ranking_score(pipeline: Any, x: Any, y: np.ndarray, positive: Any) -> float | None:
    """PR-AUC (binary) or macro F1: no threshold, so small fits compare fairly."""
    proba = pipeline.predict_proba(x)
    if positive is not None:
        pos = list(pipeline.classes_).index(positive)
        is_pos = y == positive
        if not is_pos.any():
            return None
        return float(average_precision_score(is_pos, proba[:, pos]))
    return float(f1_score(y, pipeline.classes_[proba.argmax(axis=1)], average="macro"))


def understand(
    *,
    pipeline: Any,
    best: Candidate,
    hps: dict[str, Any],
    x: Any,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cleaned: pd.DataFrame,
    features: list[str],
    categorical: list[str],
    positive: Any,
    budget: Budget,
    fit_seconds: float,
    predict_seconds_per_row: float,
) -> dict[str, Any]:
    """``profile``, ``importance``, ``partial_dependence`` and the diagnosis extras."""
    seed = hps["seed"]
    out: dict[str, Any] = {
        "profile": profile_features(
            cleaned,
            target=hps["target"],
            features=features,
            categorical=categorical,
            positive=positive,
            seed=seed,
        )
    }
    x_val, y_val = take(x, val_idx), y[val_idx]
    rows = min(len(val_idx), IMPORTANCE_ROWS)
    cost = predict_seconds_per_row * rows * (len(features) * REPEATS + 1)
    if budget.affords("importance", cost):
        out["importance"] = importance(
            pipeline, x_val, y_val, features, positive=positive, seed=seed
        )
    top = [item["feature"] for item in out.get("importance", {}).get("top", [])[:PDP_FEATURES]]
    cost = predict_seconds_per_row * min(rows, PDP_ROWS) * PDP_GRID * len(top)
    if positive is not None and top and budget.affords("partial dependence", cost):
        out["partial_dependence"] = partial_dependence_of(
            pipeline, x_val, features, top, categorical, positive=positive, seed=seed
        )
    extras: dict[str, Any] = {}
    stopped = boosting(pipeline)
    if stopped is not None:
        extras["boosting"] = stopped
    cost = fit_seconds * sum(LEARNING_FRACTIONS) + predict_seconds_per_row * len(y) * 2
    if budget.affords("learning curve", cost):

        def fit_and_score(rows: np.ndarray) -> tuple[float | None, float | None]:
            model, _, _ = fit_candidate(best, hps, x, y, rows, features, categorical)
            return (
                _ranking_score(model, take(x, rows), y[rows], positive),
                _ranking_score(model, x_val, y_val, positive),
            )

        full = (
            _ranking_score(pipeline, take(x, train_idx), y[train_idx], positive),
            _ranking_score(pipeline, x_val, y_val, positive),
        )
        extras["learning_curve"] = learning_curve(
            fit_and_score,
            train_idx,
            y,
            full=full,
            metric="pr_auc" if positive is not None else "f1_macro",
            seed=seed,
        )
    out["diagnosis_extras"] = extras
    return out
