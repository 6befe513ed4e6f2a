"""promote's side of the model card: write it for a new package, re-stamp it on a decision.

The card (:mod:`lambdas.card`) lives at ``models/<job>/card.json`` / ``card.html``, where
only promote writes, and the package's ``mlops:card`` property names it. A card that
cannot be written is logged and alerted but never blocks a promotion: the registry and
``training/<job>/evaluation.json`` hold the same evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_text, get_json
from lambdas.card import (
    CARD_PROPERTY,
    CardError,
    apply_approval,
    build_card,
    read_card,
    write_card,
)
from lambdas.config import Config, JsonDict
from lambdas.gate import GateDecision
from lambdas.handling import iso, utcnow
from lambdas.packages import describe_package, update_package

logger = Logger(service="mlops-promote")


def _prefix(job_name: str) -> str:
    return f"{c.MODELS_PREFIX}{job_name}/"


def publish_card(
    config: Config,
    clients: Clients,
    *,
    package_arn: str,
    job_name: str,
    evaluation: Mapping[str, Any],
    decision: GateDecision,
    digests: Mapping[str, str],
    model_data_url: str,
) -> str:
    """Write a new package's card and link it from the package; the card's URI or why not."""
    try:
        package = describe_package(clients, package_arn)
        lineage = get_json(
            clients.s3,
            config.artifacts_bucket or "",
            f"{c.LINEAGE_PREFIX}{job_name}.json",
            denied_as_missing=True,
        )
        card = build_card(
            model_name=config.model_name,
            package_arn=package_arn,
            package_version=package.get("ModelPackageVersion"),
            job_name=job_name,
            approval={
                "status": decision.outcome,
                "by": "gate (auto)",
                "at": iso(utcnow()),
                "description": decision.reason[:1024],
            },
            evaluation=evaluation,
            gate=[{"rule": r, "held": h, "why": t} for r, h, t in decision.checks],
            lineage=lineage if isinstance(lineage, dict) else None,
            digests=digests,
            model_data_url=model_data_url,
            created_at=iso(utcnow()),
            primary_metric=decision.primary_metric,
        )
        uris = write_card(
            clients.s3, config.artifacts_bucket or "", _prefix(job_name), card, config.kms_key_arn
        )
        update_package(clients, package_arn, properties={CARD_PROPERTY: uris["json"]})
    except (ClientError, CardError, ValueError) as exc:
        logger.warning(f"model card of {job_name} not written: {error_text(exc)}")
        return f"not written: {error_text(exc)}"
    return uris["json"]


def restamp_card(
    config: Config, clients: Clients, package: Mapping[str, Any], *, by: str, description: str
) -> str | None:
    """Record a person's decision (the package's status now) on its card, keeping history."""
    uri = (package.get("CustomerMetadataProperties") or {}).get(CARD_PROPERTY)
    if not uri:
        return None
    job_name = (package.get("CustomerMetadataProperties") or {}).get("mlops:job", "")
    try:
        card: JsonDict = apply_approval(
            read_card(clients.s3, uri),
            status=str(package.get("ModelApprovalStatus")),
            by=by,
            at=iso(utcnow()),
            description=description,
        )
        write_card(
            clients.s3, config.artifacts_bucket or "", _prefix(job_name), card, config.kms_key_arn
        )
    except (ClientError, CardError, ValueError) as exc:
        logger.warning(f"model card {uri} not updated: {error_text(exc)}")
        return f"not updated: {error_text(exc)}"
    return str(uri)
