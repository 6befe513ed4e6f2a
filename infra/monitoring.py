"""Monitoring: the alert topic and every alarm of the stack."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.naming import FUNCTIONS, VARIANT_NAME, Names
from lambdas import constants as c


@dataclass
class MonitoringArgs:
    names: Names
    kms_key_arn: pulumi.Input[str]
    drift_threshold: float
    drift_windows: int
    metric_namespace: str
    quality_tolerance: float
    quality_windows: int
    endpoint_latency_p99_ms: int
    alert_email: str | None = None


class Monitoring(pulumi.ComponentResource):
    """SNS alert topic (KMS) and alarms on the endpoint (5XX, p99 latency: also the
    blue/green rollback alarms), each Lambda's errors and DLQ depth, drift and quality.

    Alarms are created by their deterministic names, before the endpoint and the
    functions exist; until then they sit in OK (missing data is not breaching).
    """

    alarms: dict[str, aws.cloudwatch.MetricAlarm]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:Monitoring", name, None, opts)
        n = self._names = args.names
        child = pulumi.ResourceOptions(parent=self)

        self.topic = aws.sns.Topic(
            f"{name}-alerts",
            name=n.topic,
            kms_master_key_id=args.kms_key_arn,
            opts=child,
        )
        self.topic_policy = aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=self.topic.arn,
            policy=json.dumps(policies.topic_policy(n)),
            opts=child,
        )
        if args.alert_email:
            aws.sns.TopicSubscription(
                f"{name}-alerts-email",
                topic=self.topic.arn,
                protocol="email",
                endpoint=args.alert_email,
                opts=child,
            )

        self.alarms = {}
        endpoint = {"EndpointName": n.endpoint, "VariantName": VARIANT_NAME}
        self._alarm(
            name,
            "endpoint-5xx",
            description="Endpoint returns 5XX errors (also rolls back a blue/green deployment)",
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=endpoint,
            statistic="Sum",
            period=60,
            evaluation_periods=2,
            threshold=0,
        )
        self._alarm(
            name,
            "endpoint-latency",
            description="Endpoint p99 model latency too high (also rolls back a deployment)",
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",  # microseconds
            dimensions=endpoint,
            extended_statistic="p99",
            period=60,
            evaluation_periods=3,
            threshold=args.endpoint_latency_p99_ms * 1000,
        )
        for kind in FUNCTIONS:
            self._alarm(
                name,
                f"{kind}-errors",
                description=f"The {kind} function failed",
                namespace="AWS/Lambda",
                metric_name="Errors",
                dimensions={"FunctionName": n.function(kind)},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=0,
            )
            self._alarm(
                name,
                f"{kind}-dlq-depth",
                description=f"Events for {kind} landed in its dead-letter queue",
                namespace="AWS/SQS",
                metric_name="ApproximateNumberOfMessagesVisible",
                dimensions={"QueueName": n.dlq(kind)},
                statistic="Maximum",
                period=300,
                evaluation_periods=1,
                threshold=0,
            )
        self._alarm(
            name,
            "drift",
            description=(
                "Feature drift (max PSI) above the threshold; its ALARM state starts retraining"
            ),
            namespace=args.metric_namespace,
            metric_name=c.DRIFT_METRIC_NAME,
            dimensions={"Model": n.job_prefix, "Feature": "_max"},
            statistic="Maximum",
            period=3600,
            evaluation_periods=args.drift_windows,
            threshold=args.drift_threshold,
        )
        self._alarm(
            name,
            "quality",
            description=(
                "Live primary metric below the champion's test value by more than the "
                "tolerance, windows in a row; its ALARM state starts retraining"
            ),
            namespace=args.metric_namespace,
            metric_name=c.QUALITY_SHORTFALL_METRIC,
            dimensions={"Model": n.job_prefix},
            statistic="Maximum",
            period=3600,
            evaluation_periods=args.quality_windows,
            threshold=args.quality_tolerance,
        )
        self.rollback_alarm_names = list(n.rollback_alarms)
        self.drift_alarm_name = n.drift_alarm

        self.register_outputs(
            {
                "alertTopicArn": self.topic.arn,
                "alarmNames": [alarm.name for alarm in self.alarms.values()],
            }
        )

    def _alarm(
        self,
        name: str,
        kind: str,
        *,
        description: str,
        namespace: str,
        metric_name: str,
        dimensions: dict[str, str],
        period: int,
        evaluation_periods: int,
        threshold: float,
        statistic: str | None = None,
        extended_statistic: str | None = None,
    ) -> None:
        self.alarms[kind] = aws.cloudwatch.MetricAlarm(
            f"{name}-{kind}",
            name=self._names.alarm(kind),
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            statistic=statistic,
            extended_statistic=extended_statistic,
            period=period,
            evaluation_periods=evaluation_periods,
            threshold=threshold,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[self.topic.arn],
            opts=pulumi.ResourceOptions(parent=self),
        )
