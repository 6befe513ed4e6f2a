"""Rollout modes (lambdas.trial): a challenger on trial as a shadow or A/B variant.

moto, in-process; UpdateEndpoint through the ``update_endpoint_standin`` fixture. The
trial's numbers come from what SageMaker would have left: per-variant CloudWatch metrics
and capture files with inference IDs, written here the way the endpoint writes them.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

import pytest
from lambdas_helpers import (
    CAPTURE,
    ENDPOINT,
    RAW,
    Stack,
    alerts,
    endpoint_config_name,
    evaluation,
    job_name,
    write_model_artifacts,
)

from lambdas import constants as c
from lambdas import hosting, promote, registry
from lambdas.config import Config
from lambdas.ground_truth import ground_truth_record
from lambdas.handling import iso, utcnow
from lambdas.packages import package_properties
from lambdas.trial_evidence import Evidence, VariantStats, judge

JOB_1 = job_name("20240501-120000", "0000000a")
JOB_2 = job_name("20240502-120000", "0000000b")
JOB_3 = job_name("20240503-120000", "0000000c")
CHECK = {"source": c.EVENT_SOURCE, "detail-type": c.ROLLOUT_CHECK, "detail": {}}


def _env(monkeypatch: pytest.MonkeyPatch, mode: str, **extra: str) -> None:
    for name, value in {
        c.ENDPOINT_MODE: "instance",
        c.ROLLOUT_MODE: mode,
        c.ROLLOUT_MIN_REQUESTS: "40",
        c.QUALITY_MIN_ROWS: "20",
        **extra,
    }.items():
        monkeypatch.setenv(name, value)


def _promote(stack: Stack, context: Any, job: str, f1: float) -> dict[str, Any]:
    write_model_artifacts(stack, job, evaluation(f1=f1))
    event = {
        "source": "aws.sagemaker",
        "detail-type": c.TRAINING_STATE_CHANGE,
        "detail": {
            "TrainingJobName": job,
            "TrainingJobStatus": "Completed",
            "ModelArtifacts": {
                "S3ModelArtifacts": f"s3://mlops-artifacts/training/{job}/output/model.tar.gz"
            },
        },
    }
    return promote.handler(event, context)


def _on_trial(
    stack: Stack, context: Any, monkeypatch: pytest.MonkeyPatch, mode: str = "shadow", **env: str
) -> tuple[str | None, dict[str, Any]]:
    """JOB_1 the champion, JOB_2 on trial in ``mode``: (the champion's config, the trial)."""
    _env(monkeypatch, mode, **env)
    _promote(stack, context, JOB_1, 0.80)
    champion_config = endpoint_config_name(stack)
    return champion_config, _promote(stack, context, JOB_2, 0.86)


def _package(stack: Stack, job: str) -> dict[str, Any]:
    sm = stack.clients.sagemaker
    for summary in sm.list_model_packages(ModelPackageGroupName="churn-packages")[
        "ModelPackageSummaryList"
    ]:
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if package_properties(package).get("mlops:job") == job:
            return dict(package)
    raise AssertionError(f"no package of {job}")


def _serving(stack: Stack) -> dict[str, Any]:
    name = endpoint_config_name(stack)
    return dict(stack.clients.sagemaker.describe_endpoint_config(EndpointConfigName=name))


def _record(inference_id: str, label: int, when: str) -> str:
    answer = {"predictions": [{"label": label, "probabilities": {"0": 1 - label, "1": label}}]}
    return json.dumps(
        {
            "captureData": {
                "endpointInput": {
                    "observedContentType": "text/csv",
                    "mode": "INPUT",
                    "data": "30,basic",
                    "encoding": "CSV",
                },
                "endpointOutput": {
                    "observedContentType": "application/json",
                    "mode": "OUTPUT",
                    "data": json.dumps(answer),
                    "encoding": "JSON",
                },
            },
            "eventMetadata": {"eventId": "e", "inferenceId": inference_id, "inferenceTime": when},
            "eventVersion": "0",
        }
    )


def _traffic(
    stack: Stack,
    variant: str,
    labels: list[int],
    *,
    ids: list[str] | None = None,
    status_5xx: int = 0,
    latency_us: float = 2000.0,
) -> None:
    """What the endpoint leaves for ``variant`` answering these requests: metrics, captures."""
    now = utcnow()
    ids = ids or [f"{variant}-{i}" for i in range(len(labels))]
    lines = [_record(i, label, iso(now)) for i, label in zip(ids, labels, strict=True)]
    key = f"{ENDPOINT}/{variant}/{now:%Y/%m/%d/%H}/{variant}-{len(labels)}.jsonl"
    stack.clients.s3.put_object(Bucket=CAPTURE, Key=key, Body="\n".join(lines).encode())
    dims = [
        {"Name": "EndpointName", "Value": ENDPOINT},
        {"Name": "VariantName", "Value": variant},
    ]
    data = [
        {"MetricName": "Invocations", "Dimensions": dims, "Value": 1.0, "Unit": "Count"}
        for _ in labels
    ]
    data += [
        {"MetricName": "Invocation5XXErrors", "Dimensions": dims, "Value": 1.0, "Unit": "Count"}
        for _ in range(status_5xx)
    ]
    data += [
        {"MetricName": "ModelLatency", "Dimensions": dims, "Value": latency_us, "Unit": "Count"}
        for _ in labels
    ]
    for start in range(0, len(data), 500):
        stack.clients.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker", MetricData=data[start : start + 500]
        )


