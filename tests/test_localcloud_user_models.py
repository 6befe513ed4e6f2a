"""A user's own scikit-learn model behind a local endpoint, on the SageMaker scikit-learn
container's contract: SAGEMAKER_PROGRAM from SAGEMAKER_SUBMIT_DIRECTORY (the archive's
code/ folder or an S3 source tarball), its handler functions, the container's defaults."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
from botocore.exceptions import ClientError
from localcloud_helpers import ACCOUNT, ROLE_NAME, client, targz
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlops.localcloud import LocalCloud

BUCKET = "user-models"
X, Y = load_iris(return_X_y=True)
MODEL_FN_ONLY = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "clf.joblib"))
"""
ALL_HANDLERS = """
import json, os
import joblib
from helpers import as_rows  # a helper module beside the program, as in the container

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "clf.joblib"))

def input_fn(body, content_type):
    return as_rows(json.loads(body)["rows"])

def predict_fn(rows, model):
    return model.predict_proba(rows)[:, 1]

def output_fn(scores, accept):
    return json.dumps({"scores": [round(float(s), 6) for s in scores]}), "application/json"
"""
HELPERS = "import numpy as np\n\ndef as_rows(rows):\n    return np.asarray(rows, dtype=float)\n"


@pytest.fixture(scope="module")
def clf() -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(X, Y)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state") as running:
        client(running, "s3").create_bucket(Bucket=BUCKET)
        yield running


def _model_bytes(clf: LogisticRegression) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(clf, buffer)
    return buffer.getvalue()


def _deploy(cloud: LocalCloud, name: str, archive: bytes, environment: dict[str, str]) -> None:
    key = f"{name}/model.tar.gz"
    client(cloud, "s3").put_object(Bucket=BUCKET, Key=key, Body=archive)
    sm = client(cloud, "sagemaker")
    sm.create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        PrimaryContainer={
            "Image": "sagemaker-scikit-learn:1.4-2-cpu-py3",
            "ModelDataUrl": f"s3://{BUCKET}/{key}",
            "Environment": environment,
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": name,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
    )
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _invoke(cloud: LocalCloud, name: str, body: bytes, content_type: str) -> bytes:
    response = client(cloud, "sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=body, ContentType=content_type, Accept="application/json"
    )
    return bytes(response["Body"].read())


def test_model_fn_only_the_container_defaults_do_the_rest(
    cloud: LocalCloud, clf: LogisticRegression
) -> None:
    # the SDK's repacked layout: the model at the root, the code under code/
    archive = targz({"clf.joblib": _model_bytes(clf), "code/inference.py": MODEL_FN_ONLY})
    env = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
    _deploy(cloud, "iris-defaults", archive, env)

    rows = X[[0, 60, 120]]
    body = "\n".join(",".join(str(v) for v in row) for row in rows).encode()
    answer = json.loads(_invoke(cloud, "iris-defaults", body, "text/csv"))

    assert answer == clf.predict(rows).tolist()


def test_handlers_and_helpers_from_an_s3_source_tarball(
    cloud: LocalCloud, clf: LogisticRegression
) -> None:
    source = targz({"serve.py": ALL_HANDLERS, "helpers.py": HELPERS})
    client(cloud, "s3").put_object(Bucket=BUCKET, Key="src/sourcedir.tar.gz", Body=source)
    env = {
        "SAGEMAKER_PROGRAM": "serve.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": f"s3://{BUCKET}/src/sourcedir.tar.gz",
    }
    _deploy(cloud, "iris-handlers", targz({"clf.joblib": _model_bytes(clf)}), env)

    rows = X[[0, 100]]
    body = json.dumps({"rows": rows.tolist()}).encode()
    answer = json.loads(_invoke(cloud, "iris-handlers", body, "application/json"))

    expected = np.round(clf.predict_proba(rows)[:, 1], 6).tolist()
    assert answer == {"scores": expected}


@pytest.mark.parametrize(
    ("files", "environment", "reason"),
    [
        (
            {"clf.joblib": b"x", "code/inference.py": "import os\n1 / 0\n"},
            {"SAGEMAKER_PROGRAM": "inference.py"},
            "inference.py failed to import: ",  # followed by the error's last lines
        ),
        (
            {"clf.joblib": b"x", "code/inference.py": "def predict_fn(d, m):\n    return d\n"},
            {"SAGEMAKER_PROGRAM": "inference.py"},
            "has no model_fn",
        ),
        (
            {"clf.joblib": b"x", "code/other.py": "x = 1\n"},
            {"SAGEMAKER_PROGRAM": "inference.py"},
            "no such file in the code folder",
        ),
    ],
)
def test_a_broken_user_module_is_a_clear_model_error(
    cloud: LocalCloud, files: dict[str, str | bytes], environment: dict[str, str], reason: str
) -> None:
    _deploy(cloud, "broken", targz(files), environment)

    with pytest.raises(ClientError) as caught:
        _invoke(cloud, "broken", b"1,2,3,4", "text/csv")

    message = caught.value.response["Error"]["Message"]
    assert reason in message, message
    if "failed to import" in reason:
        assert "ZeroDivisionError" in message


def test_model_data_that_is_not_a_tarball_is_named(cloud: LocalCloud) -> None:
    _deploy(cloud, "not-tar", b"just bytes", {"SAGEMAKER_PROGRAM": "inference.py"})

    with pytest.raises(ClientError, match=r"not a tar\.gz archive"):
        _invoke(cloud, "not-tar", b"1,2,3,4", "text/csv")


def test_mlops_serve_loads_a_folder_with_its_own_code(
    tmp_path: Path, clf: LogisticRegression
) -> None:
    from mlops.endpoint import load_model

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(MODEL_FN_ONLY)
    (tmp_path / "clf.joblib").write_bytes(_model_bytes(clf))

    model = load_model(tmp_path)  # code/inference.py and no evaluation.json: the user's

    body, kind = model.invoke(b"5.1,3.5,1.4,0.2", "text/csv", "application/json")
    assert kind == "application/json"
    assert json.loads(body) == clf.predict(X[:1]).tolist()


def test_the_serve_banner_names_a_users_module_not_zero_features(
    tmp_path: Path, clf: LogisticRegression
) -> None:
    from mlops.endpoint import load_model
    from mlops.endpoint.server import _describe

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "inference.py").write_text(MODEL_FN_ONLY)
    (tmp_path / "clf.joblib").write_bytes(_model_bytes(clf))
    model = load_model(tmp_path)

    assert _describe(model, None) == "with its own serving module (code/inference.py)"
    assert _describe(model, "serve.py") == "with serve.py"
    assert "0 features" not in _describe(model, None)
