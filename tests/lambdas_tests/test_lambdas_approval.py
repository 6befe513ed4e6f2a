"""promote beyond the test split: the reference set, the data guard's hold, a person's
decision in the registry and the rollout's real end (moto, in-process).

moto has no UpdateEndpoint and never rolls back: ``update_endpoint_standin`` repoints the
endpoint, and the rollout tests STAND IN for what DescribeEndpoint answers while SageMaker
rolls out or after it rolled back (``lambdas.rollout._describe`` patched).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from lambdas_helpers import (
    ARTIFACTS,
    GROUP,
    Stack,
    alerts,
    endpoint_config_name,
    evaluation,
    job_name,
    model_tar,
    packages,
    training_event,
    write_model_artifacts,
)

from lambdas import constants as c
from lambdas import promote, reference, rollout
from lambdas.packages import package_properties, update_package

JOB_1 = job_name("20240501-120000", "0000000a")
JOB_2 = job_name("20240502-120000", "0000000b")
JOB_3 = job_name("20240503-120000", "0000000c")
TEST_SPLIT = "age,plan,label\n" + "".join(f"{20 + i},basic,{i % 2}\n" for i in range(40))
TEST_SHA256 = hashlib.sha256(TEST_SPLIT.encode()).hexdigest()


def _write(
    stack: Stack,
    job: str,
    *,
    f1: float,
    reference_f1: float | None = None,
    champion_reference_f1: float = 0.8,
    reference_sha: str = TEST_SHA256,
    **guard: float,
) -> None:
    doc = evaluation(f1=f1, **guard)
    if reference_f1 is not None:
        doc["reference"] = {
            "sha256": reference_sha,
            "n": 40,
            "metrics": evaluation(f1=reference_f1)["metrics"],
            "champion": {"metrics": evaluation(f1=champion_reference_f1)["metrics"]},
        }
    write_model_artifacts(stack, job, doc)
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"{c.TRAINING_PREFIX}{job}/output/{c.OUTPUT_ARCHIVE}",
        Body=model_tar({c.TEST_SPLIT_FILE: TEST_SPLIT.encode()}),
    )


def _promote(stack: Stack, context: Any, job: str, **kwargs: Any) -> dict[str, Any]:
    _write(stack, job, **kwargs)
    return promote.handler(training_event(job), context)


def _package_event(arn: str, status: str) -> dict[str, Any]:
    return {
        "version": "0",
        "source": "aws.sagemaker",
        "detail-type": c.PACKAGE_STATE_CHANGE,
        "detail": {
            "ModelPackageGroupName": GROUP,
            "ModelPackageArn": arn,
            "ModelApprovalStatus": status,
        },
    }


def _decide(stack: Stack, context: Any, arn: str, status: str, why: str) -> dict[str, Any]:
    """What ``mlops approve``/``reject`` or the console does, then SageMaker's event."""
    update_package(stack.clients, arn, status=status, description=why)
    return promote.handler(_package_event(arn, status), context)


def _package(stack: Stack, arn: str) -> dict[str, Any]:
    return dict(stack.clients.sagemaker.describe_model_package(ModelPackageName=arn))


def _serving_job(stack: Stack) -> str:
    sm = stack.clients.sagemaker
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint_config_name(stack))
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return str(model["PrimaryContainer"]["ModelDataUrl"]).split("/")[-2]


def _manifest(stack: Stack) -> dict[str, Any] | None:
    return reference.current_reference(stack.config, stack.clients)


# --- the reference set ---------------------------------------------------------------------


def test_the_first_deployed_model_freezes_its_test_split(stack: Stack, lambda_context: Any) -> None:
    first = _promote(stack, lambda_context, JOB_1, f1=0.8)

    assert first["status"] == "deployed", first
    manifest = _manifest(stack)
    assert manifest is not None and manifest["sha256"] == TEST_SHA256
    assert manifest["rows"] == 40 and manifest["source"]["job"] == JOB_1
    bucket, key = reference.reference_bucket_key(manifest)
    body = stack.clients.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == TEST_SPLIT.encode()
    history = stack.clients.s3.list_objects_v2(
        Bucket=ARTIFACTS, Prefix=f"{c.REFERENCE_PREFIX}history/"
    )
    assert history["KeyCount"] == 1


