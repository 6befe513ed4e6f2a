"""Job runner: executes the SageMaker training jobs created on the moto server.

STAND-IN for SageMaker training, which moto lacks (it marks a job Completed at
once and runs nothing). Every ``CreateTrainingJob`` (boto3, awscli, the SageMaker
SDK, the retrain Lambda: any client) is hooked in moto's backend
(:mod:`mlops.localcloud.patches`): the job is set ``InProgress`` in the same
request and queued here. A worker thread then runs the script-mode contract of
the SageMaker training toolkit:

1. download the code bundle (hyperparameter ``sagemaker_submit_directory``, a
   ``.tar.gz`` S3 URI) and each input channel's S3 prefix into
   ``<tmp>/input/data/<channel>/`` (relative paths kept);
2. write ``<tmp>/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json``;
3. run ``python <code>/<sagemaker_program> --key value ...`` with the ``SM_*``
   environment, ``cwd`` and ``PYTHONPATH`` = the code folder, and
   ``AWS_ENDPOINT_URL`` = the local cloud (unless network isolation is on);
4. exit 0: pack ``SM_MODEL_DIR`` / ``SM_OUTPUT_DATA_DIR`` into
   ``<S3OutputPath>/<job>/output/{model,output}.tar.gz`` (SSE-KMS with the output
   ``KmsKeyId``), ``Completed``; otherwise ``Failed`` with ``FailureReason`` = the
   failure file (``SM_OUTPUT_DIR/failure``) or the last stderr lines;
   ``StoppingCondition.MaxRuntimeInSeconds`` exceeded or ``StopTrainingJob``:
   ``Stopped``.

Then the "SageMaker Training Job State Change" event goes to EventBridge.
Differences from SageMaker: the training image is not used (the job runs with
this Python and whatever it has installed), one host, ``File`` input mode only.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, join_s3, parse_s3_uri, utcnow
from mlops.localcloud.state import FAKE_CREDENTIALS, JOBS_DIR

logger = logging.getLogger(__name__)

CURRENT_HOST = "algo-1"
MAX_FAILURE_REASON = 1024  # SageMaker's limit on FailureReason
_STDERR_TAIL_LINES = 20
_STOP_GRACE_S = 5.0
_TERMINAL = ("Completed", "Failed", "Stopped")
_LOG_GROUP = "/aws/sagemaker/TrainingJobs"


class JobFailed(Exception):
    """The job cannot run; the message is its FailureReason."""


@dataclass
class _Entry:
    name: str
    account: str
    region: str
    stop: threading.Event = field(default_factory=threading.Event)
    started: bool = False
    proc: subprocess.Popen[bytes] | None = None


def decode_hyperparameter(value: Any) -> Any:
    """SageMaker SDK hyperparameters are JSON-encoded strings (``'"train.py"'``, ``'0.1'``)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).upper()


