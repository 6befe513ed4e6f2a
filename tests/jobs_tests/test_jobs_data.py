"""Unit tests for the data checks, the split and oversampling."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jobs import data


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
