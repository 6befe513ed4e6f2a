"""Start a training job when new data lands, on a schedule, on drift, or on request.

``handler(event, context)`` accepts four EventBridge events (:mod:`lambdas.triggers`) and
nothing else:

- ``aws.s3`` / ``Object Created`` for a ``.csv`` / ``.parquet`` key under ``incoming/`` of
  the raw bucket;
- ``aws.events`` / ``Scheduled Event``;
- ``aws.cloudwatch`` / ``CloudWatch Alarm State Change`` of the drift alarm into ``ALARM``;
- ``mlops.control-plane`` / ``RetrainRequest`` (``detail``: ``model``, this function's
  ``MLOPS_MODEL_NAME``, which the stack's EventBridge rule also filters on; optional
  ``reason``, ``requested_by`` and ``force``: true to train again on an unchanged data
  version).

Anything else is logged and answered ``{"status": "rejected", "reason": ...}`` without
any AWS call and without raising (so Lambda does not retry it).

Guards, in order: (1) a data version (sha256 over the keys and ETags of everything under
``incoming/``) starts at most one job: powertools idempotency on DynamoDB; (2) at most one
training job per model is in flight: a running job found with ``list_training_jobs`` (or
a running EC2 training host), or a lock held in the same DynamoDB table, makes the trigger
``skipped``: recorded in the table (``skipped#<model>#...``) and not remembered as done,
so the next trigger trains on everything under ``incoming/``, including this data
(:mod:`lambdas.inflight`).

The job gets the champion (the latest Approved package) as input channel ``champion`` and
evaluates it on its own test split, so the promotion gate compares both models on the
same held-out data; the champion is recorded in ``lineage/<job>.json``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_text, put_json
from lambdas.config import Config, JsonDict, make_job_name
from lambdas.failures import sagemaker_job_end
from lambdas.handling import handle_event, iso, run_once, utcnow
from lambdas.incoming import data_version as compute_data_version
from lambdas.incoming import list_incoming
from lambdas.inflight import (
    TrainingInFlight,
    acquire_lock,
    find_inflight_jobs,
    record_skipped,
    release_lock,
)
from lambdas.reference import ReferenceError, current_reference
from lambdas.registry import find_champion
from lambdas.training import (
    READABLE_MODEL_PREFIXES,
    build_ec2_job,
    build_training_request,
    champion_model_uri,
)
from lambdas.triggers import Trigger, parse_trigger

logger = Logger(service="mlops-retrain")

# --- starting a job ------------------------------------------------------------------------


def submit_job(
    config: Config,
    clients: Clients,
    job_name: str,
    version: str,
    trigger: Trigger,
    champion: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> str:
    """Submit to the configured backend; returns the job's ARN, or (EC2) the queued
    message's id and the hosts' group.

    ``champion`` (:func:`lambdas.registry.find_champion`) becomes the job's ``champion``
    channel: the job evaluates it on the challenger's own test split. ``reference`` (the
    manifest of :func:`lambdas.reference.current_reference`) its ``reference`` channel.
    """
    if config.training_backend == "ec2":
        # Queue the job, then ask for a host: retrain needs neither ec2:RunInstances nor
        # iam:PassRole (the group launches from the stack's template with its own role).
        job = build_ec2_job(config, job_name, champion, reference, now=utcnow().timestamp())
        sent = clients.sqs.send_message(
            QueueUrl=config.training_jobs_queue_url, MessageBody=json.dumps(job)
        )
        clients.hosts.set_desired_capacity(
            AutoScalingGroupName=config.training_hosts, DesiredCapacity=1, HonorCooldown=False
        )
        return f"message {sent['MessageId']} for {config.training_hosts}"
    request = build_training_request(config, job_name, version, trigger.kind, champion, reference)
    return str(clients.sagemaker.create_training_job(**request)["TrainingJobArn"])


def champion_for_training(config: Config, clients: Clients) -> tuple[JsonDict | None, JsonDict]:
    """The champion to compare the next job with, and its lineage record.

    Returns ``(champion or None, record)``; ``record`` is the ``champion`` entry of
    ``lineage/<job>.json``: ``{"package", "version", "model_data_url", "channel"}``
    (``channel``: whether the job gets the model; ``reason`` when not), ``package`` null
    for a first model, or ``{"error", "channel": false}`` when the registry could not be
    read: training goes on without the comparison (the gate then falls back to the
    champion's own test split); that is not worth failing a retrain for.
    """
    if not config.model_package_group:
        return None, {"package": None, "channel": False, "reason": "no model package group"}
    try:
        champion = find_champion(config, clients)
    except ClientError as exc:
        logger.warning(f"champion lookup failed, training without it: {error_text(exc)}")
        return None, {"error": f"champion lookup failed: {error_text(exc)}", "channel": False}
    if champion is None:
        return None, {"package": None, "channel": False, "reason": "no champion: first model"}
    usable = champion_model_uri(config, champion) is not None
    record: JsonDict = {
        "package": champion["arn"],
        "version": champion.get("version"),
        "model_data_url": champion.get("model_data_url"),
        "channel": usable,
    }
    if not usable:
        record["reason"] = (
            f"the champion's model is not under s3://{config.artifacts_bucket}/ "
            f"{' or '.join(READABLE_MODEL_PREFIXES)}: the training role cannot read it"
        )
    return (champion if usable else None), record


def reference_for_training(config: Config, clients: Clients) -> tuple[JsonDict | None, JsonDict]:
    """The frozen reference set the next job is scored on, and its lineage record.

    Without one (none frozen yet, or its manifest unreadable: logged) the job trains
    without the channel; the gate then refuses it if a reference set exists after all.
    """
    try:
        manifest = current_reference(config, clients)
    except (ClientError, ReferenceError) as exc:
        logger.warning(f"reference set unreadable, training without it: {error_text(exc)}")
        return None, {"error": f"reference set unreadable: {error_text(exc)}"}
    if manifest is None:
        return None, {"uri": None, "reason": "no reference set frozen yet"}
    return manifest, {k: manifest.get(k) for k in ("uri", "sha256", "rows", "set_at")}


def start_training(
    config: Config,
    clients: Clients,
    trigger: Trigger,
    *,
    now: datetime | None = None,
    lambda_context: Any = None,
) -> JsonDict:
    """Apply the guards and, if they pass, write the lineage and start one training job.

    Returns
    -------
    dict
        ``status`` is one of

        - ``"started"``: ``job_name``, ``data_version``, ``backend``, ``resource`` (job ARN
          or instance id), ``lineage`` (S3 URI), ``champion`` (the package ARN whose model
          the job evaluates on its test split, or ``None``), ``trigger``;
        - ``"duplicate"``: this data version already started ``job_name`` (or is being
          started right now); nothing done;
        - ``"retry-later"``: the data version's job ended for an infrastructure reason;
          ``retry_after`` says when the next trigger may start it again;
        - ``"skipped"``: ``running_job`` is in flight; the trigger is recorded
          (``skipped_id``) and the data version is free to start later;
        - ``"no-data"``: nothing under ``incoming/``.

        Every outcome has a human-readable ``reason``.
    """
    config.require("raw_bucket", "artifacts_bucket", "idempotency_table", "role_arn", "code_s3_uri")
    if config.training_backend == "ec2":
        config.require("training_hosts", "training_jobs_queue_url")
    now = now or utcnow()
    objects = list_incoming(clients.s3, config.raw_bucket or "")
    if not objects:
        return {
            "status": "no-data",
            "reason": f"no objects under s3://{config.raw_bucket}/{c.INCOMING_PREFIX}",
            "trigger": trigger.as_dict(),
        }
    version = compute_data_version(objects)
    key = f"{version}#forced-{iso(now)}" if trigger.force else version

    def start() -> JsonDict:
        running = find_inflight_jobs(config, clients)
        if running:
            raise TrainingInFlight(running[0])
        job_name = make_job_name(config.model_name, now, version)
        acquire_lock(config, clients, job_name, now)
        try:
            champion, champion_record = champion_for_training(config, clients)
            reference, reference_record = reference_for_training(config, clients)
            lineage = put_json(
                clients.s3,
                config.artifacts_bucket or "",
                f"{c.LINEAGE_PREFIX}{job_name}.json",
                {
                    "job": job_name,
                    "data_version": version,
                    "trigger": trigger.as_dict(),
                    "objects": objects,
                    "champion": champion_record,
                    "reference": reference_record,
                    "created_at": iso(now),
                },
                config.kms_key_arn,
            )
            resource = submit_job(config, clients, job_name, version, trigger, champion, reference)
        except Exception:
            release_lock(config, clients, job_name)
            raise
        return {
            "status": "started",
            "reason": f"started {job_name} on data version {version[:12]} ({len(objects)} objects)",
            "job_name": job_name,
            "data_version": version,
            "backend": config.training_backend,
            "resource": resource,
            "lineage": lineage,
            "champion": champion_record.get("package"),
            "trigger": trigger.as_dict(),
        }

    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    attempt = 0
    try:
        while True:
            result, ran = run_once(
                config,
                clients,
                key=key if attempt == 0 else f"{key}#retry-{attempt}",
                key_prefix=f"retrain#{config.model_name}",
                fn=start,
                lambda_context=lambda_context,
                ttl_seconds=config.idempotency_ttl_days * 86400,
            )
            if ran:
                return {**result, "attempt": attempt} if attempt else result
            retry = _retry_decision(config, clients, result, version, attempt, now)
            if retry is not None:
                return {**retry, "data_version": version, "trigger": trigger.as_dict()}
            attempt += 1
    except TrainingInFlight as busy:
        record = record_skipped(config, clients, trigger, version, busy.running, now)
        return {
            "status": "skipped",
            "reason": (
                f"training job {busy.running} is in flight; trigger recorded as {record}; "
                "the next trigger trains on all data under incoming/, this data included"
            ),
            "running_job": busy.running,
            "data_version": version,
            "skipped_id": record,
            "trigger": trigger.as_dict(),
        }
    except IdempotencyAlreadyInProgressError:
        return {
            "status": "duplicate",
            "reason": f"data version {version[:12]} is being started by another invocation",
            "data_version": version,
            "trigger": trigger.as_dict(),
        }


def _retry_decision(
    config: Config,
    clients: Clients,
    previous: JsonDict,
    version: str,
    attempt: int,
    now: datetime,
) -> JsonDict | None:
    """The outcome for a data version that already started a job, or ``None``: retry it.

    A SageMaker job that ended for an infrastructure reason frees its data version, at
    most ``max_retries`` times, each after ``retry_backoff_seconds * 2**attempt``.
    """
    job = previous.get("job_name")
    end = (
        sagemaker_job_end(clients, job)
        if isinstance(job, str) and config.training_backend == "sagemaker"
        else None
    )
    duplicate = {
        "status": "duplicate",
        "job_name": job,
        "reason": (
            f"data version {version[:12]} already started {job}: "
            "no new data since (add files under incoming/, or send a RetrainRequest "
            "with force=true)"
        ),
    }
    if end is None or not end.failed:
        return duplicate
    if not end.infrastructure:
        return {
            **duplicate,
            "failure": "job",
            "reason": (
                f"{job} failed on its data or settings ({end.reason[:200]}); not retried "
                "until the data changes"
            ),
        }
    if attempt >= config.max_retries:
        return {
            **duplicate,
            "failure": "infrastructure",
            "reason": (
                f"{job} ended for an infrastructure reason ({end.reason[:200]}) after "
                f"{attempt} retries (mlops:maxRetries={config.max_retries}); not retried "
                "until the data changes"
            ),
        }
    due = (end.ended_at or now) + timedelta(seconds=config.retry_backoff_seconds * 2**attempt)
    if now < due:
        return {
            "status": "retry-later",
            "job_name": job,
            "failure": "infrastructure",
            "retry_after": iso(due),
            "reason": (
                f"{job} ended for an infrastructure reason ({end.reason[:200]}); retry "
                f"{attempt + 1} of {config.max_retries} is due at {iso(due)}"
            ),
        }
    return None


# --- handler --------------------------------------------------------------------------------


def handle(
    event: Any, environ: Mapping[str, str], context: Any = None, clients: Clients | None = None
) -> JsonDict:
    """The handler's logic with the environment and clients passed in (for the local cloud)."""
    return handle_event(
        event,
        environ,
        parse=parse_trigger,
        act=start_training,
        logger=logger,
        context=context,
        clients=clients,
    )


def handler(event: Any, context: Any) -> JsonDict:
    """Lambda entry point: ``lambdas.retrain.handler``."""
    return handle(event, os.environ, context)
