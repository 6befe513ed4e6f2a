"""The data guard: are the new rows sane next to what the champion learned from?

A challenger's test split comes from its own data, so garbage labels make it look good
there. The guard looks at the rows the champion never saw (files missing from its
``profile.json``) and reports, per rule, a value and the job's verdict
(``evaluation.json["data_guard"]``, docs/contracts.md). promote re-judges each value with
the stack's thresholds; a tripped guard holds the model for a person, it never fails the
job. ``info`` rules (feature drift, out-of-range values) are reported, never tripped:
drift is a reason to retrain, not to refuse.
"""

# Python 3.9 in the SageMaker scikit-learn container: no zip(strict=)
# ruff: noqa: B905
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs import data
from jobs.champion import ChampionError, champion_metrics
from jobs.inference import category_value
from jobs.profile import file_digest, known_hashes, row_hashes

_EPS = 1e-4  # proportions floor in PSI: an absent class is rare, not impossible
MIN_EXPECTED = 5  # a class expected this often in the new rows must appear in them
MIN_CHAMPION_MCC = 0.1  # below it the champion's agreement says nothing about labels
LEARNABILITY_ROWS = 20_000  # enough to tell signal from noise in a few seconds
LEARNABILITY_MIN_CLASS = 10
FEATURE_PSI_INFO = 0.25
OUT_OF_RANGE_INFO = 0.05


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two proportion vectors over the same bins."""
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def _rule(
    rule: str,
    value: float | None,
    threshold: float,
    kind: str,
    detail: str,
    severity: str = "guard",
) -> dict[str, Any]:
    if value is None or not math.isfinite(value):
        held = severity == "info"
        value = None
    else:
        held = value <= threshold + 1e-9 if kind == "max" else value >= threshold
    return {
        "rule": rule,
        "value": None if value is None else round(float(value), 6),
        "threshold": threshold,
        "held": held,
        "severity": severity,
        "detail": detail,
    }


def new_parts(
    root: str | Path,
    parts: Sequence[tuple[Path, pd.DataFrame]],
    profile: Mapping[str, Any],
) -> list[tuple[str, pd.DataFrame]]:
    """The files the champion did not train on: a name it lacks, or other bytes."""
    seen = {(f.get("name"), f.get("sha256")) for f in profile.get("files") or []}
    base = Path(root)
    out = []
    for path, frame in parts:
        name = path.relative_to(base).as_posix()
        if (name, file_digest(path)) not in seen:
            out.append((name, frame))
    return out


def _schema(checked: data.CheckedData, model: Mapping[str, Any]) -> dict[str, Any]:
    theirs = [str(f) for f in model.get("features") or []]
    their_cat = {str(f) for f in model.get("categorical") or []}
    ours = checked.features
    changes = sorted(set(theirs) ^ set(ours))
    changes += [f for f in ours if f in theirs and (f in checked.categorical) != (f in their_cat)]
    if str(model.get("target")) not in ("None", checked.target):
        changes.append(f"target {model.get('target')} -> {checked.target}")
    shown = ", ".join(changes[:8]) + (" ..." if len(changes) > 8 else "")
    return _rule(
        "schema",
        float(len(changes)),
        0.0,
        "max",
        f"columns added, removed or retyped since the champion: {shown}" if changes else "",
    )


def _labels(new: pd.DataFrame, target: str, counts: Mapping[str, int], hps: Mapping[str, Any]):
    old = {str(k): int(v) for k, v in counts.items()}
    now = new[target].astype(str).value_counts()
    keys = sorted(set(old) | set(now.index))
    total_old, total_new = max(sum(old.values()), 1), max(int(now.sum()), 1)
    expected = [old.get(k, 0) / total_old for k in keys]
    actual = [int(now.get(k, 0)) / total_new for k in keys]
    shift = psi(expected, actual)
    share = ", ".join(f"{k} {e:.3f} -> {a:.3f}" for k, e, a in zip(keys, expected, actual))
    missing = [
        k
        for k, e in zip(keys, expected)
        if e * total_new >= MIN_EXPECTED and int(now.get(k, 0)) == 0
    ]
    return [
        _rule("label-shift", shift, hps["max-label-shift"], "max", f"label shares {share}"),
        _rule(
            "class-coverage",
            float(len(missing)),
            0.0,
            "max",
            f"class(es) {', '.join(missing)} expected in the new rows but absent"
            if missing
            else "",
        ),
    ]


def _agreement(
    new: pd.DataFrame,
    model: Mapping[str, Any],
    own: Mapping[str, Any] | None,
    challenger: Mapping[str, Any],
    threshold: float,
) -> dict[str, Any]:
    """The champion's MCC on the new labels, as a share of its MCC on its own test split."""
    own_mcc = ((own or {}).get("metrics") or {}).get("mcc")
    if not isinstance(own_mcc, int | float) or own_mcc < MIN_CHAMPION_MCC:
        return {
            **_rule("label-agreement", None, threshold, "min", ""),
            "held": True,
            "detail": f"the champion's own test MCC is {own_mcc}: too weak to judge labels by",
        }
    target = challenger["target"]
    try:
        scored = champion_metrics(
            dict(model),
            new,
            new[target].to_numpy(),
            challenger["classes"],
            challenger["positive"],
            challenger["minority"],
        )
    except ChampionError as exc:
        return _rule("label-agreement", None, threshold, "min", f"cannot apply the champion: {exc}")
    mcc = scored["metrics"].get("mcc")
    if not isinstance(mcc, int | float) or not math.isfinite(mcc):
        return _rule("label-agreement", None, threshold, "min", "MCC undefined on the new rows")
    return _rule(
        "label-agreement",
        mcc / own_mcc,
        threshold,
        "min",
        f"the champion's MCC on the new labels {mcc:.3f} vs {own_mcc:.3f} on its own test split",
    )


