"""Model selection in the job: candidates, imbalance handling compared, the budget, the refit,
and the over/underfitting diagnosis."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from jobs_helpers import Contract, breast_cancer, imbalanced, make_contract
from sklearn.datasets import make_classification

from jobs import train
from jobs.diagnosis import diagnose
from jobs.search import CV_FOLDS, CV_MAX_ROWS, FAMILIES, Candidate, candidates


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    return make_contract(tmp_path, monkeypatch)


def test_the_default_search_compares_families_and_balances(contract: Contract) -> None:
    imbalanced(n=3000, minority=0.05).to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv("--max-candidates", "12")) == 0

    ev = contract.evaluation()
    selection = ev["selection"]
    assert selection["scored_on"].startswith("validation")  # 2,400 rows: over CV_MAX_ROWS
    tried = selection["candidates"]
    assert {c["family"] for c in tried} == set(FAMILIES)
    assert {c["balance"] for c in tried} == {"none", "class_weight", "oversample"}
    scores = [c["validation_score"] for c in tried]
    winner = tried[selection["winner"]]
    assert winner["validation_score"] == max(scores)
    # what won is what was refit and recorded
    assert ev["model_type"] == winner["family"]
    assert ev["hyperparameters"]["balance"] == winner["balance"]
    assert ev["refit"] is True and ev["n_fit"] >= ev["n_train"] + ev["n_validation"]


def test_small_data_is_selected_by_cross_validation(contract: Contract) -> None:
    breast_cancer().to_csv(contract.train / "data.csv", index=False)  # 455 train + validation

    assert train.main(contract.argv("--max-candidates", "4")) == 0

    ev = contract.evaluation()
    selection = ev["selection"]
    assert selection["scored_on"].startswith(f"{CV_FOLDS}-fold cross-validation"), selection
    tried = selection["candidates"]
    winner = tried[selection["winner"]]
    assert winner["validation_score"] == max(c["validation_score"] for c in tried)
    assert ev["model_type"] == winner["family"]
    # the chosen one was still fitted on train alone for the diagnosis and the threshold
    assert (
        ev["diagnosis"]["validation"] is not None
        and ev["n_train"] + ev["n_validation"] <= CV_MAX_ROWS
    )


def test_a_pinned_model_and_balance_fit_exactly_that(contract: Contract) -> None:
    breast_cancer().to_csv(contract.train / "data.csv", index=False)

    argv = contract.argv("--model", "logreg", "--balance", "none", "--max-candidates", "12")
    assert train.main(argv) == 0

    ev = contract.evaluation()
    [only] = ev["selection"]["candidates"]
    assert (only["family"], only["balance"], only["params"]) == ("logreg", "none", {})
    assert ev["model_type"] == "logreg"


def test_without_refit_the_model_fits_the_train_split_only(contract: Contract) -> None:
    breast_cancer().to_csv(contract.train / "data.csv", index=False)

    assert train.main(contract.argv("--refit", "false", "--balance", "none")) == 0

    ev = contract.evaluation()
    assert ev["refit"] is False and ev["n_fit"] == ev["n_train"]


def test_a_short_budget_ends_the_search_and_says_what_it_skipped(contract: Contract) -> None:
    imbalanced(n=20000, minority=0.05).to_csv(contract.train / "data.csv", index=False)

    # half of 1 s is less than any one fit here: the first candidate, then skips
    assert train.main(contract.argv("--max-seconds", "1", "--max-candidates", "12")) == 0

    selection = contract.evaluation()["selection"]
    assert selection["budget_seconds"] == 0.5
    assert len(selection["candidates"]) < 12
    assert selection["skipped"], selection


def test_candidates_try_every_default_first_then_random_draws() -> None:
    base = {"model": "auto", "balance": "auto", "seed": 1}
    stream = candidates(base)
    first = [next(stream) for _ in range(12)]

    assert all(c.params == {} for c in first[:9])
    assert all(c.params for c in first[9:])
    assert len({(c.family, c.balance) for c in first[:9]}) == 9
    pinned = list(candidates({**base, "model": "gbm", "balance": "none"}))
    assert pinned == [Candidate("gbm", "none")]


def test_a_noisy_set_fit_too_closely_is_diagnosed_overfit(contract: Contract) -> None:
    x, y = make_classification(n_samples=3000, n_features=10, flip_y=0.3, random_state=2)
    pd.DataFrame(x).add_prefix("x").assign(label=y).to_csv(contract.train / "d.csv", index=False)
    argv = contract.argv(
        "--model", "gbm", "--balance", "none", "--max-iter", "400", "--max-leaf-nodes", "63",
        "--min-samples-leaf", "1", "--early-stopping", "false",
    )  # fmt: skip

    assert train.main(argv) == 0

    diagnosis = contract.evaluation()["diagnosis"]
    assert diagnosis["verdict"] == "overfit", diagnosis
    assert diagnosis["train"] - diagnosis["validation"] == pytest.approx(diagnosis["gap"], abs=1e-6)


@pytest.mark.parametrize(
    ("train_f1", "val_f1", "verdict"),
    [(0.95, 0.80, "overfit"), (0.51, 0.51, "underfit"), (0.85, 0.80, "ok")],
)
def test_diagnosis_rules(train_f1: float, val_f1: float, verdict: str) -> None:
    baseline = {"f1": 0.5}
    out = diagnose({"f1": train_f1}, {"f1": val_f1}, {"f1": val_f1}, baseline, "f1")
    assert out["verdict"] == verdict, out
    assert np.isfinite(out["gap"])
