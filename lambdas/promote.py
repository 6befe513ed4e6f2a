"""Gate a finished training job against the champion, register it, and deploy it.

``handler(event, context)`` accepts ``SageMaker Training Job State Change`` events (source
``aws.sagemaker``, or ``mlops.control-plane`` from the EC2 training host) for this model's
jobs, and a manual ``mlops.control-plane`` / ``PromoteRequest`` with
``detail.TrainingJobName``. Anything else is ``{"status": "rejected", ...}``, no AWS call.

- Failed / Stopped: the failure reason goes to the alert topic; no model package.
- Completed: ``evaluation.json`` is read out of the job's ``model.tar.gz``; the champion is
  the latest Approved package of the group; :func:`evaluate_gate` decides, comparing with
  the champion's metrics on the challenger's own test split when the job measured them
  (``evaluation.json["champion"]``), else with the champion's own evaluation; a model package
  is registered Approved or Rejected with the reason and ModelMetrics pointing at a copy of
  ``evaluation.json`` (``training/<job>/evaluation.json``). Approved: a new model and
  endpoint config, then create the endpoint or update it (blue/green, auto-rollback
  alarms). If deployment fails the endpoint keeps its config (the champion serves), the
  package becomes Rejected with ``deployment failed: <reason>``, and an alert goes out.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.common import (
    BadEvent,
    Clients,
    Config,
    JsonDict,
    error_code,
    error_text,
    event_kind,
    find_champion,
    get_json,
    handle_event,
    is_finite_number,
    parse_s3_uri,
    publish_alert,
    put_json,
    read_tar_members,
    run_once,
    utcnow,
)
from lambdas.training import model_artifacts_uri, training_image

logger = Logger(service="mlops-promote")

TERMINAL_FAILURES = {"Failed", "Stopped"}
ALL_STATUSES = {"InProgress", "Completed", "Failed", "Stopping", "Stopped"}
_BUSY_ENDPOINT = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
_TOLERANCE = 1e-9  # so that 0.83 - 0.82 counts as a 0.01 margin


@dataclass(frozen=True)
class JobEvent:
    """A training job the promote handler was asked about."""

    job_name: str
    status: str | None  # None: look it up (manual request)
    failure_reason: str | None = None
    model_data_url: str | None = None


class DeployError(RuntimeError):
    """A deployment step failed; the endpoint was left as it was."""


# --- event ---------------------------------------------------------------------------


def parse_job_event(event: Any, config: Config) -> JobEvent:
    """The job an event is about; pure (no AWS call). Raises :class:`BadEvent`."""
    source, detail_type, detail = event_kind(event)
    name = detail.get("TrainingJobName")
    if detail_type == c.TRAINING_STATE_CHANGE and source in {"aws.sagemaker", c.EVENT_SOURCE}:
        status = detail.get("TrainingJobStatus")
        if status not in ALL_STATUSES:
            raise BadEvent(f"training state event has unknown TrainingJobStatus {status!r}")
    elif (source, detail_type) == (c.EVENT_SOURCE, c.PROMOTE_REQUEST):
        status = None
    else:
        raise BadEvent(f"unsupported event {source!r} / {detail_type!r}")
    if not isinstance(name, str) or not name:
        raise BadEvent(f"{detail_type} has no detail.TrainingJobName")
    if not config.job_name_pattern.match(name):
        raise BadEvent(f"training job {name!r} is not a job of model {config.model_name!r}")
    artifacts = (detail.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    reason = detail.get("FailureReason")
    return JobEvent(
        job_name=name,
        status=status,
        failure_reason=reason if isinstance(reason, str) else None,
        model_data_url=artifacts if isinstance(artifacts, str) else None,
    )


# --- the gate (pure) -------------------------------------------------------------------------


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict: every rule with whether it held and why."""

    approved: bool
    primary_metric: str
    challenger_value: float | None
    champion_value: float | None
    checks: tuple[tuple[str, bool, str], ...]  # (rule, held, explanation)
    # how the champion's value was measured: "same-split" (by the challenger's job, on
    # the challenger's test split), "own-split" (the champion's own evaluation.json), or
    # None (no champion, or no comparison possible)
    comparison: str | None = None

    @property
    def reason(self) -> str:
        if self.approved:
            checks = list(self.checks)
            if self.comparison is not None:  # the decisive comparison first
                checks.sort(key=lambda check: check[0] != "beats-champion")
            return "approved: " + "; ".join(text for _, _, text in checks)
        return "rejected: " + "; ".join(text for _, held, text in self.checks if not held)


