"""lambdas.retrain: triggers, guards and the job it submits (moto, in-process)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from lambdas_helpers import (
    ARTIFACTS,
    DRIFT_ALARM,
    GROUP,
    MODEL,
    RAW,
    REGION,
    TABLE,
    Stack,
    load_event,
    put_data,
    s3_keys,
    set_job_status,
    training_event,
    training_jobs,
)

from lambdas import constants as c
from lambdas import failures, inflight, retrain, triggers
from lambdas.handling import utcnow


def _tags(stack: Stack, job: str) -> dict[str, str]:
    arn = stack.clients.sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobArn"]
    tags = stack.clients.sagemaker.list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


@pytest.mark.parametrize(
    ("event_name", "kind"),
    [
        ("s3_object_created", "s3"),
        ("scheduled_event", "schedule"),
        ("drift_alarm", "drift"),
        ("retrain_request", "manual"),
    ],
)
def test_each_trigger_starts_one_tagged_job_with_lineage(
    stack: Stack, lambda_context: Any, event_name: str, kind: str
) -> None:
    # given data under incoming/
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    put_data(stack, "incoming/2024-05-02/batch-002.csv", "age,plan,label\n50,pro,1\n")

    # when the trigger arrives
    outcome = retrain.handler(load_event(event_name), lambda_context)

    # then one job runs, tagged with model, data version and trigger
    assert outcome["status"] == "started", outcome
    job = outcome["job_name"]
    assert training_jobs(stack) == [job]
    assert stack.config.job_name_pattern.match(job)
    assert job.endswith(outcome["data_version"][:8])
    assert _tags(stack, job) == {
        "mlops:model": MODEL,
        "mlops:data-version": outcome["data_version"],
        "mlops:trigger": kind,
    }
    # and lineage/<job>.json lists every data object with its version ID and ETag
    lineage = json.loads(
        stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=f"lineage/{job}.json")["Body"].read()
    )
    assert lineage["job"] == job
    assert lineage["data_version"] == outcome["data_version"]
    assert lineage["trigger"]["kind"] == kind
    assert [o["key"] for o in lineage["objects"]] == [
        "incoming/2024-05-01/batch-001.csv",
        "incoming/2024-05-02/batch-002.csv",
    ]
    for obj in lineage["objects"]:
        head = stack.clients.s3.head_object(Bucket=RAW, Key=obj["key"])
        assert obj["version_id"] == head["VersionId"] != "null"
        assert obj["etag"] == head["ETag"].strip('"')
        assert obj["bucket"] == RAW and obj["size"] == head["ContentLength"]


def test_submitted_job_matches_the_request_builder(stack: Stack, lambda_context: Any) -> None:
    put_data(stack, "incoming/2024-05-01/a.csv")
    outcome = retrain.handler(load_event("scheduled_event"), lambda_context)

    job = stack.clients.sagemaker.describe_training_job(TrainingJobName=outcome["job_name"])

    assert job["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/sagemaker-scikit-learn:" + c.DEFAULT_SKLEARN_IMAGE_TAG
    )
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert job["HyperParameters"]["sagemaker_submit_directory"] == (
        f'"s3://{ARTIFACTS}/code/jobs.tar.gz"'
    )
    assert job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{RAW}/incoming/"
    )
    assert job["OutputDataConfig"] == {
        "S3OutputPath": f"s3://{ARTIFACTS}/training/",
        "KmsKeyId": stack.env[c.KMS_KEY_ARN],
    }
    assert job["ResourceConfig"]["VolumeKmsKeyId"] == stack.env[c.KMS_KEY_ARN]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{ARTIFACTS}/training/{outcome['job_name']}/output/model.tar.gz"
    )


def test_duplicate_delivery_starts_one_job(stack: Stack, lambda_context: Any) -> None:
    # given an S3 event that EventBridge delivers twice
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    event = load_event("s3_object_created")

    # when both deliveries are handled
    first = retrain.handler(event, lambda_context)
    second = retrain.handler(event, lambda_context)

    # then one job, and the second answer names it
    assert first["status"] == "started"
    assert second["status"] == "duplicate"
    assert second["job_name"] == first["job_name"]
    assert training_jobs(stack) == [first["job_name"]]


def test_schedule_without_new_data_starts_nothing_and_says_so(
    stack: Stack, lambda_context: Any, caplog: pytest.LogCaptureFixture
) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)

    with caplog.at_level(logging.INFO):
        again = retrain.handler(load_event("scheduled_event"), lambda_context)

    assert again["status"] == "duplicate"
    assert "no new data" in again["reason"]
    assert "no new data" in caplog.text
    assert training_jobs(stack) == [first["job_name"]]


def test_new_data_starts_a_new_job(stack: Stack, lambda_context: Any) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)
    put_data(stack, "incoming/2024-05-02/batch-002.csv", "age,plan,label\n61,pro,1\n")

    second = retrain.handler(load_event("scheduled_event"), lambda_context)

    assert second["status"] == "started"
    assert second["data_version"] != first["data_version"]
    assert len(training_jobs(stack)) == 2


def test_forced_manual_request_retrains_unchanged_data(stack: Stack, lambda_context: Any) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    retrain.handler(load_event("s3_object_created"), lambda_context)
    event = load_event("retrain_request")
    event["detail"]["force"] = True

    outcome = retrain.start_training(
        stack.config,
        stack.clients,
        triggers.parse_trigger(event, stack.config),
        now=utcnow() + timedelta(seconds=5),  # a job name of its own
    )

    assert outcome["status"] == "started"
    assert len(training_jobs(stack)) == 2


def test_trigger_during_a_running_job_is_recorded_skipped_then_picked_up(
    stack: Stack, lambda_context: Any
) -> None:
    # given a running job (moto completes jobs at once: mark it InProgress)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    running = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]
    set_job_status(running, "InProgress")

    # when new data lands while it runs
    put_data(stack, "incoming/2024-05-02/batch-002.csv", "age,plan,label\n61,pro,1\n")
    event = load_event("s3_object_created")
    event["detail"]["object"]["key"] = "incoming/2024-05-02/batch-002.csv"
    skipped = retrain.handler(event, lambda_context)

    # then no second job, and the skipped trigger is visible to `mlops status`
    assert skipped["status"] == "skipped"
    assert skipped["running_job"] == running
    assert training_jobs(stack) == [running]
    status = inflight.training_status(stack.config, stack.clients)
    assert status["in_flight"] == [running]
    assert [s["data_version"] for s in status["skipped"]] == [skipped["data_version"]]
    assert status["skipped"][0]["trigger"] == "s3"

    # and once the job is done, the next trigger trains on the skipped data too
    set_job_status(running, "Completed")
    later = retrain.start_training(
        stack.config,
        stack.clients,
        triggers.parse_trigger(load_event("scheduled_event"), stack.config),
        now=utcnow() + timedelta(seconds=5),
    )
    assert later["status"] == "started"
    assert later["data_version"] == skipped["data_version"]
    lineage = json.loads(
        stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=f"lineage/{later['job_name']}.json")[
            "Body"
        ].read()
    )
    assert "incoming/2024-05-02/batch-002.csv" in [o["key"] for o in lineage["objects"]]


def _put_lock(stack: Stack, job: str, age_seconds: int) -> None:
    now = int(utcnow().timestamp())
    stack.clients.dynamodb.put_item(
        TableName=TABLE,
        Item={
            "id": {"S": f"inflight#{MODEL}"},
            "job_name": {"S": job},
            "backend": {"S": "sagemaker"},
            "acquired_at": {"N": str(now - age_seconds)},
            "expiration": {"N": str(now + 7200)},
        },
    )


def test_a_fresh_lock_of_a_job_being_started_skips_the_trigger(
    stack: Stack, lambda_context: Any
) -> None:
    # given another invocation took the lock a moment ago and has not created its job yet
    _put_lock(stack, f"{MODEL}-20240501-115959-ffffffff", age_seconds=5)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    assert outcome["status"] == "skipped"
    assert training_jobs(stack) == []


def test_a_stale_lock_does_not_block_training(stack: Stack, lambda_context: Any) -> None:
    _put_lock(stack, f"{MODEL}-20240501-000000-ffffffff", age_seconds=3600)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    assert outcome["status"] == "started"


def test_a_failed_submission_frees_the_data_version_and_the_lock(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given SageMaker refuses the first submission
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    real_submit = retrain.submit_job
    calls: list[str] = []

    def flaky_submit(*args: Any, **kwargs: Any) -> str:
        calls.append("x")
        if len(calls) == 1:
            raise ClientError(
                {"Error": {"Code": "ResourceLimitExceeded", "Message": "quota"}},
                "CreateTrainingJob",
            )
        return real_submit(*args, **kwargs)

    monkeypatch.setattr(retrain, "submit_job", flaky_submit)

    # when the event is delivered, fails, and Lambda retries it
    with pytest.raises(ClientError):
        retrain.handler(load_event("s3_object_created"), lambda_context)
    retry = retrain.handler(load_event("s3_object_created"), lambda_context)

    # then the retry starts the job (neither the record nor the lock was left behind)
    assert retry["status"] == "started"
    assert training_jobs(stack) == [retry["job_name"]]


def test_no_data_starts_nothing(stack: Stack, lambda_context: Any) -> None:
    outcome = retrain.handler(load_event("scheduled_event"), lambda_context)

    assert outcome["status"] == "no-data"
    assert training_jobs(stack) == []
    assert s3_keys(stack, ARTIFACTS) == []


def test_drift_alarm_without_a_configured_alarm_name_is_rejected(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(c.DRIFT_ALARM_NAME)

    outcome = retrain.handler(load_event("drift_alarm"), lambda_context)

    assert outcome["status"] == "rejected"
    assert c.DRIFT_ALARM_NAME in outcome["reason"]
    assert DRIFT_ALARM not in training_jobs(stack)


# --- EC2 backend --------------------------------------------------------------------------------


HOSTS = "mlops-training-hosts"


def _training_hosts(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:
    """The EC2 backend as the program makes it: a job queue, a launch template and an
    Auto Scaling group of 0 hosts; the control plane's environment names them."""
    template = boto3.client("ec2", region_name=REGION).create_launch_template(
        LaunchTemplateName="mlops-training",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "m5.large"},
    )["LaunchTemplate"]["LaunchTemplateId"]
    stack.clients.hosts.create_auto_scaling_group(
        AutoScalingGroupName=HOSTS,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Default"},
        MinSize=0,
        MaxSize=1,
        DesiredCapacity=0,
        AvailabilityZones=[f"{REGION}a"],
    )
    queue = stack.clients.sqs.create_queue(QueueName="mlops-training-jobs")["QueueUrl"]
    monkeypatch.setenv(c.TRAINING_BACKEND, "ec2")
    monkeypatch.setenv(c.TRAINING_HOSTS, HOSTS)
    monkeypatch.setenv(c.TRAINING_JOBS_QUEUE_URL, queue)
    return str(queue)


