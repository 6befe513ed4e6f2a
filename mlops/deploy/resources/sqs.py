"""SQS: the dead-letter queues and their policies."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import policy_text


@handles("aws:sqs/queue:Queue")
def _queue(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sqs = ctx.client("sqs")
    attributes = {
        "KmsMasterKeyId": inputs.get("kmsMasterKeyId"),
        "MessageRetentionPeriod": inputs.get("messageRetentionSeconds"),
        "SqsManagedSseEnabled": inputs.get("sqsManagedSseEnabled"),
    }
    attributes_str = {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in attributes.items()
        if v is not None
    }
    url = sqs.create_queue(QueueName=inputs["name"], Attributes=attributes_str)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, {"arn": arn, "url": url, "name": inputs["name"]}


@deletes("aws:sqs/queue:Queue")
def _queue_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("sqs").delete_queue(QueueUrl=physical_id)


@handles("aws:sqs/queuePolicy:QueuePolicy")
def _queue_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=inputs["queueUrl"], Attributes={"Policy": policy_text(inputs["policy"])}
    )
    return inputs["queueUrl"], {}
