"""What the model leans on: permutation importance on the validation split.

Each feature's values are shuffled ``REPEATS`` times on (up to ``MAX_ROWS``) validation
rows and the drop in PR-AUC (binary) or macro F1 (multiclass) recorded, mean ± std:
the model's own view, measured on rows it was not fitted on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, f1_score

REPEATS = 5
MAX_ROWS = 5_000
TOP = 10


def importance(
    pipeline: Any,
    x_val: Any,
    y_val: np.ndarray,
    features: Sequence[str],
    *,
    positive: Any,
    seed: int,
) -> dict[str, Any]:
    """``evaluation.json["importance"]``: the top features, largest drop first."""
    n = len(y_val)
    if n > MAX_ROWS:
        keep = np.random.default_rng(seed).choice(n, size=MAX_ROWS, replace=False)
        x_val = x_val.iloc[keep] if isinstance(x_val, pd.DataFrame) else x_val[keep]
        y_val = y_val[keep]
    # the pipeline reads infinities as missing; permutation_importance refuses them
    if isinstance(x_val, pd.DataFrame):
        x_val = x_val.replace([np.inf, -np.inf], np.nan)
    else:
        x_val = np.where(np.isinf(x_val), np.nan, x_val)
    if positive is not None:
        column = list(pipeline.classes_).index(positive)
        name = "average_precision"

        def scorer(model: Any, x: Any, y: np.ndarray) -> float:
            return float(average_precision_score(y == positive, model.predict_proba(x)[:, column]))
    else:
        name = "f1_macro"

        def scorer(model: Any, x: Any, y: np.ndarray) -> float:
            return float(f1_score(y, model.predict(x), average="macro", zero_division=0))

    result = permutation_importance(
        pipeline, x_val, y_val, scoring=scorer, n_repeats=REPEATS, random_state=seed
    )
    order = np.argsort(-result.importances_mean)[:TOP]
    return {
        "scoring": name,
        "rows": len(y_val),
        "repeats": REPEATS,
        "top": [
            {
                "feature": str(features[i]),
                "mean": round(float(result.importances_mean[i]), 6),
                "std": round(float(result.importances_std[i]), 6),
            }
            for i in order
        ],
    }


PDP_FEATURES = 3
PDP_ROWS = 1_000
PDP_GRID = 20


def partial_dependence_of(
    pipeline: Any,
    x_val: Any,
    features: Sequence[str],
    names: Sequence[str],
    categorical: Sequence[str],
    *,
    positive: Any,
    seed: int,
) -> dict[str, Any]:
    """``evaluation.json["partial_dependence"]``: the average predicted probability of the
    positive class as each of ``names`` sweeps its grid (5th-95th percentile, or its
    categories), the other features as they are, on up to ``PDP_ROWS`` validation rows
    where the feature is present. Binary tasks; the model before any calibration.
    """
    from sklearn.inspection import partial_dependence

    frame = isinstance(x_val, pd.DataFrame)
    out: dict[str, Any] = {"rows": 0, "grid": PDP_GRID, "features": {}}
    column = list(pipeline.classes_).index(positive)
    for name in names:
        j = list(features).index(name)
        values = x_val[name] if frame else pd.Series(x_val[:, j])
        present = values.notna().to_numpy().copy()
        if not frame:
            present &= np.isfinite(np.asarray(values, dtype=float))
        rows = np.flatnonzero(present)
        if len(rows) < 10:
            continue
        if len(rows) > PDP_ROWS:
            rows = np.sort(np.random.default_rng(seed).choice(rows, PDP_ROWS, replace=False))
        x = x_val.iloc[rows] if frame else x_val[rows]
        if frame:
            x = x.replace([np.inf, -np.inf], np.nan)
        is_cat = name in categorical
        kw: dict[str, Any] = {"categorical_features": [j]} if is_cat else {}
        result = partial_dependence(
            pipeline,
            x,
            [name if frame else j],
            grid_resolution=PDP_GRID,
            kind="average",
            response_method="predict_proba",
            method="brute",
            **kw,
        )
        grid = result.get("grid_values", result.get("values"))[0]  # "values" before 1.3
        average = np.asarray(result["average"])[0]
        # binary: scikit-learn returns the score of classes_[1]
        curve = average if column == 1 else 1 - average
        out["features"][name] = {
            "type": "categorical" if is_cat else "numeric",
            "grid": [str(v) if is_cat else round(float(v), 6) for v in grid],
            "average": [round(float(v), 6) for v in curve],
        }
        out["rows"] = max(out["rows"], len(rows))
    return out
