"""Stack configuration: one frozen dataclass, validated by a pure function.

``pulumi.Config`` is read in ``infra/__main__.py`` only; everything else gets a
:class:`Settings`. The same values reach :func:`load_settings` from three places:
the Pulumi CLI, the offline preview and the tests (both through
:func:`load_stack_config`, which reads ``Pulumi.<stack>.yaml`` the way the CLI does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lambdas import constants as c

PROJECT = "mlops"

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

ENDPOINT_MODES = ("serverless", "instance")
TRAINING_BACKENDS = ("sagemaker", "ec2")
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
    2922, 3288, 3653,
)  # fmt: skip

_MODEL_NAME_RE = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_RATE_RE = re.compile(r"^rate\((1 (minute|hour|day)|[1-9][0-9]* (minutes|hours|days))\)$")
_CRON_RE = re.compile(r"^cron\(\S+( \S+){5}\)$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]$")
_ECR_IMAGE_RE = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*)(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$"
)
_SAGEMAKER_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_EC2_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
_LAYER_RE = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9._/#:-]{1,255}$")

#: The longest physical name derived from the model name (see infra/naming.py) must fit
#: S3's 63-character bucket name limit: "<project>-<stack>-<model>-access-logs-<account>".
_LONGEST_SUFFIX = len("-access-logs-") + 12


class ConfigError(ValueError):
    """A stack configuration value is missing or invalid (the message names the key)."""


@dataclass(frozen=True)
class Settings:
    """Everything the program needs from configuration, validated."""

    project: str
    stack: str
    region: str
    model_name: str
    endpoint_mode: str
    retrain_schedule: str
    drift_schedule: str
    drift_threshold: float
    promotion_margin: float
    min_minority_recall: float
    training_backend: str
    training_instance_type: str
    training_image_uri: str
    training_max_seconds: int
    training_hyperparameters: str  # a JSON object, normalised (sorted keys)
    serving_image_uri: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    endpoint_instance_type: str
    endpoint_instance_count: int
    autoscaling_min: int
    autoscaling_max: int
    autoscaling_target: int
    canary_percent: int
    capture_sample_percent: int
    capture_retention_days: int
    noncurrent_version_days: int
    raw_expiration_days: int | None
    access_log_retention_days: int
    log_retention_days: int
    lambda_reserved_concurrency: int
    lambda_timeout_seconds: int
    lambda_memory_mb: int
    endpoint_latency_p99_ms: int
    metric_namespace: str
    ec2_ami_id: str | None
    ec2_instance_type: str
    alert_email: str | None
    powertools_layer_arn: str
    pinned_model_data_url: str | None


@dataclass(frozen=True)
class Key:
    """One configuration key: its name (without namespace), default and meaning."""

    name: str
    default: str | None
    help: str


#: Every key in the ``mlops`` namespace; docs/infra.md renders the same table.
KEYS: tuple[Key, ...] = (
    Key("modelName", None, "required; short model name (lowercase, digits, hyphens)"),
    Key("endpointMode", "serverless", "serverless or instance"),
    Key("retrainSchedule", "rate(7 days)", "EventBridge schedule expression for retraining"),
    Key("driftSchedule", "rate(1 day)", "EventBridge schedule expression for the drift check"),
    Key("driftThreshold", "0.2", "PSI above which the drift alarm fires (> 0)"),
    Key("promotionMargin", "0.01", "challenger must beat the champion by this (>= 0)"),
    Key("minMinorityRecall", "0.5", "guardrail for imbalanced data, in [0, 1]"),
    Key("trainingBackend", "sagemaker", "sagemaker or ec2"),
    Key("trainingInstanceType", "ml.m5.large", "SageMaker training instance type"),
    Key("trainingImageUri", "(sklearn framework image of the region)", "training image (ECR URI)"),
    Key("trainingMaxSeconds", "3600", "training job stopping condition"),
    Key("trainingHyperparameters", "{}", "JSON object passed to every training job"),
    Key("servingImageUri", "(sklearn framework image of the region)", "serving image (ECR URI)"),
    Key("serverlessMemoryMb", "2048", "1024..6144 in steps of 1024"),
    Key("serverlessMaxConcurrency", "5", "1..200"),
    Key("endpointInstanceType", "ml.m5.large", "instance mode: variant instance type"),
    Key("endpointInstanceCount", "1", "instance mode: initial instance count"),
    Key("autoscalingMin", "1", "instance mode: minimum instances"),
    Key("autoscalingMax", "4", "instance mode: maximum instances (>= autoscalingMin)"),
    Key("autoscalingTarget", "200", "instance mode: invocations per instance per minute"),
    Key("canaryPercent", "10", "instance mode: canary traffic share, 1..99"),
    Key("captureSamplePercent", "100", "data capture sampling, 1..100"),
    Key("captureRetentionDays", "90", "capture bucket objects expire after this"),
    Key("noncurrentVersionDays", "30", "noncurrent object versions expire after this"),
    Key("rawExpirationDays", None, "optional; raw data is never expired by default"),
    Key("accessLogRetentionDays", "365", "S3 access logs expire after this"),
    Key("logRetentionDays", "30", "CloudWatch Logs retention (an allowed value)"),
    Key("lambdaReservedConcurrency", "2", "reserved concurrency per function (>= 1)"),
    Key("lambdaTimeoutSeconds", "120", "Lambda timeout, 1..900"),
    Key("lambdaMemoryMb", "256", "Lambda memory, 128..10240"),
    Key("endpointLatencyP99Ms", "1000", "p99 model latency alarm threshold"),
    Key("metricNamespace", "MLOps", "CloudWatch namespace of the drift metric"),
    Key("ec2AmiId", None, f"optional; else the SSM public parameter {AL2023_AMI_PARAMETER}"),
    Key("ec2InstanceType", "m5.large", "EC2 training host instance type"),
    Key("alertEmail", None, "optional; e-mail subscription to the alert topic"),
    Key("powertoolsLayerArn", "(AWS-published v3 layer)", "Powertools layer ARN; none: no layer"),
    Key("pinnedModelDataUrl", None, "optional s3:// model.tar.gz: Pulumi creates the endpoint"),
)
KEY_NAMES = frozenset(k.name for k in KEYS)

Getter = Callable[[str], str | None]


def default_image_uri(region: str) -> str:
    """Return the SageMaker scikit-learn framework image for ``region`` (ConfigError if
    no account is known for the region)."""
    account = SKLEARN_IMAGE_ACCOUNTS.get(region)
    if account is None:
        raise ConfigError(
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
    match = _ECR_IMAGE_RE.match(uri)
    if match is None:
        raise ValueError(f"not an ECR image URI: {uri!r}")
    return match["account"], match["region"], match["repo"]


class _Reader:
    """Typed, validating access to one namespace of config values."""

    def __init__(self, get: Getter, namespace: str) -> None:
        self._get = get
        self._ns = namespace

    def key(self, name: str) -> str:
        return f"{self._ns}:{name}"

    def raw(self, name: str) -> str | None:
        value = self._get(self.key(name))
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    def fail(self, name: str, value: object, expected: str) -> ConfigError:
        return ConfigError(f"{self.key(name)}: {value!r} is invalid; expected {expected}")

    def string(self, name: str, default: str) -> str:
        value = self.raw(name)
        return default if value is None else value

    def choice(self, name: str, default: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        value = self.string(name, default)
        if value not in allowed:
            raise self.fail(name, value, f"one of {', '.join(allowed)}")
        return value

    def matching(self, name: str, default: str | None, pattern: re.Pattern[str], what: str) -> str:
        value = self.raw(name)
        if value is None:
            if default is None:
                raise ConfigError(f"{self.key(name)} is required ({what})")
            value = default
        if not pattern.match(value):
            raise self.fail(name, value, what)
        return value

    def optional(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.raw(name)
        if value is not None and not pattern.match(value):
            raise self.fail(name, value, what)
        return value

    def integer(self, name: str, default: int, low: int = 1, high: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return default
        return self._int(name, value, low, high)

    def optional_integer(self, name: str, low: int = 1) -> int | None:
        value = self.raw(name)
        return None if value is None else self._int(name, value, low, None)

    def _int(self, name: str, value: str, low: int, high: int | None) -> int:
        bounds = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        try:
            number = int(value)
        except ValueError:
            raise self.fail(name, value, bounds) from None
        if number < low or (high is not None and number > high):
            raise self.fail(name, value, bounds)
        return number

    def number(
        self, name: str, default: float, low: float, high: float | None = None, strict: bool = False
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        op = ">" if strict else ">="
        bounds = f"a number {op} {low}" + ("" if high is None else f" and <= {high}")
        try:
            number = float(value)
        except ValueError:
            raise self.fail(name, value, bounds) from None
        if number != number or (number <= low if strict else number < low):  # NaN or too small
            raise self.fail(name, value, bounds)
        if high is not None and number > high:
            raise self.fail(name, value, bounds)
        return number


def _schedule(r: _Reader, name: str, default: str) -> str:
    value = r.string(name, default)
    if not (_RATE_RE.match(value) or _CRON_RE.match(value)):
        raise r.fail(
            name,
            value,
            "an EventBridge schedule expression such as 'rate(7 days)', 'rate(1 day)' or "
            "'cron(0 3 ? * MON *)'",
        )
    return value


def _hyperparameters(r: _Reader) -> str:
    value = r.string("trainingHyperparameters", "{}")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise r.fail("trainingHyperparameters", value, "a JSON object") from None
    if not isinstance(parsed, dict):
        raise r.fail("trainingHyperparameters", value, "a JSON object")
    return json.dumps(parsed, sort_keys=True)


def _image(r: _Reader, name: str, region: str) -> str:
    value = r.raw(name)
    if value is None:
        try:
            return default_image_uri(region)
        except ConfigError as exc:
            raise ConfigError(f"{r.key(name)}: {exc}") from None
    if not _ECR_IMAGE_RE.match(value):
        raise r.fail(
            name, value, "an ECR image URI <account>.dkr.ecr.<region>.amazonaws.com/repo:tag"
        )
    return value


def load_settings(
    get: Getter,
    *,
    stack: str,
    project: str = PROJECT,
    all_keys: Iterable[str] | None = None,
) -> Settings:
    """Validate configuration values into :class:`Settings`.

    Parameters
    ----------
    get
        Returns the raw string value of a namespaced key (``"mlops:modelName"``,
        ``"aws:region"``) or ``None`` when unset, as ``pulumi.Config.get`` does.
    stack, project
        The Pulumi stack and project names.
    all_keys
        Optional: every key that is set. Keys in the project namespace that the
        program does not know raise a :class:`ConfigError` (catches typos).

    Raises
    ------
    ConfigError
        Naming the key, the bad value and what is allowed.
    """
    r = _Reader(get, project)
    if all_keys is not None:
        unknown = sorted(
            k
            for k in all_keys
            if k.startswith(f"{project}:") and k.split(":", 1)[1] not in KEY_NAMES
        )
        if unknown:
            raise ConfigError(
                f"unknown configuration key(s) {', '.join(unknown)}; known keys: "
                + ", ".join(f"{project}:{k.name}" for k in KEYS)
            )

    region_value = get("aws:region")
    region = str(region_value).strip() if region_value else ""
    if not region:
        raise ConfigError("aws:region is required (pulumi config set aws:region us-east-1)")
    if not _REGION_RE.match(region):
        raise ConfigError(f"aws:region: {region!r} is not an AWS region name")

    model_name = r.raw("modelName")
    if model_name is None:
        raise ConfigError(
            f"{project}:modelName is required (pulumi config set {project}:modelName churn)"
        )
    if not _MODEL_NAME_RE.match(model_name):
        raise r.fail(
            "modelName",
            model_name,
            "lowercase letters, digits and hyphens, starting with a letter",
        )
    longest = len(f"{project}-{stack}-{model_name}") + _LONGEST_SUFFIX
    if longest > 63:
        raise r.fail(
            "modelName",
            model_name,
            f"a shorter name: '{project}-{stack}-<model>' must stay within "
            f"{63 - _LONGEST_SUFFIX} characters so bucket names fit 63",
        )

    autoscaling_min = r.integer("autoscalingMin", 1)
    autoscaling_max = r.integer("autoscalingMax", 4)
    if autoscaling_max < autoscaling_min:
        raise r.fail("autoscalingMax", autoscaling_max, f">= autoscalingMin ({autoscaling_min})")

    serverless_memory = r.integer("serverlessMemoryMb", 2048)
    if serverless_memory not in SERVERLESS_MEMORY_SIZES:
        raise r.fail(
            "serverlessMemoryMb",
            serverless_memory,
            f"one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES))}",
        )
    log_retention = r.integer("logRetentionDays", 30)
    if log_retention not in LOG_RETENTION_DAYS:
        raise r.fail(
            "logRetentionDays",
            log_retention,
            f"a CloudWatch Logs retention: one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
        )

    layer = r.raw("powertoolsLayerArn") or default_powertools_layer_arn(region)
    if layer == "none":
        layer = ""  # local cloud: handlers run with the venv's powertools, no layer exists
    elif not _LAYER_RE.match(layer):
        raise r.fail("powertoolsLayerArn", layer, "a Lambda layer version ARN")

    return Settings(
        project=project,
        stack=stack,
        region=region,
        model_name=model_name,
        endpoint_mode=r.choice("endpointMode", "serverless", ENDPOINT_MODES),
        retrain_schedule=_schedule(r, "retrainSchedule", "rate(7 days)"),
        drift_schedule=_schedule(r, "driftSchedule", "rate(1 day)"),
        drift_threshold=r.number("driftThreshold", 0.2, 0.0, strict=True),
        promotion_margin=r.number("promotionMargin", 0.01, 0.0),
        min_minority_recall=r.number("minMinorityRecall", 0.5, 0.0, 1.0),
        training_backend=r.choice("trainingBackend", "sagemaker", TRAINING_BACKENDS),
        training_instance_type=r.matching(
            "trainingInstanceType", "ml.m5.large", _SAGEMAKER_TYPE_RE, "a SageMaker type ml.*"
        ),
        training_image_uri=_image(r, "trainingImageUri", region),
        training_max_seconds=r.integer("trainingMaxSeconds", 3600, 60, 432000),
        training_hyperparameters=_hyperparameters(r),
        serving_image_uri=_image(r, "servingImageUri", region),
        serverless_memory_mb=serverless_memory,
        serverless_max_concurrency=r.integer("serverlessMaxConcurrency", 5, 1, 200),
        endpoint_instance_type=r.matching(
            "endpointInstanceType", "ml.m5.large", _SAGEMAKER_TYPE_RE, "a SageMaker type ml.*"
        ),
        endpoint_instance_count=r.integer("endpointInstanceCount", 1),
        autoscaling_min=autoscaling_min,
        autoscaling_max=autoscaling_max,
        autoscaling_target=r.integer("autoscalingTarget", 200),
        canary_percent=r.integer("canaryPercent", 10, 1, 99),
        capture_sample_percent=r.integer("captureSamplePercent", 100, 1, 100),
        capture_retention_days=r.integer("captureRetentionDays", 90),
        noncurrent_version_days=r.integer("noncurrentVersionDays", 30),
        raw_expiration_days=r.optional_integer("rawExpirationDays"),
        access_log_retention_days=r.integer("accessLogRetentionDays", 365),
        log_retention_days=log_retention,
        lambda_reserved_concurrency=r.integer("lambdaReservedConcurrency", 2, 1, 1000),
        lambda_timeout_seconds=r.integer("lambdaTimeoutSeconds", 120, 1, 900),
        lambda_memory_mb=r.integer("lambdaMemoryMb", 256, 128, 10240),
        endpoint_latency_p99_ms=r.integer("endpointLatencyP99Ms", 1000),
        metric_namespace=r.matching(
            "metricNamespace", "MLOps", _NAMESPACE_RE, "a CloudWatch namespace"
        ),
        ec2_ami_id=r.optional("ec2AmiId", _AMI_RE, "an AMI id ami-0123456789abcdef0"),
        ec2_instance_type=r.matching(
            "ec2InstanceType", "m5.large", _EC2_TYPE_RE, "an EC2 instance type such as m5.large"
        ),
        alert_email=r.optional("alertEmail", _EMAIL_RE, "an e-mail address"),
        powertools_layer_arn=layer,
        pinned_model_data_url=r.optional(
            "pinnedModelDataUrl", re.compile(r"^s3://[a-z0-9.-]{3,63}/.+"), "an s3:// URL"
        ),
    )


# --- Pulumi.<stack>.yaml ----------------------------------------------------------------


def available_stacks(repo_root: Path) -> list[str]:
    """Names of the stacks that have a ``Pulumi.<stack>.yaml`` in ``repo_root``."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in repo_root.glob("Pulumi.*.yaml"))


