"""Targets, the seeded dataset and the operator's functions that need no cloud.

The operator's commands against a running cloud are in test_demo.py (the whole loop and
its faults) and test_cli.py (the background process).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lambdas.aws import Clients
from mlops import datasets, ops, target
from mlops.localcloud.state import FAKE_KEYS, LocalCloudInfo
from mlops.target import Target, TargetError, connect, from_outputs

OUTPUTS: dict[str, Any] = {
    "region": "eu-west-1",
    "rawBucket": "raw",
    "lambdaEnvironment": {"MLOPS_MODEL_NAME": "fraud-dev", "MLOPS_DRIFT_THRESHOLD": 0.2},
}


# --- targets ------------------------------------------------------------------------------


def test_local_target_environment_reaches_the_local_cloud() -> None:
    local = from_outputs("local", OUTPUTS, "http://127.0.0.1:5000")

    env = local.environ()

    assert local.is_local and local.region == "eu-west-1"
    assert env["MLOPS_MODEL_NAME"] == "fraud-dev"
    assert env["MLOPS_DRIFT_THRESHOLD"] == "0.2"  # the Lambdas' environment holds strings
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert local.client("s3").meta.endpoint_url == "http://127.0.0.1:5000"
    assert local.client("s3") is local.client("s3")


def test_aws_target_has_no_endpoint_override() -> None:
    aws = from_outputs("prod", OUTPUTS, None)

    assert not aws.is_local
    assert "AWS_ENDPOINT_URL" not in aws.environ()


def test_missing_output_says_redeploy() -> None:
    with pytest.raises(TargetError, match="stack 'dev' has no output 'nope'; redeploy it"):
        from_outputs("dev", OUTPUTS, None).output("nope")


def _state_file(state_dir: Path, outputs: dict[str, Any]) -> None:
    stacks = state_dir / "stacks"
    stacks.mkdir(parents=True)
    (stacks / "local.json").write_text(json.dumps({"resources": {}, "outputs": outputs}))


def _running(monkeypatch: pytest.MonkeyPatch) -> LocalCloudInfo:
    info = LocalCloudInfo(
        endpoint_url="http://127.0.0.1:5999", port=5999, pid=1, started_at="2026-01-01T00:00:00Z"
    )
    monkeypatch.setattr(target.localcloud, "status", lambda state_dir: info)
    return info


def test_connect_to_a_local_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = _running(monkeypatch)
    _state_file(tmp_path, OUTPUTS)

    found = connect("local", tmp_path)

    assert found == Target("local", OUTPUTS, info.endpoint_url, "eu-west-1")


def test_connect_to_an_unfinished_local_deploy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _running(monkeypatch)
    _state_file(tmp_path, {})

    with pytest.raises(TargetError, match="did not finish: rerun `mlops up`"):
        connect("local", tmp_path)


def _fake_pulumi(folder: Path, script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = folder / "pulumi"
    exe.write_text(f"#!/bin/sh\n{script}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_connect_to_aws_reads_the_pulumi_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the fake CLI echoes its arguments back as an output, so they can be checked
    _fake_pulumi(
        tmp_path,
        'printf \'{"region": "eu-central-1", "rawBucket": "b", "argv": "%s"}\' "$*"',
        monkeypatch,
    )

    found = connect("prod", tmp_path / "state")

    assert found.endpoint_url is None and found.region == "eu-central-1"
    assert found.output("rawBucket") == "b"
    assert found.output("argv") == "stack output --json --show-secrets -s prod"


def test_connect_when_pulumi_fails_shows_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_pulumi(tmp_path, "echo 'error: no stack named prod' >&2; exit 255", monkeypatch)

    with pytest.raises(TargetError, match=r"`pulumi stack output -s prod` failed: error: no st"):
        connect("prod", tmp_path / "state")


# --- ops without a cloud ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rows.txt", "rows.csv.gz", "rows"])
def test_ingest_refuses_other_files_before_any_call(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("amount,label\n1,0\n")
    nowhere = from_outputs("local", OUTPUTS, "http://127.0.0.1:1")  # any call would fail

    with pytest.raises(ops.OpsError, match=r"only \.csv and \.parquet files are ingested"):
        ops.ingest(nowhere, [path])


def test_ingest_of_a_missing_file(tmp_path: Path) -> None:
    nowhere = from_outputs("local", OUTPUTS, "http://127.0.0.1:1")

    with pytest.raises(ops.OpsError, match="no such file"):
        ops.ingest(nowhere, [tmp_path / "gone.csv"])


def test_archive_member_lookup() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b'{"metrics": {}}'
        info = tarfile.TarInfo("nested/evaluation.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    assert ops._member(buffer.getvalue(), "evaluation.json") == data
    with pytest.raises(ops.OpsError, match=r"report\.html is not in the archive"):
        ops._member(buffer.getvalue(), "report.html")


# --- the seeded dataset --------------------------------------------------------------------------


def test_transactions_are_seeded_and_imbalanced() -> None:
    day = datasets.transactions(5000, fraud_rate=0.02, seed=7)

    assert day.equals(datasets.transactions(5000, fraud_rate=0.02, seed=7))
    assert not day.equals(datasets.transactions(5000, fraud_rate=0.02, seed=8))
    assert list(day.columns) == [*datasets.FEATURES, "label"]
    assert 0.01 < day["label"].mean() < 0.03
    assert len(day) > 5000, "resent rows are part of a real feed"
    assert day["merchant_risk"].isna().any(), "so are gaps"


def test_shift_moves_the_features() -> None:
    base = datasets.transactions(5000, seed=1)
    shifted = datasets.transactions(5000, shift=1.0, seed=1)

    assert shifted["distance_km"].median() > 2 * base["distance_km"].median()
    assert shifted["foreign"].mean() > base["foreign"].mean() + 0.2
    assert abs(shifted["card_age_days"].median() / base["card_age_days"].median() - 1) < 0.1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rows": 0}, "rows must be positive"),
        ({"rows": 10, "fraud_rate": 0.0}, "fraud_rate must be in"),
        ({"rows": 10, "fraud_rate": 0.5}, "fraud_rate must be in"),
    ],
)
def test_transactions_validate_arguments(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        datasets.transactions(**kwargs)  # type: ignore[arg-type]


def test_features_csv_is_what_the_endpoint_takes(tmp_path: Path) -> None:
    rows = datasets.transactions(4, seed=2).head(3)

    lines = datasets.features_csv(rows).strip().splitlines()

    assert len(lines) == 3
    assert all(len(line.split(",")) == len(datasets.FEATURES) for line in lines)
    assert "label" not in lines[0] and "amount" not in lines[0]
    path = datasets.write_csv(rows, tmp_path / "sub" / "rows.csv")
    assert pd.read_csv(path).shape == (3, len(datasets.FEATURES) + 1)


def test_control_plane_commands_work_in_a_shell_without_aws_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A newcomer's shell has no AWS keys: the handlers' clients must still reach the
    local cloud, signed with its fake credentials rather than the default chain."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    local = from_outputs("local", {"region": "us-east-1"}, "http://127.0.0.1:1")

    clients = ops._clients(local)

    assert {"s3", "sagemaker", "dynamodb", "sns", "cloudwatch", "autoscaling"} <= set(
        Clients.SERVICES
    )
    for attr in Clients.SERVICES:  # every client a handler has (hosts, sqs: EC2 backend)
        credentials = getattr(clients, attr)._request_signer._credentials
        assert credentials is not None and credentials.access_key == FAKE_KEYS[0], attr
        assert getattr(clients, attr).meta.endpoint_url == "http://127.0.0.1:1", attr
