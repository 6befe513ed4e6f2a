"""The endpoint's CloudWatch metrics, per variant, as SageMaker publishes them.

Namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``:
``Invocations`` (every request the variant's model got), ``Invocation4XXErrors`` /
``Invocation5XXErrors`` (the model's answer), ``ModelLatency`` (microseconds, answered
requests). Written straight into moto's CloudWatch backend (in process: no request per
invocation), where ``GetMetricStatistics`` and the stack's alarms' metrics read them.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

NAMESPACE = "AWS/SageMaker"


def publish(
    account: str, region: str, endpoint: str, variant: str, status: int, latency_us: float | None
) -> None:
    """One invocation of ``variant`` that the model answered with HTTP ``status``."""
    from moto.cloudwatch.models import cloudwatch_backends

    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "VariantName", "Value": variant},
    ]

    def datum(name: str, value: float, unit: str) -> dict[str, object]:
        return {
            "MetricName": name,
            "Dimensions": dimensions,
            "Value": value,
            "Unit": unit,  # no Timestamp: moto stamps it now, in the form it compares
        }

    data = [
        datum("Invocations", 1, "Count"),
        datum("Invocation4XXErrors", 1 if 400 <= status < 500 else 0, "Count"),
        datum("Invocation5XXErrors", 1 if status >= 500 else 0, "Count"),
    ]
    if latency_us is not None:
        data.append(datum("ModelLatency", latency_us, "Microseconds"))
    try:
        cloudwatch_backends[account][region].put_metric_data(NAMESPACE, data)
    except Exception:  # metrics never fail an invocation
        logger.exception("endpoint %s: metrics not published", endpoint)
