"""What the job tells a person about its data and model: the profile's flags, permutation
importance, calibration and the fairness audit, checked against scikit-learn."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from jobs_helpers import Contract, imbalanced, make_contract
from sklearn.metrics import brier_score_loss, f1_score, precision_score, recall_score

from jobs import data, train


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
