"""What serves is exactly what was gated: the approved archive, copied where only promote writes.

promote reads a job's ``model.tar.gz`` once, into a spooled file, and gates the
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
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_code, parse_s3_uri, sse_args, tar_members
from lambdas.config import Config
from lambdas.errors import ControlPlaneError

# Lambda's /tmp is 512 MB by default and its memory 256 MB here: the archive is spooled
# (memory up to 32 MiB, then /tmp) and hashed while it is read, never held whole.
MAX_ARCHIVE_BYTES = 400 * 1024 * 1024
_SPOOL_BYTES = 32 * 1024 * 1024
_CHUNK = 1024 * 1024


class ReleaseError(ControlPlaneError):
    """The archive cannot be read, or its gated copy exists with other bytes."""


@dataclass(frozen=True)
class Archive:
    """One job's ``model.tar.gz``, read once from S3 into a spooled file, and its SHA-256."""

    url: str
    file: IO[bytes]
    sha256: str

    @property
    def data(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()  # a spooled file past 32 MiB lives in /tmp until closed

    def members(self, *names: str) -> dict[str, bytes]:
        self.file.seek(0)
        return tar_members(self.file, names)


def _spool(body: Any, limit: int, url: str) -> tuple[IO[bytes], str]:
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES)  # noqa: SIM115
    digest, size = hashlib.sha256(), 0
    try:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            size += len(chunk)
            if size > limit:
                raise ReleaseError(f"{url} is over {limit} bytes; at most that is gated")
            digest.update(chunk)
            spooled.write(chunk)
    except BaseException:
        spooled.close()
        raise
    finally:
        body.close()
    return spooled, digest.hexdigest()


def load_archive(clients: Clients, url: str) -> Archive:
    """The archive at ``url``; raises :class:`ReleaseError` when it is too large."""
    bucket, key = parse_s3_uri(url)
    body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"]
    spooled, sha256 = _spool(body, MAX_ARCHIVE_BYTES, url)
    return Archive(url, spooled, sha256)


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
        existing = clients.s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if error_code(exc) not in {"NoSuchKey", "404", "NotFound"}:
            raise
    else:
        copy, sha256 = _spool(existing, MAX_ARCHIVE_BYTES, uri)
        copy.close()
        if sha256 != archive.sha256:
            raise ReleaseError(f"{uri} already holds another archive; it is never overwritten")
        return uri
    archive.file.seek(0)
    clients.s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=archive.file,
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
