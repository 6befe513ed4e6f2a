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
# ruff: noqa: B905, UP017
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
import contextlib
import inspect
import json
import logging
import os
import time
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from jobs import data, evaluate
from jobs.data import DataError
from jobs.inference import sha256_file

MODEL_FILE = "model.joblib"
EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
REPORT_FILE = "report.html"
FAILURE_FILE = "failure"

log = logging.getLogger("jobs.train")


class ConfigError(ValueError):
    """A hyperparameter or argument is wrong; the message says which."""


# --- hyperparameters ------------------------------------------------------------


@dataclass(frozen=True)
class _Hp:
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


MODEL_ALIASES = {
    "gbm": "gbm",
    "hgb": "gbm",
    "gradient_boosting": "gbm",
    "gradient-boosting": "gbm",
    "logreg": "logreg",
    "lr": "logreg",
    "logistic_regression": "logreg",
    "logistic-regression": "logreg",
}

HYPERPARAMETERS: dict[str, _Hp] = {
    "target": _Hp(str, "label", "label column"),
    "model": _Hp(str, "gbm", "gbm (histogram gradient boosting) or logreg", tuple(MODEL_ALIASES)),
    "primary-metric": _Hp(
        str, None, "metric to tune for (default f1, f1_macro for multiclass)", evaluate.METRICS
    ),
    "balance": _Hp(
        str, "class_weight", "class imbalance handling", ("class_weight", "oversample", "none")
    ),
    "test-size": _Hp(float, 0.2, "fraction of rows held out for the test split"),
    "validation-size": _Hp(float, 0.2, "fraction of rows for threshold tuning"),
    "seed": _Hp(int, 42, "random seed for splits, resampling and the model"),
    "categorical": _Hp(str, "", "comma-separated categorical feature columns"),
    "drop": _Hp(str, "", "comma-separated columns to ignore (ids, timestamps)"),
    "min-rows": _Hp(int, 50, "fewest usable rows to train on"),
    "min-class-count": _Hp(int, 10, "fewest rows per class"),
    "baseline-bins": _Hp(int, 10, "quantile bins per numeric feature in baseline.json"),
    "max-categories": _Hp(int, 20, "one-hot columns per categorical feature (rest: infrequent)"),
    # gradient boosting
    "learning-rate": _Hp(float, 0.1, "gbm learning rate"),
    "max-iter": _Hp(int, None, "gbm boosting rounds (200) / logreg solver iterations (1000)"),
    "max-leaf-nodes": _Hp(int, 31, "gbm leaves per tree"),
    "max-depth": _Hp(int, None, "gbm tree depth (none: unlimited)"),
    "min-samples-leaf": _Hp(int, 20, "gbm rows per leaf"),
    "l2-regularization": _Hp(float, 0.0, "gbm L2 penalty"),
    "early-stopping": _Hp(
        str, "auto", "gbm early stopping (auto: above 10,000 rows)", ("auto", "true", "false")
    ),
    # logistic regression
    "c": _Hp(float, 1.0, "logreg inverse regularisation strength"),
    # lineage: the model package ARN of the champion in the champion channel
    "champion-package": _Hp(str, None, "model package of the champion (recorded only)"),
}


