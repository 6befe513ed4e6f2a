"""Unit tests for threshold tuning, metrics, drift bins and the data checks."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pandas as pd
import pytest
from jobs_helpers import one_thread  # noqa: F401  (autouse)

from jobs import data, evaluate
from jobs.inference import category_value


def test_threshold_for_f1_sits_between_the_chosen_score_and_the_next() -> None:
    is_pos = np.array([0, 0, 1, 1, 1], dtype=bool)
    scores = np.array([0.1, 0.4, 0.35, 0.8, 0.9])
    # at >= 0.35 all three positives and one negative: f1 = 6/7, better than >= 0.8 (0.8)
    threshold, best = evaluate.tune_threshold(is_pos, scores, "f1")
    assert best == pytest.approx(6 / 7)
    assert threshold == pytest.approx((0.35 + 0.1) / 2)
    assert ((scores >= threshold) == np.array([0, 1, 1, 1, 1], dtype=bool)).all()


def test_threshold_follows_the_primary_metric() -> None:
    rng = np.random.default_rng(0)
    is_pos = rng.random(4000) < 0.05
    scores = np.clip(rng.normal(0.3 + 0.3 * is_pos, 0.15), 0, 1)
    t_f1, _ = evaluate.tune_threshold(is_pos, scores, "f1")
    t_bal, _ = evaluate.tune_threshold(is_pos, scores, "balanced_accuracy")
    # balanced accuracy rewards recall on the rare class more than f1 does: a lower threshold
    assert t_bal < t_f1
    # metrics the threshold cannot improve fall back to f1
    assert evaluate.tune_threshold(is_pos, scores, "roc_auc")[0] == t_f1


def test_useless_scores_give_a_threshold_nothing_reaches() -> None:
    threshold, _ = evaluate.tune_threshold(np.array([1, 0, 1, 0], bool), np.zeros(4), "f1")
    assert threshold <= 0.0 or threshold > 1.0  # all-positive (f1 2/3) or none, never between
    assert np.isfinite(threshold)


def test_majority_baseline_metrics() -> None:
    y = np.array([0] * 95 + [1] * 5)
    pred = np.zeros(100, dtype=int)
    proba = np.tile([0.95, 0.05], (100, 1))
    m = evaluate.compute_metrics(y, pred, proba, [0, 1], positive=1, minority=1)
    assert m["accuracy"] == 0.95
    assert m["f1"] == 0.0 and m["recall"] == 0.0 and m["minority_recall"] == 0.0
    assert m["balanced_accuracy"] == 0.5
    assert m["roc_auc"] == 0.5
    assert m["pr_auc"] == pytest.approx(0.05)
    assert set(m) == set(evaluate.METRICS)


def test_metrics_undefined_on_one_class_become_none() -> None:
    y = np.array([0, 0, 0])
    m = evaluate.compute_metrics(y, y, np.tile([0.9, 0.1], (3, 1)), [0, 1], 1, 1)
    assert m["roc_auc"] is None and m["accuracy"] == 1.0


def test_minority_label_breaks_ties_towards_the_later_label() -> None:
    assert evaluate.minority_label([0, 1], [50, 50]) == 1
    assert evaluate.minority_label(["a", "b", "c"], [5, 3, 9]) == "b"


def test_numeric_baseline_follows_the_bisect_rule() -> None:
    values = np.concatenate([np.arange(100, dtype=float), [np.nan, np.inf, -np.inf, np.nan]])
    frame = pd.DataFrame({"x": values, "flag": np.tile([0.0, 1.0], 52)})
    spec = evaluate.feature_baseline(frame, ["x", "flag"], [], bins=4)

    x = spec["x"]
    inner = [float(e) for e in x["edges"][1:-1]]
    assert x["edges"][0] == "-inf" and x["edges"][-1] == "inf"
    assert inner == [24.0, 49.0, 74.0]  # observed values, not interpolations
    counts = np.bincount([bisect_right(inner, v) for v in range(100)], minlength=4)
    assert x["proportions"] == pytest.approx((counts / 104).tolist())
    assert x["missing"] == pytest.approx(4 / 104)  # NaN and both infinities
    flag = spec["flag"]
    assert flag["edges"] == ["-inf", 0.0, 1.0, "inf"]  # duplicate quantiles collapse
    assert flag["proportions"] == pytest.approx([0.0, 0.5, 0.5])


def test_categorical_baseline() -> None:
    frame = pd.DataFrame({"c": ["a", "b", "a", None, 3.0, "a"]})
    spec = evaluate.feature_baseline(frame, ["c"], ["c"])["c"]
    assert spec["type"] == "categorical"
    assert spec["categories"] == ["a", "b", "3"]
    assert spec["proportions"] == pytest.approx([3 / 6, 1 / 6, 1 / 6])
    assert spec["missing"] == pytest.approx(1 / 6)
    assert spec["other"] == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3.0, "3"), (3, "3"), ("3", "3"), (2.5, "2.5"), (True, "True"), ("x", "x")],
)
def test_category_values_normalise(value, expected) -> None:
    assert category_value(value) == expected


@pytest.mark.parametrize("value", [None, float("nan")])
def test_missing_categories_stay_missing(value) -> None:
    assert category_value(value) != category_value(value)  # NaN


def test_checks_count_before_cleaning_and_keep_input_untouched() -> None:
    frame = pd.DataFrame(
        {
            "a": [1.0, 1.0, np.nan, np.inf, 5.0] * 12,
            "b": range(60),
            "label": [0, 1] * 30,
        }
    )
    frame.loc[0, "b"] = 1  # rows 0 and 1 differ only in their label: not duplicates
    original = frame.copy()
    checked = data.check_and_clean(frame, target="label", min_rows=10, min_class_count=5)
    assert frame.equals(original)
    assert checked.summary["missing_values"]["a"] == 12
    assert checked.summary["infinities"]["a"] == 12
    assert checked.summary["duplicates_dropped"] == 0
    assert checked.features == ["a", "b"]
    x = data.prepare_features(checked.frame, checked.features, checked.categorical)
    assert isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == (60, 2)


def test_split_is_stratified_and_disjoint() -> None:
    y = np.array([0] * 950 + [1] * 50)
    train, val, test = data.split_indices(y, test_size=0.2, validation_size=0.2, seed=0)
    assert len(train) + len(val) + len(test) == 1000
    assert not set(train) & set(val) and not set(train) & set(test) and not set(val) & set(test)
    assert (y[test] == 1).sum() == 10 and (y[val] == 1).sum() == 10


def test_oversample_balances_the_training_rows_only() -> None:
    y = np.array([0] * 90 + [1] * 10)
    train = np.arange(0, 100, 2)  # 45 of class 0, 5 of class 1
    out = data.oversample(train, y, seed=0)
    assert set(out) <= set(train)
    assert (y[out] == 0).sum() == (y[out] == 1).sum() == 45