def _metric(evaluation: Mapping[str, Any] | None, section: str, name: str) -> float | None:
    value = ((evaluation or {}).get(section) or {}).get(name)
    return float(value) if is_finite_number(value) else None


def minority_recall(evaluation: Mapping[str, Any]) -> float | None:
    """``metrics.minority_recall``, else recall of the rarest true class in the confusion matrix."""
    value = _metric(evaluation, "metrics", "minority_recall")
    if value is not None:
        return value
    matrix = evaluation.get("confusion_matrix")
    if not isinstance(matrix, list) or not matrix:
        return None
    try:
        rows = [[float(x) for x in row] for row in matrix]
    except (TypeError, ValueError):
        return None
    support = [(sum(row), i) for i, row in enumerate(rows) if sum(row) > 0]
    if not support:
        return None
    total, i = min(support)
    return rows[i][i] / total if i < len(rows[i]) else None


SAME_SPLIT = "same-split"
OWN_SPLIT = "own-split"


def same_split_champion(
    challenger: Mapping[str, Any], metric: str, champion_package: str | None = None
) -> tuple[float | None, str | None]:
    """The champion's ``metric`` measured by the challenger's job on its own test split.

    Returns ``(value, None)``, or ``(None, why not)``: no ``champion`` section (an older
    job, or a first model), the job could not apply the champion (``champion.error``), the
    metric is missing, or the section is about another package than ``champion_package``
    (the champion changed while the job ran).
    """
    section = challenger.get("champion")
    if not isinstance(section, Mapping):
        return None, None
    if section.get("error"):
        return None, f"the job could not evaluate the champion: {str(section['error'])[:160]}"
    package = section.get("package")
    if champion_package and isinstance(package, str) and package and package != champion_package:
        return None, f"the job evaluated {package}, not the current champion"
    value = _metric(section, "metrics", metric)
    if value is None:
        return None, f"the job's champion metrics lack {metric}"
    return value, None


