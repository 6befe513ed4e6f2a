"""Ask the training backend about a job before believing an event about it.

An event is a claim: anyone who may put events on the bus (or call the function) can say
"job X Completed, artifacts at Y". promote acts only on what the backend itself reports:

- SageMaker: ``DescribeTrainingJob`` must find the job, its ``mlops:model`` tag must be
  this model, it must have run with this stack's SageMaker role, its status must match
  the event's, and its ``ModelArtifacts`` must be where this stack's jobs write.
- EC2: there is no job API; retrain writes ``lineage/<job>.json`` (a prefix only the
  retrain role writes) before it launches the host, so that record must exist and name
  the job, and a Completed job's ``model.tar.gz`` must be where the host writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_code, get_json, parse_s3_uri
from lambdas.config import Config
from lambdas.errors import ControlPlaneError
from lambdas.training import model_artifacts_uri

_NOT_FOUND = {"ValidationException", "ResourceNotFound", "NoSuchKey", "404"}


class Unverified(ControlPlaneError):
    """The backend does not vouch for the job; the message says what did not hold."""


@dataclass(frozen=True)
class JobEvent:
    """A training job the promote handler was asked about."""

    job_name: str
    status: str | None  # None: look it up (manual request)
    failure_reason: str | None = None
    model_data_url: str | None = None


def verify_job(config: Config, clients: Clients, job: JobEvent) -> JobEvent:
    """The job as its backend reports it; raises :class:`Unverified` when it disagrees."""
    if config.training_backend == "ec2":
        return _verify_ec2(config, clients, job)
    return _verify_sagemaker(config, clients, job)


def _verify_sagemaker(config: Config, clients: Clients, job: JobEvent) -> JobEvent:
    config.require("role_arn")
    try:
        described = clients.sagemaker.describe_training_job(TrainingJobName=job.job_name)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            raise Unverified(f"SageMaker has no training job {job.job_name!r}") from None
        raise
    tags = clients.sagemaker.list_tags(ResourceArn=described["TrainingJobArn"]).get("Tags", [])
    owner = {t.get("Key"): t.get("Value") for t in tags}.get("mlops:model")
    if owner != config.model_name:
        raise Unverified(
            f"training job {job.job_name} is tagged mlops:model={owner!r}, "
            f"not {config.model_name!r}"
        )
    if described.get("RoleArn") != config.role_arn:
        raise Unverified(
            f"training job {job.job_name} ran with role {described.get('RoleArn')!r}, "
            f"not this stack's {config.role_arn!r}"
        )
    status = described.get("TrainingJobStatus")
    if job.status is not None and job.status != status:
        raise Unverified(f"the event says {job.job_name} is {job.status}; SageMaker says {status}")
    artifacts = (described.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    if status == "Completed":
        _check_artifacts(config, job, artifacts)
    return replace(
        job,
        status=status,
        failure_reason=described.get("FailureReason"),
        model_data_url=artifacts,
    )


def _verify_ec2(config: Config, clients: Clients, job: JobEvent) -> JobEvent:
    config.require("artifacts_bucket")
    key = f"{c.LINEAGE_PREFIX}{job.job_name}.json"
    try:
        record = get_json(clients.s3, config.artifacts_bucket or "", key)
    except ValueError as exc:
        raise Unverified(f"{key} is not a lineage record: {exc}") from None
    if record is None:
        raise Unverified(f"retrain never started {job.job_name}: no {key}")
    if not isinstance(record, dict) or record.get("job") != job.job_name:
        raise Unverified(f"{key} does not name job {job.job_name}")
    expected = model_artifacts_uri(config, job.job_name)
    if job.status is None:  # a manual request: the artifacts tell whether it completed
        if not _exists(clients, expected):
            return replace(job, status="Unknown", failure_reason=f"no {expected}")
        return replace(job, status="Completed", model_data_url=expected)
    if job.status == "Completed":  # a missing archive fails promote's one read of it
        _check_artifacts(config, job, job.model_data_url or expected)
    return replace(job, model_data_url=expected if job.status == "Completed" else None)


def _check_artifacts(config: Config, job: JobEvent, artifacts: str | None) -> None:
    expected = model_artifacts_uri(config, job.job_name)
    if artifacts != expected:
        raise Unverified(
            f"training job {job.job_name} reports artifacts {artifacts!r}, "
            f"not this stack's {expected}"
        )
    if job.model_data_url is not None and job.model_data_url != artifacts:
        raise Unverified(
            f"the event's artifacts {job.model_data_url} are not the job's own {artifacts}"
        )


def _exists(clients: Clients, uri: str) -> bool:
    bucket, key = parse_s3_uri(uri)
    try:
        clients.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return False
        raise
    return True