def _config_string(key: str, value: Any) -> str:
    """Render a YAML config value the way the Pulumi CLI hands it to the program."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    if isinstance(value, Mapping) and set(value) == {"secure"}:
        raise ConfigError(f"{key}: secret values cannot be read offline; set a plain value")
    return json.dumps(value)


def load_stack_config(stack: str, repo_root: Path) -> dict[str, str]:
    """Read the ``config:`` block of ``Pulumi.<stack>.yaml`` into ``{"ns:key": "value"}``.

    Values are strings, as the Pulumi CLI passes them (objects and lists as JSON),
    so ``pulumi.runtime.set_all_config`` and :func:`load_settings` see what
    ``pulumi up`` would.
    """
    path = repo_root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        stacks = available_stacks(repo_root)
        raise ConfigError(
            f"unknown stack {stack!r}: no {path.name} in {repo_root}; available stacks: "
            + (", ".join(stacks) if stacks else "(none)")
        )
    document = yaml.safe_load(path.read_text()) or {}
    block = document.get("config") or {}
    if not isinstance(block, Mapping):
        raise ConfigError(f"{path.name}: 'config' must be a mapping")
    values: dict[str, str] = {}
    for key, value in block.items():
        if ":" not in str(key):
            raise ConfigError(
                f"{path.name}: config key {key!r} needs a namespace, e.g. mlops:{key}"
            )
        if isinstance(value, Mapping) and "value" in value and len(value) == 1:
            value = value["value"]  # the long form `key: {value: ...}`
        values[str(key)] = _config_string(str(key), value)
    return values


def settings_for_stack(
    stack: str, repo_root: Path, overrides: Mapping[str, str] | None = None
) -> tuple[Settings, dict[str, str]]:
    """Load and validate ``Pulumi.<stack>.yaml`` (plus overrides): ``(settings, raw values)``."""
    values = load_stack_config(stack, repo_root)
    values.update(overrides or {})
    settings = load_settings(values.get, stack=stack, all_keys=values)
    return settings, values
