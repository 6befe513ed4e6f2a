"""Model selection: candidate families and imbalance handling, searched under a budget.

``model=auto`` (the default) searches three families, each with a small space: histogram
gradient boosting, L2 logistic regression and extremely randomised trees; ``balance=auto``
compares no reweighting, balanced class weights and oversampling inside the same search
(weights can cost ranking quality, so they are a choice, not a default). Each family's
default configuration is fitted first, then random draws from the spaces, until
``max-candidates`` or half of ``max-seconds`` is spent: a candidate whose family's fits
so far say it would overrun is skipped and counted. Every candidate is scored on the
validation split by the primary metric at its own tuned threshold, or, when train +
validation hold at most ``CV_MAX_ROWS`` rows, by 3-fold cross-validation over both (a
few hundred validation rows rank candidates by noise); the test split is not touched here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.utils.class_weight import compute_sample_weight

from jobs import data
from jobs.metrics import compute_metrics, tune_threshold
from jobs.pipeline import build_pipeline, fit_pipeline

FAMILIES = ("gbm", "logreg", "forest")
BALANCES = ("none", "class_weight", "oversample")
# the order defaults are tried in: the likeliest winners first, in case the budget is short
DEFAULTS = (
    ("gbm", "none"),
    ("gbm", "class_weight"),
    ("logreg", "class_weight"),
    ("forest", "none"),
    ("logreg", "none"),
    ("forest", "class_weight"),
    ("gbm", "oversample"),
)
SEARCH_SHARE = 0.5  # of max-seconds; the rest is refit, evaluation, champion, report
CV_MAX_ROWS = 2000  # train + validation at most this: candidates are cross-validated
CV_FOLDS = 3


@dataclass(frozen=True)
class Candidate:
    family: str
    balance: str
    params: dict[str, Any] = field(default_factory=dict)

    def hps(self, base: dict[str, Any]) -> dict[str, Any]:
        out = {**base, **self.params, "model": self.family, "balance": self.balance}
        if out["max-iter"] is None:
            out["max-iter"] = 1000 if self.family == "logreg" else 200
        return out


def _draw(family: str, rng: np.random.Generator) -> dict[str, Any]:
    if family == "gbm":
        return {
            "learning-rate": round(float(math.exp(rng.uniform(math.log(0.03), math.log(0.3)))), 4),
            "max-leaf-nodes": int(rng.choice([15, 31, 63])),
            "min-samples-leaf": int(rng.choice([10, 20, 50, 100])),
            "l2-regularization": float(rng.choice([0.0, 0.1, 1.0])),
        }
    if family == "logreg":
        return {"c": round(float(math.exp(rng.uniform(math.log(0.01), math.log(100.0)))), 5)}
    return {
        "forest-min-samples-leaf": int(rng.choice([2, 5, 10, 20])),
        "max-features": float(rng.choice([0.3, 0.5, 0.8])),
    }


def candidates(hps: dict[str, Any]) -> Iterator[Candidate]:
    """What the search tries, in order: a pinned model or balance narrows it."""
    families = FAMILIES if hps["model"] == "auto" else (hps["model"],)
    balances = BALANCES if hps["balance"] == "auto" else (hps["balance"],)
    if len(families) == 1 and len(balances) == 1:  # everything pinned: exactly that model
        yield Candidate(families[0], balances[0])
        return
    seen = set()
    for family, balance in DEFAULTS:
        if family in families and balance in balances:
            seen.add((family, balance))
            yield Candidate(family, balance)
    for family in families:  # pinned combinations outside DEFAULTS still get their default
        for balance in balances:
            if (family, balance) not in seen:
                yield Candidate(family, balance)
    rng = np.random.default_rng(hps["seed"])
    while True:
        family = str(rng.choice(families))
        yield Candidate(family, str(rng.choice(balances)), _draw(family, rng))


def fit_rows(
    balance: str, idx: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows to fit on and their weights, for one way of handling imbalance."""
    if balance == "oversample":
        return data.oversample(idx, y, seed), None
    if balance == "class_weight":
        return idx, compute_sample_weight("balanced", y[idx])
    return idx, None


