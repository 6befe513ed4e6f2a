"""What serves is exactly what was gated: the approved archive, copied where only promote writes.

promote reads a job's ``model.tar.gz`` once, into memory, and gates the
``evaluation.json`` of those bytes. On approval it writes those same bytes to
``s3://<artifacts>/models/<job>/model.tar.gz``, a prefix no training or serving role may
write, and records their SHA-256 (and the ``model.joblib`` digest training recorded) in
the package and the serving Model's environment. A training job or the EC2 host can
still rewrite ``training/<job>/`` afterwards; nothing serves from there.

The key is per job, not per package version: the package records the URL when it is
created, before SageMaker assigns its version.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_code, parse_s3_uri, sse_args, tar_members
from lambdas.config import Config
from lambdas.errors import ControlPlaneError

MAX_ARCHIVE_BYTES = 512 * 1024 * 1024  # promote holds the archive in memory once


class ReleaseError(ControlPlaneError):
    """The archive cannot be read, or its gated copy exists with other bytes."""


@dataclass(frozen=True)
class Archive:
    """One job's ``model.tar.gz``, as read once from S3."""

    url: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def members(self, *names: str) -> dict[str, bytes]:
        return tar_members(io.BytesIO(self.data), names)


def load_archive(clients: Clients, url: str) -> Archive:
    """The archive at ``url``; raises :class:`ReleaseError` when it is too large."""
    bucket, key = parse_s3_uri(url)
    response = clients.s3.get_object(Bucket=bucket, Key=key)
    size = int(response.get("ContentLength") or 0)
    if size > MAX_ARCHIVE_BYTES:
        response["Body"].close()
        raise ReleaseError(f"{url} is {size} bytes; at most {MAX_ARCHIVE_BYTES} are gated")
    return Archive(url, response["Body"].read())


def released_uri(config: Config, job_name: str) -> str:
    return f"s3://{config.artifacts_bucket}/{c.MODELS_PREFIX}{job_name}/model.tar.gz"


def release(config: Config, clients: Clients, job_name: str, archive: Archive) -> str:
    """Write ``archive`` to the job's ``models/`` key once; returns its URI.

    A key already holding the same bytes (a repeated promotion) is kept; one holding other
    bytes is never overwritten: :class:`ReleaseError`.
    """
    uri = released_uri(config, job_name)
    bucket, key = parse_s3_uri(uri)
    try:
        existing = clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) not in {"NoSuchKey", "404", "NotFound"}:
            raise
    else:
        if hashlib.sha256(existing).hexdigest() != archive.sha256:
            raise ReleaseError(f"{uri} already holds another archive; it is never overwritten")
        return uri
    clients.s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=archive.data,
        ContentType="application/gzip",
        **sse_args(config.kms_key_arn),
    )
    return uri


def serving_digests(archive: Archive, evaluation: dict[str, Any]) -> dict[str, str]:
    """The serving Model's digest variables for ``archive`` and its evaluation."""
    digests = {c.MODEL_ARCHIVE_SHA256_ENV: archive.sha256}
    model_sha = (evaluation.get("model") or {}).get("sha256")
    if isinstance(model_sha, str) and model_sha:
        digests[c.MODEL_SHA256_ENV] = model_sha
    return digests
