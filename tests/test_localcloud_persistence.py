"""A local cloud that keeps its state: snapshot on change and stop, restore at start."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import time
from pathlib import Path

import joblib
import pytest
from localcloud_helpers import (
    ACCOUNT,
    ROLE_NAME,
    alive,
    client,
    setup_training_bucket,
    targz,
    training_job_request,
    wait_for,
)
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from mlops import localcloud
from mlops.localcloud import LocalCloud, snapshot
from mlops.localcloud.state import LocalCloudError

pytestmark = pytest.mark.slow

BUCKET = "kept-bucket"
MODEL_FN = (
    "import os, joblib\n"
    "def model_fn(model_dir):\n"
    "    return joblib.load(os.path.join(model_dir, 'clf.joblib'))\n"
)


def _fill(cloud: LocalCloud) -> dict[str, object]:
    """A bit of every kind of state; what to find again."""
    s3 = client(cloud, "s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=BUCKET, Key="raw/day1.csv", Body=b"a,label\n1,0\n")["VersionId"]
    s3.put_object(Bucket=BUCKET, Key="raw/day1.csv", Body=b"a,label\n2,1\n")
    ddb = client(cloud, "dynamodb")
    ddb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="idempotency", Item={"id": {"S": "evt-1"}, "status": {"S": "DONE"}})
    kms = client(cloud, "kms")
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    sealed = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    client(cloud, "iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument="{}")
    client(cloud, "events").put_rule(Name="nightly", ScheduleExpression="rate(1 day)")
    client(cloud, "cloudwatch").put_metric_alarm(
        AlarmName="drift",
        MetricName="MaxPSI",
        Namespace="MLOps",
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=0.25,
        ComparisonOperator="GreaterThanThreshold",
    )
    # an endpoint serving a user's scikit-learn model
    x, y = load_iris(return_X_y=True)
    buffer = io.BytesIO()
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), buffer)
    archive = targz({"clf.joblib": buffer.getvalue(), "code/inference.py": MODEL_FN})
    s3.put_object(Bucket=BUCKET, Key="models/iris.tar.gz", Body=archive)
    sm = client(cloud, "sagemaker")
    sm.create_model(
        ModelName="iris",
        ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        PrimaryContainer={
            "Image": "sagemaker-scikit-learn:1.4-2-cpu-py3",
            "ModelDataUrl": f"s3://{BUCKET}/models/iris.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName="iris",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "iris",
                "InstanceType": "ml.t2.medium",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName="iris", EndpointConfigName="iris")
    return {"first_version": first, "key": key, "sealed": sealed, "answer": _predict(cloud)}


def _predict(cloud: LocalCloud) -> bytes:
    response = client(cloud, "sagemaker-runtime").invoke_endpoint(
        EndpointName="iris", Body=b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3", ContentType="text/csv"
    )
    return bytes(response["Body"].read())


def test_stop_and_start_keep_every_kind_of_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with LocalCloud(0, state_dir=state, persist=True) as cloud:
        assert cloud.restored is None  # nothing saved yet: empty, and it says so
        kept = _fill(cloud)

    with LocalCloud(0, state_dir=state, persist=True) as cloud:
        assert cloud.restored is not None
        assert {"s3", "dynamodb", "kms", "iam", "sagemaker", "events"} <= set(
            cloud.restored["services"]
        )
        versions = client(cloud, "s3").list_object_versions(Bucket=BUCKET, Prefix="raw/")
        assert len(versions["Versions"]) == 2
        old = client(cloud, "s3").get_object(
            Bucket=BUCKET, Key="raw/day1.csv", VersionId=str(kept["first_version"])
        )
        assert old["Body"].read() == b"a,label\n1,0\n"
        item = client(cloud, "dynamodb").get_item(
            TableName="idempotency", Key={"id": {"S": "evt-1"}}
        )
        assert item["Item"]["status"] == {"S": "DONE"}
        # the key material came back: what it sealed before opens now
        opened = client(cloud, "kms").decrypt(CiphertextBlob=kept["sealed"])
        assert opened["Plaintext"] == b"secret" and kept["key"] in opened["KeyId"]
        assert client(cloud, "iam").get_role(RoleName=ROLE_NAME)["Role"]["RoleName"]
        rule = client(cloud, "events").describe_rule(Name="nightly")
        assert rule["ScheduleExpression"] == "rate(1 day)"
        alarms = client(cloud, "cloudwatch").describe_alarms(AlarmNames=["drift"])
        assert alarms["MetricAlarms"][0]["Threshold"] == 0.25
        endpoint = client(cloud, "sagemaker").describe_endpoint(EndpointName="iris")
        assert endpoint["EndpointStatus"] == "InService"
        assert _predict(cloud) == kept["answer"]  # serving again, the same model

    # an in-process cloud that does not persist starts empty whatever the folder holds
    with LocalCloud(0, state_dir=state) as cloud:
        assert client(cloud, "s3").list_buckets()["Buckets"] == []


def test_a_corrupt_or_foreign_snapshot_stops_the_start_and_names_the_way_out(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    path = snapshot.snapshot_path(state)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(LocalCloudError, match=r"cannot read the snapshot .*--fresh"):
        LocalCloud(0, state_dir=state, persist=True).start()

    header = {"format": snapshot.FORMAT, "moto": "0.0.1", "python": "3.11.0"}
    path.write_bytes(pickle.dumps(header) + pickle.dumps({}))
    with pytest.raises(LocalCloudError, match=r"moto 0\.0\.1, this is moto .*--fresh"):
        LocalCloud(0, state_dir=state, persist=True).start()
    assert path.exists()  # never deleted behind the user's back

    path.write_bytes(pickle.dumps({"format": 99}))
    with pytest.raises(LocalCloudError, match="not a local-cloud snapshot of format"):
        LocalCloud(0, state_dir=state, persist=True).start()


def _job_pid(state: Path) -> int | None:
    """The running training script's pid: the process whose folder is in ``state``/work."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = str((proc / "cwd").resolve())
        except OSError:
            continue
        if any(part.endswith(b"train.py") for part in cmdline) and cwd.startswith(
            str(state / "work")
        ):
            return int(proc.name)
    return None


def test_a_killed_local_cloud_loses_no_saved_state_and_leaves_no_orphans(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    info = localcloud.start(state, port=0, repo_root=tmp_path)
    try:
        setup_training_bucket(info, "jobs-bucket")
        client(info, "sagemaker").create_training_job(
            **training_job_request(
                "slow-job", "jobs-bucket", hyperparameters={"sleep": json.dumps("300")}
            )
        )
        pid = wait_for(lambda: _job_pid(state), timeout=30)
        time.sleep(2.5)  # the saver writes within a second of the last change
    finally:
        os.kill(info.pid, signal.SIGKILL)  # no cleanup of any kind runs
    wait_for(lambda: not alive(info.pid), timeout=10)
    wait_for(lambda: not alive(pid), timeout=10)  # it died with its cloud: no orphan
    assert any((state / "work").iterdir())  # its workspace is still there...

    info = localcloud.start(state, port=0, repo_root=tmp_path)
    try:
        assert not any((state / "work").iterdir())  # ...until the next start clears it
        job = client(info, "sagemaker").describe_training_job(TrainingJobName="slow-job")
        assert job["TrainingJobStatus"] == "Failed"
        assert "the local cloud stopped while the job was running" in job["FailureReason"]
        assert client(info, "s3").list_objects_v2(Bucket="jobs-bucket")["KeyCount"] >= 1
    finally:
        localcloud.stop(state)
