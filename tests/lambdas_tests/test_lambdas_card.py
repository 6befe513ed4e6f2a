"""lambdas.card: the model card's builders (pure) and its S3 writer/reader (moto)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from lambdas_helpers import ARTIFACTS, Stack, evaluation, job_name

from lambdas import card as cards
from lambdas.card import CardError

JOB = job_name("20240501-120000", "0000000a")
ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-packages/3"
CHAMPION = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-packages/2"
GATE = [
    {"rule": "beats-baseline", "held": True, "why": "f1 0.8000 > majority-class 0.0000"},
    {"rule": "beats-champion", "held": False, "why": "does not gain the margin"},
]
APPROVAL = {
    "status": "Rejected",
    "by": "gate (auto)",
    "at": "2024-05-01T12:30:00+00:00",
    "description": "rejected: does not gain the margin",
}


def lineage(n: int = 3) -> dict[str, Any]:
    return {
        "job": JOB,
        "data_version": "ab" * 32,
        "objects": [
            {
                "bucket": "mlops-raw",
                "key": f"incoming/2024-05-01/part-{i}.csv",
                "version_id": f"v{i}",
                "etag": f'"etag{i}"',
                "size": 100 + i,
            }
            for i in range(n)
        ],
    }


def full_evaluation() -> dict[str, Any]:
    doc = evaluation(f1=0.81)
    doc["champion"] = {"metrics": {**doc["metrics"], "f1": 0.80}, "package": CHAMPION}
    doc["reference"] = {
        "metrics": {"f1": 0.79, "accuracy": 0.84},
        "champion": {"metrics": {"f1": 0.78}},
    }
    doc["data_guard"] = {
        "status": "pass",
        "reason": "all checks held",
        "checks": [
            {
                "rule": "label-shift",
                "value": 0.02,
                "threshold": 0.1,
                "held": True,
                "severity": "block",
                "detail": "positive rate 0.10 vs 0.12",
            }
        ],
    }
    return doc


def make_card(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "model_name": "churn",
        "package_arn": ARN,
        "package_version": 3,
        "job_name": JOB,
        "approval": APPROVAL,
        "evaluation": full_evaluation(),
        "gate": GATE,
        "lineage": lineage(),
        "digests": {"MLOPS_MODEL_ARCHIVE_SHA256": "a" * 64, "MLOPS_MODEL_SHA256": "b" * 64},
        "model_data_url": f"s3://{ARTIFACTS}/training/{JOB}/output/model.tar.gz",
        "created_at": "2024-05-01T12:30:00+00:00",
    }
    return cards.build_card(**{**args, **overrides})


# --- build_card -------------------------------------------------------------------------------


def test_build_card_collects_every_section() -> None:
    card = make_card()

    assert card["card_version"] == 1
    assert (card["model"], card["job"]) == ("churn", JOB)
    assert card["package"] == {"arn": ARN, "version": 3}
    assert card["approval"] == APPROVAL
    metrics = card["metrics"]
    assert metrics["primary"] == "f1"
    assert metrics["test"]["f1"] == 0.81
    assert set(metrics["test"]) == set(cards.METRIC_KEYS)  # no f1_macro, minority_recall
    assert metrics["baseline"]["balanced_accuracy"] == 0.5
    assert metrics["champion_same_split"]["f1"] == 0.80
    assert metrics["champion_package"] == CHAMPION
    assert metrics["reference"] == {"f1": 0.79, "accuracy": 0.84}
    assert metrics["reference_champion"] == {"f1": 0.78}
    assert card["data_guard"]["checks"][0]["rule"] == "label-shift"
    assert card["gate"] == GATE
    assert card["data"]["count"] == 3
    assert card["data"]["versions"][1] == {
        "bucket": "mlops-raw",
        "key": "incoming/2024-05-01/part-1.csv",
        "version_id": "v1",
        "etag": '"etag1"',
    }
    assert card["artifacts"]["sha256"]["MLOPS_MODEL_SHA256"] == "b" * 64
    json.dumps(card, allow_nan=False)  # JSON-safe


def test_missing_sections_are_null_never_invented() -> None:
    partial = make_card(evaluation={"metrics": {"f1": 0.7}}, lineage=None, digests=None)
    empty = make_card(evaluation=None)

    assert partial["metrics"]["test"] == {"f1": 0.7}
    assert partial["metrics"]["primary"] is None
    for section in ("baseline", "champion_same_split", "reference", "reference_champion"):
        assert partial["metrics"][section] is None, section
    assert partial["data_guard"] is None
    assert partial["data"] is None
    assert partial["artifacts"]["sha256"] == {}
    assert empty["metrics"] is None and empty["data_guard"] is None


def test_a_champion_that_could_not_be_scored_has_no_same_split_metrics() -> None:
    doc = evaluation()
    doc["champion"] = {"error": "SHA-256 mismatch", "package": CHAMPION}

    metrics = make_card(evaluation=doc)["metrics"]

    assert metrics["champion_same_split"] is None
    assert metrics["champion_package"] == CHAMPION


def test_the_gates_primary_metric_is_kept_even_beyond_the_standard_keys() -> None:
    card = make_card(primary_metric="f1_macro")

    assert card["metrics"]["primary"] == "f1_macro"
    assert card["metrics"]["test"]["f1_macro"] == 0.81


def test_at_most_50_objects_are_listed_but_all_are_counted() -> None:
    data = make_card(lineage=lineage(120))["data"]

    assert len(data["versions"]) == cards.MAX_LISTED_OBJECTS == 50
    assert data["count"] == 120 and data["truncated"] is True
    assert data["versions"][-1]["key"].endswith("part-49.csv")


def test_non_finite_numbers_become_null() -> None:
    doc = evaluation()
    doc["metrics"]["roc_auc"] = float("nan")

    card = make_card(evaluation=doc)

    assert card["metrics"]["test"]["roc_auc"] is None
    json.dumps(card, allow_nan=False)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"approval": {"status": "Maybe"}}, "approval status 'Maybe' is not one of Approved"),
        ({"approval": None}, "approval must be a dict"),
        ({"gate": [{"held": True}]}, r"gate\[0\] is not a \{rule, held, why\} dict"),
    ],
)
def test_bad_input_is_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(CardError, match=message):
        make_card(**overrides)


# --- apply_approval --------------------------------------------------------------------------


def test_a_later_approval_keeps_the_earlier_ones_in_order() -> None:
    card = make_card()
    human = "arn:aws:iam::123456789012:user/alice"

    once = cards.apply_approval(
        card, status="Approved", by=human, at="2024-05-02T09:00:00+00:00", description="ok"
    )
    twice = cards.apply_approval(once, status="Rejected", by=human, at="2024-05-03T09:00:00Z")

    assert once["approval"]["status"] == "Approved" and once["approval"]["by"] == human
    assert once["approval_history"] == [APPROVAL]
    assert twice["approval"]["status"] == "Rejected"
    assert [a["status"] for a in twice["approval_history"]] == ["Rejected", "Approved"]
    assert card["approval"] == APPROVAL and "approval_history" not in card  # not mutated
    with pytest.raises(CardError, match="'Later'"):
        cards.apply_approval(card, status="Later", by=human, at="now")


# --- render_card_html -------------------------------------------------------------------------


def test_html_escapes_everything_from_data() -> None:
    doc = full_evaluation()
    doc["data_guard"]["reason"] = "<script>alert('reason')</script>"
    card = make_card(
        job_name="<script>alert('job')</script>",
        evaluation=doc,
        gate=[{"rule": "r<u>", "held": True, "why": "<img src=x onerror=alert(1)>"}],
    )

    page = cards.render_card_html(card)

    assert "<script>" not in page and "<img" not in page and "<u>" not in page
    assert "&lt;script&gt;alert(&#x27;job&#x27;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#x27;reason&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_html_has_every_section() -> None:
    page = cards.render_card_html(make_card())

    assert page.startswith("<!doctype html>") and "<style>" in page
    assert "http" not in page.replace("s3://", "")  # self-contained: nothing fetched
    for heading in ("Metrics", "Gate", "Data guard", "Data versions", "Artifacts"):
        assert f"<h2>{heading}</h2>" in page
    assert "champion (same split)" in page and "0.8100" in page and "0.7800" in page
    assert "✓" in page and "✗" in page
    assert "incoming/2024-05-01/part-2.csv" in page
    assert "Rejected" in page and "gate (auto)" in page


def test_html_of_a_card_without_sections_says_so() -> None:
    card = make_card(evaluation=None, lineage=None, gate=[])

    page = cards.render_card_html(card)

    assert "no metrics recorded" in page
    assert "no gate rules recorded" in page
    assert "no data guard recorded" in page
    assert "no lineage recorded" in page


# --- write_card / read_card (moto) ---------------------------------------------------------------


def test_write_card_then_read_it_back(stack: Stack) -> None:
    card = make_card()
    key_arn = stack.config.kms_key_arn

    uris = cards.write_card(stack.clients.s3, ARTIFACTS, f"models/{JOB}/", card, key_arn)

    assert uris == {
        "json": f"s3://{ARTIFACTS}/models/{JOB}/card.json",
        "html": f"s3://{ARTIFACTS}/models/{JOB}/card.html",
    }
    assert cards.read_card(stack.clients.s3, uris["json"]) == card
    for name, content_type in (("card.json", "application/json"), ("card.html", "text/html")):
        head = stack.clients.s3.head_object(Bucket=ARTIFACTS, Key=f"models/{JOB}/{name}")
        assert head["ContentType"].startswith(content_type)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"] == key_arn
    page = stack.clients.s3.get_object(Bucket=ARTIFACTS, Key=f"models/{JOB}/card.html")
    assert page["Body"].read().decode() == cards.render_card_html(card)


def test_write_card_refuses_a_prefix_that_is_not_a_folder(stack: Stack) -> None:
    with pytest.raises(CardError, match="must end with '/'"):
        cards.write_card(stack.clients.s3, ARTIFACTS, f"models/{JOB}", make_card(), None)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "no model card at s3://mlops-artifacts/models/x/card.json"),
        (b"<html>", "s3://mlops-artifacts/models/x/card.json is not a model card: not JSON"),
        (b'{"a": 1}', "s3://mlops-artifacts/models/x/card.json is not a model card"),
        (b'{"card_version": 9, "approval": {}}', "is a version 9 card"),
    ],
)
def test_read_card_names_the_uri_of_what_is_wrong(
    stack: Stack, body: bytes | None, message: str
) -> None:
    if body is not None:
        stack.clients.s3.put_object(Bucket=ARTIFACTS, Key="models/x/card.json", Body=body)

    with pytest.raises(CardError, match=message):
        cards.read_card(stack.clients.s3, f"s3://{ARTIFACTS}/models/x/card.json")


def test_read_card_of_a_bad_uri() -> None:
    with pytest.raises(CardError, match=re.escape("model card URI 'models/x/card.json'")):
        cards.read_card(None, "models/x/card.json")
