"""Registry: the SageMaker model package group the promote function registers into."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra.naming import Names


@dataclass
class RegistryArgs:
    names: Names


class Registry(pulumi.ComponentResource):
    """One model package group per stack; packages are Approved or Rejected by promote."""

    def __init__(self, name: str, args: RegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:registry:Registry", name, None, opts)
        n = args.names
        self.group = aws.sagemaker.ModelPackageGroup(
            f"{name}-group",
            model_package_group_name=n.model_package_group,
            model_package_group_description=(
                f"{n.model} ({n.stack}): every trained candidate, Approved or Rejected by the "
                "promotion gate"
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"modelPackageGroupName": self.group.model_package_group_name})
