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


# --- weighted metrics and the paired bootstrap (the reference-set rule's interval) ------------


@pytest.mark.parametrize("name", metrics.METRICS)
def test_weighted_metric_without_weights_is_compute_metrics(name: str) -> None:
    from jobs.metrics import weighted_metric

    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.1).astype(int)
    proba1 = np.clip(0.6 * y + rng.random(400) * 0.5, 0, 1)
    proba = np.column_stack([1 - proba1, proba1])
    pred = (proba1 >= 0.5).astype(int)
    every = metrics.compute_metrics(y, pred, proba, [0, 1], 1, 1)

    assert weighted_metric(name, y, pred, proba, [0, 1], 1, 1, None) == pytest.approx(every[name])


def test_the_paired_bootstrap_tells_noise_from_a_regression() -> None:
    from jobs.reference import paired_bootstrap

    rng = np.random.default_rng(4)
    y = (rng.random(2000) < 0.05).astype(int)
    good = np.where(rng.random(2000) < 0.9, y, 1 - y)
    worse = np.where(rng.random(2000) < 0.6, y, rng.integers(0, 2, 2000))

    def diff(ours: np.ndarray, theirs: np.ndarray) -> dict:
        pair = (ours, np.column_stack([1 - ours, ours]).astype(float))
        other = (theirs, np.column_stack([1 - theirs, theirs]).astype(float))
        kw = {"metric": "f1", "labels": [0, 1], "positive": 1, "minority": 1, "resamples": 200}
        return paired_bootstrap(y, pair, other, **kw)

    same = diff(good, good)
    assert same["value"] == 0 and same["low"] == 0 and same["high"] == 0
    regression = diff(worse, good)
    assert regression["high"] < 0 < -regression["value"], regression
    assert regression["low"] <= regression["value"] <= regression["high"]


@pytest.mark.parametrize("metric", ["f1", "precision", "recall", "accuracy", "mcc"])
@pytest.mark.parametrize("positives", [40, 2])  # 2: many resamples without a positive
def test_the_paired_bootstrap_equals_scikit_learn_on_every_resample(
    metric: str, positives: int
) -> None:
    from sklearn import metrics as skm

    from jobs.reference import paired_bootstrap

    rng = np.random.default_rng(11)
    y = np.array(["ok"] * (400 - positives) + ["fraud"] * positives)
    ours = np.where(rng.random(400) < 0.85, y, np.where(y == "ok", "fraud", "ok"))
    theirs = np.where(rng.random(400) < 0.7, y, "ok")
    proba = np.zeros((400, 2))  # not used by these metrics
    sk = {
        "f1": skm.f1_score,
        "precision": skm.precision_score,
        "recall": skm.recall_score,
        "accuracy": skm.accuracy_score,
        "mcc": skm.matthews_corrcoef,
    }[metric]

    def scored(pred: np.ndarray, weight: np.ndarray) -> float:
        if metric in ("accuracy", "mcc"):
            return float(sk(y, pred, sample_weight=weight))
        return float(sk(y, pred, pos_label="fraud", zero_division=0, sample_weight=weight))

    # what the bootstrap claims to compute: one multinomial draw per resample, sklearn
    draws = np.random.default_rng(0)
    diffs = [
        scored(ours, w) - scored(theirs, w)
        for w in (draws.multinomial(400, np.full(400, 1 / 400)).astype(float) for _ in range(130))
    ]
    got = paired_bootstrap(
        y,
        (ours, proba),
        (theirs, proba),
        metric=metric,
        labels=["fraud", "ok"],
        positive="fraud",
        minority="fraud",
        resamples=130,
    )
    low, high = np.quantile(diffs, [0.025, 0.975])
    assert got["resamples"] == 130
    assert got["low"] == pytest.approx(low, abs=1e-6)  # it rounds to 6 places
    assert got["high"] == pytest.approx(high, abs=1e-6)
