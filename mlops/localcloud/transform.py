"""Batch transform jobs that really run.

STAND-IN for SageMaker Batch Transform: moto records ``CreateTransformJob`` and reports
it ``Completed`` at once, writing nothing. Here the job is ``InProgress`` when created
and a worker thread runs it: the job's model (``CreateModel``: the stack's own format or
any SageMaker-contract model, loaded as the local endpoint loads it,
:mod:`mlops.localcloud.model_cache`) answers every request made from the input objects
(``S3Prefix`` or ``ManifestFile``, ``Gzip`` or not) after their records were split,
filtered and batched (:mod:`mlops.localcloud.transform_records`); each input object's
output goes to ``<S3OutputPath>/<its name under the input prefix>.out`` with the
output's ``KmsKeyId``. The job ends ``Completed``, ``Failed`` with a ``FailureReason``
naming the object and the problem (nothing half-written is left: an object's output is
written only once all of it was answered), or ``Stopped`` (``StopTransformJob``), and
SageMaker's "SageMaker Transform Job State Change" event goes to EventBridge. Requests
run one at a time (``MaxConcurrentTransforms`` is recorded, not used).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from lambdas.constants import MODEL_ARCHIVE_SHA256_ENV
from mlops.errors import MlopsError
from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, epoch_ms, moto_now
from mlops.localcloud.events import sagemaker_job_event
from mlops.localcloud.job_queue import Entry, JobQueue
from mlops.localcloud.model_cache import ModelCache
from mlops.localcloud.transform_records import (
    TransformError,
    assemble,
    batches,
    join,
    parse,
    per_record,
    render,
    select,
    split_records,
)

logger = logging.getLogger(__name__)

STATE_CHANGE = "SageMaker Transform Job State Change"
DEFAULT_MAX_PAYLOAD_MB = 6  # SageMaker's default MaxPayloadInMB


class _Stopped(MlopsError):
    """StopTransformJob: the job ends between two requests."""


class TransformRunner(JobQueue):
    """A queue of transform jobs and one worker thread that runs them."""

    def __init__(
        self,
        *,
        clients: ClientFactory,
        activity: Activity,
        models: ModelCache,
        on_finished: Callable[[dict[str, Any], str, str], None],
    ) -> None:
        self.clients, self.activity, self.models = clients, activity, models
        self.on_finished = on_finished
        super().__init__("transform", activity)

    def _run(self, entry: Entry) -> None:
        job = entry.job
        job.transform_start_time = moto_now()
        try:
            written = self._transform(entry)
            job.transform_job_status, job.failure_reason = "Completed", ""
            logger.info("transform job %s wrote %d objects", job.transform_job_name, written)
        except _Stopped:
            job.transform_job_status, job.failure_reason = "Stopped", self.stopped_reason()
        except TransformError as exc:
            job.transform_job_status, job.failure_reason = "Failed", f"ClientError: {exc}"
        except Exception as exc:
            job.transform_job_status = "Failed"
            job.failure_reason = f"AlgorithmError: {type(exc).__name__}: {exc}"
        job.failure_reason = job.failure_reason[: self.MAX_REASON]
        job.transform_end_time = job.last_modified_time = moto_now()
        event = state_change_event(job, entry.account, entry.region)
        self.on_finished(event, entry.account, entry.region)

    def _model(self, entry: Entry) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[entry.account][entry.region]
        model = backend._models.get(entry.job.model_name)
        if model is None:
            raise TransformError(f"Could not find model {entry.job.model_name!r}")
        container = model.primary_container or (model.containers or [{}])[0] or {}
        url = container.get("ModelDataUrl")
        if not url:
            raise TransformError(f"model {model.model_name} has no ModelDataUrl")
        environment = {
            **dict(container.get("Environment") or {}),
            **dict(entry.job.environment or {}),
        }
        return self.models.get(
            f"transform/{model.model_name}",
            url,
            entry.region,
            environment.get(MODEL_ARCHIVE_SHA256_ENV),
            environment,
        )

    def _transform(self, entry: Entry) -> int:
        job = entry.job
        source = job.transform_input.get("DataSource", {}).get("S3DataSource", {})
        s3 = self.clients("s3", entry.region)
        keys = input_objects(s3, source)
        if not keys:
            raise TransformError(f"no input objects under {source.get('S3Uri')}")
        model = self._model(entry)
        output = job.transform_output
        for bucket, key, name in keys:
            if entry.stop.is_set():
                raise _Stopped
            data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            if job.transform_input.get("CompressionType") == "Gzip":
                data = gzip.decompress(data)
            try:
                result = run_object(model, data, job, entry.stop)
            except TransformError as exc:
                raise TransformError(f"s3://{bucket}/{key}: {exc}") from None
            out_bucket, _, prefix = output["S3OutputPath"].removeprefix("s3://").partition("/")
            extra = {"ContentType": output.get("Accept") or "application/octet-stream"}
            if output.get("KmsKeyId"):
                extra.update(ServerSideEncryption="aws:kms", SSEKMSKeyId=output["KmsKeyId"])
            out_key = f"{prefix.rstrip('/')}/{name}.out".lstrip("/")
            s3.put_object(Bucket=out_bucket, Key=out_key, Body=result, **extra)
        return len(keys)


def input_objects(s3: Any, source: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(bucket, key, name)`` of each input object; ``name`` is what its output is named."""
    uri = str(source.get("S3Uri", ""))
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    if source.get("S3DataType") == "ManifestFile":
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=prefix)["Body"].read())
        if not manifest or not isinstance(manifest[0], dict) or "prefix" not in manifest[0]:
            raise TransformError(f"manifest {uri} does not start with {{'prefix': ...}}")
        base_bucket, _, base = manifest[0]["prefix"].removeprefix("s3://").partition("/")
        return [(base_bucket, f"{base}{rel}", rel) for rel in manifest[1:]]
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise TransformError(f"S3DataType {source.get('S3DataType')} is not S3Prefix/Manifest")
    folder = prefix[: prefix.rfind("/") + 1]
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if not obj["Key"].endswith("/"):
                found.append((bucket, obj["Key"], obj["Key"][len(folder) :]))
    return sorted(found)


