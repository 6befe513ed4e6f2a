"""`mlops transform`: a batch transform job with the stack's champion (or a job's model).

The job runs wherever the stack does: SageMaker, or the local cloud (which really runs
it, docs/local-cloud.md "Batch transform"). Its output goes under the artifacts bucket's
``transform/<transform job>/``, one ``<input name>.out`` per input object.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.serving import serving_environment
from lambdas.training import model_artifacts_uri, training_image
from mlops.errors import MlopsError
from mlops.ops import control_plane, serving_job
from mlops.target import Target

TRANSFORM_PREFIX = "transform/"
_DONE = {"Completed", "Failed", "Stopped"}


class TransformFailed(MlopsError):
    """No model to run, or SageMaker refused the job."""


def _model_for(target: Target, job: str | None) -> str:
    """The SageMaker Model to run: the endpoint's, or ``job``'s (created from its artifacts
    with the stack's serving environment when no Model has that name yet)."""
    sm = target.client("sagemaker")
    name = job or serving_job(target)
    if name is None:
        raise TransformFailed("no endpoint serves a model yet: name one with --job JOB")
    try:
        sm.describe_model(ModelName=name)
        return name
    except ClientError:
        pass
    config, _ = control_plane(target)
    try:
        sm.describe_training_job(TrainingJobName=name)
    except ClientError as exc:
        raise TransformFailed(f"{name} is neither a model nor a training job: {exc}") from None
    sm.create_model(
        ModelName=name,
        PrimaryContainer={
            "Image": config.serving_image_uri or training_image(config),
            "ModelDataUrl": model_artifacts_uri(config, name),
            "Environment": serving_environment(config),
        },
        ExecutionRoleArn=str(config.role_arn),
        Tags=[{"Key": "mlops:model", "Value": config.model_name}],
    )
    return name


def start(
    target: Target, input_s3: str, *, job: str | None = None, join: bool = False
) -> dict[str, Any]:
    """Start the transform job; ``{"name", "model", "output"}``."""
    if not input_s3.startswith("s3://"):
        raise TransformFailed(f"{input_s3!r} is not an s3:// URI of the input objects")
    model = _model_for(target, job)
    name = f"{model[:46]}-t{datetime.now(UTC):%m%d%H%M%S}"
    output = f"s3://{target.output('artifactsBucket')}/{TRANSFORM_PREFIX}{name}"
    config, _ = control_plane(target)
    request: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": model,
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_s3}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": output,
            "Accept": "text/csv",
            "AssembleWith": "Line",
            **({"KmsKeyId": config.kms_key_arn} if config.kms_key_arn else {}),
        },
        "TransformResources": {
            "InstanceType": config.endpoint_instance_type,
            "InstanceCount": 1,
        },
        "Tags": [{"Key": "mlops:model", "Value": config.model_name}],
    }
    if join:
        request["DataProcessing"] = {"JoinSource": "Input"}
    try:
        target.client("sagemaker").create_transform_job(**request)
    except ClientError as exc:
        raise TransformFailed(f"SageMaker refused the transform job: {exc}") from None
    return {"name": name, "model": model, "output": output}


def wait(target: Target, name: str, timeout: float = 3600.0) -> dict[str, Any]:
    """Poll until the job ends; its DescribeTransformJob answer."""
    sm = target.client("sagemaker")
    deadline = time.monotonic() + timeout
    while True:
        described = dict(sm.describe_transform_job(TransformJobName=name))
        if described["TransformJobStatus"] in _DONE or time.monotonic() > deadline:
            return described
        time.sleep(1.0)
