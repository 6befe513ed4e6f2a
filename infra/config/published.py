"""What AWS publishes that the stack uses by default: the SageMaker scikit-learn images,
the Powertools layer and the Amazon Linux AMI parameter."""

from __future__ import annotations

import re

from infra.config.settings import StackConfigError
from lambdas import constants as c

#: Region -> account of the AWS-published SageMaker scikit-learn images.
SKLEARN_IMAGE_ACCOUNTS: dict[str, str] = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-central-1": "492215442770",
    "ap-northeast-1": "354813040037",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
}
#: Same framework image tag as the control plane's fallback (lambdas/training.py).
SKLEARN_IMAGE_TAG = f"sagemaker-scikit-learn:{c.DEFAULT_SKLEARN_IMAGE_TAG}"

#: AWS-published Powertools for AWS Lambda (Python) v3 layer, pinned.
POWERTOOLS_LAYER_ACCOUNT = "017000801446"
POWERTOOLS_LAYER_VERSION = 27

#: SSM public parameter with the latest Amazon Linux 2023 AMI (EC2 training host).
AL2023_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"

#: An ECR image URI, by tag or by digest.
ECR_IMAGE_RE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*)(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$"
)


def default_image_uri(region: str) -> str:
    """Return the SageMaker scikit-learn framework image for ``region`` (StackConfigError if
    no account is known for the region)."""
    account = SKLEARN_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise StackConfigError(
            f"aws:region: no default scikit-learn image is known for {region!r} "
            f"(known: {', '.join(sorted(SKLEARN_IMAGE_ACCOUNTS))}); set mlops:trainingImageUri "
            "and mlops:servingImageUri explicitly"
        )
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{SKLEARN_IMAGE_TAG}"


def default_powertools_layer_arn(region: str) -> str:
    """Return the pinned AWS-published Powertools v3 layer for python3.11 in ``region``."""
    return (
        f"arn:aws:lambda:{region}:{POWERTOOLS_LAYER_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-python311-x86_64:{POWERTOOLS_LAYER_VERSION}"
    )


def parse_image_uri(uri: str) -> tuple[str, str, str]:
    """Split an ECR image URI into ``(account, region, repository)``."""
    match = ECR_IMAGE_RE.match(uri)
    if match is None:
        raise ValueError(f"not an ECR image URI: {uri!r}")
    return match["account"], match["region"], match["repo"]
