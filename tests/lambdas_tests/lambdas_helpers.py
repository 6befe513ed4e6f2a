"""Builders and observations shared by the control-plane tests (tests/lambdas_tests/).

The fixtures (``stack``, ``lambda_context``, ``update_endpoint_standin``...) live in this
folder's ``conftest.py``; the builders and observations here are imported by name.

Everything runs in-process against moto (``mock_aws``). moto stores SageMaker jobs but
runs nothing (a job is Completed at once and writes no artifacts), so tests upload the
``model.tar.gz`` a job would have written, built here from hand-written evaluation.json
and baseline.json dicts. moto has no ``UpdateEndpoint``: :func:`update_endpoint_standin`
is the narrow stand-in the tests use for it.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from lambdas import constants as c
from lambdas.aws import Clients, client
from lambdas.config import Config

EVENTS = Path(__file__).parent / "events"
REGION = "us-east-1"
MODEL = "churn"
RAW, ARTIFACTS, CAPTURE = "mlops-raw", "mlops-artifacts", "mlops-capture"
TABLE = "mlops-idempotency"
GROUP = "churn-packages"
ENDPOINT = "churn-endpoint"
DRIFT_ALARM = "churn-drift"
FEATURES = ["age", "plan"]


def load_event(name: str) -> dict[str, Any]:
    """A sample event from tests/lambdas_tests/lambdas_tests/events/<name>.json (a fresh copy)."""
    return json.loads((EVENTS / f"{name}.json").read_text())


# --- the moto stack -----------------------------------------------------------------------------


@dataclass
class Stack:
    """What infra would have created, in moto, plus handles for assertions."""

    env: dict[str, str]
    clients: Clients
    queue_url: str
    updates: list[dict[str, Any]] = field(default_factory=list)  # update_endpoint stand-in

    @property
    def config(self) -> Config:
        return Config.from_env(self.env)

    def with_env(self, **overrides: str) -> tuple[Config, dict[str, str]]:
        env = {**self.env, **overrides}
        return Config.from_env(env), env


class _Context:
    function_name = "mlops-test"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{DEFAULT_ACCOUNT_ID}:function:mlops-test"
    aws_request_id = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# --- moto backends ------------------------------------------------------------------------------


def sagemaker_backend() -> Any:
    return get_backend("sagemaker")[DEFAULT_ACCOUNT_ID][REGION]


def set_job_status(job_name: str, status: str, reason: str | None = None) -> None:
    """Make moto report a training job in another state (moto completes jobs at once)."""
    job = sagemaker_backend().training_jobs[job_name]
    job.training_job_status = status
    if reason is not None:
        job.failure_reason = reason


def submit_job(
    stack: Stack, job_name: str, status: str = "Completed", reason: str | None = None
) -> None:
    """Create the training job in moto as retrain would, so promote can verify it."""
    from lambdas.training import build_training_request

    if job_name not in sagemaker_backend().training_jobs:
        request = build_training_request(stack.config, job_name, "0" * 64, "manual")
        stack.clients.sagemaker.create_training_job(**request)
    set_job_status(job_name, status, reason)


# --- data and artifacts -----------------------------------------------------------------------


def put_data(stack: Stack, key: str, body: str = "age,plan,label\n30,basic,0\n") -> None:
    stack.clients.s3.put_object(Bucket=RAW, Key=key, Body=body.encode())


def evaluation(
    *,
    f1: float = 0.80,
    balanced_accuracy: float = 0.82,
    minority_recall: float | None = 0.75,
    accuracy: float = 0.85,
    baseline_f1: float = 0.0,
    baseline_balanced_accuracy: float = 0.5,
    confusion_matrix: list[list[int]] | None = None,
    label_shift: float = 0.004,
    label_agreement: float = 0.9,
) -> dict[str, Any]:
    """A hand-written evaluation.json in the contract's format (binary, f1 primary).

    Its data guard passed, unless ``label_shift`` / ``label_agreement`` say otherwise.
    """
    metrics: dict[str, Any] = {
        "accuracy": accuracy,
        "balanced_accuracy": balanced_accuracy,
        "precision": f1,
        "recall": minority_recall if minority_recall is not None else f1,
        "f1": f1,
        "roc_auc": 0.9,
        "pr_auc": 0.7,
        "f1_macro": f1,
    }
    if minority_recall is not None:
        metrics["minority_recall"] = minority_recall
    return {
        "task": "binary",
        "labels": [0, 1],
        "positive_label": 1,
        "target": "label",
        "features": list(FEATURES),
        "n_train": 800,
        "n_validation": 100,
        "n_test": 100,
        "class_counts": {"0": 900, "1": 100},
        "primary_metric": "f1",
        "threshold": 0.5,
        "metrics": metrics,
        "confusion_matrix": confusion_matrix or [[85, 5], [3, 7]],
        "baseline": {
            "accuracy": 0.9,
            "balanced_accuracy": baseline_balanced_accuracy,
            "precision": 0.0,
            "recall": 0.0,
            "f1": baseline_f1,
            "roc_auc": 0.5,
            "pr_auc": 0.1,
            "f1_macro": 0.47,
            "minority_recall": 0.0,
        },
        "data_guard": data_guard(label_shift=label_shift, label_agreement=label_agreement),
    }


def data_guard(*, label_shift: float = 0.004, label_agreement: float = 0.9) -> dict[str, Any]:
    """A job's data-guard section (docs/contracts.md), checked on 500 new rows."""

    def rule(name: str, value: float, threshold: float, held: bool, severity: str = "guard"):
        return {
            "rule": name,
            "value": value,
            "threshold": threshold,
            "held": held,
            "severity": severity,
            "detail": "",
        }

    return {
        "status": "checked",
        "new_files": ["2024-05-02/day2.csv"],
        "new_rows": 500,
        "checks": [
            rule("label-shift", label_shift, 0.1, label_shift <= 0.1),
            rule("class-coverage", 0, 0, True),
            rule("schema", 0, 0, True),
            rule("label-agreement", label_agreement, 0.25, label_agreement >= 0.25),
            rule("label-learnability", 0.8, 0.25, True),
            rule("duplicates", 0.0, 0.2, True),
            rule("feature-psi", 0.4, 0.25, False, "info"),
        ],
    }


