"""What the stack's configuration becomes: one frozen, validated :class:`Settings`."""

from __future__ import annotations

import json
from dataclasses import dataclass

from infra.errors import InfraError


class StackConfigError(InfraError, ValueError):
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
    drift_warn_threshold: float
    drift_windows: int
    drift_min_share: float
    quality_schedule: str
    quality_window_hours: int
    quality_tolerance: float
    quality_windows: int
    quality_min_rows: int
    feedback_to_training: str  # "true" | "false", as the functions read it
    promotion_margin: float
    min_minority_recall: float
    approval_mode: str
    reference_tolerance: float
    max_fairness_gap: float | None
    fairness_action: str
    max_label_shift: float
    min_label_agreement: float
    min_label_learnability: float
    max_duplicate_share: float
    deploy_wait_seconds: int
    training_backend: str
    max_retries: int
    retry_backoff_seconds: int
    training_instance_type: str
    training_image_uri: str
    training_max_seconds: int
    training_hyperparameters: str  # a JSON object, normalised (sorted keys)

    @property
    def target_column(self) -> str:
        """The column the model predicts (``targetColumn``, else the jobs' default)."""
        return str(json.loads(self.training_hyperparameters).get("target", "label"))

    serving_image_uri: str
    serverless_memory_mb: int
    serverless_max_concurrency: int
    endpoint_instance_type: str
    endpoint_instance_count: int
    autoscaling_min: int
    autoscaling_max: int
    autoscaling_target: int
    canary_percent: int
    rollout_mode: str  # direct | shadow | ab
    ab_traffic_percent: int
    rollout_min_requests: int
    rollout_check_schedule: str
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
