"""`mlops rollout`: the challenger on trial beside the champion, judged now or shown.

The check is promote's own (a "RolloutCheck" event through its handler), so the CLI and
the schedule rule act alike; the status only reads (:func:`lambdas.trial_check.assess`).
"""

from __future__ import annotations

from typing import Any

from lambdas import constants as c
from lambdas import promote, trial, trial_check
from lambdas.packages import ROLLOUT_PROPERTY, ROLLOUT_VERDICT_PROPERTY, package_properties
from mlops.ops import control_plane
from mlops.target import Target

_LOOK_BACK = 20  # packages searched for the last finished trial


def check(target: Target) -> dict[str, Any]:
    """Judge the trial now: promote, withdraw, or wait (see :mod:`lambdas.trial`)."""
    event = {"source": c.EVENT_SOURCE, "detail-type": c.ROLLOUT_CHECK, "detail": {}}
    return promote.handle(event, target.environ(), clients=control_plane(target)[1])


def status(target: Target) -> dict[str, Any]:
    """``{"mode", "min_requests", "trial": <assessment> | None, "last": <verdict> | None}``."""
    config, clients = control_plane(target)
    out: dict[str, Any] = {
        "mode": config.rollout_mode,
        "min_requests": config.rollout_min_requests,
        "trial": None,
        "last": None,
    }
    running = trial.running_trial(config, clients)
    if running is not None:
        assessed = trial_check.assess(config, clients, running)
        assessed.pop("_evidence")
        out["trial"] = assessed
    listed = clients.sagemaker.list_model_packages(
        ModelPackageGroupName=config.model_package_group,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=_LOOK_BACK,
    ).get("ModelPackageSummaryList", [])
    for summary in listed:
        package = clients.sagemaker.describe_model_package(
            ModelPackageName=summary["ModelPackageArn"]
        )
        properties = package_properties(package)
        if properties.get(ROLLOUT_VERDICT_PROPERTY):
            out["last"] = {
                "model_package_arn": summary["ModelPackageArn"],
                "version": package.get("ModelPackageVersion"),
                "job_name": properties.get("mlops:job"),
                "mode": properties.get(ROLLOUT_PROPERTY),
                "verdict": properties[ROLLOUT_VERDICT_PROPERTY],
                "reason": properties.get("mlops:rollout-reason")
                or properties.get("mlops:deployment-reason"),
                "numbers": {
                    k.removeprefix("mlops:rollout-"): v
                    for k, v in properties.items()
                    if k.startswith("mlops:rollout-")
                    and k != ROLLOUT_VERDICT_PROPERTY
                    and not k.endswith(("-started", "-champion-config", "-reason"))
                },
            }
            break
    return out
