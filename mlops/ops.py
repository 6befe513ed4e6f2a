"""What the operator's commands do, against a `Target` (local cloud or AWS).

Each function calls the same control-plane code the Lambdas run (`lambdas.*.handle`
with the deployed Lambda environment), so `mlops train` is exactly a manual
retrain request and `mlops promote` a manual promote request.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas import drift, inflight, promote, quality, retrain
from lambdas.aws import Clients
from lambdas.config import Config
from mlops.errors import MlopsError
from mlops.target import Target

DATA_SUFFIXES = (".csv", ".parquet")


class OpsError(MlopsError, RuntimeError):
    """A command could not do what was asked; the message says why."""


def _clients(target: Target) -> Clients:
    """The handlers' clients, made by the target: against the local cloud they carry its
    fake credentials, so the CLI works in a shell that has no AWS credentials at all."""
    services = {attr: target.client(service) for attr, service in Clients.SERVICES.items()}
    return Clients(target.region, endpoint_url=target.endpoint_url, **services)


def control_plane(target: Target) -> tuple[Config, Clients]:
    return Config.from_env(target.environ()), _clients(target)


def ingest(target: Target, files: list[Path], day: str | None = None) -> list[str]:
    """Upload labelled files to `raw/incoming/<day>/`; never overwrites raw data."""
    bucket = target.output("rawBucket")
    day = day or datetime.now(UTC).strftime("%Y-%m-%d")
    s3 = target.client("s3")
    keys = []
    for path in files:
        if not path.is_file():
            raise OpsError(f"{path}: no such file")
        if path.suffix.lower() not in DATA_SUFFIXES:
            raise OpsError(f"{path}: only .csv and .parquet files are ingested")
        key = f"{c.INCOMING_PREFIX}{day}/{path.name}"
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise
        else:
            raise OpsError(
                f"s3://{bucket}/{key} already exists; raw data is never overwritten: "
                "rename the file or ingest it under another --day"
            )
        extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.output("kmsKeyArn")}
        s3.upload_file(str(path), bucket, key, ExtraArgs=extra)
        keys.append(f"s3://{bucket}/{key}")
    return keys


def train(target: Target, reason: str = "manual", force: bool = False) -> dict[str, Any]:
    """A manual retrain request through the retrain handler's own logic.

    ``detail.model`` names this stack's model (``MLOPS_MODEL_NAME``): the stack's
    ``retrain-request`` rule matches only requests for its own model."""
    environ = target.environ()
    event = {
        "source": c.EVENT_SOURCE,
        "detail-type": c.RETRAIN_REQUEST,
        "detail": {"model": environ.get(c.MODEL_NAME, ""), "reason": reason, "force": force},
    }
    return retrain.handle(event, environ, clients=_clients(target))


def promote_job(target: Target, job_name: str) -> dict[str, Any]:
    """A manual promote request: gate, register and deploy `job_name`."""
    event = {
        "source": c.EVENT_SOURCE,
        "detail-type": "PromoteRequest",
        "detail": {"TrainingJobName": job_name},
    }
    return promote.handle(event, target.environ(), clients=_clients(target))


def run_drift(target: Target) -> dict[str, Any]:
    return drift.handle({}, target.environ(), clients=_clients(target))


def run_quality(target: Target) -> dict[str, Any]:
    """The quality monitor now: the handler's own run over the current window."""
    return quality.handle({}, target.environ(), clients=_clients(target))


def quality_latest(target: Target) -> dict[str, Any] | None:
    """The last quality run's summary (realised, estimated, counts, alarm), if any."""
    config, clients = control_plane(target)
    return quality.latest(config, clients)


def jobs(target: Target, limit: int = 20) -> list[dict[str, Any]]:
    sm = target.client("sagemaker")
    prefix = target.output("modelName")
    # every page, then newest first here: moto ignores SortOrder, so a server-side
    # MaxResults could keep the oldest jobs instead of the newest
    summaries = [
        summary
        for page in sm.get_paginator("list_training_jobs").paginate(NameContains=prefix)
        for summary in page["TrainingJobSummaries"]
    ]
    summaries.sort(key=lambda summary: summary["CreationTime"], reverse=True)
    out = []
    for summary in summaries[:limit]:
        described = sm.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        # DescribeTrainingJob has no Tags (in AWS as in moto): ListTags has them
        listed = (
            described.get("Tags") or sm.list_tags(ResourceArn=described["TrainingJobArn"])["Tags"]
        )
        tags = {t["Key"]: t["Value"] for t in listed or []}
        out.append(
            {
                "name": summary["TrainingJobName"],
                "status": summary["TrainingJobStatus"],
                "created": summary["CreationTime"],
                "failure": described.get("FailureReason", ""),
                "trigger": tags.get("mlops:trigger", ""),
            }
        )
    return out


def evaluation(target: Target, job_name: str) -> dict[str, Any]:
    """The job's evaluation.json, read from its model.tar.gz."""
    model = _download(target, job_name, "model.tar.gz")
    return json.loads(_member(model, c.EVALUATION_FILE))


