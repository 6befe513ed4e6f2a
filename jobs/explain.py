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