def _learnability(
    new: pd.DataFrame,
    checked: data.CheckedData,
    own: Mapping[str, Any] | None,
    hps: Mapping[str, Any],
) -> dict[str, Any]:
    """How well the new labels can be learned from the new rows' own features.

    Cross-validated MCC of a small boosting model fit on the new rows alone, as a share of
    the champion's MCC on its own test split. Shuffled or coin-flip labels carry no
    signal and score near 0; real labels of shifted data still can be learned, where a
    stale champion may agree with them poorly.
    """
    threshold = float(hps["min-label-learnability"])
    own_mcc = ((own or {}).get("metrics") or {}).get("mcc")
    if not isinstance(own_mcc, int | float) or own_mcc < MIN_CHAMPION_MCC:
        return {
            **_rule("label-learnability", None, threshold, "min", ""),
            "held": True,
            "detail": f"the champion's own test MCC is {own_mcc}: no skill to compare with",
        }
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import matthews_corrcoef
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rows = new.sample(n=LEARNABILITY_ROWS, random_state=0) if len(new) > LEARNABILITY_ROWS else new
    y = rows[checked.target].astype(str).to_numpy()
    fewest = int(pd.Series(y).value_counts().min()) if len(set(y)) > 1 else 0
    if fewest < LEARNABILITY_MIN_CLASS:
        return {
            **_rule("label-learnability", None, threshold, "min", ""),
            "held": True,
            "detail": f"the new rows' rarest class has {fewest} rows: too few to learn from",
        }
    # category codes are enough to tell signal from noise
    table = rows[checked.features].apply(
        lambda col: pd.factorize(col)[0] if col.name in checked.categorical else col
    )
    x = table.to_numpy(dtype=np.float64, na_value=np.nan)
    model = HistGradientBoostingClassifier(max_iter=60, class_weight="balanced", random_state=0)
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    predicted = cross_val_predict(model, x, y, cv=folds)
    mcc = float(matthews_corrcoef(y, predicted))
    return _rule(
        "label-learnability",
        mcc / own_mcc,
        threshold,
        "min",
        f"cross-validated MCC on the new rows alone {mcc:.3f} vs the champion's {own_mcc:.3f}",
    )


def _binned(column: pd.Series, spec: Mapping[str, Any]) -> list[float] | None:
    total = max(len(column), 1)
    if spec.get("type") == "categorical":
        values = column.map(category_value, na_action="ignore")
        cats = [str(c) for c in spec.get("categories") or []]
        counts = values.astype(str).where(values.notna()).value_counts()
        inside = [int(counts.get(c, 0)) for c in cats]
        missing = int(values.isna().sum())
        return [
            *(n / total for n in inside),
            (total - sum(inside) - missing) / total,
            missing / total,
        ]
    edges = spec.get("edges") or []
    inner = np.array([float(e) for e in edges[1:-1]], dtype=float)
    x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    finite = x[np.isfinite(x)]
    counts_arr = np.bincount(np.searchsorted(inner, finite, side="right"), minlength=len(inner) + 1)
    return [*(int(n) / total for n in counts_arr), (total - len(finite)) / total]


def _expected(spec: Mapping[str, Any]) -> list[float]:
    if spec.get("type") == "categorical":
        return [*spec.get("proportions", []), spec.get("other", 0.0), spec.get("missing", 0.0)]
    return [*spec.get("proportions", []), spec.get("missing", 0.0)]


