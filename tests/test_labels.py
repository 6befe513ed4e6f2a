"""The client side of ground truth: rows split with their IDs, label files checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.labels import LabelError, read_labels, split_rows


def test_rows_without_an_id_column_get_ids_made_later() -> None:
    lines, ids = split_rows("1,2\n\n3,4\n", None)

    assert (lines, ids) == (["1,2", "3,4"], [None, None])


def test_the_id_column_is_taken_out_of_the_features() -> None:
    lines, ids = split_rows('a,id,b\n1,x-1,"2,5"\n3,x-2,4\n', "id")

    assert lines == ['1,"2,5"', "3,4"]
    assert ids == ["x-1", "x-2"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("a,b\n1,2\n", "no such column"),
        ("a,id\n1,\n", r"line 2: id '' is not an inference ID"),
        ("a,id\n1," + "x" * 65 + "\n", "is not an inference ID"),
        ("a,id\n1,x\n2,x\n", "1 inference ID\\(s\\) repeat"),
    ],
)
def test_bad_ids_are_refused_with_the_line(text: str, why: str) -> None:
    with pytest.raises(LabelError, match=why):
        split_rows(text, "id")


def test_labels_need_the_header_and_both_values(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("inference_id,label\na,1\n\nb,0\n")
    assert read_labels(path) == [("a", "1"), ("b", "0")]

    path.write_text("id,label\na,1\n")
    with pytest.raises(LabelError, match="header inference_id,label"):
        read_labels(path)
    path.write_text("inference_id,label\na,1\nb,\n,1\n")
    with pytest.raises(LabelError, match="2 bad line\\(s\\), nothing uploaded: line 3"):
        read_labels(path)
    with pytest.raises(LabelError, match="no such file"):
        read_labels(tmp_path / "missing.csv")
