"""Model registry and endpoint events in the local cloud; UpdateModelPackage as in SageMaker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from localcloud_helpers import (
    client,
    deploy_endpoint_config,
    deploy_function,
    deploy_model,
    deploy_rule,
    fake_loader,
    read_records,
    write_recorder,
)

from mlops.localcloud import LocalCloud

GROUP = "churn-models"
MODELS = "model-bucket"
PACKAGE_EVENTS = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Model Package State Change"],
}
ENDPOINT_EVENTS = {
    "source": ["aws.sagemaker"],
    "detail-type": ["SageMaker Endpoint State Change"],
}
INFERENCE = {
    "Containers": [{"Image": "serving:latest", "ModelDataUrl": f"s3://{MODELS}/m/model.tar.gz"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["application/json"],
}
METRICS = {
    "ModelQuality": {
        "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{MODELS}/eval.json"}
    }
}


@dataclass
class Deployed:
    cloud: LocalCloud
    function_arn: str
    records: Path

    def events(self) -> list[dict[str, Any]]:
        assert self.cloud.wait_idle(30)
        return [r["event"] for r in read_records(self.records)]


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    handler = write_recorder(tmp_path)
    records = tmp_path / "records.jsonl"
    with LocalCloud(
        0, state_dir=tmp_path / "state", repo_root=tmp_path, model_loader=fake_loader
    ) as cloud:
        arn = deploy_function(cloud, "recorder", handler, {"RECORD_FILE": str(records)})
        client(cloud, "sagemaker").create_model_package_group(ModelPackageGroupName=GROUP)
        yield Deployed(cloud, arn, records)


def _create_package(cloud: LocalCloud, **extra: Any) -> str:
    response = client(cloud, "sagemaker").create_model_package(
        ModelPackageGroupName=GROUP,
        ModelPackageDescription="challenger beat the champion",
        InferenceSpecification=INFERENCE,
        ModelMetrics=METRICS,
        CustomerMetadataProperties={"mlops:job": "job-1"},
        Tags=[{"Key": "mlops:model", "Value": "churn"}],
        **extra,
    )
    return str(response["ModelPackageArn"])


def test_package_creation_and_approval_change_are_delivered(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "packages", deployed.function_arn, pattern=PACKAGE_EVENTS)
    sm = client(cloud, "sagemaker")

    arn = _create_package(cloud)  # no ModelApprovalStatus: pending, as in SageMaker
    sm.update_model_package(
        ModelPackageArn=arn, CustomerMetadataProperties={"note": "metadata only"}
    )  # no status change: no event
    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="gate held"
    )

    created, approved = deployed.events()
    assert created["source"] == "aws.sagemaker"
    assert created["detail-type"] == "SageMaker Model Package State Change"
    assert created["resources"] == [arn]
    detail = created["detail"]
    assert detail["ModelPackageArn"] == arn
    assert arn.endswith(f":model-package/{GROUP}/1")
    assert detail["ModelPackageGroupName"] == GROUP
    assert detail["ModelPackageVersion"] == 1
    assert detail["ModelPackageDescription"] == "challenger beat the champion"
    assert detail["ModelApprovalStatus"] == "PendingManualApproval"
    assert "ApprovalDescription" not in detail
    assert detail["ModelPackageStatus"] == "Completed"
    assert detail["InferenceSpecification"] == INFERENCE
    assert detail["ModelMetrics"] == METRICS
    assert detail["CustomerMetadataProperties"] == {"mlops:job": "job-1"}
    assert detail["Tags"] == {"mlops:model": "churn"}
    assert detail["CreationTime"].endswith("Z")  # ISO, as AWS documents this event
    assert detail["LastModifiedTime"] == detail["CreationTime"]

    assert approved["resources"] == [arn]
    detail = approved["detail"]
    assert detail["ModelApprovalStatus"] == "Approved"
    assert detail["ApprovalDescription"] == "gate held"
    assert detail["CustomerMetadataProperties"] == {
        "mlops:job": "job-1",
        "note": "metadata only",
    }


def test_package_events_follow_the_rule_pattern(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(
        cloud,
        "rejected",
        deployed.function_arn,
        pattern={**PACKAGE_EVENTS, "detail": {"ModelApprovalStatus": ["Rejected"]}},
    )
    sm = client(cloud, "sagemaker")

    first = _create_package(cloud, ModelApprovalStatus="Approved")
    second = _create_package(cloud, ModelApprovalStatus="Rejected")
    sm.update_model_package(ModelPackageArn=first, ModelApprovalStatus="Rejected")
    sm.update_model_package(ModelPackageArn=first, ModelApprovalStatus="Rejected")  # no change

    events = deployed.events()
    assert [(e["resources"][0], e["detail"]["ModelPackageVersion"]) for e in events] == [
        (second, 2),
        (first, 1),
    ]


def test_update_model_package_merges_metadata_and_keeps_the_approval(deployed: Deployed) -> None:
    sm = client(deployed.cloud, "sagemaker")
    arn = _create_package(deployed.cloud, ModelApprovalStatus="Approved")
    sm.update_model_package(ModelPackageArn=arn, ApprovalDescription="gate held")

    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"mlops:sha256": "abc"})
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"mlops:job": "job-1", "mlops:sha256": "abc"}
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "gate held"

    sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"mlops:job": "job-2"},
        CustomerMetadataPropertiesToRemove=["mlops:sha256"],
    )
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"mlops:job": "job-2"}
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "gate held"

    with pytest.raises(sm.exceptions.ClientError, match="Bogus"):
        sm.update_model_package(
            ModelPackageArn=arn,
            ModelApprovalStatus="Bogus",
            CustomerMetadataProperties={"mlops:job": "job-3"},
        )
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"mlops:job": "job-2"}  # nothing changed
    assert described["ModelApprovalStatus"] == "Approved"


def _endpoint(deployed: Deployed) -> None:
    cloud = deployed.cloud
    client(cloud, "s3").create_bucket(Bucket=MODELS)
    deploy_model(cloud, MODELS, "model-a", "yes")
    deploy_model(cloud, MODELS, "model-b", "no")
    deploy_model(cloud, MODELS, "model-broken", None)
    deploy_endpoint_config(cloud, "config-a", "model-a")
    deploy_endpoint_config(cloud, "config-b", "model-b")
    deploy_endpoint_config(cloud, "config-broken", "model-broken")
    deploy_rule(cloud, "endpoints", deployed.function_arn, pattern=ENDPOINT_EVENTS)
    client(cloud, "sagemaker").create_endpoint(
        EndpointName="churn",
        EndpointConfigName="config-a",
        Tags=[{"Key": "mlops:model", "Value": "churn"}],
    )


def test_endpoint_creation_and_update_are_delivered(deployed: Deployed) -> None:
    _endpoint(deployed)

    client(deployed.cloud, "sagemaker").update_endpoint(
        EndpointName="churn", EndpointConfigName="config-b"
    )

    created, updated = deployed.events()
    assert created["detail-type"] == "SageMaker Endpoint State Change"
    assert created["resources"] == [created["detail"]["EndpointArn"]]
    assert created["detail"]["EndpointArn"].endswith(":endpoint/churn")
    assert created["detail"]["EndpointName"] == "churn"
    assert created["detail"]["EndpointConfigName"] == "config-a"
    assert created["detail"]["EndpointStatus"] == "IN_SERVICE"
    assert created["detail"]["Tags"] == {"mlops:model": "churn"}
    detail = updated["detail"]
    assert detail["EndpointConfigName"] == "config-b"
    assert detail["EndpointStatus"] == "IN_SERVICE"
    assert "FailureReason" not in detail
    assert [v["VariantName"] for v in detail["ProductionVariants"]] == ["AllTraffic"]
    assert isinstance(detail["CreationTime"], int)  # epoch ms
    assert detail["LastModifiedTime"] >= detail["CreationTime"]
    assert detail["Tags"] == {"mlops:model": "churn"}


def test_failed_endpoint_update_event_names_the_old_config(deployed: Deployed) -> None:
    _endpoint(deployed)

    client(deployed.cloud, "sagemaker").update_endpoint(
        EndpointName="churn", EndpointConfigName="config-broken"
    )

    _, rolled_back = deployed.events()
    detail = rolled_back["detail"]
    assert detail["EndpointConfigName"] == "config-a"
    assert detail["EndpointStatus"] == "IN_SERVICE"
    assert "config-broken" in detail["FailureReason"]
