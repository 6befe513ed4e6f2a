"""Rollout modes: an approved challenger runs beside the champion before it replaces it.

``MLOPS_ROLLOUT_MODE`` ``direct`` deploys an approved package at once (blue/green,
:mod:`lambdas.rollout`). ``shadow`` and ``ab`` first put it **on trial**: a new endpoint
config keeps the champion's variant and adds the challenger
(:data:`lambdas.constants.CHALLENGER_VARIANT_NAME`) as a shadow variant that gets a copy
of every request and answers no one, or as a production variant with
``MLOPS_AB_TRAFFIC_PERCENT`` of the traffic. The package stays Approved with
``mlops:rollout`` set; until the verdict the registry's champion is still the one before
(:func:`lambdas.registry.find_champion`).

A "RolloutCheck" (a schedule rule, or ``mlops rollout check``) judges the trial once the
challenger has served ``MLOPS_ROLLOUT_MIN_REQUESTS`` requests (:mod:`lambdas.trial_evidence`):
promoted, it replaces the champion by the usual blue/green update; withdrawn, the
endpoint goes back to the champion's own config and the package is Rejected. Either way
the numbers go on the package (``mlops:rollout-*``) and an alert goes out. A newer
approved challenger supersedes one still on trial.

The first model, and an endpoint that is not in service, are deployed directly: there is
nothing to compare with.
"""

from __future__ import annotations

import secrets
import tarfile
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas import hosting
from lambdas.aws import Clients, error_code, error_text, publish_alert
from lambdas.config import Config, JsonDict
from lambdas.handling import iso, utcnow
from lambdas.packages import (
    DEPLOYMENT_PROPERTY,
    DEPLOYMENT_REASON_PROPERTY,
    ENDPOINT_CONFIG_PROPERTY,
    JOB_PROPERTY,
    ROLLOUT_CHAMPION_CONFIG_PROPERTY,
    ROLLOUT_PROPERTY,
    ROLLOUT_STARTED_PROPERTY,
    ROLLOUT_VERDICT_PROPERTY,
    describe_package,
    on_trial,
    package_model_data_url,
    package_properties,
    update_package,
)
from lambdas.quality import champion_spec
from lambdas.rollout import FAILED, IN_SERVICE, deploy_package, record, watch
from lambdas.serving import ensure_model
from lambdas.trial_evidence import PROMOTE, WAITING, WITHDRAW, Evidence, gather, judge

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


def _endpoint(config: Config, clients: Clients) -> JsonDict | None:
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
    endpoint = _endpoint(config, clients) if config.rollout_mode != "direct" else None
    if endpoint is None or endpoint.get("EndpointStatus") != "InService":
        return deploy_package(config, clients, **direct)
    running = running_trial(config, clients)
    champion_config = endpoint["EndpointConfigName"]
    if running is not None:
        # the endpoint runs the old trial: the champion's own config is what it recorded
        champion_config = package_properties(running)[ROLLOUT_CHAMPION_CONFIG_PROPERTY]
    try:
        described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=champion_config)
        request = hosting.trial_endpoint_config(
            described, job_name, mode=config.rollout_mode, ab_percent=config.ab_traffic_percent
        )
        ensure_model(config, clients, job_name, model_data_url, environment)
        name = f"{job_name[:52]}-try-{secrets.token_hex(2)}"
        clients.sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            **request,
            Tags=[{"Key": "mlops:model", "Value": config.model_name}],
        )
        if running is not None:
            _supersede(config, clients, running, job_name)
        clients.sagemaker.update_endpoint(
            EndpointName=config.endpoint_name, EndpointConfigName=name
        )
    except (ClientError, ValueError) as exc:
        why = f"the {config.rollout_mode} trial could not start: {error_text(exc)}"
        return record(config, clients, package_arn, job_name, FAILED, why)
    update_package(
        clients,
        package_arn,
        properties={
            DEPLOYMENT_PROPERTY: "updating",
            ENDPOINT_CONFIG_PROPERTY: name,
            ROLLOUT_PROPERTY: config.rollout_mode,
            ROLLOUT_STARTED_PROPERTY: iso(utcnow()),
            ROLLOUT_CHAMPION_CONFIG_PROPERTY: champion_config,
        },
    )
    state, why = watch(config, clients, name, lambda_context=lambda_context)
    recorded = record(config, clients, package_arn, job_name, state, why, trial=config.rollout_mode)
    return {
        "endpoint": config.endpoint_name,
        "endpoint_config": name,
        "model_name": job_name,
        "action": f"{config.rollout_mode} trial",
        **recorded,
    }


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
    _alert(config, clients, properties.get(JOB_PROPERTY, "?"), WITHDRAWN, why, {})


def _alert(
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


def _spec(clients: Clients, package: Mapping[str, Any], problems: list[str]) -> JsonDict | None:
    url = package_model_data_url(package) or ""
    try:
        return champion_spec(url, clients)
    except (ClientError, OSError, EOFError, tarfile.TarError, ValueError, KeyError) as exc:
        problems.append(f"challenger {url}: {error_text(exc)}")
        return None


def assess(config: Config, clients: Clients, package: Mapping[str, Any]) -> JsonDict:
    """The trial's numbers and verdict now (nothing changes)."""
    properties = package_properties(package)
    started = datetime.fromisoformat(properties[ROLLOUT_STARTED_PROPERTY].replace("Z", "+00:00"))
    now = utcnow()
    problems: list[str] = []
    spec = _spec(clients, package, problems)
    described = clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=properties[ENDPOINT_CONFIG_PROPERTY]
    )
    live_variant = str(described["ProductionVariants"][0]["VariantName"])
    evidence = gather(
        config,
        clients,
        mode=properties[ROLLOUT_PROPERTY],
        live_variant=live_variant,
        start=started,
        end=now,
        spec=spec,
    )
    evidence.problems[:0] = problems
    verdict = judge(evidence, config)
    return {
        "model_package_arn": package["ModelPackageArn"],
        "job_name": properties.get(JOB_PROPERTY),
        "mode": properties[ROLLOUT_PROPERTY],
        "started": properties[ROLLOUT_STARTED_PROPERTY],
        "min_requests": config.rollout_min_requests,
        "evidence": evidence.as_dict(),
        "verdict": verdict.outcome,
        "checks": [{"rule": r, "held": h, "why": w} for r, h, w in verdict.checks],
        "reason": verdict.reason,
        "_evidence": evidence,
    }


