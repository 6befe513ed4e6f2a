"""EventBridge: rules (schedules and patterns) and their targets."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import pascal


@handles("aws:cloudwatch/eventRule:EventRule")
def _rule(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    args: dict[str, Any] = {"Name": inputs["name"], "State": inputs.get("state", "ENABLED")}
    if inputs.get("isEnabled") is False:
        args["State"] = "DISABLED"
    for key, api in (
        ("scheduleExpression", "ScheduleExpression"),
        ("eventPattern", "EventPattern"),
        ("description", "Description"),
        ("eventBusName", "EventBusName"),
    ):
        if inputs.get(key):
            args[api] = inputs[key]
    arn = ctx.client("events").put_rule(**args)["RuleArn"]
    return inputs["name"], {"arn": arn, "name": inputs["name"]}


@deletes("aws:cloudwatch/eventRule:EventRule")
def _rule_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    events = ctx.client("events")
    targets = events.list_targets_by_rule(Rule=physical_id)["Targets"]
    if targets:
        events.remove_targets(Rule=physical_id, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=physical_id)


@handles("aws:cloudwatch/eventTarget:EventTarget")
def _target(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    target_id = inputs.get("targetId") or "target"
    target: dict[str, Any] = {"Id": target_id, "Arn": inputs["arn"]}
    if inputs.get("input"):
        target["Input"] = inputs["input"]
    if inputs.get("deadLetterConfig"):
        target["DeadLetterConfig"] = {"Arn": inputs["deadLetterConfig"]["arn"]}
    if inputs.get("retryPolicy"):
        target["RetryPolicy"] = pascal(inputs["retryPolicy"])
    ctx.client("events").put_targets(Rule=inputs["rule"], Targets=[target])
    return f"{inputs['rule']}-{target_id}", {}
