"""Status bookkeeping of a local training job: what ``DescribeTrainingJob`` shows.

The job runner moves moto's ``FakeTrainingJob`` through SageMaker's statuses
(``InProgress`` -> ``Stopping`` -> ``Completed`` / ``Failed`` / ``Stopped``), its
``SecondaryStatus`` and ``SecondaryStatusTransitions`` (Starting, Downloading,
Training, Uploading, then the terminal one), and its times; these functions set
them the way SageMaker reports them.
"""

from __future__ import annotations

from typing import Any

from mlops.localcloud.awsutil import moto_now

TERMINAL_STATUSES = ("Completed", "Failed", "Stopped")

_TERMINAL_MESSAGES = {
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: MaxRuntimeInSeconds exceeded",
}


def mark_queued(job: Any) -> None:
    """``CreateTrainingJob``: InProgress / Starting, nothing from moto's instant completion."""
    now = moto_now()
    job.training_job_status = "InProgress"
    job.secondary_status = "Starting"
    job.secondary_status_transitions = [
        {
            "Status": "Starting",
            "StartTime": now,
            "StatusMessage": "Starting the training job (local cloud: queued)",
        }
    ]
    job.training_start_time = None
    job.training_end_time = None
    job.last_modified_time = now
    job.model_artifacts = None
    job.final_metric_data_list = None
    job.failure_reason = None


def check_stoppable(job: Any) -> None:
    """``StopTrainingJob`` refuses a job that is not InProgress, as SageMaker does."""
    from moto.sagemaker.exceptions import ValidationError

    if job.training_job_status != "InProgress":
        raise ValidationError(
            message="The request was rejected because the training job is in status "
            f"{job.training_job_status}."
        )


def transition(job: Any, status: str, message: str, terminal: bool = False) -> None:
    """A new secondary status; the previous transition ends now."""
    now = moto_now()
    transitions = job.secondary_status_transitions or []
    if transitions and "EndTime" not in transitions[-1]:
        transitions[-1]["EndTime"] = now
    item: dict[str, Any] = {"Status": status, "StartTime": now, "StatusMessage": message}
    if terminal:
        item["EndTime"] = now
    transitions.append(item)
    job.secondary_status_transitions = transitions
    job.secondary_status = status
    job.last_modified_time = now


def finish(job: Any, status: str, secondary: str, reason: str | None = None) -> None:
    """The terminal status, its ``FailureReason``, end time and (billable) training time."""
    now = moto_now()
    transition(job, secondary, _TERMINAL_MESSAGES.get(secondary, secondary), terminal=True)
    job.training_job_status = status
    job.failure_reason = reason
    job.training_end_time = now
    job.last_modified_time = now
    if job.training_start_time is None:
        job.training_start_time = now
    seconds = max(1, int((now - job.training_start_time).total_seconds()))
    job.training_time_in_seconds = seconds
    job.billable_time_in_seconds = seconds
