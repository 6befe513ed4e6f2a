"""The whole loop offline (`mlops demo`) against the moto server, then faults injected into it.

One demo runs for the module (``loop``); its local cloud stays up after the demo so the
fault tests go on in the same account: a training job that crashes, a malformed request
to the endpoint. Only one LocalCloud can run per process, so the tests that start their
own cloud come first in this file, before ``loop`` starts.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    DRIFT,
    PROMOTE,
    REPO_ROOT,
    RETRAIN,
    ClosingRecorder,
    KeptCloud,
    accepts_connections,
    deliveries_of,
    endpoint_model_data,
    job_of_delivery,
    read_json,
)
from rich.console import Console

from mlops import datasets, demo, ops
from mlops.deploy import stack_outputs
from mlops.target import Target, from_outputs

# at 3000 rows the test split held ~12 frauds: the champion's own MCC (the data guard's
# label-agreement denominator) ranged 0.53-0.87 across seeds, the ratio within noise of 0.25
ROWS = 5000
ALARM_EVENT = "CloudWatch Alarm State Change"


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=160)


# --- Ctrl-C: before the module's cloud starts (one LocalCloud per process) ----------------


def test_ctrl_c_during_the_demo_stops_its_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    # Ctrl-C lands in the first stage, with the cloud listening
    monkeypatch.setattr(demo, "deploy", interrupted)
    ClosingRecorder.last = None

    with pytest.raises(KeyboardInterrupt):
        demo.run(REPO_ROOT, rows=100, console=_quiet(), cloud_factory=ClosingRecorder)

    cloud = ClosingRecorder.last
    assert cloud is not None and cloud.port != 0, "the demo never started its cloud"
    assert cloud.closed, "the demo's cloud was not closed on Ctrl-C"
    assert not accepts_connections(cloud.port), f"port {cloud.port} still accepts connections"
    assert not cloud.state_dir.parent.exists(), "the demo's scratch folder was left behind"


def test_interrupt_in_a_later_stage_propagates_and_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    class InterruptedSchedule(ClosingRecorder):
        def fire_schedule(self, rule: str) -> int:
            raise KeyboardInterrupt

    def fake_loop(cloud: Any, *args: Any) -> None:
        # the drift stage fires the schedule; the stages before it are not the point here
        cloud.fire_schedule("drift")

    monkeypatch.setattr(demo, "_loop", fake_loop)

    with pytest.raises(KeyboardInterrupt):
        demo.run(REPO_ROOT, rows=100, console=_quiet(), cloud_factory=InterruptedSchedule)

    cloud = ClosingRecorder.last
    assert isinstance(cloud, InterruptedSchedule) and cloud.closed
    assert not accepts_connections(cloud.port)


# --- the loop ------------------------------------------------------------------------------


@dataclass
class Loop:
    result: demo.DemoResult
    cloud: KeptCloud
    target: Target
    root: Path

    @property
    def oldest_first(self) -> list[dict[str, Any]]:
        return list(reversed(self.result.jobs))

    def package(self, version: int) -> dict[str, Any]:
        [package] = [p for p in self.result.packages if p["version"] == version]
        return package


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("demo")
    clouds: list[KeptCloud] = []

    def factory(**kwargs: Any) -> KeptCloud:
        clouds.append(KeptCloud(**kwargs))
        return clouds[-1]

    try:
        result = demo.run(
            REPO_ROOT, rows=ROWS, seed=7, workdir=root, console=_quiet(), cloud_factory=factory
        )
        [cloud] = clouds
        outputs = stack_outputs(root / "cloud", "local")
        yield Loop(result, cloud, from_outputs("local", outputs, cloud.endpoint_url), root)
    finally:
        for cloud in clouds:
            cloud.close()


@pytest.mark.slow
def test_first_model_is_trained_approved_and_serving(loop: Loop) -> None:
    result = loop.result
    assert loop.cloud.exits == 1, "the demo did not leave its cloud's `with` exactly once"
    assert result.resources == 129
    assert [j["status"] for j in result.jobs] == ["Completed"] * 4, result.jobs
    first, second, _, _ = (job["name"] for job in loop.oldest_first)
    # newest first: the quality alarm's retrain on day 4's feedback, then the three days
    assert [j["trigger"] for j in result.jobs] == ["quality", "s3", "s3", "s3"]

    package1 = loop.package(1)
    assert package1["status"] == "Approved", package1
    assert f"/{first}/" in package1["model_data"]
    assert package1["description"].startswith("approved:")

    endpoint = result.endpoint
    assert endpoint is not None and endpoint["status"] == "InService", endpoint
    assert endpoint["failure"] == ""
    # day 2's challenger (drifted, correctly labelled) won; day 3's (shuffled labels) did not
    assert endpoint["config"].startswith(second), (endpoint, second)
    assert f"/{second}/" in endpoint_model_data(loop.target)
    assert result.predictions == 2000


@pytest.mark.slow
def test_drift_is_detected_per_feature(loop: Loop) -> None:
    drift = loop.result.drift
    assert drift["status"] == "drift", drift
    assert set(drift["psi"]) == set(datasets.FEATURES)
    assert all(isinstance(v, float) and v >= 0 for v in drift["psi"].values())
    threshold = float(loop.target.environ()["MLOPS_DRIFT_THRESHOLD"])
    assert drift["max_psi"] == max(drift["psi"].values()) > threshold
    assert set(drift["drifted_features"]) == {f for f, v in drift["psi"].items() if v > threshold}
    [run] = deliveries_of(loop.result.deliveries, DRIFT)
    assert run["detail_type"] == "Scheduled Event" and run["status"] == "succeeded"
    # the PSI reached CloudWatch too, where `mlops status` reads it
    published = {**drift["psi"], "_max": drift["max_psi"]}
    assert ops.drift_scores(loop.target) == pytest.approx(published, abs=1e-6)


@pytest.mark.slow
def test_alarm_retrain_request_is_a_duplicate_not_lost(loop: Loop) -> None:
    deliveries = loop.result.deliveries
    assert all(d["status"] == "succeeded" for d in deliveries), [
        (d["function"], d.get("error")) for d in deliveries if d["status"] != "succeeded"
    ]
    [alarm, _] = deliveries_of(deliveries, RETRAIN, ALARM_EVENT)  # drift's, then quality's
    assert alarm["event"]["detail"]["alarmName"].endswith("-drift")
    outcome = alarm["result"]
    assert outcome["status"] in {"duplicate", "skipped"}, outcome
    assert outcome["reason"]
    second = loop.oldest_first[1]["name"]
    # it points at the challenger it duplicates (or waits for), and starts no third job
    assert second in json.dumps(outcome), outcome
    assert len(loop.result.jobs) == 4  # the third is day 3's data, the fourth the feedback
    started = [
        d for d in deliveries_of(deliveries, RETRAIN) if d["result"].get("status") == "started"
    ]
    assert [job_of_delivery(d) for d in started] == [j["name"] for j in loop.oldest_first]


@pytest.mark.slow
def test_challenger_gets_a_decision_with_a_reason(loop: Loop) -> None:
    package2 = loop.package(2)
    second = loop.oldest_first[1]["name"]
    assert package2["status"] == "Approved", package2
    assert f"/{second}/" in package2["model_data"]
    assert package2["description"].startswith(package2["status"].lower() + ":")
    assert len(package2["description"]) > len("rejected: "), package2
    gated = deliveries_of(loop.result.deliveries, PROMOTE, "SageMaker Training Job State Change")
    assert [job_of_delivery(d) for d in gated] == [j["name"] for j in loop.oldest_first]
    assert gated[1]["result"]["approval"] == package2["status"]
    assert {rule["rule"] for rule in gated[1]["result"]["gate"]} >= {
        "beats-baseline",
        "reference-set",
        "data-guard",
    }


@pytest.mark.slow
def test_shuffled_labels_are_refused_by_the_evidence_not_promoted(loop: Loop) -> None:
    package3 = loop.package(3)
    assert package3["status"] in {"Rejected", "PendingManualApproval"}, package3
    gated = deliveries_of(loop.result.deliveries, PROMOTE, "SageMaker Training Job State Change")
    rules = {rule["rule"]: rule for rule in gated[2]["result"]["gate"]}
    # the test split carries the same garbage: the evidence that does not is what refuses
    assert not rules["data-guard"]["held"], rules["data-guard"]
    tripped = {r["rule"] for r in gated[2]["result"]["data_guard"] if not r["held"]}
    assert {"label-agreement", "label-learnability"} <= tripped, tripped
    assert "label-agreement" in package3["description"]
    assert rules["reference-set"]["why"].startswith("reference set: f1")


@pytest.mark.slow
def test_lineage_lists_the_incoming_objects_per_job(loop: Loop) -> None:
    s3 = loop.target.client("s3")
    raw = loop.target.output("rawBucket")
    versions = s3.list_object_versions(Bucket=raw, Prefix="incoming/")["Versions"]
    in_s3 = {(v["Key"], v["VersionId"], v["ETag"].strip('"')) for v in versions}
    days = [f"incoming/2026-11-0{d}/day{d}.csv" for d in (1, 2, 3)]
    feedback = loop.result.quality["feedback"]["key"]
    expected_keys = [days[:1], days[:2], days, [*days, feedback]]

    for job, keys in zip(loop.oldest_first, expected_keys, strict=True):
        lineage = read_json(loop.target, "artifactsBucket", f"lineage/{job['name']}.json")
        assert lineage["job"] == job["name"]
        objects = lineage["objects"]
        assert sorted(o["key"] for o in objects) == keys, objects
        for obj in objects:
            assert obj["source"] == ("feedback" if obj["key"] == feedback else "ingested")
            assert obj["bucket"] == raw
            assert obj["version_id"] not in ("", "null"), obj
            assert (obj["key"], obj["version_id"], obj["etag"].strip('"')) in in_s3, obj


@pytest.mark.slow
def test_lineage_walks_from_the_serving_model_back_to_its_data(loop: Loop) -> None:
    serving = ops.serving_job(loop.target)
    approved = [p for p in loop.result.packages if p["status"] == "Approved"]
    newest_approved_job = ops._job_of(approved[0]["model_data"])

    record = ops.lineage(loop.target)

    assert serving == newest_approved_job
    assert record["job"] == serving and record["serving"] is True
    assert record["objects"] and all(o["version_id"] for o in record["objects"])
    assert [p["status"] for p in record["packages"]] == ["Approved"]
    older = ops.lineage(loop.target, loop.oldest_first[0]["name"])
    assert older["serving"] is (loop.oldest_first[0]["name"] == serving)
    with pytest.raises(ops.OpsError, match="no lineage for 'no-such-job'"):
        ops.lineage(loop.target, "no-such-job")


@pytest.mark.slow
def test_evaluations_report_and_summary(loop: Loop) -> None:
    result = loop.result
    assert set(result.evaluations) == {j["name"] for j in result.jobs}
    for evaluation in result.evaluations.values():
        assert 0 <= evaluation["metrics"]["f1"] <= 1
        assert "baseline" in evaluation
    assert result.report is not None and result.report.read_text().lstrip().startswith("<")
    assert list(result.timings) and result.total_seconds > 0

    out = _quiet()
    demo.print_summary(result, out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "Training jobs" in text and "Model registry" in text and "Drift" in text
    assert "Model quality" in text and "estimated (CBPE)" in text
    assert "129 resources deployed; 2000 predictions served" in text


@pytest.mark.slow
def test_late_labels_show_quality_below_the_champion_and_retrain_on_them(loop: Loop) -> None:
    quality = loop.result.quality
    assert quality["status"] == "degraded", quality
    assert quality["counts"]["labelled_rows"] == demo.QUALITY_ROWS
    assert quality["counts"]["without_inference_id"] == 0
    assert quality["window"]["from"] == "the champion's deployment"
    expected = quality["expected"]["f1"]
    assert quality["realised"]["f1"] < expected - 0.05, quality
    assert quality["alarm"] == loop.target.output("qualityAlarmName")
    assert quality["feedback"]["rows"] == demo.QUALITY_ROWS
    retrain = [
        d
        for d in deliveries_of(loop.result.deliveries, RETRAIN, ALARM_EVENT)
        if d["event"]["detail"]["alarmName"] == quality["alarm"]
    ]
    assert [d["result"]["status"] for d in retrain] == ["started"], retrain
    fourth = loop.oldest_first[3]["name"]
    assert job_of_delivery(retrain[0]) == fourth
    package4 = loop.package(4)
    assert package4["status"] in {"Rejected", "PendingManualApproval"}, (
        package4
    )  # day 3 still there
    assert f"/{fourth}/" in package4["model_data"]


# --- faults, in the same account after the loop ------------------------------------------


@pytest.mark.slow
def test_malformed_request_is_refused_and_the_endpoint_keeps_serving(loop: Loop) -> None:
    with pytest.raises(ops.OpsError, match="the endpoint refused the request") as refused:
        ops.predict(loop.target, b"1.0,2.0,3.0\n", "text/csv", "application/json")
    assert "ModelError" in str(refused.value), refused.value

    rows = datasets.transactions(3, seed=1)
    body, content_type = ops.predict(
        loop.target, datasets.features_csv(rows).encode(), "text/csv", "application/json"
    )
    assert content_type == "application/json"
    assert len(json.loads(body)["predictions"]) == 3
    endpoint = ops.endpoint(loop.target)
    assert endpoint is not None and endpoint["status"] == "InService"


@pytest.mark.slow
def test_labels_join_predictions_by_inference_id_into_live_quality(
    loop: Loop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.metrics import f1_score, precision_score, recall_score
    from test_cli import run, text

    for module in ("serving", "model"):
        monkeypatch.setattr(f"mlops.cli.{module}.target_for", lambda stack, state_dir: loop.target)
    rows = datasets.transactions(60, fraud_rate=0.3, seed=3)
    features = rows.drop(columns=["label"])
    features.insert(0, "order", [f"order-{i}" for i in range(60)])
    features.to_csv(tmp_path / "rows.csv", index=False)

    predicted = run("predict", str(tmp_path / "rows.csv"), "--id-column", "order")
    assert predicted.exit_code == 0, text(predicted)
    lines = [line.split(",") for line in predicted.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == [f"order-{i}" for i in range(60)]
    said = [int(line[1]) for line in lines]

    labels = tmp_path / "labels.csv"
    truth = rows["label"].tolist()
    labels.write_text(
        "inference_id,label\n" + "".join(f"order-{i},{y}\n" for i, y in enumerate(truth))
    )
    seen = len(loop.cloud.deliveries)
    uploaded = run("label", str(labels))
    assert uploaded.exit_code == 0, text(uploaded)
    s3 = loop.target.client("s3")
    bucket = loop.target.output("rawBucket")
    [obj] = [
        o
        for o in s3.list_objects_v2(Bucket=bucket, Prefix="ground-truth/")["Contents"]
        if "/labels-" in o["Key"]
    ]
    assert re.fullmatch(r"ground-truth/\d{4}/\d\d/\d\d/\d\d/labels-[0-9a-f]{12}\.jsonl", obj["Key"])
    first = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines()[0])
    assert first == {
        "groundTruthData": {"data": str(truth[0]), "encoding": "CSV"},
        "eventMetadata": {"eventId": "order-0"},
        "eventVersion": "0",
    }

    # the new label file reaches the quality function through its EventBridge rule; it
    # joins these 60 beside day 4's, every prediction the champion made in the window
    assert loop.cloud.wait_idle(60)
    [delivery] = deliveries_of(loop.cloud.deliveries[seen:], "quality")
    outcome = delivery["result"]
    assert outcome["status"] in ("ok", "degraded"), outcome
    joined = _join_by_hand(loop.target)
    assert joined["order-0"] == (truth[0], said[0])
    truths = [t for t, _ in joined.values()]
    preds = [p for _, p in joined.values()]
    realised = outcome["realised"]
    assert realised["labelled_rows"] == len(joined) == 60 + demo.QUALITY_ROWS
    assert realised["f1"] == pytest.approx(f1_score(truths, preds, zero_division=0))
    assert realised["precision"] == pytest.approx(precision_score(truths, preds, zero_division=0))
    assert realised["recall"] == pytest.approx(recall_score(truths, preds, zero_division=0))
    feedback = outcome["feedback"]
    assert feedback["rows"] == 60 and "/feedback-" in feedback["key"]  # only the new labels
    body = s3.get_object(Bucket=bucket, Key=feedback["key"])["Body"].read().decode()
    assert body.splitlines()[0].endswith(",label") and len(body.splitlines()) == 61

    again = run("quality", "--json")
    assert again.exit_code == 0, text(again)
    summary = json.loads(again.stdout)
    assert set(summary) >= {"realised", "estimated", "counts", "alarm"}
    assert summary["realised"]["f1"] == pytest.approx(realised["f1"])
    assert set(summary["estimated"]) == {"precision", "recall", "f1"}
    assert summary["counts"]["labelled_rows"] == 60 + demo.QUALITY_ROWS


def _join_by_hand(target: Target) -> dict[str, tuple[int, int]]:
    """inference id -> (true label, served label), read straight from the buckets."""
    s3 = target.client("s3")

    def records(bucket: str, prefix: str) -> list[dict[str, Any]]:
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found += [json.loads(line) for line in body.splitlines() if line.strip()]
        return found

    served = {}
    for record in records(target.output("captureBucket"), ""):
        inference_id = record["eventMetadata"].get("inferenceId")
        output = record["captureData"]["endpointOutput"]
        if "json" not in output["observedContentType"]:
            rows = output["data"].strip().splitlines()
            if len(rows) == 1:
                served[inference_id] = int(rows[0].split(",")[0])
            continue
        answer = json.loads(output["data"])
        if len(answer["predictions"]) == 1:
            served[inference_id] = int(answer["predictions"][0]["label"])
    truth = {
        r["eventMetadata"]["eventId"]: int(r["groundTruthData"]["data"])
        for r in records(target.output("rawBucket"), "ground-truth/")
    }
    return {i: (truth[i], served[i]) for i in truth if i in served}


@pytest.mark.slow
def test_crashing_training_job_alerts_and_leaves_the_champion(loop: Loop) -> None:
    target, cloud = loop.target, loop.cloud
    champion_before = (ops.endpoint(target), endpoint_model_data(target))
    packages_before = ops.packages(target)
    alerts = _subscribe_queue(target, "alerts-inbox")
    seen = len(cloud.deliveries)
    # no `label` column: the training job fails validating the data
    unlabelled = datasets.transactions(400, seed=3).drop(columns=["label"])
    path = datasets.write_csv(unlabelled, loop.root / "data" / "unlabelled.csv")

    [uri] = ops.ingest(target, [path], "2026-11-04")
    assert cloud.wait_idle(180)

    jobs = ops.jobs(target)
    assert len(jobs) == 5
    crashed = jobs[0]
    assert crashed["status"] == "Failed", crashed
    assert "unlabelled.csv" in crashed["failure"] and "label" in crashed["failure"], crashed
    new = cloud.deliveries[seen:]
    [promoted] = [
        d
        for d in deliveries_of(new, PROMOTE, "SageMaker Training Job State Change")
        if job_of_delivery(d) == crashed["name"]
    ]
    assert promoted["status"] == "succeeded"
    assert promoted["result"]["status"] == "training-failed", promoted["result"]
    assert crashed["failure"] in promoted["result"]["reason"]
    [alert] = _messages(target, alerts)
    assert crashed["name"] in alert and "Failed" in alert
    # the champion is untouched: same endpoint config and model, no new package
    assert (ops.endpoint(target), endpoint_model_data(target)) == champion_before
    assert ops.packages(target) == packages_before

    # ingesting the same file again is refused; the raw object is never overwritten
    s3, raw = target.client("s3"), target.output("rawBucket")
    key = uri.removeprefix(f"s3://{raw}/")
    before = s3.head_object(Bucket=raw, Key=key)
    with pytest.raises(ops.OpsError, match="already exists; raw data is never overwritten"):
        ops.ingest(target, [path], "2026-11-04")
    versions = s3.list_object_versions(Bucket=raw, Prefix=key)["Versions"]
    assert [v["VersionId"] for v in versions] == [before["VersionId"]]
    assert s3.head_object(Bucket=raw, Key=key)["ETag"] == before["ETag"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["notes.txt", "data.json", "missing.csv"])
def test_only_existing_csv_or_parquet_files_are_ingested(
    loop: Loop, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    if name != "missing.csv":
        path.write_text("amount,label\n1,0\n")
    listed_before = _raw_keys(loop.target)

    with pytest.raises(ops.OpsError, match=r"only \.csv and \.parquet|no such file"):
        ops.ingest(loop.target, [path], "2026-11-04")

    assert _raw_keys(loop.target) == listed_before


def _raw_keys(target: Target) -> list[str]:
    listed = target.client("s3").list_objects_v2(Bucket=target.output("rawBucket"))
    return sorted(o["Key"] for o in listed.get("Contents", []))


def _subscribe_queue(target: Target, name: str) -> str:
    sqs = target.client("sqs")
    url = str(sqs.create_queue(QueueName=name)["QueueUrl"])
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    target.client("sns").subscribe(
        TopicArn=target.output("alertTopicArn"), Protocol="sqs", Endpoint=arn
    )
    return url


def _messages(target: Target, url: str) -> list[str]:
    received = target.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )
    return [m["Body"] for m in received.get("Messages", [])]