def _drift(new: pd.DataFrame, baseline: Mapping[str, Any] | None, profile: Mapping[str, Any]):
    rules = []
    specs = (baseline or {}).get("features") or {}
    scores = {}
    for name, spec in specs.items():
        if name in new.columns:
            actual = _binned(new[name], spec)
            expected = _expected(spec)
            if actual is not None and len(actual) == len(expected):
                scores[name] = psi(expected, actual)
    if scores:
        top = sorted(scores.items(), key=lambda kv: -kv[1])[:3]
        detail = "largest: " + ", ".join(f"{k} {v:.3f}" for k, v in top)
        rules.append(
            _rule("feature-psi", max(scores.values()), FEATURE_PSI_INFO, "max", detail, "info")
        )
    outside, cells, worst = 0, 0, {}
    for name, bounds in (profile.get("ranges") or {}).items():
        if name in new.columns and isinstance(bounds, list) and len(bounds) == 2:
            x = pd.to_numeric(new[name], errors="coerce").to_numpy(dtype=np.float64)
            x = x[np.isfinite(x)]
            out = int(((x < bounds[0]) | (x > bounds[1])).sum())
            outside, cells = outside + out, cells + len(x)
            if out:
                worst[name] = out
    if cells:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(worst.items(), key=lambda kv: -kv[1])[:3])
        rules.append(
            _rule(
                "out-of-range",
                outside / cells,
                OUT_OF_RANGE_INFO,
                "max",
                f"values outside the champion's training range: {shown}" if shown else "",
                "info",
            )
        )
    return rules


def check_new_data(
    root: str | Path,
    parts: Sequence[tuple[Path, pd.DataFrame]],
    checked: data.CheckedData,
    champion: Mapping[str, Any],
    challenger: Mapping[str, Any],
    hps: Mapping[str, Any],
) -> dict[str, Any]:
    """``evaluation.json["data_guard"]``. ``champion``: the loaded champion's ``model``,
    ``own`` (its evaluation.json), ``profile`` and ``baseline``; ``challenger``: its
    ``target``, ``classes``, ``positive`` and ``minority``. Never raises."""
    try:
        return _check(root, parts, checked, champion, challenger, hps)
    except Exception as exc:  # the guard must never fail the job; an error trips it
        return {"status": "error", "reason": f"{type(exc).__name__}: {exc}"[:300]}


def _check(root, parts, checked, champion, challenger, hps) -> dict[str, Any]:
    profile = champion.get("profile")
    if not isinstance(profile, Mapping):
        return {
            "status": "skipped",
            "reason": "the champion has no profile.json (trained before the data guard)",
        }
    fresh = new_parts(root, parts, profile)
    names = [name for name, _ in fresh]
    if not fresh:
        return {"status": "skipped", "reason": "no data files the champion did not train on"}
    target = checked.target
    columns = [*checked.features, target]
    raw = pd.concat([frame for _, frame in fresh], ignore_index=True)
    raw = raw.loc[raw[target].notna(), [c for c in columns if c in raw.columns]]
    if len(raw) < int(hps["guard-min-rows"]):
        return {
            "status": "skipped",
            "reason": f"{len(raw)} new labelled rows; the guard judges {hps['guard-min-rows']}+",
            "new_files": names,
            "new_rows": len(raw),
        }
    model = champion["model"]
    hashes = row_hashes(raw, columns, checked.categorical)
    seen = np.isin(hashes, known_hashes(profile))
    repeated = pd.Series(hashes).duplicated().to_numpy()
    share = float((seen | repeated).mean())
    sampled = "" if profile.get("row_hashes_complete", True) else " (of a sample of its rows)"
    checks = [
        _schema(checked, model),
        _rule(
            "duplicates",
            share,
            hps["max-duplicate-share"],
            "max",
            f"{int(seen.sum())} of {len(raw)} new rows were in the champion's training data"
            f"{sampled}, {int((repeated & ~seen).sum())} repeat other new rows",
        ),
    ]
    new = data.conform(raw, checked, "new data")
    checks += _labels(new, target, profile.get("label_counts") or {}, hps)
    checks.append(
        _agreement(new, model, champion.get("own"), challenger, hps["min-label-agreement"])
    )
    checks.append(_learnability(new, checked, champion.get("own"), hps))
    checks += _drift(new, champion.get("baseline"), profile)
    return {
        "status": "checked",
        "new_files": names,
        "new_rows": len(raw),
        "checks": checks,
        "held": all(r["held"] for r in checks if r["severity"] == "guard"),
    }
