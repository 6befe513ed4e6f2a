"""Deploy the real Pulumi program into a moto server, without the Pulumi CLI.

The program is evaluated under Pulumi's mock runtime; this module's `Mocks`
creates each resource in the moto server through boto3 (one mapping per
resource type) and returns the outputs the real provider would. A small state
file (`.mlops/stacks/<stack>.json`) maps each logical resource to its physical
id, so a re-run updates in place instead of duplicating, a deploy that failed
halfway converges on the next run, and `mlops down` deletes in reverse order.

This is a stand-in for `pulumi up` on a machine with no Pulumi CLI; where the
CLI exists, `pulumi up -s local` deploys the same program into the same server.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import threading
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pulumi
from botocore.exceptions import ClientError

from infra.preview import RecordingMocks

ACCOUNT_ID = "123456789012"  # moto's default account

Handler = Callable[["Ctx", dict[str, Any], "dict[str, Any] | None"], tuple[str, dict[str, Any]]]
_HANDLERS: dict[str, Handler] = {}
_DELETERS: dict[str, Callable[[Ctx, str, dict[str, Any]], None]] = {}

# Any: boto3-stubs' per-service overloads reject a service name held in a str
_boto3_client: Any = boto3.client


class DeployError(RuntimeError):
    """A resource could not be created; names the resource and the AWS error."""


def _handles(typ: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _HANDLERS[typ] = fn
        return fn

    return register


def _deletes(typ: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def register(fn: Callable[..., None]) -> Callable[..., None]:
        _DELETERS[typ] = fn
        return fn

    return register


def supported_types() -> list[str]:
    return sorted(_HANDLERS)


# --- state ---------------------------------------------------------------------


@dataclass
class DeployState:
    """Logical resource -> physical id and outputs, persisted after every change."""

    path: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path: Path) -> DeployState:
        if path.exists():
            data = json.loads(path.read_text())
            return cls(path, data.get("resources", {}), data.get("outputs", {}))
        return cls(path)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self.resources.get(key)

    def put(self, key: str, typ: str, physical_id: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            order = self.resources.get(key, {}).get("order", len(self.resources))
            self.resources[key] = {
                "type": typ,
                "id": physical_id,
                "outputs": _jsonable(outputs),
                "order": order,
            }
            self._save()

    def drop(self, key: str) -> None:
        with self._lock:
            self.resources.pop(key, None)
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"resources": self.resources, "outputs": self.outputs}, indent=1))
        tmp.replace(self.path)


def _whole_numbers(value: Any) -> Any:
    """Pulumi's wire format turns every number into a float; AWS wants ints back."""
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


# --- the context handlers get ------------------------------------------------


@dataclass
class Ctx:
    endpoint_url: str
    region: str
    _clients: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = _boto3_client(
                    service,
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    aws_access_key_id="test",
                    aws_secret_access_key="test",  # noqa: S106 - moto's fake key
                )
            return self._clients[service]

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"


# --- helpers -------------------------------------------------------------------


def _pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase Pulumi inputs -> PascalCase AWS API shapes, recursively."""
    renames = renames or {}
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if inner is None:
                continue
            name = renames.get(key, key[:1].upper() + key[1:])
            out[name] = _pascal(inner, renames)
        return out
    if isinstance(value, list):
        return [_pascal(v, renames) for v in value]
    return value


_BOOL_FIELDS = {"AssociatePublicIpAddress", "DeleteOnTermination", "Encrypted"}


def _bools(value: Any) -> Any:
    """The provider types some EC2 flags as "true"/"false" strings; the API wants bools."""
    if isinstance(value, dict):
        return {
            k: (v == "true" if k in _BOOL_FIELDS and isinstance(v, str) else _bools(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_bools(v) for v in value]
    return value


def _tags(inputs: dict[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in (inputs.get("tags") or {}).items()]


def _exists(call: Callable[[], Any], *codes: str) -> bool:
    try:
        call()
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in codes or not codes:
            return False
        raise


def _zip_archive(archive: Any) -> bytes:
    """Zip a pulumi AssetArchive/FileArchive the way the provider would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        _add_to_zip(zf, archive, "")
    return buffer.getvalue()


