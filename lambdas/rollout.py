"""Deploy an approved package and confirm the endpoint really serves it.

``UpdateEndpoint`` only starts a blue/green rollout: SageMaker may still roll back (a
model that does not load, an alarm during baking), and the endpoint then stays on the
old config. promote watches the endpoint for up to ``mlops:deployWaitSeconds``; when
the rollout outlasts that, the endpoint's "SageMaker Endpoint State Change" event brings
promote back to finish the check. The package records the result
(``mlops:deployment``: ``in-service``, ``updating``, ``rolled-back`` or ``failed``, with
``mlops:deployment-reason``); a rolled-back or failed package is set to Rejected so that it
is not taken for the champion, and an alert goes out. The champion keeps serving.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws import Clients, error_text, publish_alert
from lambdas.config import Config, JsonDict
from lambdas.handling import iso, utcnow
from lambdas.packages import (
    DEPLOYMENT_PROPERTY,
    DEPLOYMENT_REASON_PROPERTY,
    ENDPOINT_CONFIG_PROPERTY,
    ROLLOUT_PROPERTY,
    ROLLOUT_STARTED_PROPERTY,
    on_trial,
    package_properties,
    update_package,
)
from lambdas.serving import EndpointUpdateError, deploy

IN_SERVICE, UPDATING, ROLLED_BACK, FAILED = "in-service", "updating", "rolled-back", "failed"
_BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack"}
_POLL_SECONDS = 5.0
_LAMBDA_RESERVE_MS = 30_000  # time kept to record the outcome before Lambda's deadline


def judge_endpoint(endpoint: Mapping[str, Any] | None, config_name: str) -> tuple[str, str]:
    """``(state, why)`` of a rollout to ``config_name`` from a DescribeEndpoint answer."""
    if endpoint is None:
        return FAILED, "the endpoint does not exist"
    status = str(endpoint.get("EndpointStatus") or "?")
    current = endpoint.get("EndpointConfigName")
    reason = str(endpoint.get("FailureReason") or "").strip()
    if status in _BUSY:
        return UPDATING, f"endpoint is {status}"
    if status == "InService" and current == config_name:
        return IN_SERVICE, f"endpoint InService on {config_name}"
    if status == "InService":
        why = f"endpoint rolled back to {current}" + (f": {reason}" if reason else "")
        return ROLLED_BACK, why
    return FAILED, f"endpoint is {status}" + (f": {reason}" if reason else "")


def _describe(clients: Clients, name: str) -> JsonDict | None:
    try:
        return dict(clients.sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as exc:
        if "Could not find" in error_text(exc):
            return None
        raise


def watch(
    config: Config, clients: Clients, config_name: str, *, lambda_context: Any = None
) -> tuple[str, str]:
    """Poll the endpoint until the rollout to ``config_name`` ends or the wait is over."""
    budget = float(config.deploy_wait_seconds)
    if lambda_context is not None and hasattr(lambda_context, "get_remaining_time_in_millis"):
        left = (lambda_context.get_remaining_time_in_millis() - _LAMBDA_RESERVE_MS) / 1000
        budget = max(0.0, min(budget, left))
    end = time.monotonic() + budget
    while True:
        state, why = judge_endpoint(_describe(clients, config.endpoint_name or ""), config_name)
        if state != UPDATING or time.monotonic() >= end:
            return state, why
        time.sleep(min(_POLL_SECONDS, max(0.0, end - time.monotonic())))


def record(
    config: Config,
    clients: Clients,
    package_arn: str,
    job_name: str,
    state: str,
    why: str,
    *,
    trial: str | None = None,
) -> JsonDict:
    """Write the rollout's result on the package; alert and reject on a failed one.

    ``trial``: the endpoint change put the package on trial in that mode (``shadow`` or
    ``ab``, :mod:`lambdas.trial`); once in service, that is its deployment state."""
    failed = state in {ROLLED_BACK, FAILED}
    trial_state = trial if state == IN_SERVICE else None
    properties = {DEPLOYMENT_PROPERTY: trial_state or state, DEPLOYMENT_REASON_PROPERTY: why}
    if trial_state:
        # the trial's window opens once its config serves: before, the old fleet answered
        properties[ROLLOUT_STARTED_PROPERTY] = iso(utcnow())
    try:
        update_package(
            clients,
            package_arn,
            status="Rejected" if failed else None,
            description=f"deployment {state}: {why}" if failed else None,
            properties=properties,
        )
    except ClientError as exc:
        why += f" (and the package could not record it: {error_text(exc)})"
    if failed:
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: deployment of {job_name} {state}",
            {
                "model": config.model_name,
                "job": job_name,
                "model_package": package_arn,
                "endpoint": config.endpoint_name,
                "reason": why,
                "serving": "unchanged: the champion keeps serving",
            },
        )
    status = {IN_SERVICE: "deployed", UPDATING: "deploying"}.get(state, "deploy-failed")
    if trial_state:
        return {"status": "on-trial", "deployment": trial_state, "deployment_reason": why}
    return {"status": status, "deployment": state, "deployment_reason": why}


def deploy_package(
    config: Config,
    clients: Clients,
    *,
    package_arn: str,
    job_name: str,
    model_data_url: str,
    environment: Mapping[str, str],
    lambda_context: Any = None,
    blue_green: bool = True,
) -> JsonDict:
    """Serve the package, then watch the rollout; see the module docstring.

    ``blue_green=False``: a plain update (a trial's end changes the variant set, which a
    blue/green deployment does not take).

    Returns ``{"status": "deployed"|"deploying"|"deploy-failed", "deployment",
    "deployment_reason", ...}`` plus :func:`lambdas.serving.deploy`'s fields once the
    update was accepted.
    """
    try:
        deployed = deploy(
            config,
            clients,
            job_name=job_name,
            model_data_url=model_data_url,
            environment=environment,
            blue_green=blue_green,
        )
    except EndpointUpdateError as exc:
        return record(config, clients, package_arn, job_name, FAILED, f"deployment failed: {exc}")
    config_name = deployed["endpoint_config"]
    update_package(
        clients,
        package_arn,
        properties={DEPLOYMENT_PROPERTY: UPDATING, ENDPOINT_CONFIG_PROPERTY: config_name},
    )
    state, why = watch(config, clients, config_name, lambda_context=lambda_context)
    return {**deployed, **record(config, clients, package_arn, job_name, state, why)}


def follow_up(config: Config, clients: Clients, endpoint_name: str) -> JsonDict:
    """An endpoint state change: finish the check of every package still ``updating``."""
    if endpoint_name != config.endpoint_name:
        return {"status": "ignored", "reason": f"endpoint {endpoint_name} is not this stack's"}
    listed = clients.sagemaker.list_model_packages(
        ModelPackageGroupName=config.model_package_group,
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=10,
    ).get("ModelPackageSummaryList", [])
    endpoint = _describe(clients, endpoint_name)
    done = []
    for summary in listed:
        arn = summary["ModelPackageArn"]
        package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
        properties = package_properties(package)
        if properties.get(DEPLOYMENT_PROPERTY) != UPDATING:
            continue
        state, why = judge_endpoint(endpoint, properties.get(ENDPOINT_CONFIG_PROPERTY, ""))
        if state == UPDATING:
            continue
        trial = properties.get(ROLLOUT_PROPERTY) if on_trial(properties) else None
        job = properties.get("mlops:job", "?")
        result = record(config, clients, arn, job, state, why, trial=trial)
        done.append({"model_package_arn": arn, **result})
    if not done:
        return {"status": "ignored", "reason": f"no rollout of {endpoint_name} was waiting"}
    return {
        "status": done[0]["status"],
        "reason": "; ".join(f"{d['model_package_arn']}: {d['deployment_reason']}" for d in done),
        "packages": done,
    }
