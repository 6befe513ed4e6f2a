"""Serving: who owns the endpoint, and the optional Pulumi-pinned endpoint.

Decision (docs/infra.md, "Endpoint ownership"): by default Pulumi creates **no**
endpoint. The first promotion (``lambdas.promote``) creates the endpoint under the
deterministic name exported here and owns every endpoint config after it; Pulumi
hands it the serving settings as environment variables and creates the alarms the
deployments roll back on. With ``mlops:pinnedModelDataUrl`` set, Pulumi creates a
model, an endpoint config and the endpoint from that artifact, and ignores later
changes of the endpoint's config name, so ``pulumi up`` never reverts a promotion.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.naming import VARIANT_NAME, Names
from lambdas import constants as c

#: The endpoint property the control plane changes on every promotion.
PROMOTION_OWNED_PROPERTIES = ["endpoint_config_name"]


@dataclass
class ServingArgs:
    names: Names
    endpoint_mode: str  # "serverless" | "instance"
    serving_image_uri: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    endpoint_instance_type: str
    endpoint_instance_count: int
    capture_sample_percent: int
    canary_percent: int
    autoscaling_min: int
    autoscaling_max: int
    autoscaling_target: int
    rollback_alarm_names: list[str]
    # only for the pinned path
    pinned_model_data_url: str | None = None
    sagemaker_role_arn: pulumi.Input[str] | None = None
    kms_key_arn: pulumi.Input[str] | None = None
    capture_bucket: str | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


def serving_environment(args: ServingArgs) -> dict[str, str]:
    """Environment of the promote function: everything it needs to create endpoint
    configs and the endpoint exactly as the pinned path below would."""
    return {
        c.ENDPOINT_NAME: args.names.endpoint,
        c.SERVING_IMAGE_URI: args.serving_image_uri,
        c.ENDPOINT_MODE: args.endpoint_mode,
        c.SERVERLESS_MEMORY_MB: str(args.serverless_memory_mb),
        c.SERVERLESS_MAX_CONCURRENCY: str(args.serverless_max_concurrency),
        c.ENDPOINT_INSTANCE_TYPE: args.endpoint_instance_type,
        c.ENDPOINT_INSTANCE_COUNT: str(args.endpoint_instance_count),
        c.CAPTURE_SAMPLE_PERCENT: str(args.capture_sample_percent),
        c.CANARY_PERCENT: str(args.canary_percent),
        c.ROLLBACK_ALARM_NAMES: ",".join(args.rollback_alarm_names),
        c.AUTOSCALING_MIN: str(args.autoscaling_min),
        c.AUTOSCALING_MAX: str(args.autoscaling_max),
        c.AUTOSCALING_TARGET: str(args.autoscaling_target),
    }


def endpoint_options(
    parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource] = ()
) -> pulumi.ResourceOptions:
    """Options of the pinned endpoint: promotions change its config; Pulumi must not undo it."""
    return pulumi.ResourceOptions(
        parent=parent,
        ignore_changes=list(PROMOTION_OWNED_PROPERTIES),
        depends_on=list(depends_on),
    )


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]


class Serving(pulumi.ComponentResource):
    """The endpoint's name and settings; with a pinned model, the endpoint itself
    (serverless, or instances with target-tracking autoscaling and a blue/green
    canary deployment that rolls back on the endpoint alarms)."""

    endpoint: aws.sagemaker.Endpoint | None

    def __init__(self, name: str, args: ServingArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:Serving", name, None, opts)
        n = args.names
        self.endpoint_name = n.endpoint
        self.environment = serving_environment(args)
        self.endpoint = None
        if args.pinned_model_data_url:
            self._pinned(name, args)
        self.register_outputs(
            {
                "endpointName": self.endpoint_name,
                "pulumiManagedEndpoint": self.endpoint is not None,
            }
        )

    def _pinned(self, name: str, args: ServingArgs) -> None:
        n = args.names
        if args.sagemaker_role_arn is None or args.kms_key_arn is None or not args.capture_bucket:
            raise ValueError("the pinned endpoint needs the SageMaker role, the key and the bucket")
        child = pulumi.ResourceOptions(parent=self)
        instance = args.endpoint_mode == "instance"

        model_digest = _digest([args.pinned_model_data_url, args.serving_image_uri])
        self.model = aws.sagemaker.Model(
            f"{name}-pinned-model",
            name=f"{n.prefix}-pinned-{model_digest}",
            execution_role_arn=args.sagemaker_role_arn,
            primary_container={
                "image": args.serving_image_uri,
                "model_data_url": args.pinned_model_data_url,
                "environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": n.code_bundle_uri,
                    "SAGEMAKER_REGION": n.region,
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )

        variant: dict[str, Any] = {"variant_name": VARIANT_NAME, "model_name": self.model.name}
        config_extra: dict[str, Any] = {}
        if instance:
            variant.update(
                instance_type=args.endpoint_instance_type,
                initial_instance_count=args.endpoint_instance_count,
                initial_variant_weight=1.0,
            )
            # Serverless endpoints support neither data capture nor a volume key.
            config_extra = {
                "kms_key_arn": args.kms_key_arn,
                "data_capture_config": {
                    "enable_capture": True,
                    "initial_sampling_percentage": args.capture_sample_percent,
                    "destination_s3_uri": f"s3://{args.capture_bucket}",
                    "kms_key_id": args.kms_key_arn,
                    "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
                    "capture_content_type_header": {
                        "csv_content_types": ["text/csv"],
                        "json_content_types": ["application/json"],
                    },
                },
            }
        else:
            variant["serverless_config"] = {
                "memory_size_in_mb": args.serverless_memory_mb,
                "max_concurrency": args.serverless_max_concurrency,
            }
        spec = {
            "variant": {k: v for k, v in variant.items() if k != "model_name"},
            "url": args.pinned_model_data_url,
            "capture": args.capture_sample_percent if instance else None,
        }
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-pinned-config",
            name=f"{n.prefix}-pinned-{_digest(spec)}",
            production_variants=[variant],  # type: ignore[list-item]
            **config_extra,
            opts=child,
        )

        deployment: dict[str, Any] | None = None
        if instance:
            deployment = {
                "blue_green_update_policy": {
                    "traffic_routing_configuration": {
                        "type": "CANARY",
                        "canary_size": {"type": "CAPACITY_PERCENT", "value": args.canary_percent},
                        "wait_interval_in_seconds": 600,
                    },
                    "termination_wait_in_seconds": 300,
                    "maximum_execution_timeout_in_seconds": 3600,
                },
                "auto_rollback_configuration": {
                    "alarms": [{"alarm_name": alarm} for alarm in args.rollback_alarm_names]
                },
            }
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=n.endpoint,
            endpoint_config_name=self.endpoint_config.name,
            deployment_config=deployment,  # type: ignore[arg-type]
            opts=endpoint_options(self, args.depends_on),
        )

        if instance:
            self.scaling_target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                resource_id=self.endpoint.name.apply(
                    lambda e: f"endpoint/{e}/variant/{VARIANT_NAME}"
                ),
                min_capacity=args.autoscaling_min,
                max_capacity=args.autoscaling_max,
                opts=child,
            )
            self.scaling_policy = aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=f"{n.prefix}-invocations-per-instance",
                policy_type="TargetTrackingScaling",
                service_namespace=self.scaling_target.service_namespace,
                scalable_dimension=self.scaling_target.scalable_dimension,
                resource_id=self.scaling_target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": float(args.autoscaling_target),
                    "predefined_metric_specification": {
                        "predefined_metric_type": "SageMakerVariantInvocationsPerInstance"
                    },
                    "scale_in_cooldown": 300,
                    "scale_out_cooldown": 60,
                },
                opts=child,
            )
