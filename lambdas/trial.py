"""Rollout modes: an approved challenger runs beside the champion before it replaces it.

``MLOPS_ROLLOUT_MODE`` ``direct`` deploys an approved package at once (blue/green,
:mod:`lambdas.rollout`). ``shadow`` and ``ab`` first put it **on trial**: a new endpoint
config keeps the champion's variant and adds the challenger
(:data:`lambdas.constants.CHALLENGER_VARIANT_NAME`) as a shadow variant that gets a copy
of every request and answers no one, or as a production variant with
``MLOPS_AB_TRAFFIC_PERCENT`` of the traffic. The package stays Approved with
``mlops:rollout`` set; until the verdict the registry's champion is still the one before
(:func:`lambdas.registry.find_champion`).

A "RolloutCheck" (a schedule rule, or ``mlops rollout check``) judges the trial
(:mod:`lambdas.trial_check`) once the challenger has served ``MLOPS_ROLLOUT_MIN_REQUESTS``
requests (:mod:`lambdas.trial_evidence`): promoted, it replaces the champion by a plain
update (the variant set changes, which blue/green does not take); withdrawn, the endpoint
goes back to the champion's own config and then the package is Rejected. Either way the
numbers go on the package (``mlops:rollout-*``) and an alert goes out. A newer approved
challenger supersedes one still on trial, once its own trial config is accepted.

The first model, and an endpoint that is not in service, are deployed directly: there is
nothing to compare with.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas import hosting
from lambdas.aws import Clients, error_code, error_text, publish_alert
from lambdas.config import Config, JsonDict
from lambdas.packages import (
    DEPLOYMENT_PROPERTY,
    DEPLOYMENT_REASON_PROPERTY,
    ENDPOINT_CONFIG_PROPERTY,
    JOB_PROPERTY,
    ROLLOUT_CHAMPION_CONFIG_PROPERTY,
    ROLLOUT_PROPERTY,
    ROLLOUT_VERDICT_PROPERTY,
    describe_package,
    on_trial,
    package_properties,
    update_package,
)
from lambdas.rollout import FAILED, UPDATING, deploy_package, record, watch
from lambdas.serving import ensure_model

WITHDRAWN = "withdrawn"
_LOOK_BACK = 10  # recent packages searched for the one on trial


def running_trial(config: Config, clients: Clients) -> JsonDict | None:
    """The Approved package on trial (a DescribeModelPackage answer), or ``None``."""
    listed = clients.sagemaker.list_model_packages(
        ModelPackageGroupName=config.model_package_group,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
        MaxResults=_LOOK_BACK,
    ).get("ModelPackageSummaryList", [])
    for summary in listed:
        package = describe_package(clients, summary["ModelPackageArn"])
        if on_trial(package_properties(package)):
            return package
    return None


def current_endpoint(config: Config, clients: Clients) -> JsonDict | None:
    try:
        return dict(clients.sagemaker.describe_endpoint(EndpointName=config.endpoint_name))
    except ClientError as exc:
        if error_code(exc) == "ValidationException":
            return None
        raise


def serve_package(
    config: Config,
    clients: Clients,
    *,
    package_arn: str,
    job_name: str,
    model_data_url: str,
    environment: Mapping[str, str],
    lambda_context: Any = None,
) -> JsonDict:
    """Serve an approved package: on trial beside the champion, or directly (see above)."""
    direct = {
        "package_arn": package_arn,
        "job_name": job_name,
        "model_data_url": model_data_url,
        "environment": environment,
        "lambda_context": lambda_context,
    }
    endpoint = current_endpoint(config, clients) if config.rollout_mode != "direct" else None
    if endpoint is None or endpoint.get("EndpointStatus") != "InService":
        return deploy_package(config, clients, **direct)
    running = running_trial(config, clients)
    if running is not None and running["ModelPackageArn"] == package_arn:
        # a retried promotion of this very package: it is no one's rival
        champion_config = package_properties(running)[ROLLOUT_CHAMPION_CONFIG_PROPERTY]
        running = None
    elif running is not None:
        # the endpoint runs the old trial: the champion's own config is what it recorded
        champion_config = package_properties(running)[ROLLOUT_CHAMPION_CONFIG_PROPERTY]
    else:
        champion_config = endpoint["EndpointConfigName"]
    name = f"{job_name[:52]}-try-{secrets.token_hex(2)}"
    try:
        described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=champion_config)
        if has_challenger(described):
            raise ValueError(
                f"the endpoint's config {champion_config} has a {c.CHALLENGER_VARIANT_NAME} "
                "variant no package on trial records: put the champion's own config back first"
            )
        request = hosting.trial_endpoint_config(
            described, job_name, mode=config.rollout_mode, ab_percent=config.ab_traffic_percent
        )
        ensure_model(config, clients, job_name, model_data_url, environment)
        clients.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            **request,
            Tags=[{"Key": "mlops:model", "Value": config.model_name}],
        )
        # recorded before the update: a retry after a crash knows the champion's config
        update_package(
            clients,
            package_arn,
            properties={
                DEPLOYMENT_PROPERTY: UPDATING,
                ENDPOINT_CONFIG_PROPERTY: name,
                ROLLOUT_PROPERTY: config.rollout_mode,
                ROLLOUT_CHAMPION_CONFIG_PROPERTY: champion_config,
            },
        )
        # no DeploymentConfig: blue/green wants the same variants on both sides
        clients.sagemaker.update_endpoint(
            EndpointName=config.endpoint_name, EndpointConfigName=name
        )
    except (ClientError, ValueError) as exc:
        why = f"the {config.rollout_mode} trial could not start: {error_text(exc)}"
        return record(config, clients, package_arn, job_name, FAILED, why)
    if running is not None:  # only once the new trial is on: a failed update keeps the old
        _supersede(config, clients, running, job_name)
    state, why = watch(config, clients, name, lambda_context=lambda_context)
    recorded = record(config, clients, package_arn, job_name, state, why, trial=config.rollout_mode)
    return {
        "endpoint": config.endpoint_name,
        "endpoint_config": name,
        "model_name": job_name,
        "action": f"{config.rollout_mode} trial",
        **recorded,
    }


def has_challenger(endpoint_config: Mapping[str, Any]) -> bool:
    """Whether a DescribeEndpointConfig answer holds a rollout's challenger variant."""
    variants = [
        *(endpoint_config.get("ProductionVariants") or []),
        *(endpoint_config.get("ShadowProductionVariants") or []),
    ]
    return any(v.get("VariantName") == c.CHALLENGER_VARIANT_NAME for v in variants)


def _supersede(config: Config, clients: Clients, package: Mapping[str, Any], by: str) -> None:
    properties = package_properties(package)
    why = f"superseded by {by} before its trial ended"
    update_package(
        clients,
        str(package["ModelPackageArn"]),
        status="Rejected",
        description=f"rollout withdrawn: {why}",
        properties={
            ROLLOUT_VERDICT_PROPERTY: WITHDRAWN,
            DEPLOYMENT_PROPERTY: WITHDRAWN,
            DEPLOYMENT_REASON_PROPERTY: why,
        },
    )
    alert(config, clients, properties.get(JOB_PROPERTY, "?"), WITHDRAWN, why, {})


def alert(
    config: Config, clients: Clients, job: str, verdict: str, why: str, numbers: JsonDict
) -> None:
    publish_alert(
        clients.sns,
        config.alert_topic_arn,
        f"[mlops] {config.model_name}: rollout of {job} {verdict}",
        {
            "model": config.model_name,
            "job": job,
            "endpoint": config.endpoint_name,
            "verdict": verdict,
            "reason": why,
            "evidence": numbers,
        },
    )
