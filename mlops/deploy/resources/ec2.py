"""EC2: the training hosts' security group, launch template and Auto Scaling group."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import ec2_bools, pascal


@handles("aws:ec2/securityGroup:SecurityGroup")
def _security_group(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ec2 = ctx.client("ec2")
    name = inputs["name"]
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    if found["SecurityGroups"]:
        group_id = found["SecurityGroups"][0]["GroupId"]
    else:
        args: dict[str, Any] = {"GroupName": name, "Description": inputs.get("description", name)}
        if inputs.get("vpcId"):
            args["VpcId"] = inputs["vpcId"]
        group_id = ec2.create_security_group(**args)["GroupId"]
    return group_id, {"arn": ctx.arn("ec2", f"security-group/{group_id}"), "name": name}


@deletes("aws:ec2/securityGroup:SecurityGroup")
def _security_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("ec2").delete_security_group(GroupId=physical_id)


@handles("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ec2 = ctx.client("ec2")
    name = inputs["name"]
    skip = {"name", "description", "tags", "updateDefaultVersion", "tagSpecifications"}
    data = pascal({k: v for k, v in inputs.items() if k not in skip})
    for interface in data.get("NetworkInterfaces", []):
        if "SecurityGroups" in interface:
            interface["Groups"] = interface.pop("SecurityGroups")
    data = ec2_bools(data)
    found = ec2.describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [name]}]
    )
    if found["LaunchTemplates"]:
        template_id = found["LaunchTemplates"][0]["LaunchTemplateId"]
        version = ec2.create_launch_template_version(
            LaunchTemplateId=template_id, LaunchTemplateData=data
        )["LaunchTemplateVersion"]["VersionNumber"]
        ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
    else:
        template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        version = template["LaunchTemplate"]["LatestVersionNumber"]
    return template_id, {
        "arn": ctx.arn("ec2", f"launch-template/{template_id}"),
        "latestVersion": version,
        "defaultVersion": version,
    }


@deletes("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("ec2").delete_launch_template(LaunchTemplateId=physical_id)


@handles("aws:autoscaling/group:Group")
def _hosts_group(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    autoscaling = ctx.client("autoscaling")
    name = inputs["name"]
    template = inputs["launchTemplate"]
    args: dict[str, Any] = {
        "AutoScalingGroupName": name,
        "LaunchTemplate": {"LaunchTemplateId": template["id"], "Version": template["version"]},
        "MinSize": int(inputs["minSize"]),
        "MaxSize": int(inputs["maxSize"]),
        "AvailabilityZones": list(inputs["availabilityZones"]),
        "HealthCheckType": inputs.get("healthCheckType", "EC2"),
    }
    if inputs.get("serviceLinkedRoleArn"):
        args["ServiceLinkedRoleARN"] = inputs["serviceLinkedRoleArn"]
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    if found["AutoScalingGroups"]:
        autoscaling.update_auto_scaling_group(**args)  # desired capacity: left as it is
    else:
        autoscaling.create_auto_scaling_group(
            **args, DesiredCapacity=int(inputs.get("desiredCapacity", 0))
        )
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"
    ]
    return name, {"arn": group["AutoScalingGroupARN"], "name": name}


@deletes("aws:autoscaling/group:Group")
def _hosts_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("autoscaling").delete_auto_scaling_group(
        AutoScalingGroupName=physical_id, ForceDelete=True
    )