def _arg_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class JobRunner:
    """Queue of training jobs and the worker threads that run them.

    Parameters
    ----------
    clients : ClientFactory
        boto3 clients bound to the local cloud (S3 and CloudWatch Logs).
    endpoint_url : str
        Given to jobs as ``AWS_ENDPOINT_URL``.
    activity : Activity
        Counts queued and running jobs (``wait_idle``).
    on_finished : callable
        Called with ``(job, account, region)`` when a job reaches a terminal status,
        before it stops counting as activity (the router publishes the event there).
    state_dir : Path, optional
        Job logs go to ``<state_dir>/jobs/<job>.log``.
    max_concurrent : int
        Jobs run at the same time; the others wait in the queue.
    """

    def __init__(
        self,
        *,
        clients: ClientFactory,
        endpoint_url: str,
        activity: Activity,
        on_finished: Callable[[Any, str, str], None],
        state_dir: Path | None = None,
        max_concurrent: int = 1,
    ) -> None:
        self.clients = clients
        self.endpoint_url = endpoint_url
        self.activity = activity
        self.on_finished = on_finished
        self.state_dir = state_dir
        self._queue: Queue[_Entry | None] = Queue()
        self._entries: dict[tuple[str, str, str], _Entry] = {}
        self._lock = threading.Lock()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._work, name=f"localcloud-job-{i}", daemon=True)
            for i in range(max(1, max_concurrent))
        ]

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        with self._lock:
            entries = list(self._entries.values())
        for entry in entries:
            entry.stop.set()
            self._kill(entry)
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # ------------------------------------------------------------------ API hooks

    def submit(self, job: Any, account: str, region: str) -> None:
        """Called inside ``CreateTrainingJob``: the job becomes InProgress and queued."""
        now = utcnow()
        job.training_job_status = "InProgress"
        job.secondary_status = "Starting"
        job.secondary_status_transitions = [
            {
                "Status": "Starting",
                "StartTime": now,
                "StatusMessage": "Starting the training job (local cloud: queued)",
            }
        ]
        job.training_start_time = None
        job.training_end_time = None
        job.last_modified_time = now
        job.model_artifacts = None
        job.final_metric_data_list = None
        job.failure_reason = None
        entry = _Entry(job.training_job_name, account, region)
        with self._lock:
            self._entries[(account, region, entry.name)] = entry
        self.activity.begin("job")
        self._queue.put(entry)

    def stop(self, job: Any, account: str, region: str) -> None:
        """``StopTrainingJob``: Stopping now; Stopped once the process has ended."""
        from moto.sagemaker.exceptions import ValidationError

        if job.training_job_status != "InProgress":
            raise ValidationError(
                message="The request was rejected because the training job is in status "
                f"{job.training_job_status}."
            )
        with self._lock:
            entry = self._entries.get((account, region, job.training_job_name))
            queued = entry is not None and not entry.started
            if entry is not None:
                entry.stop.set()
        if entry is None or queued:
            # not started yet: nothing to kill, the worker will skip it
            self._finish(
                job, entry or _Entry(job.training_job_name, account, region), "Stopped", "Stopped"
            )
            return
        job.training_job_status = "Stopping"
        self._transition(job, "Stopping", "Stopping the training job")
        # the worker sees entry.stop, sends SIGTERM, then marks the job Stopped

    def running(self) -> list[str]:
        with self._lock:
            return [e.name for e in self._entries.values()]

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                self._run(entry)
            except Exception:  # never let a worker die
                logger.exception("training job %s: unexpected error", entry.name)
            finally:
                with self._lock:
                    self._entries.pop((entry.account, entry.region, entry.name), None)
                self.activity.end("job")

    def _backend_job(self, entry: _Entry) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[entry.account][entry.region].training_jobs.get(entry.name)

    def _run(self, entry: _Entry) -> None:
        with self._lock:
            entry.started = True
            stopped_while_queued = entry.stop.is_set()
        job = self._backend_job(entry)
        if job is None or stopped_while_queued:
            return  # deleted meanwhile (a reset), or stopped (and finished) by StopTrainingJob
        if self._closing:
            self._finish(job, entry, "Stopped", "Stopped", reason="the local cloud shut down")
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"mlops-job-{entry.name[:40]}-"))
        try:
            self._execute(job, entry, workdir)
        except JobFailed as exc:
            self._finish(job, entry, "Failed", "Failed", reason=str(exc))
        except Exception as exc:
            logger.exception("training job %s", entry.name)
            self._finish(job, entry, "Failed", "Failed", reason=f"InternalServerError: {exc}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _execute(self, job: Any, entry: _Entry, workdir: Path) -> None:
        s3 = self.clients("s3", entry.region)
        job.training_start_time = utcnow()
        self._transition(job, "Downloading", "Downloading input data")

        hyperparameters: dict[str, str] = dict(job.hyper_parameters or {})
        decoded = {k: decode_hyperparameter(v) for k, v in hyperparameters.items()}
        user_hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
        submit_dir = decoded.get("sagemaker_submit_directory")
        program = decoded.get("sagemaker_program")
        if not submit_dir or not program:
            raise JobFailed(
                "ClientError: the local cloud runs script-mode jobs only: hyperparameters "
                "sagemaker_submit_directory (s3://.../code.tar.gz) and sagemaker_program "
                "must be set"
            )

        code_dir = workdir / "code"
        input_dir = workdir / "input"
        config_dir = input_dir / "config"
        data_dir = input_dir / "data"
        model_dir = workdir / "model"
        output_dir = workdir / "output"
        output_data_dir = output_dir / "data"
        for folder in (code_dir, config_dir, data_dir, model_dir, output_data_dir):
            folder.mkdir(parents=True, exist_ok=True)

        self._download_code(s3, str(submit_dir), code_dir)
        entry_point = code_dir / str(program)
        if not entry_point.is_file():
            raise JobFailed(
                f"AlgorithmError: the code bundle {submit_dir} has no {program} at its root"
            )

        channels: dict[str, dict[str, Any]] = {}
        for channel in job.input_data_config or []:
            name = channel["ChannelName"]
            source = (channel.get("DataSource") or {}).get("S3DataSource")
            if not source:
                raise JobFailed(
                    f"ClientError: channel {name}: only S3DataSource is supported locally"
                )
            if source.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise JobFailed(
                    f"ClientError: channel {name}: S3DataType {source['S3DataType']} "
                    "is not supported locally (use S3Prefix)"
                )
            self._download_prefix(s3, source["S3Uri"], data_dir / name)
            channels[name] = {
                "TrainingInputMode": channel.get("InputMode")
                or (job.algorithm_specification or {}).get("TrainingInputMode", "File"),
                "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                channels[name]["ContentType"] = channel["ContentType"]

        resource_config = {
            "current_host": CURRENT_HOST,
            "hosts": [CURRENT_HOST],
            "network_interface_name": "eth0",
        }
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config_dir / "inputdataconfig.json").write_text(json.dumps(channels))
        (config_dir / "resourceconfig.json").write_text(json.dumps(resource_config))

        args = []
        for key, value in user_hps.items():
            args += [f"--{key}", _arg_value(value)]
        env = self._environment(
            job,
            entry,
            workdir=workdir,
            code_dir=code_dir,
            channels=channels,
            user_hps=user_hps,
            args=args,
            program=str(program),
            submit_dir=str(submit_dir),
            resource_config=resource_config,
        )

        self._transition(
            job, "Training", "Training image download completed. Training in progress."
        )
        returncode, stopped, timed_out, tail, metrics = self._run_process(
            job, entry, [sys.executable, str(entry_point), *args], env, code_dir
        )
        job.final_metric_data_list = metrics or None

        if timed_out:
            max_s = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
            self._upload_outputs(job, entry, s3, model_dir, output_data_dir, tolerate=True)
            self._finish(
                job,
                entry,
                "Stopped",
                "MaxRuntimeExceeded",
                reason=f"MaxRuntimeExceeded: Training job exceeded MaxRuntimeInSeconds "
                f"provided ({max_s} seconds)",
            )
            return
        if stopped:
            self._upload_outputs(job, entry, s3, model_dir, output_data_dir, tolerate=True)
            self._finish(job, entry, "Stopped", "Stopped")
            return
        if returncode != 0:
            command = " ".join(["python", str(program), *args])
            raise JobFailed(self._failure_reason(output_dir, returncode, tail, command))

        self._transition(job, "Uploading", "Uploading generated training model")
        self._upload_outputs(job, entry, s3, model_dir, output_data_dir, tolerate=False)
        self._finish(job, entry, "Completed", "Completed")

    # ------------------------------------------------------------------ steps

    def _download_code(self, s3: Any, uri: str, code_dir: Path) -> None:
        try:
            bucket, key = parse_s3_uri(uri)
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise JobFailed(
                f"ClientError: the code bundle {uri} (sagemaker_submit_directory) could not "
                f"be downloaded: {exc}"
            ) from exc
        try:
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
                archive.extractall(code_dir, filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise JobFailed(f"ClientError: the code bundle {uri} is not a tar.gz: {exc}") from exc

    def _download_prefix(self, s3: Any, uri: str, target: Path) -> None:
        bucket, prefix = parse_s3_uri(uri)
        target.mkdir(parents=True, exist_ok=True)
        count = 0
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"]
                    if key.endswith("/"):
                        continue  # "folder" marker objects
                    relative = key[len(prefix) :].lstrip("/") or key.rsplit("/", 1)[-1]
                    path = (target / relative).resolve()
                    if not path.is_relative_to(target.resolve()):
                        continue  # ".." in a key must not escape the channel folder
                    path.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(bucket, key, str(path))
                    count += 1
        except Exception as exc:
            raise JobFailed(f"ClientError: Data download failed: {uri}: {exc}") from exc
        if count == 0:
            raise JobFailed(
                f'ClientError: Data download failed: No S3 objects found under S3 URL "{uri}" '
                "given in input data source. Please ensure that the bucket exists in the "
                "selected region, that objects exist under that S3 prefix, and that the role "
                f'has "s3:ListBucket" permissions on bucket "{bucket}".'
            )

    def _environment(
        self,
        job: Any,
        entry: _Entry,
        *,
        workdir: Path,
        code_dir: Path,
        channels: dict[str, Any],
        user_hps: dict[str, Any],
        args: list[str],
        program: str,
        submit_dir: str,
        resource_config: dict[str, Any],
    ) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AWS_", "MLOPS_", "SM_")) and k != "PYTHONPATH"
        }
        model_dir = workdir / "model"
        output_dir = workdir / "output"
        sm: dict[str, str] = {
            "SM_MODEL_DIR": str(model_dir),
            "SM_OUTPUT_DIR": str(output_dir),
            "SM_OUTPUT_DATA_DIR": str(output_dir / "data"),
            "SM_OUTPUT_INTERMEDIATE_DIR": str(output_dir / "intermediate"),
            "SM_INPUT_DIR": str(workdir / "input"),
            "SM_INPUT_CONFIG_DIR": str(workdir / "input" / "config"),
            "SM_INPUT_DATA_CONFIG": json.dumps(channels),
            "SM_RESOURCE_CONFIG": json.dumps(resource_config),
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_USER_ARGS": json.dumps(args),
            "SM_USER_ENTRY_POINT": program,
            "SM_MODULE_NAME": program.removesuffix(".py"),
            "SM_MODULE_DIR": submit_dir,
            "SM_CURRENT_HOST": CURRENT_HOST,
            "SM_HOSTS": json.dumps([CURRENT_HOST]),
            "SM_NETWORK_INTERFACE_NAME": "eth0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_NUM_GPUS": "0",
            "SM_NUM_NEURONS": "0",
            "SM_LOG_LEVEL": "20",
            "SM_FRAMEWORK_MODULE": "",
            "SM_CURRENT_INSTANCE_TYPE": (job.resource_config or {}).get("InstanceType", "local"),
            "TRAINING_JOB_NAME": job.training_job_name,
            "TRAINING_JOB_ARN": job.arn,
        }
        for name in channels:
            sm[f"SM_CHANNEL_{_env_name(name)}"] = str(workdir / "input" / "data" / name)
        for key, value in user_hps.items():
            sm[f"SM_HP_{_env_name(key)}"] = _arg_value(value)
        sm["SM_TRAINING_ENV"] = json.dumps(
            {
                "job_name": job.training_job_name,
                "current_host": CURRENT_HOST,
                "hosts": [CURRENT_HOST],
                "hyperparameters": user_hps,
                "channel_input_dirs": {n: sm[f"SM_CHANNEL_{_env_name(n)}"] for n in channels},
                "input_data_config": channels,
                "model_dir": str(model_dir),
                "output_data_dir": str(output_dir / "data"),
                "module_dir": submit_dir,
                "user_entry_point": program,
                "num_cpus": int(sm["SM_NUM_CPUS"]),
                "num_gpus": 0,
            }
        )
        env.update(sm)
        env.update({k: str(v) for k, v in (getattr(job, "environment", None) or {}).items()})
        env["PYTHONPATH"] = str(code_dir)
        env["PYTHONUNBUFFERED"] = "1"
        env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = entry.region
        if not job.enable_network_isolation:
            # with network isolation a SageMaker container reaches nothing, this one neither
            env.update(FAKE_CREDENTIALS)
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def _run_process(
        self, job: Any, entry: _Entry, cmd: list[str], env: dict[str, str], cwd: Path
    ) -> tuple[int, bool, bool, list[str], list[dict[str, Any]]]:
        """Run the entry point; ``(returncode, stopped, timed_out, stderr tail, metrics)``."""
        max_s = (job.stopping_condition or {}).get("MaxRuntimeInSeconds")
        deadline = time.monotonic() + float(max_s) if max_s else None
        definitions = [
            (d["Name"], re.compile(d["Regex"]))
            for d in (job.algorithm_specification or {}).get("MetricDefinitions") or []
            if d.get("Name") and d.get("Regex")
        ]
        metrics: dict[str, dict[str, Any]] = {}
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL_LINES)
        log_lines: list[tuple[float, str]] = []
        log_lock = threading.Lock()
        log_file = self._log_path(entry.name)

        def pump(stream: Any, is_stderr: bool) -> None:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                with log_lock:
                    log_lines.append((time.time(), line))
                    if log_file is not None:
                        with log_file.open("a") as handle:
                            handle.write(line + "\n")
                if is_stderr:
                    tail.append(line)
                for metric_name, regex in definitions:
                    match = regex.search(line)
                    if match:
                        try:
                            value = float(match.group(1))
                        except (IndexError, ValueError):
                            continue
                        metrics[metric_name] = {
                            "MetricName": metric_name,
                            "Value": value,
                            "Timestamp": utcnow(),
                        }
            stream.close()

        proc = subprocess.Popen(  # noqa: S603 - our own interpreter on the job's entry point
            cmd,
            cwd=str(cwd),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop kills its children too
        )
        entry.proc = proc
        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, False), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, True), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        timed_out = False
        while True:
            try:
                proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            if entry.stop.is_set():
                self._kill(entry, graceful=True)
            elif deadline is not None and time.monotonic() > deadline:
                timed_out = True
                self._kill(entry, graceful=True)
        for thread in pumps:
            thread.join(5)
        entry.proc = None
        self._push_logs(entry, log_lines)
        stopped = entry.stop.is_set() and not timed_out
        return proc.returncode, stopped, timed_out, list(tail), list(metrics.values())

    def _kill(self, entry: _Entry, graceful: bool = False) -> None:
        proc = entry.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            pgid = os.getpgid(proc.pid)
        except ProcessLookupError:
            return
        if graceful:
            # SIGTERM first, like SageMaker; SIGKILL after a grace period
            try:
                os.killpg(pgid, signal.SIGTERM)
                proc.wait(_STOP_GRACE_S)
                return
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)

    def _failure_reason(
        self, output_dir: Path, returncode: int, tail: list[str], command: str
    ) -> str:
        failure = output_dir / "failure"
        if failure.is_file():
            text = failure.read_text(errors="replace").strip()
            if text:
                return text[:MAX_FAILURE_REASON]
        lines = [line for line in tail if line.strip()][-5:]
        message = "\n".join(lines) or "(no output on stderr)"
        # the shape of the SageMaker training toolkit's message
        reason = (
            f"AlgorithmError: ExecuteUserScriptError:\nExitCode {returncode}\n"
            f'ErrorMessage "{message}"\nCommand "{command}"'
        )
        if len(reason) > MAX_FAILURE_REASON:
            reason = reason[: MAX_FAILURE_REASON - 3] + "..."
        return reason

    def _upload_outputs(
        self,
        job: Any,
        entry: _Entry,
        s3: Any,
        model_dir: Path,
        output_data_dir: Path,
        tolerate: bool,
    ) -> None:
        output = job.output_data_config or {}
        base = output.get("S3OutputPath")
        if not base:
            raise JobFailed("ClientError: OutputDataConfig.S3OutputPath is not set")
        extra: dict[str, str] = {}
        if output.get("KmsKeyId"):
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]}
        model_uri = join_s3(base, entry.name, "output", "model.tar.gz")
        output_uri = join_s3(base, entry.name, "output", "output.tar.gz")
        try:
            for folder, uri in ((model_dir, model_uri), (output_data_dir, output_uri)):
                bucket, key = parse_s3_uri(uri)
                s3.put_object(Bucket=bucket, Key=key, Body=_targz(folder), **extra)
        except Exception as exc:
            if tolerate:
                logger.warning("training job %s: could not upload outputs: %s", entry.name, exc)
                return
            raise JobFailed(
                f"ClientError: could not upload the model artifacts to {model_uri}: {exc}"
            ) from exc
        job.model_artifacts = {"S3ModelArtifacts": model_uri}

    def _finish(
        self,
        job: Any,
        entry: _Entry,
        status: str,
        secondary: str,
        reason: str | None = None,
    ) -> None:
        now = utcnow()
        message = {
            "Completed": "Training job completed",
            "Failed": "Training job failed",
            "Stopped": "Training job stopped",
            "MaxRuntimeExceeded": "Training job stopped: MaxRuntimeInSeconds exceeded",
        }.get(secondary, secondary)
        self._transition(job, secondary, message, terminal=True)
        job.training_job_status = status
        job.failure_reason = reason
        job.training_end_time = now
        job.last_modified_time = now
        if job.training_start_time is None:
            job.training_start_time = now
        seconds = max(1, int((now - job.training_start_time).total_seconds()))
        job.training_time_in_seconds = seconds
        job.billable_time_in_seconds = seconds
        logger.info(
            "training job %s: %s%s",
            entry.name,
            status,
            f" ({reason.splitlines()[0]})" if reason else "",
        )
        try:
            self.on_finished(job, entry.account, entry.region)
        except Exception:
            logger.exception("training job %s: state change could not be published", entry.name)

    def _transition(self, job: Any, status: str, message: str, terminal: bool = False) -> None:
        now = utcnow()
        transitions = job.secondary_status_transitions or []
        if transitions and "EndTime" not in transitions[-1]:
            transitions[-1]["EndTime"] = now
        item: dict[str, Any] = {"Status": status, "StartTime": now, "StatusMessage": message}
        if terminal:
            item["EndTime"] = now
        transitions.append(item)
        job.secondary_status_transitions = transitions
        job.secondary_status = status
        job.last_modified_time = now

    # ------------------------------------------------------------------ logs

    def _log_path(self, name: str) -> Path | None:
        if self.state_dir is None:
            return None
        folder = self.state_dir / JOBS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{name}.log"

    def _push_logs(self, entry: _Entry, lines: list[tuple[float, str]]) -> None:
        """Copy the job's output to CloudWatch Logs, where SageMaker puts it (best effort)."""
        if not lines:
            return
        try:
            logs = self.clients("logs", entry.region)
            stream = f"{entry.name}/{CURRENT_HOST}-{int(time.time())}"
            with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                logs.create_log_group(logGroupName=_LOG_GROUP)
            logs.create_log_stream(logGroupName=_LOG_GROUP, logStreamName=stream)
            events = [{"timestamp": int(t * 1000), "message": m or " "} for t, m in lines]
            for start in range(0, len(events), 5000):
                logs.put_log_events(
                    logGroupName=_LOG_GROUP,
                    logStreamName=stream,
                    logEvents=events[start : start + 5000],
                )
        except Exception as exc:
            logger.debug("training job %s: logs not copied to CloudWatch: %s", entry.name, exc)


def _targz(folder: Path) -> bytes:
    """The folder's content (not the folder itself) as a tar.gz, like SageMaker packs it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


TERMINAL_STATUSES = _TERMINAL
