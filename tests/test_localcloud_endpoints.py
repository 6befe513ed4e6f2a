"""The endpoint stand-ins: real predictions, UpdateEndpoint, data capture."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localcloud_helpers import (
    client,
    deploy_endpoint_config,
    deploy_model,
    fake_loader,
)
from moto import mock_aws

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
        deploy_model(running, MODELS, "model-a", "yes")
        deploy_model(running, MODELS, "model-b", "no")
        deploy_model(running, MODELS, "model-broken", None)
        deploy_endpoint_config(running, "config-a", "model-a", f"s3://{CAPTURE}/capture")
        deploy_endpoint_config(running, "config-b", "model-b")
        deploy_endpoint_config(running, "config-broken", "model-broken")
        client(running, "sagemaker").create_endpoint(
            EndpointName="churn", EndpointConfigName="config-a"
        )
        yield running


def _predict(cloud: LocalCloud, body: bytes = BODY) -> str:
    response = client(cloud, "sagemaker-runtime").invoke_endpoint(
        EndpointName="churn", Body=body, ContentType="application/json"
    )
    assert response["InvokedProductionVariant"] == "AllTraffic"
    return str(json.loads(response["Body"].read())["predictions"][0]["label"])


def test_invoke_serves_the_deployed_model(cloud: LocalCloud) -> None:
    assert _predict(cloud) == "yes"


def test_bad_request_is_a_model_error_and_the_endpoint_keeps_serving(cloud: LocalCloud) -> None:
    runtime = client(cloud, "sagemaker-runtime")

    with pytest.raises(runtime.exceptions.ModelError) as caught:
        runtime.invoke_endpoint(EndpointName="churn", Body=b"[1]", ContentType="application/json")

    error = caught.value.response
    assert "expected a JSON object with 'instances'" in error["Error"]["Message"]
    assert error["OriginalStatusCode"] == 400
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert _predict(cloud) == "yes"


def test_invoke_missing_endpoint_is_a_validation_error(cloud: LocalCloud) -> None:
    runtime = client(cloud, "sagemaker-runtime")

    with pytest.raises(runtime.exceptions.ValidationError, match=r"Endpoint nope .* not found"):
        runtime.invoke_endpoint(EndpointName="nope", Body=BODY, ContentType="application/json")


def test_data_capture_is_written_to_the_configured_bucket(cloud: LocalCloud) -> None:
    _predict(cloud)
    assert cloud.wait_idle(10)  # flushes the capture writer

    s3 = client(cloud, "s3")
    [obj] = s3.list_objects_v2(Bucket=CAPTURE)["Contents"]
    assert obj["Key"].startswith("capture/churn/AllTraffic/")
    assert obj["Key"].endswith(".jsonl")
    stored = s3.get_object(Bucket=CAPTURE, Key=obj["Key"])
    assert stored["SSEKMSKeyId"] == "alias/capture"
    record = json.loads(stored["Body"].read().splitlines()[0])
    assert record["captureData"]["endpointInput"]["data"] == BODY.decode()
    assert json.loads(record["captureData"]["endpointOutput"]["data"])["predictions"]
    summary = client(cloud, "sagemaker").describe_endpoint(EndpointName="churn")
    assert summary["DataCaptureConfig"]["CaptureStatus"] == "Started"


def _captured(cloud: LocalCloud) -> list[dict[str, Any]]:
    assert cloud.wait_idle(10)
    s3 = client(cloud, "s3")
    records = []
    for obj in s3.list_objects_v2(Bucket=CAPTURE).get("Contents", []):
        body = s3.get_object(Bucket=CAPTURE, Key=obj["Key"])["Body"].read()
        records += [json.loads(line) for line in body.splitlines()]
    return records


def test_inference_ids_are_captured_given_or_generated(cloud: LocalCloud) -> None:
    runtime = client(cloud, "sagemaker-runtime")

    given = runtime.invoke_endpoint(
        EndpointName="churn", Body=BODY, ContentType="application/json", InferenceId="order-17"
    )
    made = runtime.invoke_endpoint(EndpointName="churn", Body=BODY, ContentType="application/json")

    headers = made["ResponseMetadata"]["HTTPHeaders"]
    generated = headers["x-amzn-sagemaker-inference-id"]
    assert str(uuid.UUID(generated)) == generated
    assert given["ResponseMetadata"]["HTTPHeaders"]["x-amzn-sagemaker-inference-id"] == "order-17"
    ids = sorted(r["eventMetadata"]["inferenceId"] for r in _captured(cloud))
    assert ids == sorted(["order-17", generated])


def test_a_bad_inference_id_is_refused_and_nothing_is_captured(cloud: LocalCloud) -> None:
    runtime = client(cloud, "sagemaker-runtime")

    with pytest.raises(runtime.exceptions.ValidationError, match="InferenceId"):
        runtime.invoke_endpoint(
            EndpointName="churn", Body=BODY, ContentType="application/json", InferenceId="x" * 65
        )
    assert _captured(cloud) == []


def test_update_endpoint_swaps_the_config(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    _predict(cloud)

    sm.update_endpoint(EndpointName="churn", EndpointConfigName="config-b")
    assert cloud.wait_idle(10)

    described = sm.describe_endpoint(EndpointName="churn")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "config-b"
    assert "FailureReason" not in described
    assert _predict(cloud) == "no"
    # the old config may go once the endpoint has moved on
    sm.delete_endpoint_config(EndpointConfigName="config-a")
    assert _predict(cloud) == "no"


def test_update_to_a_missing_config_is_refused(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")

    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="churn", EndpointConfigName="config-missing")

    described = sm.describe_endpoint(EndpointName="churn")
    assert described["EndpointConfigName"] == "config-a"
    assert described["EndpointStatus"] == "InService"
    assert _predict(cloud) == "yes"


def test_update_to_a_broken_model_rolls_back(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")

    sm.update_endpoint(EndpointName="churn", EndpointConfigName="config-broken")
    assert cloud.wait_idle(10)

    described = sm.describe_endpoint(EndpointName="churn")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "config-a"
    assert "config-broken" in described["FailureReason"]
    assert _predict(cloud) == "yes"


def test_update_missing_endpoint_is_refused(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")

    with pytest.raises(sm.exceptions.ClientError, match="Could not find endpoint"):
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="config-b")


def test_the_model_cache_refuses_an_archive_other_than_the_approved(tmp_path: Path) -> None:
    from lambdas.aws import client
    from mlops.localcloud.model_cache import ModelCache

    with mock_aws():
        s3 = client("s3", "us-east-1")
        s3.create_bucket(Bucket="art")
        s3.put_object(Bucket="art", Key="models/j/model.tar.gz", Body=b"archive bytes")
        loaded: list[bytes] = []
        cache = ModelCache(
            clients=lambda service, region: client(service, region),
            state_dir=tmp_path,
            loader=lambda data, workdir: loaded.append(data) or object(),
        )
        url = "s3://art/models/j/model.tar.gz"

        with pytest.raises(RuntimeError, match="not the approved 0000"):
            cache.get("cfg", url, "us-east-1", archive_sha256="0" * 64)
        assert loaded == []
        cache.get(
            "cfg", url, "us-east-1", archive_sha256=hashlib.sha256(b"archive bytes").hexdigest()
        )
        assert loaded == [b"archive bytes"]


def test_sagemaker_core_reads_models_configs_and_endpoints(
    cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real SDK (sagemaker-core's typed resources) parses the local cloud's describes:
    no empty VpcConfig / Containers / DataCaptureConfig where SageMaker omits them."""
    resources = pytest.importorskip("sagemaker.core.resources")
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.endpoint_url)
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    session = boto3.Session(region_name="us-east-1")

    model = resources.Model.get("model-b", session=session, region="us-east-1")
    config = resources.EndpointConfig.get("config-b", session=session, region="us-east-1")
    endpoint = resources.Endpoint.get("churn", session=session, region="us-east-1")

    assert model.primary_container.model_data_url.endswith("models/model-b/model.tar.gz")
    assert model.vpc_config is None or not isinstance(model.vpc_config, dict)
    assert config.production_variants[0].model_name == "model-b"
    assert endpoint.endpoint_status == "InService"
    raw = client(cloud, "sagemaker").describe_model(ModelName="model-b")
    assert "VpcConfig" not in raw and "Containers" not in raw
    assert "DataCaptureConfig" not in client(cloud, "sagemaker").describe_endpoint_config(
        EndpointConfigName="config-b"
    )


