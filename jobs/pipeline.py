"""The model: preprocessing and estimator as one scikit-learn pipeline, and its fitting.

The pipeline is what ``model.joblib`` pickles, so serving repeats the preprocessing and
needs scikit-learn only.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

FOREST_MAX_LEAVES = 1024


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
    elif hps["model"] == "forest":
        # leaves capped: an uncapped forest on 50k rows pickles to hundreds of MB
        estimator = ExtraTreesClassifier(
            n_estimators=hps["n-estimators"],
            max_features=hps["max-features"],
            min_samples_leaf=hps["forest-min-samples-leaf"],
            max_leaf_nodes=FOREST_MAX_LEAVES,
            n_jobs=-1,
            random_state=hps["seed"],
        )
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


def fit_pipeline(
    pipeline: Pipeline, x: Any, y: np.ndarray, weights: np.ndarray | None
) -> list[str]:
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
