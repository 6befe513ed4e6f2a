"""A newcomer's commands: sample data, a CSV checked before upload, a stack of one's own,
and wording that cannot mislead."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from infra_helpers import REPO_ROOT
from typer.testing import CliRunner

from jobs.data import check_and_clean
from mlops import cli
from mlops.check import CheckError, check_file
from mlops.cli.common import local_time
from mlops.cli.model import _champion_line
from mlops.sample import SampleError, write_sample
from mlops.stackfile import StackFileError, init_stack

runner = CliRunner()


def test_the_sample_has_every_input_the_readme_uses(tmp_path: Path) -> None:
    sample = write_sample(tmp_path, rows=1000, days=2)

    assert [p.name for p in sample.days] == ["day1.csv", "day2.csv"]
    day1 = pd.read_csv(sample.days[0])
    checked = check_and_clean(day1, target="label")  # what the training job accepts
    assert checked.summary["rows_out"] >= 1000 and set(checked.summary["class_counts"]) == {
        "0",
        "1",
    }
    rows, labels = pd.read_csv(sample.rows), pd.read_csv(sample.labels)
    assert "label" not in rows.columns and rows.columns[0] == "id"
    assert list(labels.columns) == ["inference_id", "label"]
    assert list(labels["inference_id"]) == list(rows["id"]) and rows["id"].is_unique
    # the shifted later day really moves the inputs (drift has something to find)
    assert pd.read_csv(sample.days[1])["distance_km"].mean() > day1["distance_km"].mean() * 1.5


def test_the_sample_never_overwrites(tmp_path: Path) -> None:
    write_sample(tmp_path, rows=1000, days=1)
    before = (tmp_path / "day1.csv").read_bytes()
    with pytest.raises(SampleError, match=r"day1.csv.*already exist"):
        write_sample(tmp_path, rows=1000, days=1, seed=99)
    assert (tmp_path / "day1.csv").read_bytes() == before
    with pytest.raises(SampleError, match="--rows 999"):
        write_sample(tmp_path / "other", rows=999, days=1)
    with pytest.raises(SampleError, match="--days 0"):
        write_sample(tmp_path / "other", rows=1000, days=0)


@pytest.fixture(name="good_csv")
def good_csv_fixture(tmp_path: Path) -> Path:
    return write_sample(tmp_path, rows=1000, days=1).days[0]


def test_a_good_file_passes_every_check(good_csv: Path) -> None:
    report = check_file(good_csv, "label")

    assert report.ok, report.checks
    names = [c.name for c in report.checks]
    assert names == [
        "encoding",
        "CSV",
        "target column",
        "rows",
        "classes",
        "missing values",
        "features",
    ]


@pytest.mark.parametrize(
    ("target", "suggested"),
    [("Label", "label"), ("lable", "label"), ("is_fraud_flag", "label")],
)
def test_a_target_under_another_name_is_named_with_the_fix(
    good_csv: Path, target: str, suggested: str
) -> None:
    report = check_file(good_csv, target)

    assert not report.ok
    [failed] = [c for c in report.checks if not c.ok]
    assert failed.name == "target column"
    assert f"'{target}' is not a column; did you mean '{suggested}'?" in failed.detail
    assert f"mlops:targetColumn: {suggested}" in failed.detail


def test_a_file_without_a_target_column_fails_before_any_upload(tmp_path: Path) -> None:
    path = tmp_path / "features.csv"
    pd.DataFrame({"amount": range(100), "hour": range(100)}).to_csv(path, index=False)

    report = check_file(path, "label")

    assert not report.ok and "'label' is not a column" in report.checks[-1].detail


def test_an_unknown_encoding_is_named_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("city,amount,label\nZürich,1,0\n".encode("latin-1"))
    with pytest.raises(CheckError, match=r"not UTF-8 \(byte 0xfc on line 2\).*iconv -f latin1"):
        check_file(path, "label")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("a,label\n1,0\n".encode("utf-16"))
    with pytest.raises(CheckError, match="UTF-16"):
        check_file(utf16, "label")


def test_the_checks_are_the_jobs_own(tmp_path: Path) -> None:
    path = tmp_path / "one-class.csv"
    pd.DataFrame({"amount": range(100), "label": [0] * 100}).to_csv(path, index=False)

    report = check_file(path, "label")

    [failed] = [c for c in report.checks if not c.ok]
    assert failed.name == "training contract" and "only one class" in failed.detail


def test_mlops_check_exits_1_with_a_table_and_the_fix(good_csv: Path) -> None:
    result = runner.invoke(cli.app, ["check", str(good_csv), "--target", "Label"])

    out = " ".join((result.stdout + result.stderr).split())
    assert result.exit_code == 1
    assert "FAIL" in out and "did you mean 'label'?" in out and "would fail training" in out
    ok = runner.invoke(cli.app, ["check", str(good_csv)])  # the local stack's target: label
    assert ok.exit_code == 0 and "is ready" in ok.stdout


def test_init_writes_a_stack_of_ones_own_and_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.local.yaml").write_text((REPO_ROOT / "Pulumi.local.yaml").read_text())

    path = init_stack(tmp_path, "churn", model_name="churn", target_column="churned")

    text = path.read_text()
    assert "  mlops:modelName: churn" in text and "  mlops:targetColumn: churned" in text
    assert "mlops:modelName: fraud" not in text
    with pytest.raises(StackFileError, match="already exists"):
        init_stack(tmp_path, "churn", model_name="other", target_column="y")
    with pytest.raises(StackFileError, match=r"not written: .*modelName"):
        init_stack(tmp_path, "bad", model_name="Not A Name", target_column="y")
    assert not (tmp_path / "Pulumi.bad.yaml").exists()


def test_the_champion_reads_as_this_model_or_names_the_other() -> None:
    record = {"job": "fraud-a", "packages": [{"version": 1, "status": "Approved"}]}
    assert _champion_line({**record, "champion_now": {"version": 1, "job": "fraud-a"}}) == (
        "champion: v1 (this model)"
    )
    other = _champion_line({**record, "champion_now": {"version": 2, "job": "fraud-b"}})
    assert other == "champion: v2 (fraud-b); this model: v1 Approved"
    assert "none yet" in _champion_line({**record, "champion_now": None})


def test_times_are_shown_in_the_local_zone_with_the_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert local_time(datetime(2026, 12, 1, 12, 0, tzinfo=UTC)) == "2026-12-01 21:00:00 JST"
        assert local_time(datetime(2026, 12, 1, 12, 0)) == "2026-12-01 21:00:00 JST"  # naive: UTC
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
