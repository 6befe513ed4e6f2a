"""The events promote accepts, parsed without any AWS call (see :mod:`lambdas.promote`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas import constants as c
from lambdas.approval import PackageEvent, parse_package_event
from lambdas.config import Config
from lambdas.handling import BadEvent, event_kind
from lambdas.verify import JobEvent

ALL_STATUSES = {"InProgress", "Completed", "Failed", "Stopping", "Stopped"}


@dataclass(frozen=True)
class EndpointEvent:
    """This stack's endpoint changed state (a rollout may have ended)."""

    endpoint_name: str


@dataclass(frozen=True)
class RolloutCheck:
    """Judge the challenger on trial now (the schedule rule, or ``mlops rollout check``)."""


def parse_event(
    event: Any, config: Config
) -> JobEvent | PackageEvent | EndpointEvent | RolloutCheck:
    """What an event is about; pure (no AWS call). Raises :class:`BadEvent`."""
    source, detail_type, detail = event_kind(event)
    if (source, detail_type) == (c.EVENT_SOURCE, c.ROLLOUT_CHECK):
        # no job, no package named: whoever sends it, only the registry's trial is judged
        return RolloutCheck()
    if source == "aws.sagemaker" and detail_type == c.PACKAGE_STATE_CHANGE:
        return parse_package_event(detail, config)
    if source == "aws.sagemaker" and detail_type == c.ENDPOINT_STATE_CHANGE:
        name = detail.get("EndpointName")
        if not isinstance(name, str) or name != config.endpoint_name:
            raise BadEvent(f"endpoint {name!r} is not this stack's")
        return EndpointEvent(name)
    return parse_job_event(event, config)


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
