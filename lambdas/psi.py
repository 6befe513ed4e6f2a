"""PSI per feature: bin values with ``baseline.json``'s bins and compare proportions.

Also the Jensen-Shannon distance and, for categorical features, Pearson's chi-squared
goodness-of-fit p-value, written out (Lambdas carry no scipy; the tests compare with it).

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


def feature_stats(spec: Mapping[str, Any], values: Iterable[Any]) -> dict[str, float | None]:
    """PSI and Jensen-Shannon distance of one feature; for a categorical one also the
    chi-squared goodness-of-fit p-value of its counts against training's proportions."""
    values = list(values)
    expected, actual = bin_proportions(spec, values)
    stats: dict[str, float | None] = {
        "psi": psi(expected, actual),
        "js": js_distance(expected, actual),
    }
    if spec.get("type") == "categorical":
        counts = [round(a * len(values)) for a in actual]
        stats["chi2_p"] = chi_squared_p(expected, counts)
    return stats


def js_distance(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) of two distributions over the same
    bins: ``scipy.spatial.distance.jensenshannon(p, q, base=2)``."""
    p = [max(float(e), 0.0) for e in expected]
    q = [max(float(a), 0.0) for a in actual]
    sp, sq = sum(p), sum(q)
    if not sp or not sq:
        return 0.0
    p, q = [x / sp for x in p], [x / sq for x in q]
    divergence = 0.0
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        if a:
            divergence += a * math.log2(a / m) / 2
        if b:
            divergence += b * math.log2(b / m) / 2
    return math.sqrt(max(divergence, 0.0))


def chi_squared_p(expected: Sequence[float], counts: Sequence[int]) -> float | None:
    """p-value of Pearson's goodness-of-fit test of ``counts`` against the ``expected``
    proportions (``scipy.stats.chisquare``), over the bins training saw (expected > 0);
    None when under 5 rows are expected in any such bin (the test's usual condition)."""
    n = sum(counts)
    cells = [(e * n, o) for e, o in zip(expected, counts, strict=True) if e > 0]
    if n == 0 or len(cells) < 2 or min(e for e, _ in cells) < 5:
        return None
    unseen = n - sum(o for _, o in cells)  # rows in bins training never saw
    statistic = sum((o - e) ** 2 / e for e, o in cells)
    if unseen:
        return 0.0  # an impossible bin under the expectation: no fit at all
    return _chi2_sf(statistic, len(cells) - 1)


def _chi2_sf(x: float, dof: int) -> float:
    """Survival function of the chi-squared distribution: Q(dof/2, x/2)."""
    a, z = dof / 2, x / 2
    if z <= 0:
        return 1.0
    log_prefix = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1:  # series for P, then Q = 1 - P
        term = total = 1 / a
        k = a
        for _ in range(1000):
            k += 1
            term *= z / k
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1 - math.exp(log_prefix) * total)
    # continued fraction for Q (modified Lentz)
    tiny = 1e-300
    b = z + 1 - a
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        step = d * c
        h *= step
        if abs(step - 1) < 1e-15:
            break
    return math.exp(log_prefix) * h
