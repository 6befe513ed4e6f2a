"""The drift bins of baseline.json and the categorical values they count."""

from __future__ import annotations

from bisect import bisect_right

import numpy as np
import pandas as pd
import pytest
from jobs_helpers import one_thread  # noqa: F401  (autouse)

from jobs.baseline import feature_baseline
from jobs.inference import category_value


def test_numeric_baseline_follows_the_bisect_rule() -> None:
    values = np.concatenate([np.arange(100, dtype=float), [np.nan, np.inf, -np.inf, np.nan]])
    frame = pd.DataFrame({"x": values, "flag": np.tile([0.0, 1.0], 52)})
    spec = feature_baseline(frame, ["x", "flag"], [], bins=4)

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
    spec = feature_baseline(frame, ["c"], ["c"])["c"]
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