def _queued_jobs(stack: Stack, queue: str) -> list[dict[str, Any]]:
    messages = stack.clients.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def _desired_hosts(stack: Stack) -> int:
    [group] = stack.clients.hosts.describe_auto_scaling_groups(AutoScalingGroupNames=[HOSTS])[
        "AutoScalingGroups"
    ]
    return int(group["DesiredCapacity"])


def test_ec2_backend_queues_the_job_and_starts_one_host(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the EC2 backend: a job queue and a group of 0 hosts
    queue = _training_hosts(stack, monkeypatch)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    # when data lands
    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    # then the job is queued for the host and the group asked for one host
    assert outcome["status"] == "started" and outcome["backend"] == "ec2"
    [job] = _queued_jobs(stack, queue)
    assert job["job"] == outcome["job_name"]
    assert f"LINEAGE=s3://{ARTIFACTS}/lineage/{outcome['job_name']}.json" in job["script"]
    assert job["expires"] > utcnow().timestamp()
    assert _desired_hosts(stack) == 1
    assert HOSTS in outcome["resource"]
    assert training_jobs(stack) == []  # no SageMaker job for this backend
    assert s3_keys(stack, ARTIFACTS, "lineage/") == [f"lineage/{outcome['job_name']}.json"]


def test_while_the_host_runs_the_next_trigger_is_skipped_and_after_it_starts_again(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _training_hosts(stack, monkeypatch)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)
    assert first["status"] == "started"

    # a second upload while the group's host (launched by moto) runs: in flight
    put_data(stack, "incoming/2024-05-02/batch-002.csv")
    second = retrain.handler(load_event("s3_object_created"), lambda_context)
    assert second["status"] == "skipped", second
    assert "EC2 training host" in second["running_job"]

    # the host ends its job and takes itself out of the group: the lock is free
    [group] = stack.clients.hosts.describe_auto_scaling_groups(AutoScalingGroupNames=[HOSTS])[
        "AutoScalingGroups"
    ]
    stack.clients.hosts.terminate_instance_in_auto_scaling_group(
        InstanceId=group["Instances"][0]["InstanceId"], ShouldDecrementDesiredCapacity=True
    )
    _queued_jobs(stack, queue)  # the host took the first job
    third = retrain.handler(load_event("s3_object_created"), lambda_context)
    assert third["status"] == "started", third
    assert [j["job"] for j in _queued_jobs(stack, queue)] == [third["job_name"]]


# --- the champion channel ------------------------------------------------------------------------


def _register(stack: Stack, job: str, status: str = "Approved", bucket: str = ARTIFACTS) -> str:
    """A model package as the promote handler registers it (moto)."""
    return str(
        stack.clients.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "img",
                        "ModelDataUrl": f"s3://{bucket}/training/{job}/output/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["application/json"],
            },
            ModelApprovalStatus=status,
        )["ModelPackageArn"]
    )


