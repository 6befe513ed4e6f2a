"""Serving round trips (CSV and JSON) and serving errors, on models trained by jobs.train."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from jobs_helpers import (
    breast_cancer,
    imbalanced,
    iris_named,
    make_contract,
)

from jobs import inference, train


def _train(root: Path, frame: pd.DataFrame, *extra: str) -> Path:
    with pytest.MonkeyPatch.context() as mp:
        contract = make_contract(root, mp)
        frame.to_csv(contract.train / "data.csv", index=False)
        assert train.main(contract.argv("--max-iter", "40", *extra)) == 0
    return contract.model


@pytest.fixture(scope="module")
def binary_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("binary"), breast_cancer())


@pytest.fixture(scope="module")
def binary(binary_dir: Path) -> dict[str, Any]:
    return inference.model_fn(str(binary_dir))


@pytest.fixture(scope="module")
def categorical(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    frame = iris_named()
    rng = np.random.default_rng(0)
    frame["zone"] = rng.choice(["north", "south"], size=len(frame))
    frame["code"] = rng.choice([10, 20, 30], size=len(frame)).astype(float)
    frame.loc[:5, "code"] = np.nan  # a gap makes pandas read the codes as floats
    root = _train(
        tmp_path_factory.mktemp("categorical"), frame, "--categorical", "zone,code", "--model", "lr"
    )
    return inference.model_fn(str(root))


def _rows(n: int) -> np.ndarray:
    return breast_cancer().drop(columns="label").to_numpy()[:n]


def _expected(model: dict[str, Any], x: Any) -> tuple[list[Any], np.ndarray]:
    proba = model["pipeline"].predict_proba(x)
    if model["threshold"] is None:
        return [model["labels"][i] for i in proba.argmax(axis=1)], proba
    pos = model["labels"].index(model["positive_label"])
    other = model["labels"][1 - pos]
    labels = [model["positive_label"] if p >= model["threshold"] else other for p in proba[:, pos]]
    return labels, proba


def _serve(model: dict[str, Any], body: str | bytes, content_type: str, accept: str) -> str:
    data = inference.input_fn(body, content_type)
    return inference.output_fn(inference.predict_fn(data, model), accept)


def _csv(rows: np.ndarray) -> str:
    return "\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n"


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 200])
def test_csv_in_csv_out(binary: dict[str, Any], n: int) -> None:
    rows = _rows(n)
    labels, proba = _expected(binary, rows)

    out = _serve(binary, _csv(rows).encode(), "text/csv", "text/csv")

    lines = out.strip().split("\n")
    assert len(lines) == n
    parsed = [line.split(",") for line in lines]
    assert [int(p[0]) for p in parsed] == labels
    np.testing.assert_allclose([[float(v) for v in p[1:]] for p in parsed], proba)


def test_threshold_decides_the_label(binary: dict[str, Any]) -> None:
    rows = _rows(569)
    pos = binary["labels"].index(binary["positive_label"])
    proba = binary["pipeline"].predict_proba(rows)[:, pos]
    out = json.loads(_serve(binary, _csv(rows), "text/csv", "application/json"))
    got = np.array([p["label"] for p in out["predictions"]])
    expected = np.where(proba >= binary["threshold"], binary["positive_label"], 1 - pos)
    np.testing.assert_array_equal(got, expected)
    # the tuned threshold is not 0.5, so argmax alone would disagree somewhere near it
    assert binary["threshold"] != 0.5


def test_csv_header_row_is_skipped(binary: dict[str, Any]) -> None:
    rows = _rows(3)
    header = ",".join(binary["features"])
    plain = _serve(binary, _csv(rows), "text/csv", "text/csv")
    assert _serve(binary, header + "\n" + _csv(rows), "text/csv; charset=utf-8", "text/csv") == (
        plain
    )


@pytest.mark.parametrize(
    "shape", ["instances-lists", "instances-objects", "single-list", "single-object", "bare-lists"]
)
def test_json_in_json_out(binary: dict[str, Any], shape: str) -> None:
    rows = _rows(4)
    features = binary["features"]
    objects = [dict(zip(features, map(float, row), strict=True)) for row in rows]
    payload: Any = {
        "instances-lists": {"instances": rows.tolist()},
        "instances-objects": {"instances": objects},
        "single-list": rows[0].tolist(),
        "single-object": objects[0],
        "bare-lists": rows.tolist(),
    }[shape]
    n = 1 if shape.startswith("single") else 4
    labels, proba = _expected(binary, rows[:n])

    out = json.loads(_serve(binary, json.dumps(payload), "application/json", "application/json"))

    assert [p["label"] for p in out["predictions"]] == labels
    assert all(type(p["label"]) is int for p in out["predictions"])  # same type as in the data
    got = [[p["probabilities"]["0"], p["probabilities"]["1"]] for p in out["predictions"]]
    np.testing.assert_allclose(got, proba)


def test_missing_and_infinite_values_are_served(binary: dict[str, Any]) -> None:
    row = _rows(1)[0].tolist()
    row[0], row[1] = None, float("inf")
    out = json.loads(_serve(binary, json.dumps([row]), "application/json", "*/*"))
    csv_row = ",".join(["", "inf", *map(repr, row[2:])])
    again = json.loads(_serve(binary, csv_row, "text/csv", "application/json"))
    assert out == again
    assert sum(out["predictions"][0]["probabilities"].values()) == pytest.approx(1.0)


def test_string_labels_and_categorical_columns(categorical: dict[str, Any]) -> None:
    frame = iris_named().drop(columns="label").iloc[[0, 60, 120]]
    rows = [
        {**row, "zone": "north", "code": code}
        for row, code in zip(frame.to_dict("records"), [10, 20.0, "30"], strict=True)
    ]
    rows[2]["zone"] = "atlantis"  # a category never seen in training is ignored, not an error

    out = json.loads(
        _serve(categorical, json.dumps({"instances": rows}), "application/json", "application/json")
    )

    labels = [p["label"] for p in out["predictions"]]
    assert labels == ["setosa", "versicolor", "virginica"]
    assert set(out["predictions"][0]["probabilities"]) == {"setosa", "versicolor", "virginica"}
    # the same rows as CSV, categorical values unquoted, give the same answer
    csv_body = "\n".join(",".join(str(r[f]) for f in categorical["features"]) for r in rows)
    again = json.loads(_serve(categorical, csv_body, "text/csv", "application/json"))
    assert again == out


def test_code_10_and_10_point_0_are_the_same_category(categorical: dict[str, Any]) -> None:
    base = {**iris_named().drop(columns="label").iloc[0].to_dict(), "zone": "south"}
    outs = {
        json.dumps(
            json.loads(
                _serve(categorical, json.dumps({**base, "code": code}), "application/json", "")
            )
        )
        for code in (10, 10.0, "10")
    }
    assert len(outs) == 1


# --- errors --------------------------------------------------------------------------------------


def _full_row(n_values: int) -> str:
    return ",".join(["1.0"] * n_values)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (_full_row(29), "text/csv", "rows have 29 values; the model expects 30 features"),
        (_full_row(30) + "\n" + _full_row(31), "text/csv", "row 1 has 31 values"),
        (
            "1.0,abc" + ",1.0" * 28,
            "text/csv",
            "row 0, feature 'mean texture': 'abc' is not a number",
        ),
        ("", "text/csv", "empty request body"),
        (b"   \n", "application/json", "empty request body"),
        (_full_row(30), "application/x-npy", "unsupported content type 'application/x-npy'"),
        ("{not json", "application/json", "request body is not valid JSON"),
        ('{"instances": {"a": 1}}', "application/json", "'instances' must be a list of rows"),
        ('{"mean radius": 1}', "application/json", "row 0 lacks feature(s): mean texture"),
        (json.dumps([[[2], *[1.0] * 29]]), "application/json", "row 0, feature 'mean radius'"),
        ('"just text"', "application/json", "JSON body must be an object or a list"),
        (b"\xff\xfe", "text/csv", "request body is not UTF-8"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    binary: dict[str, Any], body: str | bytes, content_type: str, message: str
) -> None:
    with pytest.raises(ValueError) as raised:
        inference.predict_fn(inference.input_fn(body, content_type), binary)
    assert message in str(raised.value)


def test_unknown_feature_in_an_object_row(binary: dict[str, Any]) -> None:
    values = map(float, _rows(1)[0])
    row = {**dict(zip(binary["features"], values, strict=True)), "colour": "red"}
    with pytest.raises(ValueError, match="row 0 has unknown feature\\(s\\): colour"):
        inference.predict_fn(inference.input_fn(json.dumps(row), "application/json"), binary)


def test_unsupported_accept(binary: dict[str, Any]) -> None:
    prediction = inference.predict_fn(inference.input_fn(_csv(_rows(1)), "text/csv"), binary)
    with pytest.raises(ValueError, match="unsupported accept type 'text/html'"):
        inference.output_fn(prediction, "text/html")


def test_model_fn_refuses_a_tampered_model(binary_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "model"
    shutil.copytree(binary_dir, copy)
    with open(copy / "model.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RuntimeError, match=r"SHA-256 is \w+ but training recorded"):
        inference.model_fn(str(copy))
    (copy / "evaluation.json").unlink()
    with pytest.raises(RuntimeError, match=r"evaluation\.json not found"):
        inference.model_fn(str(copy))


def test_model_fn_returns_what_training_recorded(binary_dir: Path, binary: dict[str, Any]) -> None:
    evaluation = json.loads((binary_dir / "evaluation.json").read_text())
    assert binary["threshold"] == evaluation["threshold"]
    assert binary["labels"] == evaluation["labels"]
    assert binary["features"] == evaluation["features"]


def test_multiclass_without_threshold_uses_argmax(tmp_path: Path) -> None:
    frame = imbalanced(n=600, minority=0.3)
    frame["label"] = np.where(frame["f0"] > 1, 2, frame["label"])
    model = inference.model_fn(str(_train(tmp_path, frame, "--model", "logreg")))
    rows = frame.drop(columns="label").to_numpy()[:50]
    labels, _ = _expected(model, rows)
    out = json.loads(
        _serve(model, json.dumps(rows.tolist()), "application/json", "application/json")
    )
    assert model["threshold"] is None
    assert [p["label"] for p in out["predictions"]] == labels


def test_the_pickled_model_needs_scikit_learn_only(
    binary_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serving may load the model where the jobs package is not importable
    import joblib

    for name in (
        "jobs",
        "jobs.baseline",
        "jobs.champion",
        "jobs.config",
        "jobs.contract",
        "jobs.data",
        "jobs.inference",
        "jobs.metrics",
        "jobs.pipeline",
        "jobs.report",
        "jobs.train",
    ):
        monkeypatch.setitem(sys.modules, name, None)  # importing any of them now fails
    with pytest.raises(ImportError):
        import jobs.data  # noqa: F401  (proves the block works)
    model = joblib.load(binary_dir / "model.joblib")
    assert model["pipeline"].predict_proba(_rows(2)).shape == (2, 2)


def test_model_file_names_agree_on_every_side() -> None:
    # inference.py must stay self-contained and lambdas must stay light, so the names
    # live in three modules; this keeps them one fact
    from jobs import contract
    from lambdas import constants

    produced = (contract.MODEL_FILE, contract.EVALUATION_FILE)
    names = (contract.BASELINE_FILE, contract.REPORT_FILE)

    assert produced == (inference.MODEL_FILE, inference.EVALUATION_FILE)
    assert produced == (constants.MODEL_FILE, constants.EVALUATION_FILE)
    assert names == (constants.BASELINE_FILE, constants.REPORT_FILE)


def test_model_fn_refuses_a_model_other_than_the_one_the_gate_approved(
    binary_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = json.loads((binary_dir / "evaluation.json").read_text())["model"]["sha256"]
    monkeypatch.setenv(inference.MODEL_SHA256_ENV, recorded)
    assert inference.model_fn(str(binary_dir))["pipeline"] is not None  # the approved one

    monkeypatch.setenv(inference.MODEL_SHA256_ENV, "0" * 64)
    with pytest.raises(RuntimeError, match="the promotion gate approved 0000"):
        inference.model_fn(str(binary_dir))


def test_the_approved_digest_variable_has_one_name() -> None:
    from lambdas import constants

    assert inference.MODEL_SHA256_ENV == constants.MODEL_SHA256_ENV
