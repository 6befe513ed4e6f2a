"""Validate raw configuration values into :class:`~infra.config.settings.Settings`.

``pulumi.Config`` is read in ``infra/__main__.py`` only; everything else gets a
:class:`Settings`. The same values reach :func:`load_settings` from three places:
the Pulumi CLI, the offline preview and the tests (both through
:func:`~infra.config.stack_file.load_stack_config`, which reads ``Pulumi.<stack>.yaml``
the way the CLI does).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from infra.config.keys import KEY_DEFAULTS, KEY_NAMES, KEYS, PROJECT
from infra.config.published import ECR_IMAGE_RE, default_image_uri, default_powertools_layer_arn
from infra.config.reader import Getter, Reader
from infra.config.settings import Settings, StackConfigError

ENDPOINT_MODES = ("serverless", "instance")
ROLLOUT_MODES = ("direct", "shadow", "ab")
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
_SAGEMAKER_TYPE_RE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
_EC2_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_AMI_RE = re.compile(r"^ami-[0-9a-f]{8,17}$")
_LAYER_RE = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:layer:[A-Za-z0-9_-]+:[0-9]+$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9._/#:-]{1,255}$")

#: The longest physical name derived from the model name (see infra/naming.py) must fit
#: S3's 63-character bucket name limit: "<project>-<stack>-<model>-access-logs-<account>".
_LONGEST_SUFFIX = len("-access-logs-") + 12


def _schedule(r: Reader, name: str) -> str:
    value = r.string(name)
    if not (_RATE_RE.match(value) or _CRON_RE.match(value)):
        raise r.fail(
            name,
            value,
            "an EventBridge schedule expression such as 'rate(7 days)', 'rate(1 day)' or "
            "'cron(0 3 ? * MON *)'",
        )
    return value


def _hyperparameters(r: Reader) -> str:
    """trainingHyperparameters, with ``target`` from targetColumn when that is set."""
    value = r.string("trainingHyperparameters")
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        raise r.fail("trainingHyperparameters", value, "a JSON object") from None
    if not isinstance(parsed, dict):
        raise r.fail("trainingHyperparameters", value, "a JSON object")
    target = r.raw("targetColumn")
    if target is not None:
        if not str(target).strip():
            raise r.fail("targetColumn", target, "a column name")
        if "target" in parsed and parsed["target"] != target:
            raise r.fail(
                "targetColumn",
                target,
                f"the same column as trainingHyperparameters' target ({parsed['target']!r}), "
                "or only one of the two",
            )
        parsed["target"] = str(target).strip()
    return json.dumps(parsed, sort_keys=True)


def _image(r: Reader, name: str, region: str) -> str:
    value = r.raw(name)
    if value is None:
        try:
            return default_image_uri(region)
        except StackConfigError as exc:
            raise StackConfigError(f"{r.key(name)}: {exc}") from None
    if not ECR_IMAGE_RE.match(value):
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
        program does not know raise a :class:`StackConfigError` (catches typos).

    Raises
    ------
    StackConfigError
        Naming the key, the bad value and what is allowed.
    """
    r = Reader(get, project, KEY_DEFAULTS)
    if all_keys is not None:
        unknown = sorted(
            k
            for k in all_keys
            if k.startswith(f"{project}:") and k.split(":", 1)[1] not in KEY_NAMES
        )
        if unknown:
            raise StackConfigError(
                f"unknown configuration key(s) {', '.join(unknown)}; known keys: "
                + ", ".join(f"{project}:{k.name}" for k in KEYS)
            )

    region_value = get("aws:region")
    region = str(region_value).strip() if region_value else ""
    if not region:
        raise StackConfigError("aws:region is required (pulumi config set aws:region us-east-1)")
    if not _REGION_RE.match(region):
        raise StackConfigError(f"aws:region: {region!r} is not an AWS region name")

    model_name = r.raw("modelName")
    if model_name is None:
        raise StackConfigError(
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

    autoscaling_min = r.integer("autoscalingMin")
    autoscaling_max = r.integer("autoscalingMax")
    if autoscaling_max < autoscaling_min:
        raise r.fail("autoscalingMax", autoscaling_max, f">= autoscalingMin ({autoscaling_min})")

    endpoint_mode = r.choice("endpointMode", ENDPOINT_MODES)
    rollout_mode = r.choice("rolloutMode", ROLLOUT_MODES)
    if rollout_mode != "direct" and endpoint_mode != "instance":
        raise r.fail(
            "rolloutMode",
            rollout_mode,
            "direct with mlops:endpointMode serverless: SageMaker Serverless endpoints have "
            "one variant and no shadow (set endpointMode instance for shadow or ab)",
        )

    serverless_memory = r.integer("serverlessMemoryMb")
    if serverless_memory not in SERVERLESS_MEMORY_SIZES:
        raise r.fail(
            "serverlessMemoryMb",
            serverless_memory,
            f"one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES))}",
        )
    log_retention = r.integer("logRetentionDays")
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

    drift_threshold = r.number("driftThreshold", low=0.0, strict=True)
    drift_warn_threshold = r.number("driftWarnThreshold", low=0.0)
    if drift_warn_threshold > drift_threshold:
        raise r.fail(
            "driftWarnThreshold",
            drift_warn_threshold,
            f"a PSI at most mlops:driftThreshold ({drift_threshold}): warnings come first",
        )

    return Settings(
        project=project,
        stack=stack,
        region=region,
        model_name=model_name,
        endpoint_mode=endpoint_mode,
        retrain_schedule=_schedule(r, "retrainSchedule"),
        drift_schedule=_schedule(r, "driftSchedule"),
        drift_threshold=drift_threshold,
        drift_warn_threshold=drift_warn_threshold,
        drift_windows=r.integer("driftWindows", low=1, high=48),
        drift_min_share=r.number("driftMinShare", low=0.0, high=1.0),
        quality_schedule=_schedule(r, "qualitySchedule"),
        quality_window_hours=r.integer("qualityWindowHours", low=1, high=720),
        quality_tolerance=r.number("qualityTolerance", low=0.0, high=1.0),
        quality_windows=r.integer("qualityWindows", low=1, high=48),
        quality_min_rows=r.integer("qualityMinRows", low=1, high=100_000),
        feedback_to_training=r.choice("feedbackToTraining", ("true", "false")),
        promotion_margin=r.number("promotionMargin", low=0.0),
        min_minority_recall=r.number("minMinorityRecall", low=0.0, high=1.0),
        approval_mode=r.choice("approvalMode", ("auto", "manual")),
        reference_tolerance=r.number("referenceTolerance", low=0.0, high=1.0),
        max_fairness_gap=(
            None
            if r.raw("maxFairnessGap") is None
            else r.number("maxFairnessGap", low=0.0, high=1.0)
        ),
        fairness_action=r.choice("fairnessAction", ("hold", "reject")),
        max_label_shift=r.number("maxLabelShift", low=0.0, strict=True),
        min_label_agreement=r.number("minLabelAgreement", low=0.0, high=1.0),
        min_label_learnability=r.number("minLabelLearnability", low=0.0, high=1.0),
        max_duplicate_share=r.number("maxDuplicateShare", low=0.0, high=1.0),
        deploy_wait_seconds=r.integer("deployWaitSeconds", low=0, high=600),
        training_backend=r.choice("trainingBackend", TRAINING_BACKENDS),
        max_retries=r.integer("maxRetries", low=0, high=10),
        retry_backoff_seconds=r.integer("retryBackoffSeconds", low=60, high=86400),
        training_instance_type=r.matching(
            "trainingInstanceType", _SAGEMAKER_TYPE_RE, "a SageMaker type ml.*"
        ),
        training_image_uri=_image(r, "trainingImageUri", region),
        training_max_seconds=r.integer("trainingMaxSeconds", low=60, high=432000),
        training_hyperparameters=_hyperparameters(r),
        serving_image_uri=_image(r, "servingImageUri", region),
        serverless_memory_mb=serverless_memory,
        serverless_max_concurrency=r.integer("serverlessMaxConcurrency", low=1, high=200),
        endpoint_instance_type=r.matching(
            "endpointInstanceType", _SAGEMAKER_TYPE_RE, "a SageMaker type ml.*"
        ),
        endpoint_instance_count=r.integer("endpointInstanceCount"),
        autoscaling_min=autoscaling_min,
        autoscaling_max=autoscaling_max,
        autoscaling_target=r.integer("autoscalingTarget"),
        canary_percent=r.integer("canaryPercent", low=1, high=99),
        rollout_mode=rollout_mode,
        ab_traffic_percent=r.integer("abTrafficPercent", low=1, high=50),
        rollout_min_requests=r.integer("rolloutMinRequests", low=1, high=1_000_000),
        rollout_check_schedule=_schedule(r, "rolloutCheckSchedule"),
        capture_sample_percent=r.integer("captureSamplePercent", low=1, high=100),
        capture_retention_days=r.integer("captureRetentionDays"),
        noncurrent_version_days=r.integer("noncurrentVersionDays"),
        raw_expiration_days=r.optional_integer("rawExpirationDays"),
        access_log_retention_days=r.integer("accessLogRetentionDays"),
        log_retention_days=log_retention,
        lambda_reserved_concurrency=r.integer("lambdaReservedConcurrency", low=1, high=1000),
        lambda_timeout_seconds=r.integer("lambdaTimeoutSeconds", low=1, high=900),
        lambda_memory_mb=r.integer("lambdaMemoryMb", low=128, high=10240),
        endpoint_latency_p99_ms=r.integer("endpointLatencyP99Ms"),
        metric_namespace=r.matching("metricNamespace", _NAMESPACE_RE, "a CloudWatch namespace"),
        ec2_ami_id=r.optional("ec2AmiId", _AMI_RE, "an AMI id ami-0123456789abcdef0"),
        ec2_instance_type=r.matching(
            "ec2InstanceType", _EC2_TYPE_RE, "an EC2 instance type such as m5.large"
        ),
        alert_email=r.optional("alertEmail", _EMAIL_RE, "an e-mail address"),
        powertools_layer_arn=layer,
        pinned_model_data_url=r.optional(
            "pinnedModelDataUrl", re.compile(r"^s3://[a-z0-9.-]{3,63}/.+"), "an s3:// URL"
        ),
    )