def _ground_truth(stack: Stack, pairs: list[tuple[str, int]]) -> None:
    now = utcnow()
    key = f"{c.GROUND_TRUTH_PREFIX}{now:%Y/%m/%d/%H}/labels.jsonl"
    body = "\n".join(ground_truth_record(i, str(label)) for i, label in pairs)
    stack.clients.s3.put_object(Bucket=RAW, Key=key, Body=body.encode())


# --- on trial ------------------------------------------------------------------------------


def test_a_shadow_trial_keeps_the_champion_serving_and_in_the_registry(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _env(monkeypatch, "shadow")
    first = _promote(stack, lambda_context, JOB_1, 0.80)
    assert first["status"] == "deployed"  # the first model: nothing to compare with

    outcome = _promote(stack, lambda_context, JOB_2, 0.86)

    assert outcome["status"] == "on-trial", outcome
    config = _serving(stack)
    assert [v["ModelName"] for v in config["ProductionVariants"]] == [JOB_1]
    [update] = stack.updates
    assert update["EndpointConfigName"] == outcome["endpoint_config"]
    properties = package_properties(_package(stack, JOB_2))
    assert properties["mlops:rollout"] == "shadow" and properties["mlops:deployment"] == "shadow"
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None and JOB_1 in champion["model_data_url"]
    # without traffic it waits
    waiting = promote.handler(CHECK, lambda_context)
    assert waiting["status"] == "waiting" and "0 of 40" in waiting["reason"]


def test_the_trial_config_adds_the_challenger_as_a_shadow_or_an_ab_variant() -> None:
    champion = {
        "ProductionVariants": [
            {
                "VariantName": c.VARIANT_NAME,
                "ModelName": "champ",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
                "InitialVariantWeight": 1.0,
                "CurrentWeight": 1.0,  # a describe-only field is not copied
            }
        ],
        "DataCaptureConfig": {"EnableCapture": True, "DestinationS3Uri": "s3://cap"},
        "KmsKeyId": "key",
    }

    shadow = hosting.trial_endpoint_config(champion, "new", mode="shadow", ab_percent=10)
    ab = hosting.trial_endpoint_config(champion, "new", mode="ab", ab_percent=80)

    [live] = shadow["ProductionVariants"]
    assert live == {
        "VariantName": c.VARIANT_NAME,
        "ModelName": "champ",
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 2,
        "InitialVariantWeight": 1.0,
    }
    [copy] = shadow["ShadowProductionVariants"]
    assert copy["VariantName"] == c.CHALLENGER_VARIANT_NAME and copy["ModelName"] == "new"
    assert shadow["DataCaptureConfig"] == champion["DataCaptureConfig"]
    assert shadow["KmsKeyId"] == "key"
    # A/B: at most half the traffic however large the setting
    assert [(v["ModelName"], v["InitialVariantWeight"]) for v in ab["ProductionVariants"]] == [
        ("champ", 50.0),
        ("new", 50.0),
    ]
    assert "ShadowProductionVariants" not in ab
    serverless = {"ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m"}]}
    with pytest.raises(ValueError, match="instance endpoint"):
        hosting.trial_endpoint_config(serverless, "new", mode="shadow", ab_percent=10)


