"""The SageMaker Python SDK v3's ModelTrainer trains in the local cloud.

``ModelTrainer(source_code=SourceCode(source_dir=..., entry_script="train.py"))`` uploads
its ``code`` and ``sm_drivers`` channels and starts the job with ``ContainerEntrypoint``
``/bin/bash -c ... sm_train.sh``: the SDK's own drivers, which use the container's
``/opt/ml`` paths. The local cloud runs them as they are (docs/local-cloud.md).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud_helpers import ACCOUNT, ROLE_NAME, client, untar

from mlops.localcloud import LocalCloud

sdk = pytest.importorskip("sagemaker.train")
BUCKET = "v3-sdk-bucket"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}"
TRAIN = textwrap.dedent(
    """
    import argparse, json, os
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int)
    args, _ = parser.parse_known_args()
    rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "train.csv")).read().splitlines()
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as f:
        json.dump({"epochs": args.epochs, "rows": len(rows) - 1, "hps": os.environ["SM_HPS"]}, f)
    print(f"train_loss={1.0 / args.epochs:.4f}")
    """
)


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state") as running:
        monkeypatch.setenv("AWS_ENDPOINT_URL", running.endpoint_url)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(key, value)
        s3 = client(running, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"a,label\n1,0\n2,1\n3,0\n")
        client(running, "iam").create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )
        yield running


def _trainer(source: Path, **extra: object) -> object:
    import boto3
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.train import ModelTrainer
    from sagemaker.train.configs import Compute, SourceCode

    session = Session(boto_session=boto3.Session(region_name="us-east-1"), default_bucket=BUCKET)
    return ModelTrainer(
        training_image="683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3",
        source_code=SourceCode(source_dir=str(source), entry_script="train.py"),
        role=ROLE,
        sagemaker_session=session,
        compute=Compute(instance_type="ml.m5.large", instance_count=1),
        base_job_name="v3-sdk",
        **extra,
    )


def test_model_trainer_runs_the_sdks_drivers_and_the_users_script(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    from sagemaker.train.configs import InputData

    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN)
    trainer = _trainer(source, hyperparameters={"epochs": 4})

    trainer.train(  # type: ignore[attr-defined]
        input_data_config=[InputData(channel_name="train", data_source=f"s3://{BUCKET}/data/")],
        wait=True,
        logs=False,
    )

    job = trainer._latest_training_job  # type: ignore[attr-defined]
    described = client(cloud, "sagemaker").describe_training_job(
        TrainingJobName=job.training_job_name
    )
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["AlgorithmSpecification"]["ContainerEntrypoint"] == ["/bin/bash"]
    channels = {c["ChannelName"] for c in described["InputDataConfig"]}
    assert {"code", "sm_drivers", "train"} <= channels
    assert not Path("/opt/ml/input").exists() and not Path("/opt/ml/model").exists()
    # the user's script saw its channel and hyperparameters, and its model was uploaded
    url = described["ModelArtifacts"]["S3ModelArtifacts"]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    archive = client(cloud, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    model = json.loads(untar(archive)["model.json"])
    assert (model["epochs"], model["rows"]) == (4, 3)
