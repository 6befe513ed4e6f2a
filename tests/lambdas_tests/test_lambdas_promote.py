"""lambdas.promote: the gate, the registry and the deployment (moto, in-process).

moto has no ``UpdateEndpoint``; tests that update an existing endpoint use the
``update_endpoint_standin`` fixture (tests/lambdas_tests/lambdas_helpers.py), a narrow stand-in that
only records the request and repoints the endpoint at the new config.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from lambdas_helpers import (
    ARTIFACTS,
    ENDPOINT,
    MODEL,
    Stack,
    alerts,
    endpoint_config_name,
    evaluation,
    job_name,
    load_event,
    model_tar,
    packages,
    s3_keys,
    sagemaker_backend,
    set_job_status,
    submit_job,
    training_event,
    write_model_artifacts,
)

from lambdas import constants as c
from lambdas import gate, promote, promote_events, registry, release, serving
from lambdas.aws import parse_s3_uri

JOB_1 = job_name("20240501-120000", "0000000a")
JOB_2 = job_name("20240502-120000", "0000000b")
MAJORITY_CLASS = evaluation(
    accuracy=0.99,
    f1=0.0,
    balanced_accuracy=0.5,
    minority_recall=0.0,
    confusion_matrix=[[99, 0], [1, 0]],
)


def _promote(stack: Stack, context: Any, job: str, evaluation_doc: dict[str, Any]) -> dict:
    write_model_artifacts(stack, job, evaluation_doc)
    return promote.handler(training_event(job), context)


def _serving_model(stack: Stack) -> str:
    sm = stack.clients.sagemaker
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint_config_name(stack))
    return str(config["ProductionVariants"][0]["ModelName"])


# --- first model -----------------------------------------------------------------------------


def test_first_model_is_approved_and_creates_the_endpoint(
    stack: Stack, lambda_context: Any
) -> None:
    # given no champion and a job that beats the majority-class baseline
    outcome = _promote(stack, lambda_context, JOB_1, evaluation(f1=0.8))

    # then it is registered Approved, with ModelMetrics pointing at evaluation.json
    assert outcome["status"] == "deployed", outcome
    assert outcome["action"] == "created"
    [package] = packages(stack)
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["ModelPackageDescription"].startswith("approved: ")
    uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    assert uri == f"s3://{ARTIFACTS}/training/{JOB_1}/evaluation.json"
    stored = json.loads(
        stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=parse_s3_uri(uri)[1])["Body"].read()
    )
    assert stored["metrics"]["f1"] == 0.8
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"] == f"s3://{ARTIFACTS}/models/{JOB_1}/model.tar.gz"
    # and the endpoint serves it (serverless by default: no capture, see control-plane.md)
    assert _serving_model(stack) == JOB_1
    config = stack.clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=endpoint_config_name(stack)
    )
    assert config["ProductionVariants"][0]["ServerlessConfig"] == {
        "MemorySizeInMB": 2048,
        "MaxConcurrency": 5,
    }
    model = stack.clients.sagemaker.describe_model(ModelName=JOB_1)
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert (
        model["PrimaryContainer"]["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
        == (stack.env[c.CODE_S3_URI])
    )


def test_first_instance_endpoint_gets_capture_and_autoscaling(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.ENDPOINT_MODE, "instance")

    outcome = _promote(stack, lambda_context, JOB_1, evaluation())

    assert outcome["status"] == "deployed" and outcome["autoscaling"] == "registered"
    config = stack.clients.sagemaker.describe_endpoint_config(
        EndpointConfigName=outcome["endpoint_config"]
    )
    capture = config["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == "s3://mlops-capture"
    assert capture["KmsKeyId"] == stack.env[c.KMS_KEY_ARN]
    assert [o["CaptureMode"] for o in capture["CaptureOptions"]] == ["Input", "Output"]
    targets = stack.clients.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")
    [target] = targets["ScalableTargets"]
    assert target["ResourceId"] == f"endpoint/{ENDPOINT}/variant/AllTraffic"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    policies = stack.clients.autoscaling.describe_scaling_policies(ServiceNamespace="sagemaker")
    spec = policies["ScalingPolicies"][0]["TargetTrackingScalingPolicyConfiguration"]
    assert spec["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    # and a second promotion leaves the existing policy alone
    config, _ = stack.with_env(**{c.ENDPOINT_MODE: "instance"})
    assert serving.ensure_autoscaling(config, stack.clients) == "present"


# --- the gate ------------------------------------------------------------------------------------


def test_worse_challenger_is_rejected_and_the_endpoint_is_unchanged(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    # given a serving champion with f1 0.80
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.80))
    serving = endpoint_config_name(stack)

    # when a challenger with f1 0.75 completes
    outcome = _promote(stack, lambda_context, JOB_2, evaluation(f1=0.75))

    # then it is registered Rejected with the reason, and nothing about serving changes
    assert outcome["status"] == "not-promoted"
    assert "champion 0.8000" in outcome["reason"]
    rejected = [p for p in packages(stack) if p["ModelApprovalStatus"] == "Rejected"]
    assert len(rejected) == 1
    assert "does not gain the margin" in rejected[0]["ModelPackageDescription"]
    assert endpoint_config_name(stack) == serving
    assert stack.updates == []


def test_challenger_inside_the_margin_is_rejected(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.80))

    outcome = _promote(stack, lambda_context, JOB_2, evaluation(f1=0.805))

    assert outcome["status"] == "not-promoted"
    assert stack.updates == []


def test_majority_class_challenger_with_99_percent_accuracy_is_rejected(
    stack: Stack, lambda_context: Any
) -> None:
    # given no champion, and a "model" that always predicts the majority class
    outcome = _promote(stack, lambda_context, JOB_1, MAJORITY_CLASS)

    # then accuracy does not fool the gate: the guardrails reject it
    assert outcome["status"] == "not-promoted"
    failed = {g["rule"] for g in outcome["gate"] if not g["held"]}
    assert failed == {"beats-baseline", "balanced-accuracy", "minority-recall"}
    [package] = packages(stack)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "minority recall 0.0000 < floor 0.5000" in package["ModelPackageDescription"]
    assert endpoint_config_name(stack) is None


def test_better_challenger_updates_the_endpoint_blue_green(
    update_endpoint_standin: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = update_endpoint_standin
    monkeypatch.setenv(c.ENDPOINT_MODE, "instance")
    monkeypatch.setenv(c.ENDPOINT_INSTANCE_COUNT, "2")
    monkeypatch.setenv(c.ROLLBACK_ALARM_NAMES, "churn-5xx,churn-latency")
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.80))

    outcome = _promote(stack, lambda_context, JOB_2, evaluation(f1=0.86))

    # then (through the UpdateEndpoint stand-in) the endpoint moves to the new model
    assert outcome["status"] == "deployed" and outcome["action"] == "updated"
    assert _serving_model(stack) == JOB_2
    [update] = stack.updates
    deployment = update["DeploymentConfig"]
    routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["Type"] == "CANARY"
    assert routing["CanarySize"] == {"Type": "CAPACITY_PERCENT", "Value": 10}
    assert deployment["AutoRollbackConfiguration"]["Alarms"] == [
        {"AlarmName": "churn-5xx"},
        {"AlarmName": "churn-latency"},
    ]
    # and the new package is the champion now
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None and champion["model_data_url"].endswith(
        f"models/{JOB_2}/model.tar.gz"
    )


def test_update_failure_keeps_the_champion_serving_and_alerts(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.80))
    serving = endpoint_config_name(stack)
    alerts(stack)  # drain
    # given SageMaker refuses the update
    stack.env["_FAIL_UPDATE"] = "Endpoint churn-endpoint has a pending update"

    outcome = _promote(stack, lambda_context, JOB_2, evaluation(f1=0.90))

    # then the champion still serves, the package is Rejected, and the alert says why
    assert outcome["status"] == "deploy-failed"
    assert "update_endpoint failed" in outcome["reason"]
    assert endpoint_config_name(stack) == serving
    assert _serving_model(stack) == JOB_1
    challenger = next(p for p in packages(stack) if JOB_2 in json.dumps(p, default=str))
    assert challenger["ModelApprovalStatus"] == "Rejected"
    assert challenger["ApprovalDescription"].startswith("deployment failed: ")
    [alert] = alerts(stack)
    assert alert["job"] == JOB_2
    assert "pending update" in alert["reason"]
    assert alert["serving"].startswith("unchanged")
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None and JOB_1 in champion["model_data_url"]


def test_an_operator_can_promote_again_after_a_failed_deployment(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.80))
    stack.env["_FAIL_UPDATE"] = "Endpoint churn-endpoint has a pending update"
    _promote(stack, lambda_context, JOB_2, evaluation(f1=0.90))
    # given the cause is gone (the endpoint is free again)
    del stack.env["_FAIL_UPDATE"]

    # when an operator asks again (an EventBridge redelivery would be a duplicate)
    redelivered = promote.handler(training_event(JOB_2), lambda_context)
    request = load_event("promote_request")
    request["detail"]["TrainingJobName"] = JOB_2
    outcome = promote.handler(request, lambda_context)

    # then the job is deployed, under a new Approved package
    assert redelivered["status"] == "duplicate"
    assert outcome["status"] == "deployed", outcome
    assert _serving_model(stack) == JOB_2
    statuses = sorted(p["ModelApprovalStatus"] for p in packages(stack))
    assert statuses == ["Approved", "Approved", "Rejected"]


# --- failures and odd cases ------------------------------------------------------------------


@pytest.mark.parametrize("status", ["Failed", "Stopped"])
def test_failed_training_job_alerts_and_registers_nothing(
    stack: Stack, lambda_context: Any, status: str
) -> None:
    event = load_event("training_failed")
    event["detail"]["TrainingJobStatus"] = status
    reason = event["detail"]["FailureReason"]
    submit_job(stack, event["detail"]["TrainingJobName"], status, reason)

    outcome = promote.handler(event, lambda_context)

    assert outcome["status"] == "training-failed"
    assert packages(stack) == []
    [alert] = alerts(stack)
    assert alert["status"] == status
    assert alert["reason"] == "AlgorithmError: label column 'label' not found in incoming data"


def test_in_progress_event_is_ignored(stack: Stack, lambda_context: Any) -> None:
    submit_job(stack, JOB_1, "InProgress")

    outcome = promote.handler(training_event(JOB_1, status="InProgress"), lambda_context)

    assert outcome["status"] == "ignored"
    assert packages(stack) == [] and endpoint_config_name(stack) is None and not alerts(stack)


# --- what serves is exactly what was gated ---------------------------------------------------


def _object(stack: Stack, key: str) -> bytes:
    return bytes(stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())


def test_the_approved_archive_is_released_byte_for_byte_with_its_digests(
    stack: Stack, lambda_context: Any
) -> None:
    doc = {**evaluation(f1=0.8), "model": {"sha256": "ab" * 32}}
    trained = write_model_artifacts(stack, JOB_1, doc)
    archive = _object(stack, parse_s3_uri(trained)[1])

    outcome = promote.handler(training_event(JOB_1), lambda_context)
    # a later write to the job's training output (any job's role may) changes nothing served
    stack.clients.s3.put_object(Bucket=ARTIFACTS, Key=parse_s3_uri(trained)[1], Body=b"evil")

    assert outcome["status"] == "deployed", outcome
    released = f"{c.MODELS_PREFIX}{JOB_1}/model.tar.gz"
    assert _object(stack, released) == archive
    digest = hashlib.sha256(archive).hexdigest()
    [package] = packages(stack)
    assert package["CustomerMetadataProperties"]["mlops:model-sha256"] == digest
    environment = stack.clients.sagemaker.describe_model(ModelName=JOB_1)["PrimaryContainer"][
        "Environment"
    ]
    assert environment[c.MODEL_ARCHIVE_SHA256_ENV] == digest
    assert environment[c.MODEL_SHA256_ENV] == "ab" * 32
    container = stack.clients.sagemaker.describe_model(ModelName=JOB_1)["PrimaryContainer"]
    assert container["ModelDataUrl"] == f"s3://{ARTIFACTS}/{released}"


def test_a_released_key_holding_other_bytes_is_never_overwritten(
    stack: Stack, lambda_context: Any
) -> None:
    planted = f"{c.MODELS_PREFIX}{JOB_1}/model.tar.gz"
    stack.clients.s3.put_object(Bucket=ARTIFACTS, Key=planted, Body=b"another archive")

    outcome = _promote(stack, lambda_context, JOB_1, evaluation(f1=0.8))

    assert outcome["status"] == "error", outcome
    assert "already holds another archive; it is never overwritten" in outcome["reason"]
    assert _object(stack, planted) == b"another archive"
    assert packages(stack) == [] and endpoint_config_name(stack) is None
    assert len(alerts(stack)) == 1


def test_a_repeated_release_reuses_the_identical_copy(stack: Stack) -> None:
    trained = write_model_artifacts(stack, JOB_1, evaluation(f1=0.8))
    archive = release.load_archive(stack.clients, trained)

    first = release.release(stack.config, stack.clients, JOB_1, archive)
    again = release.release(stack.config, stack.clients, JOB_1, archive)

    assert first == again == f"s3://{ARTIFACTS}/{c.MODELS_PREFIX}{JOB_1}/model.tar.gz"
    assert s3_keys(stack, ARTIFACTS, c.MODELS_PREFIX) == [f"{c.MODELS_PREFIX}{JOB_1}/model.tar.gz"]
    assert _object(stack, parse_s3_uri(first)[1]) == archive.data


def test_an_archive_over_the_limit_is_refused_without_reading_it_whole(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(release, "MAX_ARCHIVE_BYTES", 100)

    outcome = _promote(stack, lambda_context, JOB_1, evaluation(f1=0.8))

    assert outcome["status"] == "error"
    assert "is over 100 bytes; at most that is gated" in outcome["reason"]
    assert packages(stack) == [] and s3_keys(stack, ARTIFACTS, c.MODELS_PREFIX) == []


def test_a_rejected_challenger_releases_nothing(stack: Stack, lambda_context: Any) -> None:
    outcome = _promote(stack, lambda_context, JOB_1, MAJORITY_CLASS)

    assert outcome["status"] == "not-promoted"
    # only the model card (why it was refused) is written; no archive to serve
    released = s3_keys(stack, ARTIFACTS, c.MODELS_PREFIX)
    assert released and all(k.rsplit("/", 1)[-1].startswith("card.") for k in released), released
    [package] = packages(stack)
    container = package["InferenceSpecification"]["Containers"][0]
    assert container["ModelDataUrl"].endswith(f"training/{JOB_1}/output/model.tar.gz")


# --- the job is verified with its backend before anything else ------------------------------


def _refused(stack: Stack, outcome: dict[str, Any], why: str) -> None:
    assert outcome["status"] == "rejected", outcome
    assert why in outcome["reason"]
    assert packages(stack) == [] and endpoint_config_name(stack) is None
    [alert] = alerts(stack)
    assert why in alert["reason"]


def test_completed_event_for_a_job_that_never_existed_is_refused(
    stack: Stack, lambda_context: Any
) -> None:
    key = f"{c.TRAINING_PREFIX}{JOB_1}/output/model.tar.gz"
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS, Key=key, Body=model_tar({c.EVALUATION_FILE: evaluation(f1=0.99)})
    )

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    _refused(stack, outcome, f"SageMaker has no training job {JOB_1!r}")


def test_job_of_another_model_with_a_matching_name_is_refused(
    stack: Stack, lambda_context: Any
) -> None:
    write_model_artifacts(stack, JOB_1, evaluation(f1=0.99))
    arn = stack.clients.sagemaker.describe_training_job(TrainingJobName=JOB_1)["TrainingJobArn"]
    stack.clients.sagemaker.add_tags(
        ResourceArn=arn, Tags=[{"Key": "mlops:model", "Value": "fraud"}]
    )

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    _refused(stack, outcome, "tagged mlops:model='fraud'")


def test_job_run_with_another_role_is_refused(stack: Stack, lambda_context: Any) -> None:
    write_model_artifacts(stack, JOB_1, evaluation(f1=0.99))
    sagemaker_backend().training_jobs[JOB_1].role_arn = "arn:aws:iam::123456789012:role/other"

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    _refused(stack, outcome, "ran with role 'arn:aws:iam::123456789012:role/other'")


def test_completed_event_for_a_job_still_running_is_refused(
    stack: Stack, lambda_context: Any
) -> None:
    write_model_artifacts(stack, JOB_1, evaluation(f1=0.99))
    set_job_status(JOB_1, "InProgress")

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    _refused(stack, outcome, f"the event says {JOB_1} is Completed; SageMaker says InProgress")


def test_event_pointing_at_other_artifacts_is_refused(stack: Stack, lambda_context: Any) -> None:
    write_model_artifacts(stack, JOB_1, evaluation(f1=0.5))
    planted = f"s3://{ARTIFACTS}/{c.TRAINING_PREFIX}planted/model.tar.gz"
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS,
        Key=planted.split("/", 3)[3],
        Body=model_tar({c.EVALUATION_FILE: evaluation(f1=0.99)}),
    )
    event = training_event(JOB_1)
    event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] = planted

    outcome = promote.handler(event, lambda_context)

    _refused(stack, outcome, f"the event's artifacts {planted} are not the job's own")


def test_job_writing_outside_the_stacks_training_prefix_is_refused(
    stack: Stack, lambda_context: Any
) -> None:
    write_model_artifacts(stack, JOB_1, evaluation(f1=0.99))
    job = sagemaker_backend().training_jobs[JOB_1]
    job.model_artifacts = {"S3ModelArtifacts": f"s3://{ARTIFACTS}/elsewhere/model.tar.gz"}

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    _refused(stack, outcome, "reports artifacts")


def test_ec2_job_without_retrains_lineage_record_is_refused(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.TRAINING_BACKEND, "ec2")
    key = f"{c.TRAINING_PREFIX}{JOB_1}/output/model.tar.gz"
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS, Key=key, Body=model_tar({c.EVALUATION_FILE: evaluation(f1=0.99)})
    )
    event = training_event(JOB_1)
    event["source"] = c.EVENT_SOURCE

    outcome = promote.handler(event, lambda_context)

    _refused(stack, outcome, f"retrain never started {JOB_1}: no {c.LINEAGE_PREFIX}{JOB_1}.json")


def test_ec2_job_with_retrains_lineage_record_is_promoted(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.TRAINING_BACKEND, "ec2")
    key = f"{c.TRAINING_PREFIX}{JOB_1}/output/model.tar.gz"
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS, Key=key, Body=model_tar({c.EVALUATION_FILE: evaluation(f1=0.8)})
    )
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"{c.LINEAGE_PREFIX}{JOB_1}.json",
        Body=b'{"job": "%s"}' % JOB_1.encode(),
    )
    event = training_event(JOB_1)
    event["source"] = c.EVENT_SOURCE

    outcome = promote.handler(event, lambda_context)

    assert outcome["status"] == "deployed", outcome


def test_missing_evaluation_alerts_and_registers_nothing(stack: Stack, lambda_context: Any) -> None:
    write_model_artifacts(stack, JOB_1, None)

    outcome = promote.handler(training_event(JOB_1), lambda_context)

    assert outcome["status"] == "error"
    assert "evaluation.json is not in" in outcome["reason"]
    assert packages(stack) == []
    assert len(alerts(stack)) == 1


def test_duplicate_completed_event_registers_one_package(stack: Stack, lambda_context: Any) -> None:
    first = _promote(stack, lambda_context, JOB_1, evaluation())
    second = promote.handler(training_event(JOB_1), lambda_context)

    assert first["status"] == "deployed"
    assert second["status"] == "duplicate"
    assert len(packages(stack)) == 1


def test_manual_promote_request_looks_the_job_up(stack: Stack, lambda_context: Any) -> None:
    # given a SageMaker job (moto: Completed at once) and its artifacts
    from lambdas.training import build_training_request

    request = build_training_request(stack.config, JOB_1, "0" * 64, "manual")
    stack.clients.sagemaker.create_training_job(**request)
    write_model_artifacts(stack, JOB_1, evaluation())
    event = load_event("promote_request")
    event["detail"]["TrainingJobName"] = JOB_1

    outcome = promote.handler(event, lambda_context)

    assert outcome["status"] == "deployed"


# --- the gate, as a pure function --------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenger", "champion", "approved", "failing"),
    [
        (evaluation(f1=0.81), evaluation(f1=0.80), True, set()),  # exactly the margin
        (evaluation(f1=0.809), evaluation(f1=0.80), False, {"beats-champion"}),
        (evaluation(f1=0.70), None, True, set()),  # first model: guardrails only
        (MAJORITY_CLASS, None, False, {"beats-baseline", "balanced-accuracy", "minority-recall"}),
        (evaluation(minority_recall=0.49), None, False, {"minority-recall"}),
        (evaluation(minority_recall=0.5), None, True, set()),  # the floor is inclusive
        (evaluation(f1=0.9), {"metrics": {}}, False, {"beats-champion"}),
    ],
)
def test_gate_rules(
    challenger: dict, champion: dict | None, approved: bool, failing: set[str]
) -> None:
    decision = gate.evaluate_gate(challenger, champion, margin=0.01, min_minority_recall=0.5)

    assert decision.approved is approved
    assert {rule for rule, held, _ in decision.checks if not held} == failing


def test_gate_falls_back_to_the_confusion_matrix_for_minority_recall() -> None:
    doc = evaluation(minority_recall=None, confusion_matrix=[[90, 0], [6, 4]])

    decision = gate.evaluate_gate(doc, None, min_minority_recall=0.5)

    assert gate.minority_recall(doc) == pytest.approx(0.4)
    assert not decision.approved


def test_gate_uses_the_configured_primary_metric() -> None:
    challenger = evaluation(f1=0.95)
    challenger["metrics"]["roc_auc"] = 0.80
    champion = evaluation(f1=0.70)
    champion["metrics"]["roc_auc"] = 0.85

    decision = gate.evaluate_gate(challenger, champion, primary_metric="roc_auc")

    assert decision.primary_metric == "roc_auc"
    assert not decision.approved


# --- the champion on the same test split -------------------------------------------------------

CHAMPION_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-packages/1"


def _measured(doc: dict[str, Any], champion_f1: float | None, **section: Any) -> dict[str, Any]:
    """``doc`` with the ``champion`` section the challenger's job writes (same test split)."""
    if champion_f1 is not None:
        metrics = {**evaluation(f1=champion_f1)["metrics"]}
        section = {"metrics": metrics, "n_test": doc["n_test"], **section}
    return {**doc, "champion": {"package": CHAMPION_ARN, **section}}


