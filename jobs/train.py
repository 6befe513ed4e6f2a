"""Training entry point: validate -> clean -> split -> balance -> fit -> evaluate -> write.

Runs the SageMaker training contract unchanged inside the scikit-learn
framework container, on the EC2 training host and locally::

    python -m jobs.train --train data/ --model-dir out/model --output-data-dir out/data

Inputs come from ``SM_CHANNEL_TRAIN`` (and optional ``SM_CHANNEL_VALIDATION`` /
``SM_CHANNEL_TEST``, and ``SM_CHANNEL_CHAMPION``: the champion's model.tar.gz, scored on
the same test split as the new model); hyperparameters from
``/opt/ml/input/config/hyperparameters.json``,
``SM_HPS`` and ``--kebab-case`` flags, later sources winning. On bad data the job
exits with 1 and writes one line of reason to ``$SM_OUTPUT_DIR/failure``.
"""

# Python 3.9 runs this in the SageMaker scikit-learn 1.2-1 container: no zip(strict=), no
# datetime.UTC.
# ruff: noqa: UP017
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `python jobs/train.py`: make `jobs` importable, not its files
    _here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == _here:
        sys.path[0] = str(_here.parent)
    else:
        sys.path.insert(0, str(_here.parent))

import argparse
import json
import logging
import time
import traceback
from datetime import datetime, timezone
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn

from jobs import data
from jobs.baseline import baseline_document
from jobs.budget import Budget
from jobs.calibrate import pipeline_of, settle
from jobs.champion import evaluate_champion, try_load_champion
from jobs.config import HyperparameterError, parse_args
from jobs.contract import (
    BASELINE_FILE,
    EVALUATION_FILE,
    MODEL_FILE,
    PROFILE_FILE,
    REPORT_FILE,
    TEST_SPLIT_FILE,
    write_failure,
)
from jobs.data import DataError
from jobs.diagnosis import calibration, diagnose
from jobs.fairness import audit
from jobs.guard import check_new_data
from jobs.inference import sha256_file
from jobs.inputs import load_inputs
from jobs.metrics import (
    compute_metrics,
    confusion,
    majority_baseline,
    minority_label,
    tune_threshold,
)
from jobs.reference import score_reference
from jobs.report import render_report
from jobs.search import fit_candidate, search, take
from jobs.understand import understand

