"""Deterministic physical names and ARNs, derived from project, stack and model.

The control plane and the local cloud find resources by these names, so they are
plain strings computed up front (not Pulumi autonames) and known at preview.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.config import Settings
from lambdas import constants as c

FUNCTIONS = ("retrain", "promote", "drift", "quality")
#: The single production variant of every endpoint config (blue/green deployments need
#: the same variant name in the old and the new config).
VARIANT_NAME = c.VARIANT_NAME


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Names:
    """Names and ARNs of one stack's resources."""

    project: str
    stack: str
    model: str
    account_id: str
    region: str

    @classmethod
    def from_settings(cls, settings: Settings, account_id: str) -> Names:
        return cls(
            settings.project, settings.stack, settings.model_name, account_id, settings.region
        )

    # --- plain names ---------------------------------------------------------------
    @property
    def partition(self) -> str:
        return partition_for(self.region)

    @property
    def prefix(self) -> str:
        """``<project>-<stack>-<model>``: the prefix of every physical name."""
        return f"{self.project}-{self.stack}-{self.model}"

    @property
    def job_prefix(self) -> str:
        """``<model>-<stack>``: MLOPS_MODEL_NAME; training jobs are named ``<job_prefix>-…``."""
        return f"{self.model}-{self.stack}"

    def bucket(self, role: str) -> str:
        # The account id makes the (global) bucket name unique.
        return f"{self.prefix}-{role}-{self.account_id}"

    @property
    def raw_bucket(self) -> str:
        return self.bucket("raw")

    @property
    def artifacts_bucket(self) -> str:
        return self.bucket("artifacts")

    @property
    def capture_bucket(self) -> str:
        return self.bucket("capture")

    @property
    def access_log_bucket(self) -> str:
        return self.bucket("access-logs")

    @property
    def kms_alias(self) -> str:
        return f"alias/{self.prefix}"

    def function(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def function_log_group(self, kind: str) -> str:
        return f"/aws/lambda/{self.function(kind)}"

    def dlq(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-dlq"

    def role(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def rule(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def alarm(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    @property
    def table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def model_package_group(self) -> str:
        return self.prefix

    @property
    def endpoint(self) -> str:
        return self.prefix

    @property
    def launch_template(self) -> str:
        return f"{self.prefix}-training"

    @property
    def training_hosts(self) -> str:
        """The EC2 training hosts' Auto Scaling group (desired 0 when idle)."""
        return f"{self.prefix}-training-hosts"

    @property
    def training_jobs_queue(self) -> str:
        """The queue retrain puts EC2 training jobs on; the host takes them."""
        return f"{self.prefix}-training-jobs"

    @property
    def autoscaling_role(self) -> str:
        """The hosts' group's own Auto Scaling service-linked role (a custom suffix: the
        stack key's policy names it, and no other group in the account uses it)."""
        return f"AWSServiceRoleForAutoScaling_{self.prefix}"

    @property
    def drift_alarm(self) -> str:
        return self.alarm("drift")

    @property
    def quality_alarm(self) -> str:
        return self.alarm("quality")

    @property
    def rollback_alarms(self) -> tuple[str, str]:
        """The endpoint alarms a blue/green deployment rolls back on."""
        return self.alarm("endpoint-5xx"), self.alarm("endpoint-latency")

    @property
    def code_bundle_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/code/jobs.tar.gz"

    # --- ARNs ----------------------------------------------------------------------
    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    def bucket_arn(self, bucket: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket}"

    def role_arn(self, kind: str) -> str:
        return self.arn("iam", f"role/{self.role(kind)}", region=False)

    @property
    def account_root_arn(self) -> str:
        return self.arn("iam", "root", region=False)

    def function_arn(self, kind: str) -> str:
        return self.arn("lambda", f"function:{self.function(kind)}")

    def log_group_arn(self, name: str) -> str:
        return self.arn("logs", f"log-group:{name}")

    def queue_arn(self, kind: str) -> str:
        return self.arn("sqs", self.dlq(kind))

    @property
    def training_jobs_queue_arn(self) -> str:
        return self.arn("sqs", self.training_jobs_queue)

    @property
    def training_hosts_arn(self) -> str:
        # the group's id (a UUID) is AWS's: the name pins it
        return self.arn(
            "autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{self.training_hosts}"
        )

    @property
    def autoscaling_role_arn(self) -> str:
        return self.arn(
            "iam",
            f"role/aws-service-role/autoscaling.amazonaws.com/{self.autoscaling_role}",
            region=False,
        )

    @property
    def topic_arn(self) -> str:
        return self.arn("sns", self.topic)

    @property
    def table_arn(self) -> str:
        return self.arn("dynamodb", f"table/{self.table}")

    def alarm_arn(self, name: str) -> str:
        return self.arn("cloudwatch", f"alarm:{name}")

    def rule_arn(self, kind: str) -> str:
        return self.arn("events", f"rule/{self.rule(kind)}")

    def sagemaker_arn(self, resource_type: str, name: str) -> str:
        # SageMaker lower-cases names inside ARNs.
        return self.arn("sagemaker", f"{resource_type}/{name.lower()}")
