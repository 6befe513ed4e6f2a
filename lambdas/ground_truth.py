"""Ground-truth labels in SageMaker Model Monitor's format, written and read. Pure.

One JSON record a line, under ``ground-truth/YYYY/MM/DD/HH/<file>.jsonl`` of the raw
bucket (the hour the labels were uploaded, UTC)::

    {"groundTruthData": {"data": "<label>", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}

``eventId`` is the ``InferenceId`` the prediction was made with (the capture record's
``eventMetadata.inferenceId``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime

from lambdas import constants as c

MAX_INFERENCE_ID = 64  # InvokeEndpoint's InferenceId: 1-64 printable characters


def is_inference_id(value: str) -> bool:
    """Whether ``value`` is what SageMaker accepts as an ``InferenceId``."""
    return 1 <= len(value) <= MAX_INFERENCE_ID and not value[0].isspace() and value.isprintable()


def ground_truth_key(when: datetime, name: str) -> str:
    """The object key of a label file uploaded at ``when`` (UTC)."""
    return f"{c.GROUND_TRUTH_PREFIX}{when.strftime('%Y/%m/%d/%H')}/{name}.jsonl"


def ground_truth_record(inference_id: str, label: str) -> str:
    """One line of a ground-truth file."""
    return json.dumps(
        {
            "groundTruthData": {"data": label, "encoding": "CSV"},
            "eventMetadata": {"eventId": inference_id},
            "eventVersion": "0",
        }
    )


@dataclass
class Labels:
    """Labels read from ground-truth files: the last one per inference ID wins."""

    by_id: dict[str, str] = field(default_factory=dict)
    key_of: dict[str, str] = field(default_factory=dict)  # the file each kept label came from
    last_key: str | None = None  # the last file read
    records: int = 0  # well-formed records read
    duplicates: int = 0  # records for an ID already labelled (the later one kept)
    malformed: list[str] = field(default_factory=list)  # "<key> line <n>: <why>"

    def add(self, key: str, text: str) -> None:
        """Read one file's records, in file order (call in key order: last wins)."""
        self.last_key = key
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                inference_id, label = parse_record(line)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                self.malformed.append(f"{key} line {number}: {exc}")
                continue
            self.records += 1
            if inference_id in self.by_id:
                self.duplicates += 1
            self.by_id[inference_id] = label
            self.key_of[inference_id] = key


def parse_record(line: str) -> tuple[str, str]:
    """``(inference id, label)`` of one ground-truth line; ``ValueError`` says what is wrong."""
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    event_id = (record.get("eventMetadata") or {}).get("eventId")
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("no eventMetadata.eventId")
    truth = record.get("groundTruthData")
    if not isinstance(truth, dict) or "data" not in truth:
        raise ValueError("no groundTruthData.data")
    data, encoding = truth["data"], str(truth.get("encoding", "CSV")).upper()
    if encoding == "BASE64":
        data = base64.b64decode(str(data)).decode("utf-8")
    elif encoding == "JSON" and not isinstance(data, str):
        data = json.dumps(data)
    elif encoding not in ("CSV", "JSON"):
        raise ValueError(f"unknown encoding {encoding!r}")
    label = str(data).strip()
    if not label:
        raise ValueError("empty label")
    return event_id, label
