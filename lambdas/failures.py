"""Why a training job ended: the infrastructure's fault (retry it) or the job's (do not).

A job killed, out of memory, past its time limit or without capacity says nothing about
its data: the data version is retried. A job that failed on its data or settings (a
``DataError``, a bad hyperparameter, a crash of the code) would fail again on the same
data: it is not retried until the data changes. Anything unrecognised counts as the job's
own failure, so a broken job is never retried in a loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws import Clients, error_code

_INFRASTRUCTURE = re.compile(
    r"CapacityError|InsufficientInstanceCapacity|InternalServerError|InternalFailure|"
    r"ServiceUnavailable|ThrottlingException|OutOfMemory|out of memory|"
    r"instance type with more memory|ExitCode 137|[Ss]ignal 9|SIGKILL|\bkilled\b",
)


@dataclass(frozen=True)
class JobEnd:
    """How a training job ended (or that it has not)."""

    status: str
    reason: str
    infrastructure: bool  # a failure the data had no part in
    ended_at: datetime | None

    @property
    def failed(self) -> bool:
        return self.status in {"Failed", "Stopped"}


def classify(described: dict[str, Any]) -> JobEnd:
    """A ``DescribeTrainingJob`` answer as a :class:`JobEnd` (pure)."""
    status = str(described.get("TrainingJobStatus", "Unknown"))
    reason = str(described.get("FailureReason") or "")
    secondary = str(described.get("SecondaryStatus") or "")
    if status == "Stopped":
        # stopped: by its time limit (MaxRuntimeExceeded), an operator or the platform
        reason = reason or f"stopped ({secondary or 'no reason given'})"
        infrastructure = True
    else:
        infrastructure = status == "Failed" and bool(_INFRASTRUCTURE.search(reason))
    ended = described.get("TrainingEndTime") or described.get("LastModifiedTime")
    if isinstance(ended, datetime) and ended.tzinfo is None:
        ended = ended.replace(tzinfo=UTC)
    return JobEnd(status, reason, infrastructure, ended if isinstance(ended, datetime) else None)


def sagemaker_job_end(clients: Clients, job_name: str) -> JobEnd | None:
    """How a SageMaker job ended; ``None`` when SageMaker has no such job."""
    try:
        described = clients.sagemaker.describe_training_job(TrainingJobName=job_name)
    except ClientError as exc:
        if error_code(exc) in {"ValidationException", "ResourceNotFound"}:
            return None
        raise
    return classify(dict(described))