def _add_to_zip(zf: zipfile.ZipFile, item: Any, prefix: str) -> None:
    if isinstance(item, pulumi.AssetArchive):
        for name, inner in item.assets.items():
            _add_to_zip(zf, inner, f"{prefix}{name}")
    elif isinstance(item, pulumi.FileArchive):
        root = Path(item.path)
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{prefix}/{path.relative_to(root)}".lstrip("/"))
    elif isinstance(item, pulumi.FileAsset):
        zf.write(item.path, prefix)
    elif isinstance(item, pulumi.StringAsset):
        zf.writestr(prefix, item.text)
    else:
        raise DeployError(f"unsupported archive member {prefix!r}: {type(item).__name__}")


def _policy_text(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


# --- KMS -----------------------------------------------------------------------


@_handles("aws:kms/key:Key")
def _kms_key(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    kms = ctx.client("kms")
    key_id = prev["id"] if prev else None
    if key_id is None or not _exists(lambda: kms.describe_key(KeyId=key_id), "NotFoundException"):
        args: dict[str, Any] = {"Description": inputs.get("description", ""), "Tags": []}
        if inputs.get("policy"):
            args["Policy"] = _policy_text(inputs["policy"])
        args["Tags"] = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in _tags(inputs)]
        key_id = kms.create_key(**args)["KeyMetadata"]["KeyId"]
    elif inputs.get("policy"):
        kms.put_key_policy(
            KeyId=key_id, PolicyName="default", Policy=_policy_text(inputs["policy"])
        )
    if inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key_id)
    arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    return key_id, {"arn": arn, "keyId": key_id}


@_deletes("aws:kms/key:Key")
def _kms_key_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("kms").schedule_key_deletion(KeyId=physical_id, PendingWindowInDays=7)


