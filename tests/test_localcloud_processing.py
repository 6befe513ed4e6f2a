"""Processing jobs really run in the local cloud: inputs to their LocalPath, the
entrypoint with its arguments and environment, outputs back to S3; failures, bad paths,
stops and time limits; boto3 and sagemaker-core's ProcessingJob as clients."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcloud_helpers import ACCOUNT, ROLE_NAME, alive, client, wait_for

from mlops.localcloud import LocalCloud
from mlops.localcloud.processing import PROCESSING_ROOT

BUCKET = "proc"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
RESOURCES = {
    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
}
SPLIT = """
import argparse, csv, glob, os
parser = argparse.ArgumentParser()
parser.add_argument("--test-share", type=float)
args = parser.parse_args()
rows = []
for path in sorted(glob.glob("/opt/ml/processing/input/data/*.csv")):
    with open(path) as f:
        rows += list(csv.reader(f))[1:]
cut = int(len(rows) * (1 - args.test_share))
for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
    os.makedirs(f"/opt/ml/processing/{name}", exist_ok=True)
    with open(f"/opt/ml/processing/{name}/{name}.csv", "w", newline="") as f:
        csv.writer(f).writerows(part)
with open("/opt/ml/processing/train/env.txt", "w") as f:
    f.write(os.environ["STAGE"])
