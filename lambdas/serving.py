"""Serving a promoted model: its SageMaker model, endpoint config and the endpoint update.

The endpoint config, the blue/green deployment and the autoscaling come from the pure
builders of :mod:`lambdas.hosting` (the Pulumi program's pinned endpoint uses the same);
this module makes the SageMaker and Application Auto Scaling calls.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import hosting
from lambdas.aws import Clients, error_code, error_text
from lambdas.config import Config, JsonDict
from lambdas.errors import ControlPlaneError
from lambdas.training import training_image

logger = Logger(service="mlops-promote", child=True)

_BUSY_ENDPOINT = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}


class EndpointUpdateError(ControlPlaneError, RuntimeError):
    """A deployment step failed; the endpoint was left as it was."""


def serving_environment(config: Config) -> dict[str, str]:
    """The scikit-learn serving container's environment: ``inference.py`` from the bundle."""
    return {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": str(config.code_s3_uri),
        "SAGEMAKER_REGION": config.region,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    }


def build_endpoint_config(config: Config, name: str, model_name: str) -> JsonDict:
    """``create_endpoint_config`` arguments (pure): serverless or instances, data capture."""
    if config.capture_on:
        config.require("capture_bucket")
    request: JsonDict = {
        "EndpointConfigName": name,
        **hosting.endpoint_config(
            hosting.Hosting.from_config(config),
            model_name,
            kms_key_arn=config.kms_key_arn,
            capture_bucket=config.capture_bucket,
        ),
        "Tags": [{"Key": "mlops:model", "Value": config.model_name}],
    }
    return request


def build_deployment_config(config: Config) -> JsonDict | None:
    """``DeploymentConfig`` for ``update_endpoint`` (pure); ``None`` for a plain update.

    See :func:`lambdas.hosting.deployment_config`.
    """
    return hosting.deployment_config(hosting.Hosting.from_config(config))


def _describe_endpoint(clients: Clients, name: str) -> JsonDict | None:
    try:
        return dict(clients.sagemaker.describe_endpoint(EndpointName=name))
    except ClientError as exc:
        if error_code(exc) == "ValidationException" and "Could not find" in str(exc):
            return None
        raise


def ensure_model(
    config: Config,
    clients: Clients,
    name: str,
    model_data_url: str,
    environment: Mapping[str, str],
) -> None:
    try:
        clients.sagemaker.describe_model(ModelName=name)
        return  # a retried promotion: the same job's model is already there
    except ClientError as exc:
        if error_code(exc) != "ValidationException":
            raise
    request: JsonDict = {
        "ModelName": name,
        "PrimaryContainer": {
            "Image": config.serving_image_uri or training_image(config),
            "ModelDataUrl": model_data_url,
            "Environment": {**serving_environment(config), **environment},
        },
        "ExecutionRoleArn": config.role_arn,
        "Tags": [{"Key": "mlops:model", "Value": config.model_name}],
    }
    if config.endpoint_mode == "instance" and config.subnet_ids and config.security_group_ids:
        request["VpcConfig"] = {
            "Subnets": list(config.subnet_ids),
            "SecurityGroupIds": list(config.security_group_ids),
        }
    clients.sagemaker.create_model(**request)


def ensure_autoscaling(config: Config, clients: Clients) -> str:
    """Register the instance variant with application auto scaling, unless it is already.

    A variant that already has a scaling policy (registered by an earlier promotion, or
    by Pulumi for a pinned endpoint) is left alone, so the two owners never fight.
    Returns ``"registered"``, ``"present"``, ``"not-applicable"`` (serverless) or
    ``"deferred: <why>"`` (e.g. the endpoint is still being created; the next promotion
    registers it).
    """
    if config.endpoint_mode != "instance":
        return "not-applicable"
    settings = hosting.Hosting.from_config(config)
    endpoint = config.endpoint_name or ""
    target = hosting.scaling_target(settings, endpoint)
    try:
        existing = clients.autoscaling.describe_scaling_policies(
            ServiceNamespace=target["ServiceNamespace"],
            ResourceId=target["ResourceId"],
            ScalableDimension=target["ScalableDimension"],
        )
        if existing.get("ScalingPolicies"):
            return "present"
        clients.autoscaling.register_scalable_target(**target)
        clients.autoscaling.put_scaling_policy(**hosting.scaling_policy(settings, endpoint))
    except ClientError as exc:
        logger.warning(f"autoscaling deferred: {error_text(exc)}")
        return f"deferred: {error_text(exc)}"
    return "registered"


def deploy(
    config: Config,
    clients: Clients,
    *,
    job_name: str,
    model_data_url: str,
    environment: Mapping[str, str] | None = None,
    blue_green: bool = True,
) -> JsonDict:
    """Serve ``model_data_url``: new model + endpoint config, then create or update the endpoint.

    ``blue_green=False`` updates without a ``DeploymentConfig`` (leaving a trial's two
    variants for one: SageMaker's blue/green wants the same variants on both sides).

    Returns ``{"endpoint", "endpoint_config", "model_name", "action", "autoscaling"}``
    (``action``: ``"created"`` or ``"updated"``).

    Raises
    ------
    EndpointUpdateError
        Naming the failed step; the endpoint still runs the config it had.
    """
    config.require("endpoint_name", "role_arn", "code_s3_uri")
    endpoint = config.endpoint_name or ""
    model_name = job_name  # jobs are unique per model, so is this
    endpoint_config = f"{job_name[:56]}-{secrets.token_hex(3)}"
    step = "describe_endpoint"
    try:
        current = _describe_endpoint(clients, endpoint)
        if current and current.get("EndpointStatus") in _BUSY_ENDPOINT:
            raise EndpointUpdateError(
                f"endpoint {endpoint} is {current['EndpointStatus']}: cannot update it now"
            )
        step = "create_model"
        ensure_model(config, clients, model_name, model_data_url, environment or {})
        step = "create_endpoint_config"
        clients.sagemaker.create_endpoint_config(
            **build_endpoint_config(config, endpoint_config, model_name)
        )
        if current is None:
            step = "create_endpoint"
            clients.sagemaker.create_endpoint(
                EndpointName=endpoint,
                EndpointConfigName=endpoint_config,
                Tags=[{"Key": "mlops:model", "Value": config.model_name}],
            )
            action = "created"
        else:
            step = "update_endpoint"
            deployment = build_deployment_config(config) if blue_green else None
            extra = {"DeploymentConfig": deployment} if deployment else {}
            clients.sagemaker.update_endpoint(
                EndpointName=endpoint, EndpointConfigName=endpoint_config, **extra
            )
            action = "updated"
    except EndpointUpdateError:
        raise
    except Exception as exc:
        raise EndpointUpdateError(f"{step} failed: {error_text(exc)}") from exc
    return {
        "endpoint": endpoint,
        "endpoint_config": endpoint_config,
        "model_name": model_name,
        "action": action,
        "autoscaling": ensure_autoscaling(config, clients),
    }
