"""Start a training job when new data lands, on a schedule, on drift, or on request.

``handler(event, context)`` accepts four EventBridge events and nothing else:

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
so the next trigger trains on everything under ``incoming/``, including this data.

The job gets the champion (the latest Approved package) as input channel ``champion`` and
evaluates it on its own test split, so the promotion gate compares both models on the
same held-out data; the champion is recorded in ``lineage/<job>.json``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    handle_event,
    iso,
    list_incoming,
    make_job_name,
    put_json,
    run_once,
    utcnow,
)
from lambdas.common import data_version as compute_data_version
from lambdas.training import build_ec2_launch, build_training_request, champion_model_uri

logger = Logger(service="mlops-retrain")

DATA_SUFFIXES = (".csv", ".parquet")
LOCK_GRACE_SECONDS = 900  # a lock whose job cannot be found is young for this long
SKIPPED_TTL_DAYS = 30
_ACTIVE_EC2_STATES = ["pending", "running", "stopping"]


@dataclass(frozen=True)
class Trigger:
    """Why a retrain was asked for: ``kind`` becomes the ``mlops:trigger`` tag."""

    kind: str  # "s3" | "schedule" | "drift" | "manual"
    detail: Mapping[str, Any] = field(default_factory=dict)
    force: bool = False

    def as_dict(self) -> JsonDict:
        return {"kind": self.kind, **self.detail}


class TrainingInFlight(RuntimeError):
    """Another training job of this model is running (or being started)."""

    def __init__(self, running: str) -> None:
        super().__init__(running)
        self.running = running


# --- event ----------------------------------------------------------------------------


def parse_trigger(event: Any, config: Config) -> Trigger:
    """The :class:`Trigger` an event asks for; pure (no AWS call).

    Raises
    ------
    BadEvent
        With the reason the event is not accepted.
    """
    source, detail_type, detail = event_kind(event)
    meta = {k: event[k] for k in ("id", "time") if isinstance(event.get(k), str)}
    if (source, detail_type) == ("aws.s3", "Object Created"):
        bucket = (detail.get("bucket") or {}).get("name")
        obj = detail.get("object") or {}
        key = obj.get("key")
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise BadEvent("S3 event has no detail.bucket.name / detail.object.key")
        if bucket != config.raw_bucket:
            raise BadEvent(
                f"S3 event for bucket {bucket!r}, not the raw bucket {config.raw_bucket!r}"
            )
        if not key.startswith(c.INCOMING_PREFIX):
            raise BadEvent(f"S3 key {key!r} is not under {c.INCOMING_PREFIX}")
        if not key.lower().endswith(DATA_SUFFIXES):
            raise BadEvent(f"S3 key {key!r} is not a .csv or .parquet file")
        return Trigger("s3", {**meta, "bucket": bucket, "key": key})
    if (source, detail_type) == ("aws.events", "Scheduled Event"):
        resources = event.get("resources") or []
        rule = resources[0] if isinstance(resources, list) and resources else None
        return Trigger("schedule", {**meta, "rule": rule})
    if (source, detail_type) == ("aws.cloudwatch", "CloudWatch Alarm State Change"):
        alarm = detail.get("alarmName")
        state = (detail.get("state") or {}).get("value")
        if not config.drift_alarm_name:
            raise BadEvent(f"alarm event for {alarm!r} but {c.DRIFT_ALARM_NAME} is not set")
        if alarm != config.drift_alarm_name:
            raise BadEvent(f"alarm {alarm!r} is not the drift alarm {config.drift_alarm_name!r}")
        if state != "ALARM":
            raise BadEvent(f"drift alarm went to {state!r}, not ALARM: nothing to do")
        return Trigger("drift", {**meta, "alarm": alarm})
    if (source, detail_type) == (c.EVENT_SOURCE, c.RETRAIN_REQUEST):
        model = detail.get("model")
        if model is None:
            raise BadEvent(
                f"RetrainRequest has no detail.model: name the model to retrain "
                f"({config.model_name!r})"
            )
        if model != config.model_name:
            raise BadEvent(
                f"RetrainRequest is for model {model!r}, not {config.model_name!r}: "
                "another stack's request"
            )
        force = detail.get("force", False)
        if not isinstance(force, bool):
            raise BadEvent("RetrainRequest detail.force must be true or false")
        extra = {k: str(detail[k])[:256] for k in ("reason", "requested_by") if k in detail}
        return Trigger("manual", {**meta, "model": model, **extra}, force=force)
    raise BadEvent(f"unsupported event {source!r} / {detail_type!r}")


# --- in-flight guard --------------------------------------------------------------------


def find_inflight_jobs(config: Config, clients: Clients) -> list[str]:
    """Names of this model's running training jobs (SageMaker, and EC2 hosts if used)."""
    running: list[str] = []
    pattern = config.job_name_pattern
    paginator = clients.sagemaker.get_paginator("list_training_jobs")
    for page in paginator.paginate(StatusEquals="InProgress", NameContains=f"{config.model_name}-"):
        running += [
            j["TrainingJobName"]
            for j in page.get("TrainingJobSummaries", [])
            if pattern.match(j["TrainingJobName"])
        ]
    if config.training_backend == "ec2":
        running += _ec2_jobs(clients, [{"Name": "tag:mlops:model", "Values": [config.model_name]}])
    return sorted(set(running))


