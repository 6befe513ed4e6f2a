"""This model's packages in the SageMaker model registry: register one, update one, read one.

A package's ``CustomerMetadataProperties`` carry the gate's evidence (``mlops:*`` keys,
docs/control-plane.md). SageMaker merges the properties an ``UpdateModelPackage`` sends;
moto replaces them all and drops an omitted status, so :func:`update_package` always
sends the merged whole and the status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lambdas import constants as c
from lambdas.config import Config, JsonDict
from lambdas.gate import GateDecision
from lambdas.serving import serving_environment
from lambdas.training import training_image

JOB_PROPERTY = "mlops:job"
DECISION_PROPERTY = "mlops:decision"  # the gate's outcome, whatever a person did later
DEPLOYMENT_PROPERTY = "mlops:deployment"  # in-service | updating | rolled-back | failed
DEPLOYMENT_REASON_PROPERTY = "mlops:deployment-reason"
ENDPOINT_CONFIG_PROPERTY = "mlops:endpoint-config"
SHA256_PROPERTY = "mlops:model-sha256"
REFERENCE_PROPERTY = "mlops:reference-sha256"
# a rollout's trial (lambdas.trial): mode, start, the config to return to, the verdict
ROLLOUT_PROPERTY = "mlops:rollout"  # shadow | ab
ROLLOUT_STARTED_PROPERTY = "mlops:rollout-started"
ROLLOUT_CHAMPION_CONFIG_PROPERTY = "mlops:rollout-champion-config"
ROLLOUT_VERDICT_PROPERTY = "mlops:rollout-verdict"  # promoted | withdrawn
_MAX_PROPERTY = 256  # SageMaker's limit on a property value


# SageMaker's pattern for a property value: letters, numbers, spaces and _.:/=+-@
_UNSAFE = re.compile(r"[^\w .:/=+\-@]")


def property_value(value: object) -> str:
    """``value`` as SageMaker takes it: at most 256 characters of its pattern (the rest
    become spaces; the full text goes in the description or the alert)."""
    return _UNSAFE.sub(" ", str(value))[:_MAX_PROPERTY]


def on_trial(properties: Mapping[str, str]) -> bool:
    """Whether a package is a challenger still on trial beside the champion."""
    return bool(properties.get(ROLLOUT_PROPERTY)) and not properties.get(ROLLOUT_VERDICT_PROPERTY)


def register_package(
    config: Config,
    clients: Any,
    *,
    job_name: str,
    model_data_url: str,
    evaluation_uri: str,
    decision: GateDecision,
    client_token: str | None = None,
    digests: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Register the challenger as a model package with the gate's outcome; returns its ARN.

    ``client_token`` (at most 36 characters) makes a repeated request return the same
    package on AWS. ``extra``: more metadata properties (e.g. the reference set's digest).
    """
    properties = {
        JOB_PROPERTY: job_name,
        "mlops:primary-metric": decision.primary_metric,
        DECISION_PROPERTY: decision.outcome,
    }
    if decision.challenger_value is not None:
        properties[f"mlops:{decision.primary_metric}"] = f"{decision.challenger_value:.6f}"
    if decision.comparison is not None:
        # same-split: both models on the challenger's test split; own-split: the champion's
        # value comes from its own (older) evaluation
        properties["mlops:champion-comparison"] = decision.comparison
    if decision.champion_value is not None:
        properties[f"mlops:champion-{decision.primary_metric}"] = f"{decision.champion_value:.6f}"
    if digests and c.MODEL_ARCHIVE_SHA256_ENV in digests:
        properties[SHA256_PROPERTY] = digests[c.MODEL_ARCHIVE_SHA256_ENV]
    tripped = [rule for rule, held, _ in decision.checks if not held]
    if tripped:
        properties["mlops:failed-rules"] = " ".join(tripped)
    properties.update(extra or {})
    response = clients.sagemaker.create_model_package(
        ModelPackageGroupName=config.model_package_group,
        ModelPackageDescription=decision.reason[:1024],
        InferenceSpecification={
            "Containers": [
                {
                    "Image": config.serving_image_uri or training_image(config),
                    "ModelDataUrl": model_data_url,
                    "Environment": {**serving_environment(config), **(digests or {})},
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}
            }
        },
        ModelApprovalStatus=decision.outcome,
        CustomerMetadataProperties={k: property_value(v) for k, v in properties.items()},
        **({"ClientToken": client_token} if client_token else {}),
        Tags=[
            {"Key": "mlops:model", "Value": config.model_name},
            {"Key": "mlops:job", "Value": job_name},
        ],
    )
    return str(response["ModelPackageArn"])


def describe_package(clients: Any, arn: str) -> JsonDict:
    return dict(clients.sagemaker.describe_model_package(ModelPackageName=arn))


def update_package(
    clients: Any,
    arn: str,
    *,
    status: str | None = None,
    description: str | None = None,
    properties: Mapping[str, str] | None = None,
) -> JsonDict:
    """Set a package's status and/or add metadata properties, keeping everything else.

    Returns the package as described before the update.
    """
    package = describe_package(clients, arn)
    merged = dict(package.get("CustomerMetadataProperties") or {})
    merged.update({k: property_value(v) for k, v in (properties or {}).items()})
    request: dict[str, Any] = {
        "ModelPackageArn": arn,
        "ModelApprovalStatus": status or package.get("ModelApprovalStatus"),
        "CustomerMetadataProperties": merged,
    }
    text = description if description is not None else package.get("ApprovalDescription")
    if text:
        request["ApprovalDescription"] = str(text)[:1024]
    clients.sagemaker.update_model_package(**request)
    return package


def package_properties(package: Mapping[str, Any]) -> dict[str, str]:
    return dict(package.get("CustomerMetadataProperties") or {})


def package_model_data_url(package: Mapping[str, Any]) -> str | None:
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    url = containers[0].get("ModelDataUrl")
    return url if isinstance(url, str) else None


def package_environment(package: Mapping[str, Any]) -> dict[str, str]:
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or [{}]
    return dict(containers[0].get("Environment") or {})