def _ab_endpoint(cloud: LocalCloud, weights: tuple[float, float]) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="config-ab",
        ProductionVariants=[
            {
                "VariantName": name,
                "ModelName": model,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
                "InitialVariantWeight": weight,
            }
            for name, model, weight in (("A", "model-a", weights[0]), ("B", "model-b", weights[1]))
        ],
    )
    sm.create_endpoint(EndpointName="ab", EndpointConfigName="config-ab")


def _served(cloud: LocalCloud, n: int = 40, target: str | None = None) -> set[tuple[str, str]]:
    runtime = client(cloud, "sagemaker-runtime")
    seen = set()
    for _ in range(n):
        extra = {"TargetVariant": target} if target else {}
        response = runtime.invoke_endpoint(
            EndpointName="ab", Body=BODY, ContentType="application/json", **extra
        )
        label = json.loads(response["Body"].read())["predictions"][0]["label"]
        seen.add((response["InvokedProductionVariant"], label))
    return seen


def test_variants_route_by_weight_and_weights_change_live(cloud: LocalCloud) -> None:
    _ab_endpoint(cloud, (1.0, 0.0))
    assert _served(cloud) == {("A", "yes")}
    assert _served(cloud, 5, target="B") == {("B", "no")}  # TargetVariant wins over weights

    sm = client(cloud, "sagemaker")
    sm.update_endpoint_weights_and_capacities(
        EndpointName="ab",
        DesiredWeightsAndCapacities=[
            {"VariantName": "A", "DesiredWeight": 0.0},
            {"VariantName": "B", "DesiredWeight": 1.0},
        ],
    )
    assert _served(cloud) == {("B", "no")}
    variants = {
        v["VariantName"]: v for v in sm.describe_endpoint(EndpointName="ab")["ProductionVariants"]
    }
    assert variants["B"]["CurrentWeight"] == 1.0
    assert variants["B"]["CurrentInstanceCount"] == 1  # left out of the request: kept

    sm.update_endpoint_weights_and_capacities(
        EndpointName="ab",
        DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 1.0}],
    )
    assert _served(cloud, 80) == {("A", "yes"), ("B", "no")}  # 1:1 now