def _ec2_jobs(
    clients: Clients, filters: list[JsonDict], states: list[str] | None = None
) -> list[str]:
    """``mlops:job`` tags of the training hosts matching ``filters`` in ``states``."""
    states = _ACTIVE_EC2_STATES if states is None else states
    filters = [*filters, {"Name": "instance-state-name", "Values": states}]
    jobs = []
    for page in clients.ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
                jobs.append(tags.get("mlops:job", instance["InstanceId"]))
    return jobs


def _job_active(config: Config, clients: Clients, job_name: str, backend: str) -> bool | None:
    """True/False when the job's state is known, None when the job cannot be found."""
    if backend == "ec2":
        by_job = [{"Name": "tag:mlops:job", "Values": [job_name]}]
        if _ec2_jobs(clients, by_job):
            return True
        return (
            False
            if _ec2_jobs(clients, by_job, ["shutting-down", "terminated", "stopped"])
            else None
        )
    try:
        status = clients.sagemaker.describe_training_job(TrainingJobName=job_name)
    except ClientError as exc:
        if error_code(exc) in {"ValidationException", "ResourceNotFound"}:
            return None
        raise
    return status["TrainingJobStatus"] in {"InProgress", "Stopping"}


def _lock_id(config: Config) -> str:
    return f"inflight#{config.model_name}"


