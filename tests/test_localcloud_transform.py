"""Batch transform really runs in the local cloud: a user's scikit-learn model over S3
input, with SageMaker's splitting, batching, filters, joins and assembly; boto3 and the
SDK's typed resources (sagemaker-core, the v3 SDK's core) as clients."""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from localcloud_helpers import ACCOUNT, ROLE_NAME, client, targz
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlops.localcloud import LocalCloud
from mlops.localcloud.transform_records import (
    TransformError,
    batches,
    join,
    per_record,
    select,
    split_records,
)

BUCKET = "batch"
X, Y = load_iris(return_X_y=True)
MODEL_FN = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "clf.joblib"))
"""


# --- the record rules, pure --------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", ["a", "b", "c", "d"]),
        ("$[1:]", ["b", "c", "d"]),
        ("$[0,2:]", ["a", "c", "d"]),
        ("$[-1]", "d"),
        ("$[*]", ["a", "b", "c", "d"]),
        ("$[0,-1]", ["a", "d"]),
    ],
)
def test_jsonpath_selects_csv_values(path: str, expected: Any) -> None:
    assert select(["a", "b", "c", "d"], path) == expected


def test_jsonpath_reads_objects_and_names_what_is_missing() -> None:
    doc = {"features": [1, 2, 3], "id": "x", "SageMakerOutput": {"label": 1}}
    assert select(doc, "$.features[1:]") == [2, 3]
    assert select(doc, "$['SageMakerOutput'].label") == 1
    with pytest.raises(TransformError, match="no 'score'"):
        select(doc, "$.score")
    with pytest.raises(TransformError, match="must start with"):
        select(doc, "features")
    with pytest.raises(TransformError, match="out of a record of 3"):
        select([1, 2, 3], "$[5]")


def test_records_are_split_and_batched_within_the_payload_limit() -> None:
    data = b"1,2\n\n3,4\n5,6\n"
    assert split_records(data, "Line") == [b"1,2", b"3,4", b"5,6"]
    assert split_records(data, "None") == [data]
    with pytest.raises(TransformError, match="RecordIO is not run"):
        split_records(data, "RecordIO")
    records = [b"x" * 400_000] * 5
    assert [len(b) for b in batches(records, "MultiRecord", 1)] == [2, 2, 1]
    assert [len(b) for b in batches(records, "SingleRecord", 1)] == [1] * 5
    with pytest.raises(TransformError, match="over MaxPayloadInMB"):
        list(batches([b"x" * 2_000_000], "MultiRecord", 1))


def test_joins_append_csv_and_nest_json() -> None:
    assert join(b"7,1.5,2", b"0", "text/csv", "text/csv") == (["7", "1.5", "2", "0"], "text/csv")
    assert join(b'{"id": 7}', b'{"label": 1}', "application/json", "application/json") == (
        {"id": 7, "SageMakerOutput": {"label": 1}},
        "application/json",
    )
    assert join(b"[1, 2]", b"0", "application/json", "text/csv")[0] == {
        "SageMakerInput": [1, 2],
        "SageMakerOutput": "0",
    }
    assert per_record(b'{"predictions": [1, 0]}', "application/json", 2) == [b"1", b"0"]
    assert per_record(b'{"a": 1}\n{"a": 0}\n', "application/jsonlines", 2) == [
        b'{"a": 1}',
        b'{"a": 0}',
    ]
    with pytest.raises(TransformError, match="is not JSON"):
        per_record(b"1\n0\n", "application/json", 2)
    with pytest.raises(TransformError, match="does not split into 3"):
        per_record(b"1\n0\n", "text/csv", 3)


# --- jobs in the local cloud ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clf() -> LogisticRegression:
    return LogisticRegression(max_iter=500).fit(X, Y)


@pytest.fixture
def cloud(tmp_path: Path, clf: LogisticRegression) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state") as running:
        s3 = client(running, "s3")
        s3.create_bucket(Bucket=BUCKET)
        buffer = io.BytesIO()
        joblib.dump(clf, buffer)
        archive = targz({"clf.joblib": buffer.getvalue(), "code/inference.py": MODEL_FN})
        s3.put_object(Bucket=BUCKET, Key="model/model.tar.gz", Body=archive)
        client(running, "sagemaker").create_model(
            ModelName="iris",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
            PrimaryContainer={
                "Image": "sagemaker-scikit-learn:1.4-2-cpu-py3",
                "ModelDataUrl": f"s3://{BUCKET}/model/model.tar.gz",
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            },
        )
        yield running


def _csv(rows: np.ndarray, ids: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for i, row in enumerate(rows):
        writer.writerow(([ids[i]] if ids else []) + [f"{v:.1f}" for v in row])
    return out.getvalue().encode()


def _job(cloud: LocalCloud, name: str, **request: Any) -> dict[str, Any]:
    sm = client(cloud, "sagemaker")
    sm.create_transform_job(
        TransformJobName=name,
        ModelName=request.pop("ModelName", "iris"),
        TransformOutput=request.pop(
            "TransformOutput", {"S3OutputPath": f"s3://{BUCKET}/out/{name}"}
        ),
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        **request,
    )
    described = sm.describe_transform_job(TransformJobName=name)
    assert described["TransformJobStatus"] in {"InProgress", "Completed", "Failed"}
    assert cloud.wait_idle(60)
    return dict(sm.describe_transform_job(TransformJobName=name))


def _read(cloud: LocalCloud, key: str) -> str:
    return client(cloud, "s3").get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def _input(prefix: str = "in/") -> dict[str, Any]:
    return {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}"}
        }
    }


def test_a_transform_job_predicts_every_line_of_every_input_object(
    cloud: LocalCloud, clf: LogisticRegression
) -> None:
    s3 = client(cloud, "s3")
    s3.put_object(Bucket=BUCKET, Key="in/a.csv", Body=_csv(X[:60]))
    s3.put_object(Bucket=BUCKET, Key="in/part/b.csv.gz", Body=gzip.compress(_csv(X[60:])))

    plain = _job(
        cloud,
        "lines",
        TransformInput={**_input("in/a"), "ContentType": "text/csv", "SplitType": "Line"},
        BatchStrategy="MultiRecord",
        MaxPayloadInMB=1,
        TransformOutput={
            "S3OutputPath": f"s3://{BUCKET}/out/lines",
            "AssembleWith": "Line",
            "Accept": "text/csv",
        },
    )
    zipped = _job(
        cloud,
        "zipped",
        TransformInput={
            **_input("in/part/"),
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "Gzip",
        },
        BatchStrategy="SingleRecord",
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/zipped", "AssembleWith": "Line"},
    )

    assert plain["TransformJobStatus"] == "Completed", plain.get("FailureReason")
    assert zipped["TransformJobStatus"] == "Completed", zipped.get("FailureReason")
    assert "TransformEndTime" in plain
    first = [float(v) for v in _read(cloud, "out/lines/a.csv.out").split()]
    second = [float(v) for v in _read(cloud, "out/zipped/b.csv.gz.out").split()]
    assert first == clf.predict(np.round(X[:60], 1)).tolist()
    assert second == clf.predict(np.round(X[60:], 1)).tolist()


def test_filters_and_join_keep_the_id_beside_its_prediction(
    cloud: LocalCloud, clf: LogisticRegression
) -> None:
    ids = [f"row-{i}" for i in range(30)]
    client(cloud, "s3").put_object(Bucket=BUCKET, Key="in/ids.csv", Body=_csv(X[:30], ids))

    done = _job(
        cloud,
        "joined",
        TransformInput={**_input("in/ids"), "ContentType": "text/csv", "SplitType": "Line"},
        BatchStrategy="MultiRecord",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/joined", "AssembleWith": "Line"},
    )

    assert done["TransformJobStatus"] == "Completed", done.get("FailureReason")
    rows = list(csv.reader(io.StringIO(_read(cloud, "out/joined/ids.csv.out"))))
    assert [r[0] for r in rows] == ids
    assert [float(r[1]) for r in rows] == clf.predict(np.round(X[:30], 1)).tolist()


def test_bad_input_fails_the_job_with_a_reason_and_writes_nothing(cloud: LocalCloud) -> None:
    s3 = client(cloud, "s3")
    s3.put_object(Bucket=BUCKET, Key="big/whole.csv", Body=_csv(np.tile(X, (900, 1))))
    s3.put_object(Bucket=BUCKET, Key="bad/words.csv", Body=b"not,a,number,row\n")

    too_big = _job(
        cloud,
        "too-big",
        TransformInput={**_input("big/"), "ContentType": "text/csv", "SplitType": "None"},
        MaxPayloadInMB=1,
    )
    refused = _job(
        cloud,
        "refused",
        TransformInput={**_input("bad/"), "ContentType": "text/csv", "SplitType": "Line"},
    )
    nothing = _job(
        cloud, "nothing", TransformInput={**_input("nowhere/"), "ContentType": "text/csv"}
    )

    assert too_big["TransformJobStatus"] == "Failed"
    assert "big/whole.csv" in too_big["FailureReason"]
    assert "over MaxPayloadInMB (1)" in too_big["FailureReason"]
    assert refused["TransformJobStatus"] == "Failed"
    assert refused["FailureReason"].startswith("ClientError: s3://batch/bad/words.csv: the model")
    assert (
        nothing["TransformJobStatus"] == "Failed" and "no input objects" in nothing["FailureReason"]
    )
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents", [])
    assert listed == []
    # the local cloud serves on: another job still runs
    s3.put_object(Bucket=BUCKET, Key="ok/x.csv", Body=_csv(X[:3]))
    ok = _job(
        cloud,
        "after",
        TransformInput={**_input("ok/"), "ContentType": "text/csv", "SplitType": "Line"},
    )
    assert ok["TransformJobStatus"] == "Completed"


def test_a_duplicate_name_or_unknown_model_is_refused(cloud: LocalCloud) -> None:
    from botocore.exceptions import ClientError

    client(cloud, "s3").put_object(Bucket=BUCKET, Key="in/x.csv", Body=_csv(X[:3]))
    _job(cloud, "once", TransformInput={**_input(), "ContentType": "text/csv", "SplitType": "Line"})
    # boto3's waiter (the README's) sees it end
    client(cloud, "sagemaker").get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="once", WaiterConfig={"Delay": 1, "MaxAttempts": 5}
    )
    with pytest.raises(ClientError, match="already exists"):
        _job(cloud, "once", TransformInput={**_input(), "ContentType": "text/csv"})
    with pytest.raises(ClientError, match="Could not find model"):
        _job(cloud, "no-model", ModelName="nope", TransformInput=_input())


def test_the_sdks_typed_resources_run_and_wait_for_a_transform_job(
    cloud: LocalCloud, clf: LogisticRegression, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = pytest.importorskip("sagemaker.core.resources")
    shapes = pytest.importorskip("sagemaker.core.shapes")
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    client(cloud, "s3").put_object(Bucket=BUCKET, Key="sdk/x.csv", Body=_csv(X[:20]))
    session = boto3.Session(region_name="us-east-1")

    job = resources.TransformJob.create(
        transform_job_name="sdk-job",
        model_name="iris",
        transform_input=shapes.TransformInput(
            data_source=shapes.TransformDataSource(
                s3_data_source=shapes.TransformS3DataSource(
                    s3_data_type="S3Prefix", s3_uri=f"s3://{BUCKET}/sdk/"
                )
            ),
            content_type="text/csv",
            split_type="Line",
        ),
        transform_output=shapes.TransformOutput(
            s3_output_path=f"s3://{BUCKET}/out/sdk", assemble_with="Line", accept="application/json"
        ),
        transform_resources=shapes.TransformResources(
            instance_type="ml.m5.large", instance_count=1
        ),
        session=session,
        region="us-east-1",
    )
    started = time.monotonic()
    job.wait(poll=1, timeout=60)

    assert job.transform_job_status == "Completed" and time.monotonic() - started < 60
    answer = json.loads(_read(cloud, "out/sdk/x.csv.out"))
    assert answer == clf.predict(np.round(X[:20], 1)).tolist()


def test_stop_transform_job_stops_it_between_requests(cloud: LocalCloud) -> None:
    client(cloud, "s3").put_object(Bucket=BUCKET, Key="long/x.csv", Body=_csv(np.tile(X, (40, 1))))
    sm = client(cloud, "sagemaker")
    sm.create_transform_job(
        TransformJobName="long",
        ModelName="iris",
        BatchStrategy="SingleRecord",  # 6000 requests: seconds of work
        TransformInput={**_input("long/"), "ContentType": "text/csv", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": f"s3://{BUCKET}/out/long"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )

    sm.stop_transform_job(TransformJobName="long")

    assert cloud.wait_idle(60)
    assert sm.describe_transform_job(TransformJobName="long")["TransformJobStatus"] == "Stopped"
    assert client(cloud, "s3").list_objects_v2(Bucket=BUCKET, Prefix="out/").get("Contents") is None
