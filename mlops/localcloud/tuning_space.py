"""A tuning job's search space and strategy, on Optuna. Pure but for Optuna's state.

``ParameterRanges`` as SageMaker takes them: integer and continuous ranges with
``ScalingType`` ``Auto`` / ``Linear`` / ``Logarithmic`` / ``ReverseLogarithmic``, and
categorical values. ``Strategy``: ``Random`` (Optuna's random sampler), ``Bayesian``
(its TPE sampler, a Bayesian optimiser) and ``Grid`` (every combination, categorical
ranges only, as SageMaker's grid search). Values reach the training job as text, as
SageMaker sends tuned hyperparameters.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from mlops.errors import MlopsError

STRATEGIES = ("Random", "Bayesian", "Grid")


class TuningRequestError(MlopsError, ValueError):
    """The request cannot be tuned as asked; the message is the ValidationException's."""


@dataclass(frozen=True)
class Range:
    name: str
    kind: str  # integer | continuous | categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()


def parse_ranges(ranges: dict[str, Any]) -> list[Range]:
    """The ranges of a ``ParameterRanges``; an empty or inverted one is refused."""
    out: list[Range] = []
    for kind, key in (
        ("integer", "IntegerParameterRanges"),
        ("continuous", "ContinuousParameterRanges"),
    ):
        for spec in ranges.get(key) or []:
            low, high = float(spec["MinValue"]), float(spec["MaxValue"])
            scaling = str(spec.get("ScalingType") or "Auto")
            if low > high:
                raise TuningRequestError(
                    f"{spec['Name']}: MinValue {spec['MinValue']} is above MaxValue "
                    f"{spec['MaxValue']}: the range is empty"
                )
            if scaling == "Logarithmic" and low <= 0:
                raise TuningRequestError(f"{spec['Name']}: Logarithmic scaling needs MinValue > 0")
            if scaling == "ReverseLogarithmic" and (kind == "integer" or not 0 <= low < high < 1):
                raise TuningRequestError(
                    f"{spec['Name']}: ReverseLogarithmic scaling is for continuous ranges in [0, 1)"
                )
            out.append(Range(spec["Name"], kind, low, high, scaling))
    for spec in ranges.get("CategoricalParameterRanges") or []:
        values = tuple(str(v) for v in spec.get("Values") or [])
        if not values:
            raise TuningRequestError(f"{spec['Name']}: a categorical range needs Values")
        out.append(Range(spec["Name"], "categorical", values=values))
    if not out:
        raise TuningRequestError("ParameterRanges names no hyperparameter to tune")
    names = [r.name for r in out]
    if len(set(names)) != len(names):
        raise TuningRequestError(f"a hyperparameter is ranged twice: {sorted(names)}")
    return out


def grid(ranges: list[Range]) -> list[dict[str, str]]:
    """Every combination, in order (SageMaker's grid search takes categorical ranges)."""
    if any(r.kind != "categorical" for r in ranges):
        raise TuningRequestError("the Grid strategy takes categorical ranges only")
    names = [r.name for r in ranges]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(r.values for r in ranges))
    ]


def sampler(strategy: str, seed: int | None) -> Any:
    import optuna

    if strategy == "Random":
        return optuna.samplers.RandomSampler(seed=seed)
    if strategy == "Bayesian":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
    raise TuningRequestError(
        f"Strategy {strategy} is not run by the local cloud (it runs {', '.join(STRATEGIES)})"
    )


def suggest(trial: Any, r: Range) -> str:
    """One value of ``r`` from an Optuna trial, as the text the training job gets."""
    if r.kind == "categorical":
        return str(trial.suggest_categorical(r.name, list(r.values)))
    log = r.scaling == "Logarithmic"
    if r.kind == "integer":
        return str(trial.suggest_int(r.name, int(r.low), int(r.high), log=log))
    if r.scaling == "ReverseLogarithmic":
        # log-uniform in the distance to 1: values crowd towards the range's top
        u = trial.suggest_float(f"{r.name}~1-x", 1 - r.high, 1 - r.low, log=True)
        return repr(1 - u)
    value = trial.suggest_float(r.name, r.low, r.high, log=log)
    return repr(value) if math.isfinite(value) else str(r.low)
