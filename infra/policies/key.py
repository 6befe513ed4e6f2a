"""The stack key's policy: the account administers it, AWS services only use it."""

from __future__ import annotations

from infra.naming import Names
from infra.policies.statements import Document, allow, document

#: Explicit key administration + use for the account (instead of the default "kms:*").
KMS_ACCOUNT_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]


def kms_key_policy(n: Names) -> Document:
    """Key policy: the account administers and uses the key through IAM; the AWS services
    that encrypt on this stack's behalf get only data-key use, conditioned on this account
    (and, for CloudWatch Logs, on this stack's log groups)."""
    logs_context = n.arn("logs", f"log-group:/aws/lambda/{n.prefix}-*")
    return document(
        # In a key policy "Resource": "*" means "this key".
        allow(
            "AccountAdministersAndUsesKeyThroughIam",
            KMS_ACCOUNT_ACTIONS,
            "*",
            Principal={"AWS": n.account_root_arn},
        ),
        allow(
            "CloudWatchLogsEncryptsThisStacksLogGroups",
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "*",
            Principal={"Service": f"logs.{n.region}.amazonaws.com"},
            # the encryption-context key is a string (ArnLike is a type mismatch)
            Condition={"StringLike": {"kms:EncryptionContext:aws:logs:arn": logs_context}},
        ),
        allow(
            # Alarms publish to the KMS-encrypted alert topic.
            "CloudWatchAlarmsPublishToEncryptedTopic",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            "*",
            Principal={"Service": "cloudwatch.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": n.account_id}},
        ),
        allow(
            # The training hosts' group launches hosts whose EBS volume is encrypted with
            # the stack key: its service-linked role uses the key, through EC2 only.
            "TrainingHostsGroupEncryptsVolumes",
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "*",
            Principal={"AWS": n.autoscaling_role_arn},
            Condition={"StringEquals": {"kms:ViaService": f"ec2.{n.region}.amazonaws.com"}},
        ),
        allow(
            "TrainingHostsGroupGrantsVolumeKey",
            ["kms:CreateGrant"],
            "*",
            Principal={"AWS": n.autoscaling_role_arn},
            Condition={"Bool": {"kms:GrantIsForAWSResource": "true"}},
        ),
        allow(
            # Server access logs land in the SSE-KMS access-log bucket.
            "S3ServerAccessLogDelivery",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            "*",
            Principal={"Service": "logging.s3.amazonaws.com"},
            Condition={"StringEquals": {"aws:SourceAccount": n.account_id}},
        ),
    )
