"""The job runner: training jobs created on the moto server really run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud_helpers import client, setup_training_bucket, training_job_request, untar

from mlops.localcloud import LocalCloud

BUCKET = "artifacts-bucket"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state", repo_root=tmp_path) as running:
        setup_training_bucket(running, BUCKET)
        yield running


def _run(cloud: LocalCloud, name: str, **kwargs: object) -> dict:
    sm = client(cloud, "sagemaker")
    sm.create_training_job(**training_job_request(name, BUCKET, **kwargs))  # type: ignore[arg-type]
    assert cloud.wait_idle(60), "the job did not finish"
    return sm.describe_training_job(TrainingJobName=name)


def test_job_is_in_progress_until_it_has_run(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_training_job(
        **training_job_request("slow-job", BUCKET, hyperparameters={"sleep": "0.5"})
    )

    described = sm.describe_training_job(TrainingJobName="slow-job")

    assert described["TrainingJobStatus"] == "InProgress"
    assert "ModelArtifacts" not in described
    assert cloud.wait_idle(60)
    assert sm.describe_training_job(TrainingJobName="slow-job")["TrainingJobStatus"] == "Completed"


def test_completed_job_uploads_model_and_output_at_sagemaker_keys(cloud: LocalCloud) -> None:
    described = _run(cloud, "good-job", hyperparameters={"learning-rate": "0.1"})

    assert described["TrainingJobStatus"] == "Completed"
    assert described["SecondaryStatus"] == "Completed"
    model_uri = f"s3://{BUCKET}/models/good-job/output/model.tar.gz"
    assert described["ModelArtifacts"] == {"S3ModelArtifacts": model_uri}
    assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert described["TrainingEndTime"] >= described["TrainingStartTime"]
    assert described["FinalMetricDataList"][0]["MetricName"] == "accuracy"
    assert described["FinalMetricDataList"][0]["Value"] == pytest.approx(0.91)

    s3 = client(cloud, "s3")
    model_obj = s3.get_object(Bucket=BUCKET, Key="models/good-job/output/model.tar.gz")
    assert model_obj["ServerSideEncryption"] == "aws:kms"
    assert model_obj["SSEKMSKeyId"] == "alias/test"
    model = json.loads(untar(model_obj["Body"].read())["model.json"])
    # channel files keep their paths relative to the prefix
    assert model["files"] == ["extra/part-2.csv", "train.csv"]
    # hyperparameters are decoded (SM_HPS) and passed as --key value, sagemaker_* left out
    assert model["hps"] == {"target": "label", "learning-rate": 0.1}
    assert model["args"] == ["--target", "label", "--learning-rate", "0.1"]
    assert model["channels"] == ["train"]
    assert model["endpoint"] == cloud.endpoint_url
    assert model["job"] == "good-job"
    output = s3.get_object(Bucket=BUCKET, Key="models/good-job/output/output.tar.gz")
    assert untar(output["Body"].read()) == {"report.html": b"<html>report</html>"}
    assert (cloud.state_dir / "jobs" / "good-job.log").read_text().startswith("#metric")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("fail", "ValueError: the label column is missing"),
        ("crash", "RuntimeError: boom in training"),
    ],
)
def test_failing_job_is_failed_with_its_reason(cloud: LocalCloud, mode: str, expected: str) -> None:
    described = _run(cloud, f"{mode}-job", hyperparameters={"mode": json.dumps(mode)})

    assert described["TrainingJobStatus"] == "Failed"
    assert expected in described["FailureReason"]
    if mode == "crash":  # no failure file: the last stderr lines, like SageMaker
        assert described["FailureReason"].startswith("AlgorithmError: ")
    assert "ModelArtifacts" not in described


def test_missing_code_bundle_fails_with_a_clear_reason(cloud: LocalCloud) -> None:
    described = _run(cloud, "no-code-job", code_key="code/missing.tar.gz")

    assert described["TrainingJobStatus"] == "Failed"
    assert f"s3://{BUCKET}/code/missing.tar.gz" in described["FailureReason"]
    assert "could not be downloaded" in described["FailureReason"]


def test_empty_channel_fails_like_sagemaker(cloud: LocalCloud) -> None:
    described = _run(cloud, "no-data-job", train_prefix="training/none/")

    assert described["TrainingJobStatus"] == "Failed"
    assert "No S3 objects found" in described["FailureReason"]


@pytest.mark.slow
def test_max_runtime_stops_the_job(cloud: LocalCloud) -> None:
    described = _run(cloud, "long-job", hyperparameters={"sleep": "30"}, max_seconds=1)

    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"
    assert "MaxRuntimeExceeded" in described["FailureReason"]


@pytest.mark.slow
def test_stop_training_job_stops_the_running_process(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_training_job(
        **training_job_request("stop-me", BUCKET, hyperparameters={"sleep": "30"})
    )
    sm.create_training_job(
        **training_job_request("queued", BUCKET, hyperparameters={"sleep": "30"})
    )

    sm.stop_training_job(TrainingJobName="stop-me")
    sm.stop_training_job(TrainingJobName="queued")  # still waiting for the one worker

    assert cloud.wait_idle(30)
    for name in ("stop-me", "queued"):
        assert sm.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] == "Stopped"
    with pytest.raises(sm.exceptions.ClientError, match="in status Stopped"):
        sm.stop_training_job(TrainingJobName="stop-me")
