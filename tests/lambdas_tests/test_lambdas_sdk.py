"""mlops.sagemaker_sdk: the same training job, submitted with sagemaker-core (moto)."""

from __future__ import annotations

from typing import Any

import pytest
from lambdas_helpers import (
    Stack,
)

from lambdas.training import build_training_request
from mlops.sagemaker_sdk import submit_with_sdk

pytest.importorskip("sagemaker.core.resources", reason="sagemaker-core is a dev dependency")

VERSION = "0123abcd" * 8
SAME_FIELDS = [
    "AlgorithmSpecification",
    "RoleArn",
    "InputDataConfig",
    "OutputDataConfig",
    "ResourceConfig",
    "StoppingCondition",
    "EnableNetworkIsolation",
]


def _job(stack: Stack, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    sm = stack.clients.sagemaker
    job = sm.describe_training_job(TrainingJobName=name)
    tags = sm.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    return job, {t["Key"]: t["Value"] for t in tags}


CHAMPION = {
    "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-packages/1",
    "model_data_url": "s3://mlops-artifacts/training/churn-20240401-120000-00000001/output/model.tar.gz",
}


@pytest.mark.parametrize("champion", [None, CHAMPION], ids=["first model", "with a champion"])
def test_sdk_submits_the_same_job_as_boto3(stack: Stack, champion: dict[str, Any] | None) -> None:
    # given the job the retrain handler would submit with boto3
    by_boto3 = "churn-20240501-120000-0123abcd"
    by_sdk = "churn-20240501-120001-0123abcd"
    request = build_training_request(stack.config, by_boto3, VERSION, "manual", champion)
    stack.clients.sagemaker.create_training_job(**request)

    # when the same job is submitted with the SageMaker SDK (sagemaker-core)
    arn = submit_with_sdk(stack.config, by_sdk, VERSION, "manual", champion=champion)

    # then SageMaker holds the same job, field for field, tags included
    assert arn.endswith(f"training-job/{by_sdk}")
    boto3_job, boto3_tags = _job(stack, by_boto3)
    sdk_job, sdk_tags = _job(stack, by_sdk)
    # (the hyperparameters differ only by the job name the SDK path is given)
    hps = {**boto3_job["HyperParameters"], "sagemaker_job_name": f'"{by_sdk}"'}
    assert sdk_job["HyperParameters"] == hps
    for field in SAME_FIELDS:
        assert sdk_job.get(field) == boto3_job.get(field), field
    assert sdk_tags == boto3_tags
    channels = [ch["ChannelName"] for ch in sdk_job["InputDataConfig"]]
    assert channels == (["train", "champion"] if champion else ["train"])
