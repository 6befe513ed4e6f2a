"""Names shared by the Pulumi program, the Lambda handlers and the local cloud.

Every Lambda is configured only through environment variables; their names live
here so infra (which sets them) and lambdas (which read them) cannot drift apart.
"""

from __future__ import annotations

# --- environment variable names -------------------------------------------
MODEL_NAME = "MLOPS_MODEL_NAME"  # short model name, prefix of job/model names
RAW_BUCKET = "MLOPS_RAW_BUCKET"
ARTIFACTS_BUCKET = "MLOPS_ARTIFACTS_BUCKET"
CAPTURE_BUCKET = "MLOPS_CAPTURE_BUCKET"
KMS_KEY_ARN = "MLOPS_KMS_KEY_ARN"
SAGEMAKER_ROLE_ARN = "MLOPS_SAGEMAKER_ROLE_ARN"
MODEL_PACKAGE_GROUP = "MLOPS_MODEL_PACKAGE_GROUP"
ENDPOINT_NAME = "MLOPS_ENDPOINT_NAME"
IDEMPOTENCY_TABLE = "MLOPS_IDEMPOTENCY_TABLE"
ALERT_TOPIC_ARN = "MLOPS_ALERT_TOPIC_ARN"

# training
TRAINING_BACKEND = "MLOPS_TRAINING_BACKEND"  # "sagemaker" | "ec2"
TRAINING_IMAGE_URI = "MLOPS_TRAINING_IMAGE_URI"
TRAINING_INSTANCE_TYPE = "MLOPS_TRAINING_INSTANCE_TYPE"
TRAINING_MAX_SECONDS = "MLOPS_TRAINING_MAX_SECONDS"
TRAINING_HYPERPARAMETERS = "MLOPS_TRAINING_HYPERPARAMETERS"  # JSON object
CODE_S3_URI = "MLOPS_CODE_S3_URI"  # s3://.../code/jobs.tar.gz
SUBNET_IDS = "MLOPS_SUBNET_IDS"  # comma separated, optional
SECURITY_GROUP_IDS = "MLOPS_SECURITY_GROUP_IDS"  # comma separated, optional
NETWORK_ISOLATION = "MLOPS_NETWORK_ISOLATION"  # "true" | "false"
TRAINING_HOSTS = "MLOPS_TRAINING_HOSTS"  # EC2 backend: the hosts' Auto Scaling group
TRAINING_JOBS_QUEUE_URL = "MLOPS_TRAINING_JOBS_QUEUE_URL"  # EC2 backend: jobs for the host

# promotion gate
PRIMARY_METRIC = "MLOPS_PRIMARY_METRIC"  # optional override of evaluation.json's
PROMOTION_MARGIN = "MLOPS_PROMOTION_MARGIN"  # challenger must beat champion by this
MIN_MINORITY_RECALL = "MLOPS_MIN_MINORITY_RECALL"
APPROVAL_MODE = "MLOPS_APPROVAL_MODE"  # "auto" | "manual": every passing package waits for a human
MAX_FAIRNESS_GAP = "MLOPS_MAX_FAIRNESS_GAP"  # unset: no fairness rule in the gate
FAIRNESS_ACTION = "MLOPS_FAIRNESS_ACTION"  # "hold" | "reject" a model whose gap is too large
REFERENCE_TOLERANCE = "MLOPS_REFERENCE_TOLERANCE"  # allowed loss vs champion on the reference set
# data guard (the new data against the champion's profile): a tripped rule holds the package
MAX_LABEL_SHIFT = "MLOPS_MAX_LABEL_SHIFT"  # PSI of the class shares
MIN_LABEL_AGREEMENT = "MLOPS_MIN_LABEL_AGREEMENT"  # share of its skill the champion keeps
MIN_LABEL_LEARNABILITY = "MLOPS_MIN_LABEL_LEARNABILITY"  # CV skill on the new rows alone
MAX_DUPLICATE_SHARE = "MLOPS_MAX_DUPLICATE_SHARE"  # new rows that repeat rows seen before
DEPLOY_WAIT_SECONDS = "MLOPS_DEPLOY_WAIT_SECONDS"  # how long promote watches an update

