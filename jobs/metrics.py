"""The evaluation metrics, decision-threshold tuning and the majority-class baseline."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.preprocessing import label_binarize

METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "f1_macro",
    "minority_recall",
    "mcc",
    "roc_auc",
    "pr_auc",
)
# Metrics the binary decision threshold can be tuned for; the others either do
# not depend on it (roc_auc, pr_auc) or are maximised by a degenerate threshold
# (precision, recall), so for those the threshold is tuned for f1.
TUNABLE = ("f1", "f1_macro", "accuracy", "balanced_accuracy", "mcc")


def minority_label(labels: Sequence[Any], counts: Sequence[int]) -> Any:
    """The least frequent label; ties go to the later label (1 over 0)."""
    best = min(range(len(labels)), key=lambda i: (counts[i], -i))
    return labels[best]


def _safe(fn: Callable[[], float]) -> float | None:
    """A metric that is undefined here (e.g. one class in y_true) becomes None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(fn())
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    labels: Sequence[Any],
    positive: Any,
    minority: Any,
) -> dict[str, float | None]:
    """All metrics of the contract, on one set of predictions.

    Binary: precision/recall/f1 for ``positive``; multiclass (``positive`` is
    None): macro averages, and one-vs-rest macro ROC-AUC / PR-AUC.
    """
    labels = list(labels)
    out: dict[str, float | None] = {
        "accuracy": _safe(lambda: accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(lambda: balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": _safe(
            lambda: f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "minority_recall": _safe(
            lambda: recall_score(
                y_true, y_pred, labels=[minority], average="macro", zero_division=0
            )
        ),
        "mcc": _safe(lambda: matthews_corrcoef(y_true, y_pred)),
    }
    if positive is not None:
        pos = labels.index(positive)
        is_pos = y_true == positive
        kw: dict[str, Any] = {"pos_label": positive, "zero_division": 0}
        out["precision"] = _safe(lambda: precision_score(y_true, y_pred, **kw))
        out["recall"] = _safe(lambda: recall_score(y_true, y_pred, **kw))
        out["f1"] = _safe(lambda: f1_score(y_true, y_pred, **kw))
        out["roc_auc"] = _safe(lambda: roc_auc_score(is_pos, proba[:, pos]))
        out["pr_auc"] = _safe(lambda: average_precision_score(is_pos, proba[:, pos]))
    else:
        kw = {"labels": labels, "average": "macro", "zero_division": 0}
        out["precision"] = _safe(lambda: precision_score(y_true, y_pred, **kw))
        out["recall"] = _safe(lambda: recall_score(y_true, y_pred, **kw))
        out["f1"] = out["f1_macro"]
        onehot = label_binarize(y_true, classes=labels)
        out["roc_auc"] = _safe(
            lambda: roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
        )
        out["pr_auc"] = _safe(lambda: average_precision_score(onehot, proba, average="macro"))
    return {k: out[k] for k in METRICS}


def weighted_metric(
    name: str,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    labels: Sequence[Any],
    positive: Any,
    minority: Any,
    weight: np.ndarray | None,
) -> float:
    """One metric of :func:`compute_metrics` with row weights (NaN when undefined)."""
    labels = list(labels)
    kw: dict[str, Any] = {"sample_weight": weight}
    binary = positive is not None
    by_label = {"pos_label": positive} if binary else {"labels": labels, "average": "macro"}
    fns: dict[str, Callable[[], float]] = {
        "accuracy": lambda: accuracy_score(y_true, y_pred, **kw),
        "balanced_accuracy": lambda: balanced_accuracy_score(y_true, y_pred, **kw),
        "f1_macro": lambda: f1_score(
            y_true, y_pred, labels=labels, average="macro", zero_division=0, **kw
        ),
        "minority_recall": lambda: recall_score(
            y_true, y_pred, labels=[minority], average="macro", zero_division=0, **kw
        ),
        "mcc": lambda: matthews_corrcoef(y_true, y_pred, **kw),
        "precision": lambda: precision_score(y_true, y_pred, zero_division=0, **by_label, **kw),
        "recall": lambda: recall_score(y_true, y_pred, zero_division=0, **by_label, **kw),
        "f1": lambda: f1_score(y_true, y_pred, zero_division=0, **by_label, **kw),
    }
    if binary:
        is_pos = y_true == positive
        scores = proba[:, labels.index(positive)]
        fns["roc_auc"] = lambda: roc_auc_score(is_pos, scores, **kw)
        fns["pr_auc"] = lambda: average_precision_score(is_pos, scores, **kw)
    else:
        fns["f1"] = fns["f1_macro"]
        fns["roc_auc"] = lambda: roc_auc_score(
            y_true, proba, multi_class="ovr", average="macro", labels=labels, **kw
        )
    value = _safe(fns[name]) if name in fns else None
    return float("nan") if value is None else value


def tune_threshold(is_pos: np.ndarray, scores: np.ndarray, metric: str) -> tuple[float, float]:
    """Threshold on ``scores`` maximising ``metric`` (predict positive if >=).

    Every distinct score is a candidate (from the ROC curve's counts); the
    returned threshold sits halfway between the chosen score and the next
    lower one, so it does not hinge on one validation row.
    """
    if metric not in TUNABLE:
        metric = "f1"
    is_pos = np.asarray(is_pos, dtype=bool)
    p = int(is_pos.sum())
    n = len(is_pos) - p
    if p == 0 or n == 0:
        return 0.5, float("nan")
    fpr, tpr, thr = roc_curve(is_pos, scores, drop_intermediate=False)
    tp = tpr * p
    fp = fpr * n
    fn = p - tp
    tn = n - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        f1_neg = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        values = {
            "f1": lambda: f1_pos,
            "f1_macro": lambda: (f1_pos + f1_neg) / 2,
            "accuracy": lambda: (tp + tn) / (p + n),
            "balanced_accuracy": lambda: (tpr + (1 - fpr)) / 2,
            "mcc": lambda: np.nan_to_num(
                (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            ),
        }[metric]()
    best = int(np.argmax(values))
    if best == 0:  # predicting no positive at all was best: a useless model
        return float(np.nextafter(1.0, 2.0)), float(values[best])
    upper = float(thr[best])
    lower = float(thr[best + 1]) if best + 1 < len(thr) else upper
    return (upper + lower) / 2 if math.isfinite(upper) else lower, float(values[best])


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> list[list[int]]:
    """Confusion matrix as lists, rows = true label in ``labels`` order."""
    return confusion_matrix(y_true, y_pred, labels=list(labels)).tolist()


def majority_baseline(
    y_true: np.ndarray,
    classes: np.ndarray,
    counts: Sequence[int],
    labels: Sequence[Any],
    positive: Any,
    minority: Any,
) -> dict[str, float | None]:
    """The metrics of a model that always predicts the most frequent training class.

    ``counts`` are the training rows per label (in ``labels`` order); its scores are the
    training class priors, so its ROC-AUC is 0.5.
    """
    majority = int(np.argmax(counts))
    priors = np.tile(np.array(counts, dtype=float) / sum(counts), (len(y_true), 1))
    predicted: np.ndarray = np.repeat(classes[[majority]], len(y_true))
    return compute_metrics(y_true, predicted, priors, labels, positive, minority)