"""
CRASH = "import json\nrows = json.loads('not json')\n"
SLEEP = (
    "import os, time\n"
    "open('/opt/ml/processing/out/pid', 'w').write(str(os.getpid()))\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state") as running:
        client(running, "s3").create_bucket(Bucket=BUCKET)
        yield running


def _code(cloud: LocalCloud, name: str, source: str) -> dict[str, Any]:
    """The script as a ProcessingInput named code, as the SDK's processors send it."""
    client(cloud, "s3").put_object(Bucket=BUCKET, Key=f"code/{name}", Body=source.encode())
    return {
        "InputName": "code",
        "S3Input": {
            "S3Uri": f"s3://{BUCKET}/code/{name}",
            "LocalPath": "/opt/ml/processing/input/code",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def _run(cloud: LocalCloud, name: str, script: str, source: str, **request: Any) -> dict[str, Any]:
    sm = client(cloud, "sagemaker")
    sm.create_processing_job(
        ProcessingJobName=name,
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification=request.pop(
            "AppSpecification",
            {
                "ImageUri": "sagemaker-scikit-learn:1.4-2-cpu-py3",
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
            },
        ),
        ProcessingInputs=[_code(cloud, script, source), *request.pop("inputs", [])],
        **request,
    )
    assert cloud.wait_idle(120)
    return dict(sm.describe_processing_job(ProcessingJobName=name))


def _output(name: str, local: str, uri: str) -> dict[str, Any]:
    return {
        "OutputName": name,
        "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"},
    }


def test_a_processing_job_splits_its_input_into_outputs(cloud: LocalCloud) -> None:
    table = "a,b\n" + "".join(f"{i},{i * i}\n" for i in range(20))
    client(cloud, "s3").put_object(Bucket=BUCKET, Key="raw/part-1.csv", Body=table.encode())

    done = _run(
        cloud,
        "split",
        "split.py",
        SPLIT,
        inputs=[
            {
                "InputName": "data",
                "S3Input": {
                    "S3Uri": f"s3://{BUCKET}/raw/",
                    "LocalPath": "/opt/ml/processing/input/data",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
        ],
        AppSpecification={
            "ImageUri": "sagemaker-scikit-learn:1.4-2-cpu-py3",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/split.py"],
            "ContainerArguments": ["--test-share", "0.25"],
        },
        ProcessingOutputConfig={
            "Outputs": [
                _output("train", "/opt/ml/processing/train", f"s3://{BUCKET}/out/train"),
                _output("test", "/opt/ml/processing/test", f"s3://{BUCKET}/out/test"),
            ]
        },
        Environment={"STAGE": "nightly"},
    )

    assert done["ProcessingJobStatus"] == "Completed", done.get("FailureReason")
    s3 = client(cloud, "s3")
    train = s3.get_object(Bucket=BUCKET, Key="out/train/train.csv")["Body"].read().decode()
    test = s3.get_object(Bucket=BUCKET, Key="out/test/test.csv")["Body"].read().decode()
    assert len(list(csv.reader(io.StringIO(train)))) == 15
    assert next(csv.reader(io.StringIO(test))) == ["15", "225"]
    assert s3.get_object(Bucket=BUCKET, Key="out/train/env.txt")["Body"].read() == b"nightly"
    # the job's folders are gone once it ended
    assert not (PROCESSING_ROOT / "train").exists() and not (PROCESSING_ROOT / "input").exists()


def test_a_crashing_script_fails_with_its_last_lines(cloud: LocalCloud) -> None:
    failed = _run(cloud, "crash", "crash.py", CRASH)

    assert failed["ProcessingJobStatus"] == "Failed"
    assert failed["FailureReason"].startswith("AlgorithmError: the entrypoint exited with code 1")
    assert "JSONDecodeError" in failed["FailureReason"]


def test_a_path_outside_opt_ml_processing_fails_naming_it(cloud: LocalCloud) -> None:
    failed = _run(
        cloud,
        "bad-path",
        "split.py",
        SPLIT,
        ProcessingOutputConfig={"Outputs": [_output("x", "/tmp/elsewhere", f"s3://{BUCKET}/x")]},
    )

    assert failed["ProcessingJobStatus"] == "Failed"
    assert (
        "output x LocalPath '/tmp/elsewhere' is not under /opt/ml/processing"
        in (failed["FailureReason"])
    )


def test_stop_and_the_time_limit_end_the_process_and_its_folders(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    out = [_output("out", "/opt/ml/processing/out", f"s3://{BUCKET}/o")]
    sm.create_processing_job(
        ProcessingJobName="sleepy",
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification={
            "ImageUri": "x",
            "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/sleep.py"],
        },
        ProcessingInputs=[_code(cloud, "sleep.py", SLEEP)],
        ProcessingOutputConfig={"Outputs": out},
    )
    pid_file = PROCESSING_ROOT / "out" / "pid"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=30))

    sm.stop_processing_job(ProcessingJobName="sleepy")

    assert cloud.wait_idle(30)
    assert (
        sm.describe_processing_job(ProcessingJobName="sleepy")["ProcessingJobStatus"] == "Stopped"
    )
    assert not alive(pid) and not (PROCESSING_ROOT / "out").exists()
    started = time.monotonic()
    limited = _run(
        cloud,
        "limited",
        "sleep.py",
        SLEEP,
        StoppingCondition={"MaxRuntimeInSeconds": 1},
        ProcessingOutputConfig={"Outputs": out},
    )
    assert limited["ProcessingJobStatus"] == "Stopped" and time.monotonic() - started < 20
    assert "MaxRuntimeExceeded" in limited["FailureReason"]


def test_the_sdks_typed_resource_runs_a_processing_job(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    resources = pytest.importorskip("sagemaker.core.resources")
    shapes = pytest.importorskip("sagemaker.core.shapes")
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    client(cloud, "s3").put_object(
        Bucket=BUCKET,
        Key="code/hello.py",
        Body=b"open('/opt/ml/processing/out/hi.txt','w').write('hi')\n",
    )

    job = resources.ProcessingJob.create(
        processing_job_name="sdk-proc",
        processing_resources=shapes.ProcessingResources(
            cluster_config=shapes.ProcessingClusterConfig(
                instance_count=1, instance_type="ml.m5.large", volume_size_in_gb=5
            )
        ),
        app_specification=shapes.AppSpecification(
            image_uri="sagemaker-scikit-learn:1.4-2-cpu-py3",
            container_entrypoint=["python3", "/opt/ml/processing/input/code/hello.py"],
        ),
        role_arn=ROLE,
        processing_inputs=[
            shapes.ProcessingInput(
                input_name="code",
                s3_input=shapes.ProcessingS3Input(
                    s3_uri=f"s3://{BUCKET}/code/hello.py",
                    local_path="/opt/ml/processing/input/code",
                    s3_data_type="S3Prefix",
                    s3_input_mode="File",
                ),
            )
        ],
        processing_output_config=shapes.ProcessingOutputConfig(
            outputs=[
                shapes.ProcessingOutput(
                    output_name="out",
                    s3_output=shapes.ProcessingS3Output(
                        s3_uri=f"s3://{BUCKET}/sdk-out",
                        local_path="/opt/ml/processing/out",
                        s3_upload_mode="EndOfJob",
                    ),
                )
            ]
        ),
        session=boto3.Session(region_name="us-east-1"),
        region="us-east-1",
    )
    job.wait(poll=1, timeout=60)

    assert job.processing_job_status == "Completed"
    body = client(cloud, "s3").get_object(Bucket=BUCKET, Key="sdk-out/hi.txt")["Body"].read()
    assert body == b"hi"


def test_a_job_without_inputs_or_outputs_runs(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_processing_job(
        ProcessingJobName="bare",
        RoleArn=ROLE,
        ProcessingResources=RESOURCES,
        AppSpecification={"ImageUri": "x", "ContainerEntrypoint": ["python3", "-c", "print(1)"]},
    )
    assert cloud.wait_idle(30)
    assert (
        sm.describe_processing_job(ProcessingJobName="bare")["ProcessingJobStatus"] == "Completed"
    )


def test_a_job_stopped_while_queued_never_runs(cloud: LocalCloud, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    sm = client(cloud, "sagemaker")
    out = [_output("out", "/opt/ml/processing/out", f"s3://{BUCKET}/o")]
    for name, source in (("first", SLEEP), ("queued", f"open({str(marker)!r}, 'w')\n")):
        sm.create_processing_job(
            ProcessingJobName=name,
            RoleArn=ROLE,
            ProcessingResources=RESOURCES,
            AppSpecification={
                "ImageUri": "x",
                "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{name}.py"],
            },
            ProcessingInputs=[_code(cloud, f"{name}.py", source)],
            ProcessingOutputConfig={"Outputs": out},
        )

    sm.stop_processing_job(ProcessingJobName="queued")
    sm.stop_processing_job(ProcessingJobName="first")

    assert cloud.wait_idle(30)
    assert (
        sm.describe_processing_job(ProcessingJobName="queued")["ProcessingJobStatus"] == "Stopped"
    )
    assert not marker.exists()


def test_a_folder_it_did_not_make_is_never_deleted(cloud: LocalCloud) -> None:
    mine = PROCESSING_ROOT / "train"
    mine.mkdir(parents=True)
    (mine / "keep.txt").write_text("mine")
    try:
        failed = _run(
            cloud,
            "occupied",
            "split.py",
            SPLIT,
            ProcessingOutputConfig={
                "Outputs": [_output("train", str(mine), f"s3://{BUCKET}/out/train")]
            },
        )
        assert failed["ProcessingJobStatus"] == "Failed"
        assert "exists and is not empty" in failed["FailureReason"]
        assert (mine / "keep.txt").read_text() == "mine"
    finally:
        import shutil

        shutil.rmtree(PROCESSING_ROOT.parent)
