"""Small helpers shared by the runner, the router and the endpoint host.

S3 URIs are parsed by :func:`lambdas.aws.parse_s3_uri`, the one parser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambdas.aws import client
from mlops.localcloud.state import FAKE_KEYS


def join_s3(uri: str, *parts: str) -> str:
    out = uri.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def moto_now() -> datetime:
    """Now in naive UTC: moto's models keep naive UTC datetimes (lambdas' clock is aware)."""
    return datetime.now(UTC).replace(tzinfo=None)


def iso_z(value: Any = None) -> str:
    """An EventBridge-style timestamp (``2024-01-31T12:00:00Z``) from a datetime/epoch."""
    if value is None:
        dt = datetime.now(UTC)
    elif isinstance(value, int | float):
        dt = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    else:
        return str(value)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(value: datetime | None) -> int | None:
    if value is None:
        return None
    dt = value if value.tzinfo else value.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


class ClientFactory:
    """boto3 clients bound to the local moto server (fake credentials), from the one cache."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url

    def __call__(self, service: str, region: str) -> Any:
        return client(
            service,
            region,
            self.endpoint_url,
            credentials=FAKE_KEYS,
            max_attempts=2,
            connect_timeout=5,
        )