def evaluate_gate(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    primary_metric: str | None = None,
    margin: float = 0.01,
    min_minority_recall: float = 0.5,
    champion_package: str | None = None,
) -> GateDecision:
    """Decide whether ``challenger`` (an evaluation.json) may replace ``champion``.

    Rules (all must hold):

    1. the challenger's primary metric beats the majority-class baseline's (strictly);
    2. its balanced accuracy beats the baseline's (strictly);
    3. its minority-class recall is at least ``min_minority_recall``;
    4. with a champion: primary metric >= champion's + ``margin``; no champion: holds.
       The champion's value is the one the challenger's job measured on the challenger's
       own test split (``challenger["champion"]["metrics"]``: both models on the same
       held-out data) when present, else the champion's own evaluation.json (its older
       test split). ``champion_package``: the current champion's ARN; a same-split
       measurement of another package is not used.

    ``primary_metric`` overrides the challenger's own ``primary_metric``.
    """
    metric = primary_metric or str(challenger.get("primary_metric") or "f1")
    value = _metric(challenger, "metrics", metric)
    checks: list[tuple[str, bool, str]] = []

    base = _metric(challenger, "baseline", metric)
    if value is None or base is None:
        checks.append(
            (
                "beats-baseline",
                False,
                f"{metric} missing from metrics or baseline of evaluation.json",
            )
        )
    else:
        checks.append(
            (
                "beats-baseline",
                value > base,
                f"{metric} {value:.4f} {'>' if value > base else '<='} majority-class {base:.4f}",
            )
        )

    ba, ba_base = (_metric(challenger, s, "balanced_accuracy") for s in ("metrics", "baseline"))
    if ba is None or ba_base is None:
        checks.append(
            ("balanced-accuracy", False, "balanced_accuracy missing from evaluation.json")
        )
    else:
        held = ba > ba_base
        checks.append(
            (
                "balanced-accuracy",
                held,
                f"balanced accuracy {ba:.4f} {'>' if held else '<='} majority-class {ba_base:.4f}",
            )
        )

    recall = minority_recall(challenger)
    if recall is None:
        checks.append(("minority-recall", False, "minority recall not available"))
    else:
        held = recall >= min_minority_recall
        checks.append(
            (
                "minority-recall",
                held,
                f"minority recall {recall:.4f} {'>=' if held else '<'} "
                f"floor {min_minority_recall:.4f}",
            )
        )

    champ = None
    comparison = None
    if champion is None:
        checks.append(("beats-champion", True, "no champion: first model"))
    else:
        champ, why_not = same_split_champion(challenger, metric, champion_package)
        if champ is not None:
            comparison, where = SAME_SPLIT, "on the same test split"
        else:
            champ = _metric(champion, "metrics", metric)
            comparison, where = OWN_SPLIT, "on the champion's own test split"
            if why_not:
                where += f" ({why_not})"
        if champ is None or value is None:
            comparison = None
            checks.append(("beats-champion", False, f"cannot compare {metric} with the champion"))
        else:
            gain = value - champ
            held = gain >= margin - _TOLERANCE
            checks.append(
                (
                    "beats-champion",
                    held,
                    f"{metric} {value:.4f} vs champion {champ:.4f} {where} "
                    f"({gain:+.4f} {'>=' if held else '<'} margin {margin:.4f})"
                    + ("" if held else ": does not gain the margin"),
                )
            )
    return GateDecision(
        approved=all(held for _, held, _ in checks),
        primary_metric=metric,
        challenger_value=value,
        champion_value=champ,
        checks=tuple(checks),
        comparison=comparison,
    )


# --- model registry --------------------------------------------------------------------------


def champion_evaluation(clients: Clients, champion: Mapping[str, Any]) -> JsonDict:
    """The champion's evaluation.json: its ModelMetrics URI, else inside its model.tar.gz."""
    if champion.get("evaluation_uri"):
        doc = get_json(clients.s3, *parse_s3_uri(champion["evaluation_uri"]))
        if isinstance(doc, dict):
            return doc
    if champion.get("model_data_url"):
        raw = read_tar_members(clients.s3, champion["model_data_url"], [c.EVALUATION_FILE])
        if c.EVALUATION_FILE in raw:
            doc = json.loads(raw[c.EVALUATION_FILE])
            if isinstance(doc, dict):
                return doc
    raise ValueError(f"no readable evaluation.json for champion {champion.get('arn')}")


def serving_environment(config: Config) -> dict[str, str]:
    """The scikit-learn serving container's environment: ``inference.py`` from the bundle."""
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(config.code_s3_uri),
        "SAGEMAKER_REGION": config.region,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    }


def register_package(
    config: Config,
    clients: Clients,
    *,
    job_name: str,
    model_data_url: str,
    evaluation_uri: str,
    decision: GateDecision,
    client_token: str | None = None,
) -> str:
    """Register the challenger as a model package (Approved or Rejected); returns its ARN.

    ``client_token`` (at most 36 characters) makes a repeated request return the same
    package on AWS.
    """
    properties = {
        "mlops:job": job_name,
        "mlops:primary-metric": decision.primary_metric,
        "mlops:decision": "Approved" if decision.approved else "Rejected",
    }
    if decision.challenger_value is not None:
        properties[f"mlops:{decision.primary_metric}"] = f"{decision.challenger_value:.6f}"
    if decision.comparison is not None:
        # same-split: both models on the challenger's test split; own-split: the champion's
        # value comes from its own (older) evaluation
        properties["mlops:champion-comparison"] = decision.comparison
    if decision.champion_value is not None:
        properties[f"mlops:champion-{decision.primary_metric}"] = f"{decision.champion_value:.6f}"
    response = clients.sagemaker.create_model_package(
        ModelPackageGroupName=config.model_package_group,
        ModelPackageDescription=decision.reason[:1024],
        InferenceSpecification={
            "Containers": [
                {
                    "Image": config.serving_image_uri or training_image(config),
                    "ModelDataUrl": model_data_url,
                    "Environment": serving_environment(config),
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}
            }
        },
        ModelApprovalStatus="Approved" if decision.approved else "Rejected",
        CustomerMetadataProperties=properties,
        **({"ClientToken": client_token} if client_token else {}),
        Tags=[
            {"Key": "mlops:model", "Value": config.model_name},
            {"Key": "mlops:job", "Value": job_name},
        ],
    )
    return str(response["ModelPackageArn"])


