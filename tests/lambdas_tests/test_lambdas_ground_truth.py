"""Ground-truth records: written in Model Monitor's format, read back with bad lines counted."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from lambdas.ground_truth import Labels, ground_truth_key, ground_truth_record, parse_record


def test_records_round_trip_in_model_monitor_format() -> None:
    line = ground_truth_record("id-1", "1")

    assert json.loads(line) == {
        "groundTruthData": {"data": "1", "encoding": "CSV"},
        "eventMetadata": {"eventId": "id-1"},
        "eventVersion": "0",
    }
    assert parse_record(line) == ("id-1", "1")
    when = datetime(2026, 3, 4, 5, 59, tzinfo=UTC)
    assert ground_truth_key(when, "f") == "ground-truth/2026/03/04/05/f.jsonl"


def test_base64_and_json_encodings_are_read() -> None:
    b64 = {
        "groundTruthData": {"data": base64.b64encode(b"0").decode(), "encoding": "BASE64"},
        "eventMetadata": {"eventId": "a"},
    }
    as_json = {
        "groundTruthData": {"data": 1, "encoding": "JSON"},
        "eventMetadata": {"eventId": "b"},
    }

    assert parse_record(json.dumps(b64)) == ("a", "0")
    assert parse_record(json.dumps(as_json)) == ("b", "1")


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("not json", "Expecting value"),
        ("[1]", "not a JSON object"),
        ('{"groundTruthData": {"data": "1"}}', "no eventMetadata.eventId"),
        ('{"eventMetadata": {"eventId": "x"}}', "no groundTruthData.data"),
        ('{"groundTruthData": {"data": " "}, "eventMetadata": {"eventId": "x"}}', "empty label"),
        (
            '{"groundTruthData": {"data": "1", "encoding": "XML"}, '
            '"eventMetadata": {"eventId": "x"}}',
            "unknown encoding",
        ),
    ],
)
def test_malformed_records_say_why(line: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_record(line)


def test_last_label_wins_and_duplicates_and_bad_lines_are_counted() -> None:
    labels = Labels()
    labels.add(
        "k1", "\n".join([ground_truth_record("a", "0"), "garbage", ground_truth_record("b", "1")])
    )
    labels.add("k2", ground_truth_record("a", "1") + "\n\n")

    assert labels.by_id == {"a": "1", "b": "1"}
    assert (labels.records, labels.duplicates) == (3, 1)
    assert len(labels.malformed) == 1 and labels.malformed[0].startswith("k1 line 2: ")