def _acquire_lock(config: Config, clients: Clients, job_name: str, now: datetime) -> None:
    """Take the model's training lock for ``job_name`` or raise :class:`TrainingInFlight`.

    The lock closes the race that ``list_training_jobs`` leaves open (several files of
    one upload arriving at once): a conditional write in the idempotency table. A lock
    is free when its job is no longer running, or cannot be found and is older than
    :data:`LOCK_GRACE_SECONDS`, or has expired.
    """
    assert config.idempotency_table is not None  # checked by start_training
    ddb, table, key = clients.dynamodb, config.idempotency_table, _lock_id(config)
    epoch = int(now.timestamp())
    item = {
        "id": {"S": key},
        "job_name": {"S": job_name},
        "backend": {"S": config.training_backend},
        "acquired_at": {"N": str(epoch)},
        "expiration": {"N": str(epoch + config.training_max_seconds + 3600)},
    }
    current = ddb.get_item(TableName=table, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")
    if current is None:
        condition: JsonDict = {"ConditionExpression": "attribute_not_exists(id)"}
    else:
        holder = current["job_name"]["S"]
        age = epoch - int(current["acquired_at"]["N"])
        expired = int(current["expiration"]["N"]) < epoch
        active = _job_active(config, clients, holder, current.get("backend", {}).get("S", ""))
        if not expired and (active or (active is None and age < LOCK_GRACE_SECONDS)):
            raise TrainingInFlight(holder)
        condition = {
            "ConditionExpression": "job_name = :holder",
            "ExpressionAttributeValues": {":holder": {"S": holder}},
        }
    try:
        ddb.put_item(TableName=table, Item=item, **condition)
    except ClientError as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            raise TrainingInFlight("another trigger is starting a job") from None
        raise


def _release_lock(config: Config, clients: Clients, job_name: str) -> None:
    try:
        clients.dynamodb.delete_item(
            TableName=config.idempotency_table,
            Key={"id": {"S": _lock_id(config)}},
            ConditionExpression="job_name = :job",
            ExpressionAttributeValues={":job": {"S": job_name}},
        )
    except ClientError as exc:
        if error_code(exc) != "ConditionalCheckFailedException":
            raise


def record_skipped(
    config: Config, clients: Clients, trigger: Trigger, version: str, running: str, now: datetime
) -> str:
    """Remember a trigger that arrived during a running job; returns the record id."""
    record_id = f"skipped#{config.model_name}#{iso(now)}#{secrets.token_hex(3)}"
    expiry = int((now + timedelta(days=SKIPPED_TTL_DAYS)).timestamp())
    clients.dynamodb.put_item(
        TableName=config.idempotency_table,
        Item={
            "id": {"S": record_id},
            "recorded_at": {"S": iso(now)},
            "trigger": {"S": trigger.kind},
            "data_version": {"S": version},
            "running_job": {"S": running},
            "expiration": {"N": str(expiry)},
        },
    )
    return record_id


def list_skipped_triggers(config: Config, clients: Clients) -> list[JsonDict]:
    """Triggers skipped because a job was running, newest first (for ``mlops status``).

    Each: ``{"id", "recorded_at", "trigger", "data_version", "running_job"}``.
    """
    config.require("idempotency_table")
    items: list[JsonDict] = []
    paginator = clients.dynamodb.get_paginator("scan")
    for page in paginator.paginate(
        TableName=config.idempotency_table,
        FilterExpression="begins_with(id, :p)",
        ExpressionAttributeValues={":p": {"S": f"skipped#{config.model_name}#"}},
    ):
        for item in page.get("Items", []):
            items.append({k: v.get("S", v.get("N")) for k, v in item.items() if k != "expiration"})
    return sorted(items, key=lambda i: i["id"], reverse=True)


def training_status(config: Config, clients: Clients) -> JsonDict:
    """What ``mlops status`` shows about training: running jobs, the lock, skipped triggers."""
    config.require("idempotency_table")
    lock = clients.dynamodb.get_item(
        TableName=config.idempotency_table, Key={"id": {"S": _lock_id(config)}}
    ).get("Item")
    return {
        "in_flight": find_inflight_jobs(config, clients),
        "lock": {k: v.get("S", v.get("N")) for k, v in lock.items()} if lock else None,
        "skipped": list_skipped_triggers(config, clients),
    }


# --- starting a job ------------------------------------------------------------------------


def submit_job(
    config: Config,
    clients: Clients,
    job_name: str,
    version: str,
    trigger: Trigger,
    champion: Mapping[str, Any] | None = None,
) -> str:
    """Submit to the configured backend; returns the job's ARN or the instance id.

    ``champion`` (:func:`lambdas.common.find_champion`) becomes the job's ``champion``
    channel: the job evaluates it on the challenger's own test split.
    """
    if config.training_backend == "ec2":
        launch = build_ec2_launch(config, job_name, version, trigger.kind, champion)
        reservation = clients.ec2.run_instances(**launch)
        return str(reservation["Instances"][0]["InstanceId"])
    request = build_training_request(config, job_name, version, trigger.kind, champion)
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
            f"the champion's model is not under s3://{config.artifacts_bucket}/"
            f"{c.TRAINING_PREFIX}: the training role cannot read it"
        )
    return (champion if usable else None), record


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
        - ``"skipped"``: ``running_job`` is in flight; the trigger is recorded
          (``skipped_id``) and the data version is free to start later;
        - ``"no-data"``: nothing under ``incoming/``.

        Every outcome has a human-readable ``reason``.
    """
    config.require("raw_bucket", "artifacts_bucket", "idempotency_table", "role_arn", "code_s3_uri")
    if config.training_backend == "ec2":
        config.require("launch_template_id")
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
        _acquire_lock(config, clients, job_name, now)
        try:
            champion, champion_record = champion_for_training(config, clients)
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
                    "created_at": iso(now),
                },
                config.kms_key_arn,
            )
            resource = submit_job(config, clients, job_name, version, trigger, champion)
        except Exception:
            _release_lock(config, clients, job_name)
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

    try:
        result, ran = run_once(
            config,
            clients,
            key=key,
            key_prefix=f"retrain#{config.model_name}",
            fn=start,
            lambda_context=lambda_context,
            ttl_seconds=config.idempotency_ttl_days * 86400,
        )
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
    if ran:
        return result
    return {
        "status": "duplicate",
        "reason": (
            f"data version {version[:12]} already started {result.get('job_name')}: "
            "no new data since (add files under incoming/, or send a RetrainRequest "
            "with force=true)"
        ),
        "job_name": result.get("job_name"),
        "data_version": version,
        "trigger": trigger.as_dict(),
    }


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
