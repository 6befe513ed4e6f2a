"""Unit tests for threshold tuning and the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from jobs import metrics


def test_threshold_for_f1_sits_between_the_chosen_score_and_the_next() -> None:
    is_pos = np.array([0, 0, 1, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    # at >= 0.35 all three positives and one negative: f1 = 6/7, better than >= 0.8 (0.8)
    threshold, best = metrics.tune_threshold(is_pos, scores, "f1")
    assert best == pytest.approx(6 / 7)
    assert threshold == pytest.approx((0.35 + 0.1) / 2)
    assert ((scores >= threshold) == np.array([0, 1, 1, 1, 1], dtype=bool)).all()


def test_threshold_follows_the_primary_metric() -> None:
    rng = np.random.default_rng(0)
    is_pos = rng.random(4000) < 0.05
    scores = np.clip(rng.normal(0.3 + 0.3 * is_pos, 0.15), 0, 1)
    t_f1, _ = metrics.tune_threshold(is_pos, scores, "f1")
    t_bal, _ = metrics.tune_threshold(is_pos, scores, "balanced_accuracy")
    # balanced accuracy rewards recall on the rare class more than f1 does: a lower threshold
    assert t_bal < t_f1
    # metrics the threshold cannot improve fall back to f1
    assert metrics.tune_threshold(is_pos, scores, "roc_auc")[0] == t_f1


def test_useless_scores_give_a_threshold_nothing_reaches() -> None:
    threshold, _ = metrics.tune_threshold(np.array([1, 0, 1, 0], bool), np.zeros(4), "f1")
    assert threshold <= 0.0 or threshold > 1.0  # all-positive (f1 2/3) or none, never between
    assert np.isfinite(threshold)


def test_majority_baseline_metrics() -> None:
    y = np.array([0] * 95 + [1] * 5)
    pred = np.zeros(100, dtype=int)
    proba = np.tile([0.95, 0.05], (100, 1))
    m = metrics.compute_metrics(y, pred, proba, [0, 1], positive=1, minority=1)
    assert m["accuracy"] == 0.95
    assert m["f1"] == 0.0 and m["recall"] == 0.0 and m["minority_recall"] == 0.0
    assert m["balanced_accuracy"] == 0.5
    assert m["roc_auc"] == 0.5
    assert m["pr_auc"] == pytest.approx(0.05)
    assert set(m) == set(metrics.METRICS)


def test_metrics_undefined_on_one_class_become_none() -> None:
    y = np.array([0, 0, 0])
    m = metrics.compute_metrics(y, y, np.tile([0.9, 0.1], (3, 1)), [0, 1], 1, 1)
    assert m["roc_auc"] is None and m["accuracy"] == 1.0


def test_minority_label_breaks_ties_towards_the_later_label() -> None:
    assert metrics.minority_label([0, 1], [50, 50]) == 1
    assert metrics.minority_label(["a", "b", "c"], [5, 3, 9]) == "b"