BASELINE: dict[str, Any] = {
    "target": "label",
    "feature_order": FEATURES,
    "features": {
        "age": {
            "type": "numeric",
            "edges": ["-inf", 30.0, 45.0, "inf"],
            "proportions": [0.4, 0.4, 0.2],
            "missing": 0.0,
        },
        "plan": {
            "type": "categorical",
            "categories": ["basic", "pro"],
            "proportions": [0.7, 0.3],
            "missing": 0.0,
            "other": 0.0,
        },
    },
}


def baseline() -> dict[str, Any]:
    return copy.deepcopy(BASELINE)


def model_tar(files: dict[str, bytes | dict[str, Any]]) -> bytes:
    """A model.tar.gz as SageMaker packs SM_MODEL_DIR (JSON dicts are serialised)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            data = content if isinstance(content, bytes) else json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_model_artifacts(
    stack: Stack, job_name: str, evaluation_doc: dict[str, Any] | None, baseline_doc: Any = None
) -> str:
    """Create the job and upload what it would have written; returns the model.tar.gz URI."""
    submit_job(stack, job_name)
    files: dict[str, bytes | dict[str, Any]] = {c.MODEL_FILE: b"not really a model"}
    if evaluation_doc is not None:
        files[c.EVALUATION_FILE] = evaluation_doc
    files[c.BASELINE_FILE] = baseline_doc if baseline_doc is not None else baseline()
    key = f"{c.TRAINING_PREFIX}{job_name}/output/model.tar.gz"
    stack.clients.s3.put_object(Bucket=ARTIFACTS, Key=key, Body=model_tar(files))
    return f"s3://{ARTIFACTS}/{key}"


def job_name(stamp: str = "20240501-120000", version: str = "0123abcd") -> str:
    return f"{MODEL}-{stamp}-{version}"


def training_event(name: str, status: str = "Completed", reason: str | None = None) -> dict:
    event = load_event("training_completed")
    event["detail"]["TrainingJobName"] = name
    event["detail"]["TrainingJobStatus"] = status
    event["detail"]["ModelArtifacts"]["S3ModelArtifacts"] = (
        f"s3://{ARTIFACTS}/{c.TRAINING_PREFIX}{name}/output/model.tar.gz"
    )
    if reason:
        event["detail"]["FailureReason"] = reason
    return event


# --- observations --------------------------------------------------------------------------------


def alerts(stack: Stack) -> list[dict[str, Any]]:
    """Alert-topic messages received so far (drained from the subscribed queue)."""
    sqs = client("sqs", REGION)
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return found
        for message in messages:
            envelope = json.loads(message["Body"])
            found.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])


def training_jobs(stack: Stack) -> list[str]:
    summaries = stack.clients.sagemaker.list_training_jobs()["TrainingJobSummaries"]
    return sorted(j["TrainingJobName"] for j in summaries)


def packages(stack: Stack) -> list[dict[str, Any]]:
    listed = stack.clients.sagemaker.list_model_packages(ModelPackageGroupName=GROUP)
    return [
        stack.clients.sagemaker.describe_model_package(ModelPackageName=p["ModelPackageArn"])
        for p in listed["ModelPackageSummaryList"]
    ]


def endpoint_config_name(stack: Stack) -> str | None:
    try:
        return stack.clients.sagemaker.describe_endpoint(EndpointName=ENDPOINT)[
            "EndpointConfigName"
        ]
    except stack.clients.sagemaker.exceptions.ClientError:
        return None


def s3_keys(stack: Stack, bucket: str, prefix: str = "") -> list[str]:
    listed = stack.clients.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


@contextmanager
def no_aws_client() -> Iterator[None]:
    """Fail the test if a handler makes any AWS client inside the block."""

    def refuse(self: Any, attr: str) -> Any:
        raise AssertionError(f"AWS client used for a rejected event: {attr}")

    with mock.patch.object(Clients, "_get", refuse):
        yield


def nothing_created(stack: Stack) -> bool:
    """No job, lineage, package, endpoint, alert or table item (a rejected event's effect)."""
    table_items = stack.clients.dynamodb.scan(TableName=TABLE)["Items"]
    return (
        not training_jobs(stack)
        and not s3_keys(stack, ARTIFACTS)
        and not packages(stack)
        and endpoint_config_name(stack) is None
        and not alerts(stack)
        and not table_items
    )
