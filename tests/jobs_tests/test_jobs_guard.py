"""The data guard, profile.json and the reference set, through the real job.

A champion trains on day 1; challengers train on day 1 + a day 2 that is clean,
corrupted (shuffled, coin-flip, flipped labels, one class) or day 1 sent again. The guard
must hold on clean data and trip on each corruption, by the rule that names it.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from jobs.guard import psi
from jobs.profile import row_hashes
from jobs.train import main
from mlops.datasets import transactions

ROWS = 2000


def _job(
    root: Path,
    files: dict[str, pd.DataFrame],
    *,
    champion: Path | None = None,
    reference: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    (root / "train").mkdir(parents=True)
    for name, frame in files.items():
        frame.to_csv(root / "train" / name, index=False)
    argv = [
        "--train",
        str(root / "train"),
        "--model-dir",
        str(root / "model"),
        "--output-data-dir",
        str(root / "data"),
        "--output-dir",
        str(root / "out"),
        "--max-candidates",
        "3",
    ]
    if champion is not None:
        argv += ["--champion", str(champion)]
    if reference is not None:
        argv += ["--reference", str(reference)]
    assert main(argv) == 0, (root / "out" / "failure").read_text()
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        for path in (root / "model").iterdir():
            tar.add(path, arcname=path.name)
    return root, json.loads((root / "model" / "evaluation.json").read_text())


@pytest.fixture(scope="module")
def day1() -> pd.DataFrame:
    return transactions(ROWS, seed=11)


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, day1: pd.DataFrame) -> Path:
    folder, _ = _job(tmp_path_factory.mktemp("champion"), {"day1.csv": day1})
    return folder


def _day2(kind: str, day1: pd.DataFrame) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    day2 = transactions(ROWS, seed=12, shift=0.1)
    if kind == "shuffled":
        day2["label"] = rng.permutation(day2["label"].to_numpy())
    elif kind == "coin-flip":
        day2["label"] = (rng.random(len(day2)) < 0.5).astype(int)
    elif kind == "flipped":
        day2["label"] = 1 - day2["label"]
    elif kind == "one-class":
        day2["label"] = 0
    elif kind == "resent":
        return day1.sample(frac=0.6, random_state=3)
    return day2


def _challenger(tmp_path: Path, champion: Path, day1: pd.DataFrame, kind: str):
    files = {"day1.csv": day1, "day2.csv": _day2(kind, day1)}
    return _job(
        tmp_path / kind,
        files,
        champion=champion / "model.tar.gz",
        reference=champion / "data" / "test.csv",
    )[1]


def _rules(evaluation: dict[str, Any]) -> dict[str, dict[str, Any]]:
    guard = evaluation["data_guard"]
    assert guard["status"] == "checked", guard
    return {rule["rule"]: rule for rule in guard["checks"]}


@pytest.mark.parametrize(
    ("kind", "tripped"),
    [
        ("clean", set()),
        ("shuffled", {"label-agreement", "label-learnability"}),
        ("coin-flip", {"label-shift", "label-agreement", "label-learnability"}),
        ("flipped", {"label-shift", "label-agreement"}),
        ("one-class", {"class-coverage", "label-agreement"}),
        ("resent", {"duplicates"}),
    ],
)
def test_the_guard_trips_on_each_corruption_by_its_rule(
    tmp_path: Path, champion: Path, day1: pd.DataFrame, kind: str, tripped: set[str]
) -> None:
    evaluation = _challenger(tmp_path, champion, day1, kind)
    rules = _rules(evaluation)
    failed = {
        name for name, rule in rules.items() if rule["severity"] == "guard" and not rule["held"]
    }
    assert failed == tripped, rules
    assert evaluation["data_guard"]["held"] is (not tripped)
    assert evaluation["data_guard"]["new_files"] == ["day2.csv"]
    assert {"feature-psi", "out-of-range"} <= set(rules)
    assert all(rules[r]["severity"] == "info" for r in ("feature-psi", "out-of-range"))
    report = (tmp_path / kind / "data" / "report.html").read_text()
    assert "Data guard" in report and "Reference set" in report
    assert report.count("TRIPPED") >= len(tripped)


def test_label_shift_is_the_psi_of_the_label_shares(
    tmp_path: Path, champion: Path, day1: pd.DataFrame
) -> None:
    evaluation = _challenger(tmp_path, champion, day1, "coin-flip")
    profile = json.loads((champion / "model" / "profile.json").read_text())
    old = profile["label_counts"]
    day2 = _day2("coin-flip", day1).drop_duplicates()  # the guard counts distinct rows
    new = day2["label"].astype(str).value_counts()
    keys = sorted(old)
    expected = [old[k] / sum(old.values()) for k in keys]
    actual = [new.get(k, 0) / len(day2) for k in keys]
    value = _rules(evaluation)["label-shift"]["value"]
    assert value == pytest.approx(psi(expected, actual), abs=1e-5)
    by_hand = sum((a - e) * np.log(a / e) for e, a in zip(expected, actual, strict=True))
    assert value == pytest.approx(by_hand, rel=1e-3)


def test_the_reference_set_is_scored_by_both_and_never_trained_on(
    tmp_path: Path, champion: Path, day1: pd.DataFrame
) -> None:
    reference = champion / "data" / "test.csv"
    evaluation = _challenger(tmp_path, champion, day1, "clean")
    section = evaluation["reference"]
    assert section["sha256"] == hashlib.sha256(reference.read_bytes()).hexdigest()
    rows = pd.read_csv(reference)
    assert section["n"] == len(rows.drop_duplicates())
    assert 0 < section["metrics"]["f1"] <= 1 and 0 < section["champion"]["metrics"]["f1"] <= 1
    # day 1 holds the champion's test split: every such row is dropped from training
    assert evaluation["data_checks"]["reference_rows_excluded"] == len(rows.drop_duplicates())


def test_the_champions_reference_score_is_its_own_test_score(
    tmp_path: Path, champion: Path, day1: pd.DataFrame
) -> None:
    """The reference set is the champion's test split: scored again, the same F1."""
    own = json.loads((champion / "model" / "evaluation.json").read_text())
    evaluation = _challenger(tmp_path, champion, day1, "clean")
    again = evaluation["reference"]["champion"]["metrics"]["f1"]
    assert again == pytest.approx(own["metrics"]["f1"], abs=1e-9)