# serving (the control plane creates endpoint configs with these settings)
SERVING_IMAGE_URI = "MLOPS_SERVING_IMAGE_URI"
ENDPOINT_MODE = "MLOPS_ENDPOINT_MODE"  # "serverless" | "instance"
SERVERLESS_MEMORY_MB = "MLOPS_SERVERLESS_MEMORY_MB"
SERVERLESS_MAX_CONCURRENCY = "MLOPS_SERVERLESS_MAX_CONCURRENCY"
ENDPOINT_INSTANCE_TYPE = "MLOPS_ENDPOINT_INSTANCE_TYPE"
ENDPOINT_INSTANCE_COUNT = "MLOPS_ENDPOINT_INSTANCE_COUNT"
CAPTURE_SAMPLE_PERCENT = "MLOPS_CAPTURE_SAMPLE_PERCENT"
ROLLBACK_ALARM_NAMES = "MLOPS_ROLLBACK_ALARM_NAMES"  # comma separated
CANARY_PERCENT = "MLOPS_CANARY_PERCENT"
AUTOSCALING_MIN = "MLOPS_AUTOSCALING_MIN"
AUTOSCALING_MAX = "MLOPS_AUTOSCALING_MAX"
AUTOSCALING_TARGET = "MLOPS_AUTOSCALING_TARGET"  # invocations per instance
# rollout: an approved challenger first runs beside the champion (lambdas.trial)
ROLLOUT_MODE = "MLOPS_ROLLOUT_MODE"  # "direct" (blue/green) | "shadow" | "ab"
AB_TRAFFIC_PERCENT = "MLOPS_AB_TRAFFIC_PERCENT"  # the challenger's share in "ab" (1..50)
ROLLOUT_MIN_REQUESTS = "MLOPS_ROLLOUT_MIN_REQUESTS"  # challenger requests before a verdict
ROLLOUT_MIN_AGREEMENT = "MLOPS_ROLLOUT_MIN_AGREEMENT"  # shadow: same label as the champion
ROLLOUT_MAX_ERROR_INCREASE = "MLOPS_ROLLOUT_MAX_ERROR_INCREASE"  # 5XX rate over the champion's
ROLLOUT_MAX_LATENCY_RATIO = "MLOPS_ROLLOUT_MAX_LATENCY_RATIO"  # mean model latency, x champion's
ROLLOUT_MAX_HOURS = "MLOPS_ROLLOUT_MAX_HOURS"  # a trial short of its requests by then: withdrawn

# drift
DRIFT_THRESHOLD = "MLOPS_DRIFT_THRESHOLD"
DRIFT_ALARM_NAME = "MLOPS_DRIFT_ALARM_NAME"
METRIC_NAMESPACE = "MLOPS_METRIC_NAMESPACE"
DRIFT_MIN_ROWS = "MLOPS_DRIFT_MIN_ROWS"  # fewer captured rows: wait for more traffic
DRIFT_WARN_THRESHOLD = "MLOPS_DRIFT_WARN_THRESHOLD"  # PSI over this: a warning, no alarm
DRIFT_WINDOWS = "MLOPS_DRIFT_WINDOWS"  # runs in a row over the threshold before the alarm
DRIFT_MIN_SHARE = "MLOPS_DRIFT_MIN_SHARE"  # share of features that must drift (0: any one)

# model quality from ground truth
QUALITY_WINDOW_HOURS = "MLOPS_QUALITY_WINDOW_HOURS"  # predictions joined per run
QUALITY_TOLERANCE = "MLOPS_QUALITY_TOLERANCE"  # shortfall of the primary metric allowed
QUALITY_WINDOWS = "MLOPS_QUALITY_WINDOWS"  # breaches in a row that set the alarm
QUALITY_MIN_ROWS = "MLOPS_QUALITY_MIN_ROWS"  # fewer labelled rows: estimates only
QUALITY_ALARM_NAME = "MLOPS_QUALITY_ALARM_NAME"
FEEDBACK_TO_TRAINING = "MLOPS_FEEDBACK_TO_TRAINING"  # labelled rows -> incoming/

# control plane
IDEMPOTENCY_TTL_DAYS = "MLOPS_IDEMPOTENCY_TTL_DAYS"  # how long a data version stays "done"
CAPTURE_ENABLED = "MLOPS_CAPTURE_ENABLED"  # "auto" (instance only) | "true" | "false"
MAX_RETRIES = "MLOPS_MAX_RETRIES"  # new jobs for a data version whose job died of infrastructure
RETRY_BACKOFF_SECONDS = "MLOPS_RETRY_BACKOFF_SECONDS"  # wait before retry n: this * 2**(n-1)

# --- fixed names and layout ------------------------------------------------
INCOMING_PREFIX = "incoming/"
TRAINING_PREFIX = "training/"
CODE_PREFIX = "code/"
LINEAGE_PREFIX = "lineage/"
MODELS_PREFIX = "models/"  # gated archives, written by promote only: what serves
REFERENCE_PREFIX = "reference/"  # the frozen reference set, changed by promote or a person
REFERENCE_MANIFEST_KEY = "reference/current.json"
CODE_BUNDLE_KEY = "code/jobs.tar.gz"
DRIFT_STATE_KEY_PREFIX = "drift-state/"  # artifacts bucket: last capture key read
GROUND_TRUTH_PREFIX = "ground-truth/"  # raw bucket: labels, Model Monitor's format
QUALITY_STATE_KEY_PREFIX = "quality-state/"  # artifacts bucket: breaches, labels fed back
FEEDBACK_FILE_PREFIX = "feedback-"  # incoming/<date>/feedback-*.csv: joined labelled rows

