"""Model quality from joined labels, and its estimate before labels arrive. Pure.

``realised`` computes what scikit-learn's ``accuracy_score``, ``precision_score``,
``recall_score``, ``f1_score`` (``zero_division=0``), ``average_precision_score`` and the
confusion matrix's false-positive rate give on the same rows (the tests compare them);
Lambdas import no scikit-learn, so it is written out here.

``estimated`` is confidence-based performance estimation (NannyML's CBPE): with
calibrated probabilities, a row predicted positive with probability ``p`` is a true
positive ``p`` of the time and a false positive ``1 - p``; the expected confusion matrix
gives precision, recall and F1 without a single label. It is only as good as the
calibration (the job calibrates when it helps) and assumes the inputs' relation to the
label has not changed (concept drift is what the realised numbers catch).
"""

from __future__ import annotations

from collections.abc import Sequence

REALISED = ("accuracy", "precision", "recall", "f1", "false_positive_rate", "pr_auc")
ESTIMATED = ("precision", "recall", "f1")


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def average_precision(truth: Sequence[bool], scores: Sequence[float]) -> float | None:
    """scikit-learn's ``average_precision_score``: sum of (R_n - R_n-1) * P_n over the
    distinct score thresholds, highest first; None without a positive row."""
    positives = sum(truth)
    if not positives:
        return None
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    tp = fp = 0
    ap = recall_before = 0.0
    for rank, i in enumerate(order):
        tp += bool(truth[i])
        fp += not truth[i]
        last_of_tie = rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]
        if last_of_tie:
            recall = tp / positives
            ap += (recall - recall_before) * (tp / (tp + fp))
            recall_before = recall
    return ap


def realised(
    truth: Sequence[bool], predicted: Sequence[bool], scores: Sequence[float]
) -> dict[str, float | int | None]:
    """Quality of ``predicted`` (positive or not) against ``truth``; ``scores`` are the
    positive class's probabilities. Also ``labelled_rows`` and the confusion counts."""
    tp = sum(t and p for t, p in zip(truth, predicted, strict=True))
    fp = sum(p and not t for t, p in zip(truth, predicted, strict=True))
    fn = sum(t and not p for t, p in zip(truth, predicted, strict=True))
    tn = len(truth) - tp - fp - fn
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, len(truth)),
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "false_positive_rate": (fp / (fp + tn)) if fp + tn else None,
        "pr_auc": average_precision(truth, scores),
        "labelled_rows": len(truth),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
    }


def estimated(predicted: Sequence[bool], scores: Sequence[float]) -> dict[str, float | int]:
    """CBPE: the expected precision, recall and F1 of ``predicted`` if ``scores`` (the
    positive class's calibrated probabilities) mean what they say."""
    tp = sum(s for p, s in zip(predicted, scores, strict=True) if p)
    fp = sum(1 - s for p, s in zip(predicted, scores, strict=True) if p)
    fn = sum(s for p, s in zip(predicted, scores, strict=True) if not p)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "rows": len(predicted),
    }
