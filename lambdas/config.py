"""The control plane's configuration: every setting, read from the environment at call time.

Nothing here reads the environment at import time: the local cloud calls the handlers
in-process with different environments. Job names live here too, because the model name
is checked against the longest job name it may prefix.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lambdas import constants as c
from lambdas.errors import ControlPlaneError

JsonDict = dict[str, Any]

# <model>-<YYYYmmdd-HHMMSS>-<8 hex>: docs/contracts.md "Training jobs"
_JOB_SUFFIX = r"-\d{8}-\d{6}-[0-9a-f]{8}"
_MAX_NAME = 63
_MODEL_PREFIX_MAX = _MAX_NAME - len("-20240101-000000-abcdef12")


class ConfigError(ControlPlaneError, ValueError):
    """A required environment variable is missing or has a bad value."""


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
    training_backend: str = c.DEFAULTS[c.TRAINING_BACKEND]
    training_image_uri: str | None = None
    training_instance_type: str = c.DEFAULTS[c.TRAINING_INSTANCE_TYPE]
    training_max_seconds: int = int(c.DEFAULTS[c.TRAINING_MAX_SECONDS])
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    code_s3_uri: str | None = None
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    network_isolation: bool = c.DEFAULTS[c.NETWORK_ISOLATION] == "true"
    training_hosts: str | None = None
    training_jobs_queue_url: str | None = None
    idempotency_ttl_days: int = int(c.DEFAULTS[c.IDEMPOTENCY_TTL_DAYS])
    max_retries: int = int(c.DEFAULTS[c.MAX_RETRIES])
    retry_backoff_seconds: int = int(c.DEFAULTS[c.RETRY_BACKOFF_SECONDS])
    # promotion gate
    primary_metric: str | None = None
    promotion_margin: float = float(c.DEFAULTS[c.PROMOTION_MARGIN])
    min_minority_recall: float = float(c.DEFAULTS[c.MIN_MINORITY_RECALL])
    approval_mode: str = c.DEFAULTS[c.APPROVAL_MODE]
    reference_tolerance: float = float(c.DEFAULTS[c.REFERENCE_TOLERANCE])
    max_fairness_gap: float | None = None
    fairness_action: str = c.DEFAULTS[c.FAIRNESS_ACTION]
    max_label_shift: float = float(c.DEFAULTS[c.MAX_LABEL_SHIFT])
    min_label_agreement: float = float(c.DEFAULTS[c.MIN_LABEL_AGREEMENT])
    min_label_learnability: float = float(c.DEFAULTS[c.MIN_LABEL_LEARNABILITY])
    max_duplicate_share: float = float(c.DEFAULTS[c.MAX_DUPLICATE_SHARE])
    deploy_wait_seconds: int = int(c.DEFAULTS[c.DEPLOY_WAIT_SECONDS])
    # serving
    serving_image_uri: str | None = None
    endpoint_mode: str = c.DEFAULTS[c.ENDPOINT_MODE]
    serverless_memory_mb: int = int(c.DEFAULTS[c.SERVERLESS_MEMORY_MB])
    serverless_max_concurrency: int = int(c.DEFAULTS[c.SERVERLESS_MAX_CONCURRENCY])
    endpoint_instance_type: str = c.DEFAULTS[c.ENDPOINT_INSTANCE_TYPE]
    endpoint_instance_count: int = int(c.DEFAULTS[c.ENDPOINT_INSTANCE_COUNT])
    capture_enabled: str = c.DEFAULTS[c.CAPTURE_ENABLED]
    capture_sample_percent: int = int(c.DEFAULTS[c.CAPTURE_SAMPLE_PERCENT])
    rollback_alarm_names: tuple[str, ...] = ()
    canary_percent: int = int(c.DEFAULTS[c.CANARY_PERCENT])
    autoscaling_min: int = int(c.DEFAULTS[c.AUTOSCALING_MIN])
    autoscaling_max: int = int(c.DEFAULTS[c.AUTOSCALING_MAX])
    autoscaling_target: float = float(c.DEFAULTS[c.AUTOSCALING_TARGET])
    rollout_mode: str = c.DEFAULTS[c.ROLLOUT_MODE]
    ab_traffic_percent: int = int(c.DEFAULTS[c.AB_TRAFFIC_PERCENT])
    rollout_min_requests: int = int(c.DEFAULTS[c.ROLLOUT_MIN_REQUESTS])
    rollout_min_agreement: float = float(c.DEFAULTS[c.ROLLOUT_MIN_AGREEMENT])
    rollout_max_error_increase: float = float(c.DEFAULTS[c.ROLLOUT_MAX_ERROR_INCREASE])
    rollout_max_latency_ratio: float = float(c.DEFAULTS[c.ROLLOUT_MAX_LATENCY_RATIO])
    rollout_max_hours: int = int(c.DEFAULTS[c.ROLLOUT_MAX_HOURS])
    # drift
    drift_threshold: float = float(c.DEFAULTS[c.DRIFT_THRESHOLD])
    drift_alarm_name: str | None = None
    drift_min_rows: int = int(c.DEFAULTS[c.DRIFT_MIN_ROWS])
    drift_warn_threshold: float = float(c.DEFAULTS[c.DRIFT_WARN_THRESHOLD])
    drift_windows: int = int(c.DEFAULTS[c.DRIFT_WINDOWS])
    drift_min_share: float = float(c.DEFAULTS[c.DRIFT_MIN_SHARE])
    quality_window_hours: int = int(c.DEFAULTS[c.QUALITY_WINDOW_HOURS])
    quality_tolerance: float = float(c.DEFAULTS[c.QUALITY_TOLERANCE])
    quality_windows: int = int(c.DEFAULTS[c.QUALITY_WINDOWS])
    quality_min_rows: int = int(c.DEFAULTS[c.QUALITY_MIN_ROWS])
    quality_alarm_name: str | None = None
    feedback_to_training: bool = True
    metric_namespace: str = c.DEFAULTS[c.METRIC_NAMESPACE]

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

        def text(name: str) -> str:
            # a variable set but blank means "use the default", as unset does
            return get(name) or c.DEFAULTS[name]

        def number(name: str, kind: Callable[[str], Any]) -> Any:
            raw = text(name)
            try:
                value = kind(raw)
            except ValueError:
                raise ConfigError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name}={raw!r} is not finite")
            return value

        def positive(name: str, kind: Callable[[str], Any]) -> Any:
            value = number(name, kind)
            if value < 1:
                raise ConfigError(f"{name}={value!r} must be at least 1")
            return value

        def flag(name: str) -> bool:
            raw = text(name).lower()
            if raw not in {"true", "false", "1", "0", "yes", "no"}:
                raise ConfigError(f"{name}={raw!r} must be true or false")
            return raw in {"true", "1", "yes"}

        def choice(name: str, allowed: set[str]) -> str:
            raw = text(name).lower()
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
        raw_hps = text(c.TRAINING_HYPERPARAMETERS)
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
            training_instance_type=text(c.TRAINING_INSTANCE_TYPE),
            training_max_seconds=number(c.TRAINING_MAX_SECONDS, int),
            hyperparameters=hps,
            code_s3_uri=code_uri,
            subnet_ids=_csv(get(c.SUBNET_IDS)),
            security_group_ids=_csv(get(c.SECURITY_GROUP_IDS)),
            network_isolation=flag(c.NETWORK_ISOLATION),
            training_hosts=get(c.TRAINING_HOSTS),
            training_jobs_queue_url=get(c.TRAINING_JOBS_QUEUE_URL),
            idempotency_ttl_days=number(c.IDEMPOTENCY_TTL_DAYS, int),
            max_retries=number(c.MAX_RETRIES, int),
            retry_backoff_seconds=number(c.RETRY_BACKOFF_SECONDS, int),
            primary_metric=get(c.PRIMARY_METRIC),
            promotion_margin=number(c.PROMOTION_MARGIN, float),
            min_minority_recall=number(c.MIN_MINORITY_RECALL, float),
            approval_mode=choice(c.APPROVAL_MODE, {"auto", "manual"}),
            reference_tolerance=number(c.REFERENCE_TOLERANCE, float),
            max_fairness_gap=(
                number(c.MAX_FAIRNESS_GAP, float) if get(c.MAX_FAIRNESS_GAP) else None
            ),
            fairness_action=choice(c.FAIRNESS_ACTION, {"hold", "reject"}),
            max_label_shift=number(c.MAX_LABEL_SHIFT, float),
            min_label_agreement=number(c.MIN_LABEL_AGREEMENT, float),
            min_label_learnability=number(c.MIN_LABEL_LEARNABILITY, float),
            max_duplicate_share=number(c.MAX_DUPLICATE_SHARE, float),
            deploy_wait_seconds=number(c.DEPLOY_WAIT_SECONDS, int),
            serving_image_uri=get(c.SERVING_IMAGE_URI),
            endpoint_mode=choice(c.ENDPOINT_MODE, {"serverless", "instance"}),
            serverless_memory_mb=number(c.SERVERLESS_MEMORY_MB, int),
            serverless_max_concurrency=number(c.SERVERLESS_MAX_CONCURRENCY, int),
            endpoint_instance_type=text(c.ENDPOINT_INSTANCE_TYPE),
            endpoint_instance_count=number(c.ENDPOINT_INSTANCE_COUNT, int),
            capture_enabled=choice(c.CAPTURE_ENABLED, {"auto", "true", "false"}),
            capture_sample_percent=number(c.CAPTURE_SAMPLE_PERCENT, int),
            rollback_alarm_names=_csv(get(c.ROLLBACK_ALARM_NAMES)),
            canary_percent=number(c.CANARY_PERCENT, int),
            autoscaling_min=number(c.AUTOSCALING_MIN, int),
            autoscaling_max=number(c.AUTOSCALING_MAX, int),
            autoscaling_target=number(c.AUTOSCALING_TARGET, float),
            rollout_mode=choice(c.ROLLOUT_MODE, {"direct", "shadow", "ab"}),
            ab_traffic_percent=positive(c.AB_TRAFFIC_PERCENT, int),
            rollout_min_requests=positive(c.ROLLOUT_MIN_REQUESTS, int),
            rollout_min_agreement=number(c.ROLLOUT_MIN_AGREEMENT, float),
            rollout_max_error_increase=number(c.ROLLOUT_MAX_ERROR_INCREASE, float),
            rollout_max_latency_ratio=number(c.ROLLOUT_MAX_LATENCY_RATIO, float),
            rollout_max_hours=positive(c.ROLLOUT_MAX_HOURS, int),
            drift_threshold=number(c.DRIFT_THRESHOLD, float),
            drift_alarm_name=get(c.DRIFT_ALARM_NAME),
            drift_min_rows=number(c.DRIFT_MIN_ROWS, int),
            drift_warn_threshold=number(c.DRIFT_WARN_THRESHOLD, float),
            drift_windows=positive(c.DRIFT_WINDOWS, int),
            drift_min_share=number(c.DRIFT_MIN_SHARE, float),
            quality_window_hours=positive(c.QUALITY_WINDOW_HOURS, int),
            quality_tolerance=number(c.QUALITY_TOLERANCE, float),
            quality_windows=positive(c.QUALITY_WINDOWS, int),
            quality_min_rows=positive(c.QUALITY_MIN_ROWS, int),
            quality_alarm_name=get(c.QUALITY_ALARM_NAME),
            feedback_to_training=flag(c.FEEDBACK_TO_TRAINING),
            metric_namespace=text(c.METRIC_NAMESPACE),
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
    "training_hosts": c.TRAINING_HOSTS,
    "training_jobs_queue_url": c.TRAINING_JOBS_QUEUE_URL,
    "drift_alarm_name": c.DRIFT_ALARM_NAME,
    "quality_alarm_name": c.QUALITY_ALARM_NAME,
}


def make_job_name(model_name: str, now: datetime, data_version: str) -> str:
    """``<model>-<YYYYmmdd-HHMMSS>-<first 8 hex of data version>`` (at most 63 chars)."""
    name = f"{model_name}-{now.astimezone(UTC):%Y%m%d-%H%M%S}-{data_version[:8]}"
    if len(name) > _MAX_NAME:
        raise ConfigError(f"job name {name!r} is longer than {_MAX_NAME} characters")
    return name
