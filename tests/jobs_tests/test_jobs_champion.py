"""The champion channel: the challenger's job scores the champion on the same test split.

A champion is trained on data A; after drift a challenger is trained on shifted data B with
the champion's model (``--champion`` / ``SM_CHANNEL_CHAMPION``). ``evaluation.json``
then holds the champion's metrics on the challenger's test rows, which the promotion gate
compares with (``lambdas.gate.evaluate_gate``). A champion that cannot be loaded or
applied never fails the job: ``champion.error`` says why.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from jobs_helpers import (
    METRIC_KEYS,
    Contract,
    breast_cancer,
    imbalanced,
    iris_named,
    make_contract,
)
from sklearn.metrics import confusion_matrix, f1_score

from jobs import champion, inference, train

FAST = ("--max-iter", "40")
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-packages/1"


def _shifted(seed: int = 0, n: int = 2400) -> pd.DataFrame:
    """Data B: A's generator after drift (five features moved), so A's model is off."""
    frame = imbalanced(n=n, minority=0.1, seed=seed)
    for name in ("f0", "f1", "f2", "f3", "f4"):
        frame[name] = frame[name] + 1.5
    return frame


def _pack(model_dir: Path, archive: Path, members: dict[str, bytes] | None = None) -> Path:
    """``model_dir`` as SageMaker packs it (``./model.joblib``...), or the given members."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        if members is None:
            for path in sorted(model_dir.iterdir()):
                tar.add(path, arcname=f"./{path.name}")
        else:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return archive