def _norm_key(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def _decode(raw: Any) -> Any:
    """SageMaker's SDK writes hyperparameters JSON-encoded ("\\"label\\""): undo that."""
    if isinstance(raw, str):
        try:
            inner = json.loads(raw)
        except ValueError:
            return raw
        if isinstance(inner, str):
            return inner
    return raw


def _coerce(name: str, raw: Any) -> Any:
    spec = HYPERPARAMETERS[name]
    value = _decode(raw)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if spec.default is None or spec.kind is str:
            return None if spec.default is None else ""
        raise ConfigError(f"hyperparameter '{name}' needs a value")
    try:
        if spec.kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            out: Any = int(number)
        elif spec.kind is float:
            out = float(value)
        else:
            out = str(value).strip()
            if spec.choices is not None:
                out = out.lower()
    except (TypeError, ValueError):
        kind = "an integer" if spec.kind is int else "a number"
        raise ConfigError(f"hyperparameter '{name}' must be {kind}, got {value!r}") from None
    if spec.choices is not None and out not in spec.choices:
        raise ConfigError(
            f"hyperparameter '{name}' is {out!r}; choose one of: {', '.join(spec.choices)}"
        )
    return out


def _read_json_hps(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read hyperparameters from {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return loaded


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ConfigError(f"bad command line: {message}")


def _parser() -> _Parser:
    env = os.environ.get
    p = _Parser(prog="python -m jobs.train", description=__doc__, allow_abbrev=False)
    p.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION"))
    p.add_argument("--test", default=env("SM_CHANNEL_TEST"))
    p.add_argument(
        "--champion",
        default=env("SM_CHANNEL_CHAMPION"),
        help="the champion's model.tar.gz (or a folder holding it, or an extracted model "
        "folder): scored on the same test split",
    )
    p.add_argument("--model-dir", "--model_dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument(
        "--output-data-dir",
        "--output_data_dir",
        default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"),
    )
    p.add_argument("--output-dir", "--output_dir", default=env("SM_OUTPUT_DIR", "/opt/ml/output"))
    for name, spec in HYPERPARAMETERS.items():
        flags = [f"--{name}"] + ([f"--{name.replace('-', '_')}"] if "-" in name else [])
        p.add_argument(
            *flags, dest=f"hp_{name}", metavar=name.upper(), default=None, help=spec.help
        )
    return p


def parse_args(
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, dict[str, Any], list[str]]:
    """Command line plus hyperparameter sources -> (args, resolved hyperparameters, notes).

    Precedence: defaults < hyperparameters.json < ``SM_HPS`` < flags. Keys
    starting with ``sagemaker_`` belong to the container and are skipped;
    unknown keys are reported in the notes, not fatal.
    """
    args, unknown = _parser().parse_known_args(argv)
    raw: dict[str, Any] = {}
    notes: list[str] = []
    config_dir = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    sources: list[tuple[str, dict[str, Any]]] = []
    hps_file = config_dir / "hyperparameters.json"
    if hps_file.is_file():
        sources.append(("hyperparameters.json", _read_json_hps(hps_file)))
    if os.environ.get("SM_HPS"):
        try:
            hps = json.loads(os.environ["SM_HPS"])
        except ValueError as exc:
            raise ConfigError(f"SM_HPS is not JSON: {exc}") from exc
        if not isinstance(hps, dict):
            raise ConfigError("SM_HPS must hold a JSON object")
        sources.append(("SM_HPS", hps))
    for source, values in sources:
        for key, value in values.items():
            if key.startswith("sagemaker_"):
                continue
            name = _norm_key(key)
            if name in HYPERPARAMETERS:
                raw[name] = value
            else:
                notes.append(f"ignored unknown hyperparameter '{key}' from {source}")
    for name in HYPERPARAMETERS:
        flag = getattr(args, f"hp_{name}")
        if flag is not None:
            raw[name] = flag
    notes.extend(f"ignored unknown argument '{u}'" for u in unknown if u.startswith("--"))
    resolved = {name: spec.default for name, spec in HYPERPARAMETERS.items()}
    resolved.update({name: _coerce(name, value) for name, value in raw.items()})
    resolved["model"] = MODEL_ALIASES[resolved["model"]]
    ts, vs = resolved["test-size"], resolved["validation-size"]
    if not (0 < ts < 1 and 0 < vs < 1 and ts + vs < 0.9):
        raise ConfigError(
            f"test-size ({ts}) and validation-size ({vs}) must be in (0, 1) and sum below 0.9"
        )
    return args, resolved, notes


# --- model ------------------------------------------------------------------------


def build_pipeline(hps: dict[str, Any], features: list[str], categorical: list[str]) -> Pipeline:
    """Preprocessing and estimator in one pipeline, so serving repeats the preprocessing.

    Numeric columns: infinities -> missing -> median imputation with missing
    indicators (-> scaling for logreg). Categorical columns: constant
    imputation -> one-hot, unknown categories ignored. Without categorical
    columns the pipeline takes a plain float array in feature order.
    """
    numeric_steps: list[tuple[str, Any]] = [
        (
            "inf_to_nan",
            FunctionTransformer(
                np.nan_to_num,
                kw_args={"nan": np.nan, "posinf": np.nan, "neginf": np.nan},
                feature_names_out="one-to-one",
            ),
        ),
        ("impute", SimpleImputer(strategy="median", add_indicator=True)),
    ]
    if hps["model"] == "logreg":
        numeric_steps.append(("scale", StandardScaler()))
    estimator: Any
    if hps["model"] == "logreg":
        estimator = LogisticRegression(C=hps["c"], max_iter=hps["max-iter"] or 1000)
    else:
        stopping: Any = {"auto": "auto", "true": True, "false": False}[hps["early-stopping"]]
        estimator = HistGradientBoostingClassifier(
            learning_rate=hps["learning-rate"],
            max_iter=hps["max-iter"] or 200,
            max_leaf_nodes=hps["max-leaf-nodes"],
            max_depth=hps["max-depth"],
            min_samples_leaf=hps["min-samples-leaf"],
            l2_regularization=hps["l2-regularization"],
            early_stopping=stopping,
            random_state=hps["seed"],
        )
    if not categorical:
        return Pipeline([*numeric_steps, ("model", estimator)])
    numeric = [c for c in features if c not in categorical]
    categorical_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value="__missing__")),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=hps["max-categories"],
                    sparse_output=False,
                ),
            ),
        ]
    )
    transformers: list[tuple[str, Any, list[str]]] = [
        ("categorical", categorical_steps, categorical)
    ]
    if numeric:
        transformers.insert(0, ("numeric", Pipeline(numeric_steps), numeric))
    return Pipeline([("prepare", ColumnTransformer(transformers)), ("model", estimator)])


