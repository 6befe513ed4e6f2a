"""IAM and resource policy documents as pure functions returning dicts.

Every statement is scoped to this stack's own buckets, prefixes, key, table, topic,
queues, alarms, model package group, endpoint and roles. ``Resource: "*"`` appears
only where the action has no resource-level permission; each such place says why
and carries a condition where AWS offers one. Components ``json.dumps`` the result
at the edge, inside ``Output.apply`` where an input (the key ARN) is an Output.

One module per kind of policy: :mod:`~infra.policies.trust` (who may assume a role),
:mod:`~infra.policies.key` (the stack key), :mod:`~infra.policies.resources` (buckets,
queues, topic), :mod:`~infra.policies.execution` (the roles jobs run under) and
:mod:`~infra.policies.control_plane` (the functions' roles); the statements they share
live in :mod:`~infra.policies.grants` and :mod:`~infra.policies.statements`.
"""

from infra.policies.control_plane import (
    drift_policy,
    promote_policy,
    quality_policy,
    retrain_policy,
    start_training_host_policy,
)
from infra.policies.execution import ec2_training_policy, sagemaker_execution_policy
from infra.policies.grants import KMS_DATA_ACTIONS
from infra.policies.key import KMS_ACCOUNT_ACTIONS, kms_key_policy
from infra.policies.limits import KEY_SERVICES, Limits
from infra.policies.resources import (
    bucket_policy,
    dlq_policy,
    topic_policy,
    training_jobs_queue_policy,
)
from infra.policies.statements import VERSION, Document, Statement, document
from infra.policies.trust import assume_role_policy

__all__ = [
    "KEY_SERVICES",
    "KMS_ACCOUNT_ACTIONS",
    "KMS_DATA_ACTIONS",
    "VERSION",
    "Document",
    "Limits",
    "Statement",
    "assume_role_policy",
    "bucket_policy",
    "dlq_policy",
    "document",
    "drift_policy",
    "ec2_training_policy",
    "kms_key_policy",
    "promote_policy",
    "quality_policy",
    "retrain_policy",
    "sagemaker_execution_policy",
    "start_training_host_policy",
    "topic_policy",
    "training_jobs_queue_policy",
]