@pytest.mark.parametrize(
    ("own_split", "same_split", "approved", "text"),
    [
        # after drift the champion's old number flatters it; on the new data it is worse
        (0.93, 0.62, True, "f1 0.8000 vs champion 0.6200 on the same test split (+0.1800 >= "),
        # its old number looks beatable; on the same rows the champion is better
        (0.70, 0.85, False, "vs champion 0.8500 on the same test split (-0.0500 < margin"),
        (0.93, 0.79, True, "(+0.0100 >= margin 0.0100)"),  # exactly the margin
        (0.10, 0.795, False, ": does not gain the margin"),
    ],
)
def test_gate_compares_on_the_same_test_split_when_the_job_measured_the_champion(
    own_split: float, same_split: float, approved: bool, text: str
) -> None:
    challenger = _measured(evaluation(f1=0.80), same_split)
    champion = evaluation(f1=own_split)

    decision = gate.evaluate_gate(challenger, champion, margin=0.01, champion_package=CHAMPION_ARN)
    fallback = gate.evaluate_gate(evaluation(f1=0.80), champion, margin=0.01)

    assert decision.approved is approved
    assert decision.comparison == "same-split"
    assert decision.champion_value == same_split
    assert text in decision.reason
    # the champion's own number would have decided the other way
    assert fallback.approved is (own_split + 0.01 <= 0.80)
    assert fallback.comparison == "own-split"
    assert "on the champion's own test split" in fallback.reason or fallback.approved


