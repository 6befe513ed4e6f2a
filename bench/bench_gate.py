"""Benchmark: the gate's decision and every rule's numbers on clean and corrupted data.

For two data sets (the demo's fraud-like transactions, and scikit-learn's
``make_classification`` at 5% positives, not used anywhere else), a champion trains on
day 1 and its test split becomes the reference set; then a challenger trains on day 1 +
a day 2 that is clean (drifted for the demo data), has shuffled, coin-flip (50/50),
flipped, 30%-shuffled or single-class labels, or is day 1 sent again. Each challenger's
evaluation.json goes through the real gate (``lambdas.gate.evaluate_gate``, default
thresholds). Prints the outcome and each rule's value; asserts nothing.

    .venv/bin/python bench/bench_gate.py [rows]
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _job(root: Path, files: dict[str, pd.DataFrame], **channels: Path) -> dict:
    from jobs.train import main

    (root / "train").mkdir(parents=True)
    for name, frame in files.items():
        frame.to_csv(root / "train" / name, index=False)
    argv = ["--train", str(root / "train"), "--model-dir", str(root / "model")]
    argv += ["--output-data-dir", str(root / "data"), "--output-dir", str(root / "out")]
    for name, path in channels.items():
        argv += [f"--{name}", str(path)]
    if main(argv) != 0:
        raise SystemExit((root / "out" / "failure").read_text())
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        for path in (root / "model").iterdir():
            tar.add(path, arcname=path.name)
    return json.loads((root / "model" / "evaluation.json").read_text())


def _datasets(rows: int) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    from sklearn.datasets import make_classification

    from mlops import datasets

    x, y = make_classification(
        n_samples=2 * rows, n_features=10, n_informative=5, weights=[0.95], random_state=5
    )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)]).round(5).assign(label=y)
    later = frame.iloc[rows:].copy()
    later[["x0", "x1"]] += 0.5  # covariate drift on day 2
    return {
        "fraud (demo)": (
            datasets.transactions(rows, fraud_rate=0.02, seed=7),
            datasets.transactions(rows, fraud_rate=0.03, shift=1.0, seed=8),
        ),
        "make_classification": (frame.iloc[:rows].copy(), later),
    }


def _variants(day1: pd.DataFrame, day2: pd.DataFrame) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    labels = day2["label"].to_numpy()
    partial = labels.copy()
    chosen = rng.random(len(labels)) < 0.3
    partial[chosen] = rng.permutation(labels[chosen])
    return {
        "clean": day2,
        "shuffled": day2.assign(label=rng.permutation(labels)),
        "coin-flip": day2.assign(label=(rng.random(len(day2)) < 0.5).astype(int)),
        "flipped": day2.assign(label=1 - labels),
        "30% shuffled": day2.assign(label=partial),
        "one class": day2.assign(label=0),
        "day 1 resent": day1.sample(frac=0.8, random_state=2),
    }


def main(rows: int) -> None:
    from lambdas import gate

    for name, (day1, day2) in _datasets(rows).items():
        with tempfile.TemporaryDirectory(prefix="mlops-bench-gate-") as tmp:
            root = Path(tmp)
            champion = _job(root / "champion", {"day1.csv": day1})
            split = root / "champion" / "data" / "test.csv"
            manifest = {"sha256": hashlib.sha256(split.read_bytes()).hexdigest(), "uri": "s3://x"}
            print(f"== {name}: {rows} rows a day; champion f1 {champion['metrics']['f1']:.3f}")
            for kind, day2_variant in _variants(day1, day2).items():
                start = time.perf_counter()
                challenger = _job(
                    root / kind.replace(" ", "-").replace("%", ""),
                    {"day1.csv": day1, "day2.csv": day2_variant},
                    champion=root / "champion" / "model.tar.gz",
                    reference=split,
                )
                decision = gate.evaluate_gate(challenger, champion, reference=manifest)
                seconds = time.perf_counter() - start
                print(f"-- {kind}: {decision.outcome} ({seconds:.1f} s)")
                for rule, held, text in decision.checks:
                    print(f"   {'ok ' if held else 'NO '} {rule:18} {text[:150]}")
                for rule in decision.guard:
                    value = "n/a" if rule["value"] is None else f"{rule['value']:.4f}"
                    print(
                        f"       guard {rule['rule']:18} {value:>8} "
                        f"(threshold {rule['threshold']}, {'held' if rule['held'] else 'TRIPPED'}"
                        f"{', info' if rule['severity'] == 'info' else ''})"
                    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
