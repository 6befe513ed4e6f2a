"""The background process: start / status / stop and the control API."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud_helpers import client, deploy_function, deploy_rule, read_records, write_recorder

import mlops.localcloud as localcloud
from mlops.localcloud import LocalCloud, LocalCloudError, LocalCloudInfo
from mlops.localcloud import client as control
from mlops.localcloud.process import free_port
from mlops.localcloud.state import write_info


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / ".mlops"
    yield folder
    localcloud.stop(folder)  # never leave a process behind


@pytest.mark.slow
def test_start_status_stop(state_dir: Path, tmp_path: Path) -> None:
    handler = write_recorder(tmp_path)
    records = tmp_path / "records.jsonl"

    info = localcloud.start(state_dir, port=0, repo_root=tmp_path)

    assert localcloud.status(state_dir) == info
    assert json.loads((state_dir / "local.json").read_text())["endpoint_url"] == info.endpoint_url
    assert localcloud.start(state_dir, port=0) == info  # already running: the same one
    # the CLI's view: boto3 against the process, then the control API
    arn = deploy_function(info, "recorder", handler, {"RECORD_FILE": str(records)})
    deploy_rule(info, "nightly", arn, schedule="rate(1 day)")
    assert control.fire_schedule(info, "nightly") == 1
    assert control.wait_idle(info, timeout=30)
    [delivery] = control.deliveries(info)
    assert delivery["status"] == "succeeded"
    assert read_records(records)[0]["event"]["detail-type"] == "Scheduled Event"
    assert control.status(info)["deliveries"] == 1
    with pytest.raises(LocalCloudError, match="no schedule rule"):
        control.fire_schedule(info, "missing")

    assert localcloud.stop(state_dir) is True

    assert localcloud.status(state_dir) is None
    assert not (state_dir / "local.json").exists()
    assert control.health(info) is None
    assert localcloud.stop(state_dir) is False


def test_start_on_a_taken_port_fails_clearly(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(LocalCloudError, match=f"port {port} is already in use"):
            localcloud.start(state_dir, port=port)


def test_in_process_cloud_on_a_taken_port_fails_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(LocalCloudError, match=f"port {port} is already in use"):
            LocalCloud(port).start()

    with LocalCloud(0) as cloud:  # and the failed one left nothing behind
        assert client(cloud, "s3").list_buckets()["Buckets"] == []


def test_stale_record_is_cleaned(state_dir: Path) -> None:
    dead = LocalCloudInfo(
        endpoint_url="http://127.0.0.1:1",
        port=1,
        pid=_dead_pid(),
        started_at="2024-01-01T00:00:00Z",
    )
    write_info(state_dir, dead)

    assert localcloud.status(state_dir) is None
    assert not (state_dir / "local.json").exists()


def test_only_one_in_process_cloud_at_a_time() -> None:
    with LocalCloud(0), pytest.raises(LocalCloudError, match="already runs in this process"):
        LocalCloud(0).start()


def test_control_api_in_process(tmp_path: Path) -> None:
    with LocalCloud(0, state_dir=tmp_path) as cloud:
        assert control.health(cloud.endpoint_url)["ok"] is True
        assert control.wait_idle(cloud.endpoint_url, timeout=5) is True
        assert control.deliveries(cloud.endpoint_url) == []
        assert control.status(cloud.endpoint_url)["endpoint_url"] == cloud.endpoint_url


def _dead_pid() -> int:
    pid = free_port() + 4_000_000  # above any pid_max: surely not running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid
