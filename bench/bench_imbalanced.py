"""Imbalanced 1:99: our pipeline against a plain logistic regression at threshold 0.5.

One synthetic set (default 100,000 rows x 20 features, 1% positives) is split
once: 80% goes to the training job's train channel, 20% is a held-out test set
given to the job as its test channel, so every contender is scored on the same
rows. Printed side by side: F1, PR-AUC, recall (of the positive class), plus
precision, balanced accuracy and accuracy, and the majority-class predictor.

    .venv/bin/python bench/bench_imbalanced.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    f1_score,
    precision_score,
    recall_score,
)
from sklearn.model_selection import train_test_split

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from jobs import train

COLUMNS = ("f1", "pr_auc", "recall", "precision", "balanced_accuracy", "accuracy")


def make_data(rows: int, seed: int = 0) -> pd.DataFrame:
    """1% positives from a nonlinear rule on 6 of 20 features, with label noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 20))
    logit = (
        2.0 * x[:, 0]
        - 1.5 * x[:, 1]
        + 1.2 * x[:, 2] * x[:, 3]
        + 1.0 * np.abs(x[:, 4])
        - 0.8 * x[:, 5] ** 2
        - 8.2
    )
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"x{i:02d}" for i in range(20)])
    frame["label"] = y
    return frame


def _scores(y: np.ndarray, pred: np.ndarray, score: np.ndarray) -> dict[str, float]:
    return {
        "f1": f1_score(y, pred, zero_division=0),
        "pr_auc": average_precision_score(y, score),
        "recall": recall_score(y, pred, zero_division=0),
        "precision": precision_score(y, pred, zero_division=0),
        "balanced_accuracy": balanced_accuracy_score(y, pred),
        "accuracy": accuracy_score(y, pred),
    }


def _run_job(root: Path, name: str, *argv: str) -> tuple[dict, float]:
    out = root / name
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = train.main(
            [
                "--train", str(root / "train"),
                "--test", str(root / "test"),
                "--model-dir", str(out / "model"),
                "--output-data-dir", str(out / "data"),
                *argv,
            ]
        )  # fmt: skip
    if code != 0:
        raise SystemExit(f"training job {name} failed")
    return json.loads((out / "model" / "evaluation.json").read_text()), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    frame = make_data(args.rows)
    fit_part, test_part = train_test_split(
        frame, test_size=0.2, stratify=frame["label"], random_state=0
    )
    print(
        f"data: {len(frame):,} rows x 20 features, {frame['label'].mean():.2%} positive; "
        f"held-out test {len(test_part):,} rows ({int(test_part['label'].sum())} positive)"
    )

    rows: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-imbalanced-") as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        (root / "test").mkdir()
        fit_part.to_parquet(root / "train" / "train.parquet", index=False)
        test_part.to_parquet(root / "test" / "test.parquet", index=False)
        os.environ["SM_OUTPUT_DIR"] = str(root / "output")
        os.environ["SM_INPUT_CONFIG_DIR"] = str(root / "config")

        for short, argv in (("gbm", ()), ("logreg", ("--model", "logreg"))):
            ev, seconds[f"ours {short}"] = _run_job(root, short, *argv)
            name = f"ours: {short}, class weights, threshold {ev['threshold']:.3f} (tuned)"
            rows[name] = {k: ev["metrics"][k] for k in COLUMNS}
            majority = {k: ev["baseline"][k] for k in COLUMNS}

    x_fit = fit_part.drop(columns="label").to_numpy()
    x_test = test_part.drop(columns="label").to_numpy()
    y_test = test_part["label"].to_numpy()
    start = time.perf_counter()
    plain = LogisticRegression(max_iter=1000).fit(x_fit, fit_part["label"].to_numpy())
    seconds["plain logreg"] = time.perf_counter() - start
    proba = plain.predict_proba(x_test)[:, 1]
    rows["plain logistic regression, threshold 0.5"] = _scores(y_test, proba >= 0.5, proba)
    rows["majority class (never positive)"] = majority

    width = max(len(name) for name in rows)
    print(
        f"{'':<{width}} "
        + " ".join(f"{c:>9}" for c in ("f1", "pr_auc", "recall", "prec.", "bal.acc", "acc"))
    )
    for name, scores in rows.items():
        print(f"{name:<{width}} " + " ".join(f"{scores[c]:>9.3f}" for c in COLUMNS))
    print("training seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
