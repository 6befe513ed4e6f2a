"""A shadow rollout end to end in the local cloud (slow).

The local stack deployed with ``mlops:rolloutMode shadow``: day 1's model serves; day 2's
challenger passes the gate and goes on trial as a shadow variant beside it. Real requests
(``mlops predict``'s path, with inference IDs) reach the champion, the local endpoint
mirrors them to the shadow, captures both under their variants and publishes their
CloudWatch metrics; late labels arrive. ``mlops rollout status`` shows the numbers and
``mlops rollout check`` (what the schedule rule sends) promotes the challenger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import run, text

from lambdas import constants as c
from mlops import datasets, labels, ops
from mlops.deploy.stack import deploy
from mlops.localcloud.server import LocalCloud
from mlops.target import Target, from_outputs

REPO_ROOT = Path(__file__).resolve().parents[1]
ROWS = 2500
REQUESTS = 60
# the gate must pass day 2 whatever its luck: this test is about what happens after it
LENIENT = {c.PROMOTION_MARGIN: "-1", c.REFERENCE_TOLERANCE: "1"}


@pytest.fixture(scope="module")
def trial(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalCloud, Target, Path]]:
    root = tmp_path_factory.mktemp("rollout")
    overrides = {
        "mlops:rolloutMode": "shadow",
        "mlops:rolloutMinRequests": str(REQUESTS),
        "mlops:qualityMinRows": "20",
        # 60 labels of a 2% fraud set make a noisy live F1: no quality alarm (and retrain)
        # may start a newer challenger that would supersede the one on trial
        "mlops:qualityTolerance": "1",
        "mlops:trainingHyperparameters": '{"max-seconds": 4, "max-candidates": 3}',
    }
    with LocalCloud(port=0, state_dir=root / "cloud", repo_root=REPO_ROOT) as cloud:
        deployed = deploy(
            "local", cloud.endpoint_url, root / "cloud", REPO_ROOT, overrides=overrides
        )
        target = from_outputs("local", deployed.outputs, cloud.endpoint_url)
        functions = target.client("lambda")
        name = target.output("promoteFunctionName")
        env = functions.get_function_configuration(FunctionName=name)["Environment"]
        functions.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**env["Variables"], **LENIENT}}
        )
        for day, seed in (("2026-11-01", 31), ("2026-11-02", 32)):
            frame = datasets.transactions(ROWS, seed=seed)
            ops.ingest(target, [datasets.write_csv(frame, root / f"{day}.csv")], day)
            assert cloud.wait_idle(240)
        yield cloud, target, root


def _cli(monkeypatch: pytest.MonkeyPatch, target: Target, *args: str) -> Any:
    for module in ("rollout", "model"):
        monkeypatch.setattr(f"mlops.cli.{module}.target_for", lambda stack, state_dir: target)
    return run(*args)


@pytest.mark.slow
def test_a_shadow_challenger_is_judged_on_mirrored_traffic_and_promoted(
    trial: tuple[LocalCloud, Target, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, target, root = trial
    sm = target.client("sagemaker")
    endpoint = sm.describe_endpoint(EndpointName=target.output("endpointName"))
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    [live] = config["ProductionVariants"]
    [shadow] = config["ShadowProductionVariants"]
    assert shadow["VariantName"] == c.CHALLENGER_VARIANT_NAME
    assert live["ModelName"] != shadow["ModelName"]
    waiting = _cli(monkeypatch, target, "rollout", "check")
    assert waiting.exit_code == 0 and f"0 of {REQUESTS} requests" in text(waiting)

    traffic = datasets.transactions(REQUESTS, seed=33)
    lines = datasets.features_csv(traffic).splitlines()  # no header
    served = labels.predict_rows(target, lines, [f"req-{i}" for i in range(REQUESTS)])
    assert cloud.wait_idle(60)  # the shadow's copies answered and every capture written
    truth = traffic["label"].tolist()
    body = "inference_id,label\n" + "".join(
        f"{p.inference_id},{label}\n" for p, label in zip(served, truth, strict=True)
    )
    (root / "labels.csv").write_text(body)
    labels.upload_labels(target, root / "labels.csv")
    assert cloud.wait_idle(60)

    status = _cli(monkeypatch, target, "rollout", "status", "--json")
    assert status.exit_code == 0, text(status)
    found = json.loads(status.stdout)
    evidence = found["trial"]["evidence"]
    assert evidence["challenger"]["requests"] == REQUESTS, evidence
    assert evidence["champion"]["requests"] == REQUESTS
    assert evidence["paired"] == REQUESTS and evidence["agreement"] > 0.8, evidence
    assert evidence["challenger"]["labelled"] == REQUESTS
    assert evidence["challenger"]["latency_ms"] is not None
    assert found["trial"]["verdict"] == "promote", found
    table = text(_cli(monkeypatch, target, "rollout", "status"))
    assert "shadow trial of" in table and "agreement" in table

    challenger = shadow["ModelName"]
    judged = _cli(monkeypatch, target, "rollout", "check")
    assert judged.exit_code == 0, text(judged)
    assert "promoted after its trial" in text(judged)
    assert cloud.wait_idle(60)
    endpoint = sm.describe_endpoint(EndpointName=target.output("endpointName"))
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    assert [v["ModelName"] for v in config["ProductionVariants"]] == [challenger]
    assert "ShadowProductionVariants" not in config
    after = json.loads(_cli(monkeypatch, target, "rollout", "status", "--json").stdout)
    assert after["trial"] is None and after["last"]["verdict"] == "promoted", after
    assert after["last"]["numbers"]["requests"] == f"{REQUESTS}/{REQUESTS}"


@pytest.mark.slow
def test_a_batch_transform_with_the_champion_answers_as_its_endpoint_does(
    trial: tuple[LocalCloud, Target, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, target, _ = trial
    rows = datasets.features_csv(datasets.transactions(40, seed=34))
    bucket = target.output("artifactsBucket")
    target.client("s3").put_object(Bucket=bucket, Key="batch-in/day.csv", Body=rows.encode())
    monkeypatch.setattr("mlops.cli.serving.target_for", lambda stack, state_dir: target)

    done = run("transform", f"s3://{bucket}/batch-in/")

    assert done.exit_code == 0, text(done)
    name = text(done).split()[2]
    out = target.client("s3").get_object(Bucket=bucket, Key=f"transform/{name}/day.csv.out")
    lines = out["Body"].read().decode().splitlines()
    endpoint = [p.answer for p in labels.predict_rows(target, rows.splitlines(), [None] * 40)]
    assert len(lines) == 40
    # the same label for every row; probabilities alike but for float rounding (one
    # request of 40 rows is computed as a matrix, 40 requests row by row)
    batch = [line.split(",") for line in lines]
    single = [line.split(",") for line in endpoint]
    assert [b[0] for b in batch] == [s[0] for s in single]
    assert [float(v) for b in batch for v in b[1:]] == pytest.approx(
        [float(v) for s in single for v in s[1:]], abs=1e-9
    )
    assert cloud.wait_idle(60)