def test_a_challenger_that_loses_on_the_reference_set_is_rejected(
    stack: Stack, lambda_context: Any, update_endpoint_standin: Stack
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    # better on its own (corrupted) test split, worse on the rows nobody trains on
    second = _promote(stack, lambda_context, JOB_2, f1=0.95, reference_f1=0.7)

    assert second["status"] == "not-promoted", second
    assert second["reason"].startswith("rejected: reference set: f1 0.7000 vs champion 0.8000")
    assert "beyond tolerance 0.0200" in second["reason"]
    assert _serving_job(stack) == JOB_1
    assert [p["ModelApprovalStatus"] for p in packages(stack)] == ["Approved", "Rejected"]


def test_a_loss_within_the_tolerance_passes(
    stack: Stack, lambda_context: Any, update_endpoint_standin: Stack
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    second = _promote(stack, lambda_context, JOB_2, f1=0.9, reference_f1=0.79)

    assert second["status"] == "deployed", second
    assert "reference set: f1 0.7900 vs champion 0.8000" in second["reason"]
    assert _serving_job(stack) == JOB_2


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({}, "the job was not scored on reference"),
        ({"reference_f1": 0.9, "reference_sha": "0" * 64}, "the job scored 000000000000, not"),
    ],
    ids=["not scored", "another set"],
)
def test_a_challenger_not_scored_on_this_reference_set_is_rejected(
    stack: Stack, lambda_context: Any, kwargs: dict[str, Any], why: str
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    second = _promote(stack, lambda_context, JOB_2, f1=0.95, **kwargs)

    assert second["status"] == "not-promoted", second
    assert why in second["reason"]


# --- held for a person -----------------------------------------------------------------------


@pytest.fixture
def held(stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stack that asks a person for every model, and its first model, held."""
    monkeypatch.setenv(c.APPROVAL_MODE, "manual")
    return _promote(stack, lambda_context, JOB_1, f1=0.9)


def test_doubtful_new_labels_hold_the_model_for_a_person(stack: Stack, lambda_context: Any) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    held = _promote(stack, lambda_context, JOB_2, f1=0.95, reference_f1=0.85, label_agreement=0.1)

    assert held["status"] == "pending-approval", held
    assert held["reason"].startswith("pending manual approval: data guard on 500 new rows")
    assert "label-agreement 0.1 < 0.25" in held["reason"]
    package = _package(stack, held["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    # what a person may approve is fixed now: the gated copy and its digest
    url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert url == f"s3://{ARTIFACTS}/{c.MODELS_PREFIX}{JOB_2}/model.tar.gz"
    assert package_properties(package)["mlops:decision"] == "PendingManualApproval"
    assert _serving_job(stack) == JOB_1
    [*_, alert] = alerts(stack)
    assert "awaits a person's approval" in alert["subject"]
    assert alert["approve"] == f"mlops approve {held['model_package_arn']}"


def test_manual_mode_holds_even_a_clear_winner(
    stack: Stack, lambda_context: Any, held: dict[str, Any]
) -> None:
    assert held["status"] == "pending-approval", held
    assert "mlops:approvalMode is manual" in held["reason"]
    assert endpoint_config_name(stack) is None
    assert _manifest(stack) is None


def test_a_person_approves_a_held_model_and_it_serves(
    stack: Stack, lambda_context: Any, held: dict[str, Any]
) -> None:

    approved = _decide(stack, lambda_context, held["model_package_arn"], "Approved", "looks right")

    assert approved["status"] == "deployed", approved
    assert approved["approval"] == "Approved"
    assert _serving_job(stack) == JOB_1
    properties = package_properties(_package(stack, held["model_package_arn"]))
    assert properties["mlops:deployment"] == "in-service"
    # the first model a person approved freezes the reference set, as the gate's would
    assert (_manifest(stack) or {}).get("sha256") == TEST_SHA256
    card = stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=f"{c.MODELS_PREFIX}{JOB_1}/card.json")
    stamped = json.loads(card["Body"].read())
    assert "looks right" in json.dumps(stamped)
    # the same event again deploys nothing twice
    again = promote.handler(_package_event(held["model_package_arn"], "Approved"), lambda_context)
    assert again["status"] in {"duplicate", "ignored"}, again


def test_a_person_rejects_a_held_model(
    stack: Stack, lambda_context: Any, held: dict[str, Any]
) -> None:

    rejected = _decide(stack, lambda_context, held["model_package_arn"], "Rejected", "odd labels")

    assert rejected["status"] == "not-promoted", rejected
    assert "odd labels" in rejected["reason"]
    assert endpoint_config_name(stack) is None


def test_an_approved_archive_that_changed_since_the_gate_is_refused(
    stack: Stack, lambda_context: Any, held: dict[str, Any]
) -> None:
    # (no role of the stack may write here: the least-privilege test proves it)
    stack.clients.s3.put_object(
        Bucket=ARTIFACTS,
        Key=f"{c.MODELS_PREFIX}{JOB_1}/model.tar.gz",
        Body=model_tar({c.MODEL_FILE: b"something else"}),
    )

    refused = _decide(stack, lambda_context, held["model_package_arn"], "Approved", "ok")

    assert refused["status"] == "rejected", refused
    assert "the gate recorded" in refused["reason"]
    assert endpoint_config_name(stack) is None
    package = _package(stack, held["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "not deployed" in alerts(stack)[-1]["subject"]


def test_a_late_approval_never_replaces_a_newer_champion(
    stack: Stack, lambda_context: Any, update_endpoint_standin: Stack
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    held = _promote(stack, lambda_context, JOB_2, f1=0.9, reference_f1=0.85, label_agreement=0.1)
    newer = _promote(stack, lambda_context, JOB_3, f1=0.92, reference_f1=0.86)
    assert newer["status"] == "deployed", newer

    late = _decide(stack, lambda_context, held["model_package_arn"], "Approved", "fine")

    assert late["status"] == "rejected", late
    assert "became the champion after this package" in late["reason"]
    assert _serving_job(stack) == JOB_3


def test_a_package_the_gate_approved_itself_is_not_redeployed(
    stack: Stack, lambda_context: Any
) -> None:
    first = _promote(stack, lambda_context, JOB_1, f1=0.8)

    again = promote.handler(_package_event(first["model_package_arn"], "Approved"), lambda_context)

    assert again["status"] == "ignored", again
    assert "the gate decided Approved itself" in again["reason"]


def test_a_package_of_another_group_is_refused(stack: Stack, lambda_context: Any) -> None:
    event = _package_event("arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1", "Approved")
    event["detail"]["ModelPackageGroupName"] = "someone-elses"

    outcome = promote.handler(event, lambda_context)

    assert outcome["status"] == "rejected", outcome
    assert "is not this stack's" in outcome["reason"]


# --- the rollout's real end ----------------------------------------------------------------


def test_a_rollout_sagemaker_rolled_back_rejects_the_package(
    stack: Stack,
    lambda_context: Any,
    update_endpoint_standin: Stack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    old_config = endpoint_config_name(stack)
    real = rollout._describe

    def rolled_back(clients: Any, name: str) -> dict[str, Any] | None:
        found = real(clients, name)
        return {
            **(found or {}),
            "EndpointStatus": "InService",
            "EndpointConfigName": old_config,
            "FailureReason": "alarm mlops-fraud-5xx fired during baking",
        }

    monkeypatch.setattr(rollout, "_describe", rolled_back)
    second = _promote(stack, lambda_context, JOB_2, f1=0.9, reference_f1=0.85)

    assert second["status"] == "deploy-failed", second
    assert second["deployment"] == "rolled-back"
    assert "alarm mlops-fraud-5xx fired during baking" in second["reason"]
    package = _package(stack, second["model_package_arn"])
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package_properties(package)["mlops:deployment"] == "rolled-back"
    assert "rolled-back" in alerts(stack)[-1]["subject"]


def test_a_rollout_longer_than_the_wait_is_finished_by_the_endpoint_event(
    stack: Stack,
    lambda_context: Any,
    update_endpoint_standin: Stack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _promote(stack, lambda_context, JOB_1, f1=0.8)
    monkeypatch.setenv(c.DEPLOY_WAIT_SECONDS, "0")
    real = rollout._describe
    busy = {"now": True}

    def updating(clients: Any, name: str) -> dict[str, Any] | None:
        found = real(clients, name)
        return {**(found or {}), "EndpointStatus": "Updating"} if busy["now"] else found

    monkeypatch.setattr(rollout, "_describe", updating)
    second = _promote(stack, lambda_context, JOB_2, f1=0.9, reference_f1=0.85)
    assert second["status"] == "deploying", second
    arn = second["model_package_arn"]
    assert package_properties(_package(stack, arn))["mlops:deployment"] == "updating"

    busy["now"] = False
    event = {
        "version": "0",
        "source": "aws.sagemaker",
        "detail-type": c.ENDPOINT_STATE_CHANGE,
        "detail": {"EndpointName": stack.config.endpoint_name, "EndpointStatus": "IN_SERVICE"},
    }
    ended = promote.handler(event, lambda_context)

    assert ended["status"] == "deployed", ended
    assert package_properties(_package(stack, arn))["mlops:deployment"] == "in-service"


def test_a_fairness_limit_without_an_audit_holds_the_first_model(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(c.MAX_FAIRNESS_GAP, "0.1")
    monkeypatch.setenv(c.FAIRNESS_ACTION, "reject")

    held = _promote(stack, lambda_context, JOB_1, f1=0.9)

    assert held["status"] == "pending-approval", held
    assert "mlops:maxFairnessGap is 0.1 but the job ran no fairness audit" in held["reason"]
    assert endpoint_config_name(stack) is None
