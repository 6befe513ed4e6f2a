"""Suite-wide safety: no test may reach real AWS or open a plot window."""

from __future__ import annotations

import os

# Fake credentials before any boto3 client exists: a test that forgets its mock
# fails on moto or a refused connection instead of touching a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "MPLBACKEND": "Agg",
    "SAGEMAKER_VALIDATE_ROLE": "false",
    "POWERTOOLS_SERVICE_NAME": "mlops-tests",
}.items():
    os.environ[_key] = _value
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)
