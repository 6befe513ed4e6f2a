"""Serving overhead: ``predict_fn`` against the bare fitted pipeline's ``predict_proba``.

Trains a small model with ``jobs.train`` (20 numeric features), loads it with
``model_fn`` and times, on one row and on 1,000 rows:

- bare: ``pipeline.predict_proba(x)`` on the float array serving builds;
- ``predict_fn``: shape checks, ``predict_proba`` and the tuned threshold;
- the whole request: ``input_fn`` (CSV text) -> ``predict_fn`` -> ``output_fn`` (JSON).

Prints median microseconds and the ratio to bare (target for one row: under 1.5x).

    .venv/bin/python bench/bench_inference.py [--model gbm|logreg]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_train import make_data

from jobs import inference, train


def _median_us(*fns: Callable[[], Any], seconds: float = 2.0) -> list[float]:
    """Median microseconds of each function, runs interleaved so load spikes hit all alike."""
    for fn in fns:
        fn()  # warm up
    runs: list[list[float]] = [[] for _ in fns]
    deadline = time.perf_counter() + seconds
    while len(runs[0]) < 30 or time.perf_counter() < deadline:
        for fn, times in zip(fns, runs, strict=True):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return [statistics.median(times) * 1e6 for times in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="gbm")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        frame = make_data(20_000, 20, seed=1)
        frame.to_csv(root / "train" / "data.csv", index=False)
        os.environ["SM_OUTPUT_DIR"] = str(root / "output")
        os.environ["SM_INPUT_CONFIG_DIR"] = str(root / "config")
        code = train.main(
            [
                "--train", str(root / "train"),
                "--model-dir", str(root / "model"),
                "--output-data-dir", str(root / "output" / "data"),
                "--model", args.model,
            ]
        )  # fmt: skip
        if code != 0:
            raise SystemExit("training failed")
        model = inference.model_fn(str(root / "model"))

    pipeline = model["pipeline"]
    x_all = frame.drop(columns="label").to_numpy()[:1000]
    print(f"model: {args.model}, {x_all.shape[1]} features, threshold {model['threshold']:.3f}")
    print(
        f"{'rows':>6} {'bare us':>10} {'predict_fn us':>14} {'ratio':>6} "
        f"{'request us':>11} {'ratio':>6}"
    )
    for n in (1, 1000):
        x = np.ascontiguousarray(x_all[:n])
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in x)
        parsed = inference.input_fn(body, "text/csv")
        assert isinstance(parsed.values, np.ndarray) and parsed.values.shape == x.shape

        bare, ours, whole = _median_us(
            lambda x=x: pipeline.predict_proba(x),
            lambda parsed=parsed: inference.predict_fn(parsed, model),
            lambda body=body: inference.output_fn(
                inference.predict_fn(inference.input_fn(body, "text/csv"), model),
                "application/json",
            ),
        )
        print(
            f"{n:>6} {bare:>10.0f} {ours:>14.0f} {ours / bare:>6.2f} "
            f"{whole:>11.0f} {whole / bare:>6.2f}"
        )


if __name__ == "__main__":
    main()
