"""`mlops approve` / `reject` / `reference` (typer's CliRunner, moto): a person's decision
is recorded in the registry with who made it; the reference set is replaced with history."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from test_cli import run, text

from lambdas import constants as c
from lambdas.aws import client
from mlops.target import Target, from_outputs

REGION = "us-east-1"
GROUP = "churn-packages"
BUCKET = "mlops-artifacts"
JOB = "churn-20240501-120000-0000000a"
ENV = {
    c.MODEL_NAME: "churn",
    c.ARTIFACTS_BUCKET: BUCKET,
    c.MODEL_PACKAGE_GROUP: GROUP,
    "AWS_DEFAULT_REGION": REGION,
}
CSV = "age,plan,label\n" + "".join(f"{20 + i},basic,{i % 2}\n" for i in range(30))


@dataclass
class Cloud:
    target: Target
    sagemaker: Any
    s3: Any


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    with mock_aws():
        target = from_outputs(
            "test",
            {"region": REGION, "modelPackageGroupName": GROUP, "lambdaEnvironment": ENV},
            endpoint_url=None,
        )
        for module in ("approve", "card"):
            monkeypatch.setattr(f"mlops.cli.{module}.target_for", lambda stack, state_dir: target)
        sagemaker, s3 = client("sagemaker", REGION), client("s3", REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        s3.create_bucket(Bucket=BUCKET)
        yield Cloud(target, sagemaker, s3)


def register(cloud: Cloud, status: str = "PendingManualApproval", decision: str = "") -> str:
    response = cloud.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=status,
        CustomerMetadataProperties={"mlops:job": JOB, "mlops:decision": decision or status},
    )
    return str(response["ModelPackageArn"])


def described(cloud: Cloud, arn: str) -> dict[str, Any]:
    return dict(cloud.sagemaker.describe_model_package(ModelPackageName=arn))


def test_approve_records_who_and_why(cloud: Cloud) -> None:
    arn = register(cloud)

    result = run("approve", "1", "--reason", "labels checked by hand")

    assert result.exit_code == 0, text(result)
    package = described(cloud, arn)
    assert package["ModelApprovalStatus"] == "Approved"
    who = cloud.target.client("sts").get_caller_identity()["Arn"]
    assert package["ApprovalDescription"] == (
        f"approved by {who} via mlops: labels checked by hand"
    )
    # the gate's own decision stays what it was
    assert package["CustomerMetadataProperties"]["mlops:decision"] == "PendingManualApproval"
    assert "promote acts on the registry's state change" in text(result)


def test_reject_needs_a_reason(cloud: Cloud) -> None:
    arn = register(cloud)

    missing = run("reject", "1")
    assert missing.exit_code == 2
    assert described(cloud, arn)["ModelApprovalStatus"] == "PendingManualApproval"

    result = run("reject", arn, "--reason", "labels look shuffled")
    assert result.exit_code == 0, text(result)
    package = described(cloud, arn)
    assert package["ModelApprovalStatus"] == "Rejected"
    assert package["ApprovalDescription"].endswith("via mlops: labels look shuffled")


@pytest.mark.parametrize(
    ("status", "decision", "why"),
    [
        ("Approved", "Approved", "is Approved, not PendingManualApproval"),
        ("Rejected", "Rejected", "is Rejected, not PendingManualApproval"),
        ("PendingManualApproval", "Approved", "was not held by the gate"),
    ],
)
def test_only_a_package_the_gate_held_can_be_decided(
    cloud: Cloud, status: str, decision: str, why: str
) -> None:
    arn = register(cloud, status, decision)

    result = run("approve", "1")

    assert result.exit_code == 1
    assert why in text(result)
    assert described(cloud, arn)["ModelApprovalStatus"] == status


def test_reference_set_from_a_file_then_show(cloud: Cloud, tmp_path: Path) -> None:
    assert "no reference set yet" in text(run("reference", "show"))
    path = tmp_path / "golden.csv"
    path.write_text(CSV)

    result = run("reference", "set", str(path), "--reason", "hand-labelled golden set")

    assert result.exit_code == 0, text(result)
    manifest = json.loads(
        cloud.s3.get_object(Bucket=BUCKET, Key=c.REFERENCE_MANIFEST_KEY)["Body"].read()
    )
    digest = hashlib.sha256(CSV.encode()).hexdigest()
    assert manifest["sha256"] == digest and manifest["rows"] == 30
    assert manifest["source"] == {"kind": "file", "name": "golden.csv"}
    assert manifest["reason"] == "hand-labelled golden set"
    key = manifest["uri"].split(f"s3://{BUCKET}/", 1)[1]
    assert cloud.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == CSV.encode()
    shown = text(run("reference", "show"))
    assert digest in shown and "hand-labelled golden set" in shown


def test_reference_set_from_a_jobs_test_split_keeps_history(cloud: Cloud, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(CSV)
    assert run("reference", "set", str(first), "--reason", "one").exit_code == 0
    buffer = io.BytesIO()
    split = CSV.replace("basic", "pro").encode()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo(c.TEST_SPLIT_FILE)
        info.size = len(split)
        tar.addfile(info, io.BytesIO(split))
    output = f"{c.TRAINING_PREFIX}{JOB}/output/{c.OUTPUT_ARCHIVE}"
    cloud.s3.put_object(Bucket=BUCKET, Key=output, Body=buffer.getvalue())

    result = run("reference", "set", JOB, "--reason", "two")

    assert result.exit_code == 0, text(result)
    listed = cloud.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{c.REFERENCE_PREFIX}history/")
    assert listed["KeyCount"] == 2
    manifest = json.loads(
        cloud.s3.get_object(Bucket=BUCKET, Key=c.REFERENCE_MANIFEST_KEY)["Body"].read()
    )
    assert manifest["sha256"] == hashlib.sha256(split).hexdigest()
    assert manifest["source"]["job"] == JOB


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("age,plan\n" + "30,basic\n" * 30, "no target column 'label'"),
        ("age,plan,label\n30,basic,0\n", "at least 20"),
    ],
    ids=["no target", "too few rows"],
)
def test_a_bad_reference_set_is_refused_and_changes_nothing(
    cloud: Cloud, tmp_path: Path, body: str, why: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)

    result = run("reference", "set", str(path), "--reason", "x")

    assert result.exit_code == 1
    assert why in text(result)
    assert "Contents" not in cloud.s3.list_objects_v2(Bucket=BUCKET)


def test_reference_set_of_something_else_names_it(cloud: Cloud) -> None:
    result = run("reference", "set", "nope", "--reason", "x")

    assert result.exit_code == 1
    assert "neither a file nor a training job of this model" in text(result)
