"""Files the local cloud keeps in its state directory, and the shared error type.

Layout of ``<state_dir>`` (``.mlops`` by default):

- ``local.json``      the running process: endpoint_url, port, pid, started_at
- ``localcloud.log``  the background process's own log
- ``events.jsonl``    one line per Lambda delivery made by the event router
- ``jobs/<job>.log``  stdout+stderr of each training job run by the job runner
- ``models/``         model tarballs unpacked for the local endpoint
- ``work/``           running training jobs' workspaces (emptied at start)
- ``snapshot/``       the persisted cloud (:mod:`mlops.localcloud.snapshot`)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops.errors import MlopsError

INFO_FILE = "local.json"
LOG_FILE = "localcloud.log"
EVENTS_FILE = "events.jsonl"
JOBS_DIR = "jobs"
MODELS_DIR = "models"
WORK_DIR = "work"

DEFAULT_PORT = 5000
HOST = "127.0.0.1"
CONTROL_PREFIX = "/_localcloud/"

# Fake credentials every local client uses; moto maps them to account 123456789012.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
FAKE_KEYS = (FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"], FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
DEFAULT_REGION = "us-east-1"


class LocalCloudError(MlopsError, RuntimeError):
    """The local cloud could not be started, reached or asked to do something."""


@dataclass(frozen=True)
class LocalCloudInfo:
    """Where a running local cloud listens (the content of ``local.json``)."""

    endpoint_url: str
    port: int
    pid: int
    started_at: str
    state_dir: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LocalCloudInfo:
        return cls(
            endpoint_url=str(data["endpoint_url"]),
            port=int(data["port"]),
            pid=int(data["pid"]),
            started_at=str(data["started_at"]),
            state_dir=str(data.get("state_dir", "")),
        )


def info_path(state_dir: Path) -> Path:
    return Path(state_dir) / INFO_FILE


def read_info(state_dir: Path) -> LocalCloudInfo | None:
    """The recorded info, or None when there is no (readable) ``local.json``."""
    path = info_path(state_dir)
    try:
        return LocalCloudInfo.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_info(state_dir: Path, info: LocalCloudInfo) -> None:
    path = info_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(info.to_json() + "\n")
    os.replace(tmp, path)


def remove_info(state_dir: Path, pid: int | None = None) -> None:
    """Delete ``local.json`` (only if it still names ``pid``, when given)."""
    path = info_path(state_dir)
    if pid is not None:
        current = read_info(state_dir)
        if current is not None and current.pid != pid:
            return
    path.unlink(missing_ok=True)


def read_deliveries(state_dir: Path) -> list[dict[str, Any]]:
    """The delivery log written by the event router (``events.jsonl``)."""
    path = Path(state_dir) / EVENTS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a crash
    return records
