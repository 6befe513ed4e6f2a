"""`mlops sample`: the demo's data set as files, so every README step has its input.

Labelled daily files (``day1.csv`` ...: day 1 as the model first sees the world, later
days shifted as in the demo, so drift has something to find), a features-only
``rows.csv`` with an ``id`` column for ``mlops predict --id-column id``, and
``labels.csv`` (``inference_id,label``): the true outcomes of those rows for
``mlops label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops import datasets
from mlops.errors import MlopsError

#: Day 1 is the world as trained on; later days are shifted as in the demo.
LATER_DAY_SHIFT = 1.0


class SampleError(MlopsError, ValueError):
    """The sample cannot be written as asked."""


@dataclass(frozen=True)
class Sample:
    days: list[Path]
    rows: Path  # features with an id column, for predict
    labels: Path  # inference_id,label of those rows, for label


def write_sample(out: Path, *, rows: int, days: int, seed: int = 7, served: int = 200) -> Sample:
    """Write the sample under ``out``; existing files are never overwritten."""
    if rows < 1000:
        # 2% fraud: fewer rows leave too few positives to split train/validation/test
        raise SampleError(f"--rows {rows}: a day needs at least 1000 rows to train on")
    if not 1 <= days <= 30:
        raise SampleError(f"--days {days}: 1 to 30")
    names = [f"day{d}.csv" for d in range(1, days + 1)] + ["rows.csv", "labels.csv"]
    taken = [n for n in names if (out / n).exists()]
    if taken:
        raise SampleError(
            f"{out}: {', '.join(taken)} already exist; choose another --out or remove them"
        )
    paths = []
    for day in range(1, days + 1):
        frame = datasets.transactions(
            rows,
            fraud_rate=0.02 if day == 1 else 0.03,
            shift=0.0 if day == 1 else LATER_DAY_SHIFT,
            seed=seed + day - 1,
        )
        paths.append(datasets.write_csv(frame, out / f"day{day}.csv"))
    # traffic after the last day: what predict sends, and what really happened to it
    traffic = datasets.transactions(
        served, fraud_rate=0.03, shift=LATER_DAY_SHIFT, seed=seed + days
    ).head(served)
    ids = [f"tx-{i:05d}" for i in range(1, len(traffic) + 1)]
    features = traffic.loc[:, list(datasets.FEATURES)].copy()
    features.insert(0, "id", ids)
    rows_path = datasets.write_csv(features, out / "rows.csv")
    labels = traffic.loc[:, ["label"]].copy()
    labels.insert(0, "inference_id", ids)
    labels_path = datasets.write_csv(labels, out / "labels.csv")
    return Sample(paths, rows_path, labels_path)