def _lineage(stack: Stack, job: str) -> dict[str, Any]:
    body = stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=f"lineage/{job}.json")["Body"]
    return dict(json.loads(body.read()))


def _channels(stack: Stack, job: str) -> dict[str, str]:
    described = stack.clients.sagemaker.describe_training_job(TrainingJobName=job)
    return {
        ch["ChannelName"]: ch["DataSource"]["S3DataSource"]["S3Uri"]
        for ch in described["InputDataConfig"]
    }


def test_the_champions_model_is_a_channel_of_the_next_job(
    stack: Stack, lambda_context: Any
) -> None:
    # given a champion (the latest Approved package; a later Rejected one does not count)
    _register(stack, f"{MODEL}-20240401-120000-00000001")
    champion = _register(stack, f"{MODEL}-20240402-120000-00000002")
    _register(stack, f"{MODEL}-20240403-120000-00000003", status="Rejected")
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    # when new data starts a job
    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    # then the job gets the champion's model.tar.gz as channel "champion" and its ARN
    assert outcome["status"] == "started", outcome
    assert outcome["champion"] == champion
    job = outcome["job_name"]
    url = f"s3://{ARTIFACTS}/training/{MODEL}-20240402-120000-00000002/output/model.tar.gz"
    assert _channels(stack, job) == {"train": f"s3://{RAW}/incoming/", "champion": url}
    hps = stack.clients.sagemaker.describe_training_job(TrainingJobName=job)["HyperParameters"]
    assert json.loads(hps["champion-package"]) == champion
    # and the lineage records which champion the job was compared with
    assert _lineage(stack, job)["champion"] == {
        "package": champion,
        "version": 2,
        "model_data_url": url,
        "channel": True,
    }


