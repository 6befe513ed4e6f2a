"""CloudWatch: metric alarms."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import pascal


@handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    name = inputs["name"]
    args: dict[str, Any] = {
        "AlarmName": name,
        "ComparisonOperator": inputs["comparisonOperator"],
        "EvaluationPeriods": int(inputs["evaluationPeriods"]),
        "ActionsEnabled": inputs.get("actionsEnabled", True),
    }
    optional = {
        "metricName": "MetricName",
        "namespace": "Namespace",
        "statistic": "Statistic",
        "alarmDescription": "AlarmDescription",
        "treatMissingData": "TreatMissingData",
        "unit": "Unit",
        "extendedStatistic": "ExtendedStatistic",
    }
    for key, api in optional.items():
        if inputs.get(key) is not None:
            args[api] = inputs[key]
    for key, api in (("period", "Period"), ("datapointsToAlarm", "DatapointsToAlarm")):
        if inputs.get(key) is not None:
            args[api] = int(inputs[key])
    if inputs.get("threshold") is not None:
        args["Threshold"] = float(inputs["threshold"])
    for key, api in (
        ("alarmActions", "AlarmActions"),
        ("okActions", "OKActions"),
        ("insufficientDataActions", "InsufficientDataActions"),
    ):
        if inputs.get(key):
            args[api] = list(inputs[key])
    if inputs.get("dimensions"):
        args["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in inputs["dimensions"].items()]
    if inputs.get("metricQueries"):
        args["Metrics"] = pascal(inputs["metricQueries"], {"id": "Id"})
    ctx.client("cloudwatch").put_metric_alarm(**args)
    return name, {"arn": ctx.arn("cloudwatch", f"alarm:{name}"), "name": name}


@deletes("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])
