"""S3: buckets, their settings (one table of put_bucket_* calls) and objects."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi

from mlops.deploy.errors import DeployError
from mlops.deploy.mocks import Ctx, Handler, deletes, exists, handles
from mlops.deploy.shapes import pascal, policy_text, tag_list


@handles("aws:s3/bucket:Bucket")
def _bucket(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    s3 = ctx.client("s3")
    name = inputs.get("bucket") or (prev or {}).get("id")
    if not name:
        raise DeployError("bucket has no name; the local deployer needs deterministic names")
    if not exists(lambda: s3.head_bucket(Bucket=name), "404", "NoSuchBucket"):
        s3.create_bucket(Bucket=name)
    if inputs.get("tags"):
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(inputs)})
    return name, {
        "bucket": name,
        "arn": f"arn:aws:s3:::{name}",
        "bucketDomainName": f"{name}.s3.amazonaws.com",
        "region": ctx.region,
    }


@deletes("aws:s3/bucket:Bucket")
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


# --- bucket settings: each one put_<setting> call on the bucket, gone with the bucket ----------

Shape = Callable[[dict[str, Any]], dict[str, Any]]
"""Pulumi inputs -> the keyword arguments of the put call, `Bucket` aside."""


def _lifecycle(inputs: dict[str, Any]) -> dict[str, Any]:
    rules = pascal(inputs["rules"], {"id": "ID"})
    for rule in rules:
        rule.setdefault("Filter", {"Prefix": ""})
        if isinstance(rule.get("Filter"), dict) and not rule["Filter"]:
            rule["Filter"] = {"Prefix": ""}
    return {"LifecycleConfiguration": {"Rules": rules}}


_PUBLIC_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)

BUCKET_SETTINGS: dict[str, tuple[str, Shape]] = {
    "aws:s3/bucketVersioning:BucketVersioning": (
        "put_bucket_versioning",
        lambda i: {
            "VersioningConfiguration": {
                "Status": pascal(i["versioningConfiguration"])["Status"],
            }
        },
    ),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": (
        "put_bucket_encryption",
        lambda i: {
            "ServerSideEncryptionConfiguration": {
                "Rules": pascal(
                    i["rules"], {"kmsMasterKeyId": "KMSMasterKeyID", "sseAlgorithm": "SSEAlgorithm"}
                )
            }
        },
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": (
        "put_public_access_block",
        lambda i: {
            "PublicAccessBlockConfiguration": {
                f[:1].upper() + f[1:]: bool(i.get(f)) for f in _PUBLIC_FLAGS
            }
        },
    ),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": (
        "put_bucket_ownership_controls",
        lambda i: {"OwnershipControls": {"Rules": [pascal(i["rule"])]}},
    ),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": (
        "put_bucket_lifecycle_configuration",
        _lifecycle,
    ),
    "aws:s3/bucketLogging:BucketLogging": (
        "put_bucket_logging",
        lambda i: {
            "BucketLoggingStatus": {
                "LoggingEnabled": {
                    "TargetBucket": i["targetBucket"],
                    "TargetPrefix": i.get("targetPrefix", ""),
                }
            }
        },
    ),
    "aws:s3/bucketPolicy:BucketPolicy": (
        "put_bucket_policy",
        lambda i: {"Policy": policy_text(i["policy"])},
    ),
    "aws:s3/bucketNotification:BucketNotification": (
        "put_bucket_notification_configuration",
        lambda i: {
            "NotificationConfiguration": (
                {"EventBridgeConfiguration": {}} if i.get("eventbridge") else {}
            )
        },
    ),
}


def _bucket_setting(method: str, shape: Shape) -> Handler:
    def put(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
        getattr(ctx.client("s3"), method)(Bucket=inputs["bucket"], **shape(inputs))
        return inputs["bucket"], {}

    return put


for _typ, (_method, _shape) in BUCKET_SETTINGS.items():
    handles(_typ)(_bucket_setting(_method, _shape))


# --- objects -----------------------------------------------------------------------------------


@handles("aws:s3/bucketObjectv2:BucketObjectv2")
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


@deletes("aws:s3/bucketObjectv2:BucketObjectv2")
def _object_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    bucket, key = physical_id.split("/", 1)
    ctx.client("s3").delete_object(Bucket=bucket, Key=key)
