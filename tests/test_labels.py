"""The client side of ground truth: rows split with their IDs, label files checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.labels import LabelError, read_labels, split_rows


def test_rows_without_an_id_column_get_ids_made_later() -> None:
    rows = split_rows("1,2\n\n3,4\n", None)

    assert (rows.lines, rows.ids, rows.header) == (["1,2", "3,4"], [None, None], False)


def test_the_id_column_is_taken_out_of_the_features() -> None:
    rows = split_rows('a,id,b\n1,x-1,"2,5"\n3,x-2,4\n', "id")

    assert rows.lines == ['1,"2,5"', "3,4"]
    assert rows.ids == ["x-1", "x-2"]


def test_a_labelled_csv_with_a_header_loses_its_target_column_and_says_so() -> None:
    rows = split_rows("amount,label,hour\n10.5,1,3\n7,0,22\n", None, target="label")

    assert rows.lines == ["10.5,3", "7,22"]
    assert rows.dropped_target == "label" and rows.header
    # with IDs too, and a header of features only is not sent either
    both = split_rows("id,amount,label\nx-1,10.5,1\n", "id", target="label")
    assert (both.lines, both.ids, both.dropped_target) == (["10.5"], ["x-1"], "label")
    features = split_rows("amount,hour\n10.5,3\n", None, target="label")
    assert (features.lines, features.dropped_target) == (["10.5,3"], None)


def test_a_row_of_numbers_is_never_taken_for_a_header() -> None:
    rows = split_rows("1,2,0\n3,4,1\n", None, target="label")

    assert rows.lines == ["1,2,0", "3,4,1"] and not rows.header


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
