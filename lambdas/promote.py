"""Gate a finished training job against the champion, register it, and deploy it.

``handler(event, context)`` accepts, for this stack only (anything else is
``{"status": "rejected", ...}``, no AWS call):

- ``SageMaker Training Job State Change`` (source ``aws.sagemaker``, or
  ``mlops.control-plane`` from the EC2 training host) and a manual ``PromoteRequest``
  with ``detail.TrainingJobName``: the job is verified with its backend
  (:mod:`lambdas.verify`). Failed / Stopped: alerted, no package. Completed:
  ``evaluation.json`` is read out of the job's ``model.tar.gz``, the gate
  (:func:`lambdas.gate.evaluate_gate`) compares it with the champion (the latest
  Approved package) on the same test split, on the frozen reference set
  (:mod:`lambdas.reference`) and checks the data guard, and a package is registered
  Approved, Rejected or PendingManualApproval with every rule's numbers. An approved or
  held archive is first copied to ``models/<job>/`` (:mod:`lambdas.release`). Approved:
  deployed and the rollout watched (:mod:`lambdas.rollout`); the first approved model's
  test split becomes the reference set.
- ``SageMaker Model Package State Change`` of this stack's group: a person's decision on a
  held package (:mod:`lambdas.approval`).
- ``SageMaker Endpoint State Change`` of this stack's endpoint: the end of a rollout that
  outlasted promote's wait (:func:`lambdas.rollout.follow_up`).
- ``RolloutCheck`` (source ``mlops.control-plane``): judge the challenger on trial
  beside the champion (``mlops:rolloutMode`` shadow or ab, :mod:`lambdas.trial`).

A failed deployment or a rollback leaves the champion serving, the package Rejected with
the reason, and an alert.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.approval import PackageEvent, act_on_package
from lambdas.aws import Clients, error_text, publish_alert, put_json
from lambdas.config import Config, JsonDict
from lambdas.evidence import GuardLimits
from lambdas.gate import PENDING, REJECTED, SAME_SPLIT, GateDecision, decide, evaluate_gate
from lambdas.handling import handle_event, run_once, utcnow
from lambdas.package_card import publish_card
from lambdas.packages import REFERENCE_PROPERTY, register_package
from lambdas.promote_events import EndpointEvent, RolloutCheck, parse_event
from lambdas.reference import ReferenceError, current_reference, freeze_first_reference
from lambdas.registry import champion_evaluation, find_champion
from lambdas.release import Archive, ReleaseError, load_archive, release, serving_digests
from lambdas.rollout import follow_up
from lambdas.training import model_artifacts_uri
from lambdas.trial import serve_package
from lambdas.trial_check import check as check_trial
from lambdas.verify import JobEvent, Unverified, verify_job

logger = Logger(service="mlops-promote")

TERMINAL_FAILURES = {"Failed", "Stopped"}


# --- event ---------------------------------------------------------------------------


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
        return _promote_completed(
            config, clients, job, token=f"{job.job_name}#{utcnow()}", lambda_context=lambda_context
        )
    if not config.idempotency_table:
        return _promote_completed(
            config, clients, job, token=job.job_name, lambda_context=lambda_context
        )
    # EventBridge may deliver a state change twice: promote each job once

    result, ran = run_once(
        config,
        clients,
        key=job.job_name,
        key_prefix=f"promote#{config.model_name}",
        fn=lambda: _promote_completed(
            config, clients, job, token=job.job_name, lambda_context=lambda_context
        ),
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


def _promote_completed(
    config: Config, clients: Clients, job: JobEvent, *, token: str, lambda_context: Any = None
) -> JsonDict:
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
        return _gate(config, clients, job, archive, token=token, lambda_context=lambda_context)


def _gate(
    config: Config,
    clients: Clients,
    job: JobEvent,
    archive: Archive,
    *,
    token: str,
    lambda_context: Any = None,
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
    try:
        reference = current_reference(config, clients)
    except (ClientError, ReferenceError) as exc:
        reason = f"cannot read the reference set's manifest: {error_text(exc)}"
        return _alert_error(config, clients, job.job_name, reason)
    evaluation_uri = put_json(
        clients.s3,
        config.artifacts_bucket or "",
        f"{c.TRAINING_PREFIX}{job.job_name}/{c.EVALUATION_FILE}",
        evaluation,
        config.kms_key_arn,
    )
    champion = find_champion(config, clients)
    decision = _judge(config, clients, evaluation, champion, reference)
    digests: dict[str, str] = {}
    if decision.outcome != REJECTED:  # what a person may approve is fixed now, too
        try:
            model_data_url = release(config, clients, job.job_name, archive)
        except (ClientError, ReleaseError) as exc:
            reason = f"cannot release the gated model of {job.job_name}: {error_text(exc)}"
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
        extra={REFERENCE_PROPERTY: str(reference["sha256"])} if reference else None,
    )
    card = publish_card(
        config,
        clients,
        package_arn=package_arn,
        job_name=job.job_name,
        evaluation=evaluation,
        decision=decision,
        digests=digests,
        model_data_url=model_data_url,
    )
    outcome: JsonDict = {
        "job_name": job.job_name,
        "model_package_arn": package_arn,
        "card": card,
        "approval": decision.outcome,
        "gate": [{"rule": r, "held": h, "why": t} for r, h, t in decision.checks],
        "data_guard": list(decision.guard),
        "champion": champion["arn"] if champion else None,
        "comparison": decision.comparison,
    }
    if decision.outcome == REJECTED:
        return {**outcome, "status": "not-promoted", "reason": decision.reason}
    if decision.outcome == PENDING:
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: {job.job_name} awaits a person's approval",
            {
                "model": config.model_name,
                "job": job.job_name,
                "model_package": package_arn,
                "reason": decision.reason,
                "approve": f"mlops approve {package_arn}",
                "reject": f"mlops reject {package_arn} --reason ...",
            },
        )
        return {**outcome, "status": "pending-approval", "reason": decision.reason}
    deployed = serve_package(
        config,
        clients,
        package_arn=package_arn,
        job_name=job.job_name,
        model_data_url=model_data_url,
        environment=digests,
        lambda_context=lambda_context,
    )
    if deployed["status"] == "deploy-failed":
        reason = deployed["deployment_reason"]
        return {**outcome, **deployed, "approval": REJECTED, "reason": reason}
    if reference is None and deployed["status"] == "deployed":
        outcome["reference"] = freeze_first_reference(config, clients, job.job_name, package_arn)
    return {
        **outcome,
        **deployed,
        "reason": f"{decision.reason}; endpoint {deployed['endpoint']} {deployed['action']}: "
        f"{deployed['deployment_reason']}",
    }


def _judge(
    config: Config,
    clients: Clients,
    evaluation: JsonDict,
    champion: JsonDict | None,
    reference: JsonDict | None,
) -> GateDecision:
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
        reference=reference,
        reference_tolerance=config.reference_tolerance,
        max_fairness_gap=config.max_fairness_gap,
        fairness_action=config.fairness_action,
        guard_limits=GuardLimits(
            max_label_shift=config.max_label_shift,
            min_label_agreement=config.min_label_agreement,
            min_label_learnability=config.min_label_learnability,
            max_duplicate_share=config.max_duplicate_share,
        ),
        manual=config.approval_mode == "manual",
    )
    if champion_problem is None or decision.comparison == SAME_SPLIT:
        return decision
    # without a same-split measurement the champion's own metrics were needed
    checks = [
        ("beats-champion", False, champion_problem) if rule == "beats-champion" else (rule, h, t)
        for rule, h, t in decision.checks
    ]
    return replace(
        decision,
        outcome=decide(checks, manual=decision.manual, holding=decision.holding),
        champion_value=None,
        checks=tuple(checks),
        comparison=None,
    )


# --- handler -------------------------------------------------------------------------------


def act(
    config: Config,
    clients: Clients,
    event: JobEvent | PackageEvent | EndpointEvent | RolloutCheck,
    *,
    lambda_context: Any = None,
) -> JsonDict:
    """Act on a parsed event: see the module docstring."""
    config.require("artifacts_bucket", "model_package_group")
    if isinstance(event, RolloutCheck):
        return check_trial(config, clients, lambda_context=lambda_context)
    if isinstance(event, PackageEvent):
        return act_on_package(config, clients, event, lambda_context=lambda_context)
    if isinstance(event, EndpointEvent):
        return follow_up(config, clients, event.endpoint_name)
    return promote_job(config, clients, event, lambda_context=lambda_context)


def handle(
    event: Any, environ: Mapping[str, str], context: Any = None, clients: Clients | None = None
) -> JsonDict:
    """The handler's logic with the environment and clients passed in (for the local cloud)."""
    return handle_event(
        event,
        environ,
        parse=parse_event,
        act=act,
        logger=logger,
        context=context,
        clients=clients,
        calm=frozenset(
            {
                "deployed",
                "deploying",
                "not-promoted",
                "ignored",
                "pending-approval",
                "duplicate",
                "on-trial",
                "waiting",
            }
        ),
    )


def handler(event: Any, context: Any) -> JsonDict:
    """Lambda entry point: ``lambdas.promote.handler``."""
    return handle(event, os.environ, context)
