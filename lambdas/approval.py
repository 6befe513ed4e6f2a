"""A person's decision in the model registry, acted on as SageMaker announces it.

The gate leaves a package ``PendingManualApproval`` when its evidence is doubtful or the
stack wants a person for every model. The person runs ``aws sagemaker
update-model-package --model-approval-status Approved|Rejected`` (or ``mlops approve`` /
``mlops reject``); SageMaker then emits "SageMaker Model Package State Change", which an
EventBridge rule delivers to promote. promote believes the registry, not the event: it
describes the package, and deploys one that a person Approved only when

- the gate held it (``mlops:decision`` is PendingManualApproval) and nothing deployed it
  yet (a package the gate approved itself was deployed by the gate's own run);
- its training job still verifies (:mod:`lambdas.verify`);
- the archive it names is the gated copy under ``models/`` with the recorded SHA-256;
- no newer package has become the champion meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_text, publish_alert
from lambdas.config import Config, JsonDict
from lambdas.gate import APPROVED, PENDING, REJECTED
from lambdas.handling import BadEvent, run_once
from lambdas.package_card import restamp_card
from lambdas.packages import (
    DECISION_PROPERTY,
    DEPLOYMENT_PROPERTY,
    JOB_PROPERTY,
    SHA256_PROPERTY,
    describe_package,
    package_environment,
    package_model_data_url,
    package_properties,
    update_package,
)
from lambdas.reference import freeze_first_reference, has_reference
from lambdas.registry import find_champion
from lambdas.release import ReleaseError, load_archive
from lambdas.trial import serve_package
from lambdas.verify import JobEvent, Unverified, verify_job


@dataclass(frozen=True)
class PackageEvent:
    """A model package of this stack's group whose approval status changed."""

    package_arn: str
    status: str | None


def parse_package_event(detail: Mapping[str, Any], config: Config) -> PackageEvent:
    """The package a Model Package State Change is about; pure. Raises :class:`BadEvent`."""
    group = detail.get("ModelPackageGroupName")
    if group != config.model_package_group:
        raise BadEvent(f"model package group {group!r} is not this stack's")
    arn = detail.get("ModelPackageArn")
    if not isinstance(arn, str) or ":model-package/" not in arn:
        raise BadEvent("model package state change has no detail.ModelPackageArn")
    status = detail.get("ModelApprovalStatus")
    return PackageEvent(arn, status if isinstance(status, str) else None)


def approver(package: Mapping[str, Any]) -> str:
    """Who last changed the package, as SageMaker records it (else "unknown")."""
    by = package.get("LastModifiedBy") or {}
    identity = by.get("IamIdentity") or {}
    return str(identity.get("Arn") or by.get("UserProfileName") or "unknown")


def act_on_package(
    config: Config, clients: Clients, event: PackageEvent, *, lambda_context: Any = None
) -> JsonDict:
    """Deploy a package a person approved, or record one a person rejected."""
    package = describe_package(clients, event.package_arn)
    properties = package_properties(package)
    status = package.get("ModelApprovalStatus")
    job_name = properties.get(JOB_PROPERTY, "")
    base = {"model_package_arn": event.package_arn, "job_name": job_name, "approval": status}
    if properties.get(DECISION_PROPERTY) != PENDING:
        why = f"the gate decided {properties.get(DECISION_PROPERTY) or 'nothing'} itself"
        return {**base, "status": "ignored", "reason": f"{why}: nothing for a person to do"}
    if status == REJECTED:
        why = str(package.get("ApprovalDescription") or "no reason given")
        restamp_card(config, clients, package, by=approver(package), description=why)
        reason = f"rejected by {approver(package)}: {why}"
        return {**base, "status": "not-promoted", "reason": reason}
    if status != APPROVED:
        return {**base, "status": "ignored", "reason": f"package is {status}"}
    if not config.idempotency_table:
        return _deploy_approved(config, clients, package, lambda_context=lambda_context)
    result, ran = run_once(
        config,
        clients,
        key=event.package_arn,
        key_prefix=f"approved#{config.model_name}",
        fn=lambda: _deploy_approved(config, clients, package, lambda_context=lambda_context),
        lambda_context=lambda_context,
        ttl_seconds=config.idempotency_ttl_days * 86400,
    )
    if ran:
        return result
    return {**base, "status": "duplicate", "reason": "already acted on", "previous": result}


