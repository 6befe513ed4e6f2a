"""Loading, checking, cleaning and splitting the training data.

Every check runs before any fitting and fails with a :class:`DataError` whose
message is the one line SageMaker shows in ``describe_training_job``. Input
files are only ever read.
"""

# Python 3.9 runs this in the SageMaker scikit-learn 1.2-1 container: no zip(strict=).
# ruff: noqa: B905
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from jobs.errors import JobError
from jobs.inference import category_value

CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


class DataError(JobError, ValueError):
    """The data cannot be trained on; the message says why, in one line."""


@dataclass
class CheckedData:
    """Cleaned data ready to split, plus the summary of what the checks saw."""

    frame: pd.DataFrame  # features in ``features`` order, then the target
    features: list[str]
    categorical: list[str]
    target: str
    summary: dict[str, Any] = field(default_factory=dict)
    # categorical columns pandas read as numbers: serving parses their values the same way
    categorical_numeric: list[str] = field(default_factory=list)


def _names(columns: Sequence[Any], limit: int = 30) -> str:
    names = [str(c) for c in columns]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _is_data_file(path: Path) -> bool:
    name = path.name.lower()
    if name.startswith("."):
        return False
    return name.endswith(CSV_SUFFIXES) or name.endswith(PARQUET_SUFFIXES)


