"""How the endpoint is hosted (pure): its endpoint config, blue/green deployment, autoscaling.

The one source for both owners of the endpoint: the promote handler passes these dicts to
boto3 as they are; the Pulumi program (``infra/serving.py``, the pinned endpoint) converts
them into pulumi_aws arguments. Each builder returns the boto3 request shape and calls
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas import constants as c
from lambdas.config import Config, JsonDict

SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALING_METRIC = "SageMakerVariantInvocationsPerInstance"
SCALE_IN_COOLDOWN_SECONDS = 300
SCALE_OUT_COOLDOWN_SECONDS = 60
# A blue/green canary is a strict part of the new fleet: one instance cannot hold one.
MIN_CANARY_INSTANCES = 2
MAX_CANARY_PERCENT = 50  # SageMaker: a canary is at most half the new fleet
MAX_AB_PERCENT = 50  # a challenger on trial never takes most of the traffic
# the rollback alarms judge 2-3 one-minute periods of canary traffic; metrics land late
CANARY_WAIT_SECONDS = 600
TERMINATION_WAIT_SECONDS = 300
MAX_DEPLOYMENT_SECONDS = 3600  # must exceed the canary wait plus the termination wait
CAPTURE_CONTENT_TYPES = {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}


@dataclass(frozen=True)
class Hosting:
    """The serving settings the builders read (the promote function's env vars)."""

    mode: str  # "serverless" | "instance"
    serverless_memory_mb: int
    serverless_max_concurrency: int
    instance_type: str
    instance_count: int
    capture: bool  # data capture on the endpoint config (SageMaker Serverless has none)
    capture_sample_percent: int
    canary_percent: int
    rollback_alarm_names: tuple[str, ...]
    autoscaling_min: int
    autoscaling_max: int
    autoscaling_target: float

    @classmethod
    def from_config(cls, config: Config) -> Hosting:
        return cls(
            mode=config.endpoint_mode,
            serverless_memory_mb=config.serverless_memory_mb,
            serverless_max_concurrency=config.serverless_max_concurrency,
            instance_type=config.endpoint_instance_type,
            instance_count=config.endpoint_instance_count,
            capture=config.capture_on,
            capture_sample_percent=config.capture_sample_percent,
            canary_percent=config.canary_percent,
            rollback_alarm_names=tuple(config.rollback_alarm_names),
            autoscaling_min=config.autoscaling_min,
            autoscaling_max=config.autoscaling_max,
            autoscaling_target=float(config.autoscaling_target),
        )

    @property
    def instance(self) -> bool:
        return self.mode == "instance"


def endpoint_config(
    hosting: Hosting,
    model_name: Any,
    *,
    kms_key_arn: Any = None,
    capture_bucket: str | None = None,
) -> JsonDict:
    """``create_endpoint_config`` arguments but the name and tags: one variant, data capture.

    ``model_name`` and ``kms_key_arn`` are placed, never read (the Pulumi program passes
    its Inputs). Instances get the key as volume key; serverless endpoints support no key.

    Raises
    ------
    ValueError
        When capture is on and there is no ``capture_bucket``.
    """
    variant: JsonDict = {"VariantName": c.VARIANT_NAME, "ModelName": model_name}
    request: JsonDict = {"ProductionVariants": [variant]}
    if hosting.instance:
        variant.update(
            InstanceType=hosting.instance_type,
            InitialInstanceCount=hosting.instance_count,
            InitialVariantWeight=1.0,
        )
        if kms_key_arn:
            request["KmsKeyId"] = kms_key_arn
    else:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": hosting.serverless_memory_mb,
            "MaxConcurrency": hosting.serverless_max_concurrency,
        }
    if hosting.capture:
        if not capture_bucket:
            raise ValueError("data capture needs a capture bucket")
        capture: JsonDict = {
            "EnableCapture": True,
            "InitialSamplingPercentage": hosting.capture_sample_percent,
            "DestinationS3Uri": f"s3://{capture_bucket}",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {k: list(v) for k, v in CAPTURE_CONTENT_TYPES.items()},
        }
        if kms_key_arn:
            capture["KmsKeyId"] = kms_key_arn
        request["DataCaptureConfig"] = capture
    return request


_VARIANT_KEYS = ("VariantName", "ModelName", "InstanceType", "InitialInstanceCount")