# --- deployment ----------------------------------------------------------------------------


def build_endpoint_config(config: Config, name: str, model_name: str) -> JsonDict:
    """``create_endpoint_config`` arguments (pure): serverless or instances, data capture."""
    variant: JsonDict = {"VariantName": c.VARIANT_NAME, "ModelName": model_name}
    request: JsonDict = {"EndpointConfigName": name, "ProductionVariants": [variant]}
    if config.endpoint_mode == "serverless":
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": config.serverless_memory_mb,
            "MaxConcurrency": config.serverless_max_concurrency,
        }
    else:
        variant.update(
            InstanceType=config.endpoint_instance_type,
            InitialInstanceCount=config.endpoint_instance_count,
            InitialVariantWeight=1.0,
        )
        if config.kms_key_arn:
            request["KmsKeyId"] = config.kms_key_arn
    if config.capture_on:
        config.require("capture_bucket")
        capture: JsonDict = {
            "EnableCapture": True,
            "InitialSamplingPercentage": config.capture_sample_percent,
            "DestinationS3Uri": f"s3://{config.capture_bucket}/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {
                "CsvContentTypes": ["text/csv"],
                "JsonContentTypes": ["application/json"],
            },
        }
        if config.kms_key_arn:
            capture["KmsKeyId"] = config.kms_key_arn
        request["DataCaptureConfig"] = capture
    request["Tags"] = [{"Key": "mlops:model", "Value": config.model_name}]
    return request


def build_deployment_config(config: Config) -> JsonDict | None:
    """``DeploymentConfig`` for ``update_endpoint`` (pure); ``None`` for a plain update.

    Instance endpoints: blue/green, canary of ``CANARY_PERCENT`` (at most 50 %) when there
    are at least two instances (a canary must be at most half the fleet), else all at
    once; auto-rollback on ``ROLLBACK_ALARM_NAMES``. Serverless: plain update.
    """
    if config.endpoint_mode == "serverless":
        return None
    if config.endpoint_instance_count >= 2:
        routing: JsonDict = {
            "Type": "CANARY",
            "CanarySize": {
                "Type": "CAPACITY_PERCENT",
                "Value": max(1, min(50, config.canary_percent)),
            },
            "WaitIntervalInSeconds": 300,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    deployment: JsonDict = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": 300,
        }
    }
    if config.rollback_alarm_names:
        deployment["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in config.rollback_alarm_names]
        }
    return deployment


def _describe_endpoint(clients: Clients, name: str) -> JsonDict | None:
    try:
        return dict(clients.sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as exc:
        if error_code(exc) == "ValidationException" and "Could not find" in str(exc):
            return None
        raise


def _ensure_model(config: Config, clients: Clients, name: str, model_data_url: str) -> None:
    try:
        clients.sagemaker.describe_model(ModelName=name)
        return  # a retried promotion: the same job's model is already there
    except ClientError as exc:
        if error_code(exc) != "ValidationException":
            raise
    request: JsonDict = {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": config.serving_image_uri or training_image(config),
            "ModelDataUrl": model_data_url,
            "Environment": serving_environment(config),
        },
        "ExecutionRoleArn": config.role_arn,
        "Tags": [{"Key": "mlops:model", "Value": config.model_name}],
    }
    if config.endpoint_mode == "instance" and config.subnet_ids and config.security_group_ids:
        request["VpcConfig"] = {
            "Subnets": list(config.subnet_ids),
            "SecurityGroupIds": list(config.security_group_ids),
        }
    clients.sagemaker.create_model(**request)


