"""Every event-driven handler rejects a malformed event before any AWS call."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from lambdas_helpers import (
    Stack,
    job_name,
    load_event,
    no_aws_client,
    nothing_created,
    put_data,
)

from lambdas import promote, retrain
from lambdas.handling import MAX_EVENT_BYTES, BadEvent, check_event_size

JOB_1 = job_name("20240501-120000", "0000000a")


def _with(name: str, path: list[str], value: Any) -> dict[str, Any]:
    event = load_event(name)
    target = event
    for part in path[:-1]:
        target = target[part]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


RETRAIN_MALFORMED: list[tuple[str, Any, str]] = [
    ("not an object", ["a", "list"], "not a JSON object"),
    ("a string", "incoming/x.csv", "not a JSON object"),
    ("null", None, "not a JSON object"),
    ("S3 notification shape", load_event("s3_notification_records"), "EventBridge"),
    ("no source", _with("scheduled_event", ["source"], KeyError), "not an EventBridge event"),
    ("unknown source", _with("scheduled_event", ["source"], "aws.ec2"), "unsupported event"),
    (
        "unknown detail-type",
        _with("retrain_request", ["detail-type"], "DeleteEverything"),
        "unsupported event",
    ),
    ("detail not an object", _with("retrain_request", ["detail"], "now"), "not an object"),
    (
        "S3: other bucket",
        _with("s3_object_created", ["detail", "bucket", "name"], "someone-elses-bucket"),
        "not the raw bucket",
    ),
    (
        "S3: outside incoming/",
        _with("s3_object_created", ["detail", "object", "key"], "archive/2024/a.csv"),
        "not under incoming/",
    ),
    (
        "S3: not a data file",
        _with("s3_object_created", ["detail", "object", "key"], "incoming/2024-05-01/notes.txt"),
        "not a .csv or .parquet",
    ),
    (
        "S3: no key",
        _with("s3_object_created", ["detail", "object"], {}),
        "no detail.bucket.name / detail.object.key",
    ),
    (
        "alarm: another alarm",
        _with("drift_alarm", ["detail", "alarmName"], "cpu-high"),
        "not the drift alarm",
    ),
    (
        "alarm: back to OK",
        _with("drift_alarm", ["detail", "state", "value"], "OK"),
        "not ALARM",
    ),
    (
        "manual: another model's request",
        _with("retrain_request", ["detail", "model"], "fraud"),
        "is for model 'fraud', not 'churn'",
    ),
    (
        "manual: no model",
        _with("retrain_request", ["detail", "model"], KeyError),
        "has no detail.model",
    ),
    (
        "manual: force not a bool",
        _with("retrain_request", ["detail", "force"], "yes"),
        "force must be true or false",
    ),
]


PROMOTE_MALFORMED: list[tuple[str, Any, str]] = [
    ("not an object", "Completed", "not a JSON object"),
    ("S3 event", load_event("s3_object_created"), "unsupported event"),
    ("no job name", {**load_event("promote_request"), "detail": {}}, "no detail.TrainingJobName"),
    (
        "another model's job",
        {
            **load_event("promote_request"),
            "detail": {"TrainingJobName": "fraud-20240501-120000-0123abcd"},
        },
        "is not a job of model",
    ),
    (
        "job name without the contract's suffix",
        {**load_event("promote_request"), "detail": {"TrainingJobName": "churn-latest"}},
        "is not a job of model",
    ),
    (
        "unknown status",
        {
            **load_event("training_completed"),
            "detail": {"TrainingJobName": JOB_1, "TrainingJobStatus": "Done"},
        },
        "unknown TrainingJobStatus",
    ),
    (
        "state change from a stranger",
        {**load_event("training_completed"), "source": "com.example"},
        "unsupported event",
    ),
]


def _padded(name: str, size: int) -> dict[str, Any]:
    event = load_event(name)
    event["detail"]["padding"] = "x" * size
    return event


RETRAIN_MALFORMED += [
    (
        "job: still running",
        _with("training_completed", ["detail", "TrainingJobStatus"], "InProgress"),
        "it has not ended",
    ),
    (
        "job: another model's",
        _with("training_completed", ["detail", "TrainingJobName"], "fraud-20240501-120000-0a"),
        "is not a job of model 'churn'",
    ),
]
RETRAIN_MALFORMED.append(
    ("a few MB", _padded("s3_object_created", 3 * 1024 * 1024), "at most 16384 are accepted")
)
PROMOTE_MALFORMED.append(
    ("just over the limit", _padded("training_completed", 16 * 1024), "at most 16384")
)
CASES = [(retrain.handler, n, e, w) for n, e, w in RETRAIN_MALFORMED] + [
    (promote.handler, n, e, w) for n, e, w in PROMOTE_MALFORMED
]


@pytest.mark.parametrize(
    ("handler", "event", "why"),
    [(h, e, w) for h, _, e, w in CASES],
    ids=[f"{h.__module__.split('.')[-1]}: {n}" for h, n, _, _ in CASES],
)
def test_malformed_events_are_rejected_without_any_aws_call(
    stack: Stack,
    lambda_context: Any,
    caplog: pytest.LogCaptureFixture,
    handler: Callable[[Any, Any], dict[str, Any]],
    event: Any,
    why: str,
) -> None:
    # given data, and no AWS client may be used from now on
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    # when the event arrives
    with no_aws_client(), caplog.at_level(logging.WARNING):
        outcome = handler(event, lambda_context)

    # then it is rejected (not raised: Lambda must not retry it), with the reason logged
    assert outcome["status"] == "rejected"
    assert why in outcome["reason"]
    assert why in caplog.text
    assert nothing_created(stack)


@pytest.mark.parametrize("name", ["s3_object_created", "training_completed", "drift_alarm"])
def test_events_up_to_the_limit_pass_the_size_check(name: str) -> None:
    event = load_event(name)
    room = MAX_EVENT_BYTES - len(json.dumps(event, separators=(",", ":")).encode())
    event["detail"]["padding"] = "x" * (room - len(',"padding":""'))

    check_event_size(event)  # exactly at the limit: accepted

    event["detail"]["padding"] += "x"
    with pytest.raises(BadEvent, match=f"{MAX_EVENT_BYTES + 1} bytes"):
        check_event_size(event)
