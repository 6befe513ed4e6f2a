"""The event router: events reach the deployed Lambda handlers with their environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from localcloud_helpers import (
    client,
    deploy_function,
    deploy_rule,
    read_records,
    setup_training_bucket,
    training_job_request,
    wait_for,
    write_recorder,
)

from mlops.localcloud import LocalCloud, LocalCloudError, read_deliveries

RAW = "raw-bucket"


@dataclass
class Deployed:
    cloud: LocalCloud
    function_arn: str
    records: Path


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    handler = write_recorder(tmp_path)
    records = tmp_path / "records.jsonl"
    with LocalCloud(0, state_dir=tmp_path / "state", repo_root=tmp_path) as cloud:
        arn = deploy_function(
            cloud,
            "recorder",
            handler,
            {"RECORD_FILE": str(records), "MLOPS_MODEL_NAME": "churn"},
        )
        yield Deployed(cloud, arn, records)


def _eventbridge_bucket(cloud: LocalCloud, bucket: str) -> None:
    s3 = client(cloud, "s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
    )


S3_PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {"bucket": {"name": [RAW]}, "object": {"key": [{"prefix": "incoming/"}]}},
}


def test_s3_put_in_eventbridge_bucket_is_delivered(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "raw-created", deployed.function_arn, pattern=S3_PATTERN)
    _eventbridge_bucket(cloud, RAW)

    client(cloud, "s3").put_object(Bucket=RAW, Key="incoming/2024/a.csv", Body=b"a,b\n")
    client(cloud, "s3").put_object(Bucket=RAW, Key="elsewhere/b.csv", Body=b"a,b\n")
    assert cloud.wait_idle(30)

    [record] = read_records(deployed.records)  # the other prefix did not match
    event = record["event"]
    assert event["source"] == "aws.s3"
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["bucket"]["name"] == RAW
    assert event["detail"]["object"]["key"] == "incoming/2024/a.csv"
    assert event["detail"]["object"]["size"] == 4
    assert event["detail"]["reason"] == "PutObject"
    assert event["time"].endswith("Z")
    # the function's own environment, and the local cloud as its AWS
    assert record["model"] == "churn"
    assert record["endpoint"] == cloud.endpoint_url
    assert record["function"] == "recorder"
    [delivery] = cloud.deliveries
    assert delivery["status"] == "succeeded"
    assert delivery["result"] == {"ok": True}
    assert read_deliveries(cloud.state_dir)[0]["id"] == delivery["id"]


def test_bucket_without_eventbridge_sends_nothing(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "raw-created", deployed.function_arn, pattern=S3_PATTERN)
    client(cloud, "s3").create_bucket(Bucket=RAW)

    client(cloud, "s3").put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"x")
    assert cloud.wait_idle(30)

    assert cloud.deliveries == []


def test_copy_and_multipart_uploads_are_delivered_too(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "raw-created", deployed.function_arn, pattern=S3_PATTERN)
    _eventbridge_bucket(cloud, RAW)
    s3 = client(cloud, "s3")
    s3.put_object(Bucket=RAW, Key="staging/a.csv", Body=b"x")

    s3.copy_object(
        Bucket=RAW, Key="incoming/copied.csv", CopySource={"Bucket": RAW, "Key": "staging/a.csv"}
    )
    upload = s3.create_multipart_upload(Bucket=RAW, Key="incoming/big.csv")
    part = s3.upload_part(
        Bucket=RAW, Key="incoming/big.csv", UploadId=upload["UploadId"], PartNumber=1, Body=b"y"
    )
    s3.complete_multipart_upload(
        Bucket=RAW,
        Key="incoming/big.csv",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert cloud.wait_idle(30)

    reasons = {
        r["event"]["detail"]["object"]["key"]: r["event"]["detail"]["reason"]
        for r in read_records(deployed.records)
    }
    assert reasons == {
        "incoming/copied.csv": "CopyObject",
        "incoming/big.csv": "CompleteMultipartUpload",
    }


def test_training_state_change_is_delivered(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(
        cloud,
        "training-done",
        deployed.function_arn,
        pattern={
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Training Job State Change"],
            "detail": {"TrainingJobStatus": ["Completed", "Failed", "Stopped"]},
        },
    )
    setup_training_bucket(cloud, "artifacts-bucket")

    client(cloud, "sagemaker").create_training_job(
        **training_job_request("evented-job", "artifacts-bucket")
    )
    assert cloud.wait_idle(60)

    [record] = read_records(deployed.records)
    detail = record["event"]["detail"]
    assert record["event"]["source"] == "aws.sagemaker"
    assert detail["TrainingJobName"] == "evented-job"
    assert detail["TrainingJobStatus"] == "Completed"
    assert detail["TrainingJobArn"].endswith(":training-job/evented-job")
    assert detail["ModelArtifacts"]["S3ModelArtifacts"].endswith("evented-job/output/model.tar.gz")
    assert detail["Tags"] == {"mlops:model": "churn"}
    assert json.loads(detail["HyperParameters"]["target"]) == "label"
    assert record["model"] == "churn"


def test_schedule_fires_on_demand_only(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "nightly", deployed.function_arn, schedule="rate(1 day)")
    _eventbridge_bucket(cloud, RAW)
    client(cloud, "s3").put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"x")
    assert cloud.wait_idle(30)
    assert read_records(deployed.records) == []  # a schedule rule takes no pattern events

    assert cloud.fire_schedule("nightly") == 1
    assert cloud.wait_idle(30)

    [record] = read_records(deployed.records)
    assert record["event"]["detail-type"] == "Scheduled Event"
    assert record["event"]["source"] == "aws.events"
    assert record["event"]["resources"][0].endswith(":rule/nightly")
    with pytest.raises(LocalCloudError, match="no schedule rule named 'missing'"):
        cloud.fire_schedule("missing")


def test_alarm_state_change_is_delivered(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(
        cloud,
        "drift-alarm",
        deployed.function_arn,
        pattern={
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": ["churn-drift"], "state": {"value": ["ALARM"]}},
        },
    )
    cw = client(cloud, "cloudwatch")
    cw.put_metric_alarm(
        AlarmName="churn-drift",
        Namespace="MLOps",
        MetricName="FeatureDriftPSI",
        Dimensions=[{"Name": "Model", "Value": "churn"}, {"Name": "Feature", "Value": "_max"}],
        Statistic="Maximum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=0.2,
        ComparisonOperator="GreaterThanThreshold",
    )

    cw.set_alarm_state(AlarmName="churn-drift", StateValue="ALARM", StateReason="PSI 0.4")
    cw.set_alarm_state(
        AlarmName="churn-drift", StateValue="ALARM", StateReason="again"
    )  # no change
    assert cloud.wait_idle(30)

    [record] = read_records(deployed.records)
    detail = record["event"]["detail"]
    assert record["event"]["source"] == "aws.cloudwatch"
    assert detail["alarmName"] == "churn-drift"
    assert detail["state"]["value"] == "ALARM"
    assert detail["previousState"]["value"] == "OK"


def test_put_events_reaches_lambda_targets(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "manual", deployed.function_arn, pattern={"source": ["mlops.control-plane"]})

    response = client(cloud, "events").put_events(
        Entries=[
            {"Source": "mlops.control-plane", "DetailType": "Retrain", "Detail": '{"why": "test"}'}
        ]
    )
    assert cloud.wait_idle(30)

    assert response["FailedEntryCount"] == 0
    [record] = read_records(deployed.records)
    assert record["event"]["detail"] == {"why": "test"}


def test_failed_delivery_goes_to_the_dead_letter_queue(deployed: Deployed, tmp_path: Path) -> None:
    cloud = deployed.cloud
    sqs = client(cloud, "sqs")
    queue_url = sqs.create_queue(QueueName="recorder-dlq")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    failing = deploy_function(
        cloud,
        "failing",
        "recorder_handler.handler",
        {"RECORD_FILE": str(tmp_path / "failing.jsonl"), "FAIL": "1"},
        DeadLetterConfig={"TargetArn": queue_arn},
    )
    deploy_rule(cloud, "manual", failing, pattern={"source": ["mlops.control-plane"]})

    client(cloud, "events").put_events(
        Entries=[{"Source": "mlops.control-plane", "DetailType": "Retrain", "Detail": "{}"}]
    )
    assert cloud.wait_idle(30)

    [delivery] = cloud.deliveries
    assert delivery["status"] == "failed"
    assert delivery["error"] == "ValueError: handler failed on purpose"
    assert delivery["dead_letter"] == queue_arn
    [message] = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert json.loads(message["Body"])["detail-type"] == "Retrain"
    config = client(cloud, "lambda").get_function(FunctionName="failing")["Configuration"]
    assert config["DeadLetterConfig"] == {"TargetArn": queue_arn}


def test_disabled_rule_gets_nothing(deployed: Deployed) -> None:
    cloud = deployed.cloud
    deploy_rule(cloud, "manual", deployed.function_arn, pattern={"source": ["mlops.control-plane"]})
    client(cloud, "events").disable_rule(Name="manual")

    client(cloud, "events").put_events(
        Entries=[{"Source": "mlops.control-plane", "DetailType": "Retrain", "Detail": "{}"}]
    )
    assert cloud.wait_idle(30)

    assert cloud.deliveries == []


def test_tick_fires_enabled_schedules(tmp_path: Path) -> None:
    handler = write_recorder(tmp_path)
    records = tmp_path / "records.jsonl"
    with LocalCloud(0, repo_root=tmp_path, tick=0.2) as cloud:
        arn = deploy_function(cloud, "recorder", handler, {"RECORD_FILE": str(records)})
        deploy_rule(cloud, "nightly", arn, schedule="rate(1 day)")

        wait_for(lambda: read_records(records), timeout=20)

    assert read_records(records)[0]["event"]["detail-type"] == "Scheduled Event"