# --- the job ----------------------------------------------------------------------


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@contextlib.contextmanager
def _unweighted_binning() -> Iterator[None]:
    """Let gradient boosting find its bin edges without the sample weights.

    scikit-learn >= 1.6 computes the edges from weighted percentiles, one call
    per edge and feature: below 200k rows (where it subsamples instead) that
    costs tens of seconds, e.g. 30 s more at 120k x 20. Unweighted quantile
    edges are what older versions (and the SageMaker 1.2 container) use; the
    weights still drive the boosting itself. Only the training process is
    patched, for the duration of ``fit``; the fitted model is a plain
    scikit-learn one. If the private function moves, nothing is patched.
    """
    try:
        from sklearn.ensemble._hist_gradient_boosting import binning
    except ImportError:  # pragma: no cover - layout of another scikit-learn
        yield
        return
    original = getattr(binning, "_find_binning_thresholds", None)
    if original is None or "sample_weight" not in inspect.signature(original).parameters:
        yield
        return

    def unweighted(col_data: Any, max_bins: int, sample_weight: Any = None) -> Any:
        return original(col_data, max_bins)

    binning._find_binning_thresholds = unweighted
    try:
        yield
    finally:
        binning._find_binning_thresholds = original


def _fit(pipeline: Pipeline, x: Any, y: np.ndarray, weights: np.ndarray | None) -> list[str]:
    """Fit, returning the warnings (e.g. non-convergence) for the report, not the log spam."""
    params = {"model__sample_weight": weights} if weights is not None else {}
    with warnings.catch_warnings(record=True) as caught, _unweighted_binning():
        warnings.simplefilter("always")
        pipeline.fit(x, y, **params)
    seen: list[str] = []
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue
        text = f"{w.category.__name__}: {str(w.message).splitlines()[0]}"
        if text not in seen:
            seen.append(text)
    return seen