log = logging.getLogger("jobs.train")


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def train(args: argparse.Namespace, hps: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Run the whole job; returns the evaluation written to ``evaluation.json``."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    budget = Budget(hps["max-seconds"])

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now
        log.info("%s done in %.2f s", stage, timings[stage])

    target = hps["target"]
    inputs = load_inputs(args, hps)
    checked, parts, sensitive, frame = inputs.checked, inputs.parts, inputs.sensitive, inputs.frame
    x, y = inputs.x, inputs.y
    train_idx, val_idx, test_idx = inputs.train_idx, inputs.val_idx, inputs.test_idx
    reference, reference_error = inputs.reference, inputs.reference_error
    summary, profile = checked.summary, inputs.profile
    features, categorical = checked.features, checked.categorical
    lap("load_check_split")

    # the classes every fitted pipeline will have (classes_ is np.unique of its y)
    train_labels, train_counts = np.unique(y[train_idx], return_counts=True)
    labels = [_native(c) for c in train_labels.tolist()]
    counts = [int(v) for v in train_counts]
    binary = len(labels) == 2
    minority = minority_label(labels, counts)
    positive = minority if binary else None
    primary = hps["primary-metric"] or ("f1" if binary else "f1_macro")
    hps["primary-metric"] = primary

    searched = search(
        hps,
        x,
        y,
        train_idx,
        val_idx,
        features,
        categorical,
        primary=primary,
        positive=positive,
        labels=labels,
    )
    hps = searched.best.hps(hps)  # what was chosen is what evaluation.json records
    pipeline, fit_warnings, n_fit = searched.pipeline, searched.warnings, searched.n_fit
    fit_seconds = searched.record["candidates"][searched.record["winner"]]["fit_seconds"]
    lap("search")

    y_val, y_test = y[val_idx], y[test_idx]
    tick = time.perf_counter()
    proba_val = pipeline.predict_proba(take(x, val_idx))
    per_row = (time.perf_counter() - tick) / max(1, len(val_idx))
    classes = pipeline.classes_  # same dtype as y, so sklearn's label checks agree
    val_threshold: float | None = None
    pos = 0
    if binary:
        pos = labels.index(positive)
        val_threshold, _ = tune_threshold(y_val == positive, proba_val[:, pos], primary)

    def decider(cut: float | None) -> Any:
        def decide(proba: np.ndarray) -> np.ndarray:
            if cut is None:
                return classes[proba.argmax(axis=1)]
            return classes[np.where(proba[:, pos] >= cut, pos, 1 - pos)]

        return decide

    # the train-only model at its validation threshold: what the diagnosis compares
    decide = decider(val_threshold)
    val_metrics = compute_metrics(y_val, decide(proba_val), proba_val, labels, positive, minority)
    proba_train = pipeline.predict_proba(take(x, train_idx))
    train_metrics = compute_metrics(
        y[train_idx], decide(proba_train), proba_train, labels, positive, minority
    )
    final: Any = pipeline
    refit_idx: np.ndarray | None = None
    refit_seconds = fit_seconds
    n_refit = len(train_idx) + len(val_idx)
    expected_refit = fit_seconds * n_refit / max(1, len(train_idx))
    if hps["refit"] == "true" and budget.affords("refit", expected_refit):
        # the chosen configuration, refit on every row but the test split's
        refit_idx = np.concatenate([train_idx, val_idx])
        tick = time.perf_counter()
        final, refit_warnings, n_fit = fit_candidate(
            searched.best, hps, x, y, refit_idx, features, categorical
        )
        refit_seconds = time.perf_counter() - tick
        fit_warnings = fit_warnings + [w for w in refit_warnings if w not in fit_warnings]
        lap("refit")
    threshold: float | None = val_threshold
    settled: dict[str, Any] = {}
    if binary:
        final, threshold, settled = settle(
            final,
            searched.best,
            hps,
            x,
            y,
            val_idx=val_idx,
            val_scores=proba_val[:, pos],
            refit_idx=refit_idx,
            refit_seconds=refit_seconds,
            features=features,
            categorical=categorical,
            positive=positive,
            primary=primary,
            budget=budget,
        )
        lap("calibrate")
    decide = decider(threshold)
    proba_test = final.predict_proba(take(x, test_idx))

    def predict(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        proba = final.predict_proba(data.prepare_features(rows, features, categorical))
        return decide(proba), proba

    pred_test = decide(proba_test)
    metrics = compute_metrics(y_test, pred_test, proba_test, labels, positive, minority)
    baseline = majority_baseline(y_test, classes, counts, labels, positive, minority)
    cm = confusion(y_test, pred_test, labels)
    understanding = understand(
        pipeline=pipeline,
        best=searched.best,
        hps=hps,
        x=x,
        y=y,
        train_idx=train_idx,
        val_idx=val_idx,
        cleaned=checked.frame,
        features=features,
        categorical=categorical,
        positive=positive,
        budget=budget,
        fit_seconds=fit_seconds,
        predict_seconds_per_row=per_row,
    )
    diagnosis = diagnose(train_metrics, val_metrics, metrics, baseline, primary)
    diagnosis.update(understanding.pop("diagnosis_extras"))
    if binary:
        served = calibration(y_test == positive, proba_test[:, pos])
        if settled.get("calibrated"):
            raw = pipeline_of(final).predict_proba(take(x, test_idx))[:, pos]
            served["uncalibrated"] = calibration(y_test == positive, raw)
        understanding["calibration"] = {**settled, **served}
    if sensitive and binary:
        understanding["fairness"] = audit(
            frame.iloc[test_idx][sensitive],
            y_test,
            pred_test,
            positive=positive,
            columns=sensitive,
            min_rows=hps["min-group-rows"],
        )
    lap("evaluate")

    champion: dict[str, Any] | None = None
    held_champion: dict[str, Any] = {}
    guard: dict[str, Any] | None = None
    scored_as = {
        "target": target,
        "labels": labels,
        "classes": classes,
        "positive": positive,
        "minority": minority,
        "primary": primary,
    }
    if args.champion:
        held_champion = try_load_champion(args.champion)
        why = held_champion.get("error")
        guard = (
            {"status": "error", "reason": f"the champion cannot be loaded: {why}"}
            if why
            else check_new_data(args.train, parts, checked, held_champion, scored_as, hps)
        )
        log.info("data guard: %s", guard.get("status"))
        # the champion on the very rows the challenger is judged on (never fails the job)
        champion = evaluate_champion(
            held_champion,
            frame.iloc[test_idx],
            y_test,
            classes,
            positive,
            minority,
            package=hps.get("champion-package"),
        )
        if champion.get("error"):
            log.warning("champion not compared: %s", champion["error"])
        lap("champion")
    reference_section = reference_error
    if reference is not None:
        reference_section = score_reference(
            reference[0],
            reference[1],
            reference[2],
            checked=checked,
            predict=predict,
            challenger=scored_as,
            champion_model=held_champion.get("model"),
        )
        lap("reference")

    model_dir = Path(args.model_dir)
    out_dir = Path(args.output_data_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    artifact = {
        "pipeline": final,
        "features": features,
        "categorical": categorical,
        "categorical_numeric": checked.categorical_numeric,
        "labels": labels,
        "threshold": threshold,
        "positive_label": positive,
        "target": target,
        "task": "binary" if binary else "multiclass",
        "sklearn_version": sklearn.__version__,
    }
    joblib.dump(artifact, model_dir / MODEL_FILE)
    digest = sha256_file(model_dir / MODEL_FILE)
    (model_dir / PROFILE_FILE).write_text(json.dumps(profile, allow_nan=False))
    # the test split travels in output.tar.gz: promote may freeze it as the reference set
    audited = [c for c in sensitive if c not in features]  # so the audit can be redone
    frame.iloc[test_idx][[*features, *audited, target]].to_csv(
        out_dir / TEST_SPLIT_FILE, index=False
    )

    all_counts = pd.Series(y).value_counts()
    evaluation: dict[str, Any] = {
        "task": "binary" if binary else "multiclass",
        "labels": labels,
        "positive_label": positive,
        "target": target,
        "n_train": len(train_idx),
        "n_validation": len(val_idx),
        "n_test": len(test_idx),
        "n_fit": n_fit,
        "refit": refit_idx is not None,
        "selection": searched.record,
        "diagnosis": diagnosis,
        **understanding,
        "class_counts": {str(label): int(all_counts.get(label, 0)) for label in labels},
        "primary_metric": primary,
        "threshold": threshold,
        "metrics": metrics,
        "validation_metrics": val_metrics,
        "confusion_matrix": cm,
        "baseline": baseline,
        **({"champion": champion} if champion is not None else {}),
        **({"data_guard": guard} if guard is not None else {}),
        **({"reference": reference_section} if reference_section is not None else {}),
        "data_checks": summary,
        "features": features,
        "categorical": categorical,
        "model": {"file": MODEL_FILE, "sha256": digest},
        "model_type": hps["model"],
        "hyperparameters": hps,
        "warnings": notes + fit_warnings,
        "timings": timings,
        "budget": budget.record(),
        "sklearn_version": sklearn.__version__,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    drift = baseline_document(
        frame.iloc[train_idx], target, features, categorical, bins=hps["baseline-bins"]
    )
    (model_dir / BASELINE_FILE).write_text(json.dumps(drift, indent=1, allow_nan=False))
    lap("write_model")
    page, _ = render_report(evaluation, y_test, proba_test)
    (out_dir / REPORT_FILE).write_text(page, encoding="utf-8")
    lap("report")
    evaluation["timings"] = timings
    evaluation["budget"] = budget.record()
    (model_dir / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=1, allow_nan=False))
    for name, value in metrics.items():  # one line each, for SageMaker metric regexes
        print(f"metric test_{name}={value if value is not None else 'nan'};")
    for name, value in val_metrics.items():  # a tuning job's objective: never the test split
        if isinstance(value, int | float) or value is None:
            print(f"metric validation_{name}={value if value is not None else 'nan'};")
    print(f"metric baseline_{primary}={baseline.get(primary)};")
    if champion is not None and not champion.get("error"):
        print(f"metric champion_{primary}={champion['metrics'].get(primary)};")
    return evaluation


def main(argv: list[str] | None = None) -> int:
    """Run the training job; 0 on success, 1 (and a failure file) otherwise."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    output_dir: str | None = None
    try:
        args, hps, notes = parse_args(argv, description=__doc__)
        output_dir = args.output_dir
        for note in notes:
            log.warning(note)
        train(args, hps, notes)
    except (DataError, HyperparameterError) as exc:
        write_failure(str(exc), output_dir)
        return 1
    except Exception as exc:
        traceback.print_exc()
        write_failure(f"unexpected error: {type(exc).__name__}: {exc}", output_dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
