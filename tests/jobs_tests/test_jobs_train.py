"""The training contract end to end, in process: artifacts, cleaning, imbalance, bad data."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from bisect import bisect_right
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from jobs_helpers import (
    DATA_CHECK_KEYS,
    EVALUATION_FIELDS,
    METRIC_KEYS,
    Contract,
    breast_cancer,
    imbalanced,
    iris_named,
    make_contract,
    tree_digest,
    wine,
)

from jobs import config, train

REPO = Path(__file__).resolve().parents[2]
FAST = ("--max-iter", "40")  # small boosting budget: these tests check plumbing, not accuracy


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    return make_contract(tmp_path, monkeypatch)


# --- good data -----------------------------------------------------------------------


def test_binary_run_writes_every_artifact_consistently(contract: Contract) -> None:
    breast_cancer().to_csv(contract.train / "part-0.csv", index=False)
    before = tree_digest(contract.train)

    assert train.main(contract.argv(*FAST)) == 0

    ev = contract.evaluation()
    assert ev.keys() >= EVALUATION_FIELDS
    assert ev["task"] == "binary"
    assert ev["labels"] == [0, 1]
    assert ev["positive_label"] == 0  # malignant: 212 of 569, the minority
    assert ev["primary_metric"] == "f1"
    assert 0.0 < ev["threshold"] < 1.0
    assert ev["metrics"].keys() >= METRIC_KEYS
    assert ev["baseline"].keys() == ev["metrics"].keys()
    assert sum(map(sum, ev["confusion_matrix"])) == ev["n_test"]
    assert ev["n_train"] + ev["n_validation"] + ev["n_test"] == 569
    assert ev["class_counts"] == {"0": 212, "1": 357}
    assert ev["data_checks"].keys() >= DATA_CHECK_KEYS
    assert ev["data_checks"]["rows_in"] == 569
    assert ev["metrics"]["f1"] > 0.85
    assert ev["baseline"]["f1"] == 0.0  # the majority class never predicts the minority
    assert ev["baseline"]["roc_auc"] == 0.5
    # counts in the confusion matrix reproduce the recorded recall of the positive class
    cm = np.array(ev["confusion_matrix"])
    assert cm[0, 0] / cm[0].sum() == pytest.approx(ev["metrics"]["recall"])

    model_file = contract.model / "model.joblib"
    assert ev["model"] == {
        "file": "model.joblib",
        "sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
    }
    model = joblib.load(model_file)
    assert model["features"] == ev["features"] == [c for c in breast_cancer().columns[:-1]]
    assert model["labels"] == [0, 1]
    assert model["threshold"] == ev["threshold"]
    assert model["positive_label"] == 0
    assert model["categorical"] == []
    assert model["target"] == "label"

    report = (contract.output_data / "report.html").read_text()
    # three test-split pictures, then one per model-development part the job produced
    assert report.count("data:image/png;base64,") >= 6
    for text in ("Confusion matrix", "ROC curve", "Precision-recall curve", "Data checks"):
        assert text in report
    assert tree_digest(contract.train) == before


def test_baseline_json_bins_cover_the_training_data(contract: Contract) -> None:
    frame = breast_cancer()
    frame.loc[:9, "mean radius"] = np.nan
    frame.loc[10:14, "mean area"] = np.inf
    frame.to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv(*FAST)) == 0

    base = contract.baseline()
    assert base["target"] == "label"
    assert base["feature_order"] == list(frame.columns[:-1])
    assert set(base["features"]) == set(base["feature_order"])
    for spec in base["features"].values():
        assert spec["type"] == "numeric"
        assert spec["edges"][0] == "-inf" and spec["edges"][-1] == "inf"
        assert len(spec["proportions"]) == len(spec["edges"]) - 1
        assert sum(spec["proportions"]) + spec["missing"] == pytest.approx(1.0)
        inner = [float(e) for e in spec["edges"][1:-1]]
        assert inner == sorted(set(inner))
    assert base["features"]["mean radius"]["missing"] > 0
    assert base["features"]["mean area"]["missing"] > 0  # infinities count as missing
    # the documented rule (bisect_right over inner edges) puts each decile in its own bin
    spec = base["features"]["mean texture"]
    inner = [float(e) for e in spec["edges"][1:-1]]
    assert len(inner) == 9
    ev = contract.evaluation()
    n = ev["n_train"]
    assert all(abs(p - 0.1) < 0.05 for p in spec["proportions"]), spec["proportions"]
    assert bisect_right(inner, -1e9) == 0 and bisect_right(inner, 1e9) == len(inner)
    assert ev["data_checks"]["missing_values"]["mean radius"] == 10
    assert ev["data_checks"]["infinities"]["mean area"] == 5
    assert n > 0


@pytest.mark.parametrize(
    ("dataset", "model", "labels"),
    [
        (iris_named, "logreg", ["setosa", "versicolor", "virginica"]),
        (wine, "gbm", [0, 1, 2]),
    ],
)
def test_multiclass(contract: Contract, dataset, model: str, labels: list) -> None:
    dataset().to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv("--model", model, *FAST)) == 0

    ev = contract.evaluation()
    assert ev["task"] == "multiclass"
    assert ev["labels"] == labels
    assert ev["threshold"] is None
    assert ev["primary_metric"] == "f1_macro"
    assert len(ev["confusion_matrix"]) == 3
    assert sum(map(sum, ev["confusion_matrix"])) == ev["n_test"]
    assert ev["metrics"]["f1_macro"] > 0.8
    assert ev["metrics"]["roc_auc"] > 0.9
    assert ev["baseline"]["f1_macro"] < 0.3
    assert ev["model_type"] == model
    model_dict = joblib.load(contract.model / "model.joblib")
    assert model_dict["labels"] == labels and model_dict["positive_label"] is None


@pytest.mark.parametrize("balance", ["class_weight", "oversample"])
def test_imbalanced_f1_far_above_majority_baseline(contract: Contract, balance: str) -> None:
    imbalanced(n=4000, minority=0.03).to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv("--balance", balance, "--max-iter", "80")) == 0

    ev = contract.evaluation()
    m, base = ev["metrics"], ev["baseline"]
    assert ev["positive_label"] == 1
    assert base["accuracy"] > 0.96  # the accuracy trap: "never positive" looks excellent
    assert base["f1"] == 0.0 and base["minority_recall"] == 0.0
    assert m["f1"] > 0.5, m
    assert m["minority_recall"] > 0.5, m
    assert m["pr_auc"] > 0.5, m
    assert m["balanced_accuracy"] > 0.75, m
    # refit on train + validation, the minority resampled there only (never in test)
    assert ev["refit"] is True
    assert {c["balance"] for c in ev["selection"]["candidates"]} == {balance}
    if balance == "oversample":
        assert ev["n_fit"] > ev["n_train"] + ev["n_validation"]
    else:
        assert ev["n_fit"] == ev["n_train"] + ev["n_validation"]


def test_cleaning_categorical_and_mixed_formats(contract: Contract) -> None:
    rng = np.random.default_rng(1)
    frame = imbalanced(n=1200, minority=0.2, seed=3)
    frame["city"] = rng.choice(["berlin", "paris", "oslo"], size=len(frame))
    frame.loc[frame["label"] == 1, "city"] = "paris"  # make the category informative
    frame.loc[:19, "city"] = None
    frame.loc[20:49, "f1"] = np.nan
    frame.loc[50:56, "f2"] = -np.inf
    frame.loc[57:60, "label"] = np.nan
    frame = pd.concat([frame, frame.iloc[100:125]], ignore_index=True)  # 25 exact duplicates
    nested = contract.train / "2024-01-01" / "more"
    nested.mkdir(parents=True)
    frame.iloc[:700].to_csv(contract.train / "a.csv", index=False)
    frame.iloc[700:].to_parquet(nested / "b.parquet", index=False)
    (contract.train / "notes.txt").write_text("not data: ignored")
    before = tree_digest(contract.train)

    assert train.main(contract.argv("--categorical", "city", *FAST)) == 0

    ev = contract.evaluation()
    checks = ev["data_checks"]
    assert checks["rows_in"] == 1225
    assert checks["target_missing_dropped"] == 4
    assert checks["duplicates_dropped"] == 25
    assert checks["rows_out"] == 1225 - 4 - 25
    assert checks["missing_values"]["f1"] == 30
    assert checks["missing_values"]["city"] == 20
    assert checks["missing_values"]["label"] == 4
    assert checks["infinities"]["f2"] == 7
    assert sum(checks["class_counts"].values()) == checks["rows_out"]
    assert ev["labels"] == [0, 1]  # float column (it had gaps) back to int labels
    assert ev["categorical"] == ["city"]
    city = contract.baseline()["features"]["city"]
    assert city["type"] == "categorical"
    assert set(city["categories"]) == {"berlin", "paris", "oslo"}
    assert sum(city["proportions"]) + city["missing"] + city["other"] == pytest.approx(1.0)
    assert city["other"] == 0.0
    assert ev["metrics"]["f1"] > 0.6
    assert tree_digest(contract.train) == before


def test_separate_validation_and_test_channels(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = breast_cancer().sample(frac=1.0, random_state=0)
    val_dir, test_dir = contract.root / "val", contract.root / "test"
    val_dir.mkdir()
    test_dir.mkdir()
    frame.iloc[:350].to_csv(contract.train / "train.csv", index=False)
    frame.iloc[350:460].to_csv(val_dir / "val.csv", index=False)
    frame.iloc[460:].to_csv(test_dir / "test.csv", index=False)
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(val_dir))
    monkeypatch.setenv("SM_CHANNEL_TEST", str(test_dir))

    assert train.main(contract.argv(*FAST)) == 0

    ev = contract.evaluation()
    assert (ev["n_train"], ev["n_validation"], ev["n_test"]) == (350, 110, 109)
    assert ev["data_checks"]["channels"]["test"]["rows_out"] == 109


def test_environment_defaults_drive_the_folders(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    wine().to_csv(contract.train / "data.csv", index=False)
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(contract.train))
    monkeypatch.setenv("SM_MODEL_DIR", str(contract.model))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(contract.output_data))
    monkeypatch.setenv("SM_HPS", json.dumps({"model": '"logreg"', "sagemaker_region": "x"}))

    assert train.main([]) == 0

    assert contract.evaluation()["model_type"] == "logreg"
    assert (contract.output_data / "report.html").is_file()


# --- hyperparameters -----------------------------------------------------------------------


def test_hyperparameter_sources_and_precedence(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    (contract.config / "hyperparameters.json").write_text(
        json.dumps(
            {
                "target": '"y"',
                "test-size": '"0.25"',
                "seed": "5",
                "sagemaker_program": '"train.py"',
            }
        )
    )
    monkeypatch.setenv(
        "SM_HPS", json.dumps({"seed": 6, "primary_metric": "balanced_accuracy", "colour": "x"})
    )

    _, hps, notes = config.parse_args(["--seed", "7", "--model", '"Logistic_Regression"'])

    assert hps["target"] == "y"  # JSON-encoded string decoded
    assert hps["test-size"] == 0.25
    assert hps["seed"] == 7  # flag beats SM_HPS beats hyperparameters.json
    assert hps["primary-metric"] == "balanced_accuracy"  # snake_case key accepted
    assert hps["model"] == "logreg"
    assert hps["balance"] == "auto"  # compared in the search unless pinned
    assert any("colour" in n for n in notes)
    assert not any("sagemaker_program" in n for n in notes)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--model", "xgboost"], "hyperparameter 'model' is 'xgboost'; choose one of"),
        (["--seed", "abc"], "hyperparameter 'seed' must be an integer, got 'abc'"),
        (["--test-size", "0.6", "--validation-size", "0.4"], "must be in (0, 1) and sum below"),
        (["--primary-metric", "auc"], "hyperparameter 'primary-metric' is 'auc'"),
        (["--early-stopping", "maybe"], "'early-stopping' is 'maybe'; choose one of: auto,"),
    ],
)
def test_bad_hyperparameters_fail_with_their_name(
    contract: Contract, argv: list[str], message: str
) -> None:
    breast_cancer().to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv(*argv)) == 1

    assert message in contract.failure.read_text()
    assert not (contract.model / "model.joblib").exists()


# --- bad data ------------------------------------------------------------------------------


def _write_missing_target(folder: Path) -> None:
    pd.DataFrame({"a": [1, 2], "b": [3, 4], "c": [5, 6]}).to_csv(folder / "x.csv", index=False)


def _write_single_class(folder: Path) -> None:
    frame = imbalanced(n=200)
    frame["label"] = 1
    frame.to_csv(folder / "x.csv", index=False)


def _write_tiny_class(folder: Path) -> None:
    frame = imbalanced(n=300, minority=0.1)
    keep = (frame["label"] == 0) | (frame.index.isin(frame.index[frame["label"] == 1][:4]))
    frame[keep].to_csv(folder / "x.csv", index=False)


def _write_text_column(folder: Path) -> None:
    frame = imbalanced(n=200, minority=0.3)
    frame["colour"] = "red"
    frame.to_csv(folder / "x.csv", index=False)


def _write_junk_in_numbers(folder: Path) -> None:
    frame = imbalanced(n=200, minority=0.3).astype({"f3": object})
    frame.loc[7, "f3"] = "n/a?"
    frame.to_csv(folder / "x.csv", index=False)


def _write_empty_column(folder: Path) -> None:
    frame = imbalanced(n=200, minority=0.3)
    frame["blank"] = np.nan
    frame.to_csv(folder / "x.csv", index=False)


def _write_few_rows(folder: Path) -> None:
    imbalanced(n=40, minority=0.5).to_csv(folder / "x.csv", index=False)


def _write_nothing(folder: Path) -> None:
    (folder / "README.txt").write_text("no data here")


def _write_garbage_parquet(folder: Path) -> None:
    (folder / "x.parquet").write_bytes(b"this is not parquet at all")


def _write_mismatched_files(folder: Path) -> None:
    frame = imbalanced(n=200, minority=0.3)
    frame.to_csv(folder / "a.csv", index=False)
    frame.rename(columns={"f0": "g0"}).to_csv(folder / "b.csv", index=False)


def _write_undeclared_categorical(folder: Path) -> None:
    imbalanced(n=200, minority=0.3).to_csv(folder / "x.csv", index=False)


BAD_DATA = [
    (_write_missing_target, (), "target column 'label' not found; columns are: a, b, c"),
    (_write_single_class, (), "target 'label' has only one class (1)"),
    (
        _write_tiny_class,
        (),
        "too few rows per class to split into train/validation/test: '1' has 4",
    ),
    (_write_text_column, (), "column(s) colour are not numeric (e.g. 'red' in 'colour')"),
    (_write_junk_in_numbers, (), "column(s) f3 are not numeric (e.g. 'n/a?' in 'f3')"),
    (_write_empty_column, (), "column(s) blank are empty (every value is missing)"),
    (_write_few_rows, (), "only 40 usable rows"),
    (_write_nothing, (), "no CSV or Parquet files found under"),
    (_write_garbage_parquet, (), "cannot read data file x.parquet"),
    (_write_mismatched_files, (), "data file b.csv has columns"),
    (
        _write_undeclared_categorical,
        ("--categorical", "town"),
        "categorical column(s) town not found",
    ),
]


@pytest.mark.parametrize(
    ("write", "extra", "message"), BAD_DATA, ids=[w.__name__[7:] for w, _, _ in BAD_DATA]
)
def test_bad_data_fails_with_one_clear_line(
    contract: Contract,
    capsys: pytest.CaptureFixture[str],
    write,
    extra: tuple[str, ...],
    message: str,
) -> None:
    write(contract.train)
    before = tree_digest(contract.train)

    assert train.main(contract.argv(*extra)) == 1

    reason = contract.failure.read_text()
    assert message in reason
    assert reason.count("\n") == 1 and reason.endswith("\n")
    assert message in capsys.readouterr().err
    assert tree_digest(contract.train) == before
    assert not contract.model.exists() or not any(contract.model.iterdir())


@pytest.mark.parametrize(
    "command",
    [["-m", "jobs.train"], [str(REPO / "jobs" / "train.py")]],
    ids=["module", "script-path"],
)
def test_process_exit_code_and_failure_file(tmp_path: Path, command: list[str]) -> None:
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    _write_missing_target(train_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    env.pop("PYTHONPATH", None)
    env.update(
        SM_CHANNEL_TRAIN=str(train_dir),
        SM_MODEL_DIR=str(tmp_path / "model"),
        SM_OUTPUT_DATA_DIR=str(tmp_path / "output" / "data"),
        SM_OUTPUT_DIR=str(tmp_path / "output"),
        SM_INPUT_CONFIG_DIR=str(tmp_path / "config"),
    )
    # the module form needs the repo on the path; the script form must find it alone
    cwd = REPO if command[0] == "-m" else tmp_path

    done = subprocess.run(
        [sys.executable, *command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 1, done.stderr
    reason = (tmp_path / "output" / "failure").read_text()
    assert reason == "target column 'label' not found; columns are: a, b, c\n"
    assert "target column 'label' not found" in done.stderr


def test_unexpected_errors_still_write_the_failure_file(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    breast_cancer().to_csv(contract.train / "data.csv", index=False)

    def broken(*args, **kwargs):
        raise MemoryError("out of memory while fitting")

    monkeypatch.setattr("jobs.search.fit_pipeline", broken)

    assert train.main(contract.argv()) == 1
    assert contract.failure.read_text() == (
        "unexpected error: MemoryError: out of memory while fitting\n"
    )


def test_threshold_is_not_nan_and_metrics_are_json_numbers(contract: Contract) -> None:
    imbalanced(n=1500, minority=0.1).to_csv(contract.train / "data.csv", index=False)
    assert train.main(contract.argv("--model", "logreg")) == 0
    ev = contract.evaluation()
    for name, value in ev["metrics"].items():
        assert isinstance(value, float) and math.isfinite(value), name
    assert ev["warnings"] == []


def test_report_without_matplotlib_still_has_the_tables(
    contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the SageMaker scikit-learn image may lack matplotlib: the job must still succeed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    wine().to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv(*FAST)) == 0

    report = (contract.output_data / "report.html").read_text()
    assert "data:image/png" not in report
    assert "matplotlib is not installed here" in report
    assert "Metrics (test)" in report and "Data checks" in report


def test_report_escapes_what_comes_from_the_data(contract: Contract) -> None:
    frame = iris_named()
    frame["label"] = frame["label"].replace("setosa", "<script>alert(1)</script>")
    frame.to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv("--model", "logreg")) == 0

    report = (contract.output_data / "report.html").read_text()
    assert "<script>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
