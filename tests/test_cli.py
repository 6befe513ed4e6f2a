"""The `mlops` command (typer's CliRunner on `mlops.cli.app`): answers and clear errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner, Result

import mlops.localcloud as localcloud
from mlops import cli
from mlops import demo as demo_module
from mlops.localcloud.process import free_port

runner = CliRunner()


def run(*args: str) -> Result:
    return runner.invoke(cli.app, list(args))


def text(result: Result) -> str:
    """stdout and stderr as one line: rich wraps long messages at the terminal width."""
    return " ".join(f"{result.stdout} {result.stderr}".split())


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty state folder, a scratch cwd (preview builds under .mlops/), no Pulumi CLI."""
    monkeypatch.chdir(tmp_path)
    # as on a machine without the Pulumi CLI, whatever this one has
    monkeypatch.setattr("mlops.target.shutil.which", lambda name: None)
    folder = tmp_path / "state"
    yield folder
    localcloud.stop(folder)  # never leave a process behind


# --- preview ------------------------------------------------------------------------------


def test_preview_prints_the_tree_facts_and_policy_verdict(state_dir: Path) -> None:
    result = run("preview", "--stack", "dev")

    assert result.exit_code == 0, text(result)
    out = text(result)
    assert "policy pack: all rules pass" in out
    assert "129 resources" in out
    assert "key security properties" in out
    assert "aws:s3/bucket:Bucket" in out


def test_preview_of_an_unknown_stack_names_it(state_dir: Path) -> None:
    result = run("preview", "--stack", "nope")

    assert result.exit_code != 0
    assert "unknown stack 'nope'" in text(result)
    assert "available stacks: dev, local, prod" in text(result)


# --- deploys without a cloud ----------------------------------------------------------------


def test_up_without_local_prints_the_pulumi_way(state_dir: Path) -> None:
    result = run("up", "--stack", "prod")

    assert result.exit_code == 0
    assert "pulumi stack select prod" in text(result)
    assert "pulumi up" in text(result)
    assert not state_dir.exists(), "`up` without --local must not touch local state"


@pytest.mark.parametrize("command", [["up", "--local"], ["down"], ["local", "wait"]])
def test_commands_needing_a_local_cloud_say_how_to_start_one(
    state_dir: Path, command: list[str]
) -> None:
    result = run(*command, "--state-dir", str(state_dir))

    assert result.exit_code == 1
    assert "no local cloud running" in text(result)
    if command[0] != "down":
        assert "mlops local start" in text(result)


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["ingest", "data.csv"],
        ["train"],
        ["drift"],
        ["promote", "some-job"],
        ["report", "some-job"],
        ["predict", "rows.csv"],
    ],
)
def test_commands_with_nothing_deployed_fail_clearly(state_dir: Path, command: list[str]) -> None:
    Path("data.csv").write_text("amount,label\n1,0\n")
    Path("rows.csv").write_text("1,2,3,4,5,6,7\n")

    result = run(*command, "--state-dir", str(state_dir))

    assert result.exit_code == 1, text(result)
    assert "is not deployed locally and the Pulumi CLI is not installed" in text(result)
    assert "mlops local start" in text(result) and "mlops up --local" in text(result)
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_deploy_whose_local_cloud_is_gone_says_so(state_dir: Path) -> None:
    stacks = state_dir / "stacks"
    stacks.mkdir(parents=True)
    (stacks / "local.json").write_text('{"resources": {}, "outputs": {"region": "us-east-1"}}')

    result = run("status", "--state-dir", str(state_dir))

    assert result.exit_code == 1
    assert "deployed to a local cloud that is not running" in text(result)


def test_serve_a_missing_path_fails_clearly(state_dir: Path) -> None:
    result = run("serve", "no/such/model", "--state-dir", str(state_dir))

    assert result.exit_code == 1
    assert "no such model folder or archive: no/such/model" in text(result)


