"""Hyperparameters: their names, types and defaults, and how the job's sources resolve them.

Sources, later ones winning: the defaults, SageMaker's ``hyperparameters.json``, the
``SM_HPS`` variable and ``--kebab-case`` (or ``--snake_case``) flags.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jobs.contract import HYPERPARAMETERS_FILE, add_path_arguments, hyperparameters_file
from jobs.errors import JobError
from jobs.metrics import METRICS


class HyperparameterError(JobError, ValueError):
    """A hyperparameter or argument is wrong; the message says which."""


@dataclass(frozen=True)
class _Hp:
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


MODEL_ALIASES = {
    "auto": "auto",
    "forest": "forest",
    "extra_trees": "forest",
    "extra-trees": "forest",
    "et": "forest",
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
    "model": _Hp(
        str,
        "auto",
        "auto (search gbm, logreg and forest) or one family: gbm, logreg, forest",
        tuple(MODEL_ALIASES),
    ),
    "primary-metric": _Hp(
        str, None, "metric to tune for (default f1, f1_macro for multiclass)", METRICS
    ),
    "balance": _Hp(
        str,
        "auto",
        "class imbalance handling (auto: compared in the search)",
        ("auto", "class_weight", "oversample", "none"),
    ),
    # model selection
    "max-seconds": _Hp(int, 60, "time budget of the whole job; the search gets half of it"),
    "max-candidates": _Hp(int, 12, "most configurations the search fits"),
    "refit": _Hp(str, "true", "refit the chosen one on train + validation", ("true", "false")),
    "calibration": _Hp(
        str,
        "auto",
        "recalibrate probabilities (auto: when it lowers the Brier score)",
        ("auto", "none", "sigmoid", "isotonic"),
    ),
    "threshold-source": _Hp(
        str,
        "auto",
        "scores the threshold is tuned on (auto: out-of-fold when cross-fitted)",
        ("auto", "validation"),
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
    # extremely randomised trees
    "n-estimators": _Hp(int, 150, "forest trees"),
    "max-features": _Hp(float, 0.5, "forest share of features per split"),
    "forest-min-samples-leaf": _Hp(int, 5, "forest rows per leaf"),
    # the data guard: the job's own verdicts (the stack's thresholds re-judge them)
    "max-label-shift": _Hp(float, 0.1, "largest PSI of the new rows' labels vs the champion's"),
    "min-label-agreement": _Hp(
        float, 0.25, "smallest champion MCC on the new rows, as a share of its own test MCC"
    ),
    "min-label-learnability": _Hp(
        float, 0.25, "smallest CV MCC on the new rows alone, as a share of the champion's"
    ),
    "max-duplicate-share": _Hp(float, 0.2, "largest share of new rows the champion saw"),
    "guard-min-rows": _Hp(int, 50, "fewest new rows for the data guard to judge them"),
    # understanding the model
    "sensitive-features": _Hp(str, "", "comma-separated columns audited for fairness"),
    "use-sensitive-features": _Hp(
        str, "false", "let the model see the sensitive features", ("true", "false")
    ),
    "min-group-rows": _Hp(int, 30, "fewest test rows of a group for the fairness gaps"),
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
    if spec.choices and isinstance(value, str) and value.strip().lower() in spec.choices:
        return value.strip().lower()  # "none" is a choice of balance, not a missing value
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if spec.default is None or spec.kind is str:
            return None if spec.default is None else ""
        raise HyperparameterError(f"hyperparameter '{name}' needs a value")
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
        raise HyperparameterError(
            f"hyperparameter '{name}' must be {kind}, got {value!r}"
        ) from None
    if spec.choices is not None and out not in spec.choices:
        raise HyperparameterError(
            f"hyperparameter '{name}' is {out!r}; choose one of: {', '.join(spec.choices)}"
        )
    return out


def _read_json_hps(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HyperparameterError(f"cannot read hyperparameters from {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise HyperparameterError(f"{path} must hold a JSON object")
    return loaded


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise HyperparameterError(f"bad command line: {message}")


def _parser(description: str | None) -> _Parser:
    p = _Parser(prog="python -m jobs.train", description=description, allow_abbrev=False)
    add_path_arguments(p)
    for name, spec in HYPERPARAMETERS.items():
        flags = [f"--{name}"] + ([f"--{name.replace('-', '_')}"] if "-" in name else [])
        p.add_argument(
            *flags, dest=f"hp_{name}", metavar=name.upper(), default=None, help=spec.help
        )
    return p


def parse_args(
    argv: list[str] | None = None, description: str | None = None
) -> tuple[argparse.Namespace, dict[str, Any], list[str]]:
    """Command line plus hyperparameter sources -> (args, resolved hyperparameters, notes).

    Precedence: defaults < hyperparameters.json < ``SM_HPS`` < flags. Keys
    starting with ``sagemaker_`` belong to the container and are skipped;
    unknown keys are reported in the notes, not fatal. ``description`` is the ``--help``
    text.
    """
    args, unknown = _parser(description).parse_known_args(argv)
    raw: dict[str, Any] = {}
    notes: list[str] = []
    sources: list[tuple[str, dict[str, Any]]] = []
    hps_file = hyperparameters_file()
    if hps_file.is_file():
        sources.append((HYPERPARAMETERS_FILE, _read_json_hps(hps_file)))
    if os.environ.get("SM_HPS"):
        try:
            hps = json.loads(os.environ["SM_HPS"])
        except ValueError as exc:
            raise HyperparameterError(f"SM_HPS is not JSON: {exc}") from exc
        if not isinstance(hps, dict):
            raise HyperparameterError("SM_HPS must hold a JSON object")
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
        raise HyperparameterError(
            f"test-size ({ts}) and validation-size ({vs}) must be in (0, 1) and sum below 0.9"
        )
    return args, resolved, notes
