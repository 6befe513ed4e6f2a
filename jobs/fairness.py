"""A fairness audit: the model's errors per group of each sensitive feature, on the test split.

Hyperparameter ``sensitive-features`` names columns (kept out of the model's features
unless ``use-sensitive-features=true``). Per group: rows, selection rate (share predicted
positive), precision, recall (TPR), false-positive rate and F1, all scikit-learn's on that
group's rows; then the largest gaps between groups with at least ``min-group-rows`` rows:
demographic parity difference (selection rates) and equalized odds difference (the larger
of the TPR and FPR gaps). Smaller groups are reported and named, never dropped silently.
Binary tasks only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score

MISSING = "(missing)"


def _group_metrics(y: np.ndarray, pred: np.ndarray, positive: Any) -> dict[str, Any]:
    is_pos, said_pos = y == positive, pred == positive
    tn, fp, _fn, _tp = confusion_matrix(is_pos, said_pos, labels=[False, True]).ravel()
    kw: dict[str, Any] = {"pos_label": True, "zero_division": 0}
    return {
        "rows": len(y),
        "positives": int(is_pos.sum()),
        "selection_rate": round(float(said_pos.mean()), 6),
        "precision": round(float(precision_score(is_pos, said_pos, **kw)), 6),
        "recall": round(float(recall_score(is_pos, said_pos, **kw)), 6),
        "false_positive_rate": round(float(fp / (fp + tn)) if fp + tn else 0.0, 6),
        "f1": round(float(f1_score(is_pos, said_pos, **kw)), 6),
    }


def audit(
    groups: pd.DataFrame,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    positive: Any,
    columns: Sequence[str],
    min_rows: int,
) -> dict[str, Any]:
    """``evaluation.json["fairness"]``: per column, per group metrics and the gaps."""
    out: dict[str, Any] = {"min_group_rows": min_rows, "features": {}}
    worst = 0.0
    for column in columns:
        keys = groups[column].astype(str).where(groups[column].notna(), MISSING).to_numpy()
        per: dict[str, Any] = {}
        for key in sorted(set(keys)):
            mask = keys == key
            per[key] = _group_metrics(y_true[mask], y_pred[mask], positive)
        large = {k: v for k, v in per.items() if v["rows"] >= min_rows}
        small = sorted(k for k in per if k not in large)
        entry: dict[str, Any] = {"groups": per, "small_groups": small}
        if len(large) >= 2:

            def gap(metric: str, pool: dict[str, Any] = large) -> float:
                values = [g[metric] for g in pool.values()]
                return round(max(values) - min(values), 6)

            entry["demographic_parity_difference"] = gap("selection_rate")
            entry["equalized_odds_difference"] = max(gap("recall"), gap("false_positive_rate"))
            worst = max(
                worst, entry["demographic_parity_difference"], entry["equalized_odds_difference"]
            )
        else:
            entry["note"] = f"fewer than two groups with {min_rows}+ rows: no gap measured"
        out["features"][column] = entry
    out["largest_gap"] = worst
    return out