def _evidence_properties(evidence: Evidence, verdict: str, reason: str) -> dict[str, str]:
    """The verdict and numbers, compact, as package properties ("challenger/champion";
    SageMaker keeps at most 256 characters of each)."""
    ours, theirs = evidence.champion, evidence.challenger

    def pair(a: float | int | None, b: float | int | None, digits: int = 4) -> str:
        def one(v: float | int | None) -> str:
            return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

        return f"{one(a)}/{one(b)}"

    out = {
        ROLLOUT_VERDICT_PROPERTY: verdict,
        "mlops:rollout-reason": reason,
        "mlops:rollout-requests": pair(theirs.requests, ours.requests),
        "mlops:rollout-5xx-rate": pair(theirs.error_rate, ours.error_rate),
        "mlops:rollout-latency-ms": pair(theirs.latency_ms, ours.latency_ms, 2),
        f"mlops:rollout-live-{evidence.primary}": pair(theirs.live, ours.live),
        "mlops:rollout-labelled": pair(theirs.labelled, ours.labelled),
    }
    if evidence.mode == "shadow":
        out["mlops:rollout-agreement"] = pair(evidence.agreement, evidence.paired)
    return out


def check(config: Config, clients: Clients, *, lambda_context: Any = None) -> JsonDict:
    """Judge the running trial and act on the verdict; see the module docstring.

    ``status``: ``ignored`` (no trial), ``waiting``, ``deployed`` / ``deploying`` (promoted),
    ``withdrawn``, ``deploy-failed``.
    """
    package = running_trial(config, clients)
    if package is None:
        return {"status": "ignored", "reason": "no challenger is on trial"}
    properties = package_properties(package)
    arn, job = str(package["ModelPackageArn"]), properties.get(JOB_PROPERTY, "?")
    endpoint = _endpoint(config, clients)
    trial_config = properties.get(ENDPOINT_CONFIG_PROPERTY)
    if endpoint is None or endpoint.get("EndpointConfigName") != trial_config:
        if endpoint is not None and endpoint.get("EndpointStatus") != "InService":
            return {"status": "waiting", "reason": "the endpoint is changing", "job_name": job}
        why = f"the endpoint no longer runs the trial's config {trial_config}"
        return _withdraw(config, clients, arn, job, why, {}, restore=None)
    assessed = assess(config, clients, package)
    evidence: Evidence = assessed.pop("_evidence")
    if assessed["verdict"] == WAITING:
        return {"status": "waiting", **assessed}
    numbers = _evidence_properties(
        evidence, "promoted" if assessed["verdict"] == PROMOTE else WITHDRAWN, assessed["reason"]
    )
    if assessed["verdict"] == WITHDRAW:
        restore = properties.get(ROLLOUT_CHAMPION_CONFIG_PROPERTY)
        return {
            **assessed,
            **_withdraw(config, clients, arn, job, assessed["reason"], numbers, restore=restore),
        }
    update_package(clients, arn, properties=numbers)
    deployed = deploy_package(
        config,
        clients,
        package_arn=arn,
        job_name=job,
        model_data_url=package_model_data_url(package) or "",
        environment={},
        lambda_context=lambda_context,
    )
    verdict = "promoted" if deployed["status"] != "deploy-failed" else "failed to deploy"
    _alert(config, clients, job, verdict, assessed["reason"], assessed["evidence"])
    return {**assessed, **deployed, "reason": f"promoted after its trial: {assessed['reason']}"}


def _withdraw(
    config: Config,
    clients: Clients,
    arn: str,
    job: str,
    why: str,
    numbers: Mapping[str, str],
    *,
    restore: str | None,
) -> JsonDict:
    """Reject the challenger and put the endpoint back on the champion's config."""
    serving = "unchanged"
    if restore:
        extra: JsonDict = {}
        deployment = hosting.deployment_config(hosting.Hosting.from_config(config))
        if deployment:
            extra["DeploymentConfig"] = deployment
        try:
            clients.sagemaker.update_endpoint(
                EndpointName=config.endpoint_name, EndpointConfigName=restore, **extra
            )
            state, detail = watch(config, clients, restore)
            serving = f"the champion's config {restore}: {detail}"
            if state != IN_SERVICE and state != "updating":
                serving = f"could not go back to {restore}: {detail}"
        except ClientError as exc:
            serving = f"could not go back to {restore}: {error_text(exc)}"
    update_package(
        clients,
        arn,
        status="Rejected",
        description=f"rollout withdrawn: {why}",
        properties={
            **numbers,
            ROLLOUT_VERDICT_PROPERTY: WITHDRAWN,
            DEPLOYMENT_PROPERTY: WITHDRAWN,
            DEPLOYMENT_REASON_PROPERTY: why,
        },
    )
    _alert(config, clients, job, WITHDRAWN, why, {**numbers, "serving": serving})
    return {
        "status": WITHDRAWN,
        "job_name": job,
        "model_package_arn": arn,
        "approval": "Rejected",
        "serving": serving,
        "reason": f"withdrawn after its trial: {why}",
    }
