"""The SageMaker training contract a local training job runs under (script mode).

What the SageMaker training toolkit does around a script, for one job:

1. download the code bundle (hyperparameter ``sagemaker_submit_directory``, a
   ``.tar.gz`` S3 URI) and each input channel's S3 prefix into
   ``<tmp>/input/data/<channel>/`` (relative paths kept);
2. write ``<tmp>/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json``;
3. the command ``python <code>/<sagemaker_program> --key value ...`` with the ``SM_*``
   environment, ``cwd`` and ``PYTHONPATH`` = the code folder, and
   ``AWS_ENDPOINT_URL`` = the local cloud (unless network isolation is on);
4. afterwards: ``FinalMetricDataList`` from the ``MetricDefinitions`` regexes over
   the output, ``SM_MODEL_DIR`` / ``SM_OUTPUT_DATA_DIR`` packed into
   ``<S3OutputPath>/<job>/output/{model,output}.tar.gz`` (SSE-KMS with the output
   ``KmsKeyId``), and on failure a ``FailureReason`` = the failure file
   (``SM_OUTPUT_DIR/failure``) or the last stderr lines.

Running the command and the job's status are the job runner's
(:mod:`mlops.localcloud.runner`, :mod:`mlops.localcloud.training_status`).
Differences from SageMaker: the training image is not used (the job runs with
this Python and whatever it has installed), one host, ``File`` input mode only.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.aws import parse_s3_uri
from mlops.errors import MlopsError
from mlops.localcloud.awsutil import join_s3, moto_now
from mlops.localcloud.state import FAKE_CREDENTIALS

logger = logging.getLogger(__name__)

CURRENT_HOST = "algo-1"
MAX_FAILURE_REASON = 1024  # SageMaker's limit on FailureReason


class JobFailed(MlopsError):
    """The job cannot run; the message is its FailureReason."""


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


class Workspace:
    """The folders of one job run, laid out like ``/opt/ml`` in a training container."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.code = root / "code"
        self.input = root / "input"
        self.config = self.input / "config"
        self.data = self.input / "data"
        self.model = root / "model"
        self.output = root / "output"
        self.output_data = self.output / "data"

    def create(self) -> None:
        for folder in (self.code, self.config, self.data, self.model, self.output_data):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class Launch:
    """What to run for a prepared job."""

    command: list[str]
    env: dict[str, str]
    cwd: Path
    display_command: str  # as the toolkit names it in a FailureReason


