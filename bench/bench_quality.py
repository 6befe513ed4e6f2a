"""Benchmark: the quality monitor's join and metrics at scale, and CBPE against the truth.

Part 1, scale: N captured one-row predictions (SageMaker capture records with an
``inferenceId``, 1,000 per file as the endpoint's writer batches them) and N labels (Model
Monitor's ground-truth format, 10,000 per file) are written to a folder by a child
process; a second child runs the quality function's own readers
(:func:`lambdas.quality_data.read_captures` / ``read_labels``), the join and
:func:`lambdas.quality_metrics.realised` / ``estimated`` over them through an S3 stand-in
that serves the folder. It prints seconds per stage and the child's peak RSS (``VmHWM``),
what the Lambda's memory setting must hold (1-3 GB).

Part 2, estimates: a model trained by the job (``jobs.train``, 20 s budget) on
``mlops.datasets.transactions`` serves fresh rows from the same distribution, then rows
with a covariate shift (``shift=1``) and rows whose labels follow another rule (the
frauds' amounts look normal: concept drift). For each it prints the realised F1 from the
labels and CBPE's estimate from the served probabilities alone. Asserts nothing.

    .venv/bin/python bench/bench_quality.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
PER_CAPTURE_FILE, PER_LABEL_FILE = 1_000, 10_000
FEATURES = ["amount", "hour", "merchant"]


def _write(folder: Path, rows: int) -> None:
    """Capture and label files for ``rows`` predictions made in the last 12 hours."""
    import random

    from lambdas.ground_truth import ground_truth_record

    rng = random.Random(0)
    for start in range(0, rows, PER_CAPTURE_FILE):
        when = NOW - timedelta(hours=12) + timedelta(seconds=start * 43_000 // rows)
        stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = []
        for i in range(start, min(rows, start + PER_CAPTURE_FILE)):
            p = rng.random()
            answer = {
                "predictions": [{"label": int(p >= 0.5), "probabilities": {"0": 1 - p, "1": p}}]
            }
            lines.append(
                json.dumps(
                    {
                        "captureData": {
                            "endpointInput": {
                                "observedContentType": "text/csv",
                                "mode": "INPUT",
                                "data": f"{rng.random() * 100:.2f},{i % 24},m{i % 50}",
                                "encoding": "CSV",
                            },
                            "endpointOutput": {
                                "observedContentType": "application/json",
                                "mode": "OUTPUT",
                                "data": json.dumps(answer),
                                "encoding": "JSON",
                            },
                        },
                        "eventMetadata": {
                            "eventId": f"e{i}",
                            "inferenceId": f"id-{i}",
                            "inferenceTime": stamp,
                        },
                        "eventVersion": "0",
                    }
                )
            )
        path = (
            folder
            / "capture"
            / "ep"
            / "AllTraffic"
            / when.strftime("%Y/%m/%d/%H")
            / f"{start:09d}.jsonl"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    hour = (NOW - timedelta(minutes=30)).strftime("%Y/%m/%d/%H")
    for start in range(0, rows, PER_LABEL_FILE):
        lines = [
            ground_truth_record(f"id-{i}", str(int(rng.random() < 0.5)))
            for i in range(start, min(rows, start + PER_LABEL_FILE))
        ]
        path = folder / "raw" / "ground-truth" / hour / f"{start:09d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


class _FolderS3:
    """Just the S3 calls the readers make, served from ``<root>/<bucket>/<key>``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_paginator(self, name: str) -> Any:
        s3 = self

        class Pages:
            def paginate(self, Bucket: str, Prefix: str, Delimiter: str | None = None) -> Any:
                base = s3.root / Bucket
                keys = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
                keys = [k for k in keys if k.startswith(Prefix)]
                if Delimiter:
                    prefixes = sorted(
                        {Prefix + k[len(Prefix) :].split(Delimiter)[0] + Delimiter for k in keys}
                    )
                    yield {"CommonPrefixes": [{"Prefix": p} for p in prefixes]}
                else:
                    yield {"Contents": [{"Key": k} for k in keys]}

        return Pages()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        import io

        return {"Body": io.BytesIO((self.root / Bucket / Key).read_bytes())}


