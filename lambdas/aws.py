"""AWS access for the handlers: boto3 clients, S3 documents and archives, alerts, errors.

Lambda runtime only: the standard library and boto3. No client is created at import
time: tests start moto, and the local cloud sets its endpoint, before any client exists.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import re
import tarfile
import threading
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from lambdas.config import Config, JsonDict

logger = logging.getLogger(__name__)


# --- clients ----------------------------------------------------------------


_CACHE: dict[tuple[Any, ...], Any] = {}
_CACHE_LOCK = threading.Lock()


def client(
    service: str,
    region: str,
    endpoint_url: str | None = None,
    *,
    credentials: tuple[str, str] | None = None,
    max_attempts: int | None = None,
    connect_timeout: int | None = None,
) -> Any:
    """A boto3 client, reused while its endpoint stays the same: the one client cache.

    Creating a client costs ~50 ms; a warm Lambda (and the local cloud) reuses it.
    ``endpoint_url`` (the handler environment's ``AWS_ENDPOINT_URL``) wins; else boto3's
    own ``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL`` from ``os.environ`` as they
    are now. Each endpoint (AWS, a moto server, the local cloud) gets its own client.
    ``credentials`` (access key, secret) are for a moto server, which takes any; the
    retry and timeout settings keep a caller of a dead local server from waiting long.
    """
    endpoint = endpoint_url or os.environ.get(
        "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"), os.environ.get("AWS_ENDPOINT_URL")
    )
    key = (service, region, endpoint, credentials, max_attempts, connect_timeout)
    extra: dict[str, Any] = {"endpoint_url": endpoint_url} if endpoint_url else {}
    if credentials:
        extra.update(aws_access_key_id=credentials[0], aws_secret_access_key=credentials[1])
    settings: dict[str, Any] = {}
    if max_attempts is not None:
        settings["retries"] = {"max_attempts": max_attempts}
    if connect_timeout is not None:
        settings["connect_timeout"] = connect_timeout
    if settings:
        extra["config"] = BotoConfig(**settings)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = boto3.client(service, region_name=region, **extra)  # type: ignore[call-overload]
        return _CACHE[key]


class Clients:
    """boto3 clients, each created on first use (so moto and AWS_ENDPOINT_URL apply).

    Pass ready-made clients as keyword arguments to replace any of them, e.g.
    ``Clients("us-east-1", sagemaker=stubbed_client)``.
    """

    SERVICES: ClassVar[dict[str, str]] = {
        "s3": "s3",
        "sagemaker": "sagemaker",
        "dynamodb": "dynamodb",
        "sns": "sns",
        "cloudwatch": "cloudwatch",
        "autoscaling": "application-autoscaling",
        "hosts": "autoscaling",  # EC2 Auto Scaling: the training hosts' group
        "sqs": "sqs",
    }

    def __init__(self, region: str, endpoint_url: str | None = None, **clients: Any) -> None:
        unknown = set(clients) - set(self.SERVICES)
        if unknown:
            raise TypeError(f"unknown clients: {sorted(unknown)}")
        self.region = region
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = dict(clients)

    @classmethod
    def for_config(cls, config: Config) -> Clients:
        """Clients for the config's region and endpoint (``AWS_ENDPOINT_URL`` of its env)."""
        return cls(config.region, endpoint_url=config.endpoint_url)

    def _get(self, attr: str) -> Any:
        if attr not in self._clients:
            self._clients[attr] = client(self.SERVICES[attr], self.region, self.endpoint_url)
        return self._clients[attr]

    @property
    def s3(self) -> Any:
        return self._get("s3")

    @property
    def sagemaker(self) -> Any:
        return self._get("sagemaker")

    @property
    def dynamodb(self) -> Any:
        return self._get("dynamodb")

    @property
    def sns(self) -> Any:
        return self._get("sns")

    @property
    def cloudwatch(self) -> Any:
        return self._get("cloudwatch")

    @property
    def autoscaling(self) -> Any:
        return self._get("autoscaling")

    @property
    def hosts(self) -> Any:
        return self._get("hosts")

    @property
    def sqs(self) -> Any:
        return self._get("sqs")


# --- errors -----------------------------------------------------------------


def error_text(exc: BaseException) -> str:
    """A one-line reason for logs, alerts and model package descriptions."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        return f"{op}: {err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


# --- S3 ---------------------------------------------------------------------------


def parse_s3_uri(uri: str, *, need_key: bool = True) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; ``need_key=False`` accepts ``s3://bucket``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"S3 URI without a bucket: {uri!r}")
    if need_key and not key:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    return bucket, key


def sse_args(kms_key_arn: str | None) -> JsonDict:
    if not kms_key_arn:
        return {}
    return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_arn}


def put_json(s3: Any, bucket: str, key: str, doc: Any, kms_key_arn: str | None) -> str:
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(doc, indent=2, sort_keys=True, default=str).encode(),
        ContentType="application/json",
        **sse_args(kms_key_arn),
    )
    return f"s3://{bucket}/{key}"


def get_json(s3: Any, bucket: str, key: str, *, denied_as_missing: bool = False) -> Any:
    """The JSON document at ``s3://bucket/key``, or ``None`` when there is no such key.

    ``denied_as_missing``: S3 answers 403 instead of 404 for a missing key unless the
    caller may list it, and a prefix-conditioned ListBucket may not count; only for
    documents whose absence is harmless (state files), never for gate evidence.
    """
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        code = error_code(exc)
        if code in {"NoSuchKey", "404", "NotFound"}:
            return None
        if denied_as_missing and code in {"AccessDenied", "403"}:
            logger.warning(f"s3://{bucket}/{key}: access denied, treated as missing")
            return None
        raise
    return json.loads(body)


def read_tar_members(s3: Any, uri: str, names: Iterable[str]) -> dict[str, bytes]:
    """Read the named files out of a ``.tar.gz`` on S3, streaming (nothing on disk).

    Returns only the members found; a member's name is compared after normalisation, so
    ``./evaluation.json`` and ``evaluation.json`` are the same file.
    """
    bucket, key = parse_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        return tar_members(body, names)
    finally:
        body.close()


def tar_members(fileobj: Any, names: Iterable[str]) -> dict[str, bytes]:
    """The named files of the ``.tar.gz`` read from ``fileobj`` (see read_tar_members)."""
    wanted = set(names)
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
        for member in tar:
            name = posixpath.normpath(member.name)
            if name in wanted and member.isfile():
                handle = tar.extractfile(member)
                if handle is not None:
                    found[name] = handle.read()
                if len(found) == len(wanted):
                    break
    return found


# --- alerts -------------------------------------------------------------------------


def publish_alert(
    sns: Any, topic_arn: str | None, subject: str, message: Mapping[str, Any]
) -> bool:
    """Publish one alert; ``False`` (and no call) when no topic is configured."""
    if not topic_arn:
        return False
    clean = re.sub(r"[^\x20-\x7e]", " ", subject)[:100]
    sns.publish(
        TopicArn=topic_arn,
        Subject=clean,
        Message=json.dumps(dict(message), indent=2, sort_keys=True, default=str),
    )
    return True
