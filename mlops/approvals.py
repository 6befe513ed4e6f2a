"""A person's side of the gate: approve or reject a held package, set the reference set.

What ``mlops approve`` / ``reject`` / ``reference`` do, against AWS or the local cloud.
An approval is only a registry update, exactly what ``aws sagemaker
update-model-package`` does: SageMaker's "Model Package State Change" brings promote,
which checks the package and deploys it (:mod:`lambdas.approval`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws import error_text
from lambdas.packages import DECISION_PROPERTY, describe_package, update_package
from lambdas.reference import (
    ReferenceError,
    current_reference,
    freeze_job_test_split,
    set_reference,
)
from mlops.errors import MlopsError
from mlops.ops import control_plane
from mlops.target import Target

PENDING = "PendingManualApproval"


class ApprovalError(MlopsError, ValueError):
    """The decision cannot be recorded; the message says why."""


def caller(target: Target) -> str:
    """Who is asking, as AWS knows them (the ARN recorded with the decision)."""
    try:
        return str(target.client("sts").get_caller_identity()["Arn"])
    except ClientError as exc:
        raise ApprovalError(f"cannot tell who you are (sts): {error_text(exc)}") from None


def decide(target: Target, arn: str, status: str, reason: str) -> dict[str, Any]:
    """Set a held package ``Approved`` or ``Rejected``; returns the package before."""
    if status not in {"Approved", "Rejected"}:
        raise ApprovalError(f"status must be Approved or Rejected, not {status!r}")
    _, clients = control_plane(target)
    try:
        package = describe_package(clients, arn)
    except ClientError as exc:
        raise ApprovalError(f"cannot describe {arn}: {error_text(exc)}") from None
    current = package.get("ModelApprovalStatus")
    decided = (package.get("CustomerMetadataProperties") or {}).get(DECISION_PROPERTY)
    if current != PENDING:
        raise ApprovalError(
            f"version {package.get('ModelPackageVersion')} is {current}, not {PENDING}: "
            "only a package the gate held waits for a person"
        )
    if decided != PENDING:
        raise ApprovalError(
            f"version {package.get('ModelPackageVersion')} was not held by the gate"
        )
    who = caller(target)
    verb = "approved" if status == "Approved" else "rejected"
    text = f"{verb} by {who} via mlops: {reason}"[:1024]
    try:
        update_package(clients, arn, status=status, description=text)
    except ClientError as exc:
        raise ApprovalError(f"cannot update {arn}: {error_text(exc)}") from None
    return {"arn": arn, "version": package.get("ModelPackageVersion"), "by": who, "text": text}


def show_reference(target: Target) -> dict[str, Any] | None:
    config, clients = control_plane(target)
    try:
        return current_reference(config, clients)
    except (ClientError, ReferenceError) as exc:
        raise ApprovalError(f"cannot read the reference set: {error_text(exc)}") from None


def set_reference_from(target: Target, source: str, reason: str) -> dict[str, Any]:
    """Make a labelled CSV file, or a training job's test split, the reference set."""
    config, clients = control_plane(target)
    who = caller(target)
    path = Path(source)
    try:
        if path.is_file():
            return set_reference(
                config,
                clients,
                path.read_bytes(),
                source={"kind": "file", "name": path.name},
                set_by=who,
                reason=reason,
                target=str(config.hyperparameters.get("target", "label")),
            )
        if not config.job_name_pattern.match(source):
            raise ApprovalError(f"{source!r} is neither a file nor a training job of this model")
        return freeze_job_test_split(
            config, clients, source, package_arn=None, set_by=who, reason=reason
        )
    except ReferenceError as exc:
        raise ApprovalError(str(exc)) from None
    except ClientError as exc:
        raise ApprovalError(f"cannot set the reference set: {error_text(exc)}") from None