def ensure_autoscaling(config: Config, clients: Clients) -> str:
    """Register the instance variant with application auto scaling, unless it is already.

    A variant that already has a scaling policy (registered by an earlier promotion, or
    by Pulumi for a pinned endpoint) is left alone, so the two owners never fight.
    Returns ``"registered"``, ``"present"``, ``"not-applicable"`` (serverless) or
    ``"deferred: <why>"`` (e.g. the endpoint is still being created; the next promotion
    registers it).
    """
    if config.endpoint_mode != "instance":
        return "not-applicable"
    resource = f"endpoint/{config.endpoint_name}/variant/{c.VARIANT_NAME}"
    dimension = "sagemaker:variant:DesiredInstanceCount"
    try:
        existing = clients.autoscaling.describe_scaling_policies(
            ServiceNamespace="sagemaker", ResourceId=resource, ScalableDimension=dimension
        )
        if existing.get("ScalingPolicies"):
            return "present"
        clients.autoscaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=dimension,
            MinCapacity=config.autoscaling_min,
            MaxCapacity=config.autoscaling_max,
        )
        clients.autoscaling.put_scaling_policy(
            PolicyName=f"{config.endpoint_name}-invocations-per-instance",
            ServiceNamespace="sagemaker",
            ResourceId=resource,
            ScalableDimension=dimension,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": config.autoscaling_target,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        )
    except ClientError as exc:
        logger.warning(f"autoscaling deferred: {error_text(exc)}")
        return f"deferred: {error_text(exc)}"
    return "registered"


def deploy(config: Config, clients: Clients, *, job_name: str, model_data_url: str) -> JsonDict:
    """Serve ``model_data_url``: new model + endpoint config, then create or update the endpoint.

    Returns ``{"endpoint", "endpoint_config", "model_name", "action", "autoscaling"}``
    (``action``: ``"created"`` or ``"updated"``).

    Raises
    ------
    DeployError
        Naming the failed step; the endpoint still runs the config it had.
    """
    config.require("endpoint_name", "role_arn", "code_s3_uri")
    endpoint = config.endpoint_name or ""
    model_name = job_name  # jobs are unique per model, so is this
    endpoint_config = f"{job_name[:56]}-{secrets.token_hex(3)}"
    step = "describe_endpoint"
    try:
        current = _describe_endpoint(clients, endpoint)
        if current and current.get("EndpointStatus") in _BUSY_ENDPOINT:
            raise DeployError(
                f"endpoint {endpoint} is {current['EndpointStatus']}: cannot update it now"
            )
        step = "create_model"
        _ensure_model(config, clients, model_name, model_data_url)
        step = "create_endpoint_config"
        clients.sagemaker.create_endpoint_config(
            **build_endpoint_config(config, endpoint_config, model_name)
        )
        if current is None:
            step = "create_endpoint"
            clients.sagemaker.create_endpoint(
                EndpointName=endpoint,
                EndpointConfigName=endpoint_config,
                Tags=[{"Key": "mlops:model", "Value": config.model_name}],
            )
            action = "created"
        else:
            step = "update_endpoint"
            deployment = build_deployment_config(config)
            extra = {"DeploymentConfig": deployment} if deployment else {}
            clients.sagemaker.update_endpoint(
                EndpointName=endpoint, EndpointConfigName=endpoint_config, **extra
            )
            action = "updated"
    except DeployError:
        raise
    except Exception as exc:
        raise DeployError(f"{step} failed: {error_text(exc)}") from exc
    return {
        "endpoint": endpoint,
        "endpoint_config": endpoint_config,
        "model_name": model_name,
        "action": action,
        "autoscaling": ensure_autoscaling(config, clients),
    }


# --- promotion -------------------------------------------------------------------------------


def _job_status(clients: Clients, job: JobEvent, config: Config) -> JobEvent:
    """Fill in status, failure reason and artifacts for a manual request."""
    try:
        described = clients.sagemaker.describe_training_job(TrainingJobName=job.job_name)
    except ClientError as exc:
        if error_code(exc) not in {"ValidationException", "ResourceNotFound"}:
            raise
        # not a SageMaker job (EC2 backend): its artifacts tell whether it completed
        url = model_artifacts_uri(config, job.job_name)
        bucket, key = parse_s3_uri(url)
        try:
            clients.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            return JobEvent(job.job_name, "Unknown", f"no training job and no {url}")
        return JobEvent(job.job_name, "Completed", None, url)
    return JobEvent(
        job_name=job.job_name,
        status=described["TrainingJobStatus"],
        failure_reason=described.get("FailureReason"),
        model_data_url=described.get("ModelArtifacts", {}).get("S3ModelArtifacts"),
    )


def promote_job(
    config: Config, clients: Clients, job: JobEvent, *, lambda_context: Any = None
) -> JsonDict:
    """Act on a training job's state: alert on failure, gate/register/deploy on success.

    Returns
    -------
    dict
        ``status`` is one of ``"ignored"`` (job not finished), ``"training-failed"``
        (alerted), ``"error"`` (no readable evaluation; alerted), ``"not-promoted"``
        (package Rejected by the gate), ``"deployed"`` (package Approved and serving),
        ``"deploy-failed"`` (package set to Rejected; champion still serving; alerted),
        ``"duplicate"`` (this job was already promoted; the earlier outcome is in
        ``previous``). Always ``job_name`` and ``reason``; when registered also
        ``model_package_arn``, ``approval`` and ``gate`` (every rule).
    """
    config.require("artifacts_bucket", "model_package_group")
    manual = job.status is None
    if manual:
        job = _job_status(clients, job, config)
    if job.status in TERMINAL_FAILURES or job.status == "Unknown":
        reason = job.failure_reason or "no failure reason reported"
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: training {job.status}: {job.job_name}",
            {
                "model": config.model_name,
                "job": job.job_name,
                "status": job.status,
                "reason": reason,
            },
        )
        return {
            "status": "training-failed",
            "job_name": job.job_name,
            "training_status": job.status,
            "reason": f"training job {job.job_name} {job.status}: {reason}",
        }
    if job.status != "Completed":
        return {
            "status": "ignored",
            "job_name": job.job_name,
            "reason": f"training job {job.job_name} is {job.status}: nothing to promote yet",
        }
    if manual:
        # an operator's request always runs (e.g. again after a failed deployment)
        return _promote_completed(config, clients, job, token=f"{job.job_name}#{utcnow()}")
    if not config.idempotency_table:
        return _promote_completed(config, clients, job, token=job.job_name)
    # EventBridge may deliver a state change twice: promote each job once

    result, ran = run_once(
        config,
        clients,
        key=job.job_name,
        key_prefix=f"promote#{config.model_name}",
        fn=lambda: _promote_completed(config, clients, job, token=job.job_name),
        lambda_context=lambda_context,
        ttl_seconds=config.idempotency_ttl_days * 86400,
    )
    if ran:
        return result
    return {
        "status": "duplicate",
        "job_name": job.job_name,
        "reason": f"{job.job_name} was already promoted: {result.get('status')}",
        "previous": result,
    }


