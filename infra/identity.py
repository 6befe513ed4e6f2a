"""Identity: one role per principal (SageMaker, each Lambda, the EC2 training host)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.naming import FUNCTIONS, Names

SERVICES = {
    "sagemaker": "sagemaker.amazonaws.com",
    "retrain": "lambda.amazonaws.com",
    "promote": "lambda.amazonaws.com",
    "drift": "lambda.amazonaws.com",
    "quality": "lambda.amazonaws.com",
    "ec2-training": "ec2.amazonaws.com",
}


def _trust(n: Names, service: str) -> dict[str, object]:
    """The role's trust policy, with the confused-deputy guard where the service sets it."""
    if service == "sagemaker.amazonaws.com":
        return policies.assume_role_policy(
            service,
            source_account=n.account_id,
            source_arn=n.arn("sagemaker", "*"),
        )
    if service == "lambda.amazonaws.com":
        return policies.assume_role_policy(service, source_account=n.account_id)
    return policies.assume_role_policy(service)


@dataclass
class IdentityArgs:
    names: Names
    kms_key_arn: pulumi.Input[str]
    image_uris: list[str]
    metric_namespace: str
    pinned_model_data_urls: list[str] = field(default_factory=list)
    limits: policies.Limits = field(default_factory=policies.Limits)


class Identity(pulumi.ComponentResource):
    """Roles with inline policies from :mod:`infra.policies` (no managed policies at all),
    and the EC2 training host's instance profile."""

    roles: dict[str, aws.iam.Role]
    role_policies: dict[str, aws.iam.RolePolicy]

    def __init__(self, name: str, args: IdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:identity:Identity", name, None, opts)
        n = args.names
        child = pulumi.ResourceOptions(parent=self)

        self.roles = {
            kind: aws.iam.Role(
                f"{name}-{kind}",
                name=n.role(kind),
                description=f"{n.prefix}: {kind}",
                assume_role_policy=json.dumps(_trust(n, service)),
                max_session_duration=3600,
                opts=child,
            )
            for kind, service in SERVICES.items()
        }
        key = pulumi.Output.from_input(args.kms_key_arn)
        sagemaker_arn = self.roles["sagemaker"].arn

        documents: dict[str, pulumi.Output[str]] = {
            "sagemaker": key.apply(
                lambda k: json.dumps(
                    policies.sagemaker_execution_policy(
                        n,
                        kms_key_arn=k,
                        image_uris=args.image_uris,
                        metric_namespace=args.metric_namespace,
                        extra_model_data_urls=args.pinned_model_data_urls,
                    )
                )
            ),
            "ec2-training": key.apply(
                lambda k: json.dumps(
                    policies.ec2_training_policy(
                        n,
                        kms_key_arn=k,
                        image_uris=args.image_uris[:1],
                        metric_namespace=args.metric_namespace,
                    )
                )
            ),
            "retrain": pulumi.Output.all(key, sagemaker_arn).apply(
                lambda a: json.dumps(
                    policies.retrain_policy(
                        n, kms_key_arn=a[0], sagemaker_role_arn=a[1], limits=args.limits
                    )
                )
            ),
            "promote": pulumi.Output.all(key, sagemaker_arn).apply(
                lambda a: json.dumps(
                    policies.promote_policy(
                        n, kms_key_arn=a[0], sagemaker_role_arn=a[1], limits=args.limits
                    )
                )
            ),
            "drift": key.apply(
                lambda k: json.dumps(
                    policies.drift_policy(
                        n,
                        kms_key_arn=k,
                        metric_namespace=args.metric_namespace,
                        extra_model_data_urls=args.pinned_model_data_urls,
                    )
                )
            ),
            "quality": key.apply(
                lambda k: json.dumps(
                    policies.quality_policy(
                        n,
                        kms_key_arn=k,
                        metric_namespace=args.metric_namespace,
                        extra_model_data_urls=args.pinned_model_data_urls,
                    )
                )
            ),
        }
        self.role_policies = {
            kind: aws.iam.RolePolicy(
                f"{name}-{kind}-policy",
                name=f"{n.prefix}-{kind}",
                role=self.roles[kind].id,
                policy=document,
                opts=child,
            )
            for kind, document in documents.items()
        }
        self.instance_profile = aws.iam.InstanceProfile(
            f"{name}-ec2-training-profile",
            name=n.role("ec2-training"),
            role=self.roles["ec2-training"].name,
            opts=child,
        )

        self.register_outputs(
            {
                **{f"{kind}RoleArn": role.arn for kind, role in self.roles.items()},
                "instanceProfileArn": self.instance_profile.arn,
            }
        )

    def function_role(self, kind: str) -> aws.iam.Role:
        if kind not in FUNCTIONS:
            raise KeyError(kind)
        return self.roles[kind]