def test_first_model_has_no_champion_channel(stack: Stack, lambda_context: Any) -> None:
    _register(stack, f"{MODEL}-20240401-120000-00000001", status="Rejected")
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    assert outcome["status"] == "started" and outcome["champion"] is None
    job = outcome["job_name"]
    assert set(_channels(stack, job)) == {"train"}
    hps = stack.clients.sagemaker.describe_training_job(TrainingJobName=job)["HyperParameters"]
    assert "champion-package" not in hps
    assert _lineage(stack, job)["champion"] == {
        "package": None,
        "channel": False,
        "reason": "no champion: first model",
    }


def test_a_champion_the_training_role_cannot_read_is_recorded_but_not_given(
    stack: Stack, lambda_context: Any
) -> None:
    champion = _register(stack, f"{MODEL}-20240401-120000-00000001", bucket="someone-elses")
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    assert outcome["status"] == "started"
    assert set(_channels(stack, outcome["job_name"])) == {"train"}
    record = _lineage(stack, outcome["job_name"])["champion"]
    assert record["package"] == champion and record["channel"] is False
    assert "the training role cannot read it" in record["reason"]


def test_an_unreadable_registry_does_not_stop_training(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _register(stack, f"{MODEL}-20240401-120000-00000001")
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    def denied(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}},
            "ListModelPackages",
        )

    monkeypatch.setattr(stack.clients.sagemaker, "list_model_packages", denied)

    outcome = retrain.start_training(stack.config, stack.clients, triggers.Trigger("manual"))

    assert outcome["status"] == "started" and outcome["champion"] is None
    assert set(_channels(stack, outcome["job_name"])) == {"train"}
    record = _lineage(stack, outcome["job_name"])["champion"]
    assert record["channel"] is False
    assert "AccessDeniedException" in record["error"]