def packages(target: Target) -> list[dict[str, Any]]:
    sm = target.client("sagemaker")
    group = target.output("modelPackageGroupName")
    summaries = sm.list_model_packages(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    out = []
    for summary in summaries:
        described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        out.append(
            {
                "version": summary.get("ModelPackageVersion"),
                "status": summary.get("ModelApprovalStatus"),
                "created": summary.get("CreationTime"),
                "description": described.get("ModelPackageDescription", ""),
                "model_data": described["InferenceSpecification"]["Containers"][0].get(
                    "ModelDataUrl", ""
                ),
                "deployment": (described.get("CustomerMetadataProperties") or {}).get(
                    "mlops:deployment", ""
                ),
                "arn": summary["ModelPackageArn"],
            }
        )
    return out


def endpoint(target: Target) -> dict[str, Any] | None:
    sm = target.client("sagemaker")
    name = target.output("endpointName")
    try:
        described = sm.describe_endpoint(EndpointName=name)
    except ClientError:
        return None
    return {
        "name": name,
        "status": described["EndpointStatus"],
        "config": described["EndpointConfigName"],
        "failure": described.get("FailureReason", ""),
    }


def drift_scores(target: Target) -> dict[str, float]:
    """The latest PSI per feature that the drift monitor published."""
    cw = target.client("cloudwatch")
    env = target.environ()
    namespace = env.get(c.METRIC_NAMESPACE, c.DEFAULT_METRIC_NAMESPACE)
    model = env.get(c.MODEL_NAME, target.output("modelName"))
    metrics = cw.list_metrics(Namespace=namespace, MetricName=c.DRIFT_METRIC_NAME)["Metrics"]
    scores: dict[str, float] = {}
    now = datetime.now(UTC)
    for metric in metrics:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        if dims.get("Model") != model:
            continue
        stats = cw.get_metric_statistics(
            Namespace=namespace,
            MetricName=c.DRIFT_METRIC_NAME,
            Dimensions=metric["Dimensions"],
            StartTime=datetime.fromtimestamp(now.timestamp() - 86400 * 14, UTC),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )["Datapoints"]
        if stats:
            latest = max(stats, key=lambda p: p["Timestamp"])
            scores[dims.get("Feature", "?")] = float(latest["Maximum"])
    return scores


def training_guards(target: Target) -> dict[str, Any]:
    config, clients = control_plane(target)
    return inflight.training_status(config, clients)


def predict(
    target: Target, body: bytes, content_type: str = "text/csv", accept: str | None = None
) -> tuple[bytes, str]:
    runtime = target.client("sagemaker-runtime")
    try:
        result = runtime.invoke_endpoint(
            EndpointName=target.output("endpointName"),
            Body=body,
            ContentType=content_type,
            Accept=accept or content_type,
        )
    except ClientError as exc:
        raise OpsError(f"the endpoint refused the request: {exc}") from exc
    return result["Body"].read(), result.get("ContentType", accept or content_type)


def report(target: Target, job_name: str, out_dir: Path) -> Path:
    """Extract the job's report.html from output.tar.gz into `out_dir/<job>/`."""
    blob = _download(target, job_name, "output.tar.gz")
    html = _member(blob, c.REPORT_FILE)
    path = out_dir / job_name / c.REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(html)
    return path


def model_tarball(target: Target, job_name: str, out_dir: Path) -> Path:
    blob = _download(target, job_name, "model.tar.gz")
    path = out_dir / job_name / "model.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path


def _download(target: Target, job_name: str, name: str) -> bytes:
    bucket = target.output("artifactsBucket")
    key = f"{c.TRAINING_PREFIX}{job_name}/output/{name}"
    try:
        body: bytes = target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise OpsError(f"s3://{bucket}/{key} is not there: did job {job_name!r} finish?") from exc
    return body


def _member(tarball: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).name == name:
                handle = tar.extractfile(member)
                if handle is not None:
                    return handle.read()
    raise OpsError(f"{name} is not in the archive")


def serving_job(target: Target) -> str | None:
    """The training job whose model the endpoint serves (endpoint -> config -> model)."""
    sm = target.client("sagemaker")
    current = endpoint(target)
    if current is None:
        return None
    config = sm.describe_endpoint_config(EndpointConfigName=current["config"])
    model_name = config["ProductionVariants"][0]["ModelName"]
    model_data = sm.describe_model(ModelName=model_name)["PrimaryContainer"]["ModelDataUrl"]
    return _job_of(model_data)


def _job_of(model_data_url: str) -> str | None:
    # s3://<artifacts>/models/<job>/model.tar.gz (released by promote), or
    # s3://<artifacts>/training/<job>/output/model.tar.gz (a pinned or older model)
    parts = model_data_url.split("/")
    for prefix in (c.MODELS_PREFIX, c.TRAINING_PREFIX):
        if len(parts) > 4 and parts[3] == prefix.rstrip("/"):
            return parts[4]
    return None


def lineage(target: Target, job_name: str | None = None) -> dict[str, Any]:
    """From a model back to its data: the job's lineage record, its registry entries and
    whether it serves. Without `job_name`, the model the endpoint serves."""
    serving = serving_job(target)
    job_name = job_name or serving
    if job_name is None:
        raise OpsError("nothing is serving yet: name a training job")
    bucket = target.output("artifactsBucket")
    key = f"{c.LINEAGE_PREFIX}{job_name}.json"
    try:
        body = target.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        raise OpsError(f"no lineage for {job_name!r} (s3://{bucket}/{key})") from exc
    record: dict[str, Any] = json.loads(body)
    record["packages"] = [p for p in packages(target) if _job_of(p["model_data"]) == job_name]
    record["serving"] = job_name == serving
    now = champion(target)
    record["champion_now"] = (
        None
        if now is None
        else {"version": now["version"], "job": _job_of(now["model_data_url"] or "")}
    )
    return record


def champion(target: Target) -> dict[str, Any] | None:
    """The champion, by the rule promote gates with (:func:`lambdas.registry.find_champion`:
    the newest Approved package), or None."""
    from lambdas.registry import find_champion

    return find_champion(*control_plane(target))
