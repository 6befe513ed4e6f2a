"""`mlops card` (typer's CliRunner, moto): a package's card by version or ARN, and errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from test_cli import run, text

from lambdas.aws import client
from lambdas.card import CARD_PROPERTY, build_card, write_card
from mlops.target import Target, from_outputs

REGION = "us-east-1"
GROUP = "churn-packages"
BUCKET = "mlops-artifacts"
JOB = "churn-20240501-120000-0000000a"


@dataclass
class Cloud:
    target: Target
    sagemaker: Any
    s3: Any


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cloud]:
    """moto with the stack's package group and artifacts bucket; `mlops card` targets it."""
    with mock_aws():
        target = from_outputs(
            "test", {"region": REGION, "modelPackageGroupName": GROUP}, endpoint_url=None
        )
        monkeypatch.setattr("mlops.cli.card.target_for", lambda stack, state_dir: target)
        sagemaker, s3 = client("sagemaker", REGION), client("s3", REGION)
        sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        s3.create_bucket(Bucket=BUCKET)
        yield Cloud(target, sagemaker, s3)


def register(cloud: Cloud, properties: dict[str, str] | None = None) -> str:
    response = cloud.sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        InferenceSpecification={
            "Containers": [{"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/models/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties=properties or {"mlops:job": JOB},
    )
    return str(response["ModelPackageArn"])


def carded(cloud: Cloud, why: str = "f1 0.8100 vs champion 0.8000 (+0.0100 >= margin)") -> str:
    """A package whose card is in S3 (as promote records it); returns its ARN."""
    evaluation = {
        "primary_metric": "f1",
        "metrics": {"f1": 0.81, "accuracy": 0.9},
        "baseline": {"f1": 0.0, "accuracy": 0.88},
        "champion": {"metrics": {"f1": 0.80, "accuracy": 0.89}},
        "data_guard": {
            "status": "pass",
            "reason": "all held",
            "checks": [
                {"rule": "row-count", "value": 1000, "threshold": 100, "held": True},
                {"rule": "label-shift", "value": 0.3, "threshold": 0.1, "held": False},
            ],
        },
    }
    card = build_card(
        model_name="churn",
        package_arn="(set below)",
        package_version=None,
        job_name=JOB,
        approval={"status": "Approved", "by": "gate (auto)", "at": "2024-05-01T12:30:00Z"},
        evaluation=evaluation,
        gate=[
            {"rule": "beats-baseline", "held": True, "why": "f1 0.8100 > 0.0000"},
            {"rule": "beats-champion", "held": True, "why": why},
        ],
        lineage={"data_version": "ab" * 32, "objects": [{"bucket": "raw", "key": "k"}]},
        digests={"MLOPS_MODEL_SHA256": "c" * 64},
        model_data_url=f"s3://{BUCKET}/models/{JOB}/model.tar.gz",
        created_at="2024-05-01T12:30:00Z",
    )
    uris = write_card(cloud.s3, BUCKET, f"models/{JOB}/", card, None)
    arn = register(cloud, {"mlops:job": JOB, CARD_PROPERTY: uris["json"]})
    card["package"] = {"arn": arn, "version": int(arn.rsplit("/", 1)[1])}
    write_card(cloud.s3, BUCKET, f"models/{JOB}/", card, None)
    return arn


def test_card_by_version_prints_summary_metrics_gate_and_guard(cloud: Cloud) -> None:
    register(cloud)  # version 1: older, no card
    arn = carded(cloud)  # version 2

    result = run("card", "2")

    assert result.exit_code == 0, text(result)
    out = text(result)
    assert f"churn v2 {arn}" in out
    assert f"job {JOB}" in out
    assert "approval: Approved by gate (auto) at 2024-05-01T12:30:00Z" in out
    assert "champion (same split)" in out and "0.8100" in out and "0.8000" in out
    assert "beats-champion" in out and "✓" in out
    assert "data guard: pass: all held" in out and "label-shift" in out and "✗" in out
    assert "trained on 1 objects" in out
    assert "MLOPS_MODEL_SHA256 = " + "c" * 64 in out


def test_card_by_arn_saves_the_html(cloud: Cloud, tmp_path: Path) -> None:
    arn = carded(cloud, why="<script>alert(1)</script>")
    page = tmp_path / "out" / "card.html"

    result = run("card", arn, "--html", str(page))

    assert result.exit_code == 0, text(result)
    assert f"saved {page}" in text(result)
    saved = page.read_text()
    assert "<h2>Gate</h2>" in saved and arn in saved
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in saved and "<script>" not in saved


def test_markup_in_a_card_is_printed_as_text(cloud: Cloud) -> None:
    carded(cloud, why="[red]not markup[/red]")

    result = run("card", "1")

    assert result.exit_code == 0, text(result)
    assert "[red]not markup[/red]" in text(result)


def test_a_package_without_a_card_is_named(cloud: Cloud) -> None:
    arn = register(cloud)

    result = run("card", "1")

    assert result.exit_code == 1
    assert f"model package {arn} has no model card (no mlops:card property)" in text(result)


def test_a_card_gone_from_s3_names_the_package_and_uri(cloud: Cloud) -> None:
    uri = f"s3://{BUCKET}/models/{JOB}/card.json"
    arn = register(cloud, {CARD_PROPERTY: uri})

    result = run("card", arn)

    assert result.exit_code == 1
    assert f"model package {arn}: no model card at {uri}" in text(result)


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("7", f"model package group '{GROUP}' has no version 7"),
        ("latest", "'latest' is neither a model package version number nor an ARN"),
        (
            f"arn:aws:sagemaker:{REGION}:123456789012:model-package/{GROUP}/9",
            "cannot describe model package arn:aws:sagemaker:",
        ),
    ],
)
def test_a_version_naming_no_package_fails_clearly(
    cloud: Cloud, version: str, message: str
) -> None:
    carded(cloud)

    result = run("card", version)

    assert result.exit_code == 1
    assert message in text(result)
    assert result.exception is None or isinstance(result.exception, SystemExit)