def test_weights_that_sum_to_zero_are_refused_and_nothing_changes(cloud: LocalCloud) -> None:
    _ab_endpoint(cloud, (1.0, 0.0))
    sm = client(cloud, "sagemaker")
    with pytest.raises(ClientError, match="sum to 0"):
        sm.update_endpoint_weights_and_capacities(
            EndpointName="ab",
            DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 0.0}],
        )
    assert _served(cloud, 10) == {("A", "yes")}


def test_each_variant_publishes_sagemakers_invocation_metrics(cloud: LocalCloud) -> None:
    _ab_endpoint(cloud, (1.0, 1.0))
    served = [v for v, _ in _served(cloud, 30)]  # both variants take some
    runtime = client(cloud, "sagemaker-runtime")
    with pytest.raises(ClientError):  # the model refuses it: a 4XX of variant B
        runtime.invoke_endpoint(
            EndpointName="ab", Body=b"{oops", ContentType="application/json", TargetVariant="B"
        )
    watch = client(cloud, "cloudwatch")
    now = datetime.now(UTC)

    def total(metric: str, variant: str, stat: str = "Sum") -> float:
        points = watch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=[
                {"Name": "EndpointName", "Value": "ab"},
                {"Name": "VariantName", "Value": variant},
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=5),
            Period=600,
            Statistics=[stat],
        )["Datapoints"]
        return sum(p[stat] for p in points)

    assert {"A", "B"} <= set(served)
    invocations = {v: total("Invocations", v) for v in ("A", "B")}
    assert invocations["A"] + invocations["B"] == 31
    assert total("Invocation4XXErrors", "B") == 1 and total("Invocation4XXErrors", "A") == 0
    assert total("Invocation5XXErrors", "A") == 0
    assert total("ModelLatency", "A", "SampleCount") == invocations["A"]
    assert total("ModelLatency", "A", "Maximum") > 0