def _alert_error(config: Config, clients: Clients, job_name: str, reason: str) -> JsonDict:
    publish_alert(
        clients.sns,
        config.alert_topic_arn,
        f"[mlops] {config.model_name}: cannot promote {job_name}",
        {"model": config.model_name, "job": job_name, "reason": reason},
    )
    return {"status": "error", "job_name": job_name, "reason": reason}


def _promote_completed(config: Config, clients: Clients, job: JobEvent, *, token: str) -> JsonDict:
    model_data_url = job.model_data_url or model_artifacts_uri(config, job.job_name)
    try:
        raw = read_tar_members(clients.s3, model_data_url, [c.EVALUATION_FILE])
        if c.EVALUATION_FILE not in raw:
            return _alert_error(
                config, clients, job.job_name, f"{c.EVALUATION_FILE} is not in {model_data_url}"
            )
        evaluation = json.loads(raw[c.EVALUATION_FILE])
        if not isinstance(evaluation, dict):
            raise ValueError("evaluation.json is not a JSON object")
    except (ClientError, OSError, EOFError, tarfile.TarError, ValueError) as exc:
        return _alert_error(
            config,
            clients,
            job.job_name,
            f"cannot read {c.EVALUATION_FILE} from {model_data_url}: {error_text(exc)}",
        )
    evaluation_uri = put_json(
        clients.s3,
        config.artifacts_bucket or "",
        f"{c.TRAINING_PREFIX}{job.job_name}/{c.EVALUATION_FILE}",
        evaluation,
        config.kms_key_arn,
    )

    champion = find_champion(config, clients)
    champion_eval: JsonDict | None = None
    champion_problem = None
    if champion is not None:
        try:
            champion_eval = champion_evaluation(clients, champion)
        except (ClientError, OSError, EOFError, tarfile.TarError, ValueError) as exc:
            champion_problem = f"champion {champion['arn']} metrics unreadable: {error_text(exc)}"
    decision = evaluate_gate(
        evaluation,
        None if champion is None else (champion_eval or {}),
        primary_metric=config.primary_metric,
        margin=config.promotion_margin,
        min_minority_recall=config.min_minority_recall,
        champion_package=champion["arn"] if champion else None,
    )
    if champion_problem is not None and decision.comparison != SAME_SPLIT:
        # without a same-split measurement the champion's own metrics were needed
        decision = GateDecision(
            approved=False,
            primary_metric=decision.primary_metric,
            challenger_value=decision.challenger_value,
            champion_value=None,
            checks=(*decision.checks[:-1], ("beats-champion", False, champion_problem)),
        )
    package_arn = register_package(
        config,
        clients,
        job_name=job.job_name,
        model_data_url=model_data_url,
        evaluation_uri=evaluation_uri,
        decision=decision,
        client_token=hashlib.sha256(token.encode()).hexdigest()[:36],
    )
    outcome: JsonDict = {
        "job_name": job.job_name,
        "model_package_arn": package_arn,
        "approval": "Approved" if decision.approved else "Rejected",
        "gate": [{"rule": r, "held": h, "why": t} for r, h, t in decision.checks],
        "champion": champion["arn"] if champion else None,
        "comparison": decision.comparison,
    }
    if not decision.approved:
        return {**outcome, "status": "not-promoted", "reason": decision.reason}
    try:
        deployed = deploy(config, clients, job_name=job.job_name, model_data_url=model_data_url)
    except DeployError as exc:
        reason = f"deployment failed: {exc}"
        try:
            clients.sagemaker.update_model_package(
                ModelPackageArn=package_arn,
                ModelApprovalStatus="Rejected",
                ApprovalDescription=reason[:1024],
            )
        except ClientError as update_exc:
            reason += f" (and the package could not be set to Rejected: {error_text(update_exc)})"
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: deployment of {job.job_name} failed",
            {
                "model": config.model_name,
                "job": job.job_name,
                "model_package": package_arn,
                "endpoint": config.endpoint_name,
                "reason": reason,
                "serving": "unchanged: the champion keeps serving",
            },
        )
        return {**outcome, "approval": "Rejected", "status": "deploy-failed", "reason": reason}
    return {
        **outcome,
        **deployed,
        "status": "deployed",
        "reason": f"{decision.reason}; endpoint {deployed['endpoint']} {deployed['action']}",
    }


# --- handler -------------------------------------------------------------------------------


def handle(
    event: Any, environ: Mapping[str, str], context: Any = None, clients: Clients | None = None
) -> JsonDict:
    """The handler's logic with the environment and clients passed in (for the local cloud)."""
    return handle_event(
        event,
        environ,
        parse=parse_job_event,
        act=promote_job,
        logger=logger,
        context=context,
        clients=clients,
        calm=frozenset({"deployed", "not-promoted", "ignored"}),
    )


def handler(event: Any, context: Any) -> JsonDict:
    """Lambda entry point: ``lambdas.promote.handler``."""
    return handle(event, os.environ, context)