# --- verdicts --------------------------------------------------------------------------------


def _evidence(mode: str = "shadow", **challenger: Any) -> Evidence:
    ours = VariantStats(requests=500, errors_5xx=1, latency_ms=4.0, labelled=100, live=0.80)
    theirs = VariantStats(
        **{
            "requests": 500,
            "errors_5xx": 1,
            "latency_ms": 4.5,
            "labelled": 100,
            "live": 0.84,
            **challenger,
        }
    )
    return Evidence(mode, "f1", ours, theirs, agreement=0.95, paired=500)


@pytest.mark.parametrize(
    ("evidence", "outcome", "tripped"),
    [
        (_evidence(), "promote", None),
        (_evidence(requests=39), "waiting", None),
        (_evidence(errors_5xx=10), "withdraw", "error-rate"),
        (_evidence(latency_ms=9.0), "withdraw", "latency"),
        (_evidence(live=0.70), "withdraw", "live-quality"),
        (_evidence(live=0.76), "promote", None),  # within the quality tolerance (0.05)
        (_evidence(labelled=5, live=0.1), "promote", None),  # too few labels: not measured
        (_evidence("ab", latency_ms=None), "promote", None),
    ],
)
def test_the_verdict_follows_each_rule(evidence: Evidence, outcome: str, tripped: str) -> None:
    config = Config.from_env(
        {c.MODEL_NAME: "churn", c.ROLLOUT_MIN_REQUESTS: "40", c.QUALITY_MIN_ROWS: "20"}
    )

    verdict = judge(evidence, config)

    assert verdict.outcome == outcome, verdict
    assert [r for r, held, _ in verdict.checks if held is False] == ([tripped] if tripped else [])


def test_low_agreement_withdraws_a_shadow_but_ab_variants_are_not_paired() -> None:
    config = Config.from_env({c.MODEL_NAME: "churn", c.ROLLOUT_MIN_REQUESTS: "40"})
    shadow = _evidence()
    shadow.agreement = 0.6

    assert judge(shadow, config).outcome == "withdraw"
    assert "agreement: 0.6000 of 500" in judge(shadow, config).reason
    assert "agreement" not in [r for r, _, _ in judge(_evidence("ab"), config).checks]


# --- the check in moto --------------------------------------------------------------------


