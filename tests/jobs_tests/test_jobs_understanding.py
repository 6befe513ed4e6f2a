"""What the job tells a person about its data and model: the profile's flags, permutation
importance, calibration and the fairness audit, checked against scikit-learn."""

from __future__ import annotations

import re
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from jobs_helpers import Contract, imbalanced, make_contract
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score

from jobs import data, train
from jobs.search import FAMILIES


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    return make_contract(tmp_path, monkeypatch)


def _frame(n: int = 3000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = imbalanced(n=n, minority=0.1, seed=seed)
    frame["region"] = rng.choice(["north", "south", "east"], size=len(frame), p=[0.5, 0.45, 0.05])
    return frame


def _test_predictions(contract: Contract) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The test split (test.csv) and the saved model's labels and scores on it."""
    rows = pd.read_csv(contract.output_data / "test.csv")
    model = joblib.load(contract.model / "model.joblib")
    x = data.prepare_features(rows, model["features"], model["categorical"])
    proba = model["pipeline"].predict_proba(x)
    pos = list(model["pipeline"].classes_).index(model["positive_label"])
    predicted = np.where(proba[:, pos] >= model["threshold"], model["positive_label"], 0)
    return rows, predicted, proba[:, pos]


def test_a_leaky_a_constant_and_an_id_like_column_are_flagged(contract: Contract) -> None:
    frame = _frame()
    rng = np.random.default_rng(0)
    frame["leak"] = frame["label"] * 10 + rng.normal(0, 0.1, len(frame))
    frame["constant"] = 7.0
    frame["ticket"] = [f"t{i}" for i in range(len(frame))]
    frame.to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--categorical", "ticket,region")) == 0

    profile = contract.evaluation()["profile"]
    assert profile["flagged"]["leak"] == ["leaky"]
    assert profile["flagged"]["constant"] == ["constant"]
    assert profile["flagged"]["ticket"] == ["high-cardinality"]
    assert "f1" not in profile["flagged"]
    assert (
        profile["features"]["region"]["top"]["north"] > profile["features"]["region"]["top"]["east"]
    )
    assert profile["class_balance"]["1"] == pytest.approx(0.1, abs=0.02)


def test_importance_ranks_the_one_informative_feature_first(contract: Contract) -> None:
    rng = np.random.default_rng(1)
    signal = rng.normal(size=3000)
    frame = pd.DataFrame({f"noise{i}": rng.normal(size=3000) for i in range(4)})
    frame["signal"] = signal
    frame["label"] = (signal + rng.normal(0, 0.5, 3000) > 1.2).astype(int)
    frame.to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv()) == 0

    top = contract.evaluation()["importance"]["top"]
    assert top[0]["feature"] == "signal" and top[0]["mean"] > 0.1
    assert all(item["mean"] < top[0]["mean"] / 5 for item in top[1:])


def test_calibration_is_scikit_learns_brier_on_the_test_split(contract: Contract) -> None:
    _frame().to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--categorical", "region")) == 0

    rows, _, scores = _test_predictions(contract)
    calibration = contract.evaluation()["calibration"]
    assert calibration["brier"] == pytest.approx(
        brier_score_loss(rows["label"] == 1, scores), abs=1e-6
    )
    assert len(calibration["curve"]["mean_predicted"]) == len(
        calibration["curve"]["fraction_positive"]
    )