def prepare(job: Any, s3: Any, workspace: Workspace, *, region: str, endpoint_url: str) -> Launch:
    """Steps 1-3: code bundle and channels downloaded, config files written, command built.

    Raises JobFailed with the FailureReason SageMaker would give.
    """
    hyperparameters: dict[str, str] = dict(job.hyper_parameters or {})
    decoded = {k: decode_hyperparameter(v) for k, v in hyperparameters.items()}
    user_hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    submit_dir = decoded.get("sagemaker_submit_directory")
    program = decoded.get("sagemaker_program")
    entrypoint = list((job.algorithm_specification or {}).get("ContainerEntrypoint") or [])
    if entrypoint:
        submit_dir, program = "", ""  # the v3 SDK's sm_drivers / code channels bring the code
    elif not submit_dir or not program:
        raise JobFailed(
            "ClientError: the local cloud runs script-mode jobs only: hyperparameters "
            "sagemaker_submit_directory (s3://.../code.tar.gz) and sagemaker_program "
            "must be set"
        )
    workspace.create()

    if not entrypoint:
        download_code(s3, str(submit_dir), workspace.code)
        entry_point = workspace.code / str(program)
        if not entry_point.is_file():
            raise JobFailed(
                f"AlgorithmError: the code bundle {submit_dir} has no {program} at its root"
            )

    channels: dict[str, dict[str, Any]] = {}
    for channel in job.input_data_config or []:
        name = channel["ChannelName"]
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            raise JobFailed(f"ClientError: channel {name}: only S3DataSource is supported locally")
        if source.get("S3DataType", "S3Prefix") != "S3Prefix":
            raise JobFailed(
                f"ClientError: channel {name}: S3DataType {source['S3DataType']} "
                "is not supported locally (use S3Prefix)"
            )
        download_prefix(s3, source["S3Uri"], workspace.data / name)
        channels[name] = {
            "TrainingInputMode": channel.get("InputMode")
            or (job.algorithm_specification or {}).get("TrainingInputMode", "File"),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
        if channel.get("ContentType"):
            channels[name]["ContentType"] = channel["ContentType"]

    instance_type = (job.resource_config or {}).get("InstanceType", "local")
    resource_config = {  # as SageMaker writes it for one instance
        "current_host": CURRENT_HOST,
        "current_instance_type": instance_type,
        "current_group_name": "homogeneousCluster",
        "hosts": [CURRENT_HOST],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": instance_type,
                "hosts": [CURRENT_HOST],
            }
        ],
        "network_interface_name": "eth0",
    }
    (workspace.config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (workspace.config / "inputdataconfig.json").write_text(json.dumps(channels))
    (workspace.config / "resourceconfig.json").write_text(json.dumps(resource_config))

    args = []
    for key, value in user_hps.items():
        args += [f"--{key}", _arg_value(value)]
    env = environment(
        job,
        workspace,
        region=region,
        endpoint_url=endpoint_url,
        channels=channels,
        user_hps=user_hps,
        args=args,
        program=str(program),
        submit_dir=str(submit_dir),
        resource_config=resource_config,
    )
    if entrypoint:
        # ContainerEntrypoint + ContainerArguments, as the container runs them; python3 is
        # this interpreter (its scikit-learn and pandas): its folder leads the PATH
        arguments = [
            str(a) for a in (job.algorithm_specification or {}).get("ContainerArguments") or []
        ]
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.pop("PYTHONPATH", None)
        command = [*entrypoint, *arguments]
        return Launch(command, env, workspace.root, " ".join(command)[:200])
    return Launch(
        command=[sys.executable, str(entry_point), *args],
        env=env,
        cwd=workspace.code,
        display_command=" ".join(["python", str(program), *args]),
    )


def download_code(s3: Any, uri: str, code_dir: Path) -> None:
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


def download_prefix(s3: Any, uri: str, target: Path) -> None:
    bucket, prefix = parse_s3_uri(uri, need_key=False)
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


def environment(
    job: Any,
    workspace: Workspace,
    *,
    region: str,
    endpoint_url: str,
    channels: dict[str, Any],
    user_hps: dict[str, Any],
    args: list[str],
    program: str,
    submit_dir: str,
    resource_config: dict[str, Any],
) -> dict[str, str]:
    """The job process's environment: the ``SM_*`` variables on a clean base."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MLOPS_", "SM_")) and k != "PYTHONPATH"
    }
    sm: dict[str, str] = {
        "SM_MODEL_DIR": str(workspace.model),
        "SM_OUTPUT_DIR": str(workspace.output),
        "SM_OUTPUT_DATA_DIR": str(workspace.output_data),
        "SM_OUTPUT_INTERMEDIATE_DIR": str(workspace.output / "intermediate"),
        "SM_INPUT_DIR": str(workspace.input),
        "SM_INPUT_CONFIG_DIR": str(workspace.config),
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
        sm[f"SM_CHANNEL_{_env_name(name)}"] = str(workspace.data / name)
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
            "model_dir": str(workspace.model),
            "output_data_dir": str(workspace.output_data),
            "module_dir": submit_dir,
            "user_entry_point": program,
            "num_cpus": int(sm["SM_NUM_CPUS"]),
            "num_gpus": 0,
        }
    )
    env.update(sm)
    env.update({k: str(v) for k, v in (getattr(job, "environment", None) or {}).items()})
    env["PYTHONPATH"] = str(workspace.code)
    env["PYTHONUNBUFFERED"] = "1"
    env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = region
    if not job.enable_network_isolation:
        # with network isolation a SageMaker container reaches nothing, this one neither
        env.update(FAKE_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = endpoint_url
    return env


class MetricScraper:
    """``FinalMetricDataList``: the job's ``MetricDefinitions`` regexes over its output."""

    def __init__(self, job: Any) -> None:
        self._definitions = [
            (d["Name"], re.compile(d["Regex"]))
            for d in (job.algorithm_specification or {}).get("MetricDefinitions") or []
            if d.get("Name") and d.get("Regex")
        ]
        self._metrics: dict[str, dict[str, Any]] = {}

    def feed(self, line: str) -> None:
        for metric_name, regex in self._definitions:
            match = regex.search(line)
            if match:
                try:
                    value = float(match.group(1))
                except (IndexError, ValueError):
                    continue
                self._metrics[metric_name] = {
                    "MetricName": metric_name,
                    "Value": value,
                    "Timestamp": moto_now(),
                }

    def final(self) -> list[dict[str, Any]]:
        return list(self._metrics.values())


def failure_reason(output_dir: Path, returncode: int, tail: list[str], command: str) -> str:
    """The failure file's content, else the toolkit's ExecuteUserScriptError message."""
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


def upload_outputs(job: Any, s3: Any, workspace: Workspace, tolerate: bool) -> None:
    """Pack the model and output-data folders to the job's S3 output path.

    Sets ``ModelArtifacts``. With ``tolerate`` (a stopped job keeps what it wrote) an
    upload error is only logged; otherwise it is a JobFailed.
    """
    name = job.training_job_name
    output = job.output_data_config or {}
    base = output.get("S3OutputPath")
    if not base:
        raise JobFailed("ClientError: OutputDataConfig.S3OutputPath is not set")
    extra: dict[str, str] = {}
    if output.get("KmsKeyId"):
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": output["KmsKeyId"]}
    model_uri = join_s3(base, name, "output", "model.tar.gz")
    output_uri = join_s3(base, name, "output", "output.tar.gz")
    try:
        for folder, uri in ((workspace.model, model_uri), (workspace.output_data, output_uri)):
            bucket, key = parse_s3_uri(uri)
            s3.put_object(Bucket=bucket, Key=key, Body=_targz(folder), **extra)
    except Exception as exc:
        if tolerate:
            logger.warning("training job %s: could not upload outputs: %s", name, exc)
            return
        raise JobFailed(
            f"ClientError: could not upload the model artifacts to {model_uri}: {exc}"
        ) from exc
    job.model_artifacts = {"S3ModelArtifacts": model_uri}


def _targz(folder: Path) -> bytes:
    """The folder's content (not the folder itself) as a tar.gz, like SageMaker packs it."""
    buffer = io.BytesIO()
    # gzip's own default level, as `tar czf` in SageMaker's containers; tarfile's 9 is
    # ten times slower on a forest's model.joblib for 3% less
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as archive:
        for path in sorted(folder.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()