@pytest.mark.parametrize(
    ("section", "why"),
    [
        (None, None),  # an older job, or a job started without a champion
        ({"error": "the champion needs feature(s) the challenger's data lacks: plan"}, "plan"),
        ({"package": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/7"}, "not the"),
        ({"metrics": {"accuracy": 0.5}}, "lack f1"),
    ],
)
def test_gate_falls_back_to_the_champions_own_split(section: Any, why: str | None) -> None:
    challenger = evaluation(f1=0.80)
    if section is not None:
        challenger = _measured(challenger, None, **section)

    decision = gate.evaluate_gate(
        challenger, evaluation(f1=0.75), margin=0.01, champion_package=CHAMPION_ARN
    )

    assert decision.approved
    assert decision.comparison == "own-split"
    assert decision.champion_value == 0.75
    [why_text] = [t for rule, _, t in decision.checks if rule == "beats-champion"]
    assert "vs champion 0.7500 on the champion's own test split" in why_text
    if why:
        assert why in why_text


def test_first_model_has_no_comparison_even_with_a_champion_section() -> None:
    decision = gate.evaluate_gate(_measured(evaluation(f1=0.80), 0.9), None)

    assert decision.approved and decision.comparison is None
    assert "no champion: first model" in decision.reason


def test_promotion_records_the_same_split_comparison(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    # given a champion whose own evaluation says f1 0.93
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.93))
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None
    # and a challenger whose job scored that champion at 0.62 on the new test split
    challenger = evaluation(f1=0.80)
    challenger["champion"] = {
        "metrics": evaluation(f1=0.62)["metrics"],
        "package": champion["arn"],
        "n_test": challenger["n_test"],
    }

    outcome = _promote(stack, lambda_context, JOB_2, challenger)

    # then it wins on the same rows, and the registry says how it was compared
    assert outcome["status"] == "deployed", outcome
    assert outcome["comparison"] == "same-split"
    # (the decisive comparison first, so a truncated description still shows it)
    assert outcome["reason"].startswith(
        "approved: f1 0.8000 vs champion 0.6200 on the same test split (+0.1800 >= margin 0.0100);"
    )
    new = next(p for p in packages(stack) if JOB_2 in json.dumps(p, default=str))
    properties = new["CustomerMetadataProperties"]
    assert properties["mlops:champion-comparison"] == "same-split"
    assert properties["mlops:champion-f1"] == "0.620000"
    assert "on the same test split" in new["ModelPackageDescription"]
    assert _serving_model(stack) == JOB_2


def test_own_split_comparison_is_recorded_too(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.93))

    outcome = _promote(stack, lambda_context, JOB_2, evaluation(f1=0.80))

    assert outcome["status"] == "not-promoted"
    assert outcome["comparison"] == "own-split"
    assert "vs champion 0.9300 on the champion's own test split" in outcome["reason"]
    new = next(p for p in packages(stack) if JOB_2 in json.dumps(p, default=str))
    assert new["CustomerMetadataProperties"]["mlops:champion-comparison"] == "own-split"


