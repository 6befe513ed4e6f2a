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
import tarfile
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import (
    Clients,
    error_text,
    publish_alert,
    put_json,
)
from lambdas.config import Config, JsonDict
from lambdas.gate import SAME_SPLIT, GateDecision, evaluate_gate
from lambdas.handling import BadEvent, event_kind, handle_event, run_once, utcnow
from lambdas.registry import champion_evaluation, find_champion
from lambdas.release import Archive, ReleaseError, load_archive, release, serving_digests
from lambdas.serving import EndpointUpdateError, deploy, serving_environment
from lambdas.training import model_artifacts_uri, training_image
from lambdas.verify import JobEvent, Unverified, verify_job

logger = Logger(service="mlops-promote")

TERMINAL_FAILURES = {"Failed", "Stopped"}
ALL_STATUSES = {"InProgress", "Completed", "Failed", "Stopping", "Stopped"}


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


# --- registration --------------------------------------------------------------------------


def register_package(
    config: Config,
    clients: Clients,
    *,
    job_name: str,
    model_data_url: str,
    evaluation_uri: str,
    decision: GateDecision,
    client_token: str | None = None,
    digests: Mapping[str, str] | None = None,
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
    if digests and c.MODEL_ARCHIVE_SHA256_ENV in digests:
        properties["mlops:model-sha256"] = digests[c.MODEL_ARCHIVE_SHA256_ENV]
    response = clients.sagemaker.create_model_package(
        ModelPackageGroupName=config.model_package_group,
        ModelPackageDescription=decision.reason[:1024],
        InferenceSpecification={
            "Containers": [
                {
                    "Image": config.serving_image_uri or training_image(config),
                    "ModelDataUrl": model_data_url,
                    "Environment": {**serving_environment(config), **(digests or {})},
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


# --- promotion -------------------------------------------------------------------------------


def promote_job(
    config: Config, clients: Clients, job: JobEvent, *, lambda_context: Any = None
) -> JsonDict:
    """Act on a training job's state: alert on failure, gate/register/deploy on success.

    Returns
    -------
    dict
        ``status`` is one of ``"rejected"`` (the backend does not vouch for the job, see
        :mod:`lambdas.verify`; alerted), ``"ignored"`` (job not finished), ``"training-failed"``
        (alerted), ``"error"`` (no readable evaluation; alerted), ``"not-promoted"``
        (package Rejected by the gate), ``"deployed"`` (package Approved and serving),
        ``"deploy-failed"`` (package set to Rejected; champion still serving; alerted),
        ``"duplicate"`` (this job was already promoted; the earlier outcome is in
        ``previous``). Always ``job_name`` and ``reason``; when registered also
        ``model_package_arn``, ``approval`` and ``gate`` (every rule).
    """
    config.require("artifacts_bucket", "model_package_group")
    manual = job.status is None
    try:
        job = verify_job(config, clients, job)
    except Unverified as exc:
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: refused an event about {job.job_name}",
            {"model": config.model_name, "job": job.job_name, "reason": str(exc)},
        )
        return {"status": "rejected", "job_name": job.job_name, "reason": str(exc)}
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
        # one read: the gate judges, and the endpoint serves, these very bytes
        archive = load_archive(clients, model_data_url)
    except (ClientError, OSError, ReleaseError) as exc:
        return _alert_error(
            config,
            clients,
            job.job_name,
            f"cannot read {c.EVALUATION_FILE} from {model_data_url}: {error_text(exc)}",
        )
    with archive:
        return _gate(config, clients, job, archive, token=token)


def _gate(
    config: Config, clients: Clients, job: JobEvent, archive: Archive, *, token: str
) -> JsonDict:
    model_data_url = archive.url
    try:
        raw = archive.members(c.EVALUATION_FILE)
        if c.EVALUATION_FILE not in raw:
            return _alert_error(
                config, clients, job.job_name, f"{c.EVALUATION_FILE} is not in {model_data_url}"
            )
        evaluation = json.loads(raw[c.EVALUATION_FILE])
        if not isinstance(evaluation, dict):
            raise ValueError("evaluation.json is not a JSON object")
    except (OSError, EOFError, tarfile.TarError, ValueError) as exc:
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
    digests: dict[str, str] = {}
    if decision.approved:
        try:
            model_data_url = release(config, clients, job.job_name, archive)
        except (ClientError, ReleaseError) as exc:
            reason = f"cannot release the approved model of {job.job_name}: {error_text(exc)}"
            return _alert_error(config, clients, job.job_name, reason)
        digests = serving_digests(archive, evaluation)
    package_arn = register_package(
        config,
        clients,
        job_name=job.job_name,
        model_data_url=model_data_url,
        evaluation_uri=evaluation_uri,
        decision=decision,
        client_token=hashlib.sha256(token.encode()).hexdigest()[:36],
        digests=digests,
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
        deployed = deploy(
            config,
            clients,
            job_name=job.job_name,
            model_data_url=model_data_url,
            environment=digests,
        )
    except EndpointUpdateError as exc:
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
