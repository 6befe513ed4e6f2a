"""At most one training job per model in flight: running jobs, the lock, skipped triggers.

``list_training_jobs`` (and the EC2 training hosts' group) tell whether a job runs; a lock in the
idempotency table closes the race between triggers arriving together. A trigger that finds
a job running is recorded as skipped (``skipped#<model>#...``), not remembered as done.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from botocore.exceptions import ClientError

from lambdas.aws import Clients, error_code
from lambdas.config import Config, JsonDict
from lambdas.errors import ControlPlaneError
from lambdas.failures import sagemaker_job_end
from lambdas.handling import iso
from lambdas.triggers import Trigger

LOCK_GRACE_SECONDS = 900  # a lock whose job cannot be found is young for this long
SKIPPED_TTL_DAYS = 30


class TrainingInFlight(ControlPlaneError, RuntimeError):
    """Another training job of this model is running (or being started)."""

    def __init__(self, running: str) -> None:
        super().__init__(running)
        self.running = running


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
        desired, hosts = _hosts(config, clients) or (0, [])
        running += [f"{host} (EC2 training host)" for host in hosts]
        if desired and not hosts:
            running.append(f"a host starting in {config.training_hosts}")
    return sorted(set(running))


def _hosts(config: Config, clients: Clients) -> tuple[int, list[str]] | None:
    """The training hosts' group: (desired capacity, ids of its hosts that are not going
    away), or None when there is no such group."""
    groups = clients.hosts.describe_auto_scaling_groups(
        AutoScalingGroupNames=[config.training_hosts or ""]
    )["AutoScalingGroups"]
    if not groups:
        return None
    hosts = [
        i["InstanceId"]
        for i in groups[0].get("Instances", [])
        if not i.get("LifecycleState", "").startswith("Terminat")
    ]
    return int(groups[0]["DesiredCapacity"]), hosts


def _job_active(config: Config, clients: Clients, job_name: str, backend: str) -> bool | None:
    """True/False when the job's state is known, None when the job cannot be found.

    EC2: the group runs one host for one job at a time (the lock), and the host takes
    itself out when the job ends: a host, or a desired one, is the holder's job."""
    if backend == "ec2":
        group = _hosts(config, clients)
        return None if group is None else bool(group[0] or group[1])
    end = sagemaker_job_end(clients, job_name)
    return None if end is None else end.status in {"InProgress", "Stopping"}


def _lock_id(config: Config) -> str:
    return f"inflight#{config.model_name}"


def acquire_lock(config: Config, clients: Clients, job_name: str, now: datetime) -> None:
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


def release_lock(config: Config, clients: Clients, job_name: str) -> None:
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
