"""Helpers for the local cloud tests: clients, code bundles, fake functions and rules."""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import textwrap
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE_NAME = "localcloud-test-role"

# A training entry point: copies the train channel into the model, reads its
# hyperparameters both ways, and fails with a failure file when told to.
TRAIN_PY = textwrap.dedent(
    """
    import argparse
    import json
    import os
    import sys
    import time

    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--sleep", type=float, default=0)
    args, _ = parser.parse_known_args()

    if args.sleep:
        time.sleep(args.sleep)
    if args.mode == "fail":
        with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
            f.write("ValueError: the label column is missing")
        sys.exit(1)
    if args.mode == "crash":
        raise RuntimeError("boom in training")

    train = os.environ["SM_CHANNEL_TRAIN"]
    files = sorted(
        os.path.relpath(os.path.join(root, name), train)
        for root, _, names in os.walk(train)
        for name in names
    )
    print("#metric accuracy=0.91")
    model_dir = os.environ["SM_MODEL_DIR"]
    with open(os.path.join(model_dir, "model.json"), "w") as f:
        json.dump(
            {
                "files": files,
                "hps": json.loads(os.environ["SM_HPS"]),
                "args": sys.argv[1:],
                "channels": json.loads(os.environ["SM_CHANNELS"]),
                "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                "job": os.environ.get("TRAINING_JOB_NAME"),
            },
            f,
        )
    with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.html"), "w") as f:
        f.write("<html>report</html>")
    """
)

# A Lambda handler that appends what it received to the file named in its environment.
RECORDER_PY = textwrap.dedent(
    """
    import json
    import os

    def handler(event, context):
        print("handling", event.get("id"))  # logs must not mix with the result
        with open(os.environ["RECORD_FILE"], "a") as f:
            f.write(json.dumps({
                "event": event,
                "function": context.function_name,
                "model": os.environ.get("MLOPS_MODEL_NAME"),
                "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
            }) + "\\n")
        if os.environ.get("FAIL"):
            raise ValueError("handler failed on purpose")
        return {"ok": True}
    """
)


def client(cloud: Any, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=cloud.endpoint_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def targz(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def untar(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
            if m.isfile()
        }


def training_job_request(
    name: str,
    bucket: str,
    *,
    code_key: str = "code/jobs.tar.gz",
    train_prefix: str = "training/v1/",
    hyperparameters: dict[str, str] | None = None,
    max_seconds: int = 60,
) -> dict[str, Any]:
    """A CreateTrainingJob request as the SageMaker SDK writes it (JSON-encoded values)."""
    hps = {
        "sagemaker_program": json.dumps("train.py"),
        "sagemaker_submit_directory": json.dumps(f"s3://{bucket}/{code_key}"),
        "target": json.dumps("label"),
    }
    hps.update(hyperparameters or {})
    return {
        "TrainingJobName": name,
        "HyperParameters": hps,
        "AlgorithmSpecification": {
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sklearn:latest",
            "TrainingInputMode": "File",
            "MetricDefinitions": [{"Name": "accuracy", "Regex": "accuracy=([0-9.]+)"}],
        },
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket}/{train_prefix}",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/models", "KmsKeyId": "alias/test"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": max_seconds},
        "Tags": [{"Key": "mlops:model", "Value": "churn"}],
    }


def setup_training_bucket(cloud: Any, bucket: str) -> None:
    s3 = client(cloud, "s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code/jobs.tar.gz", Body=targz({"train.py": TRAIN_PY}))
    s3.put_object(Bucket=bucket, Key="training/v1/train.csv", Body=b"a,label\n1,0\n")
    s3.put_object(Bucket=bucket, Key="training/v1/extra/part-2.csv", Body=b"a,label\n2,1\n")


def write_recorder(folder: Path) -> str:
    """Write the recorder handler module into ``folder``; returns its handler string."""
    (folder / "recorder_handler.py").write_text(RECORDER_PY)
    return "recorder_handler.handler"


def deploy_function(cloud: Any, name: str, handler: str, env: dict[str, str], **extra: Any) -> str:
    """Create the IAM role (once) and a Lambda function; returns its ARN."""
    iam = client(cloud, "iam")
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("placeholder.py", "")
    response = client(cloud, "lambda").create_function(
        FunctionName=name,
        Runtime="python3.11",
        Role=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        Handler=handler,
        Code={"ZipFile": buffer.getvalue()},
        Timeout=30,
        Environment={"Variables": env},
        **extra,
    )
    return str(response["FunctionArn"])


def deploy_rule(
    cloud: Any,
    name: str,
    function_arn: str,
    *,
    pattern: dict[str, Any] | None = None,
    schedule: str | None = None,
) -> None:
    events = client(cloud, "events")
    kwargs: dict[str, Any] = {"Name": name, "State": "ENABLED"}
    if pattern is not None:
        kwargs["EventPattern"] = json.dumps(pattern)
    if schedule is not None:
        kwargs["ScheduleExpression"] = schedule
    events.put_rule(**kwargs)
    events.put_targets(Rule=name, Targets=[{"Id": "fn", "Arn": function_arn}])


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


class FakeServing:
    """Serving functions for a model folder holding ``model.json`` = ``{"label": ...}``."""

    @staticmethod
    def model_fn(model_dir: str) -> dict[str, Any]:
        return dict(json.loads((Path(model_dir) / "model.json").read_text()))

    @staticmethod
    def input_fn(body: bytes, content_type: str) -> list[Any]:
        data = json.loads(body)
        if not isinstance(data, dict) or "instances" not in data:
            raise ValueError("expected a JSON object with 'instances'")
        return list(data["instances"])

    @staticmethod
    def predict_fn(rows: list[Any], model: dict[str, Any]) -> list[Any]:
        return [model["label"] for _ in rows]

    @staticmethod
    def output_fn(predictions: list[Any], accept: str) -> str:
        return json.dumps({"predictions": [{"label": p} for p in predictions]})


def fake_loader(data: bytes, workdir: Path) -> Any:
    from mlops.endpoint import LocalModel

    return LocalModel.from_tarball(data, workdir, serving=FakeServing())  # type: ignore[arg-type]


def deploy_model(cloud: Any, bucket: str, name: str, label: str | None) -> str:
    """Upload a model.tar.gz (``label`` None: a broken one) and create the SageMaker model."""
    key = f"models/{name}/model.tar.gz"
    files: dict[str, str | bytes] = (
        {"model.json": json.dumps({"label": label})} if label is not None else {"junk.txt": "x"}
    )
    client(cloud, "s3").put_object(Bucket=bucket, Key=key, Body=targz(files))
    client(cloud, "sagemaker").create_model(
        ModelName=name,
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        PrimaryContainer={"Image": "serving:latest", "ModelDataUrl": f"s3://{bucket}/{key}"},
    )
    return name


def deploy_endpoint_config(
    cloud: Any, name: str, model: str, capture_uri: str | None = None
) -> None:
    kwargs: dict[str, Any] = {}
    if capture_uri:
        kwargs["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": capture_uri,
            "KmsKeyId": "alias/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        }
    client(cloud, "sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            }
        ],
        **kwargs,
    )