def run_object(model: Any, data: bytes, job: Any, stop: threading.Event) -> bytes:
    """One input object through the model, as the job's settings say; its output bytes."""
    from mlops.endpoint import InvocationError

    content_type = str(job.transform_input.get("ContentType") or "text/csv")
    accept = str(job.transform_output.get("Accept") or content_type)
    processing = job.data_processing or {}
    input_filter, output_filter = processing.get("InputFilter"), processing.get("OutputFilter")
    joined = processing.get("JoinSource") == "Input"
    records = split_records(data, str(job.transform_input.get("SplitType") or "None"))
    strategy = str(job.batch_strategy or "MultiRecord")
    max_mb = DEFAULT_MAX_PAYLOAD_MB if job.max_payload_in_mb is None else int(job.max_payload_in_mb)
    parts: list[bytes] = []
    for batch in batches(records, strategy, max_mb):
        if stop.is_set():
            raise _Stopped
        sent = batch
        if input_filter and input_filter != "$":
            sent = [
                render(select(parse(r, content_type), input_filter), content_type) for r in batch
            ]
        try:
            answer, _ = model.invoke(b"\n".join(sent), content_type, accept)
        except InvocationError as exc:
            raise TransformError(
                f"the model refused a request ({exc.status}): {exc.message}"
            ) from None
        if not joined and not (output_filter and output_filter != "$"):
            parts.append(answer)
            continue
        for record, out in zip(batch, per_record(answer, accept, len(batch)), strict=True):
            value, kind = (
                join(record, out, content_type, accept)
                if joined
                else (
                    parse(out, accept),
                    accept,
                )
            )
            if output_filter and output_filter != "$":
                value = select(value, output_filter)
            parts.append(render(value, kind))
    return assemble(parts, str(job.transform_output.get("AssembleWith") or "None"))


def state_change_event(job: Any, account: str, region: str) -> dict[str, Any]:
    """ "SageMaker Transform Job State Change": the job's description, times in epoch ms."""
    detail = {
        "TransformJobName": job.transform_job_name,
        "TransformJobArn": job.arn,
        "TransformJobStatus": job.transform_job_status,
        "FailureReason": job.failure_reason or None,
        "ModelName": job.model_name,
        "TransformInput": job.transform_input,
        "TransformOutput": job.transform_output,
        "CreationTime": epoch_ms(job.creation_time),
        "TransformStartTime": epoch_ms(job.transform_start_time),
        "TransformEndTime": epoch_ms(job.transform_end_time),
    }
    return sagemaker_job_event(STATE_CHANGE, job.arn, account, region, detail)


def install(patcher: Any, runner: Callable[[], TransformRunner]) -> None:
    """Queue every created transform job; StopTransformJob stops it."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    create = SageMakerModelBackend.create_transform_job

    def create_transform_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("transform_job_name") in self.transform_jobs:
            raise ValidationError(
                message=f"Job name {kwargs['transform_job_name']} must be unique within an "
                "AWS account and region, and a job with this name already exists"
            )
        if kwargs.get("model_name") not in self._models:
            raise ValidationError(message=f'Could not find model "{kwargs.get("model_name")}".')
        job = create(self, *args, **kwargs)
        job.transform_job_status = "InProgress"
        job.transform_start_time = job.transform_end_time = None  # type: ignore[assignment]
        runner().submit(job, self.account_id, self.region_name)
        return job

    def stop_transform_job(self: Any) -> Any:
        name = self._get_param("TransformJobName")
        job = self.sagemaker_backend.transform_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find transform job '{name}'.")
        if job.transform_job_status == "InProgress":
            runner().stop(name)
        return EmptyResult()

    patcher.set(SageMakerModelBackend, "create_transform_job", create_transform_job)
    patcher.set(SageMakerResponse, "stop_transform_job", stop_transform_job)
