"""Training on synthetic 1,000,000 rows x 20 features: wall seconds and peak memory.

Runs ``python -m jobs.train`` in a child process (as SageMaker would) on a
Parquet file, or CSV with ``--format csv``, and prints the child's wall time,
peak RSS and the job's own stage timings. Targets: under 60 s and 2 GB.

    .venv/bin/python bench/bench_train.py [--rows 1000000] [--format parquet|csv]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent


def make_data(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    """Gaussian features, a logistic label from five of them; about 10% positives."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features))
    logit = x[:, :5] @ np.array([1.5, -1.0, 0.8, 0.5, -0.5]) + 0.7 * x[:, 5] * x[:, 6] - 3.0
    y = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(features)])
    frame["label"] = y
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--model", default="gbm")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        train_dir = root / "train"
        train_dir.mkdir()
        t0 = time.perf_counter()
        frame = make_data(args.rows, args.features)
        if args.format == "csv":
            frame.to_csv(train_dir / "data.csv", index=False)
        else:
            frame.to_parquet(train_dir / "data.parquet", index=False)
        size_mb = sum(p.stat().st_size for p in train_dir.iterdir()) / 1e6
        positives = float(frame["label"].mean())
        del frame
        print(
            f"data: {args.rows:,} rows x {args.features} features, {positives:.1%} positive, "
            f"{args.format} {size_mb:.0f} MB, made in {time.perf_counter() - t0:.1f} s"
        )

        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env.update(
            SM_CHANNEL_TRAIN=str(train_dir),
            SM_MODEL_DIR=str(root / "model"),
            SM_OUTPUT_DATA_DIR=str(root / "output" / "data"),
            SM_OUTPUT_DIR=str(root / "output"),
            SM_INPUT_CONFIG_DIR=str(root / "config"),
            PYTHONPATH=str(REPO),
        )
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "jobs.train", "--model", args.model],
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        if done.returncode != 0:
            print(done.stderr[-3000:])
            raise SystemExit(f"training failed with exit code {done.returncode}")
        evaluation = json.loads((root / "model" / "evaluation.json").read_text())

    m = evaluation["metrics"]
    print(
        f"training job ({args.model}): wall {wall:.1f} s (target < 60), "
        f"peak RSS {peak_mb:.0f} MB (target < 2048)"
    )
    print("stages (s): " + ", ".join(f"{k} {v}" for k, v in evaluation["timings"].items()))
    print(
        f"n_train {evaluation['n_train']:,}, n_test {evaluation['n_test']:,}; test f1 "
        f"{m['f1']:.3f}, pr_auc {m['pr_auc']:.3f}, roc_auc {m['roc_auc']:.3f}, "
        f"threshold {evaluation['threshold']:.3f}"
    )


if __name__ == "__main__":
    main()
