"""A person approves a held model, end to end in the local cloud (slow).

The local stack with ``MLOPS_APPROVAL_MODE=manual`` on its promote function (what
``mlops:approvalMode: manual`` sets, as in prod): day 1 trains, the gate holds the model,
nothing serves. ``mlops approve 1`` updates the registry; the local cloud emits SageMaker's
Model Package State Change, the stack's rule delivers it to promote, which verifies and
deploys; ``mlops status`` shows the rollout's end and the reference set is frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import deliveries_of
from test_cli import run, text

from lambdas import constants as c
from mlops import datasets, ops
from mlops.deploy.stack import deploy
from mlops.localcloud.server import LocalCloud
from mlops.target import Target, from_outputs

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, Target]]:
    root = tmp_path_factory.mktemp("approval")
    with LocalCloud(port=0, state_dir=root / "cloud", repo_root=REPO_ROOT) as cloud:
        deployed = deploy("local", cloud.endpoint_url, root / "cloud", REPO_ROOT)
        target = from_outputs("local", deployed.outputs, cloud.endpoint_url)
        functions = target.client("lambda")
        name = target.output("promoteFunctionName")
        env = functions.get_function_configuration(FunctionName=name)["Environment"]
        variables = {**env["Variables"], c.APPROVAL_MODE: "manual"}
        functions.update_function_configuration(
            FunctionName=name, Environment={"Variables": variables}
        )
        day1 = datasets.transactions(3000, seed=21)
        ops.ingest(target, [datasets.write_csv(day1, root / "day1.csv")], "2026-11-01")
        assert cloud.wait_idle(240)
        yield cloud, target


def _cli(monkeypatch: pytest.MonkeyPatch, target: Target, *args: str) -> Any:
    for module in ("approve", "card", "model"):
        monkeypatch.setattr(f"mlops.cli.{module}.target_for", lambda stack, state_dir: target)
    return run(*args)


@pytest.mark.slow
def test_a_held_model_serves_once_a_person_approves_it(
    held: tuple[LocalCloud, Target], monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud, target = held
    [package] = ops.packages(target)
    assert package["status"] == "PendingManualApproval", package
    assert "mlops:approvalMode is manual" in package["description"]
    assert ops.endpoint(target) is None
    seen = len(cloud.deliveries)

    approved = _cli(monkeypatch, target, "approve", "1", "--reason", "checked the card")
    assert approved.exit_code == 0, text(approved)
    assert cloud.wait_idle(240)

    [delivery] = deliveries_of(
        cloud.deliveries[seen:], "promote", "SageMaker Model Package State Change"
    )
    assert delivery["result"]["status"] == "deployed", delivery["result"]
    endpoint = ops.endpoint(target)
    assert endpoint is not None and endpoint["status"] == "InService", endpoint
    [package] = ops.packages(target)
    assert (package["status"], package["deployment"]) == ("Approved", "in-service")
    described = target.client("sagemaker").describe_model_package(ModelPackageName=package["arn"])
    assert described["ApprovalDescription"].endswith("via mlops: checked the card")
    status = text(_cli(monkeypatch, target, "status"))
    assert "in-service" in status
    shown = text(_cli(monkeypatch, target, "reference", "show"))
    assert "promote (first approved model)" in shown
    card = text(_cli(monkeypatch, target, "card", "1"))
    assert "checked the card" in card