def list_data_files(folder: str | Path) -> list[Path]:
    """Return the CSV and Parquet files under ``folder`` (recursively), sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_data_file(p))
    if not files:
        raise DataError(f"no CSV or Parquet files found under {root}")
    return files


def _read_file(path: Path) -> pd.DataFrame:
    try:
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            return pd.read_parquet(path)
        # low_memory=False: one dtype per column instead of a DtypeWarning on big files
        return pd.read_csv(path, low_memory=False)
    except Exception as exc:  # any parser failure is the same story for the user
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read data file {path.name}: {reason}") from exc


def read_data_file(path: Path) -> pd.DataFrame:
    """One CSV/Parquet file, its column names stripped."""
    frame = _read_file(path)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def load_parts(folder: str | Path) -> list[tuple[Path, pd.DataFrame]]:
    """Every CSV/Parquet file under ``folder`` with its frame (columns stripped).

    All files must have the same columns (in any order); frames come in the first
    file's column order.
    """
    files = list_data_files(folder)
    parts: list[tuple[Path, pd.DataFrame]] = []
    columns: list[str] | None = None
    for path in files:
        frame = read_data_file(path)
        if columns is None:
            columns = list(frame.columns)
        elif set(frame.columns) != set(columns):
            raise DataError(
                f"data file {path.name} has columns {_names(frame.columns)}; "
                f"{files[0].name} has {_names(columns)}"
            )
        else:
            frame = frame[columns]
        parts.append((path, frame))
    return parts


def join_parts(parts: Sequence[tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    frames = [frame for _, frame in parts]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def load_folder(folder: str | Path) -> pd.DataFrame:
    """Read every CSV/Parquet file under ``folder`` into one frame (see :func:`load_parts`)."""
    return join_parts(load_parts(folder))


def _split_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def _labels_to_native(y: pd.Series) -> pd.Series:
    """Whole-number float labels (an int column that had gaps) become ints."""
    if pd.api.types.is_float_dtype(y.dtype):
        values = y.to_numpy()
        if np.all(np.isfinite(values)) and np.all(values == np.round(values)):
            return y.astype(np.int64)
    return y


def check_and_clean(
    frame: pd.DataFrame,
    *,
    target: str,
    categorical: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    min_rows: int = 50,
    min_class_count: int = 10,
) -> CheckedData:
    """Check the raw frame and return it cleaned, with a summary of the checks.

    Cleaning removes rows without a label and exact duplicate rows (so a row
    cannot land in both train and test). Missing values and infinities stay:
    the fitted pipeline imputes them, so serving treats them the same way.
    """
    cat_cols = _split_list(categorical)
    drop_cols = _split_list(drop)
    columns = [str(c) for c in frame.columns]
    rows_in = len(frame)
    if rows_in == 0:
        raise DataError(f"the data has no rows (columns are: {_names(columns)})")
    if target not in columns:
        raise DataError(f"target column '{target}' not found; columns are: {_names(columns)}")
    for kind, wanted in (("categorical", cat_cols), ("drop", drop_cols)):
        absent = [c for c in wanted if c not in columns]
        if absent:
            raise DataError(
                f"{kind} column(s) {_names(absent)} not found; columns are: {_names(columns)}"
            )
    if target in cat_cols or target in drop_cols:
        raise DataError(f"target column '{target}' cannot also be categorical or dropped")

    features = [c for c in columns if c != target and c not in drop_cols]
    if not features:
        raise DataError(f"no feature columns besides the target '{target}'")
    empty = [c for c in features if frame[c].isna().all()]
    if empty:
        raise DataError(f"column(s) {_names(empty)} are empty (every value is missing)")
    numeric = [c for c in features if c not in cat_cols]
    bad = [
        c
        for c in numeric
        if not (
            pd.api.types.is_numeric_dtype(frame[c].dtype)
            or pd.api.types.is_bool_dtype(frame[c].dtype)
        )
    ]
    if bad:
        example = frame[bad[0]].dropna()
        example = example[pd.to_numeric(example, errors="coerce").isna()]
        sample = f" (e.g. {str(example.iloc[0])[:40]!r} in '{bad[0]}')" if len(example) else ""
        raise DataError(
            f"column(s) {_names(bad)} are not numeric{sample}; "
            "fix the data or declare them with the 'categorical' hyperparameter"
        )

    frame = frame[[*features, target]]
    missing = {c: int(n) for c, n in frame.isna().sum().items()}
    infinities = {}
    for c in numeric:
        if pd.api.types.is_float_dtype(frame[c].dtype):
            infinities[c] = int(np.isinf(frame[c].to_numpy()).sum())
        else:
            infinities[c] = 0

    no_label = frame[target].isna()
    target_missing = int(no_label.sum())
    if target_missing:
        frame = frame.loc[~no_label]
    duplicated = frame.duplicated()
    duplicates = int(duplicated.sum())
    if duplicates:
        frame = frame.loc[~duplicated]
    frame = frame.reset_index(drop=True)

    rows = len(frame)
    if rows < min_rows:
        raise DataError(
            f"only {rows} usable rows (of {rows_in}; {target_missing} without a label, "
            f"{duplicates} duplicates); at least {min_rows} are needed"
        )
    frame[target] = _labels_to_native(frame[target])
    counts = frame[target].value_counts()
    if len(counts) < 2:
        raise DataError(
            f"target '{target}' has only one class ({_names(counts.index)}); "
            "at least two are needed"
        )
    small = counts[counts < max(min_class_count, 3)]
    if len(small):
        shown = ", ".join(f"'{k}' has {int(v)}" for k, v in small.items())
        raise DataError(
            f"too few rows per class to split into train/validation/test: {shown}; "
            f"each class needs at least {max(min_class_count, 3)}"
        )

    summary = {
        "rows_in": rows_in,
        "rows_out": rows,
        "duplicates_dropped": duplicates,
        "target_missing_dropped": target_missing,
        "missing_values": missing,
        "infinities": infinities,
        "class_counts": {str(k): int(v) for k, v in sorted(counts.items(), key=_label_key)},
    }
    return CheckedData(
        frame=frame,
        features=features,
        categorical=[c for c in features if c in cat_cols],
        target=target,
        summary=summary,
        categorical_numeric=[
            c for c in features if c in cat_cols and pd.api.types.is_numeric_dtype(frame[c].dtype)
        ],
    )


def _label_key(item: tuple[Any, Any]) -> tuple[str, Any]:
    # sorts ints as ints and strings as strings; mixed types fall back to type name
    return (type(item[0]).__name__, item[0])


def conform(frame: pd.DataFrame, checked: CheckedData, channel: str) -> pd.DataFrame:
    """Check an extra channel (validation/test) against the training columns."""
    columns = [str(c) for c in frame.columns]
    needed = [*checked.features, checked.target]
    absent = [c for c in needed if c not in columns]
    if absent:
        raise DataError(f"{channel} data lacks column(s) {_names(absent)}")
    frame = frame[needed]
    frame = frame.loc[frame[checked.target].notna()].drop_duplicates().reset_index(drop=True)
    if frame.empty:
        raise DataError(f"{channel} data has no labelled rows")
    frame[checked.target] = _labels_to_native(frame[checked.target])
    bad = [
        c
        for c in checked.features
        if c not in checked.categorical and not pd.api.types.is_numeric_dtype(frame[c].dtype)
    ]
    if bad:
        raise DataError(f"{channel} data: column(s) {_names(bad)} are not numeric")
    known = set(checked.frame[checked.target].unique().tolist())
    unseen = sorted({str(v) for v in frame[checked.target].unique().tolist() if v not in known})
    if unseen:
        raise DataError(f"{channel} data has label(s) not in the training data: {_names(unseen)}")
    return frame


def prepare_features(
    frame: pd.DataFrame, features: list[str], categorical: list[str]
) -> np.ndarray | pd.DataFrame:
    """Turn a frame into what the pipeline takes.

    Without categorical columns that is a float array in ``features`` order
    (cheapest to serve); with them, a frame whose categorical columns hold
    strings (normalised like serving does) and numeric columns floats.
    """
    if not categorical:
        return frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    out = {}
    for c in features:
        if c in categorical:
            values = frame[c].map(category_value, na_action="ignore").astype(object)
            out[c] = values.where(values.notna(), np.nan)  # pd.NA would trip the imputer
        else:
            out[c] = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(out, columns=features)


def split_indices(
    y: np.ndarray,
    *,
    test_size: float,
    validation_size: float,
    seed: int,
    need_validation: bool = True,
    need_test: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/validation/test row indices.

    ``test_size`` and ``validation_size`` are fractions of all rows. A split
    the caller already has (a separate channel) is skipped and comes back empty.
    """
    index = np.arange(len(y))
    empty = np.array([], dtype=np.int64)
    test_idx = empty
    rest = index
    try:
        if need_test:
            rest, test_idx = train_test_split(
                index, test_size=test_size, stratify=y, random_state=seed
            )
        val_idx = empty
        if need_validation:
            fraction = validation_size / (1.0 - test_size) if need_test else validation_size
            rest, val_idx = train_test_split(
                rest, test_size=fraction, stratify=y[rest], random_state=seed + 1
            )
    except ValueError as exc:
        raise DataError(f"cannot split the data: {exc}") from exc
    return np.sort(rest), np.sort(val_idx), np.sort(test_idx)


def oversample(train_idx: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Resample the training rows of each smaller class up to the largest class."""
    rng = np.random.default_rng(seed)
    y_train = y[train_idx]
    classes, counts = np.unique(y_train, return_counts=True)
    target = int(counts.max())
    parts = [train_idx]
    for cls, count in zip(classes, counts):
        if count < target:
            members = train_idx[y_train == cls]
            parts.append(rng.choice(members, size=target - int(count), replace=True))
    out = np.concatenate(parts)
    rng.shuffle(out)
    return out
