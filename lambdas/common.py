"""What the three control-plane handlers share: configuration, clients, S3 and event helpers.

Lambda runtime only: the standard library and boto3 (powertools is imported by the handler
modules). Nothing here reads the environment or creates a client at import time: the local
cloud calls the handlers in-process with different environments, and tests start moto
before any client exists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import posixpath
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeGuard

import boto3
from botocore.exceptions import ClientError

from lambdas import constants as c

JsonDict = dict[str, Any]
logger = logging.getLogger(__name__)

# <model>-<YYYYmmdd-HHMMSS>-<8 hex>: docs/contracts.md "Training jobs"
_JOB_SUFFIX = r"-\d{8}-\d{6}-[0-9a-f]{8}"
_MAX_NAME = 63
_MODEL_PREFIX_MAX = _MAX_NAME - len("-20240101-000000-abcdef12")


class ConfigError(ValueError):
    """A required environment variable is missing or has a bad value."""


class BadEvent(ValueError):
    """The event is not one this handler accepts; the message says why."""


# --- configuration ----------------------------------------------------------


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


@dataclass(frozen=True)
class Config:
    """Every setting of the control plane, read from the environment at call time.

    Fields that a handler needs but that have no default are ``None`` until
    :meth:`require` is called for them, so one handler's missing setting does not break
    another handler.
    """

    model_name: str
    region: str
    endpoint_url: str | None = None  # AWS_ENDPOINT_URL of the environment (local cloud)
    raw_bucket: str | None = None
    artifacts_bucket: str | None = None
    capture_bucket: str | None = None
    kms_key_arn: str | None = None
    role_arn: str | None = None
    model_package_group: str | None = None
    endpoint_name: str | None = None
    idempotency_table: str | None = None
    alert_topic_arn: str | None = None
    # training
    training_backend: str = "sagemaker"
    training_image_uri: str | None = None
    training_instance_type: str = "ml.m5.large"
    training_max_seconds: int = 3600
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    code_s3_uri: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    network_isolation: bool = False
    launch_template_id: str | None = None
    idempotency_ttl_days: int = 365
    # promotion gate
    primary_metric: str | None = None
    promotion_margin: float = 0.01
    min_minority_recall: float = 0.5
    # serving
    serving_image_uri: str | None = None
    endpoint_mode: str = "serverless"
    serverless_memory_mb: int = 2048
    serverless_max_concurrency: int = 5
    endpoint_instance_type: str = "ml.m5.large"
    endpoint_instance_count: int = 1
    capture_enabled: str = "auto"
    capture_sample_percent: int = 100
    rollback_alarm_names: tuple[str, ...] = ()
    canary_percent: int = 10
    autoscaling_min: int = 1
    autoscaling_max: int = 4
    autoscaling_target: float = 200.0
    # drift
    drift_threshold: float = 0.2
    drift_alarm_name: str | None = None
    drift_min_rows: int = 50
    metric_namespace: str = c.DEFAULT_METRIC_NAMESPACE

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build the configuration from ``environ`` (``os.environ`` in Lambda).

        Raises
        ------
        ConfigError
            When ``MLOPS_MODEL_NAME`` is missing or a value does not parse; the message
            names the variable.
        """

        def get(name: str) -> str | None:
            value = environ.get(name, c.DEFAULTS.get(name))
            return value.strip() if value is not None and value.strip() else None

        def number(name: str, kind: Callable[[str], Any]) -> Any:
            raw = get(name) or c.DEFAULTS[name]
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name}={raw!r} is not finite")
            return value

        def flag(name: str) -> bool:
            raw = (get(name) or "false").lower()
            if raw not in {"true", "false", "1", "0", "yes", "no"}:
                raise ConfigError(f"{name}={raw!r} must be true or false")
            return raw in {"true", "1", "yes"}

        def choice(name: str, allowed: set[str]) -> str:
            raw = (get(name) or c.DEFAULTS[name]).lower()
            if raw not in allowed:
                raise ConfigError(f"{name}={raw!r} must be one of {sorted(allowed)}")
            return raw

        model = get(c.MODEL_NAME)
        if not model:
            raise ConfigError(f"{c.MODEL_NAME} is not set")
        if (
            not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*", model)
            or len(model) > _MODEL_PREFIX_MAX
        ):
            raise ConfigError(
                f"{c.MODEL_NAME}={model!r} must be letters, digits and '-', at most "
                f"{_MODEL_PREFIX_MAX} characters (it prefixes job names)"
            )
        raw_hps = get(c.TRAINING_HYPERPARAMETERS) or "{}"
        try:
            hps = json.loads(raw_hps)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{c.TRAINING_HYPERPARAMETERS} is not JSON: {exc}") from None
        if not isinstance(hps, dict):
            raise ConfigError(f"{c.TRAINING_HYPERPARAMETERS} must be a JSON object")
        artifacts = get(c.ARTIFACTS_BUCKET)
        code_uri = get(c.CODE_S3_URI) or (
            f"s3://{artifacts}/{c.CODE_BUNDLE_KEY}" if artifacts else None
        )
        return cls(
            model_name=model,
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=environ.get("AWS_ENDPOINT_URL") or None,
            raw_bucket=get(c.RAW_BUCKET),
            artifacts_bucket=artifacts,
            capture_bucket=get(c.CAPTURE_BUCKET),
            kms_key_arn=get(c.KMS_KEY_ARN),
            role_arn=get(c.SAGEMAKER_ROLE_ARN),
            model_package_group=get(c.MODEL_PACKAGE_GROUP),
            endpoint_name=get(c.ENDPOINT_NAME),
            idempotency_table=get(c.IDEMPOTENCY_TABLE),
            alert_topic_arn=get(c.ALERT_TOPIC_ARN),
            training_backend=choice(c.TRAINING_BACKEND, {"sagemaker", "ec2"}),
            training_image_uri=get(c.TRAINING_IMAGE_URI),
            training_instance_type=get(c.TRAINING_INSTANCE_TYPE) or "ml.m5.large",
            training_max_seconds=number(c.TRAINING_MAX_SECONDS, int),
            hyperparameters=hps,
            code_s3_uri=code_uri,
            subnet_ids=_csv(get(c.SUBNET_IDS)),
            security_group_ids=_csv(get(c.SECURITY_GROUP_IDS)),
            network_isolation=flag(c.NETWORK_ISOLATION),
            launch_template_id=get(c.LAUNCH_TEMPLATE_ID),
            idempotency_ttl_days=number(c.IDEMPOTENCY_TTL_DAYS, int),
            primary_metric=get(c.PRIMARY_METRIC),
            promotion_margin=number(c.PROMOTION_MARGIN, float),
            min_minority_recall=number(c.MIN_MINORITY_RECALL, float),
            serving_image_uri=get(c.SERVING_IMAGE_URI),
            endpoint_mode=choice(c.ENDPOINT_MODE, {"serverless", "instance"}),
            serverless_memory_mb=number(c.SERVERLESS_MEMORY_MB, int),
            serverless_max_concurrency=number(c.SERVERLESS_MAX_CONCURRENCY, int),
            endpoint_instance_type=get(c.ENDPOINT_INSTANCE_TYPE) or "ml.m5.large",
            endpoint_instance_count=number(c.ENDPOINT_INSTANCE_COUNT, int),
            capture_enabled=choice(c.CAPTURE_ENABLED, {"auto", "true", "false"}),
            capture_sample_percent=number(c.CAPTURE_SAMPLE_PERCENT, int),
            rollback_alarm_names=_csv(get(c.ROLLBACK_ALARM_NAMES)),
            canary_percent=number(c.CANARY_PERCENT, int),
            autoscaling_min=number(c.AUTOSCALING_MIN, int),
            autoscaling_max=number(c.AUTOSCALING_MAX, int),
            autoscaling_target=number(c.AUTOSCALING_TARGET, float),
            drift_threshold=number(c.DRIFT_THRESHOLD, float),
            drift_alarm_name=get(c.DRIFT_ALARM_NAME),
            drift_min_rows=number(c.DRIFT_MIN_ROWS, int),
            metric_namespace=get(c.METRIC_NAMESPACE) or c.DEFAULT_METRIC_NAMESPACE,
        )

    def require(self, *fields: str) -> None:
        """Raise :class:`ConfigError` naming the env vars of every unset field."""
        missing = [_FIELD_ENV.get(f, f) for f in fields if getattr(self, f) in (None, "", ())]
        if missing:
            raise ConfigError("missing configuration: " + ", ".join(missing))

    @property
    def job_name_pattern(self) -> re.Pattern[str]:
        """Names of this model's training jobs (and nothing else's)."""
        return re.compile(re.escape(self.model_name) + _JOB_SUFFIX + "$")

    @property
    def capture_on(self) -> bool:
        """Whether endpoint configs get data capture (SageMaker Serverless has none)."""
        if self.capture_enabled == "auto":
            return self.endpoint_mode == "instance"
        return self.capture_enabled == "true"