def test_the_ec2_host_downloads_the_champion_too(
    stack: Stack, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = _training_hosts(stack, monkeypatch)
    _register(stack, f"{MODEL}-20240401-120000-00000001")
    put_data(stack, "incoming/2024-05-01/batch-001.csv")

    outcome = retrain.handler(load_event("s3_object_created"), lambda_context)

    assert outcome["status"] == "started" and outcome["champion"]
    [job] = _queued_jobs(stack, queue)
    url = f"s3://{ARTIFACTS}/training/{MODEL}-20240401-120000-00000001/output/model.tar.gz"
    assert f"CHAMPION={url}" in job["script"]
    assert "SM_CHANNEL_CHAMPION=/opt/ml/input/data/champion" in job["script"]


# --- a job that died of infrastructure frees its data version ---------------------------------


def _schedule(stack: Stack, seconds: int, **env: str) -> dict[str, Any]:
    return retrain.start_training(
        stack.with_env(**env)[0],
        stack.clients,
        triggers.parse_trigger(load_event("scheduled_event"), stack.config),
        now=utcnow() + timedelta(seconds=seconds),
    )


def test_a_job_killed_by_the_infrastructure_is_retried_after_its_backoff(
    stack: Stack, lambda_context: Any
) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]
    set_job_status(first, "Failed", "CapacityError: Unable to provision requested ML compute")

    early = _schedule(stack, 60)  # the backoff (900 s) has not passed
    retried = _schedule(stack, 901)

    assert early["status"] == "retry-later", early
    assert early["failure"] == "infrastructure" and "retry 1 of 2" in early["reason"]
    assert retried["status"] == "started", retried
    assert retried["attempt"] == 1 and retried["data_version"] == early["data_version"]
    assert sorted(training_jobs(stack)) == sorted([first, retried["job_name"]])

    # and the second retry waits twice as long (both jobs "ended" about now, in moto)
    set_job_status(retried["job_name"], "Failed", "InternalServerError: internal error")
    assert _schedule(stack, 1700)["status"] == "retry-later"
    assert _schedule(stack, 1801)["attempt"] == 2


