"""Calibrated probabilities and the decision threshold, from scores the model never fit.

Live monitoring estimates precision and recall from the served probabilities, so they
must mean what they say. Held-out scores of the chosen configuration are either
out-of-fold (``FOLDS``-fold cross-fitting on train + validation, each fold's rows scored
by a model fitted on the others with the same imbalance handling; when the budget allows)
or the train-only model's validation scores. On those scores, Platt's sigmoid (on the
logit) and isotonic regression (``MIN_ISOTONIC_ROWS``+ rows) are compared with the raw
scores by cross-validated Brier score; a calibrator is applied only when it lowers the
Brier score by more than ``MIN_GAIN`` (relative). The threshold is then tuned on the same
held-out scores, calibrated as served. Binary tasks only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.model_selection import StratifiedKFold

from jobs.budget import Budget
from jobs.metrics import tune_threshold
from jobs.search import out_of_fold

FOLDS = 3
CV_FOLDS = 5  # for judging a calibrator on the held-out scores
MIN_ISOTONIC_ROWS = 1_000
MIN_POSITIVES = 10
MIN_GAIN = 0.01
METHODS = ("sigmoid", "isotonic")
_EPS = 1e-6
TIE_BREAK = 1e-4


def _logit(scores: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(scores, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p)).reshape(-1, 1)


def fit_calibrator(method: str, scores: np.ndarray, is_pos: np.ndarray) -> Any:
    """A fitted calibrator mapping raw positive-class scores to probabilities."""
    target = np.asarray(is_pos, dtype=int)
    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, target)
    return LogisticRegression(C=1e6, max_iter=1000).fit(_logit(scores), target)


def apply_calibrator(method: str, calibrator: Any, scores: np.ndarray) -> np.ndarray:
    if method == "isotonic":
        raw = np.asarray(scores, dtype=float)
        stepped = np.clip(calibrator.predict(raw), 0.0, 1.0)
        # isotonic steps tie rows the model ranked apart, which costs PR-AUC: a sliver of
        # the raw score keeps the model's order (strictly increasing), not the Brier score
        return (1 - TIE_BREAK) * stepped + TIE_BREAK * raw
    return calibrator.predict_proba(_logit(scores))[:, 1]


class Calibrated:
    """A fitted pipeline whose positive-class probability passes through a calibrator.

    What ``model.joblib`` pickles when calibration helped; serving and the champion
    comparison only call ``predict_proba`` and read ``classes_``.
    """

    def __init__(self, pipeline: Any, method: str, calibrator: Any, positive: Any) -> None:
        self.pipeline = pipeline
        self.method = method
        self.calibrator = calibrator
        self.classes_ = pipeline.classes_
        self.positive_index = list(self.classes_).index(positive)

    def predict_proba(self, x: Any) -> np.ndarray:
        raw = self.pipeline.predict_proba(x)[:, self.positive_index]
        p = apply_calibrator(self.method, self.calibrator, raw)
        out = np.empty((len(p), 2))
        out[:, self.positive_index] = p
        out[:, 1 - self.positive_index] = 1 - p
        return out

    def predict(self, x: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]


def pipeline_of(model: Any) -> Any:
    """The scikit-learn pipeline inside ``model`` (itself when not calibrated)."""
    return model.pipeline if isinstance(model, Calibrated) else model


def compare(
    scores: np.ndarray, is_pos: np.ndarray, *, seed: int, pinned: str = "auto"
) -> tuple[str, dict[str, float | None]]:
    """The method to apply ("none", "sigmoid", "isotonic") and each one's CV Brier score."""
    is_pos = np.asarray(is_pos, dtype=bool)
    briers: dict[str, float | None] = {"none": float(brier_score_loss(is_pos, scores))}
    positives = int(is_pos.sum())
    folds = min(CV_FOLDS, positives, len(is_pos) - positives)
    for method in METHODS:
        if (
            folds < 2
            or positives < MIN_POSITIVES
            or (method == "isotonic" and len(scores) < MIN_ISOTONIC_ROWS)
        ):
            briers[method] = None
            continue
        predicted = np.empty(len(scores))
        split = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for fit_part, judge_part in split.split(scores.reshape(-1, 1), is_pos):
            fitted = fit_calibrator(method, scores[fit_part], is_pos[fit_part])
            predicted[judge_part] = apply_calibrator(method, fitted, scores[judge_part])
        briers[method] = float(brier_score_loss(is_pos, predicted))
    if pinned != "auto":
        return pinned, briers
    raw = briers["none"] or 0.0
    best = min(
        (m for m in METHODS if briers[m] is not None), key=lambda m: briers[m] or 0.0, default=None
    )
    if best is not None and (briers[best] or 0.0) < raw * (1 - MIN_GAIN):
        return best, briers
    return "none", briers


def settle(
    final: Any,
    best: Any,
    hps: dict[str, Any],
    x: Any,
    y: np.ndarray,
    *,
    val_idx: np.ndarray,
    val_scores: np.ndarray,
    refit_idx: np.ndarray | None,
    refit_seconds: float,
    features: list[str],
    categorical: list[str],
    positive: Any,
    primary: str,
    budget: Budget,
) -> tuple[Any, float, dict[str, Any]]:
    """``(model to serve, threshold, calibration record)`` for a binary task.

    ``final`` is the model that will serve (refit on ``refit_idx`` when not ``None``);
    ``val_scores`` the train-only model's positive-class scores on validation.
    """
    held_idx, scores = val_idx, val_scores
    source = "validation scores of the model fitted on train"
    wants_oof = hps["calibration"] != "none" or hps["threshold-source"] == "auto"
    # each of FOLDS fits sees (FOLDS - 1) / FOLDS of the refit's rows
    oof_seconds = (FOLDS - 1) * refit_seconds * 1.1
    if (
        refit_idx is not None
        and wants_oof
        and budget.affords("cross-fitted calibration", oof_seconds)
    ):
        scores = out_of_fold(
            best, hps, x, y, refit_idx, features, categorical, positive=positive, folds=FOLDS
        )
        held_idx = refit_idx
        source = f"out-of-fold scores, {FOLDS} folds of train + validation"
    is_pos = y[held_idx] == positive
    method, briers = compare(scores, is_pos, seed=hps["seed"], pinned=hps["calibration"])
    model, served = final, scores
    calibrator = None
    if method != "none":
        calibrator = fit_calibrator(method, scores, is_pos)
        model = Calibrated(final, method, calibrator, positive)
        served = apply_calibrator(method, calibrator, scores)
    threshold_from = source
    if hps["threshold-source"] == "validation" and held_idx is not val_idx:
        served = (
            val_scores if calibrator is None else apply_calibrator(method, calibrator, val_scores)
        )
        is_pos, threshold_from = (
            y[val_idx] == positive,
            "validation scores of the model fitted on train",
        )
    threshold, _ = tune_threshold(is_pos, served, primary)
    record = {
        "method": method,
        "calibrated": method != "none",
        "fitted_on": source,
        "rows": len(held_idx),
        "cv_brier": {k: None if v is None else round(v, 6) for k, v in briers.items()},
        "rule": f"applied when it lowers the cross-validated Brier score by > {MIN_GAIN:.0%}",
        "threshold_from": threshold_from,
    }
    return model, float(threshold), record
