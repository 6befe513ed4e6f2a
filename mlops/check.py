"""`mlops check FILE --target COL`: a CSV against the training contract, before upload.

The same checks the training job runs (:func:`jobs.data.check_and_clean`, the feature
profile's flags), no cloud needed; plus what the job cannot say helpfully: which
encoding the file is in, and which column the target probably is when its name is off.
"""

from __future__ import annotations

import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from jobs.data import DataError, check_and_clean
from jobs.eda import profile_features
from mlops.errors import MlopsError

#: Column names people give the label, for a suggestion when --target is not found.
USUAL_TARGETS = ("label", "target", "y", "class", "outcome", "is_fraud", "fraud", "churn")


class CheckError(MlopsError, ValueError):
    """The file cannot be checked at all (missing, not text)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    path: Path
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))


def _decode(path: Path, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CheckError(
            f"{path}: the file is UTF-16; the training job reads UTF-8. Save it as UTF-8 "
            f"(e.g. `iconv -f utf-16 -t utf-8 {path} > {path.stem}-utf8.csv`)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CheckError(
            f"{path}: not UTF-8 (byte 0x{data[exc.start]:02x} on line {line}); the training "
            "job reads UTF-8. Save it as UTF-8, e.g. from Latin-1: "
            f"`iconv -f latin1 -t utf-8 {path} > {path.stem}-utf8.csv`"
        ) from None


def suggest_target(target: str, columns: list[str]) -> str:
    """The likeliest target column for a name that is not one, as a hint (or "")."""
    by_case = [c for c in columns if c.lower() == target.lower()]
    close = by_case or difflib.get_close_matches(target, columns, n=1, cutoff=0.6)
    usual = [c for c in columns if c.lower() in USUAL_TARGETS]
    guess = (close or usual or [""])[0]
    if not guess:
        return ""
    return f"; did you mean '{guess}'? (`--target {guess}`, and `mlops:targetColumn: {guess}`)"


def check_file(
    path: Path, target: str, *, categorical: str | None = None, min_rows: int = 50
) -> Report:
    """Every check of ``path`` for a model predicting ``target``."""
    if not path.is_file():
        raise CheckError(f"{path}: no such file")
    text = _decode(path, path.read_bytes())
    report = Report(path, target)
    report.add("encoding", True, "UTF-8")
    try:
        frame = pd.read_csv(io.StringIO(text), low_memory=False)
    except Exception as exc:  # any parser failure: the job would fail the same way
        report.add("CSV", False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return report
    frame.columns = [str(c).strip() for c in frame.columns]
    columns = list(frame.columns)
    report.add("CSV", True, f"{len(frame)} rows, {len(columns)} columns")
    if target not in columns:
        report.add(
            "target column",
            False,
            f"'{target}' is not a column{suggest_target(target, columns)}; "
            f"columns are: {', '.join(columns[:30])}",
        )
        return report
    report.add("target column", True, f"'{target}'")
    try:
        checked = check_and_clean(frame, target=target, categorical=categorical, min_rows=min_rows)
    except DataError as exc:
        report.add("training contract", False, str(exc))
        return report
    s = checked.summary
    counts = s["class_counts"]
    report.add(
        "rows",
        True,
        f"{s['rows_out']} usable of {s['rows_in']} ({s['duplicates_dropped']} duplicates and "
        f"{s['target_missing_dropped']} without a label will be dropped)",
    )
    smallest = min(counts.values())
    share = smallest / sum(counts.values())
    report.add(
        "classes",
        True,
        ", ".join(f"{k}: {v}" for k, v in counts.items())
        + (f" (minority {share:.1%}: imbalance handled by the job)" if share < 0.2 else ""),
    )
    missing = {k: v for k, v in s["missing_values"].items() if v}
    report.add(
        "missing values",
        True,
        ", ".join(f"{k}: {v}" for k, v in missing.items()) + " (imputed by the model)"
        if missing
        else "none",
    )
    positive = min(counts, key=lambda k: counts[k]) if len(counts) == 2 else None
    if positive is not None:
        as_labels = {str(v): v for v in checked.frame[target].unique()}
        profile = profile_features(
            checked.frame,
            target=target,
            features=checked.features,
            categorical=checked.categorical,
            positive=as_labels[positive],
        )
        flagged = profile.get("flagged", {})
        report.add(
            "features",
            not any("leaky" in f for f in flagged.values()),
            f"{len(checked.features)} features"
            + (
                "; flagged: " + ", ".join(f"{k} ({', '.join(v)})" for k, v in flagged.items())
                if flagged
                else "; none flagged (leaky, constant, high-cardinality)"
            ),
        )
    return report
