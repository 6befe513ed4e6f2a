"""What the stack's settings let the control plane ask SageMaker for: the conditions on
the create calls (instance types, run time, endpoint shape), and the services each
role may use the stack key through."""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Settings

#: The AWS services each principal uses the stack key through (``kms:ViaService``):
#: S3 objects, the table, the queues (DLQs, the training jobs), the topic, Lambda's
#: environment. Each role gets only the ones it calls.
KEY_SERVICES = {
    "retrain": ("s3", "dynamodb", "sqs", "lambda"),
    "promote": ("s3", "dynamodb", "sns", "sqs", "lambda"),
    "drift": ("s3", "sns", "sqs", "lambda"),
    "quality": ("s3", "sns", "sqs", "lambda"),
    "sagemaker": ("s3",),
    "ec2-training": ("s3", "sqs"),
}


@dataclass(frozen=True)
class Limits:
    """The create calls' bounds. Defaults are the project's own (tests); the program
    passes :meth:`from_settings`."""

    training_instance_type: str = "ml.m5.large"
    training_max_seconds: int = 3600
    endpoint_mode: str = "serverless"
    endpoint_instance_type: str = "ml.m5.large"
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    rollout_mode: str = "direct"  # shadow / ab: promote also reads the trial's evidence

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            training_instance_type=s.training_instance_type,
            training_max_seconds=s.training_max_seconds,
            endpoint_mode=s.endpoint_mode,
            endpoint_instance_type=s.endpoint_instance_type,
            serverless_memory_mb=s.serverless_memory_mb,
            serverless_max_concurrency=s.serverless_max_concurrency,
            rollout_mode=s.rollout_mode,
        )


DEFAULT_LIMITS = Limits()


def via(region: str, services: tuple[str, ...]) -> dict[str, dict[str, list[str]]]:
    """The ``kms:ViaService`` condition for ``services`` in ``region``."""
    return {"StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}}
