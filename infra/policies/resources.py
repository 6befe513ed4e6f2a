"""Resource policies of the buckets, the dead-letter queues and the alert topic: TLS only,
and only this stack's principals may write."""

from __future__ import annotations

from collections.abc import Sequence

from infra.naming import Names
from infra.policies.statements import Document, Statement, allow, document


def _deny_insecure_transport(service: str, resources: list[str]) -> Statement:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        # Same as "*" for AWS; the map form also parses in moto's logging check.
        "Principal": {"AWS": "*"},
        "Action": f"{service}:*",
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def _deny_other_senders(queue_arn: str, sender_arn: str) -> Statement:
    return {
        "Sid": "DenyOtherSenders",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sender_arn}},
    }


def bucket_policy(n: Names, bucket: str, log_source_buckets: Sequence[str] = ()) -> Document:
    """Deny non-TLS (and TLS < 1.2) requests; for the access-log bucket, let the S3 logging
    service write the logs of this stack's buckets only."""
    arn = n.bucket_arn(bucket)
    resources = [arn, f"{arn}/*"]
    statements: list[Statement] = [
        _deny_insecure_transport("s3", resources),
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": resources,
            # a number: s3:TlsVersion is a numeric key (a string is a type mismatch)
            "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
        },
    ]
    if log_source_buckets:
        statements.append(
            allow(
                "S3ServerAccessLogDelivery",
                ["s3:PutObject"],
                f"{arn}/*",  # a plain string: moto's logging check reads no list
                Principal={"Service": "logging.s3.amazonaws.com"},
                Condition={
                    "ArnLike": {"aws:SourceArn": [n.bucket_arn(b) for b in log_source_buckets]},
                    "StringEquals": {"aws:SourceAccount": n.account_id},
                },
            )
        )
    return document(*statements)


def dlq_policy(n: Names, kind: str, role_arn: str) -> Document:
    """A function's dead-letter queue: only that function's role may send to it (the Lambda
    service sends failed async events with the function's execution role)."""
    queue_arn = n.queue_arn(kind)
    return document(
        allow("FunctionRoleSends", ["sqs:SendMessage"], queue_arn, Principal={"AWS": role_arn}),
        _deny_other_senders(queue_arn, role_arn),
        _deny_insecure_transport("sqs", [queue_arn]),
    )


def training_jobs_queue_policy(n: Names, retrain_role_arn: str, host_role_arn: str) -> Document:
    """The EC2 training jobs' queue: only retrain queues jobs, only the host takes them."""
    queue_arn = n.training_jobs_queue_arn
    return document(
        allow(
            "RetrainQueuesJobs",
            ["sqs:SendMessage"],
            queue_arn,
            Principal={"AWS": retrain_role_arn},
        ),
        allow(
            "HostTakesJobs",
            ["sqs:ReceiveMessage", "sqs:DeleteMessage"],
            queue_arn,
            Principal={"AWS": host_role_arn},
        ),
        _deny_other_senders(queue_arn, retrain_role_arn),
        _deny_insecure_transport("sqs", [queue_arn]),
    )


def topic_policy(n: Names) -> Document:
    """Alert topic: the account and this stack's CloudWatch alarms may publish; TLS only."""
    topic_arn = n.topic_arn
    return document(
        allow(
            "AccountPublishes",
            ["sns:Publish", "sns:Subscribe", "sns:GetTopicAttributes"],
            topic_arn,
            Principal={"AWS": n.account_root_arn},
        ),
        allow(
            "CloudWatchAlarmsPublish",
            ["sns:Publish"],
            topic_arn,
            Principal={"Service": "cloudwatch.amazonaws.com"},
            Condition={
                "StringEquals": {"aws:SourceAccount": n.account_id},
                "ArnLike": {"aws:SourceArn": n.alarm_arn(f"{n.prefix}-*")},
            },
        ),
        _deny_insecure_transport("sns", [topic_arn]),
    )