def test_same_split_metrics_need_no_readable_champion_evaluation(
    update_endpoint_standin: Stack, lambda_context: Any
) -> None:
    stack = update_endpoint_standin
    _promote(stack, lambda_context, JOB_1, evaluation(f1=0.93))
    champion = registry.find_champion(stack.config, stack.clients)
    assert champion is not None
    # the champion's own evaluation is gone (copy and model.tar.gz)
    for uri in (champion["evaluation_uri"], champion["model_data_url"]):
        stack.clients.s3.delete_object(Bucket=ARTIFACTS, Key=parse_s3_uri(uri)[1])
    measured = evaluation(f1=0.80)
    measured["champion"] = {"metrics": evaluation(f1=0.62)["metrics"], "package": champion["arn"]}

    unmeasured = _promote(stack, lambda_context, job_name("20240503-120000"), evaluation(f1=0.99))
    outcome = _promote(stack, lambda_context, JOB_2, measured)

    # without a same-split measurement the unreadable champion rejects (conservative)
    assert unmeasured["status"] == "not-promoted"
    assert "metrics unreadable" in unmeasured["reason"]
    # with one, the champion's own evaluation is not needed
    assert outcome["status"] == "deployed" and outcome["comparison"] == "same-split", outcome


@pytest.mark.parametrize(
    ("mode", "count", "canary", "expected"),
    [
        ("serverless", 1, 10, None),
        ("instance", 1, 10, "ALL_AT_ONCE"),  # a canary must be <= half the fleet
        ("instance", 4, 10, "CANARY"),
        ("instance", 4, 80, "CANARY"),
    ],
)
def test_deployment_config(
    stack: Stack, mode: str, count: int, canary: int, expected: str | None
) -> None:
    config, _ = stack.with_env(
        **{
            c.ENDPOINT_MODE: mode,
            c.ENDPOINT_INSTANCE_COUNT: str(count),
            c.CANARY_PERCENT: str(canary),
        }
    )

    deployment = serving.build_deployment_config(config)

    if expected is None:
        assert deployment is None
    else:
        routing = deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
        assert routing["Type"] == expected
        if expected == "CANARY":
            assert routing["CanarySize"]["Value"] == min(canary, 50)
        assert "AutoRollbackConfiguration" not in deployment  # no alarms configured


def test_model_name_is_checked_against_the_model(stack: Stack) -> None:
    assert MODEL in promote_events.parse_job_event(training_event(JOB_1), stack.config).job_name