@_handles("aws:kms/alias:Alias")
def _kms_alias(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    kms = ctx.client("kms")
    name = inputs["name"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    if name in aliases:
        kms.update_alias(AliasName=name, TargetKeyId=inputs["targetKeyId"])
    else:
        kms.create_alias(AliasName=name, TargetKeyId=inputs["targetKeyId"])
    return name, {"arn": ctx.arn("kms", name)}


@_deletes("aws:kms/alias:Alias")
def _kms_alias_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("kms").delete_alias(AliasName=physical_id)


# --- S3 ------------------------------------------------------------------------


@_handles("aws:s3/bucket:Bucket")
def _bucket(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    s3 = ctx.client("s3")
    name = inputs.get("bucket") or (prev or {}).get("id")
    if not name:
        raise DeployError("bucket has no name; the local deployer needs deterministic names")
    if not _exists(lambda: s3.head_bucket(Bucket=name), "404", "NoSuchBucket"):
        s3.create_bucket(Bucket=name)
    if inputs.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": _tags(inputs)})
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "region": ctx.region,
    }


@_deletes("aws:s3/bucket:Bucket")
def _bucket_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    s3 = ctx.client("s3")
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=physical_id):
        doomed = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        if doomed:
            s3.delete_objects(Bucket=physical_id, Delete={"Objects": doomed})
    s3.delete_bucket(Bucket=physical_id)


@_handles("aws:s3/bucketVersioning:BucketVersioning")
def _versioning(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    config = _pascal(inputs["versioningConfiguration"])
    ctx.client("s3").put_bucket_versioning(
        Bucket=inputs["bucket"], VersioningConfiguration={"Status": config["Status"]}
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
def _encryption(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    rules = _pascal(
        inputs["rules"], {"kmsMasterKeyId": "KMSMasterKeyID", "sseAlgorithm": "SSEAlgorithm"}
    )
    ctx.client("s3").put_bucket_encryption(
        Bucket=inputs["bucket"], ServerSideEncryptionConfiguration={"Rules": rules}
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
def _public_block(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    ctx.client("s3").put_public_access_block(
        Bucket=inputs["bucket"],
        PublicAccessBlockConfiguration={f[:1].upper() + f[1:]: bool(inputs.get(f)) for f in flags},
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
def _ownership(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    rule = _pascal(inputs["rule"])
    ctx.client("s3").put_bucket_ownership_controls(
        Bucket=inputs["bucket"], OwnershipControls={"Rules": [rule]}
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
def _lifecycle(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    rules = _pascal(inputs["rules"], {"id": "ID"})
    for rule in rules:
        rule.setdefault("Filter", {"Prefix": ""})
        if isinstance(rule.get("Filter"), dict) and not rule["Filter"]:
            rule["Filter"] = {"Prefix": ""}
    ctx.client("s3").put_bucket_lifecycle_configuration(
        Bucket=inputs["bucket"], LifecycleConfiguration={"Rules": rules}
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketLogging:BucketLogging")
def _logging(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ctx.client("s3").put_bucket_logging(
        Bucket=inputs["bucket"],
        BucketLoggingStatus={
            "LoggingEnabled": {
                "TargetBucket": inputs["targetBucket"],
                "TargetPrefix": inputs.get("targetPrefix", ""),
            }
        },
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketPolicy:BucketPolicy")
def _bucket_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("s3").put_bucket_policy(
        Bucket=inputs["bucket"], Policy=_policy_text(inputs["policy"])
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketNotification:BucketNotification")
def _notification(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    config: dict[str, Any] = {}
    if inputs.get("eventbridge"):
        config["EventBridgeConfiguration"] = {}
    ctx.client("s3").put_bucket_notification_configuration(
        Bucket=inputs["bucket"], NotificationConfiguration=config
    )
    return inputs["bucket"], {}


@_handles("aws:s3/bucketObjectv2:BucketObjectv2")
def _object(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    source = inputs.get("source")
    if isinstance(source, pulumi.FileAsset):
        body = Path(source.path).read_bytes()
    elif isinstance(source, pulumi.StringAsset):
        body = source.text.encode()
    elif inputs.get("content") is not None:
        body = str(inputs["content"]).encode()
    else:
        raise DeployError(f"object {inputs.get('key')!r} has no source or content")
    args: dict[str, Any] = {"Bucket": inputs["bucket"], "Key": inputs["key"], "Body": body}
    if inputs.get("serverSideEncryption"):
        args["ServerSideEncryption"] = inputs["serverSideEncryption"]
    if inputs.get("kmsKeyId"):
        args["SSEKMSKeyId"] = inputs["kmsKeyId"]
    if inputs.get("contentType"):
        args["ContentType"] = inputs["contentType"]
    result = ctx.client("s3").put_object(**args)
    return f"{inputs['bucket']}/{inputs['key']}", {
        "etag": result.get("ETag", "").strip('"'),
        "versionId": result.get("VersionId"),
        "arn": f"arn:aws:s3:::{inputs['bucket']}/{inputs['key']}",
        "sha256": hashlib.sha256(body).hexdigest(),
    }


@_deletes("aws:s3/bucketObjectv2:BucketObjectv2")
def _object_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    bucket, key = physical_id.split("/", 1)
    ctx.client("s3").delete_object(Bucket=bucket, Key=key)


# --- IAM -----------------------------------------------------------------------


@_handles("aws:iam/role:Role")
def _role(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    iam = ctx.client("iam")
    name = inputs["name"]
    assume = _policy_text(inputs["assumeRolePolicy"])
    try:
        role = iam.get_role(RoleName=name)["Role"]
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=assume)
    except iam.exceptions.NoSuchEntityException:
        args = {"RoleName": name, "AssumeRolePolicyDocument": assume, "Tags": _tags(inputs)}
        if inputs.get("description"):
            args["Description"] = inputs["description"]
        role = iam.create_role(**args)["Role"]
    return name, {"arn": role["Arn"], "name": name, "uniqueId": role["RoleId"]}


@_deletes("aws:iam/role:Role")
def _role_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    for name in iam.list_role_policies(RoleName=physical_id)["PolicyNames"]:
        iam.delete_role_policy(RoleName=physical_id, PolicyName=name)
    for att in iam.list_attached_role_policies(RoleName=physical_id)["AttachedPolicies"]:
        iam.detach_role_policy(RoleName=physical_id, PolicyArn=att["PolicyArn"])
    iam.delete_role(RoleName=physical_id)


@_handles("aws:iam/rolePolicy:RolePolicy")
def _role_policy(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ctx.client("iam").put_role_policy(
        RoleName=inputs["role"],
        PolicyName=inputs["name"],
        PolicyDocument=_policy_text(inputs["policy"]),
    )
    return f"{inputs['role']}:{inputs['name']}", {}


@_deletes("aws:iam/rolePolicy:RolePolicy")
def _role_policy_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    role, name = physical_id.split(":", 1)
    ctx.client("iam").delete_role_policy(RoleName=role, PolicyName=name)


@_handles("aws:iam/policy:Policy")
def _managed_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    iam = ctx.client("iam")
    arn = f"arn:aws:iam::{ACCOUNT_ID}:policy/{inputs['name']}"
    document = _policy_text(inputs["policy"])
    try:
        iam.get_policy(PolicyArn=arn)
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        for old in versions:
            if not old["IsDefaultVersion"] and len(versions) >= 5:
                iam.delete_policy_version(PolicyArn=arn, VersionId=old["VersionId"])
                break
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=True)
    except iam.exceptions.NoSuchEntityException:
        iam.create_policy(PolicyName=inputs["name"], PolicyDocument=document)
    return arn, {"arn": arn, "name": inputs["name"]}


@_deletes("aws:iam/policy:Policy")
def _managed_policy_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("iam").delete_policy(PolicyArn=physical_id)


@_handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ctx.client("iam").attach_role_policy(RoleName=inputs["role"], PolicyArn=inputs["policyArn"])
    return f"{inputs['role']}|{inputs['policyArn']}", {}


@_deletes("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
def _attachment_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    role, arn = physical_id.split("|", 1)
    ctx.client("iam").detach_role_policy(RoleName=role, PolicyArn=arn)


@_handles("aws:iam/instanceProfile:InstanceProfile")
def _instance_profile(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    iam = ctx.client("iam")
    name = inputs["name"]
    try:
        profile = iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except iam.exceptions.NoSuchEntityException:
        profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    if inputs.get("role") and inputs["role"] not in {r["RoleName"] for r in profile["Roles"]}:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=inputs["role"])
    return name, {"arn": profile["Arn"], "name": name}


@_deletes("aws:iam/instanceProfile:InstanceProfile")
def _instance_profile_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    iam = ctx.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName=physical_id)["InstanceProfile"]
    for role in profile["Roles"]:
        iam.remove_role_from_instance_profile(
            InstanceProfileName=physical_id, RoleName=role["RoleName"]
        )
    iam.delete_instance_profile(InstanceProfileName=physical_id)


# --- SageMaker -------------------------------------------------------------------


@_handles("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
def _package_group(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["modelPackageGroupName"]
    try:
        arn = sm.describe_model_package_group(ModelPackageGroupName=name)["ModelPackageGroupArn"]
    except ClientError:
        args: dict[str, Any] = {"ModelPackageGroupName": name, "Tags": _tags(inputs)}
        if inputs.get("modelPackageGroupDescription"):
            args["ModelPackageGroupDescription"] = inputs["modelPackageGroupDescription"]
        arn = sm.create_model_package_group(**args)["ModelPackageGroupArn"]
    return name, {"arn": arn}


@_deletes("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
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


@_handles("aws:sagemaker/model:Model")
def _sm_model(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    if not _exists(lambda: sm.describe_model(ModelName=name)):
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=inputs["executionRoleArn"],
            PrimaryContainer=_pascal(inputs["primaryContainer"]),
        )
    return name, {"arn": ctx.arn("sagemaker", f"model/{name}"), "name": name}


def _endpoint_config_args(inputs: dict[str, Any]) -> dict[str, Any]:
    renames = {"kmsKeyId": "KmsKeyId", "destinationS3Uri": "DestinationS3Uri"}
    variants = _pascal(inputs["productionVariants"], renames)
    capture = (
        _pascal(inputs.get("dataCaptureConfig"), renames)
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


@_handles("aws:sagemaker/endpointConfiguration:EndpointConfiguration")
def _sm_endpoint_config(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    if not _exists(lambda: sm.describe_endpoint_config(EndpointConfigName=name)):
        sm.create_endpoint_config(EndpointConfigName=name, **_endpoint_config_args(inputs))
    return name, {"arn": ctx.arn("sagemaker", f"endpoint-config/{name}"), "name": name}


@_handles("aws:sagemaker/endpoint:Endpoint")
def _sm_endpoint(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sm = ctx.client("sagemaker")
    name = inputs["name"]
    # ignore_changes on the config: an existing endpoint keeps whatever the
    # control plane promoted; only a missing one is created from the pinned model.
    if not _exists(lambda: sm.describe_endpoint(EndpointName=name)):
        sm.create_endpoint(EndpointName=name, EndpointConfigName=inputs["endpointConfigName"])
    return name, {"arn": ctx.arn("sagemaker", f"endpoint/{name}"), "name": name}


@_handles("aws:appautoscaling/target:Target")
def _scaling_target(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("application-autoscaling").register_scalable_target(
        ServiceNamespace=inputs["serviceNamespace"],
        ResourceId=inputs["resourceId"],
        ScalableDimension=inputs["scalableDimension"],
        MinCapacity=int(inputs["minCapacity"]),
        MaxCapacity=int(inputs["maxCapacity"]),
    )
    return inputs["resourceId"], {}


@_handles("aws:appautoscaling/policy:Policy")
def _scaling_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    config = _pascal(inputs.get("targetTrackingScalingPolicyConfiguration") or {})
    result = ctx.client("application-autoscaling").put_scaling_policy(
        PolicyName=inputs["name"],
        ServiceNamespace=inputs["serviceNamespace"],
        ResourceId=inputs["resourceId"],
        ScalableDimension=inputs["scalableDimension"],
        PolicyType=inputs.get("policyType", "TargetTrackingScaling"),
        TargetTrackingScalingPolicyConfiguration=config,
    )
    return inputs["name"], {"arn": result["PolicyARN"]}


# --- EC2 -----------------------------------------------------------------------


@_handles("aws:ec2/securityGroup:SecurityGroup")
def _security_group(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ec2 = ctx.client("ec2")
    name = inputs["name"]
    found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])
    if found["SecurityGroups"]:
        group_id = found["SecurityGroups"][0]["GroupId"]
    else:
        args: dict[str, Any] = {"GroupName": name, "Description": inputs.get("description", name)}
        if inputs.get("vpcId"):
            args["VpcId"] = inputs["vpcId"]
        group_id = ec2.create_security_group(**args)["GroupId"]
    return group_id, {"arn": ctx.arn("ec2", f"security-group/{group_id}"), "name": name}


@_deletes("aws:ec2/securityGroup:SecurityGroup")
def _security_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("ec2").delete_security_group(GroupId=physical_id)


@_handles("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ec2 = ctx.client("ec2")
    name = inputs["name"]
    skip = {"name", "description", "tags", "updateDefaultVersion", "tagSpecifications"}
    data = _pascal({k: v for k, v in inputs.items() if k not in skip})
    for interface in data.get("NetworkInterfaces", []):
        if "SecurityGroups" in interface:
            interface["Groups"] = interface.pop("SecurityGroups")
    data = _bools(data)
    found = ec2.describe_launch_templates(
        Filters=[{"Name": "launch-template-name", "Values": [name]}]
    )
    if found["LaunchTemplates"]:
        template_id = found["LaunchTemplates"][0]["LaunchTemplateId"]
        version = ec2.create_launch_template_version(
            LaunchTemplateId=template_id, LaunchTemplateData=data
        )["LaunchTemplateVersion"]["VersionNumber"]
        ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion=str(version))
    else:
        template = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
        template_id = template["LaunchTemplate"]["LaunchTemplateId"]
        version = template["LaunchTemplate"]["LatestVersionNumber"]
    return template_id, {
        "arn": ctx.arn("ec2", f"launch-template/{template_id}"),
        "latestVersion": version,
        "defaultVersion": version,
    }


@_deletes("aws:ec2/launchTemplate:LaunchTemplate")
def _launch_template_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("ec2").delete_launch_template(LaunchTemplateId=physical_id)


# --- queues, topics, tables, logs ----------------------------------------------------


@_handles("aws:sqs/queue:Queue")
def _queue(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    sqs = ctx.client("sqs")
    attributes = {
        "KmsMasterKeyId": inputs.get("kmsMasterKeyId"),
        "MessageRetentionPeriod": inputs.get("messageRetentionSeconds"),
        "SqsManagedSseEnabled": inputs.get("sqsManagedSseEnabled"),
    }
    attributes_str = {
        k: str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in attributes.items()
        if v is not None
    }
    url = sqs.create_queue(QueueName=inputs["name"], Attributes=attributes_str)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, {"arn": arn, "url": url, "name": inputs["name"]}


@_deletes("aws:sqs/queue:Queue")
def _queue_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("sqs").delete_queue(QueueUrl=physical_id)


@_handles("aws:sqs/queuePolicy:QueuePolicy")
def _queue_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=inputs["queueUrl"], Attributes={"Policy": _policy_text(inputs["policy"])}
    )
    return inputs["queueUrl"], {}


@_handles("aws:sns/topic:Topic")
def _topic(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    attributes = {}
    if inputs.get("kmsMasterKeyId"):
        attributes["KmsMasterKeyId"] = inputs["kmsMasterKeyId"]
    arn = ctx.client("sns").create_topic(Name=inputs["name"], Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn, "name": inputs["name"]}


@_deletes("aws:sns/topic:Topic")
def _topic_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("sns").delete_topic(TopicArn=physical_id)


@_handles("aws:sns/topicPolicy:TopicPolicy")
def _topic_policy(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    ctx.client("sns").set_topic_attributes(
        TopicArn=inputs["arn"],
        AttributeName="Policy",
        AttributeValue=_policy_text(inputs["policy"]),
    )
    return inputs["arn"], {}


@_handles("aws:sns/topicSubscription:TopicSubscription")
def _subscription(
    ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None
) -> tuple[str, dict]:
    arn = ctx.client("sns").subscribe(
        TopicArn=inputs["topic"], Protocol=inputs["protocol"], Endpoint=inputs["endpoint"]
    )["SubscriptionArn"]
    return arn, {"arn": arn}


@_handles("aws:dynamodb/table:Table")
def _table(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    ddb = ctx.client("dynamodb")
    name = inputs["name"]
    try:
        arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
    except ddb.exceptions.ResourceNotFoundException:
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": [
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in inputs["attributes"]
            ],
            "KeySchema": [{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
            "BillingMode": inputs.get("billingMode", "PAY_PER_REQUEST"),
        }
        if inputs.get("rangeKey"):
            args["KeySchema"].append({"AttributeName": inputs["rangeKey"], "KeyType": "RANGE"})
        sse = inputs.get("serverSideEncryption") or {}
        if sse.get("enabled"):
            args["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
            if sse.get("kmsKeyArn"):
                args["SSESpecification"]["KMSMasterKeyId"] = sse["kmsKeyArn"]
        arn = ddb.create_table(**args)["TableDescription"]["TableArn"]
    ttl = inputs.get("ttl") or {}
    if ttl.get("enabled"):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") != "ENABLED":
            ddb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]},
            )
    if (inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
    return name, {"arn": arn, "name": name}


@_deletes("aws:dynamodb/table:Table")
def _table_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("dynamodb").delete_table(TableName=physical_id)


@_handles("aws:cloudwatch/logGroup:LogGroup")
def _log_group(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    logs = ctx.client("logs")
    name = inputs["name"]
    found = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    if not any(g["logGroupName"] == name for g in found):
        args = {"logGroupName": name}
        if inputs.get("kmsKeyId"):
            args["kmsKeyId"] = inputs["kmsKeyId"]
        logs.create_log_group(**args)
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(inputs["retentionInDays"]))
    return name, {"arn": ctx.arn("logs", f"log-group:{name}"), "name": name}


@_deletes("aws:cloudwatch/logGroup:LogGroup")
def _log_group_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("logs").delete_log_group(logGroupName=physical_id)


# --- Lambda and EventBridge ------------------------------------------------------------


@_handles("aws:lambda/function:Function")
def _function(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    lam = ctx.client("lambda")
    name = inputs["name"]
    code = _zip_archive(inputs["code"])
    config: dict[str, Any] = {
        "Role": inputs["role"],
        "Handler": inputs["handler"],
        "Runtime": inputs.get("runtime", "python3.11"),
        "Timeout": int(inputs.get("timeout", 3)),
        "MemorySize": int(inputs.get("memorySize", 128)),
        "Environment": {"Variables": (inputs.get("environment") or {}).get("variables", {})},
    }
    if inputs.get("layers"):
        config["Layers"] = list(inputs["layers"])
    if inputs.get("deadLetterConfig"):
        config["DeadLetterConfig"] = {"TargetArn": inputs["deadLetterConfig"]["targetArn"]}
    if inputs.get("tracingConfig"):
        config["TracingConfig"] = {"Mode": inputs["tracingConfig"]["mode"]}
    if inputs.get("kmsKeyArn"):
        config["KMSKeyArn"] = inputs["kmsKeyArn"]
    try:
        lam.get_function(FunctionName=name)
        lam.update_function_code(FunctionName=name, ZipFile=code)
        lam.update_function_configuration(FunctionName=name, **config)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(
            FunctionName=name, Code={"ZipFile": code}, Tags=inputs.get("tags") or {}, **config
        )
    if inputs.get("reservedConcurrentExecutions") not in (None, -1):
        lam.put_function_concurrency(
            FunctionName=name,
            ReservedConcurrentExecutions=int(inputs["reservedConcurrentExecutions"]),
        )
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    return name, {
        "arn": arn,
        "invokeArn": (
            f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        ),
        "qualifiedArn": f"{arn}:$LATEST",
        "version": "$LATEST",
    }


@_deletes("aws:lambda/function:Function")
def _function_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("lambda").delete_function(FunctionName=physical_id)


@_handles("aws:lambda/permission:Permission")
def _permission(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    lam = ctx.client("lambda")
    statement = (
        inputs.get("statementId")
        or hashlib.sha1(  # noqa: S324 - a name, not security
            json.dumps(inputs, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
    )
    function = inputs["function"]
    with contextlib.suppress(ClientError):  # replace, not duplicate, on a re-run
        lam.remove_permission(FunctionName=function, StatementId=statement)
    args: dict[str, Any] = {
        "FunctionName": function,
        "StatementId": statement,
        "Action": inputs["action"],
        "Principal": inputs["principal"],
    }
    if inputs.get("sourceArn"):
        args["SourceArn"] = inputs["sourceArn"]
    lam.add_permission(**args)
    return f"{function}/{statement}", {}


@_handles("aws:cloudwatch/eventRule:EventRule")
def _rule(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    args: dict[str, Any] = {"Name": inputs["name"], "State": inputs.get("state", "ENABLED")}
    if inputs.get("isEnabled") is False:
        args["State"] = "DISABLED"
    for key, api in (
        ("scheduleExpression", "ScheduleExpression"),
        ("eventPattern", "EventPattern"),
        ("description", "Description"),
        ("eventBusName", "EventBusName"),
    ):
        if inputs.get(key):
            args[api] = inputs[key]
    arn = ctx.client("events").put_rule(**args)["RuleArn"]
    return inputs["name"], {"arn": arn, "name": inputs["name"]}


@_deletes("aws:cloudwatch/eventRule:EventRule")
def _rule_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    events = ctx.client("events")
    targets = events.list_targets_by_rule(Rule=physical_id)["Targets"]
    if targets:
        events.remove_targets(Rule=physical_id, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=physical_id)


@_handles("aws:cloudwatch/eventTarget:EventTarget")
def _target(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    target_id = inputs.get("targetId") or "target"
    target: dict[str, Any] = {"Id": target_id, "Arn": inputs["arn"]}
    if inputs.get("input"):
        target["Input"] = inputs["input"]
    if inputs.get("deadLetterConfig"):
        target["DeadLetterConfig"] = {"Arn": inputs["deadLetterConfig"]["arn"]}
    if inputs.get("retryPolicy"):
        target["RetryPolicy"] = _pascal(inputs["retryPolicy"])
    ctx.client("events").put_targets(Rule=inputs["rule"], Targets=[target])
    return f"{inputs['rule']}-{target_id}", {}


@_handles("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    name = inputs["name"]
    args: dict[str, Any] = {
        "AlarmName": name,
        "ComparisonOperator": inputs["comparisonOperator"],
        "EvaluationPeriods": int(inputs["evaluationPeriods"]),
        "ActionsEnabled": inputs.get("actionsEnabled", True),
    }
    optional = {
        "metricName": "MetricName",
        "namespace": "Namespace",
        "statistic": "Statistic",
        "alarmDescription": "AlarmDescription",
        "treatMissingData": "TreatMissingData",
        "unit": "Unit",
        "extendedStatistic": "ExtendedStatistic",
    }
    for key, api in optional.items():
        if inputs.get(key) is not None:
            args[api] = inputs[key]
    for key, api in (("period", "Period"), ("datapointsToAlarm", "DatapointsToAlarm")):
        if inputs.get(key) is not None:
            args[api] = int(inputs[key])
    if inputs.get("threshold") is not None:
        args["Threshold"] = float(inputs["threshold"])
    for key, api in (
        ("alarmActions", "AlarmActions"),
        ("okActions", "OKActions"),
        ("insufficientDataActions", "InsufficientDataActions"),
    ):
        if inputs.get(key):
            args[api] = list(inputs[key])
    if inputs.get("dimensions"):
        args["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in inputs["dimensions"].items()]
    if inputs.get("metricQueries"):
        args["Metrics"] = _pascal(inputs["metricQueries"], {"id": "Id"})
    ctx.client("cloudwatch").put_metric_alarm(**args)
    return name, {"arn": ctx.arn("cloudwatch", f"alarm:{name}"), "name": name}


@_deletes("aws:cloudwatch/metricAlarm:MetricAlarm")
def _alarm_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])


# --- the mocks that deploy ---------------------------------------------------------


class DeployingMocks(RecordingMocks):
    """Creates every resource the program declares in the moto server.

    Records like the preview's mocks (so the policy rules can run over a deploy
    too), but each custom resource is created through boto3 first.
    """

    def __init__(self, ctx: Ctx, state: DeployState) -> None:
        super().__init__(account_id=ACCOUNT_ID, region=ctx.region)
        self.ctx = ctx
        self.state = state
        self.created: list[str] = []
        self.failures: list[str] = []

    def create(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return super().create(args)
        handler = _HANDLERS.get(args.typ)
        key = f"{args.typ}::{args.name}"
        if handler is None:
            message = f"{key}: the local deployer has no mapping for {args.typ}"
            self.failures.append(message)
            raise DeployError(message)
        try:
            inputs = _whole_numbers(dict(args.inputs))
            physical_id, outputs = handler(self.ctx, inputs, self.state.get(key))
        except Exception as exc:
            # any handler failure (botocore's ParamValidationError, a dropped
            # connection...) must name the resource and leave a re-runnable state
            message = f"{key}: {exc}"
            self.failures.append(message)
            raise DeployError(message) from exc
        self.state.put(key, args.typ, physical_id, outputs)
        self.created.append(key)
        return physical_id, {**args.inputs, "id": physical_id, **outputs}

    def invoke(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if token == "aws:ssm/getParameter:getParameter":
            # moto serves AWS's public AMI parameters; its answer beats a fixed id
            try:
                value = self.ctx.client("ssm").get_parameter(Name=args["name"])["Parameter"]
            except ClientError:
                return super().invoke(token, args)
            result = super().invoke(token, args)
            result.update(value=value["Value"], insecureValue=value["Value"])
            return result
        return super().invoke(token, args)


def delete_stack(ctx: Ctx, state: DeployState) -> list[str]:
    """Delete what `deploy` created, newest first; returns what could not go."""
    problems = []
    ordered = sorted(state.resources.items(), key=lambda item: item[1]["order"], reverse=True)
    for key, record in ordered:
        deleter = _DELETERS.get(record["type"])
        try:
            if deleter is not None:
                deleter(ctx, record["id"], record["outputs"])
            state.drop(key)
        except ClientError as exc:
            problems.append(f"{key}: {exc}")
    if not problems:
        state.outputs = {}
        state._save()
    return problems


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def state_path(state_dir: Path, stack: str) -> Path:
    return state_dir / "stacks" / f"{_SAFE.sub('_', stack)}.json"


__all__ = [
    "Ctx",
    "DeployError",
    "DeployState",
    "DeployingMocks",
    "delete_stack",
    "state_path",
    "supported_types",
]


@dataclass(frozen=True)
class DeployResult:
    stack: str
    outputs: dict[str, Any]
    resource_count: int
    created: list[str]
    seconds: float


def deploy(
    stack: str,
    endpoint_url: str,
    state_dir: Path,
    repo_root: Path,
    *,
    overrides: Mapping[str, str] | None = None,
) -> DeployResult:
    """Run the program for `stack` and create/update every resource in moto.

    Raises `DeployError` naming the first resource that failed; everything
    created before it is in the state file, so a re-run picks up from there.
    """
    from infra.config import settings_for_stack
    from infra.preview import run_program

    settings, _ = settings_for_stack(stack, repo_root, overrides)
    ctx = Ctx(endpoint_url=endpoint_url, region=settings.region)
    state = DeployState.load(state_path(state_dir, stack))
    mocks = DeployingMocks(ctx, state)
    start = time.perf_counter()
    try:
        run = run_program(
            stack,
            repo_root,
            overrides=overrides,
            mocks=mocks,
            build_dir=state_dir / "build",
        )
    except Exception as exc:
        if mocks.failures:
            raise DeployError(
                f"deploy of stack {stack!r} stopped at {mocks.failures[0]}; "
                f"{len(mocks.created)} resources are in place and recorded, re-run to converge"
            ) from exc
        raise
    if mocks.failures:
        raise DeployError(f"deploy of stack {stack!r} failed: {'; '.join(mocks.failures)}")
    outputs = _jsonable(dict(run.outputs))
    state.outputs = outputs
    state._save()
    return DeployResult(
        stack, outputs, len(run.custom_resources), mocks.created, time.perf_counter() - start
    )


def destroy(stack: str, endpoint_url: str, state_dir: Path, region: str) -> list[str]:
    """Delete a locally deployed stack; returns the resources that could not go."""
    state = DeployState.load(state_path(state_dir, stack))
    return delete_stack(Ctx(endpoint_url=endpoint_url, region=region), state)


def stack_outputs(state_dir: Path, stack: str) -> dict[str, Any]:
    return DeployState.load(state_path(state_dir, stack)).outputs
