"""The configuration keys of the ``mlops`` namespace: name, default and meaning of each.

A key the stack passes to the Lambda functions as an environment variable takes its
default from :data:`lambdas.constants.DEFAULTS`, the control plane's own default, so a
stack that leaves the key unset configures the functions exactly as a missing variable
would. Keys only the infrastructure reads keep their default here.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config.published import AL2023_AMI_PARAMETER
from lambdas import constants as c

#: The Pulumi project, and the namespace of its configuration keys.
PROJECT = "mlops"


@dataclass(frozen=True)
class Key:
    """One configuration key: its name (without namespace), default and meaning.

    ``default`` is the value used when the key is unset, as the stack file would spell
    it; one in parentheses describes a value computed at load time (from the region).
    ``env`` is the Lambda environment variable the value is passed as, if any.
    """

    name: str
    default: str | None
    help: str
    env: str | None = None


def _env_key(name: str, env: str, help: str) -> Key:
    """A key passed to the functions as ``env``, defaulting as the functions do."""
    return Key(name, c.DEFAULTS[env], help, env)


#: Every key in the ``mlops`` namespace; docs/infra.md renders the same table.
KEYS: tuple[Key, ...] = (
    Key("modelName", None, "required; short model name (lowercase, digits, hyphens)"),
    Key("targetColumn", "label", "the CSV column the model predicts (the jobs' target)"),
    _env_key("endpointMode", c.ENDPOINT_MODE, "serverless or instance"),
    Key("retrainSchedule", "rate(7 days)", "EventBridge schedule expression for retraining"),
    Key("driftSchedule", "rate(1 day)", "EventBridge schedule expression for the drift check"),
    _env_key("driftThreshold", c.DRIFT_THRESHOLD, "PSI above which a feature drifts (> 0)"),
    _env_key(
        "driftWarnThreshold",
        c.DRIFT_WARN_THRESHOLD,
        "PSI above which a feature is a warning (>= 0)",
    ),
    _env_key("driftWindows", c.DRIFT_WINDOWS, "drift runs in a row before the alarm (1..48)"),
    _env_key(
        "driftMinShare",
        c.DRIFT_MIN_SHARE,
        "share of features that must drift for the alarm, [0, 1] (0: any one)",
    ),
    Key("qualitySchedule", "rate(1 hour)", "EventBridge schedule of the model-quality monitor"),
    _env_key(
        "qualityWindowHours",
        c.QUALITY_WINDOW_HOURS,
        "hours of predictions each quality run joins to their labels (1..720)",
    ),
    _env_key(
        "qualityTolerance",
        c.QUALITY_TOLERANCE,
        "how far the live primary metric may fall below the champion's test value, [0, 1]",
    ),
    _env_key(
        "qualityWindows",
        c.QUALITY_WINDOWS,
        "runs in a row below the tolerance that set the quality alarm (retrain), 1..48",
    ),
    _env_key(
        "qualityMinRows",
        c.QUALITY_MIN_ROWS,
        "fewest labelled predictions a window needs for realised metrics (1..100000)",
    ),
    _env_key(
        "feedbackToTraining",
        c.FEEDBACK_TO_TRAINING,
        "true: labelled predictions become incoming/<date>/feedback-*.csv for the next retrain",
    ),
    _env_key(
        "promotionMargin", c.PROMOTION_MARGIN, "challenger must beat the champion by this (>= 0)"
    ),
    _env_key(
        "minMinorityRecall", c.MIN_MINORITY_RECALL, "guardrail for imbalanced data, in [0, 1]"
    ),
    _env_key(
        "approvalMode",
        c.APPROVAL_MODE,
        "auto, or manual: every package that passes the gate waits for a person",
    ),
    _env_key(
        "referenceTolerance",
        c.REFERENCE_TOLERANCE,
        "largest loss of the primary metric to the champion on the reference set, in [0, 1]",
    ),
    Key(
        "maxFairnessGap",
        "(unset: no fairness rule)",
        "largest demographic-parity or equalized-odds difference the gate accepts, in [0, 1]; "
        "needs the sensitive-features hyperparameter",
        env=c.MAX_FAIRNESS_GAP,
    ),
    _env_key(
        "fairnessAction",
        c.FAIRNESS_ACTION,
        "hold (a person decides) or reject a model over mlops:maxFairnessGap",
    ),
    _env_key(
        "maxLabelShift",
        c.MAX_LABEL_SHIFT,
        "data guard: largest PSI between the new data's and the champion's class shares (> 0)",
    ),
    _env_key(
        "minLabelAgreement",
        c.MIN_LABEL_AGREEMENT,
        "data guard: share of its skill the champion must keep on the new labels, in [0, 1]",
    ),
    _env_key(
        "minLabelLearnability",
        c.MIN_LABEL_LEARNABILITY,
        "data guard: cross-validated skill on the new rows alone, as a share of the "
        "champion's, in [0, 1]",
    ),
    _env_key(
        "maxDuplicateShare",
        c.MAX_DUPLICATE_SHARE,
        "data guard: largest share of new rows that repeat rows seen before, in [0, 1]",
    ),
    _env_key(
        "deployWaitSeconds",
        c.DEPLOY_WAIT_SECONDS,
        "how long promote watches a rollout before the endpoint's event finishes it (0..600)",
    ),
    _env_key("trainingBackend", c.TRAINING_BACKEND, "sagemaker or ec2"),
    _env_key(
        "maxRetries",
        c.MAX_RETRIES,
        "new jobs for a data version whose job died of infrastructure (0..10)",
    ),
    _env_key(
        "retryBackoffSeconds",
        c.RETRY_BACKOFF_SECONDS,
        "wait before the first retry, doubled for each next (60..86400)",
    ),
    _env_key("trainingInstanceType", c.TRAINING_INSTANCE_TYPE, "SageMaker training instance type"),
    Key(
        "trainingImageUri",
        "(sklearn framework image of the region)",
        "training image (ECR URI)",
        env=c.TRAINING_IMAGE_URI,
    ),
    _env_key("trainingMaxSeconds", c.TRAINING_MAX_SECONDS, "training job stopping condition"),
    _env_key(
        "trainingHyperparameters",
        c.TRAINING_HYPERPARAMETERS,
        "JSON object passed to every training job",
    ),
    Key(
        "servingImageUri",
        "(sklearn framework image of the region)",
        "serving image (ECR URI)",
        env=c.SERVING_IMAGE_URI,
    ),
    _env_key("serverlessMemoryMb", c.SERVERLESS_MEMORY_MB, "1024..6144 in steps of 1024"),
    _env_key("serverlessMaxConcurrency", c.SERVERLESS_MAX_CONCURRENCY, "1..200"),
    _env_key(
        "endpointInstanceType", c.ENDPOINT_INSTANCE_TYPE, "instance mode: variant instance type"
    ),
    _env_key(
        "endpointInstanceCount", c.ENDPOINT_INSTANCE_COUNT, "instance mode: initial instance count"
    ),
    _env_key("autoscalingMin", c.AUTOSCALING_MIN, "instance mode: minimum instances"),
    _env_key(
        "autoscalingMax", c.AUTOSCALING_MAX, "instance mode: maximum instances (>= autoscalingMin)"
    ),
    _env_key(
        "autoscalingTarget",
        c.AUTOSCALING_TARGET,
        "instance mode: invocations per instance per minute",
    ),
    _env_key("canaryPercent", c.CANARY_PERCENT, "instance mode: canary traffic share, 1..99"),
    _env_key(
        "rolloutMode",
        c.ROLLOUT_MODE,
        "direct (blue/green), or shadow / ab: an approved challenger first runs beside the "
        "champion (instance mode)",
    ),
    _env_key(
        "abTrafficPercent", c.AB_TRAFFIC_PERCENT, "rolloutMode ab: the challenger's share, 1..50"
    ),
    _env_key(
        "rolloutMinRequests",
        c.ROLLOUT_MIN_REQUESTS,
        "requests the challenger serves before the trial's verdict (1..1000000)",
    ),
    Key(
        "rolloutCheckSchedule",
        "rate(15 minutes)",
        "rolloutMode shadow / ab: EventBridge schedule of the trial's check",
    ),
    _env_key("captureSamplePercent", c.CAPTURE_SAMPLE_PERCENT, "data capture sampling, 1..100"),
    Key("captureRetentionDays", "90", "capture bucket objects expire after this"),
    Key("noncurrentVersionDays", "30", "noncurrent object versions expire after this"),
    Key("rawExpirationDays", None, "optional; raw data is never expired by default"),
    Key("accessLogRetentionDays", "365", "S3 access logs expire after this"),
    Key("logRetentionDays", "30", "CloudWatch Logs retention (an allowed value)"),
    Key("lambdaReservedConcurrency", "2", "reserved concurrency per function (>= 1)"),
    Key("lambdaTimeoutSeconds", "120", "Lambda timeout, 1..900"),
    Key("lambdaMemoryMb", "256", "Lambda memory, 128..10240"),
    Key("endpointLatencyP99Ms", "1000", "p99 model latency alarm threshold"),
    _env_key("metricNamespace", c.METRIC_NAMESPACE, "CloudWatch namespace of the drift metric"),
    Key("ec2AmiId", None, f"optional; else the SSM public parameter {AL2023_AMI_PARAMETER}"),
    Key("ec2InstanceType", "m5.large", "EC2 training host instance type"),
    Key("alertEmail", None, "optional; e-mail subscription to the alert topic"),
    Key("powertoolsLayerArn", "(AWS-published v3 layer)", "Powertools layer ARN; none: no layer"),
    Key("pinnedModelDataUrl", None, "optional s3:// model.tar.gz: Pulumi creates the endpoint"),
)
KEY_NAMES = frozenset(k.name for k in KEYS)
#: name -> default: what :class:`infra.config.reader.Reader` falls back to.
KEY_DEFAULTS: dict[str, str | None] = {k.name: k.default for k in KEYS}
