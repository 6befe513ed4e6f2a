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
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from infra.naming import Names
from lambdas import constants as c
from lambdas import hosting

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


def hosting_settings(args: ServingArgs) -> hosting.Hosting:
    """The settings of :mod:`lambdas.hosting`'s builders, as the promote function reads them."""
    return hosting.Hosting(
        mode=args.endpoint_mode,
        serverless_memory_mb=args.serverless_memory_mb,
        serverless_max_concurrency=args.serverless_max_concurrency,
        instance_type=args.endpoint_instance_type,
        instance_count=args.endpoint_instance_count,
        capture=args.endpoint_mode == "instance",  # the promote function's "auto"
        capture_sample_percent=args.capture_sample_percent,
        canary_percent=args.canary_percent,
        rollback_alarm_names=tuple(args.rollback_alarm_names),
        autoscaling_min=args.autoscaling_min,
        autoscaling_max=args.autoscaling_max,
        autoscaling_target=float(args.autoscaling_target),
    )


# boto3 names whose pulumi_aws argument is not their snake_case
_PULUMI_NAMES = {"KmsKeyId": "kms_key_arn"}  # an endpoint config's volume key


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def pulumi_args(request: dict[str, Any]) -> dict[str, Any]:
    """A boto3 request of :mod:`lambdas.hosting` as pulumi_aws arguments (snake_case keys).

    Top-level keys may be renamed (:data:`_PULUMI_NAMES`); nested keys are snake_case.
    """

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {_snake(k): convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return {_PULUMI_NAMES.get(k, _snake(k)): convert(v) for k, v in request.items()}


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

        settings = hosting_settings(args)
        config = pulumi_args(
            hosting.endpoint_config(
                settings,
                self.model.name,
                kms_key_arn=args.kms_key_arn,
                capture_bucket=args.capture_bucket,
            )
        )
        (variant,) = config["production_variants"]
        spec = {
            "variant": {k: v for k, v in variant.items() if k != "model_name"},
            "url": args.pinned_model_data_url,
            "capture": args.capture_sample_percent if instance else None,
        }
        self.endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-pinned-config",
            name=f"{n.prefix}-pinned-{_digest(spec)}",
            **config,
            opts=child,
        )

        deployment = hosting.deployment_config(settings)
        self.endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=n.endpoint,
            endpoint_config_name=self.endpoint_config.name,
            deployment_config=pulumi_args(deployment) if deployment else None,  # type: ignore[arg-type]
            opts=endpoint_options(self, args.depends_on),
        )

        if instance:
            self.scaling_target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                **pulumi_args(hosting.scaling_target(settings, n.endpoint)),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.endpoint]),
            )
            policy = pulumi_args(hosting.scaling_policy(settings, n.endpoint))
            self.scaling_policy = aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=policy.pop("policy_name"),
                **policy,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.scaling_target]),
            )