def test_the_profile_names_the_files_and_hashes_every_row(champion: Path) -> None:
    profile = json.loads((champion / "model" / "profile.json").read_text())
    day1 = champion / "train" / "day1.csv"
    assert profile["files"] == [
        {
            "name": "day1.csv",
            "sha256": hashlib.sha256(day1.read_bytes()).hexdigest(),
            "rows": len(pd.read_csv(day1)),
        }
    ]
    assert profile["rows"] == len(set(profile["row_hashes"]))
    assert profile["row_hashes_complete"] is True


def test_row_hashes_ignore_int_versus_float() -> None:
    ints = pd.DataFrame({"a": [1, 2, 3], "label": [0, 1, 0]})
    floats = ints.astype(float)
    other = ints.assign(a=[1, 2, 4])
    assert (row_hashes(ints, ["a", "label"], []) == row_hashes(floats, ["a", "label"], [])).all()
    assert (
        row_hashes(ints, ["a", "label"], []) != row_hashes(other, ["a", "label"], [])
    ).sum() == 1


def test_no_new_file_and_an_old_champion_skip_the_guard(
    tmp_path: Path, champion: Path, day1: pd.DataFrame
) -> None:
    _, same = _job(tmp_path / "same", {"day1.csv": day1}, champion=champion / "model.tar.gz")
    assert same["data_guard"]["status"] == "skipped"
    assert "did not train on" in same["data_guard"]["reason"]

    old = tmp_path / "old-champion"
    old.mkdir()
    for path in (champion / "model").iterdir():
        if path.name != "profile.json":
            (old / path.name).write_bytes(path.read_bytes())
    day2 = {"day1.csv": day1, "day2.csv": _day2("clean", day1)}
    _, evaluation = _job(tmp_path / "vs-old", day2, champion=old)
    assert evaluation["data_guard"]["status"] == "skipped"
    assert "profile.json" in evaluation["data_guard"]["reason"]


def test_a_champion_that_cannot_be_loaded_is_a_guard_error(
    tmp_path: Path, day1: pd.DataFrame
) -> None:
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"not a tar archive")
    day2 = {"day1.csv": day1, "day2.csv": _day2("clean", day1)}
    _, evaluation = _job(tmp_path / "job", day2, champion=broken)
    assert evaluation["data_guard"]["status"] == "error"
    assert "not a tar archive" in evaluation["data_guard"]["reason"]


def test_a_reference_set_of_other_columns_is_an_error_not_a_crash(
    tmp_path: Path, day1: pd.DataFrame
) -> None:
    reference = tmp_path / "ref" / "reference.csv"
    reference.parent.mkdir()
    pd.DataFrame({"x": range(30), "label": [0, 1] * 15}).to_csv(reference, index=False)
    _, evaluation = _job(tmp_path / "job", {"day1.csv": day1}, reference=reference.parent)
    assert "lacks column" in evaluation["reference"]["error"]
    assert "sha256" not in evaluation["reference"]
