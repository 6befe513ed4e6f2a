"""The model registry's champion: the latest Approved model package and its evaluation.

The promote handler gates a challenger against it; the retrain handler gives its model to
the next training job, which evaluates it on the challenger's own test split.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lambdas import constants as c
from lambdas.aws import Clients, get_json, parse_s3_uri, read_tar_members
from lambdas.config import Config, JsonDict
from lambdas.packages import on_trial

_LOOK_BACK = 5  # packages read past the challengers on trial (at most one is)


def find_champion(config: Config, clients: Clients) -> JsonDict | None:
    """The latest Approved model package of the group not on trial, or ``None``.

    A challenger on trial (:mod:`lambdas.trial`) is Approved by the gate but not yet the
    champion: the gate, retraining and the monitors keep measuring against the one before.

    Returns ``{"arn", "version", "image", "model_data_url", "evaluation_uri"}``. The
    promote handler gates against it; the retrain handler gives its model to the next
    training job (the ``champion`` channel), which evaluates it on the same test split.
    """
    config.require("model_package_group")
    listed = clients.sagemaker.list_model_packages(
        ModelPackageGroupName=config.model_package_group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=_LOOK_BACK,
    )
    for summary in listed.get("ModelPackageSummaryList", []):
        arn = summary["ModelPackageArn"]
        package = clients.sagemaker.describe_model_package(ModelPackageName=arn)
        if not on_trial(package.get("CustomerMetadataProperties") or {}):
            return _champion(arn, package)
    return None


def _champion(arn: str, package: Mapping[str, Any]) -> JsonDict:
    container = (package.get("InferenceSpecification", {}).get("Containers") or [{}])[0]
    stats = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
    return {
        "arn": arn,
        "version": package.get("ModelPackageVersion"),
        "image": container.get("Image"),
        "model_data_url": container.get("ModelDataUrl"),
        "evaluation_uri": stats.get("S3Uri"),
    }


def champion_evaluation(clients: Clients, champion: Mapping[str, Any]) -> JsonDict:
    """The champion's evaluation.json: its ModelMetrics URI, else inside its model.tar.gz."""
    if champion.get("evaluation_uri"):
        doc = get_json(clients.s3, *parse_s3_uri(champion["evaluation_uri"]))
        if isinstance(doc, dict):
            return doc
    if champion.get("model_data_url"):
        raw = read_tar_members(clients.s3, champion["model_data_url"], [c.EVALUATION_FILE])
        if c.EVALUATION_FILE in raw:
            doc = json.loads(raw[c.EVALUATION_FILE])
            if isinstance(doc, dict):
                return doc
    raise ValueError(f"no readable evaluation.json for champion {champion.get('arn')}")
