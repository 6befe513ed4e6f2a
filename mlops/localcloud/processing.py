"""Processing jobs that really run.

STAND-IN for SageMaker Processing: moto records ``CreateProcessingJob`` and reports it
``Completed`` at once, running nothing. Here the job is ``InProgress`` when created and a
worker runs it as the processing container would, on this machine:

1. every ``ProcessingInputs[].S3Input`` (``S3Prefix`` or a single object, ``File`` mode)
   is downloaded to its ``LocalPath``; ``/opt/ml/config/processingjobconfig.json`` (the
   request) and ``resourceconfig.json`` are written;
2. ``AppSpecification.ContainerEntrypoint`` + ``ContainerArguments`` run in a process
   group of its own that dies with the local cloud, with the job's ``Environment`` and
   the local cloud's endpoint and credentials (``python`` / ``python3`` is this
   interpreter, with its scikit-learn and pandas: the image is recorded, not pulled);
   output to ``<state>/jobs/<job>.log``;
3. exit 0: each ``ProcessingOutputConfig.Outputs[].S3Output`` is uploaded from its
   ``LocalPath`` (with the config's ``KmsKeyId``), ``Completed``; a non-zero exit is
   ``Failed`` (``AlgorithmError:`` with the exit code and the last lines of stderr);
   ``StopProcessingJob`` and ``StoppingCondition.MaxRuntimeInSeconds`` stop it
   (SIGTERM, then SIGKILL), ``Stopped``. Then "SageMaker Processing Job State Change".

Paths are the container's, ``/opt/ml/processing/...``: a ``LocalPath`` elsewhere fails
the job naming it. Without a container a script's literal paths reach only this
machine's own ``/opt/ml``, so that is where the job runs: one job at a time, its folders
emptied before and removed after. A user who may not create ``/opt/ml`` gets a
``FailureReason`` saying so.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError
from mlops.localcloud import opt_ml
from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, epoch_ms, moto_now
from mlops.localcloud.children import own_group_dying_with_parent
from mlops.localcloud.events import sagemaker_job_event
from mlops.localcloud.job_queue import Entry, JobQueue
from mlops.localcloud.opt_ml import ML_ROOT
from mlops.localcloud.state import FAKE_CREDENTIALS
from mlops.localcloud.training import JobFailed, download_prefix

logger = logging.getLogger(__name__)

STATE_CHANGE = "SageMaker Processing Job State Change"
PROCESSING_ROOT = ML_ROOT / "processing"
_STOP_GRACE_S = 5.0
_TAIL_LINES = 20
_PYTHONS = {"python", "python3", sys.executable}


class ProcessingFailed(MlopsError):
    """The job cannot run as asked; the message is its FailureReason."""


def _runnable(spec: dict[str, Any]) -> None:
    """Refuse, by name, an input the local cloud would otherwise ignore."""
    name = spec.get("InputName")
    if spec.get("DatasetDefinition"):
        raise ProcessingFailed(f"ClientError: input {name}: DatasetDefinition is not run here")
    source = spec.get("S3Input") or {}
    for key, allowed in (
        ("S3InputMode", "File"),
        ("S3DataType", "S3Prefix"),
        ("S3CompressionType", "None"),
    ):
        if source and source.get(key, allowed) != allowed:
            raise ProcessingFailed(
                f"ClientError: input {name}: {key} {source[key]} is not run by the local "
                f"cloud ({allowed} is)"
            )


def _inside(path: str, what: str) -> Path:
    local = Path(path)
    resolved = Path(os.path.normpath(local))
    if not resolved.is_absolute() or PROCESSING_ROOT not in (resolved, *resolved.parents):
        raise ProcessingFailed(
            f"ClientError: {what} LocalPath {path!r} is not under {PROCESSING_ROOT}: "
            "SageMaker mounts inputs and outputs there only"
        )
    if resolved == PROCESSING_ROOT:
        raise ProcessingFailed(f"ClientError: {what} LocalPath may not be {PROCESSING_ROOT} itself")
    return resolved


class ProcessingRunner(JobQueue):
    """A queue of processing jobs and one worker thread that runs them in turn."""

    def __init__(
        self,
        *,
        clients: ClientFactory,
        activity: Activity,
        endpoint_url: str,
        state_dir: Path,
        on_finished: Callable[[dict[str, Any], str, str], None],
    ) -> None:
        self.clients, self.activity, self.endpoint_url = clients, activity, endpoint_url
        self.state_dir, self.on_finished = state_dir, on_finished
        super().__init__("processing", activity)

    def _run(self, entry: Entry) -> None:
        job = entry.job
        job.processing_start_time = moto_now()
        try:
            status, reason = self._execute(entry)
        except (ProcessingFailed, JobFailed) as exc:
            status, reason = "Failed", str(exc)
        except Exception as exc:
            status, reason = "Failed", f"InternalServerError: {type(exc).__name__}: {exc}"
        job.processing_job_status = status
        job.failure_reason = job.exit_message = reason[: self.MAX_REASON] or None
        job.processing_end_time = job.last_modified_time = moto_now()
        logger.info("processing job %s: %s %s", job.processing_job_name, status, reason or "")
        self.on_finished(
            state_change_event(job, entry.account, entry.region), entry.account, entry.region
        )

    def _execute(self, entry: Entry) -> tuple[str, str]:
        job = entry.job
        if entry.stop.is_set():  # stopped while queued: nothing runs
            return "Stopped", self.stopped_reason()
        for spec in job.processing_inputs or []:
            _runnable(spec)
        inputs = [i for i in job.processing_inputs or [] if i.get("S3Input")]
        outputs = [
            o for o in (job.processing_output_config or {}).get("Outputs", []) if o.get("S3Output")
        ]
        in_paths = [_inside(i["S3Input"]["LocalPath"], f"input {i['InputName']}") for i in inputs]
        out_paths = [
            _inside(o["S3Output"]["LocalPath"], f"output {o['OutputName']}") for o in outputs
        ]
        try:
            with opt_ml.claimed([PROCESSING_ROOT, *in_paths, *out_paths, ML_ROOT / "config"]):
                return self._in_opt_ml(entry, inputs, in_paths, outputs, out_paths)
        except opt_ml.OptMlError as exc:
            raise ProcessingFailed(f"ClientError: {exc}") from None

    def _in_opt_ml(
        self,
        entry: Entry,
        inputs: list[dict[str, Any]],
        in_paths: list[Path],
        outputs: list[dict[str, Any]],
        out_paths: list[Path],
    ) -> tuple[str, str]:
        job = entry.job
        s3 = self.clients("s3", entry.region)
        for spec, path in zip(inputs, in_paths, strict=True):
            download_prefix(s3, spec["S3Input"]["S3Uri"], path)
        if entry.stop.is_set():
            return "Stopped", self.stopped_reason()
        config = {
            "ProcessingJobName": job.processing_job_name,
            "ProcessingJobArn": job.arn,
            "AppSpecification": job.app_specification,
            "ProcessingInputs": job.processing_inputs,
            "ProcessingOutputConfig": job.processing_output_config,
            "Environment": job.environment,
            "RoleArn": job.role_arn,
        }
        (ML_ROOT / "config" / "processingjobconfig.json").write_text(
            json.dumps(config, default=str)
        )
        (ML_ROOT / "config" / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
        )
        code, stopped, timed_out, tail = self._process(entry)
        if stopped or timed_out:
            reason = self.stopped_reason()
            if timed_out:
                limit = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
                reason = (
                    f"MaxRuntimeExceeded: processing job exceeded MaxRuntimeInSeconds ({limit})"
                )
            return "Stopped", reason
        if code != 0:
            last = "\n".join(tail[-5:])
            return "Failed", f"AlgorithmError: the entrypoint exited with code {code}: {last}"
        kms = (job.processing_output_config or {}).get("KmsKeyId")
        for spec, path in zip(outputs, out_paths, strict=True):
            _upload(s3, path, spec["S3Output"]["S3Uri"], kms)
        return "Completed", ""

    def _command(self, job: Any) -> list[str]:
        app = job.app_specification or {}
        entrypoint = list(app.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise ProcessingFailed(
                "ClientError: AppSpecification has no ContainerEntrypoint: the local cloud "
                "runs no image's own entrypoint (it pulls no image)"
            )
        if entrypoint[0] in _PYTHONS:
            entrypoint[0] = sys.executable
        return [*entrypoint, *[str(a) for a in app.get("ContainerArguments") or []]]

    def _environment(self, entry: Entry) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_", "SM_"))}
        env.pop("PYTHONPATH", None)
        env.update({k: str(v) for k, v in (entry.job.environment or {}).items()})
        env.update(FAKE_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = entry.region
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _process(self, entry: Entry) -> tuple[int | None, bool, bool, list[str]]:
        job = entry.job
        limit = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + float(limit) if limit else None
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        log = self.state_dir / "jobs" / f"{job.processing_job_name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as sink:
            proc = subprocess.Popen(  # noqa: S603 - the job's own entrypoint, as SageMaker runs it
                self._command(job),
                cwd=str(PROCESSING_ROOT),
                env=self._environment(entry),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.PIPE,
                preexec_fn=own_group_dying_with_parent,
            )
            entry.proc = proc

            def pump() -> None:
                assert proc.stderr is not None
                for raw in iter(proc.stderr.readline, b""):
                    sink.write(raw)
                    tail.append(raw.decode("utf-8", "replace").rstrip("\n"))
                proc.stderr.close()

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            timed_out = False
            while proc.poll() is None:
                time.sleep(0.1)
                if entry.stop.is_set() or (deadline is not None and time.monotonic() > deadline):
                    timed_out = not entry.stop.is_set()
                    _kill(proc)
                    break
            proc.wait()
            reader.join(5)
        return proc.returncode, entry.stop.is_set(), timed_out, list(tail)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        group = os.getpgid(proc.pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    try:
        proc.wait(_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)


def _upload(s3: Any, folder: Path, uri: str, kms_key: str | None) -> None:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key} if kms_key else {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        key = f"{prefix.rstrip('/')}/{path.relative_to(folder).as_posix()}".lstrip("/")
        s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes(), **extra)


def state_change_event(job: Any, account: str, region: str) -> dict[str, Any]:
    """ "SageMaker Processing Job State Change": the job's description, times in epoch ms."""
    detail = {
        "ProcessingJobName": job.processing_job_name,
        "ProcessingJobArn": job.arn,
        "ProcessingJobStatus": job.processing_job_status,
        "FailureReason": getattr(job, "failure_reason", None),
        "AppSpecification": job.app_specification,
        "ProcessingInputs": job.processing_inputs,
        "ProcessingOutputConfig": job.processing_output_config,
        "CreationTime": epoch_ms(job.creation_time),
        "ProcessingStartTime": epoch_ms(getattr(job, "processing_start_time", None)),
        "ProcessingEndTime": epoch_ms(job.processing_end_time),
    }
    return sagemaker_job_event(STATE_CHANGE, job.arn, account, region, detail)