def test_a_shadow_that_agrees_is_promoted_with_its_numbers_on_the_package(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _on_trial(stack, lambda_context, monkeypatch)
    alerts(stack)
    ids = [f"req-{i}" for i in range(60)]
    truth = [i % 4 == 0 for i in range(60)]
    champion_says = [int(t) if i % 6 else 1 - int(t) for i, t in enumerate(truth)]
    challenger_says = [int(t) if i % 12 else 1 - int(t) for i, t in enumerate(truth)]
    _traffic(stack, c.VARIANT_NAME, champion_says, ids=ids)
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, challenger_says, ids=ids, latency_us=2500.0)
    _ground_truth(stack, [(i, int(t)) for i, t in zip(ids, truth, strict=True)])

    outcome = promote.handler(CHECK, lambda_context)

    assert outcome["status"] == "deployed", outcome
    assert outcome["verdict"] == "promote"
    evidence = outcome["evidence"]
    assert evidence["challenger"]["requests"] == 60 and evidence["paired"] == 60
    agree = sum(a == b for a, b in zip(champion_says, challenger_says, strict=True)) / 60
    assert evidence["agreement"] == pytest.approx(agree)
    assert evidence["challenger"]["latency_ms"] == pytest.approx(2.5)
    assert evidence["challenger"]["labelled"] == 60
    assert evidence["challenger"]["live"] > evidence["champion"]["live"]
    # the endpoint serves the challenger alone, which is the champion now
    assert [v["ModelName"] for v in _serving(stack)["ProductionVariants"]] == [JOB_2]
    properties = package_properties(_package(stack, JOB_2))
    assert properties["mlops:rollout-verdict"] == "promoted"
    assert properties["mlops:rollout-requests"] == "60/60"
    assert properties["mlops:rollout-agreement"] == f"{agree:.4f}/60"
    assert properties["mlops:deployment"] == "in-service"
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None and JOB_2 in champion["model_data_url"]
    [alert] = [a for a in alerts(stack) if "rollout" in a["subject"]]
    assert alert["verdict"] == "promoted" and alert["evidence"]["agreement"] == agree


def test_a_shadow_that_disagrees_is_withdrawn_and_the_champion_config_restored(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    champion_config, _ = _on_trial(stack, lambda_context, monkeypatch)
    alerts(stack)
    ids = [f"req-{i}" for i in range(50)]
    _traffic(stack, c.VARIANT_NAME, [i % 2 for i in range(50)], ids=ids)
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, [1] * 50, ids=ids)

    outcome = promote.handler(CHECK, lambda_context)

    assert outcome["status"] == "withdrawn", outcome
    assert "agreement: 0.5000 of 50" in outcome["reason"]
    assert endpoint_config_name(stack) == champion_config
    package = _package(stack, JOB_2)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].startswith("rollout withdrawn: agreement")
    assert package_properties(package)["mlops:rollout-agreement"] == "0.5000/50"
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None and JOB_1 in champion["model_data_url"]
    [alert] = [a for a in alerts(stack) if "rollout" in a["subject"]]
    assert alert["verdict"] == "withdrawn" and "agreement" in alert["reason"]
    # and nothing is left on trial
    assert promote.handler(CHECK, lambda_context)["status"] == "ignored"


def test_an_ab_challenger_with_server_errors_is_withdrawn(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _env(monkeypatch, "ab", **{c.AB_TRAFFIC_PERCENT: "20"})
    _promote(stack, lambda_context, JOB_1, 0.80)

    trial = _promote(stack, lambda_context, JOB_2, 0.86)

    assert trial["status"] == "on-trial"
    weights = [
        (v["ModelName"], v["InitialVariantWeight"]) for v in _serving(stack)["ProductionVariants"]
    ]
    assert weights == [(JOB_1, 80.0), (JOB_2, 20.0)]
    _traffic(stack, c.VARIANT_NAME, [0] * 160)
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, [0] * 40, status_5xx=8)
    outcome = promote.handler(CHECK, lambda_context)
    assert outcome["status"] == "withdrawn", outcome
    assert outcome["reason"].startswith("withdrawn after its trial: error-rate: 5XX rate 0.2000")
    assert outcome["evidence"]["agreement"] is None  # A/B variants answer different requests