_FIELD_ENV = {
    "raw_bucket": c.RAW_BUCKET,
    "artifacts_bucket": c.ARTIFACTS_BUCKET,
    "capture_bucket": c.CAPTURE_BUCKET,
    "kms_key_arn": c.KMS_KEY_ARN,
    "role_arn": c.SAGEMAKER_ROLE_ARN,
    "model_package_group": c.MODEL_PACKAGE_GROUP,
    "endpoint_name": c.ENDPOINT_NAME,
    "idempotency_table": c.IDEMPOTENCY_TABLE,
    "alert_topic_arn": c.ALERT_TOPIC_ARN,
    "code_s3_uri": c.CODE_S3_URI,
    "launch_template_id": c.LAUNCH_TEMPLATE_ID,
    "drift_alarm_name": c.DRIFT_ALARM_NAME,
}


# --- clients ----------------------------------------------------------------


_CACHE: dict[tuple[str, str, str | None], Any] = {}
_CACHE_LOCK = threading.Lock()


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client, reused while its endpoint stays the same.

    Creating a client costs ~50 ms; a warm Lambda (and the local cloud) reuses it.
    ``endpoint_url`` (the handler environment's ``AWS_ENDPOINT_URL``) wins; else boto3's
    own ``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL`` from ``os.environ`` as they
    are now. Each endpoint (AWS, a moto server, the local cloud) gets its own client.
    """
    endpoint = endpoint_url or os.environ.get(
        "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_"), os.environ.get("AWS_ENDPOINT_URL")
    )
    key = (service, region, endpoint)
    extra = {"endpoint_url": endpoint_url} if endpoint_url else {}
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
        "ec2": "ec2",
        "autoscaling": "application-autoscaling",
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
    def ec2(self) -> Any:
        return self._get("ec2")

    @property
    def autoscaling(self) -> Any:
        return self._get("autoscaling")


# --- small helpers ------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_text(exc: BaseException) -> str:
    """A one-line reason for logs, alerts and model package descriptions."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        op = exc.operation_name
        return f"{op}: {err.get('Code', 'Error')}: {err.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"


def error_code(exc: BaseException) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def is_finite_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def make_job_name(model_name: str, now: datetime, data_version: str) -> str:
    """``<model>-<YYYYmmdd-HHMMSS>-<first 8 hex of data version>`` (at most 63 chars)."""
    name = f"{model_name}-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{data_version[:8]}"
    if len(name) > _MAX_NAME:
        raise ConfigError(f"job name {name!r} is longer than {_MAX_NAME} characters")
    return name


# --- S3 ---------------------------------------------------------------------------


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"not an s3://bucket/key URI: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
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
    wanted = set(names)
    bucket, key = parse_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=body, mode="r|gz") as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if name in wanted and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        found[name] = handle.read()
                    if len(found) == len(wanted):
                        break
    finally:
        body.close()
    return found


