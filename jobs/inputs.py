"""The job's inputs: read the channels, check and clean, keep sensitive columns, split.

Everything :func:`jobs.train.train` needs before it fits: the cleaned frame (train
channel, then the optional validation and test channels conformed to it), the feature
matrix, the labels and the three index sets.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jobs import data
from jobs.data import DataError
from jobs.profile import file_records, profile_document
from jobs.reference import exclude, load_reference

log = logging.getLogger("jobs.train")


@dataclass
class Inputs:
    checked: data.CheckedData
    parts: list[tuple[Any, pd.DataFrame]]
    sensitive: list[str]
    frame: pd.DataFrame  # every channel's rows, the train channel first
    x: Any
    y: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    test_idx: np.ndarray
    profile: dict[str, Any]  # profile.json: what the data guard compares new data with
    reference: tuple[pd.DataFrame, str, str] | None
    reference_error: dict[str, Any] | None


def _sensitive(hps: dict[str, Any], columns: pd.Index) -> list[str]:
    sensitive = [c.strip() for c in hps["sensitive-features"].split(",") if c.strip()]
    absent = [c for c in sensitive if c not in columns]
    if absent:
        raise DataError(
            f"sensitive feature(s) {', '.join(absent)} not found; columns are: "
            f"{', '.join(map(str, columns[:30]))}"
        )
    return sensitive


def load_inputs(args: argparse.Namespace, hps: dict[str, Any]) -> Inputs:
    """Read, check, clean and split; :class:`DataError` names what is wrong."""
    target = hps["target"]
    parts = data.load_parts(args.train)
    raw = data.join_parts(parts)
    sensitive = _sensitive(hps, raw.columns)
    declared = [c.strip() for c in hps["categorical"].split(",") if c.strip()]
    checked = data.check_and_clean(
        raw,
        target=target,
        categorical=",".join(dict.fromkeys([*declared, *sensitive])),
        drop=hps["drop"],
        min_rows=hps["min-rows"],
        min_class_count=hps["min-class-count"],
    )
    del raw
    if sensitive and hps["use-sensitive-features"] != "true":
        # audited, not learned from: the frame keeps the columns, the model never sees them
        checked.features = [f for f in checked.features if f not in sensitive]
        checked.categorical = [f for f in checked.categorical if f not in sensitive]
        checked.categorical_numeric = [f for f in checked.categorical_numeric if f not in sensitive]
    elif sensitive:  # learned from as declared: numeric unless listed as categorical
        checked.categorical = [f for f in checked.categorical if f in declared]
        checked.categorical_numeric = [
            f for f in checked.categorical_numeric if f in checked.categorical
        ]
    reference: tuple[pd.DataFrame, str, str] | None = None
    reference_error: dict[str, Any] | None = None
    if args.reference:
        try:
            reference = load_reference(args.reference, checked)
            # never learn from the rows every model is judged on
            checked.summary["reference_rows_excluded"] = exclude(checked, reference[0])
        except DataError as exc:
            reference_error = {"error": str(exc)}
            log.warning("reference set not scored: %s", exc)
    profile = profile_document(
        checked.frame,
        target=target,
        features=checked.features,
        categorical=checked.categorical,
        files=file_records(args.train, [p for p, _ in parts], [len(f) for _, f in parts]),
    )
    frames = [checked.frame]
    extra: dict[str, tuple[int, int]] = {}
    offset = len(checked.frame)
    for channel in ("validation", "test"):
        folder = getattr(args, channel)
        if folder:
            loaded = data.load_folder(folder)
            conformed = data.conform(loaded, checked, channel)
            checked.summary.setdefault("channels", {})[channel] = {
                "rows_in": len(loaded),
                "rows_out": len(conformed),
            }
            extra[channel] = (offset, offset + len(conformed))
            offset += len(conformed)
            frames.append(conformed)
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    y = frame[target].to_numpy()
    x = data.prepare_features(frame, checked.features, checked.categorical)
    train_idx, val_idx, test_idx = data.split_indices(
        y[: len(checked.frame)],
        test_size=hps["test-size"],
        validation_size=hps["validation-size"],
        seed=hps["seed"],
        need_validation="validation" not in extra,
        need_test="test" not in extra,
    )
    if "validation" in extra:
        val_idx = np.arange(*extra["validation"])
    if "test" in extra:
        test_idx = np.arange(*extra["test"])
    return Inputs(
        checked=checked,
        parts=parts,
        sensitive=sensitive,
        frame=frame,
        x=x,
        y=y,
        train_idx=train_idx,
        val_idx=val_idx,
        test_idx=test_idx,
        profile=profile,
        reference=reference,
        reference_error=reference_error,
    )