def test_group_metrics_are_scikit_learns_on_the_same_rows(contract: Contract) -> None:
    _frame().to_csv(contract.train / "d.csv", index=False)

    assert (
        train.main(contract.argv("--sensitive-features", "region", "--min-group-rows", "50")) == 0
    )

    ev = contract.evaluation()
    assert "region" not in ev["features"]  # audited, not learned from
    audit = ev["fairness"]["features"]["region"]
    rows, predicted, _ = _test_predictions(contract)
    for group, got in audit["groups"].items():
        mask = (rows["region"] == group).to_numpy()
        y, p = rows["label"].to_numpy()[mask] == 1, predicted[mask] == 1
        assert got["rows"] == mask.sum()
        assert got["precision"] == pytest.approx(precision_score(y, p, zero_division=0), abs=1e-6)
        assert got["recall"] == pytest.approx(recall_score(y, p, zero_division=0), abs=1e-6)
        assert got["f1"] == pytest.approx(f1_score(y, p, zero_division=0), abs=1e-6)
        assert got["selection_rate"] == pytest.approx(p.mean(), abs=1e-6)
    large = {k: v for k, v in audit["groups"].items() if v["rows"] >= 50}
    rates = [v["selection_rate"] for v in large.values()]
    assert audit["demographic_parity_difference"] == pytest.approx(
        max(rates) - min(rates), abs=1e-6
    )
    # the small group is reported and named, not dropped
    assert audit["small_groups"] == ["east"] and "east" in audit["groups"]


def test_a_missing_sensitive_feature_is_named(contract: Contract) -> None:
    _frame().to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--sensitive-features", "region,gender")) == 1

    assert "sensitive feature(s) gender not found" in contract.failure.read_text()


# --- the report ------------------------------------------------------------------------


def _captions(report: str) -> list[str]:
    return re.findall(r"<figcaption>([^<]*)</figcaption>", report)


def test_report_has_a_section_and_a_picture_for_each_part(contract: Contract) -> None:
    _frame().to_csv(contract.train / "d.csv", index=False)
    assert train.main(contract.argv("--sensitive-features", "region")) == 0

    ev = contract.evaluation()
    report = (contract.output_data / "report.html").read_text()
    for heading in (
        "Model selection",
        "Diagnosis",
        "Calibration",
        "Permutation importance (validation)",
        "Fairness audit (test)",
        "Data profile",
    ):
        assert f"<h2>{heading}</h2>" in report
    captions = _captions(report)
    assert {"Metrics vs threshold", "Reliability curve", "Per group: region"} <= set(captions)
    assert "Permutation importance" in captions
    for name in ev["partial_dependence"]["features"]:
        assert f"Partial dependence: {name}" in captions
    assert ("Learning curve" in captions) == ("learning_curve" in ev["diagnosis"])
    # every candidate is a row of the selection table, the winner marked
    section = report.split("<h2>Model selection</h2>")[1].split("<h2>")[0]
    assert section.count("<td>winner</td>") == 1
    assert len(ev["selection"]["candidates"]) == sum(
        section.count(f"<td>{family}</td>") for family in FAMILIES
    )


def test_report_sections_are_left_out_when_the_job_has_no_such_part() -> None:
    from jobs.report_model import model_pictures, model_sections

    evaluation = {"labels": [0, 1, 2], "positive_label": None, "threshold": None}
    assert model_sections(evaluation) == ""
    assert model_pictures(evaluation, np.array([0, 1, 2]), np.eye(3)) == {}


def test_confusion_matrix_picture_is_normalised_by_row(monkeypatch: pytest.MonkeyPatch) -> None:
    from matplotlib.axes import Axes

    from jobs.report import _pictures

    seen: list[np.ndarray] = []
    real = Axes.imshow

    def spy(self: Axes, data: object, *args: object, **kwargs: object) -> object:
        seen.append(np.asarray(data))
        return real(self, data, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Axes, "imshow", spy)
    # 990 negatives, 10 positives: in raw counts the minority row would look empty
    cm = np.array([[980, 10], [5, 5]])
    y = np.array([0] * 990 + [1] * 10)
    proba = np.column_stack([1 - y * 0.8, y * 0.8])
    pictures = _pictures(y, proba, [0, 1], 1, 0.5, cm)
    assert "Confusion matrix" in pictures
    np.testing.assert_allclose(seen[0], [[980 / 990, 10 / 990], [0.5, 0.5]])