# --- model registry: the champion ---------------------------------------------------


def find_champion(config: Config, clients: Clients) -> JsonDict | None:
    """The latest Approved model package of the group, or ``None``.

    Returns ``{"arn", "version", "image", "model_data_url", "evaluation_uri"}``. The
    promote handler gates against it; the retrain handler gives its model to the next
    training job (the ``champion`` channel), which evaluates it on the same test split.
    """
    config.require("model_package_group")
    listed = clients.sagemaker.list_model_packages(
        ModelPackageGroupName=config.model_package_group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=1,
    )
    summaries = listed.get("ModelPackageSummaryList", [])
    if not summaries:
        return None
    arn = summaries[0]["ModelPackageArn"]
    package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
    container = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    stats = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return {
        "arn": arn,
        "version": package.get("ModelPackageVersion"),
        "image": container.get("Image"),
        "model_data_url": container.get("ModelDataUrl"),
        "evaluation_uri": stats.get("S3Uri"),
    }


# --- raw data: lineage and data version ----------------------------------------------


def list_incoming(s3: Any, bucket: str) -> list[JsonDict]:
    """The current version of every object under ``incoming/`` in the raw bucket.

    Each item is ``{"bucket", "key", "version_id", "etag", "size"}`` (the lineage format);
    ETags lose their quotes; an unversioned bucket reports version ``"null"``.
    """
    objects: list[JsonDict] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=c.INCOMING_PREFIX):
        for version in page.get("Versions", []):
            if not version.get("IsLatest", True):
                continue
            objects.append(
                {
                    "bucket": bucket,
                    "key": version["Key"],
                    "version_id": version.get("VersionId") or "null",
                    "etag": version.get("ETag", "").strip('"'),
                    "size": int(version.get("Size", 0)),
                }
            )
    objects.sort(key=lambda o: o["key"])
    return objects


