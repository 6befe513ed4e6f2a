"""Storage: the stack's customer-managed KMS key and its four buckets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from infra import policies
from infra.naming import Names

ABORT_MULTIPART_DAYS = 7
_LOG_ROLE = "access-logs"
_BUCKET_KEYS = {_LOG_ROLE: "accessLog"}  # role in names -> key in self.buckets / outputs


@dataclass
class StorageArgs:
    names: Names
    noncurrent_version_days: int
    capture_retention_days: int
    access_log_retention_days: int
    raw_expiration_days: int | None = None  # None: raw data is never expired


class Storage(pulumi.ComponentResource):
    """KMS key (rotation on) and the raw, artifacts, capture and access-log buckets.

    Every bucket: versioning, SSE-KMS with a bucket key, all four public-access
    blocks, a TLS-only policy, BucketOwnerEnforced, lifecycle rules; the three data
    buckets log to the access-log bucket; the raw bucket sends events to EventBridge.
    """

    key: aws.kms.Key
    buckets: dict[str, aws.s3.Bucket]

    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:Storage", name, None, opts)
        n = args.names
        child = pulumi.ResourceOptions(parent=self)

        # The EC2 training hosts' group gets its own Auto Scaling service-linked role,
        # created before the key: KMS refuses a key policy naming a role that does not exist.
        self.autoscaling_role = aws.iam.ServiceLinkedRole(
            f"{name}-autoscaling-role",
            aws_service_name="autoscaling.amazonaws.com",
            custom_suffix=n.prefix,
            description=f"{n.prefix}: launches the EC2 training hosts",
            opts=child,
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{n.prefix}: buckets, queues, topic, table, logs, EBS",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(policies.kms_key_policy(n)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.autoscaling_role]),
        )
        self.key_alias = aws.kms.Alias(
            f"{name}-key-alias", name=n.kms_alias, target_key_id=self.key.key_id, opts=child
        )

        #: "raw", "artifacts", "capture", "accessLog"
        self.buckets = {}
        self.policies: dict[str, aws.s3.BucketPolicy] = {}
        # The access-log bucket first: the others log into it.
        noncurrent = {"noncurrent_days": args.noncurrent_version_days}
        log_bucket = self._bucket(
            name,
            "access-logs",
            n.access_log_bucket,
            args,
            log_sources=[n.raw_bucket, n.artifacts_bucket, n.capture_bucket],
            lifecycle=[
                {
                    "id": "expire-access-logs",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.access_log_retention_days},
                    "noncurrent_version_expiration": noncurrent,
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_MULTIPART_DAYS
                    },
                }
            ],
        )
        raw_rule: dict[str, Any] = {
            "id": "expire-noncurrent-versions",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "noncurrent_version_expiration": noncurrent,
            "abort_incomplete_multipart_upload": {"days_after_initiation": ABORT_MULTIPART_DAYS},
        }
        if args.raw_expiration_days is not None:
            raw_rule["expiration"] = {"days": args.raw_expiration_days}
        self._bucket(name, "raw", n.raw_bucket, args, log_to=log_bucket, lifecycle=[raw_rule])
        self._bucket(
            name,
            "artifacts",
            n.artifacts_bucket,
            args,
            log_to=log_bucket,
            lifecycle=[{**raw_rule, "expiration": None}],
        )
        self._bucket(
            name,
            "capture",
            n.capture_bucket,
            args,
            log_to=log_bucket,
            lifecycle=[
                {
                    "id": "expire-old-capture-data",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.capture_retention_days},
                    "noncurrent_version_expiration": {"noncurrent_days": 1},
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_MULTIPART_DAYS
                    },
                }
            ],
        )
        # New data under raw/incoming/ reaches the retrain rule through EventBridge.
        self.raw_notification = aws.s3.BucketNotification(
            f"{name}-raw-eventbridge",
            bucket=self.buckets["raw"].id,
            eventbridge=True,
            opts=child,
        )

        self.register_outputs(
            {
                "kmsKeyArn": self.key.arn,
                **{f"{role}Bucket": bucket.bucket for role, bucket in self.buckets.items()},
            }
        )

    def _bucket(
        self,
        name: str,
        role: str,
        bucket_name: str,
        args: StorageArgs,
        *,
        lifecycle: list[dict[str, Any]],
        log_to: aws.s3.Bucket | None = None,
        log_sources: list[str] | None = None,
    ) -> aws.s3.Bucket:
        n = args.names
        child = pulumi.ResourceOptions(parent=self)
        logical = f"{name}-{role}"
        bucket = aws.s3.Bucket(logical, bucket=bucket_name, force_destroy=False, opts=child)
        self.buckets[_BUCKET_KEYS.get(role, role)] = bucket

        aws.s3.BucketOwnershipControls(
            f"{logical}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{logical}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{logical}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{logical}-encryption",
            bucket=bucket.id,
            rules=[
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": self.key.arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=child,
        )
        self.policies[role] = aws.s3.BucketPolicy(
            f"{logical}-policy",
            bucket=bucket.id,
            policy=json.dumps(policies.bucket_policy(n, bucket_name, log_sources or ())),
            # A bucket policy is refused while the public-access block is being applied.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access]),
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{logical}-lifecycle",
            bucket=bucket.id,
            rules=[{k: v for k, v in rule.items() if v is not None} for rule in lifecycle],  # type: ignore[misc]
            opts=child,
        )
        if log_to is not None:
            aws.s3.BucketLogging(
                f"{logical}-logging",
                bucket=bucket.id,
                target_bucket=log_to.id,
                target_prefix=f"{role}/",
                # S3 refuses logging until the log bucket's policy admits the log service.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policies[_LOG_ROLE]]),
            )
        return bucket
