"""Shadow variants: copies of an endpoint's traffic, captured, never answered."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localcloud_helpers import client, deploy_model, fake_loader

from mlops.localcloud import LocalCloud

MODELS = "model-bucket"
CAPTURE = "capture-bucket"
BODY = b'{"instances": [[1, 2]]}'


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state", model_loader=fake_loader) as running:
        s3 = client(running, "s3")
        s3.create_bucket(Bucket=MODELS)
        s3.create_bucket(Bucket=CAPTURE)
        deploy_model(running, MODELS, "champion", "yes")
        deploy_model(running, MODELS, "challenger", "no")
        deploy_model(running, MODELS, "broken", None)
        yield running


def _variant(name: str, model: str, weight: float = 1.0) -> dict[str, Any]:
    return {
        "VariantName": name,
        "ModelName": model,
        "InstanceType": "ml.m5.large",
        "InitialInstanceCount": 1,
        "InitialVariantWeight": weight,
    }


def _shadowed(cloud: LocalCloud, shadow_model: str, shadow_weight: float = 1.0) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="shadowed",
        ProductionVariants=[_variant("live", "champion")],
        ShadowProductionVariants=[_variant("shadow", shadow_model, shadow_weight)],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": f"s3://{CAPTURE}/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
    )
    sm.create_endpoint(EndpointName="ep", EndpointConfigName="shadowed")


def _call(cloud: LocalCloud, n: int) -> list[tuple[str, str, str]]:
    runtime = client(cloud, "sagemaker-runtime")
    answers = []
    for i in range(n):
        response = runtime.invoke_endpoint(
            EndpointName="ep", Body=BODY, ContentType="application/json", InferenceId=f"r-{i}"
        )
        label = json.loads(response["Body"].read())["predictions"][0]["label"]
        answers.append((response["InvokedProductionVariant"], label, f"r-{i}"))
    return answers


def _captured(cloud: LocalCloud) -> dict[str, list[dict[str, Any]]]:
    assert cloud.wait_idle(20)  # the shadow copies count as busy work
    s3 = client(cloud, "s3")
    by_variant: dict[str, list[dict[str, Any]]] = {}
    for obj in s3.list_objects_v2(Bucket=CAPTURE).get("Contents", []):
        variant = obj["Key"].split("/")[2]  # capture/<endpoint>/<variant>/...
        body = s3.get_object(Bucket=CAPTURE, Key=obj["Key"])["Body"].read()
        by_variant.setdefault(variant, []).extend(json.loads(x) for x in body.splitlines())
    return by_variant


def _invocations(cloud: LocalCloud, variant: str, metric: str = "Invocations") -> float:
    now = datetime.now(UTC)
    points = client(cloud, "cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[
            {"Name": "EndpointName", "Value": "ep"},
            {"Name": "VariantName", "Value": variant},
        ],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum"],
    )["Datapoints"]
    return sum(p["Sum"] for p in points)


def test_every_request_is_copied_to_the_shadow_and_only_the_live_answer_returns(
    cloud: LocalCloud,
) -> None:
    _shadowed(cloud, "challenger")
    answers = _call(cloud, 12)
    assert {(variant, label) for variant, label, _ in answers} == {("live", "yes")}

    captured = _captured(cloud)
    assert set(captured) == {"live", "shadow"}
    ids = {
        variant: sorted(r["eventMetadata"]["inferenceId"] for r in records)
        for variant, records in captured.items()
    }
    assert ids["live"] == ids["shadow"] == sorted(i for _, _, i in answers)
    shadow_outputs = {
        json.loads(r["captureData"]["endpointOutput"]["data"])["predictions"][0]["label"]
        for r in captured["shadow"]
    }
    assert shadow_outputs == {"no"}  # the challenger's own answers, kept for comparison
    assert _invocations(cloud, "live") == _invocations(cloud, "shadow") == 12


def test_a_failing_shadow_never_reaches_the_caller(cloud: LocalCloud) -> None:
    _shadowed(cloud, "broken")
    answers = _call(cloud, 5)
    assert {(variant, label) for variant, label, _ in answers} == {("live", "yes")}
    captured = _captured(cloud)
    assert set(captured) == {"live"} and len(captured["live"]) == 5


def test_the_shadow_gets_its_weight_over_the_live_ones_share(cloud: LocalCloud) -> None:
    _shadowed(cloud, "challenger", shadow_weight=0.5)
    _call(cloud, 200)
    copied = len(_captured(cloud).get("shadow", []))
    assert 60 < copied < 140, copied  # binomial(200, 0.5): 100 +- 4.2 sigma


def test_shadow_variants_are_described_and_names_must_differ(cloud: LocalCloud) -> None:
    _shadowed(cloud, "challenger", shadow_weight=0.25)
    sm = client(cloud, "sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName="shadowed")
    assert [v["VariantName"] for v in config["ShadowProductionVariants"]] == ["shadow"]
    assert config["ShadowProductionVariants"][0]["InitialVariantWeight"] == 0.25
    endpoint = sm.describe_endpoint(EndpointName="ep")
    [summary] = endpoint["ShadowProductionVariants"]
    assert summary["VariantName"] == "shadow" and summary["CurrentWeight"] == 0.25

    with pytest.raises(ClientError, match="used twice"):
        sm.create_endpoint_config(
            EndpointConfigName="clash",
            ProductionVariants=[_variant("same", "champion")],
            ShadowProductionVariants=[_variant("same", "challenger")],
        )
