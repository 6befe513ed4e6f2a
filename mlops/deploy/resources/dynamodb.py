"""DynamoDB: the idempotency table (KMS, TTL, point-in-time recovery)."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles


@handles("aws:dynamodb/table:Table")
def _table(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ddb = ctx.client("dynamodb")
    name = inputs["name"]
    try:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    except ddb.exceptions.ResourceNotFoundException:
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in inputs["attributes"]
            ],
            "KeySchema": [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
            "BillingMode": inputs.get("billingMode", "PAY_PER_REQUEST"),
        }
        if inputs.get("rangeKey"):
            args["KeySchema"].append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
        sse = inputs.get("serverSideEncryption") or {}
        if sse.get("enabled"):
            args["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
            if sse.get("kmsKeyArn"):
                args["SSESpecification"]["KMSMasterKeyId"] = sse["kmsKeyArn"]
        arn = ddb.create_table(**args)["TableDescription"]["TableArn"]
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") != "ENABLED":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
    if (inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return name, {"arn": arn, "name": name}


@deletes("aws:dynamodb/table:Table")
def _table_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("dynamodb").delete_table(TableName=physical_id)
