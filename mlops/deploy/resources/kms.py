"""KMS: the stack's key (rotation on) and its alias."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, exists, handles
from mlops.deploy.shapes import policy_text, tag_list


@handles("aws:kms/key:Key")
def _kms_key(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    kms = ctx.client("kms")
    key_id = prev["id"] if prev else None
    if key_id is None or not exists(lambda: kms.describe_key(KeyId=key_id), "NotFoundException"):
        args: dict[str, Any] = {"Description": inputs.get("description", ""), "Tags": []}
        if inputs.get("policy"):
            args["Policy"] = policy_text(inputs["policy"])
        args["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tag_list(inputs)]
        key_id = kms.create_key(**args)["KeyMetadata"]["KeyId"]
    elif inputs.get("policy"):
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy_text(inputs["policy"]))
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    return key_id, {"arn": arn, "keyId": key_id}


@deletes("aws:kms/key:Key")
def _kms_key_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("kms").schedule_key_deletion(KeyId=physical_id, PendingWindowInDays=7)


@handles("aws:kms/alias:Alias")
def _kms_alias(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    kms = ctx.client("kms")
    name = inputs["name"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    if name in aliases:
        kms.update_alias(AliasName=name, TargetKeyId=inputs["targetKeyId"])
    else:
        kms.create_alias(AliasName=name, TargetKeyId=inputs["targetKeyId"])
    return name, {"arn": ctx.arn("kms", name)}


@deletes("aws:kms/alias:Alias")
def _kms_alias_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("kms").delete_alias(AliasName=physical_id)
