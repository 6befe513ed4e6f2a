"""SNS: the alerts topic, its policy and subscriptions."""

from __future__ import annotations

from typing import Any

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import policy_text


@handles("aws:sns/topic:Topic")
def _topic(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    attributes = {}
    if inputs.get("kmsMasterKeyId"):
        attributes["KmsMasterKeyId"] = inputs["kmsMasterKeyId"]
    arn = ctx.client("sns").create_topic(Name=inputs["name"], Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn, "name": inputs["name"]}


@deletes("aws:sns/topic:Topic")
def _topic_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("sns").delete_topic(TopicArn=physical_id)


@handles("aws:sns/topicPolicy:TopicPolicy")
def _topic_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("sns").set_topic_attributes(
        TopicArn=inputs["arn"],
        AttributeName="Policy",
        AttributeValue=policy_text(inputs["policy"]),
    )
    return inputs["arn"], {}


@handles("aws:sns/topicSubscription:TopicSubscription")
def _subscription(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    arn = ctx.client("sns").subscribe(
        TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"]
    )["SubscriptionArn"]
    return arn, {"arn": arn}
