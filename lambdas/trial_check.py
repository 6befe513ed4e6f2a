"""The trial's check: judge the challenger on trial, then promote or withdraw it.

See :mod:`lambdas.trial` for the rollout modes; the numbers and the rules are in
:mod:`lambdas.trial_evidence`.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import Clients, error_text, publish_alert
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
    package_model_data_url,
    package_properties,
    update_package,
)
from lambdas.quality import champion_spec
from lambdas.rollout import IN_SERVICE, UPDATING, deploy_package, watch
from lambdas.trial import WITHDRAWN, alert, current_endpoint, has_challenger, running_trial
from lambdas.trial_evidence import PROMOTE, WAITING, WITHDRAW, Evidence, gather, judge


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
    now = utcnow()
    # no start yet: the trial's config is still rolling out, nothing of it to count
    started_text = properties.get(ROLLOUT_STARTED_PROPERTY) or iso(now)
    started = datetime.fromisoformat(started_text.replace("Z", "+00:00"))
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
        "started": started_text,
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
    ``withdrawn``, ``withdraw-failed`` (the champion's config could not be put back: the
    trial stays recorded, the next check tries again), ``deploy-failed``.
    """
    package = running_trial(config, clients)
    endpoint = current_endpoint(config, clients)
    if package is None:
        return _no_trial(config, clients, endpoint)
    properties = package_properties(package)
    arn, job = str(package["ModelPackageArn"]), properties.get(JOB_PROPERTY, "?")
    trial_config = properties.get(ENDPOINT_CONFIG_PROPERTY)
    if endpoint is not None and endpoint.get("EndpointStatus") != "InService":
        return {"status": "waiting", "reason": "the endpoint is changing", "job_name": job}
    if endpoint is None or endpoint.get("EndpointConfigName") != trial_config:
        why = f"the endpoint no longer runs the trial's config {trial_config}"
        return _withdraw(config, clients, arn, job, why, {}, restore=None)
    if properties.get(DEPLOYMENT_PROPERTY) != properties.get(ROLLOUT_PROPERTY):
        why = "the trial's config is not serving yet (its rollout's end is still to come)"
        return {"status": "waiting", "reason": why, "job_name": job}
    assessed = assess(config, clients, package)
    evidence: Evidence = assessed.pop("_evidence")
    if assessed["verdict"] == WAITING:
        return {"status": "waiting", **assessed}
    numbers = _evidence_properties(
        evidence, "promoted" if assessed["verdict"] == PROMOTE else WITHDRAWN, assessed["reason"]
    )
    restore = properties.get(ROLLOUT_CHAMPION_CONFIG_PROPERTY)
    if assessed["verdict"] == WITHDRAW:
        withdrawn = _withdraw(
            config,
            clients,
            arn,
            job,
            assessed["reason"],
            numbers,
            restore=restore,
            lambda_context=lambda_context,
        )
        return {**assessed, **withdrawn}
    update_package(clients, arn, properties=numbers)
    deployed = deploy_package(
        config,
        clients,
        package_arn=arn,
        job_name=job,
        model_data_url=package_model_data_url(package) or "",
        environment={},
        lambda_context=lambda_context,
        blue_green=False,  # two variants to one: a plain update
    )
    if deployed["status"] == "deploy-failed":
        # the package is Rejected (rollout.record); the champion's config goes back on
        serving = _restore(config, clients, restore, lambda_context)[1] if restore else "-"
        alert(config, clients, job, "failed to deploy", deployed["deployment_reason"], {})
        return {**assessed, **deployed, "serving": serving}
    alert(config, clients, job, "promoted", assessed["reason"], assessed["evidence"])
    return {**assessed, **deployed, "reason": f"promoted after its trial: {assessed['reason']}"}


def _no_trial(config: Config, clients: Clients, endpoint: JsonDict | None) -> JsonDict:
    """Nothing on trial: say so, and name a challenger variant no package accounts for."""
    if endpoint is not None:
        name = endpoint.get("EndpointConfigName")
        described = clients.sagemaker.describe_endpoint_config(EndpointConfigName=name)
        if has_challenger(described):
            why = (
                f"the endpoint runs {name} with a {c.CHALLENGER_VARIANT_NAME} variant but no "
                "package is on trial: put the champion's own config back"
            )
            publish_alert(
                clients.sns,
                config.alert_topic_arn,
                f"[mlops] {config.model_name}: a challenger variant nobody judges",
                {"model": config.model_name, "endpoint": config.endpoint_name, "reason": why},
            )
            return {"status": "orphaned-challenger", "reason": why}
    return {"status": "ignored", "reason": "no challenger is on trial"}


def _restore(
    config: Config, clients: Clients, restore: str, lambda_context: Any = None
) -> tuple[bool, str]:
    """Put the champion's config back (a plain update); ``(done, what serves)``."""
    try:
        clients.sagemaker.update_endpoint(
            EndpointName=config.endpoint_name, EndpointConfigName=restore
        )
    except ClientError as exc:
        return False, f"could not go back to {restore}: {error_text(exc)}"
    state, detail = watch(config, clients, restore, lambda_context=lambda_context)
    if state in (IN_SERVICE, UPDATING):
        return True, f"the champion's config {restore}: {detail}"
    return False, f"could not go back to {restore}: {detail}"


def _withdraw(
    config: Config,
    clients: Clients,
    arn: str,
    job: str,
    why: str,
    numbers: Mapping[str, str],
    *,
    restore: str | None,
    lambda_context: Any = None,
) -> JsonDict:
    """Put the endpoint back on the champion's config, then reject the challenger; when
    the config cannot go back the trial stays recorded (the next check tries again)."""
    serving = "unchanged"
    if restore:
        done, serving = _restore(config, clients, restore, lambda_context)
        if not done:
            alert(config, clients, job, "not withdrawn yet", f"{why}; {serving}", dict(numbers))
            return {
                "status": "withdraw-failed",
                "job_name": job,
                "model_package_arn": arn,
                "serving": serving,
                "reason": f"{why}; {serving}: the next check tries again",
            }
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
    alert(config, clients, job, WITHDRAWN, why, {**numbers, "serving": serving})
    return {
        "status": WITHDRAWN,
        "job_name": job,
        "model_package_arn": arn,
        "approval": "Rejected",
        "serving": serving,
        "reason": f"withdrawn after its trial: {why}",
    }
