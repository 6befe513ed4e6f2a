"""``profile.json``: what a model learned from, for the data guard of the job after it.

Written into the model folder (so it travels in ``model.tar.gz`` and reaches the next
job in its champion channel): the training files by name and SHA-256, the label counts,
each numeric feature's range and a hash of every training row. A later job tells its
new rows (files the champion never saw) from old ones with it, and the guard compares
them with what the champion learned (docs/contracts.md, "profile.json").
"""

# Python 3.9 in the SageMaker scikit-learn container: no zip(strict=)
# ruff: noqa: B905
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.inference import category_value, sha256_file

PROFILE_VERSION = 1
MAX_ROW_HASHES = 200_000  # ~4 MB of JSON; beyond it a deterministic sample


file_digest = sha256_file


def file_records(root: str | Path, paths: Sequence[Path], rows: Sequence[int]) -> list[dict]:
    """``[{"name", "sha256", "rows"}]``: each file by its path under ``root``."""
    base = Path(root)
    return [
        {"name": path.relative_to(base).as_posix(), "sha256": file_digest(path), "rows": int(n)}
        for path, n in zip(paths, rows)
    ]


def row_hashes(
    frame: pd.DataFrame, columns: Sequence[str], categorical: Sequence[str]
) -> np.ndarray:
    """One uint64 per row of ``columns``, the same for the same values in any later job.

    Numeric columns are hashed as float64 and categorical ones as the strings serving
    sees, so a column read as int in one job and float in the next hashes alike.
    """
    normal = {}
    for name in columns:
        column = frame[name]
        if name in categorical or not (
            pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype)
        ):
            normal[name] = column.map(category_value, na_action="ignore").astype(object)
        else:
            normal[name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
    table = pd.DataFrame(normal, columns=list(columns))
    return pd.util.hash_pandas_object(table, index=False).to_numpy(dtype=np.uint64)


def _sample(hashes: np.ndarray) -> tuple[list[str], bool]:
    unique = np.unique(hashes)
    complete = len(unique) <= MAX_ROW_HASHES
    if not complete:  # the smallest hashes: the same rows in every job, a fair sample
        unique = unique[:MAX_ROW_HASHES]
    return [f"{int(h):016x}" for h in unique], complete


def profile_document(
    frame: pd.DataFrame,
    *,
    target: str,
    features: Sequence[str],
    categorical: Sequence[str],
    files: list[dict],
) -> dict[str, Any]:
    """The whole ``profile.json`` for the cleaned training-channel rows in ``frame``."""
    hashes, complete = _sample(row_hashes(frame, [*features, target], categorical))
    ranges = {}
    for name in features:
        if name in categorical:
            continue
        values = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        if len(finite):
            ranges[name] = [float(finite.min()), float(finite.max())]
    counts = frame[target].value_counts()
    return {
        "version": PROFILE_VERSION,
        "target": target,
        "features": list(features),
        "categorical": list(categorical),
        "rows": len(frame),
        "files": files,
        "label_counts": {str(k): int(v) for k, v in counts.items()},
        "ranges": ranges,
        "row_hashes": hashes,
        "row_hashes_complete": complete,
    }


def known_hashes(profile: Mapping[str, Any]) -> np.ndarray:
    """The profile's row hashes as a sorted uint64 array (for ``np.isin``)."""
    values = profile.get("row_hashes") or []
    return np.array(sorted(int(h, 16) for h in values), dtype=np.uint64)
