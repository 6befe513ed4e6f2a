"""``baseline.json``: the per-feature bins and proportions the drift monitor compares with.

``lambdas/drift.py`` bins captured traffic with these bins (docs/contracts.md,
"baseline.json"), so both sides must put every value in the same bin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from jobs.inference import category_value


def baseline_document(
    frame: pd.DataFrame,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    bins: int = 10,
) -> dict[str, Any]:
    """The whole ``baseline.json``: the target, the feature order and each feature's bins."""
    return {
        "target": target,
        "feature_order": list(features),
        "features": feature_baseline(frame, features, categorical, bins=bins),
    }


def feature_baseline(
    frame: pd.DataFrame,
    features: Sequence[str],
    categorical: Sequence[str],
    bins: int = 10,
    max_categories: int = 200,
) -> dict[str, dict[str, Any]]:
    """Per-feature bins and proportions the drift monitor compares traffic against.

    Numeric: inner edges are the training quantiles (deduplicated), closed by
    "-inf" / "inf"; a value ``x`` falls in bin ``i`` when
    ``edges[i] <= x < edges[i + 1]`` (``bisect_right`` over the inner edges).
    Missing values and infinities (which the model treats as missing) count
    under ``missing``; bin proportions plus ``missing`` sum to 1.
    """
    out: dict[str, dict[str, Any]] = {}
    total = len(frame)
    for name in features:
        column = frame[name]
        if name in categorical:
            values = column.map(category_value, na_action="ignore")
            counts = values.value_counts(dropna=True)
            kept = counts.iloc[:max_categories]
            missing = int(values.isna().sum())
            other = int(counts.iloc[max_categories:].sum())
            out[name] = {
                "type": "categorical",
                "categories": [str(c) for c in kept.index],
                "proportions": [int(c) / total for c in kept.to_numpy()],
                "missing": missing / total,
                "other": other / total,
            }
            continue
        x = column.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = x[np.isfinite(x)]
        inner = (
            np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"))
            if len(finite)
            else np.array([])
        )
        where = np.searchsorted(inner, finite, side="right")
        counts_arr = np.bincount(where, minlength=len(inner) + 1)
        out[name] = {
            "type": "numeric",
            "edges": ["-inf", *[float(e) for e in inner], "inf"],
            "proportions": [int(c) / total for c in counts_arr],
            "missing": (total - len(finite)) / total,
        }
    return out