def _refuse(config: Config, clients: Clients, package_arn: str, job: str, why: str) -> JsonDict:
    try:
        update_package(
            clients,
            package_arn,
            status=REJECTED,
            description=f"not deployed: {why}",
            properties={DEPLOYMENT_PROPERTY: "refused"},
        )
    except ClientError as exc:
        why += f" (and the package could not be set to Rejected: {error_text(exc)})"
    publish_alert(
        clients.sns,
        config.alert_topic_arn,
        f"[mlops] {config.model_name}: approved package of {job} not deployed",
        {"model": config.model_name, "job": job, "model_package": package_arn, "reason": why},
    )
    return {
        "status": "rejected",
        "model_package_arn": package_arn,
        "job_name": job,
        "approval": REJECTED,
        "reason": why,
    }


def _deploy_approved(
    config: Config, clients: Clients, package: Mapping[str, Any], *, lambda_context: Any
) -> JsonDict:
    arn = str(package["ModelPackageArn"])
    properties = package_properties(package)
    job_name = properties.get(JOB_PROPERTY, "")
    if properties.get(DEPLOYMENT_PROPERTY):
        return {
            "status": "ignored",
            "model_package_arn": arn,
            "job_name": job_name,
            "reason": f"deployment already {properties[DEPLOYMENT_PROPERTY]}",
        }
    if not config.job_name_pattern.match(job_name):
        return _refuse(config, clients, arn, job_name, f"{job_name!r} is not a job of this model")
    try:
        verify_job(config, clients, JobEvent(job_name=job_name, status=None))
    except Unverified as exc:
        return _refuse(config, clients, arn, job_name, f"its training job does not verify: {exc}")
    champion = find_champion(config, clients)
    if champion is not None and champion["arn"] != arn:
        ours, theirs = package.get("ModelPackageVersion"), champion.get("version")
        if isinstance(ours, int) and isinstance(theirs, int) and theirs > ours:
            why = f"version {theirs} became the champion after this package was registered"
            return _refuse(config, clients, arn, job_name, why)
    url = package_model_data_url(package) or ""
    released = f"s3://{config.artifacts_bucket}/{c.MODELS_PREFIX}{job_name}/"
    if not url.startswith(released):
        return _refuse(config, clients, arn, job_name, f"{url} is not the gated copy")
    try:
        with load_archive(clients, url) as archive:
            digest = archive.sha256
    except (ClientError, OSError, ReleaseError) as exc:
        return _refuse(config, clients, arn, job_name, f"cannot read {url}: {error_text(exc)}")
    if digest != properties.get(SHA256_PROPERTY):
        why = f"{url} has SHA-256 {digest}, the gate recorded {properties.get(SHA256_PROPERTY)}"
        return _refuse(config, clients, arn, job_name, why)
    environment = {
        k: v
        for k, v in package_environment(package).items()
        if k in {c.MODEL_SHA256_ENV, c.MODEL_ARCHIVE_SHA256_ENV}
    }
    deployed = serve_package(
        config,
        clients,
        package_arn=arn,
        job_name=job_name,
        model_data_url=url,
        environment=environment,
        lambda_context=lambda_context,
    )
    who = approver(package)
    final = APPROVED if deployed["status"] != "deploy-failed" else REJECTED
    if deployed["status"] == "deployed" and not has_reference(config, clients):
        deployed["reference"] = freeze_first_reference(config, clients, job_name, arn)
    restamp_card(
        config,
        clients,
        {**package, "ModelApprovalStatus": final},
        by=who,
        description=str(package.get("ApprovalDescription") or deployed["deployment_reason"]),
    )
    return {
        "model_package_arn": arn,
        "job_name": job_name,
        "approval": final,
        "approved_by": who,
        **deployed,
        "reason": f"approved by {who}; {deployed['deployment_reason']}",
    }