def test_a_newer_challenger_supersedes_the_one_on_trial(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _on_trial(stack, lambda_context, monkeypatch)

    outcome = _promote(stack, lambda_context, JOB_3, 0.90)

    assert outcome["status"] == "on-trial", outcome
    config = _serving(stack)
    # the new trial stands beside the champion, not beside the challenger it replaced
    assert [v["ModelName"] for v in config["ProductionVariants"]] == [JOB_1]
    superseded = _package(stack, JOB_2)
    assert superseded["ModelApprovalStatus"] == "Rejected"
    assert f"superseded by {JOB_3}" in superseded["ApprovalDescription"]
    assert package_properties(_package(stack, JOB_3))["mlops:rollout"] == "shadow"


def test_a_trial_whose_endpoint_was_changed_by_hand_is_withdrawn(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    champion_config, _ = _on_trial(stack, lambda_context, monkeypatch)
    stack.clients.sagemaker.update_endpoint(
        EndpointName=ENDPOINT, EndpointConfigName=champion_config
    )

    outcome = promote.handler(CHECK, lambda_context)

    assert outcome["status"] == "withdrawn"
    assert "no longer runs the trial's config" in outcome["reason"]
    assert _package(stack, JOB_2)["ModelApprovalStatus"] == "Rejected"


def test_the_quality_monitor_ignores_the_shadows_copies(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.quality_data import read_captures

    stack = update_endpoint_standin
    ids = [f"req-{i}" for i in range(5)]
    _traffic(stack, c.VARIANT_NAME, [0] * 5, ids=ids)
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, [1] * 5, ids=ids)
    spec = {"features": ["age", "plan"], "labels": ["0", "1"], "positive": "1"}
    now = utcnow()

    captured = read_captures(
        stack.config, stack.clients, now - timedelta(hours=1), now + timedelta(minutes=1), spec, []
    )

    assert sorted(captured.served) == ids
    assert {s.predicted for s in captured.served.values()} == {"0"}


# --- what the review found: failures, retries, busy endpoints, limits ------------------------


def test_a_failed_update_keeps_the_running_trial_and_rejects_only_the_newcomer(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _, trial = _on_trial(stack, lambda_context, monkeypatch)
    stack.env["_FAIL_UPDATE"] = "endpoint is being updated"

    outcome = _promote(stack, lambda_context, JOB_3, 0.90)

    assert outcome["status"] == "deploy-failed", outcome
    assert endpoint_config_name(stack) == trial["endpoint_config"]
    assert _package(stack, JOB_2)["ModelApprovalStatus"] == "Approved"  # still on trial
    assert package_properties(_package(stack, JOB_2)).get("mlops:rollout-verdict") is None
    assert _package(stack, JOB_3)["ModelApprovalStatus"] == "Rejected"


def test_a_retried_promotion_does_not_supersede_itself(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas import trial

    stack = update_endpoint_standin
    champion_config, _ = _on_trial(stack, lambda_context, monkeypatch)
    package = _package(stack, JOB_2)

    again = trial.serve_package(
        Config.from_env(os.environ),
        stack.clients,
        package_arn=package["ModelPackageArn"],
        job_name=JOB_2,
        model_data_url=package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
        environment={},
    )

    assert again["status"] == "on-trial", again
    assert _package(stack, JOB_2)["ModelApprovalStatus"] == "Approved"
    assert package_properties(_package(stack, JOB_2))["mlops:rollout-champion-config"] == (
        champion_config
    )
    # the new trial config still stands beside the champion's model
    assert [v["ModelName"] for v in _serving(stack)["ProductionVariants"]] == [JOB_1]


def test_a_busy_endpoint_makes_the_check_wait(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas_helpers import sagemaker_backend

    stack = update_endpoint_standin
    _on_trial(stack, lambda_context, monkeypatch, **{c.ROLLOUT_MIN_REQUESTS: "1"})
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, [0] * 5)
    sagemaker_backend().endpoints[ENDPOINT].endpoint_status = "Updating"  # e.g. autoscaling

    outcome = promote.handler(CHECK, lambda_context)

    assert outcome["status"] == "waiting" and "changing" in outcome["reason"]
    assert _package(stack, JOB_2)["ModelApprovalStatus"] == "Approved"


def test_leaving_a_trial_is_a_plain_update_and_a_failed_withdrawal_is_retried(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _env(
        monkeypatch,
        "shadow",
        **{c.ENDPOINT_INSTANCE_COUNT: "2", c.ROLLBACK_ALARM_NAMES: "churn-5xx"},
    )
    _promote(stack, lambda_context, JOB_1, 0.80)
    champion_config = endpoint_config_name(stack)
    _promote(stack, lambda_context, JOB_2, 0.86)
    ids = [f"req-{i}" for i in range(50)]
    _traffic(stack, c.VARIANT_NAME, [0] * 50, ids=ids)
    _traffic(stack, c.CHALLENGER_VARIANT_NAME, [1] * 50, ids=ids)  # disagrees: withdraw
    stack.env["_FAIL_UPDATE"] = "endpoint is being updated"

    failed = promote.handler(CHECK, lambda_context)

    assert failed["status"] == "withdraw-failed", failed
    assert _package(stack, JOB_2)["ModelApprovalStatus"] == "Approved"  # still judged
    del stack.env["_FAIL_UPDATE"]
    withdrawn = promote.handler(CHECK, lambda_context)
    assert withdrawn["status"] == "withdrawn", withdrawn
    assert endpoint_config_name(stack) == champion_config
    # entering and leaving the trial change the variant set: no blue/green config
    assert [u["DeploymentConfig"] for u in stack.updates[-2:]] == [None, None]


def test_a_trial_short_of_traffic_is_withdrawn_after_its_hours() -> None:
    config = Config.from_env(
        {c.MODEL_NAME: "churn", c.ROLLOUT_MIN_REQUESTS: "40", c.ROLLOUT_MAX_HOURS: "24"}
    )
    quiet = _evidence(requests=3)
    quiet.hours = 30.0

    verdict = judge(quiet, config)

    assert verdict.outcome == "withdraw"
    assert "3 of 40 requests in 30 hours (at most 24)" in verdict.reason
    quiet.hours = 2.0
    assert judge(quiet, config).outcome == "waiting"


def test_an_unjudged_challenger_variant_is_named(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    _on_trial(
        stack, lambda_context, monkeypatch, "ab"
    )  # (plain moto keeps production variants, drops shadow ones)
    package = _package(stack, JOB_2)  # a person rejects it: nothing judges it any more
    stack.clients.sagemaker.update_model_package(
        ModelPackageArn=package["ModelPackageArn"],
        ModelApprovalStatus="Rejected",
        CustomerMetadataProperties=package["CustomerMetadataProperties"],
    )
    alerts(stack)

    outcome = promote.handler(CHECK, lambda_context)

    assert outcome["status"] == "orphaned-challenger", outcome
    assert [a for a in alerts(stack) if "nobody judges" in a["subject"]]


def test_property_values_keep_to_sagemakers_pattern() -> None:
    import re

    from lambdas.packages import property_value

    value = property_value("error-rate: 5XX rate 0.2 (at most 0.01); latency, ok " + "x" * 300)
    assert len(value) == 256
    assert re.fullmatch(r"[\w .:/=+\-@]*", value)
    assert value.startswith("error-rate: 5XX rate 0.2  at most 0.01   latency  ok")


@pytest.mark.parametrize(
    ("age_days", "span_days", "step"), [(1, 1, 60), (16, 16, 300), (70, 70, 3600), (3, 0.01, 60)]
)
def test_metric_periods_fit_the_datapoint_limit_and_cloudwatchs_retention(
    age_days: float, span_days: float, step: int
) -> None:
    from lambdas.trial_evidence import MAX_DATAPOINTS, metric_period

    now = utcnow()
    start = now - timedelta(days=age_days)
    end = start + timedelta(days=span_days)

    period = metric_period(start, end, now=now)

    assert period % step == 0
    assert (end - start).total_seconds() / period + 1 <= MAX_DATAPOINTS
