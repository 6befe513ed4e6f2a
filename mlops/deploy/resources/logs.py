"""CloudWatch Logs: log groups (KMS, retention)."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles


@handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    logs = ctx.client("logs")
    name = inputs["name"]
    found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if not any(g["logGroupName"] == name for g in found):
        args = {"logGroupName": name}
        if inputs.get("kmsKeyId"):
            args["kmsKeyId"] = inputs["kmsKeyId"]
        logs.create_log_group(**args)
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(inputs["retentionInDays"]))
    return name, {"arn": ctx.arn("logs", f"log-group:{name}"), "name": name}


@deletes("aws:cloudwatch/logGroup:LogGroup")
def _log_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("logs").delete_log_group(logGroupName=physical_id)
