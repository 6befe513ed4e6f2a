"""Calibrated probabilities, the job's budget, the learning curve and partial dependence:
each against scikit-learn on the same rows, and each able to fail."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from jobs_helpers import Contract, imbalanced, make_contract
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.inspection import partial_dependence
from sklearn.metrics import average_precision_score, brier_score_loss

from jobs import data, inference, train
from jobs.budget import Budget
from jobs.calibrate import Calibrated, compare, fit_calibrator, pipeline_of
from jobs.explain import partial_dependence_of


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    return make_contract(tmp_path, monkeypatch)


def _test_scores(contract: Contract) -> tuple[pd.DataFrame, dict, np.ndarray]:
    rows = pd.read_csv(contract.output_data / "test.csv")
    model = joblib.load(contract.model / "model.joblib")
    x = data.prepare_features(rows, model["features"], model["categorical"])
    return rows, model, x


def test_calibrated_scores_are_left_alone_and_squashed_ones_are_fixed() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(1, 8, size=5000)
    is_pos = rng.random(5000) < p

    method, briers = compare(p, is_pos, seed=0)
    assert method == "none", briers

    squashed = p ** (1 / 3)  # overconfident, as an oversampled model's are
    method, briers = compare(squashed, is_pos, seed=0)
    assert method in ("sigmoid", "isotonic")
    assert briers[method] < briers["none"] * 0.9


def test_isotonic_calibration_keeps_the_models_ranking() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 4))
    y = (x[:, 0] + rng.normal(0, 1, 4000) > 2).astype(int)
    model = HistGradientBoostingClassifier(random_state=0).fit(x[:2000], y[:2000])
    raw = model.predict_proba(x[2000:3000])[:, 1]
    wrapped = Calibrated(
        model, "isotonic", fit_calibrator("isotonic", raw, y[2000:3000] == 1), positive=1
    )
    fresh_raw = model.predict_proba(x[3000:])[:, 1]
    fresh = wrapped.predict_proba(x[3000:])
    assert np.allclose(fresh.sum(axis=1), 1)
    assert average_precision_score(y[3000:], fresh[:, 1]) == pytest.approx(
        average_precision_score(y[3000:], fresh_raw), abs=1e-9
    )
    assert pipeline_of(wrapped) is model


def test_an_oversampled_models_probabilities_are_calibrated_and_served(
    contract: Contract,
) -> None:
    imbalanced(n=4000, minority=0.05, seed=2).to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--model", "gbm", "--balance", "oversample")) == 0

    ev = contract.evaluation()
    section = ev["calibration"]
    assert section["calibrated"] and section["method"] in ("sigmoid", "isotonic")
    assert section["fitted_on"].startswith("out-of-fold")
    rows, model, x = _test_scores(contract)
    served = model["pipeline"].predict_proba(x)[:, 1]
    raw = pipeline_of(model["pipeline"]).predict_proba(x)[:, 1]
    is_pos = rows["label"].to_numpy() == 1
    assert section["brier"] == pytest.approx(brier_score_loss(is_pos, served), abs=1e-6)
    assert section["uncalibrated"]["brier"] == pytest.approx(
        brier_score_loss(is_pos, raw), abs=1e-6
    )
    assert section["brier"] < section["uncalibrated"]["brier"]  # oversampling: overconfident
    # what the endpoint answers is the calibrated probability
    loaded = inference.model_fn(str(contract.model))
    answered = inference.predict_fn(
        inference.input_fn(
            rows.drop(columns="label").to_csv(index=False, header=False), "text/csv"
        ),
        loaded,
    )
    assert np.allclose(answered["probabilities"][:, 1], served)


def test_calibration_none_serves_the_raw_model(contract: Contract) -> None:
    imbalanced(n=2000, minority=0.1, seed=3).to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--model", "gbm", "--calibration", "none")) == 0

    _, model, _ = _test_scores(contract)
    assert not isinstance(model["pipeline"], Calibrated)
    assert contract.evaluation()["calibration"]["method"] == "none"


def test_the_budget_skips_what_would_overrun_and_names_it() -> None:
    now = [0.0]
    budget = Budget(20, clock=lambda: now[0])  # reserve: 2 s
    assert budget.affords("refit", 10.0)
    now[0] = 12.0
    assert not budget.affords("learning curve", 7.0)  # 12 + 7 > 20 - 2
    assert budget.affords("importance", 5.0)
    record = budget.record()
    assert record["skipped"] == [
        {"stage": "learning curve", "expected_seconds": 7.0, "left_seconds": 6.0}
    ]
    assert record["within"] and record["spent_seconds"] == 12.0


def test_a_one_second_budget_still_writes_a_model_and_says_what_it_skipped(
    contract: Contract,
) -> None:
    imbalanced(n=6000, minority=0.1, seed=4).to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv("--max-seconds", "1", "--model", "forest")) == 0

    ev = contract.evaluation()
    skipped = {item["stage"] for item in ev["budget"]["skipped"]}
    assert {"refit", "learning curve"} <= skipped
    assert not ev["refit"]
    assert ev["n_fit"] == ev["n_train"]  # no refit: the train-only model serves
    assert (contract.model / "model.joblib").exists()


def test_the_learning_curve_and_early_stopping_are_reported(contract: Contract) -> None:
    imbalanced(n=4000, minority=0.1, seed=5).to_csv(contract.train / "d.csv", index=False)

    argv = contract.argv("--model", "gbm", "--early-stopping", "true", "--max-seconds", "300")
    assert train.main(argv) == 0

    diagnosis = contract.evaluation()["diagnosis"]
    points = diagnosis["learning_curve"]["points"]
    assert [p["rows"] for p in points] == sorted(p["rows"] for p in points)
    assert len(points) == 3 and all(p["validation"] is not None for p in points)
    boosting = diagnosis["boosting"]
    assert boosting["early_stopping"] and boosting["iterations"] <= boosting["max_iter"]


def test_partial_dependence_is_scikit_learns_on_the_same_rows() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(800, 4))
    y = (x[:, 0] + rng.normal(0, 0.5, 800) > 1.0).astype(int)
    model = HistGradientBoostingClassifier(random_state=0).fit(x, y)
    x[::10, 2] = np.nan  # rows missing the feature are left out of its curve

    got = partial_dependence_of(
        model, x, ["f0", "f1", "f2", "f3"], ["f0", "f2"], [], positive=1, seed=0
    )

    for j, name in ((0, "f0"), (2, "f2")):
        rows = x[~np.isnan(x[:, j])]
        expected = partial_dependence(
            model, rows, [j], grid_resolution=20, kind="average",
            response_method="predict_proba", method="brute",
        )  # fmt: skip
        assert got["features"][name]["grid"] == pytest.approx(expected["grid_values"][0], abs=1e-6)
        assert got["features"][name]["average"] == pytest.approx(expected["average"][0], abs=1e-6)
    curve = got["features"]["f0"]["average"]
    assert curve[-1] > curve[0] + 0.3  # more f0, more positives


def test_the_job_explains_its_top_features(contract: Contract) -> None:
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({f"f{i}": rng.normal(size=3000) for i in range(4)})
    frame["label"] = (frame["f0"] + rng.normal(0, 0.5, 3000) > 1.0).astype(int)
    frame.to_csv(contract.train / "d.csv", index=False)

    assert train.main(contract.argv()) == 0

    ev = contract.evaluation()
    top = [item["feature"] for item in ev["importance"]["top"][:3]]
    assert list(ev["partial_dependence"]["features"]) == top and top[0] == "f0"
