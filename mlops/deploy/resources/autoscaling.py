"""Application Auto Scaling: the endpoint's scalable target and its tracking policy."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, handles
from mlops.deploy.shapes import pascal


@handles("aws:appautoscaling/target:Target")
def _scaling_target(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("application-autoscaling").register_scalable_target(
        ServiceNamespace=inputs["serviceNamespace"],
        ResourceId=inputs["resourceId"],
        ScalableDimension=inputs["scalableDimension"],
        MinCapacity=int(inputs["minCapacity"]),
        MaxCapacity=int(inputs["maxCapacity"]),
    )
    return inputs["resourceId"], {}


@handles("aws:appautoscaling/policy:Policy")
def _scaling_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    config = pascal(inputs.get("targetTrackingScalingPolicyConfiguration") or {})
    result = ctx.client("application-autoscaling").put_scaling_policy(
        PolicyName=inputs["name"],
        ServiceNamespace=inputs["serviceNamespace"],
        ResourceId=inputs["resourceId"],
        ScalableDimension=inputs["scalableDimension"],
        PolicyType=inputs.get("policyType", "TargetTrackingScaling"),
        TargetTrackingScalingPolicyConfiguration=config,
    )
    return inputs["name"], {"arn": result["PolicyARN"]}