def data_version(objects: Iterable[Mapping[str, Any]]) -> str:
    """sha256 (hex) of the sorted lines ``key<TAB>etag`` joined by ``\\n`` (ETag unquoted)."""
    lines = sorted(f"{o['key']}\t{str(o['etag']).strip(chr(34))}" for o in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


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


# --- events --------------------------------------------------------------------------


def event_kind(event: Any) -> tuple[str, str, Mapping[str, Any]]:
    """``(source, detail-type, detail)`` of an EventBridge-shaped event.

    Raises
    ------
    BadEvent
        When the event is not a JSON object with string ``source`` / ``detail-type`` and
        an object ``detail``.
    """
    if not isinstance(event, Mapping):
        raise BadEvent(f"event is a {type(event).__name__}, not a JSON object")
    if "Records" in event:
        raise BadEvent(
            "S3/SNS/SQS 'Records' events are not accepted: deliver S3 events through "
            "EventBridge (bucket notification 'EventBridge: on')"
        )
    source, detail_type = event.get("source"), event.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str):
        raise BadEvent("event has no 'source' and 'detail-type' (not an EventBridge event)")
    detail = event.get("detail", {})
    if detail is None:
        detail = {}
    if not isinstance(detail, Mapping):
        raise BadEvent(f"'detail' of {source}/{detail_type} is not an object")
    return source, detail_type, detail


def rejected(reason: str, **extra: Any) -> JsonDict:
    """The outcome of an event a handler will not act on (returned, never raised)."""
    return {"status": "rejected", "reason": reason, **extra}


def handle_event(
    event: Any,
    environ: Mapping[str, str],
    *,
    parse: Callable[[Any, Config], Any],
    act: Callable[..., JsonDict],
    logger: Any,
    context: Any = None,
    clients: Clients | None = None,
    calm: frozenset[str] | None = None,
) -> JsonDict:
    """The shape every event-driven handler shares: read the config, parse the event, act.

    A malformed event is rejected before any AWS call: logged and returned, never raised,
    so Lambda does not retry it into the dead-letter queue. The outcome is logged at info
    when its status is in ``calm`` (``None``: always), else at warning.
    """
    config = Config.from_env(environ)
    try:
        parsed = parse(event, config)
    except BadEvent as exc:
        outcome = rejected(str(exc))
        logger.warning(f"rejected event: {exc}", extra={"outcome": outcome})
        return outcome
    outcome = act(config, clients or Clients.for_config(config), parsed, lambda_context=context)
    level = logger.info if calm is None or outcome["status"] in calm else logger.warning
    level(f"{outcome['status']}: {outcome['reason']}", extra={"outcome": outcome})
    return outcome


# --- at most once ----------------------------------------------------------------------


class _Deadline:
    """Stands in for a Lambda context outside Lambda (CLI, local cloud).

    powertools uses the remaining time to expire an INPROGRESS record; without it a
    crash mid-call would block the data version until the record's TTL.
    """

    def __init__(self, seconds: int = 900) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


def run_once(
    config: Config,
    clients: Clients,
    *,
    key: str,
    key_prefix: str,
    fn: Callable[[], JsonDict],
    lambda_context: Any = None,
    ttl_seconds: int,
) -> tuple[JsonDict, bool]:
    """Run ``fn`` at most once per ``key`` (powertools idempotency on DynamoDB).

    Returns ``(result, ran)``: ``ran`` is False when the result was replayed from an
    earlier run. An exception from ``fn`` deletes the record (the key may run again).
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    assert config.idempotency_table is not None  # checked by the callers
    persistence = DynamoDBPersistenceLayer(
        table_name=config.idempotency_table, boto3_client=clients.dynamodb
    )
    idem = IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ttl_seconds,
        lambda_context=lambda_context or _Deadline(),  # type: ignore[arg-type]
    )
    ran: list[bool] = []

    @idempotent_function(
        data_keyword_argument="data",
        persistence_store=persistence,
        config=idem,
        key_prefix=key_prefix,
    )
    def once(data: JsonDict) -> JsonDict:
        ran.append(True)
        return fn()

    return once(data={"key": key}), bool(ran)
