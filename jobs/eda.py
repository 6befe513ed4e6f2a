"""The data profile a person reads before trusting a model (``evaluation.json["profile"]``).

Per feature: type, missing share, distinct count, quantiles (numeric) or top categories,
and its relation to the label on its own: mutual information and, for a binary label,
the univariate ROC-AUC (how well the feature alone ranks the positive class, folded so
0.5 is none and 1 is perfect). Flags: ``constant`` (one value), ``leaky`` (one feature
alone separates the classes almost perfectly: AUC over ``LEAKY_AUC``, usually a column
written after the fact), ``high-cardinality`` (a categorical column with more distinct
values than ``HIGH_CARDINALITY`` or nearly one per row).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_selection import mutual_info_classif
from sklearn.metrics import roc_auc_score

LEAKY_AUC = 0.98
HIGH_CARDINALITY = 100
MAX_ROWS = 20_000  # mutual information needs a sample, not every row


def _codes(column: pd.Series, categorical: bool) -> np.ndarray:
    if categorical:
        return pd.factorize(column.astype(str).where(column.notna()))[0].astype(float)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)


def _auc(values: np.ndarray, is_pos: np.ndarray, categorical: bool) -> float | None:
    finite = np.isfinite(values) & (values >= 0 if categorical else True)
    if finite.sum() < 10 or len(np.unique(is_pos[finite])) < 2:
        return None
    x, y = values[finite], is_pos[finite]
    if categorical:  # a category's positive rate is its score
        rates = pd.Series(y).groupby(x).mean()
        x = rates.reindex(x).to_numpy()
    auc = float(roc_auc_score(y, x))
    return round(max(auc, 1 - auc), 6)


def profile_features(
    frame: pd.DataFrame,
    *,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    positive: Any,
    seed: int = 0,
) -> dict[str, Any]:
    """``evaluation.json["profile"]`` for the cleaned training data."""
    rows = frame.sample(n=MAX_ROWS, random_state=seed) if len(frame) > MAX_ROWS else frame
    y = rows[target].to_numpy()
    is_pos = (y == positive) if positive is not None else None
    coded = np.column_stack([_codes(rows[f], f in categorical) for f in features])
    coded[~np.isfinite(coded)] = np.nan  # infinities count as missing, as the model sees them
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an all-missing column has no median
        medians = np.nanmedian(coded, axis=0)
    filled = np.nan_to_num(np.where(np.isnan(coded), medians, coded))
    discrete = [f in categorical for f in features]
    mutual = mutual_info_classif(
        filled, y.astype(str), discrete_features=discrete, random_state=seed
    )
    out: dict[str, Any] = {}
    for i, name in enumerate(features):
        column = frame[name]
        is_cat = name in categorical
        distinct = int(column.nunique(dropna=True))
        item: dict[str, Any] = {
            "type": "categorical" if is_cat else "numeric",
            "missing_share": round(float(column.isna().mean()), 6),
            "distinct": distinct,
            "mutual_information": round(float(mutual[i]), 6),
        }
        if is_cat:
            top = column.astype(str).where(column.notna()).value_counts().head(5)
            item["top"] = {str(k): int(v) for k, v in top.items()}
        else:
            values = pd.to_numeric(column, errors="coerce").replace([np.inf, -np.inf], np.nan)
            quantiles = values.quantile([0.0, 0.25, 0.5, 0.75, 1.0]).tolist()
            item["quantiles"] = [None if not np.isfinite(q) else float(q) for q in quantiles]
        # a category's own positive rate ranks perfectly when nearly every row is its own
        # category: no AUC (nor leak flag) for high-cardinality columns
        if is_pos is not None and not (is_cat and distinct > HIGH_CARDINALITY):
            item["auc"] = _auc(coded[:, i], is_pos, is_cat)
        flags = []
        if distinct <= 1:
            flags.append("constant")
        if item.get("auc") is not None and item["auc"] >= LEAKY_AUC:
            flags.append("leaky")
        if is_cat and (distinct > HIGH_CARDINALITY or distinct > 0.5 * len(frame)):
            flags.append("high-cardinality")
        item["flags"] = flags
        out[name] = item
    counts = frame[target].value_counts()
    return {
        "rows": len(frame),
        "sampled_rows": len(rows),
        "class_balance": {str(k): round(int(v) / len(frame), 6) for k, v in counts.items()},
        "features": out,
        "flagged": {name: item["flags"] for name, item in out.items() if item["flags"]},
    }
