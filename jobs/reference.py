"""The frozen reference set: labelled rows no job trains on, scored by both models.

The stack gives every job the set in force as its ``reference`` channel (one CSV). The
job drops those rows from its training data, scores itself and the champion on them
and records the file's SHA-256, so promote can tell it was this very set
(``evaluation.json["reference"]``, docs/contracts.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs import data
from jobs.champion import ChampionError, champion_predictions
from jobs.metrics import compute_metrics, weighted_metric
from jobs.profile import file_digest, row_hashes

RESAMPLES = 300
_CHUNK = 50  # resamples weighed at once: 50 x rows floats
# metrics of the binary confusion counts, computed for all resamples at once (exactly
# what scikit-learn gives with those sample weights and zero_division=0)
_COUNTED = ("f1", "precision", "recall", "accuracy")


def _counted(metric: str, truth: np.ndarray, said: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``metric`` of predictions ``said`` (positive or not) per row of ``weights``."""
    tp = weights @ (truth & said)
    fp = weights @ (~truth & said)
    fn = weights @ (truth & ~said)
    if metric == "accuracy":
        return np.asarray(weights @ (truth == said) / weights.sum(axis=1))
    numerator, denominator = {
        "f1": (2 * tp, 2 * tp + fp + fn),
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
    }[metric]
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.asarray(np.where(denominator > 0, numerator / safe, 0.0))


def reference_file(source: str | Path) -> Path:
    """The one data file of the channel (or ``source`` itself when it is a file)."""
    path = Path(source)
    if path.is_file():
        return path
    files = data.list_data_files(path)
    if len(files) != 1:
        raise data.DataError(f"the reference channel holds {len(files)} data files, not one")
    return files[0]


def load_reference(source: str | Path, checked: data.CheckedData) -> tuple[pd.DataFrame, str, str]:
    """The reference rows conformed to the training columns, the file's SHA-256 and name."""
    path = reference_file(source)
    frame = data.conform(data.read_data_file(path), checked, "reference")
    return frame, file_digest(path), path.name


def exclude(checked: data.CheckedData, reference: pd.DataFrame) -> int:
    """Drop the reference rows from the training data (in place); how many were there."""
    columns = [*checked.features, checked.target]
    known = row_hashes(reference, columns, checked.categorical)
    mask = np.isin(row_hashes(checked.frame, columns, checked.categorical), known)
    if mask.any():
        checked.frame = checked.frame.loc[~mask].reset_index(drop=True)
    return int(mask.sum())


def score_reference(
    reference: pd.DataFrame,
    digest: str,
    name: str,
    *,
    checked: data.CheckedData,
    predict: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]],
    challenger: Mapping[str, Any],
    champion_model: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """``evaluation.json["reference"]``: both models' metrics on the reference rows.

    ``predict`` gives the challenger's ``(labels, probabilities)`` for a frame; the
    champion decides with its own threshold, as on the test split.
    """
    y = reference[checked.target].to_numpy()
    labels, positive, minority = (
        challenger["labels"],
        challenger["positive"],
        challenger["minority"],
    )
    predicted, proba = predict(reference)
    section: dict[str, Any] = {
        "sha256": digest,
        "files": [name],
        "n": len(reference),
        "metrics": compute_metrics(y, predicted, proba, labels, positive, minority),
    }
    if champion_model is not None:
        try:
            theirs, their_proba = champion_predictions(
                dict(champion_model), reference, challenger["classes"]
            )
        except ChampionError as exc:
            section["champion"] = {"error": str(exc)}
            return section
        section["champion"] = {
            "metrics": compute_metrics(y, theirs, their_proba, labels, positive, minority)
        }
        section["difference"] = paired_bootstrap(
            y,
            (predicted, proba),
            (theirs, their_proba),
            metric=challenger["primary"],
            labels=labels,
            positive=positive,
            minority=minority,
        )
    return section


def paired_bootstrap(
    y: np.ndarray,
    ours: tuple[np.ndarray, np.ndarray],
    theirs: tuple[np.ndarray, np.ndarray],
    *,
    metric: str,
    labels: list[Any],
    positive: Any,
    minority: Any,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> dict[str, Any]:
    """``metric``(ours) - ``metric``(theirs) on the same rows, with a 95% interval.

    Both models are scored on the same resampled rows (multinomial weights), so the
    interval is that of the difference, not of two independent scores: a reference set
    of a few dozen positives cannot tell an F1 loss of 0.02 from noise, and this says so.
    """
    rng = np.random.default_rng(seed)

    def score(pair: tuple[np.ndarray, np.ndarray], weight: np.ndarray | None) -> float:
        return weighted_metric(metric, y, pair[0], pair[1], labels, positive, minority, weight)

    value = score(ours, None) - score(theirs, None)
    counted = positive is not None and metric in _COUNTED
    diffs: list[float] = []
    for start in range(0, resamples, _CHUNK):
        # the same draws, in the same order, as one multinomial call per resample
        weights = rng.multinomial(
            len(y), np.full(len(y), 1.0 / len(y)), size=min(_CHUNK, resamples - start)
        ).astype(float)
        if counted:
            chunk = _counted(metric, y == positive, ours[0] == positive, weights) - _counted(
                metric, y == positive, theirs[0] == positive, weights
            )
            diffs.extend(float(d) for d in chunk if np.isfinite(d))
            continue
        for weight in weights:
            diff = score(ours, weight) - score(theirs, weight)
            if np.isfinite(diff):
                diffs.append(diff)
    if len(diffs) < resamples // 2:
        return {
            "metric": metric,
            "value": value,
            "error": "the metric is undefined on most resamples",
        }
    low, high = np.quantile(diffs, [0.025, 0.975])
    return {
        "metric": metric,
        "value": round(float(value), 6),
        "low": round(float(low), 6),
        "high": round(float(high), 6),
        "resamples": len(diffs),
    }
