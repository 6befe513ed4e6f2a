"""IAM: roles with inline and managed policies, attachments, instance profiles."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import ACCOUNT_ID, Ctx, deletes, handles
from mlops.deploy.shapes import policy_text, tag_list


@handles("aws:iam/role:Role")
def _role(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    iam = ctx.client("iam")
    name = inputs["name"]
    assume = policy_text(inputs["assumeRolePolicy"])
    try:
        role = iam.get_role(RoleName=name)["Role"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=assume)
    except iam.exceptions.NoSuchEntityException:
        args = {"RoleName": name, "AssumeRolePolicyDocument": assume, "Tags": tag_list(inputs)}
        if inputs.get("description"):
            args["Description"] = inputs["description"]
        role = iam.create_role(**args)["Role"]
    return name, {"arn": role["Arn"], "name": name, "uniqueId": role["RoleId"]}


@deletes("aws:iam/role:Role")
def _role_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for name in iam.list_role_policies(RoleName=physical_id)["PolicyNames"]:
        iam.delete_role_policy(RoleName=physical_id, PolicyName=name)
    for att in iam.list_attached_role_policies(RoleName=physical_id)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=physical_id, PolicyArn=att["PolicyArn"])
    iam.delete_role(RoleName=physical_id)


@handles("aws:iam/rolePolicy:RolePolicy")
def _role_policy(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ctx.client("iam").put_role_policy(
        RoleName=inputs["role"],
        PolicyName=inputs["name"],
        PolicyDocument=policy_text(inputs["policy"]),
    )
    return f"{inputs['role']}:{inputs['name']}", {}


@deletes("aws:iam/rolePolicy:RolePolicy")
def _role_policy_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    role, name = physical_id.split(":", 1)
    ctx.client("iam").delete_role_policy(RoleName=role, PolicyName=name)


@handles("aws:iam/policy:Policy")
def _managed_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    iam = ctx.client("iam")
    arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/{inputs['name']}"
    document = policy_text(inputs["policy"])
    try:
        iam.get_policy(PolicyArn=arn)
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        for old in versions:
            if not old["IsDefaultVersion"] and len(versions) >= 5:
                iam.delete_policy_version(PolicyArn=arn, VersionId=old["VersionId"])
                break
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    except iam.exceptions.NoSuchEntityException:
        iam.create_policy(PolicyName=inputs["name"], PolicyDocument=document)
    return arn, {"arn": arn, "name": inputs["name"]}


@deletes("aws:iam/policy:Policy")
def _managed_policy_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("iam").delete_policy(PolicyArn=physical_id)


@handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ctx.client("iam").attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
    return f"{inputs['role']}|{inputs['policyArn']}", {}


@deletes("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    role, arn = physical_id.split("|", 1)
    ctx.client("iam").detach_role_policy(RoleName=role, PolicyArn=arn)


@handles("aws:iam/instanceProfile:InstanceProfile")
def _instance_profile(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    iam = ctx.client("iam")
    name = inputs["name"]
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if inputs.get("role") and inputs["role"] not in {r["RoleName"] for r in profile["Roles"]}:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=inputs["role"])
    return name, {"arn": profile["Arn"], "name": name}


@deletes("aws:iam/instanceProfile:InstanceProfile")
def _instance_profile_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName=physical_id)["InstanceProfile"]
    for role in profile["Roles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=physical_id, RoleName=role["RoleName"]
        )
    iam.delete_instance_profile(InstanceProfileName=physical_id)


@handles("aws:iam/serviceLinkedRole:ServiceLinkedRole")
def _service_linked_role(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    iam = ctx.client("iam")
    if prev is not None:  # AWS has no update: it exists as recorded
        return prev["id"], prev["outputs"]
    args = {"AWSServiceName": inputs["awsServiceName"]}
    for key, arg in (("customSuffix", "CustomSuffix"), ("description", "Description")):
        if inputs.get(key):
            args[arg] = inputs[key]
    role = iam.create_service_linked_role(**args)["Role"]
    outputs = {"arn": role["Arn"], "name": role["RoleName"], "path": role["Path"]}
    return role["Arn"], outputs


@deletes("aws:iam/serviceLinkedRole:ServiceLinkedRole")
def _service_linked_role_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("iam").delete_service_linked_role(RoleName=outputs["name"])