MODEL_FILE = "model.joblib"
EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
REPORT_FILE = "report.html"
TEST_SPLIT_FILE = "test.csv"  # in output.tar.gz: the job's test split (a reference candidate)
OUTPUT_ARCHIVE = "output.tar.gz"

DEFAULT_METRIC_NAMESPACE = "MLOps"
DRIFT_METRIC_NAME = "FeatureDriftPSI"  # dimensions: Model, Feature ("_max" for the max)
QUALITY_METRIC = "ModelQuality"  # dimensions: Model, Metric
QUALITY_ESTIMATED_METRIC = "ModelQualityEstimated"  # dimensions: Model, Metric (CBPE)
QUALITY_SHORTFALL_METRIC = "ModelQualityShortfall"  # dimension Model: expected - realised
LABELLED_ROWS_METRIC = "LabelledRows"  # dimension Model
EVENT_SOURCE = "mlops.control-plane"  # source of manual/drift requests
RETRAIN_REQUEST = "RetrainRequest"  # detail-type of a manual retrain request
PROMOTE_REQUEST = "PromoteRequest"  # detail-type of a manual promote request
# detail-type of SageMaker's training state events; the EC2 training host sends the same
# detail-type (source EVENT_SOURCE) so one rule and one code path serve both backends
TRAINING_STATE_CHANGE = "SageMaker Training Job State Change"
PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"
ENDPOINT_STATE_CHANGE = "SageMaker Endpoint State Change"
DEFAULT_SKLEARN_IMAGE_TAG = "1.4-2-cpu-py3"  # sagemaker-scikit-learn framework image tag
VARIANT_NAME = "AllTraffic"
CHALLENGER_VARIANT_NAME = "Challenger"  # a rollout's shadow or A/B variant
ROLLOUT_CHECK = "RolloutCheck"  # detail-type of the scheduled (or manual) rollout check
# the serving Model's environment: digests of what the gate approved; the serving code
# refuses a model.joblib (SageMaker container) or an archive (local cloud) that differs
MODEL_SHA256_ENV = "MLOPS_MODEL_SHA256"
MODEL_ARCHIVE_SHA256_ENV = "MLOPS_MODEL_ARCHIVE_SHA256"

DEFAULTS: dict[str, str] = {
    TRAINING_BACKEND: "sagemaker",
    TRAINING_INSTANCE_TYPE: "ml.m5.large",
    TRAINING_MAX_SECONDS: "3600",
    TRAINING_HYPERPARAMETERS: "{}",
    NETWORK_ISOLATION: "false",
    PROMOTION_MARGIN: "0.01",
    MIN_MINORITY_RECALL: "0.5",
    APPROVAL_MODE: "auto",
    REFERENCE_TOLERANCE: "0.02",
    FAIRNESS_ACTION: "hold",
    MAX_LABEL_SHIFT: "0.1",
    MIN_LABEL_AGREEMENT: "0.25",
    MIN_LABEL_LEARNABILITY: "0.25",
    MAX_DUPLICATE_SHARE: "0.2",
    DEPLOY_WAIT_SECONDS: "120",
    ENDPOINT_MODE: "serverless",
    SERVERLESS_MEMORY_MB: "2048",
    SERVERLESS_MAX_CONCURRENCY: "5",
    ENDPOINT_INSTANCE_TYPE: "ml.m5.large",
    ENDPOINT_INSTANCE_COUNT: "1",
    CAPTURE_SAMPLE_PERCENT: "100",
    CANARY_PERCENT: "10",
    AUTOSCALING_MIN: "1",
    AUTOSCALING_MAX: "4",
    AUTOSCALING_TARGET: "200",
    ROLLOUT_MODE: "direct",
    AB_TRAFFIC_PERCENT: "10",
    ROLLOUT_MIN_REQUESTS: "200",
    ROLLOUT_MIN_AGREEMENT: "0.8",
    ROLLOUT_MAX_ERROR_INCREASE: "0.01",
    ROLLOUT_MAX_LATENCY_RATIO: "2.0",
    ROLLOUT_MAX_HOURS: "168",
    DRIFT_THRESHOLD: "0.25",
    DRIFT_WARN_THRESHOLD: "0.1",
    DRIFT_WINDOWS: "1",
    DRIFT_MIN_SHARE: "0.0",
    METRIC_NAMESPACE: DEFAULT_METRIC_NAMESPACE,
    DRIFT_MIN_ROWS: "50",
    QUALITY_WINDOW_HOURS: "24",
    QUALITY_TOLERANCE: "0.05",
    QUALITY_WINDOWS: "2",
    QUALITY_MIN_ROWS: "30",
    FEEDBACK_TO_TRAINING: "true",
    IDEMPOTENCY_TTL_DAYS: "365",
    CAPTURE_ENABLED: "auto",
    MAX_RETRIES: "2",
    RETRY_BACKOFF_SECONDS: "900",
}