def test_infrastructure_retries_stop_at_max_retries_with_doubling_backoff(
    stack: Stack, lambda_context: Any
) -> None:
    one_retry = {c.MAX_RETRIES: "1"}
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]
    set_job_status(first, "Stopped")  # killed: no reason given
    second = _schedule(stack, 901, **one_retry)["job_name"]
    set_job_status(second, "Failed", "AlgorithmError: ExitCode 137 (out of memory)")

    given_up = _schedule(stack, 901 + 1801, **one_retry)

    assert given_up["status"] == "duplicate", given_up
    assert given_up["failure"] == "infrastructure"
    assert "after 1 retries (mlops:maxRetries=1)" in given_up["reason"]
    assert len(training_jobs(stack)) == 2


def test_a_job_that_failed_on_its_data_is_not_retried_until_the_data_changes(
    stack: Stack, lambda_context: Any
) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    first = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]
    set_job_status(first, "Failed", "label column 'label' not found in incoming data")

    again = _schedule(stack, 10_000)
    put_data(stack, "incoming/2024-05-02/batch-002.csv", "age,plan,label\n61,pro,1\n")
    changed = _schedule(stack, 10_001)

    assert again["status"] == "duplicate" and again["failure"] == "job", again
    assert "not retried until the data changes" in again["reason"]
    assert changed["status"] == "started"
    assert len(training_jobs(stack)) == 2


@pytest.mark.parametrize(
    ("status", "reason", "infrastructure"),
    [
        ("Failed", "CapacityError: Unable to provision requested ML compute capacity", True),
        ("Failed", "InternalServerError: We encountered an internal error", True),
        ("Failed", "AlgorithmError: Please use an instance type with more memory", True),
        ("Failed", 'AlgorithmError: ExecuteUserScriptError:\nExitCode 137\nErrorMessage ""', True),
        ("Stopped", "", True),
        ("Failed", "training data has 1 class(es); at least 2 are needed", False),
        ("Failed", "AlgorithmError: unexpected error: KeyError: 'x'", False),
        ("Completed", "", False),
    ],
)
def test_failures_are_told_apart(status: str, reason: str, infrastructure: bool) -> None:
    end = failures.classify({"TrainingJobStatus": status, "FailureReason": reason})

    assert end.infrastructure is infrastructure
    assert end.failed is (status != "Completed")


def test_data_skipped_during_a_job_is_followed_up_when_the_job_ends(
    stack: Stack, lambda_context: Any
) -> None:
    # given a running job, and data that arrived meanwhile (its trigger was skipped)
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    running = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]
    set_job_status(running, "InProgress")
    put_data(stack, "incoming/2024-05-02/batch-002.csv", "age,plan,label\n61,pro,1\n")
    skipped = retrain.handler(load_event("s3_object_created"), lambda_context)
    assert skipped["status"] == "skipped"

    # when the job ends, its state change reaches retrain too (rule training-ended)
    set_job_status(running, "Completed")
    followed = retrain.handler(training_event(running), lambda_context)
    redelivered = retrain.handler(training_event(running), lambda_context)

    # then the skipped data trains at once, and only once
    assert followed["status"] == "started", followed
    assert followed["data_version"] == skipped["data_version"]
    assert (followed["trigger"]["kind"], followed["trigger"]["job"]) == ("job-ended", running)
    assert redelivered["status"] == "duplicate"
    assert len(training_jobs(stack)) == 2


def test_a_job_ending_without_new_data_starts_nothing(stack: Stack, lambda_context: Any) -> None:
    put_data(stack, "incoming/2024-05-01/batch-001.csv")
    job = retrain.handler(load_event("s3_object_created"), lambda_context)["job_name"]

    outcome = retrain.handler(training_event(job), lambda_context)

    assert outcome["status"] == "duplicate"
    assert training_jobs(stack) == [job]
