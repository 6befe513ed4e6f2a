"""PSI per feature: bin values with ``baseline.json``'s bins and compare proportions.

Pure. The bins come from :mod:`jobs.baseline` at training time; both sides must put every
value in the same bin (``docs/contracts.md``, ``tests/jobs_tests/test_jobs_baseline.py``).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EPSILON = 1e-4  # stands in for an empty bin's proportion (PSI's log needs > 0)
MISSING = object()  # a JSON instance without the feature: counted in the missing bin


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    """Population stability index of two distributions over the same bins.

    ``sum((a - e) * ln(a / e))`` with each proportion floored at ``epsilon``.
    """
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected bins but {len(actual)} actual bins")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(float(e), epsilon), max(float(a), epsilon)
        total += (a - e) * math.log(a / e)
    return total


def _is_missing(value: Any) -> bool:
    if value is None or value is MISSING:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and not value.strip()


def _as_float(value: Any) -> float | None:
    """A finite number, else None (missing, as training counts NaN and infinities)."""
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _category(value: Any) -> str:
    """As ``jobs.inference.category_value``: whole floats lose ``.0``, bools are words."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    return str(value)


def bin_proportions(
    spec: Mapping[str, Any], values: Iterable[Any]
) -> tuple[list[float], list[float]]:
    """``(expected, actual)`` proportions of one feature over the baseline's bins.

    Numeric spec: ``x`` is in bin ``i`` when ``edges[i] <= x < edges[i+1]`` (as
    ``jobs.baseline.feature_baseline`` bins training data), then a ``missing`` bin
    (absent, empty, NaN, infinite or non-numeric values).
    Categorical spec: one bin per category, an ``other`` bin (unseen categories), a
    ``missing`` bin.
    """
    values = list(values)
    n = len(values)
    kind = spec.get("type")
    if kind == "numeric":
        edges = [float(e) for e in spec["edges"]]
        expected = [float(p) for p in spec["proportions"]]
        if len(expected) != len(edges) - 1:
            raise ValueError(f"{len(edges)} edges but {len(expected)} proportions")
        counts = [0] * (len(expected) + 1)
        for value in values:
            x = None if _is_missing(value) else _as_float(value)
            if x is None:
                counts[-1] += 1
            else:
                counts[min(max(bisect_right(edges, x) - 1, 0), len(expected) - 1)] += 1
        expected.append(float(spec.get("missing", 0.0)))
    elif kind == "categorical":
        categories = [_category(cat) for cat in spec["categories"]]
        expected = [float(p) for p in spec["proportions"]]
        if len(expected) != len(categories):
            raise ValueError(f"{len(categories)} categories but {len(expected)} proportions")
        index = {cat: i for i, cat in enumerate(categories)}
        counts = [0] * (len(categories) + 2)  # ..., other, missing
        for value in values:
            if _is_missing(value):
                counts[-1] += 1
            else:
                counts[index.get(_category(value), len(categories))] += 1
        expected += [float(spec.get("other", 0.0)), float(spec.get("missing", 0.0))]
    else:
        raise ValueError(f"unknown feature type {kind!r}")
    actual = [count / n for count in counts] if n else [0.0] * len(counts)
    return expected, actual


def feature_psi(spec: Mapping[str, Any], values: Iterable[Any]) -> float:
    expected, actual = bin_proportions(spec, values)
    return psi(expected, actual)
