"""The events AWS services put on EventBridge, as the local cloud builds them.

Each builder returns the event dict in the shape AWS sends it ("Scheduled Event",
S3 "Object Created" / "Object Deleted", "SageMaker Training Job State Change",
"SageMaker Model Package State Change", "SageMaker Endpoint State Change",
"CloudWatch Alarm State Change"), for :class:`mlops.localcloud.router.EventRouter`
to publish.
"""

from __future__ import annotations

import copy
import re
import time
import uuid
from typing import Any

from mlops.localcloud.awsutil import epoch_ms, iso_z


def _base_event(
    source: str, detail_type: str, account: str, region: str, resources: list[str]
) -> dict[str, Any]:
    # "time" stays an epoch float inside moto (its SQS/logs targets expect that);
    # Lambda targets get the ISO form (lambda_event).
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": time.time(),
        "region": region,
        "resources": resources,
        "detail": {},
        "ingestion-time": time.time(),
    }


def sagemaker_job_event(
    detail_type: str, arn: str, account: str, region: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """A SageMaker job's state change (source ``aws.sagemaker``); unset fields left out."""
    event = _base_event("aws.sagemaker", detail_type, account, region, [arn])
    event["detail"] = {k: v for k, v in detail.items() if v is not None}
    return event


def _tags(tags: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}


def scheduled_event(rule: Any) -> dict[str, Any]:
    return _base_event(
        "aws.events", "Scheduled Event", rule.account_id, rule.region_name, [rule.arn]
    )


S3_REASONS = {
    "s3:ObjectCreated:Put": "PutObject",
    "s3:ObjectCreated:Post": "PostObject",
    "s3:ObjectCreated:Copy": "CopyObject",
    "s3:ObjectCreated:CompleteMultipartUpload": "CompleteMultipartUpload",
    "s3:ObjectRemoved:Delete": "DeleteObject",
    "s3:ObjectRemoved:DeleteMarkerCreated": "DeleteObject",
}


def s3_object_event(account: str, bucket: Any, event_name: str, key: Any) -> dict[str, Any] | None:
    """The EventBridge "Object Created" / "Object Deleted" event for a moto key, as AWS sends it."""
    reason = S3_REASONS.get(str(getattr(event_name, "value", event_name)))
    if reason is None:
        return None
    created = reason != "DeleteObject"
    event = _base_event(
        "aws.s3",
        "Object Created" if created else "Object Deleted",
        account,
        bucket.region_name,
        [f"arn:aws:s3:::{bucket.name}"],
    )
    obj: dict[str, Any] = {"key": key.name, "sequencer": f"{time.time_ns():X}"}
    if created:
        obj["size"] = key.size
        obj["etag"] = key.etag.replace('"', "")
    version_id = getattr(key, "version_id", None)
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    event["detail"] = {
        "version": "0",
        "bucket": {"name": bucket.name},
        "object": obj,
        "request-id": uuid.uuid4().hex[:16].upper(),
        "requester": account,
        "source-ip-address": "127.0.0.1",
        "reason": reason,
    }
    if not created:
        event["detail"]["deletion-type"] = (
            "Delete Marker Created"
            if event_name.endswith("DeleteMarkerCreated")
            else "Permanently Deleted"
        )
    return event


def training_job_event(job: Any, account: str, region: str) -> dict[str, Any]:
    """ "SageMaker Training Job State Change": the job's description, times in epoch ms."""
    event = _base_event(
        "aws.sagemaker", "SageMaker Training Job State Change", account, region, [job.arn]
    )
    detail: dict[str, Any] = {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "TrainingJobStatus": job.training_job_status,
        "SecondaryStatus": job.secondary_status,
        "HyperParameters": dict(job.hyper_parameters or {}),
        "AlgorithmSpecification": job.algorithm_specification,
        "RoleArn": job.role_arn,
        "InputDataConfig": job.input_data_config,
        "OutputDataConfig": job.output_data_config,
        "ResourceConfig": job.resource_config,
        "StoppingCondition": job.stopping_condition,
        "CreationTime": epoch_ms(job.creation_time),
        "TrainingStartTime": epoch_ms(job.training_start_time),
        "TrainingEndTime": epoch_ms(job.training_end_time),
        "LastModifiedTime": epoch_ms(job.last_modified_time),
        "SecondaryStatusTransitions": [
            {k: epoch_ms(v) if k.endswith("Time") else v for k, v in t.items()}
            for t in job.secondary_status_transitions or []
        ],
        "Tags": _tags(job.tags),
    }
    if getattr(job, "failure_reason", None):
        detail["FailureReason"] = job.failure_reason
    if job.model_artifacts:
        detail["ModelArtifacts"] = job.model_artifacts
    if job.final_metric_data_list:
        detail["FinalMetricDataList"] = [
            {**m, "Timestamp": epoch_ms(m.get("Timestamp"))} for m in job.final_metric_data_list
        ]
    event["detail"] = {k: v for k, v in detail.items() if v is not None}
    return event


def model_package_event(package: Any, account: str, region: str) -> dict[str, Any]:
    """ "SageMaker Model Package State Change" for a moto model package, as AWS documents it
    (its times ISO strings there, unlike the other SageMaker events' epoch ms)."""
    event = _base_event(
        "aws.sagemaker", "SageMaker Model Package State Change", account, region, [package.arn]
    )
    created = iso_z(package.creation_time)
    # a new package's LastModifiedTime is its CreationTime (AWS's example; moto: none)
    modified = iso_z(package.last_modified_time) if package.last_modified_time else created
    detail: dict[str, Any] = {
        "ModelPackageGroupName": package.model_package_group_name,
        "ModelPackageVersion": package.model_package_version,
        "ModelPackageArn": package.arn,
        "ModelPackageName": package.model_package_name,
        "ModelPackageDescription": package.model_package_description,
        "CreationTime": created,
        "InferenceSpecification": copy.deepcopy(package.inference_specification),
        "ModelPackageStatus": package.model_package_status,
        "ModelPackageStatusDetails": copy.deepcopy(package.model_package_status_details),
        "CertifyForMarketplace": bool(package.certify_for_marketplace),
        "ModelApprovalStatus": package.model_approval_status,
        "ApprovalDescription": package.approval_description,
        "MetadataProperties": copy.deepcopy(package.metadata_properties),
        "ModelMetrics": copy.deepcopy(package.model_metrics),
        "CustomerMetadataProperties": dict(package.customer_metadata_properties or {}),
        "LastModifiedTime": modified,
        "Tags": _tags(package.tags),
    }
    event["detail"] = {k: v for k, v in detail.items() if v is not None}
    return event


def _event_status(status: str) -> str:
    """The API's ``InService`` as the event writes it, ``IN_SERVICE``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", status).upper()


def endpoint_event(endpoint: Any, account: str, region: str) -> dict[str, Any]:
    """ "SageMaker Endpoint State Change" for a moto endpoint, times in epoch ms."""
    event = _base_event(
        "aws.sagemaker", "SageMaker Endpoint State Change", account, region, [endpoint.arn]
    )
    detail: dict[str, Any] = {
        "EndpointName": endpoint.endpoint_name,
        "EndpointArn": endpoint.arn,
        "EndpointConfigName": endpoint.endpoint_config_name,
        "ProductionVariants": copy.deepcopy(endpoint.production_variants or []),
        "EndpointStatus": _event_status(str(endpoint.endpoint_status)),
        "CreationTime": epoch_ms(endpoint.creation_time),
        "LastModifiedTime": epoch_ms(endpoint.last_modified_time),
        "FailureReason": getattr(endpoint, "failure_reason", None) or None,
        "Tags": _tags(endpoint.tags),
    }
    event["detail"] = {k: v for k, v in detail.items() if v is not None}
    return event


def alarm_event(alarm: Any, account: str, region: str, previous: dict[str, Any]) -> dict[str, Any]:
    """ "CloudWatch Alarm State Change" for a moto alarm that just changed state."""
    event = _base_event(
        "aws.cloudwatch", "CloudWatch Alarm State Change", account, region, [alarm.alarm_arn]
    )
    metrics = []
    if getattr(alarm, "metric_name", None):
        metrics.append(
            {
                "id": "m1",
                "metricStat": {
                    "metric": {
                        "namespace": alarm.namespace,
                        "name": alarm.metric_name,
                        "dimensions": {
                            d.name: d.value for d in getattr(alarm, "dimensions", None) or []
                        },
                    },
                    "period": alarm.period,
                    "stat": alarm.statistic,
                },
                "returnData": True,
            }
        )
    state = {
        "value": alarm.state_value,
        "reason": alarm.state_reason,
        "timestamp": iso_z(alarm.state_updated_timestamp),
    }
    if alarm.state_reason_data:
        state["reasonData"] = alarm.state_reason_data
    event["detail"] = {
        "alarmName": alarm.name,
        "state": state,
        "previousState": previous,
        "configuration": {"description": alarm.description or "", "metrics": metrics},
    }
    return event
