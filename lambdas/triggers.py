"""The events that ask for a retrain, parsed (pure) into a :class:`Trigger`.

Six EventBridge events, nothing else: new data under ``incoming/`` of the raw bucket (not
the quality monitor's feedback files), the schedule, the drift or the quality alarm going
into ALARM, a manual ``RetrainRequest`` for this model, and
one of this model's training jobs ending: data that arrived while it ran (its triggers were
skipped) is followed up then, and a job killed by the infrastructure is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdas import constants as c
from lambdas.config import Config, JsonDict
from lambdas.handling import BadEvent, event_kind

DATA_SUFFIXES = (".csv", ".parquet")
JOB_ENDED = frozenset({"Completed", "Failed", "Stopped"})


@dataclass(frozen=True)
class Trigger:
    """Why a retrain was asked for: ``kind`` becomes the ``mlops:trigger`` tag."""

    kind: str  # "s3" | "schedule" | "drift" | "quality" | "manual" | "job-ended"
    detail: Mapping[str, Any] = field(default_factory=dict)
    force: bool = False

    def as_dict(self) -> JsonDict:
        return {"kind": self.kind, **self.detail}


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
        if key.rsplit("/", 1)[-1].startswith(c.FEEDBACK_FILE_PREFIX):
            raise BadEvent(f"{key} is feedback from ground truth: the next retrain reads it")
        return Trigger("s3", {**meta, "bucket": bucket, "key": key})
    if (source, detail_type) == ("aws.events", "Scheduled Event"):
        resources = event.get("resources") or []
        rule = resources[0] if isinstance(resources, list) and resources else None
        return Trigger("schedule", {**meta, "rule": rule})
    if (source, detail_type) == ("aws.cloudwatch", "CloudWatch Alarm State Change"):
        alarm = detail.get("alarmName")
        state = (detail.get("state") or {}).get("value")
        kinds = {config.drift_alarm_name: "drift", config.quality_alarm_name: "quality"}
        kinds.pop(None, None)
        if not kinds:
            raise BadEvent(f"alarm event for {alarm!r} but {c.DRIFT_ALARM_NAME} is not set")
        if alarm not in kinds:
            raise BadEvent(
                f"alarm {alarm!r} is not the drift alarm {config.drift_alarm_name!r} "
                f"nor the quality alarm {config.quality_alarm_name!r}"
            )
        kind = kinds[alarm]
        if state != "ALARM":
            raise BadEvent(f"{kind} alarm went to {state!r}, not ALARM: nothing to do")
        return Trigger(kind, {**meta, "alarm": alarm})
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
    if detail_type == c.TRAINING_STATE_CHANGE and source in {"aws.sagemaker", c.EVENT_SOURCE}:
        name = detail.get("TrainingJobName")
        status = detail.get("TrainingJobStatus")
        if not isinstance(name, str) or not config.job_name_pattern.match(name):
            raise BadEvent(f"training job {name!r} is not a job of model {config.model_name!r}")
        if status not in JOB_ENDED:
            raise BadEvent(f"training job {name} is {status!r}: it has not ended")
        return Trigger("job-ended", {**meta, "job": name, "status": status})
    raise BadEvent(f"unsupported event {source!r} / {detail_type!r}")