def _measure(folder: Path) -> dict[str, Any]:
    from lambdas.config import Config
    from lambdas.quality import _join
    from lambdas.quality_data import read_captures, read_labels
    from lambdas.quality_metrics import estimated, realised

    config = Config.from_env(
        {
            "MLOPS_MODEL_NAME": "bench",
            "MLOPS_ENDPOINT_NAME": "ep",
            "MLOPS_CAPTURE_BUCKET": "capture",
            "MLOPS_RAW_BUCKET": "raw",
        }
    )
    clients: Any = type("Clients", (), {"s3": _FolderS3(folder)})()
    spec = {"features": FEATURES, "labels": ["0", "1"], "positive": "1"}
    start = NOW - timedelta(hours=24)
    out: dict[str, Any] = {}
    problems: list[str] = []
    t = time.perf_counter()
    captured = read_captures(config, clients, start, NOW, spec, problems)
    out["read captures s"] = time.perf_counter() - t
    t = time.perf_counter()
    labels = read_labels(config, clients, start, NOW, problems)
    out["read labels s"] = time.perf_counter() - t
    t = time.perf_counter()
    joined, counts = _join(captured, labels, spec)
    out["join s"] = time.perf_counter() - t
    t = time.perf_counter()
    truth = [label == "1" for _, _, label in joined]
    said = [s.predicted == "1" for _, s, _ in joined]
    scores = [s.score for _, s, _ in joined]
    realised(truth, said, scores)
    estimated(said, scores)
    out["metrics s"] = time.perf_counter() - t
    out["labelled rows"] = counts["labelled_rows"]
    out["problems"] = len(problems)
    status = Path("/proc/self/status").read_text()
    out["peak MB"] = (
        int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024
    )
    return out


def scale(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--write", str(folder), "--rows", str(rows)], check=True
        )
        print(f"wrote {rows:,} captures + {rows:,} labels in {time.perf_counter() - t:.1f} s")
        done = subprocess.run(
            [sys.executable, __file__, "--measure", str(folder)],
            check=True,
            capture_output=True,
            text=True,
        )
        figures = json.loads(done.stdout)
    total = sum(v for k, v in figures.items() if k.endswith(" s"))
    print(f"\n== join + metrics, {rows:,} predictions x {rows:,} labels (one process)")
    for name, value in figures.items():
        print(f"{name:>16}: {value:,.2f}" if isinstance(value, float) else f"{name:>16}: {value:,}")
    print(f"{'total s':>16}: {total:,.2f}")


def estimates(seconds: int) -> None:
    import numpy as np
    import pandas as pd

    from jobs import inference
    from jobs import train as job
    from lambdas.quality_metrics import estimated, realised
    from mlops import datasets

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        datasets.transactions(20_000, fraud_rate=0.05, seed=1).to_csv(
            root / "train" / "d.csv", index=False
        )
        job.main(
            [
                "--train",
                str(root / "train"),
                "--model-dir",
                str(root / "model"),
                "--output-data-dir",
                str(root / "out"),
                "--max-seconds",
                str(seconds),
            ]
        )
        model = inference.model_fn(str(root / "model"))
        fresh = datasets.transactions(20_000, fraud_rate=0.05, seed=2)
        shifted = datasets.transactions(20_000, fraud_rate=0.05, shift=1.0, seed=3)
        concept = fresh.copy()
        flip = np.random.default_rng(4).random(len(concept)) < 0.5
        concept.loc[flip & (concept["label"] == 1), "label"] = 0  # half the frauds unlabelled
        print("\n== CBPE estimate vs realised F1 (20,000 served rows each)")
        print(f"{'traffic':>34} {'realised F1':>12} {'estimated F1':>13} {'est. - real':>12}")
        for name, frame in [
            ("in distribution", fresh),
            ("covariate shift (shift=1)", shifted),
            ("concept drift (half frauds flip)", concept),
        ]:
            rows = frame.drop(columns=["label"])
            out = inference.predict_fn(rows, model)
            labels = [str(v) for v in out["labels"]]
            pos = list(map(str, out["classes"])).index("1")
            scores = [float(p[pos]) for p in out["probabilities"]]
            said = [v == "1" for v in labels]
            truth = [str(v) == "1" for v in pd.Series(frame["label"]).tolist()]
            real = realised(truth, said, scores)["f1"]
            guess = estimated(said, scores)["f1"]
            print(f"{name:>34} {real:>12.3f} {guess:>13.3f} {guess - real:>+12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20, help="the job's budget in part 2")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--measure", type=Path)
    args = parser.parse_args()
    if args.write:
        _write(args.write, args.rows)
    elif args.measure:
        print(json.dumps(_measure(args.measure)))
    else:
        scale(args.rows)
        estimates(args.seconds)


if __name__ == "__main__":
    main()