def take(x: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a feature array or frame."""
    return x.iloc[idx] if isinstance(x, pd.DataFrame) else x[idx]


def fit_candidate(
    candidate: Candidate,
    base: dict[str, Any],
    x: Any,
    y: np.ndarray,
    idx: np.ndarray,
    features: list[str],
    categorical: list[str],
) -> tuple[Any, list[str], int]:
    """``(fitted pipeline, warnings, rows fitted)`` for one candidate on rows ``idx``."""
    hps = candidate.hps(base)
    rows, weights = fit_rows(candidate.balance, idx, y, hps["seed"])
    pipeline = build_pipeline(hps, features, categorical)
    notes = fit_pipeline(pipeline, take(x, rows), y[rows], weights)
    return pipeline, notes, len(rows)


def out_of_fold(
    candidate: Candidate,
    base: dict[str, Any],
    x: Any,
    y: np.ndarray,
    idx: np.ndarray,
    features: list[str],
    categorical: list[str],
    *,
    positive: Any,
    folds: int,
) -> np.ndarray:
    """Positive-class scores of rows ``idx``, each from a model fitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold

    scores = np.empty(len(idx))
    split = StratifiedKFold(folds, shuffle=True, random_state=base["seed"])
    for fit_part, score_part in split.split(np.zeros(len(idx)), y[idx]):
        pipeline, _, _ = fit_candidate(candidate, base, x, y, idx[fit_part], features, categorical)
        pos = list(pipeline.classes_).index(positive)
        scores[score_part] = pipeline.predict_proba(take(x, idx[score_part]))[:, pos]
    return scores


@dataclass
class Searched:
    best: Candidate
    pipeline: Any  # the best candidate fitted on train only
    warnings: list[str]
    n_fit: int
    record: dict[str, Any]  # evaluation.json["selection"]


def _score(
    pipeline: Any, x_val: Any, y_val: np.ndarray, primary: str, positive: Any, labels: list[Any]
) -> tuple[float, float | None]:
    proba = pipeline.predict_proba(x_val)
    if positive is not None:
        pos = list(pipeline.classes_).index(positive)
        _, value = tune_threshold(y_val == positive, proba[:, pos], primary)
        pr_auc = float(average_precision_score(y_val == positive, proba[:, pos]))
        return (float(value) if math.isfinite(value) else float("-inf")), pr_auc
    predicted = pipeline.classes_[proba.argmax(axis=1)]
    scored = compute_metrics(y_val, predicted, proba, labels, None, labels[0])[primary]
    return (float(scored) if scored is not None else float("-inf")), None


def _cv_score(
    candidate: Candidate,
    hps: dict[str, Any],
    x: Any,
    y: np.ndarray,
    pool: np.ndarray,
    features: list[str],
    categorical: list[str],
    primary: str,
    positive: Any,
) -> tuple[float, float]:
    """The primary metric at the best threshold, and PR-AUC, of out-of-fold scores."""
    scores = out_of_fold(
        candidate, hps, x, y, pool, features, categorical, positive=positive, folds=CV_FOLDS
    )
    is_pos = y[pool] == positive
    _, value = tune_threshold(is_pos, scores, primary)
    pr_auc = float(average_precision_score(is_pos, scores))
    return (float(value) if math.isfinite(value) else float("-inf")), pr_auc


def search(
    hps: dict[str, Any],
    x: Any,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    features: list[str],
    categorical: list[str],
    *,
    primary: str,
    positive: Any,
    labels: list[Any],
) -> Searched:
    """Fit the candidates on train, score each on validation, keep the best.

    ``labels`` are the classes in the fitted pipelines' ``classes_`` order.
    """
    budget = hps["max-seconds"] * SEARCH_SHARE
    start = time.perf_counter()
    x_val, y_val = take(x, val_idx), y[val_idx]
    # small data: a validation split of a few hundred rows ranks candidates by noise
    pool = None
    if positive is not None and len(train_idx) + len(val_idx) <= CV_MAX_ROWS:
        pool = np.sort(np.concatenate([train_idx, val_idx]))
    tried: list[dict[str, Any]] = []
    seconds_of: dict[str, list[float]] = {}
    skipped: list[str] = []
    best: tuple[tuple[float, float], int, Any, list[str], int] | None = None
    for candidate in candidates(hps):
        if len(tried) + len(skipped) >= hps["max-candidates"]:
            break
        spent = time.perf_counter() - start
        past = seconds_of.get(candidate.family) or [v for vs in seconds_of.values() for v in vs]
        expected = float(np.mean(past)) if past else 0.0
        if tried and spent + expected > budget:
            skipped.append(f"{candidate.family}/{candidate.balance}")
            if spent > budget:
                break
            continue
        clock = time.perf_counter()
        if pool is None:
            pipeline, notes, n_fit = fit_candidate(
                candidate, hps, x, y, train_idx, features, categorical
            )
            score, pr_auc = _score(pipeline, x_val, y_val, primary, positive, labels)
        else:
            pipeline, notes, n_fit = None, [], 0  # fitted on train once chosen
            score, pr_auc = _cv_score(
                candidate, hps, x, y, pool, features, categorical, primary, positive
            )
        fit_seconds = time.perf_counter() - clock
        seconds_of.setdefault(candidate.family, []).append(fit_seconds)
        tried.append(
            {
                "family": candidate.family,
                "balance": candidate.balance,
                "params": candidate.params,
                "validation_score": round(score, 6) if math.isfinite(score) else None,
                "validation_pr_auc": None if pr_auc is None else round(pr_auc, 6),
                "fit_seconds": round(fit_seconds, 3),
            }
        )
        key = (score, pr_auc if pr_auc is not None else 0.0)
        if best is None or key > best[0]:
            best = (key, len(tried) - 1, pipeline, notes, n_fit)
    assert best is not None  # the first candidate is always fitted
    _, winner, pipeline, notes, n_fit = best
    chosen = tried[winner]
    if pool is not None:
        winner_candidate = Candidate(chosen["family"], chosen["balance"], dict(chosen["params"]))
        pipeline, notes, n_fit = fit_candidate(
            winner_candidate, hps, x, y, train_idx, features, categorical
        )
    return Searched(
        best=Candidate(chosen["family"], chosen["balance"], dict(chosen["params"])),
        pipeline=pipeline,
        warnings=notes,
        n_fit=n_fit,
        record={
            "metric": primary,
            "scored_on": (
                "validation (threshold tuned per candidate)"
                if pool is None
                else f"{CV_FOLDS}-fold cross-validation of train + validation "
                f"(<= {CV_MAX_ROWS} rows; threshold tuned on the out-of-fold scores)"
            ),
            "budget_seconds": budget,
            "seconds": round(time.perf_counter() - start, 3),
            "candidates": tried,
            "winner": winner,
            "skipped": skipped,
        },
    )