def test_serve_an_unknown_job_says_how_to_reach_one(state_dir: Path) -> None:
    result = run("serve", "some-job", "--state-dir", str(state_dir))

    assert result.exit_code == 1
    assert "'some-job' is neither a path nor a finished job" in text(result)
    assert "mlops local start" in text(result)


# --- the local cloud ---------------------------------------------------------------------------


def test_local_status_and_stop_with_nothing_running(state_dir: Path) -> None:
    status = run("local", "status", "--state-dir", str(state_dir))
    stop = run("local", "stop", "--state-dir", str(state_dir))

    assert status.exit_code == 1 and "mlops local start" in text(status)
    assert stop.exit_code == 0 and "no local cloud was running" in text(stop)


def test_local_start_on_a_taken_port_fails_clearly(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run("local", "start", "--port", str(port), "--state-dir", str(state_dir))

    assert result.exit_code == 1
    assert f"port {port} is already in use" in text(result)
    assert localcloud.status(state_dir) is None


@pytest.mark.slow
def test_local_round_trip_deploy_ingest_and_stop(state_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    opts = ("--state-dir", str(state_dir))

    started = run("local", "start", "--port", str(port), *opts)
    assert started.exit_code == 0, text(started)
    assert f"http://127.0.0.1:{port}" in text(started)
    status = run("local", "status", *opts)
    assert status.exit_code == 0 and f"http://127.0.0.1:{port}" in text(status)

    up = run("up", "--local", *opts)
    assert up.exit_code == 0, text(up)
    assert "129 resources" in text(up) and "mlops-local-fraud-raw" in text(up)

    notes = tmp_path / "notes.txt"
    notes.write_text("not data")
    refused = run("ingest", str(notes), *opts)
    assert refused.exit_code == 1
    assert "only .csv and .parquet files are ingested" in text(refused)

    data = tmp_path / "day.csv"
    data.write_text("amount,hour\n1.0,2.0\n")  # no label: the job it triggers fails fast
    first = run("ingest", str(data), "--day", "2026-01-01", *opts)
    assert first.exit_code == 0, text(first)
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    bucket = "mlops-local-fraud-raw-123456789012"
    key = "incoming/2026-01-01/day.csv"
    assert f"uploaded s3://{bucket}/{key}" in text(first)
    before = s3.head_object(Bucket=bucket, Key=key)
    data.write_text("amount,hour\n9.0,9.0\n")
    second = run("ingest", str(data), "--day", "2026-01-01", *opts)
    assert second.exit_code == 1
    assert "already exists; raw data is never overwritten" in text(second)
    after = s3.head_object(Bucket=bucket, Key=key)
    assert (after["ETag"], after["VersionId"]) == (before["ETag"], before["VersionId"])
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"amount,hour\n1.0,2.0\n"

    waited = run("local", "wait", "--timeout", "120", *opts)
    assert waited.exit_code == 0 and "idle" in text(waited)
    shown = run("status", *opts)
    assert shown.exit_code == 0, text(shown)
    assert "Failed" in text(shown) and "none yet" in text(shown)

    down = run("down", *opts)
    assert down.exit_code == 0 and "stack deleted" in text(down), text(down)
    stopped = run("local", "stop", *opts)
    assert stopped.exit_code == 0 and "local cloud stopped" in text(stopped)
    assert localcloud.status(state_dir) is None
    assert run("local", "status", *opts).exit_code == 1


# --- demo --------------------------------------------------------------------------------------


def test_demo_ctrl_c_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_module, "run", interrupted)

    result = run("demo", "--rows", "100")

    assert result.exit_code == 130
    assert "interrupted; everything the demo started has been stopped" in text(result)


def test_demo_stage_failure_is_an_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise demo_module.DemoError("day 1: no endpoint after the first promotion")

    monkeypatch.setattr(demo_module, "run", failing)

    result = run("demo")

    assert result.exit_code == 1
    assert "day 1: no endpoint after the first promotion" in text(result)