def trial_endpoint_config(
    champion_config: JsonDict, challenger_model: str, *, mode: str, ab_percent: int
) -> JsonDict:
    """``create_endpoint_config`` arguments (but name and tags) of a rollout's trial.

    The champion's config (a DescribeEndpointConfig answer) keeps its first production
    variant, first (the monitors read it as the one serving), its capture and key; the
    challenger gets the same instances as :data:`lambdas.constants.CHALLENGER_VARIANT_NAME`:
    a shadow variant that copies every request (``mode="shadow"``), or a production
    variant with ``ab_percent`` of the traffic (``mode="ab"``).

    Raises
    ------
    ValueError
        When the champion's config has no instance-backed variant (serverless endpoints
        have neither shadow nor several variants) or the mode is unknown.
    """
    variants = champion_config.get("ProductionVariants") or []
    if not variants or not variants[0].get("InstanceType"):
        raise ValueError(
            "a shadow or A/B rollout needs an instance endpoint (mlops:endpointMode instance): "
            "SageMaker Serverless endpoints have one variant and no shadow"
        )
    live = {k: variants[0][k] for k in _VARIANT_KEYS if k in variants[0]}
    challenger = {**live, "VariantName": c.CHALLENGER_VARIANT_NAME, "ModelName": challenger_model}
    request: JsonDict = {}
    if mode == "shadow":
        request["ProductionVariants"] = [{**live, "InitialVariantWeight": 1.0}]
        request["ShadowProductionVariants"] = [{**challenger, "InitialVariantWeight": 1.0}]
    elif mode == "ab":
        percent = max(1, min(MAX_AB_PERCENT, ab_percent))
        request["ProductionVariants"] = [
            {**live, "InitialVariantWeight": float(100 - percent)},
            {**challenger, "InitialVariantWeight": float(percent)},
        ]
    else:
        raise ValueError(f"rollout mode {mode!r} is not shadow or ab")
    if champion_config.get("DataCaptureConfig"):
        request["DataCaptureConfig"] = champion_config["DataCaptureConfig"]
    if champion_config.get("KmsKeyId"):
        request["KmsKeyId"] = champion_config["KmsKeyId"]
    return request


def deployment_config(hosting: Hosting) -> JsonDict | None:
    """``DeploymentConfig`` of an endpoint update; ``None`` for a plain (serverless) update.

    Instance endpoints: blue/green, a canary of ``canary_percent`` (1..50) with at least
    :data:`MIN_CANARY_INSTANCES` instances, else all at once; auto-rollback on the
    rollback alarms (SageMaker takes no empty alarm list: none, no rollback section).
    """
    if not hosting.instance:
        return None
    if hosting.instance_count >= MIN_CANARY_INSTANCES:
        routing: JsonDict = {
            "Type": "CANARY",
            "CanarySize": {
                "Type": "CAPACITY_PERCENT",
                "Value": max(1, min(MAX_CANARY_PERCENT, hosting.canary_percent)),
            },
            "WaitIntervalInSeconds": CANARY_WAIT_SECONDS,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
    deployment: JsonDict = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": TERMINATION_WAIT_SECONDS,
            "MaximumExecutionTimeoutInSeconds": MAX_DEPLOYMENT_SECONDS,
        }
    }
    if hosting.rollback_alarm_names:
        deployment["AutoRollbackConfiguration"] = {
            "Alarms": [{"AlarmName": name} for name in hosting.rollback_alarm_names]
        }
    return deployment


def scaling_resource(endpoint_name: str) -> str:
    """Application Auto Scaling's id of the endpoint's variant."""
    return f"endpoint/{endpoint_name}/variant/{c.VARIANT_NAME}"


def scaling_target(hosting: Hosting, endpoint_name: str) -> JsonDict:
    """``register_scalable_target`` arguments for the instance variant."""
    return {
        "ServiceNamespace": "sagemaker",
        "ResourceId": scaling_resource(endpoint_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "MinCapacity": hosting.autoscaling_min,
        "MaxCapacity": hosting.autoscaling_max,
    }


def scaling_policy(hosting: Hosting, endpoint_name: str) -> JsonDict:
    """``put_scaling_policy`` arguments: track invocations per instance."""
    return {
        "PolicyName": f"{endpoint_name}-invocations-per-instance",
        "ServiceNamespace": "sagemaker",
        "ResourceId": scaling_resource(endpoint_name),
        "ScalableDimension": SCALABLE_DIMENSION,
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "TargetValue": hosting.autoscaling_target,
            "PredefinedMetricSpecification": {"PredefinedMetricType": SCALING_METRIC},
            "ScaleInCooldown": SCALE_IN_COOLDOWN_SECONDS,
            "ScaleOutCooldown": SCALE_OUT_COOLDOWN_SECONDS,
        },
    }
