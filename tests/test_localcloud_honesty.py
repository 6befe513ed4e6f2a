"""Nothing pretends: unexecuted SageMaker calls are refused, role checks are evaluated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localcloud_helpers import ACCOUNT, client

from mlops.localcloud import LocalCloud
from mlops.localcloud.honesty import NOT_RUN

ROLE = f"arn:aws:iam::{ACCOUNT}:role/jobs/trainer"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state") as running:
        yield running


REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "CreateCompilationJob": (
        "create_compilation_job",
        {
            "CompilationJobName": "c",
            "RoleArn": ROLE,
            "OutputConfig": {"S3OutputLocation": "s3://b/out", "TargetDevice": "ml_m5"},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        },
    ),
    "StartPipelineExecution": ("start_pipeline_execution", {"PipelineName": "p"}),
}


@pytest.mark.parametrize("call", sorted(REQUESTS))
def test_calls_that_would_only_be_recorded_are_refused_by_name(
    cloud: LocalCloud, call: str
) -> None:
    method, request = REQUESTS[call]
    with pytest.raises(ClientError) as raised:
        getattr(client(cloud, "sagemaker"), method)(**request)
    error = raised.value.response["Error"]
    assert error["Code"] == "UnsupportedOperation"
    assert error["Message"].startswith(f"{call} is not run by the local cloud")
    # and nothing was recorded as if it had run
    if call == "CreateCompilationJob":
        listed = client(cloud, "sagemaker").list_compilation_jobs()
        assert listed["CompilationJobSummaries"] == []


def test_the_docs_list_every_refused_call() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "local-cloud.md").read_text()
    assert all(f"`{call}`" in docs for call in NOT_RUN.values())


def test_simulate_principal_policy_evaluates_the_roles_policies(cloud: LocalCloud) -> None:
    iam = client(cloud, "iam")
    iam.create_role(Path="/jobs/", RoleName="trainer", AssumeRolePolicyDocument="{}")
    iam.put_role_policy(
        RoleName="trainer",
        PolicyName="data",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::data/*"},
                    {
                        "Effect": "Deny",
                        "Action": "s3:DeleteObject",
                        "Resource": "arn:aws:s3:::data/*",
                    },
                ],
            }
        ),
    )
    managed = iam.create_policy(
        PolicyName="train",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "sagemaker:CreateTrainingJob", "Resource": "*"}
                ],
            }
        ),
    )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="trainer", PolicyArn=managed)

    def decision(action: str, resource: str) -> str:
        results = iam.simulate_principal_policy(
            PolicySourceArn=ROLE, ActionNames=[action], ResourceArns=[resource]
        )["EvaluationResults"]
        assert [r["EvalActionName"] for r in results] == [action]
        return str(results[0]["EvalDecision"])

    assert decision("s3:GetObject", "arn:aws:s3:::data/x.csv") == "allowed"
    assert decision("s3:DeleteObject", "arn:aws:s3:::data/x.csv") == "explicitDeny"
    assert decision("s3:GetObject", "arn:aws:s3:::other/x.csv") == "implicitDeny"
    assert decision("sagemaker:CreateTrainingJob", "*") == "allowed"
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.simulate_principal_policy(
            PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:role/nobody", ActionNames=["s3:GetObject"]
        )