def install(patcher: Any, runner: Callable[[], ProcessingRunner]) -> None:
    """Queue every created processing job; StopProcessingJob stops it."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    create = SageMakerModelBackend.create_processing_job
    create_response = SageMakerResponse.create_processing_job

    def create_processing_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("processing_job_name") in self.processing_jobs:
            raise ValidationError(
                message=f"Job name {kwargs['processing_job_name']} must be unique within an "
                "AWS account and region, and a job with this name already exists"
            )
        job = create(self, *args, **kwargs)
        job.processing_job_status = "InProgress"
        job.processing_end_time = None  # type: ignore[assignment]
        return job

    def create_processing_job_response(self: Any) -> Any:
        # moto drops Environment (the job's process gets it) and ProcessingResources
        # (DescribeProcessingJob answers it; the SDK's wait() reads it)
        result = create_response(self)
        job = self.sagemaker_backend.processing_jobs[self._get_param("ProcessingJobName")]
        job.environment = dict(self._get_param("Environment") or {})
        job.processing_resources = self._get_param("ProcessingResources")
        backend = self.sagemaker_backend
        runner().submit(job, backend.account_id, backend.region_name)
        return result

    def stop_processing_job(self: Any) -> Any:
        name = self._get_param("ProcessingJobName")
        job = self.sagemaker_backend.processing_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find processing job '{name}'.")
        if job.processing_job_status == "InProgress":
            runner().stop(name)
        return EmptyResult()

    patcher.set(SageMakerModelBackend, "create_processing_job", create_processing_job)
    patcher.set(SageMakerResponse, "create_processing_job", create_processing_job_response)
    patcher.set(SageMakerResponse, "stop_processing_job", stop_processing_job)