def _take(x: Any, idx: np.ndarray) -> Any:
    return x.iloc[idx] if isinstance(x, pd.DataFrame) else x[idx]


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
    raw = data.load_folder(args.train)
    checked = data.check_and_clean(
        raw,
        target=target,
        categorical=hps["categorical"],
        drop=hps["drop"],
        min_rows=hps["min-rows"],
        min_class_count=hps["min-class-count"],
    )
    del raw
    summary = checked.summary
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
    fit_idx = train_idx
    weights = None
    if hps["balance"] == "oversample":
        fit_idx = data.oversample(train_idx, y, hps["seed"])
    elif hps["balance"] == "class_weight":
        weights = compute_sample_weight("balanced", y[fit_idx])
    lap("split")

    hps = {**hps, "max-iter": hps["max-iter"] or (1000 if hps["model"] == "logreg" else 200)}
    pipeline = build_pipeline(hps, features, categorical)
    fit_warnings = _fit(pipeline, _take(x, fit_idx), y[fit_idx], weights)
    lap("fit")

    labels = [_native(c) for c in pipeline.classes_.tolist()]
    train_labels, train_counts = np.unique(y[train_idx], return_counts=True)
    count_of = {_native(k): int(v) for k, v in zip(train_labels, train_counts)}
    counts = [count_of.get(label, 0) for label in labels]
    binary = len(labels) == 2
    minority = evaluate.minority_label(labels, counts)
    positive = minority if binary else None
    primary = hps["primary-metric"] or ("f1" if binary else "f1_macro")
    hps["primary-metric"] = primary

    y_val, y_test = y[val_idx], y[test_idx]
    proba_val = pipeline.predict_proba(_take(x, val_idx))
    proba_test = pipeline.predict_proba(_take(x, test_idx))
    classes = pipeline.classes_  # same dtype as y, so sklearn's label checks agree
    threshold: float | None = None
    pos = 0
    if binary:
        pos = labels.index(positive)
        threshold, _ = evaluate.tune_threshold(y_val == positive, proba_val[:, pos], primary)

    def decide(proba: np.ndarray) -> np.ndarray:
        if threshold is None:
            return classes[proba.argmax(axis=1)]
        return classes[np.where(proba[:, pos] >= threshold, pos, 1 - pos)]

    pred_test = decide(proba_test)
    metrics = evaluate.compute_metrics(y_test, pred_test, proba_test, labels, positive, minority)
    val_metrics = evaluate.compute_metrics(
        y_val, decide(proba_val), proba_val, labels, positive, minority
    )
    majority = int(np.argmax(counts))
    priors = np.tile(np.array(counts, dtype=float) / sum(counts), (len(test_idx), 1))
    base_pred: np.ndarray = np.repeat(classes[[majority]], len(test_idx))
    baseline = evaluate.compute_metrics(y_test, base_pred, priors, labels, positive, minority)
    cm = evaluate.confusion(y_test, pred_test, labels)
    lap("evaluate")

    champion: dict[str, Any] | None = None
    if args.champion:
        # the champion on the very rows the challenger is judged on (never fails the job)
        champion = evaluate.evaluate_champion(
            args.champion,
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

    all_counts = pd.Series(y).value_counts()
    evaluation: dict[str, Any] = {
        "task": "binary" if binary else "multiclass",
        "labels": labels,
        "positive_label": positive,
        "target": target,
        "n_train": len(train_idx),
        "n_validation": len(val_idx),
        "n_test": len(test_idx),
        "n_fit": len(fit_idx),
        "class_counts": {str(label): int(all_counts.get(label, 0)) for label in labels},
        "primary_metric": primary,
        "threshold": threshold,
        "metrics": metrics,
        "validation_metrics": val_metrics,
        "confusion_matrix": cm,
        "baseline": baseline,
        **({"champion": champion} if champion is not None else {}),
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
    drift = {
        "target": target,
        "feature_order": features,
        "features": evaluate.feature_baseline(
            frame.iloc[train_idx], features, categorical, bins=hps["baseline-bins"]
        ),
    }
    (model_dir / BASELINE_FILE).write_text(json.dumps(drift, indent=1, allow_nan=False))
    lap("write_model")
    page, _ = evaluate.render_report(evaluation, y_test, proba_test)
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


def _write_failure(reason: str, output_dir: str | None) -> None:
    """One line to the SageMaker failure file (best effort) and to stderr."""
    line = " ".join(reason.split())
    print(f"training failed: {line}", file=sys.stderr)
    folder = Path(output_dir or os.environ.get("SM_OUTPUT_DIR") or "/opt/ml/output")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILURE_FILE).write_text(line + "\n")
    except OSError as exc:
        print(f"could not write {folder / FAILURE_FILE}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the training job; 0 on success, 1 (and a failure file) otherwise."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    output_dir: str | None = None
    try:
        args, hps, notes = parse_args(argv)
        output_dir = args.output_dir
        for note in notes:
            log.warning(note)
        train(args, hps, notes)
    except (DataError, ConfigError) as exc:
        _write_failure(str(exc), output_dir)
        return 1
    except Exception as exc:
        traceback.print_exc()
        _write_failure(f"unexpected error: {type(exc).__name__}: {exc}", output_dir)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
