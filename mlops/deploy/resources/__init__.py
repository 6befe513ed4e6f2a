"""One module per AWS service, each registering its resource types' handlers.

Importing this package registers them all (`mlops.deploy.mocks.HANDLERS`).
"""

from mlops.deploy.resources import (
    autoscaling,
    cloudwatch,
    dynamodb,
    ec2,
    events,
    iam,
    kms,
    lambda_,
    logs,
    s3,
    sagemaker,
    sns,
    sqs,
)

__all__ = [
    "autoscaling",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "events",
    "iam",
    "kms",
    "lambda_",
    "logs",
    "s3",
    "sagemaker",
    "sns",
    "sqs",
]
