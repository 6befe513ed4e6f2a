"""The drift bins of baseline.json, and lambdas.psi binning the same values the same way."""

from __future__ import annotations

import io
import json
import math
from bisect import bisect_right
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jobs.baseline import feature_baseline
from jobs.inference import category_value
from lambdas import captures, psi


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


# --- training-side and drift-side binning agree (docs/contracts.md, "baseline.json") ---------


def _capture(rows: list[list[Any]], content_type: str) -> str:
    """One SageMaker capture record of ``rows``, as ``lambdas.captures`` reads it."""
    if content_type == "application/json":
        body = json.dumps({"instances": rows})  # NaN/Infinity tokens, as Python clients send
    else:
        body = "\n".join(",".join(cell) for cell in rows)
    request = {"observedContentType": content_type, "mode": "INPUT", "data": body}
    return json.dumps({"captureData": {"endpointInput": {**request, "encoding": "CSV"}}})


def _drift_side(spec: dict[str, Any], column: list[Any], content_type: str) -> list[Any]:
    """``[expected, actual]`` of ``lambdas.psi`` for ``column`` captured as feature ``f``.

    A second feature keeps every CSV line non-blank (drift skips blank lines).
    """
    rows = [[value, "1" if content_type == "text/csv" else 1] for value in column]
    captured, errors = captures.parse_capture(_capture(rows, content_type), ["f", "g"])
    assert errors == [] and len(captured) == len(rows)
    expected, actual = psi.bin_proportions(spec, [row[0] for row in captured])
    return [expected, actual]


def _as_written(frame: pd.DataFrame, categorical: list[str], **kw: Any) -> dict[str, Any]:
    """The feature's spec as ``baseline.json`` holds it (written, then read back)."""
    spec = feature_baseline(frame, ["f"], categorical, **kw)["f"]
    return json.loads(json.dumps(spec, allow_nan=False))


# unequal counts, so a value on an edge in the wrong bin changes two proportions
NUMERIC = [float(v) for v in range(20) for _ in range(1 + v % 4)] + [-7.5, 1e6]
NUMERIC_MISSING = [math.nan, math.inf, -math.inf, math.nan]


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_numeric_training_and_drift_bins_agree_on_the_same_values(content_type: str) -> None:
    values = NUMERIC + NUMERIC_MISSING
    spec = _as_written(pd.DataFrame({"f": values}), [], bins=5)
    inner = [float(e) for e in spec["edges"][1:-1]]
    assert len(inner) == 4 and set(inner) <= set(NUMERIC)  # values exactly on every edge
    assert min(NUMERIC) < inner[0] and max(NUMERIC) > inner[-1]  # and beyond both ends
    if content_type == "text/csv":  # as a CSV client writes them; "" is a missing cell
        column: list[Any] = ["" if math.isnan(v) else repr(v) for v in values]
    else:
        column = values

    expected, actual = _drift_side(spec, column, content_type)

    assert actual == expected  # bins, then missing (NaN, empty, +-inf)
    assert expected[-1] == spec["missing"] == 4 / len(values)


def test_numeric_missing_only_and_json_null_agree() -> None:
    frame = pd.DataFrame({"f": [1.0, 2.0, None, 2.0, math.inf]})
    spec = _as_written(frame, [], bins=2)
    expected, actual = _drift_side(spec, [1.0, 2.0, None, 2.0, "inf"], "application/json")
    assert actual == expected


@pytest.mark.parametrize("content_type", ["text/csv", "application/json"])
def test_categorical_training_and_drift_bins_agree_on_the_same_values(content_type: str) -> None:
    # max_categories=3: the rarest categories count as "other" in training and in traffic
    names = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"]
    if content_type == "text/csv":
        values: list[Any] = [*names, None, None]
        column = ["" if v is None else v for v in values]
    else:  # JSON keeps types: whole floats and ints agree, bools are words
        values = [*names, 3.0, 3, True, None, math.nan]
        column = values
    frame = pd.DataFrame({"f": pd.Series(values, dtype=object)})
    spec = _as_written(frame, ["f"], max_categories=3)
    assert spec["other"] > 0 and spec["missing"] > 0

    expected, actual = _drift_side(spec, column, content_type)

    assert actual == expected  # categories, then other, then missing


@pytest.mark.xfail(
    strict=True,
    reason="disagreement: training keeps a blank category string, lambdas.drift counts it "
    "as missing",
)
def test_blank_category_strings_agree() -> None:
    frame = pd.DataFrame({"f": ["a", "  ", "b", "a"]})  # read as is from a CSV file
    spec = _as_written(frame, ["f"])
    expected, actual = _drift_side(spec, ["a", "  ", "b", "a"], "text/csv")
    assert actual == expected


@pytest.mark.xfail(
    strict=True,
    reason="disagreement: a numeric-coded category written '20.0' in a CSV capture is '20' "
    "in training and serving, but an unseen '20.0' (other) in lambdas.drift",
)
def test_numeric_coded_categories_written_as_floats_agree() -> None:
    frame = pd.read_csv(io.StringIO("f\n20.0\n30.0\n\n20.0\n"), skip_blank_lines=False)
    spec = _as_written(frame, ["f"])
    expected, actual = _drift_side(spec, ["20.0", "30.0", "", "20.0"], "text/csv")
    assert actual == expected
