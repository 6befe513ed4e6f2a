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
from jobs.eda import profile_features
from jobs.explain import importance
from jobs.fairness import audit
from jobs.guard import check_new_data
from jobs.inference import sha256_file
from jobs.metrics import (
    compute_metrics,
    confusion,
    majority_baseline,
    minority_label,
    tune_threshold,
)
from jobs.profile import file_records, profile_document
from jobs.reference import exclude, load_reference, score_reference
from jobs.report import render_report
from jobs.search import fit_candidate, search, take

log = logging.getLogger("jobs.train")


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def train(args: argparse.Namespace, hps: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    """Run the whole job; returns the evaluation written to ``evaluation.json``."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[stage] = round(now - clock, 3)
        clock = now
        log.info("%s done in %.2f s", stage, timings[stage])

    target = hps["target"]
    parts = data.load_parts(args.train)
    raw = data.join_parts(parts)
    sensitive = [c.strip() for c in hps["sensitive-features"].split(",") if c.strip()]
    absent = [c for c in sensitive if c not in raw.columns]
    if absent:
        raise DataError(
            f"sensitive feature(s) {', '.join(absent)} not found; columns are: "
            f"{', '.join(map(str, raw.columns[:30]))}"
        )
    declared = [c.strip() for c in hps["categorical"].split(",") if c.strip()]
    checked = data.check_and_clean(
        raw,
        target=target,
        categorical=",".join(dict.fromkeys([*declared, *sensitive])),
        drop=hps["drop"],
        min_rows=hps["min-rows"],
        min_class_count=hps["min-class-count"],
    )
    del raw
    if sensitive and hps["use-sensitive-features"] != "true":
        # audited, not learned from: the frame keeps the columns, the model never sees them
        checked.features = [f for f in checked.features if f not in sensitive]
        checked.categorical = [f for f in checked.categorical if f not in sensitive]
        checked.categorical_numeric = [f for f in checked.categorical_numeric if f not in sensitive]
    elif sensitive:  # learned from as declared: numeric unless listed as categorical
        checked.categorical = [f for f in checked.categorical if f in declared]
        checked.categorical_numeric = [
            f for f in checked.categorical_numeric if f in checked.categorical
        ]
    summary = checked.summary
    reference: tuple[pd.DataFrame, str, str] | None = None
    reference_error: dict[str, Any] | None = None
    if args.reference:
        try:
            reference = load_reference(args.reference, checked)
            ref_frame = reference[0]
            # never learn from the rows every model is judged on
            summary["reference_rows_excluded"] = exclude(checked, ref_frame)
        except DataError as exc:
            reference_error = {"error": str(exc)}
            log.warning("reference set not scored: %s", exc)
    profile = profile_document(
        checked.frame,
        target=target,
        features=checked.features,
        categorical=checked.categorical,
        files=file_records(args.train, [p for p, _ in parts], [len(f) for _, f in parts]),
    )
    frames = [checked.frame]
    extra: dict[str, tuple[int, int]] = {}
    offset = len(checked.frame)
    for channel in ("validation", "test"):
        folder = getattr(args, channel)
        if folder:
            loaded = data.load_folder(folder)
            conformed = data.conform(loaded, checked, channel)
            summary.setdefault("channels", {})[channel] = {
                "rows_in": len(loaded),
                "rows_out": len(conformed),
            }
            extra[channel] = (offset, offset + len(conformed))
            offset += len(conformed)
            frames.append(conformed)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    features, categorical = checked.features, checked.categorical
    y = frame[target].to_numpy()
    x = data.prepare_features(frame, features, categorical)
    lap("load_and_check")

    n_train_channel = len(checked.frame)
    train_idx, val_idx, test_idx = data.split_indices(
        y[:n_train_channel],
        test_size=hps["test-size"],
        validation_size=hps["validation-size"],
        seed=hps["seed"],
        need_validation="validation" not in extra,
        need_test="test" not in extra,
    )
    if "validation" in extra:
        val_idx = np.arange(*extra["validation"])
    if "test" in extra:
        test_idx = np.arange(*extra["test"])
    lap("split")

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
    lap("search")

    y_val, y_test = y[val_idx], y[test_idx]
    proba_val = pipeline.predict_proba(take(x, val_idx))
    classes = pipeline.classes_  # same dtype as y, so sklearn's label checks agree
    threshold: float | None = None
    pos = 0
    if binary:
        pos = labels.index(positive)
        threshold, _ = tune_threshold(y_val == positive, proba_val[:, pos], primary)

    def decide(proba: np.ndarray) -> np.ndarray:
        if threshold is None:
            return classes[proba.argmax(axis=1)]
        return classes[np.where(proba[:, pos] >= threshold, pos, 1 - pos)]

    val_metrics = compute_metrics(y_val, decide(proba_val), proba_val, labels, positive, minority)
    proba_train = pipeline.predict_proba(take(x, train_idx))
    train_metrics = compute_metrics(
        y[train_idx], decide(proba_train), proba_train, labels, positive, minority
    )
    if hps["refit"] == "true":
        # the chosen configuration and threshold, refit on every row but the test split's
        refit_idx = np.concatenate([train_idx, val_idx])
        pipeline, refit_warnings, n_fit = fit_candidate(
            searched.best, hps, x, y, refit_idx, features, categorical
        )
        fit_warnings = fit_warnings + [w for w in refit_warnings if w not in fit_warnings]
        lap("refit")
    proba_test = pipeline.predict_proba(take(x, test_idx))

    def predict(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        proba = pipeline.predict_proba(data.prepare_features(rows, features, categorical))
        return decide(proba), proba

    pred_test = decide(proba_test)
    metrics = compute_metrics(y_test, pred_test, proba_test, labels, positive, minority)
    baseline = majority_baseline(y_test, classes, counts, labels, positive, minority)
    cm = confusion(y_test, pred_test, labels)
    understanding: dict[str, Any] = {
        "profile": profile_features(
            checked.frame,
            target=target,
            features=features,
            categorical=categorical,
            positive=positive,
            seed=hps["seed"],
        ),
        "importance": importance(
            searched.pipeline,
            take(x, val_idx),
            y_val,
            features,
            positive=positive,
            seed=hps["seed"],
        ),
    }
    if binary:
        understanding["calibration"] = calibration(y_test == positive, proba_test[:, pos])
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
        "pipeline": pipeline,
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
        "refit": hps["refit"] == "true",
        "selection": searched.record,
        "diagnosis": diagnose(train_metrics, val_metrics, metrics, baseline, primary),
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
    (model_dir / EVALUATION_FILE).write_text(json.dumps(evaluation, indent=1, allow_nan=False))
    for name, value in metrics.items():  # one line each, for SageMaker metric regexes
        print(f"metric test_{name}={value if value is not None else 'nan'};")
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
