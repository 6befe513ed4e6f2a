"""SageMaker: the model package group; the model, config and endpoint if Pulumi manages them."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from mlops.deploy.mocks import Ctx, deletes, exists, handles
from mlops.deploy.shapes import pascal, tag_list


@handles("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
def _package_group(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["modelPackageGroupName"]
    try:
        arn = sm.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    except ClientError:
        args: dict[str, Any] = {"ModelPackageGroupName": name, "Tags": tag_list(inputs)}
        if inputs.get("modelPackageGroupDescription"):
            args["ModelPackageGroupDescription"] = inputs["modelPackageGroupDescription"]
        arn = sm.create_model_package_group(**args)["ModelPackageGroupArn"]
    return name, {"arn": arn}


@deletes("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
def _package_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    sm = ctx.client("sagemaker")
    try:
        for package in sm.list_model_packages(ModelPackageGroupName=physical_id)[
            "ModelPackageSummaryList"
        ]:
            sm.delete_model_package(ModelPackageName=package["ModelPackageArn"])
        sm.delete_model_package_group(ModelPackageGroupName=physical_id)
    except ClientError as exc:
        # moto implements neither delete (it answers 500): the group stays behind and
        # the next deploy adopts it by name; anything else is a real failure
        if exc.response["Error"]["Code"] != "500":
            raise


@handles("aws:sagemaker/model:Model")
def _sm_model(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    if not exists(lambda: sm.describe_model(ModelName=name)):
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=inputs["executionRoleArn"],
            PrimaryContainer=pascal(inputs["primaryContainer"]),
        )
    return name, {"arn": ctx.arn("sagemaker", f"model/{name}"), "name": name}


def _endpoint_config_args(inputs: dict[str, Any]) -> dict[str, Any]:
    renames = {"kmsKeyId": "KmsKeyId", "destinationS3Uri": "DestinationS3Uri"}
    variants = pascal(inputs["productionVariants"], renames)
    capture = (
        pascal(inputs.get("dataCaptureConfig"), renames)
        if inputs.get("dataCaptureConfig")
        else None
    )
    if capture and "EnableCapture" not in capture:
        capture["EnableCapture"] = True
    args: dict[str, Any] = {"ProductionVariants": variants}
    if capture:
        args["DataCaptureConfig"] = capture
    if inputs.get("kmsKeyArn"):
        args["KmsKeyId"] = inputs["kmsKeyArn"]
    return args


@handles("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
def _sm_endpoint_config(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    if not exists(lambda: sm.describe_endpoint_config(EndpointConfigName=name)):
        sm.create_endpoint_config(EndpointConfigName=name, **_endpoint_config_args(inputs))
    return name, {"arn": ctx.arn("sagemaker", f"endpoint-config/{name}"), "name": name}


@handles("aws:sagemaker/endpoint:Endpoint")
def _sm_endpoint(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    # ignore_changes on the config: an existing endpoint keeps whatever the
    # control plane promoted; only a missing one is created from the pinned model.
    if not exists(lambda: sm.describe_endpoint(EndpointName=name)):
        sm.create_endpoint(EndpointName=name, EndpointConfigName=inputs["endpointConfigName"])
    return name, {"arn": ctx.arn("sagemaker", f"endpoint/{name}"), "name": name}
