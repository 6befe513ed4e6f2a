"""Shared helpers for the jobs tests: data sets and the contract folders under tmp_path."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_classification

SM_VARS = (
    "SM_CHANNEL_TRAIN",
    "SM_CHANNEL_VALIDATION",
    "SM_CHANNEL_TEST",
    "SM_CHANNEL_CHAMPION",
    "SM_CHANNEL_REFERENCE",
    "SM_MODEL_DIR",
    "SM_OUTPUT_DATA_DIR",
    "SM_OUTPUT_DIR",
    "SM_HPS",
    "SM_INPUT_CONFIG_DIR",
)

# every field docs/contracts.md names for evaluation.json
EVALUATION_FIELDS = {
    "task",
    "labels",
    "n_train",
    "n_validation",
    "n_test",
    "class_counts",
    "primary_metric",
    "threshold",
    "metrics",
    "confusion_matrix",
    "baseline",
    "data_checks",
    "features",
    "model",
    "hyperparameters",
    "created_at",
}
METRIC_KEYS = {
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "f1_macro",
    "minority_recall",
}
DATA_CHECK_KEYS = {"rows_in", "duplicates_dropped", "missing_values", "infinities", "class_counts"}


@dataclass
class Contract:
    """The SageMaker folders of one training run, all under tmp_path."""

    root: Path
    train: Path
    model: Path
    output_data: Path
    output: Path
    config: Path

    @property
    def failure(self) -> Path:
        return self.output / "failure"

    def evaluation(self) -> dict[str, Any]:
        return json.loads((self.model / "evaluation.json").read_text())

    def baseline(self) -> dict[str, Any]:
        return json.loads((self.model / "baseline.json").read_text())

    def argv(self, *extra: str) -> list[str]:
        """The job's arguments; a short search unless ``extra`` sets its own (test time:
        tests/jobs_tests/test_jobs_search.py runs the default search)."""
        search = [] if "--max-candidates" in extra else ["--max-candidates", "3"]
        return [
            "--train",
            str(self.train),
            "--model-dir",
            str(self.model),
            "--output-data-dir",
            str(self.output_data),
            *search,
            *extra,
        ]


def make_contract(root: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    """Folders under ``root`` and an environment that never reaches /opt/ml."""
    c = Contract(
        root=root,
        train=root / "input" / "data" / "train",
        model=root / "model",
        output_data=root / "output" / "data",
        output=root / "output",
        config=root / "input" / "config",
    )
    c.train.mkdir(parents=True)
    c.config.mkdir(parents=True)
    for name in SM_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SM_OUTPUT_DIR", str(c.output))
    monkeypatch.setenv("SM_INPUT_CONFIG_DIR", str(c.config))
    return c


def tree_digest(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, to prove inputs are left alone."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def breast_cancer() -> pd.DataFrame:
    """569 rows, 30 numeric features, binary int label (212 malignant=0 / 357 benign=1)."""
    frame = load_breast_cancer(as_frame=True).frame
    return frame.rename(columns={"target": "label"})


def iris_named() -> pd.DataFrame:
    """150 rows, 4 features, three string labels."""
    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    frame["label"] = np.asarray(bunch.target_names)[frame["label"].to_numpy()]
    return frame


def wine() -> pd.DataFrame:
    """178 rows, 13 features, three int labels."""
    return load_wine(as_frame=True).frame.rename(columns={"target": "label"})


def imbalanced(n: int = 4000, minority: float = 0.03, seed: int = 0) -> pd.DataFrame:
    """Synthetic binary data, ``minority`` share of positives (label 1)."""
    x, y = make_classification(
        n_samples=n,
        n_features=10,
        n_informative=5,
        n_redundant=2,
        weights=[1 - minority],
        flip_y=0.0,
        class_sep=1.0,
        random_state=seed,
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = y
    return frame