@pytest.fixture(scope="module")
def champion_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A champion model folder, trained once on data A."""
    root = tmp_path_factory.mktemp("champion")
    with pytest.MonkeyPatch.context() as monkeypatch:
        contract = make_contract(root, monkeypatch)
        imbalanced(n=2000, minority=0.1, seed=0).to_csv(contract.train / "a.csv", index=False)
        assert train.main(contract.argv(*FAST)) == 0
        yield contract.model


@pytest.fixture
def contract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Contract:
    return make_contract(tmp_path, monkeypatch)


def _challenger_with_test_channel(contract: Contract) -> pd.DataFrame:
    """Data B in the train channel, and B's test rows in a separate test channel (so the
    test can score the champion on exactly those rows itself)."""
    frame = _shifted()
    test_dir = contract.root / "test"
    test_dir.mkdir()
    frame.iloc[:1900].to_csv(contract.train / "b.csv", index=False)
    test = frame.iloc[1900:].reset_index(drop=True)
    test.to_csv(test_dir / "test.csv", index=False)
    return test


@pytest.mark.parametrize("form", ["model.tar.gz in a folder", "extracted model folder"])
def test_champion_is_scored_on_the_challengers_test_split(
    contract: Contract, champion_dir: Path, form: str
) -> None:
    # given a champion trained on data A, as the channel delivers it
    channel = contract.root / "champion"
    if form == "model.tar.gz in a folder":
        _pack(champion_dir, channel / "model.tar.gz")
    else:
        shutil.copytree(champion_dir, channel)
    champion_own = json.loads((champion_dir / "evaluation.json").read_text())
    test = _challenger_with_test_channel(contract)

    # when the challenger trains on shifted data B with the champion
    argv = contract.argv(*FAST, "--test", str(contract.root / "test"))
    argv += ["--champion", str(channel), "--champion-package", PACKAGE]
    assert train.main(argv) == 0

    # then evaluation.json holds the champion's metrics on the challenger's test split
    ev = contract.evaluation()
    champ = ev["champion"]
    assert "error" not in champ, champ
    assert champ["n_test"] == ev["n_test"] == len(test)
    assert sum(map(sum, champ["confusion_matrix"])) == ev["n_test"]
    assert champ["metrics"].keys() == ev["metrics"].keys() >= METRIC_KEYS
    assert champ["package"] == PACKAGE
    assert ev["hyperparameters"]["champion-package"] == PACKAGE
    assert champ["model_sha256"] == champion_own["model"]["sha256"]
    assert champ["threshold"] == pytest.approx(champion_own["threshold"])
    assert champ["own_metrics"] == champion_own["metrics"]
    # not the champion's own numbers: other rows, after drift
    assert champ["metrics"]["f1"] != pytest.approx(champion_own["metrics"]["f1"], abs=1e-3)
    assert champ["metrics"]["f1"] < champion_own["metrics"]["f1"]
    # and exactly what serving the champion on those rows gives
    model = inference.model_fn(str(champion_dir))
    rows = inference.Rows(test[model["features"]].to_numpy(dtype=float), inference.CSV)
    predicted = inference.predict_fn(rows, model)["labels"]
    assert champ["metrics"]["f1"] == pytest.approx(f1_score(test["label"], predicted, pos_label=1))
    assert champ["confusion_matrix"] == confusion_matrix(test["label"], predicted).tolist()
    # the report shows both models side by side
    page = (contract.output_data / "report.html").read_text()
    assert "Challenger vs champion (same test split)" in page
    assert PACKAGE in page


def test_the_champion_channel_comes_from_the_environment(
    contract: Contract, champion_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = contract.root / "input" / "data" / "champion"
    _pack(champion_dir, channel / "model.tar.gz")
    _shifted(n=1200).to_csv(contract.train / "b.csv", index=False)
    monkeypatch.setenv("SM_CHANNEL_CHAMPION", str(channel))
    monkeypatch.setenv("SM_HPS", json.dumps({"champion-package": json.dumps(PACKAGE)}))

    assert train.main(contract.argv(*FAST)) == 0

    ev = contract.evaluation()
    assert ev["champion"]["package"] == PACKAGE
    assert ev["champion"]["n_test"] == ev["n_test"]


def test_without_a_champion_evaluation_json_has_no_champion_section(
    contract: Contract,
) -> None:
    _shifted(n=1200).to_csv(contract.train / "b.csv", index=False)

    assert train.main(contract.argv(*FAST)) == 0

    ev = contract.evaluation()
    assert "champion" not in ev
    assert ev["hyperparameters"]["champion-package"] is None
    assert "Challenger vs champion" not in (contract.output_data / "report.html").read_text()


def test_a_broken_champion_does_not_fail_the_job(contract: Contract) -> None:
    channel = contract.root / "champion"
    channel.mkdir()
    (channel / "model.tar.gz").write_bytes(b"not a tar.gz at all")
    _shifted(n=1200).to_csv(contract.train / "b.csv", index=False)

    assert train.main(contract.argv(*FAST, "--champion", str(channel))) == 0

    ev = contract.evaluation()
    assert ev["champion"] == {
        "error": "the champion archive model.tar.gz is not a tar archive",
        "package": None,
    }
    assert ev["metrics"]["f1"] > 0.5  # the challenger itself is evaluated as always
    assert not contract.failure.exists()
    page = (contract.output_data / "report.html").read_text()
    assert "could not be evaluated on this test split" in page


# --- champions that cannot be compared: a clear reason, never an exception ---------------


def _test_rows() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    frame = _shifted(n=400)
    y = frame["label"].to_numpy()
    return frame, y, np.unique(y)


def _model_bytes(model_dir: Path) -> bytes:
    return (model_dir / "model.joblib").read_bytes()


def _other_champion(tmp_path: Path, frame: pd.DataFrame) -> Path:
    """A real champion trained on other data (other features or labels)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        contract = make_contract(tmp_path / "other", monkeypatch)
        frame.to_csv(contract.train / "data.csv", index=False)
        assert train.main(contract.argv(*FAST)) == 0
    return contract.model


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("empty folder", "holds neither model.joblib nor one model.tar.gz"),
        ("missing path", "does not exist"),
        ("archive without model.joblib", "holds no model.joblib"),
        ("tampered model.joblib", "SHA-256 is"),
        ("garbage model.joblib", "cannot load the champion's model.joblib"),
        ("not a model dict", "holds a list, not the model dict"),
        ("dict without a pipeline", "lacks key(s): pipeline"),
        ("other features", "the champion needs feature(s) the challenger's data lacks: mean"),
        ("other labels", "the champion predicts labels"),
    ],
)
def test_champions_that_cannot_be_compared_give_a_reason(
    tmp_path: Path, champion_dir: Path, case: str, reason: str
) -> None:
    frame, y, classes = _test_rows()
    source = tmp_path / "champion"
    evaluation_json = (champion_dir / "evaluation.json").read_bytes()
    if case == "empty folder":
        source.mkdir()
    elif case == "missing path":
        pass
    elif case == "archive without model.joblib":
        _pack(champion_dir, source / "model.tar.gz", {"evaluation.json": evaluation_json})
    elif case == "tampered model.joblib":
        members = {"model.joblib": _model_bytes(champion_dir) + b"x"}
        _pack(
            champion_dir, source / "model.tar.gz", {**members, "evaluation.json": evaluation_json}
        )
    elif case == "garbage model.joblib":  # and no evaluation.json to check it against
        _pack(champion_dir, source / "model.tar.gz", {"model.joblib": b"\x80\x04garbage"})
    elif case in {"not a model dict", "dict without a pipeline"}:
        source.mkdir()
        obj: Any = [1, 2] if case == "not a model dict" else {"features": ["f0"]}
        joblib.dump(obj, source / "model.joblib")
    elif case == "other features":
        source = _other_champion(tmp_path, breast_cancer())
    else:
        source = _other_champion(tmp_path, iris_named())
        # same column names as the test rows, so only the labels differ
        model = joblib.load(source / "model.joblib")
        model["features"] = [f"f{i}" for i in range(4)]
        joblib.dump(model, source / "model.joblib")
        (source / "evaluation.json").unlink()

    out = champion.evaluate_champion(source, frame, y, classes, 1, 1, package=PACKAGE)

    assert set(out) == {"error", "package"}, out
    assert reason in out["error"], out["error"]
    assert "\n" not in out["error"]
    assert out["package"] == PACKAGE
