"""The local deployer: the real Pulumi program, created in a moto server through boto3.

One local cloud for the module. The sequence the tests read is made once (``deploys``):
a deploy that fails halfway on an injected error, the re-run that converges, and a
third run that must change nothing. The security tests then read what moto holds,
and ``destroy`` goes last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from e2e_helpers import REPO_ROOT
from localcloud_helpers import client

from infra.config import StackConfigError
from mlops.deploy import DeployError, DeployResult, deploy, destroy, stack_outputs, state_path
from mlops.deploy.mocks import HANDLERS
from mlops.localcloud.server import LocalCloud

STACK = "local"
PREFIX = "mlops-local-fraud"
FUNCTION = "aws:lambda/function:Function"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    state = tmp_path_factory.mktemp("deploy-cloud")
    with LocalCloud(0, state_dir=state, repo_root=REPO_ROOT) as running:
        yield running


@dataclass
class Deploys:
    state_dir: Path
    failure: DeployError
    state_after_failure: dict[str, Any]
    inventory_after_failure: Counter[str]
    first: DeployResult
    inventory_first: Counter[str]
    state_first: dict[str, Any]
    second: DeployResult
    inventory_second: Counter[str]
    state_second: dict[str, Any]


@pytest.fixture(scope="module")
def deploys(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> Deploys:
    state_dir = tmp_path_factory.mktemp("deploy-state")

    def broken(ctx: Any, inputs: dict[str, Any], prev: Any) -> Any:
        # not a ClientError: any failure must name the resource and leave a re-runnable state
        raise ParamValidationError(report=f"injected failure for {inputs['name']}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(HANDLERS, FUNCTION, broken)
        with pytest.raises(DeployError) as failed:
            deploy(STACK, cloud.endpoint_url, state_dir, REPO_ROOT)
    state_after_failure = _state(state_dir)
    inventory_after_failure = inventory(cloud)

    first = deploy(STACK, cloud.endpoint_url, state_dir, REPO_ROOT)
    inventory_first, state_first = inventory(cloud), _state(state_dir)
    second = deploy(STACK, cloud.endpoint_url, state_dir, REPO_ROOT)
    return Deploys(
        state_dir,
        failed.value,
        state_after_failure,
        inventory_after_failure,
        first,
        inventory_first,
        state_first,
        second,
        inventory(cloud),
        _state(state_dir),
    )


def _state(state_dir: Path) -> dict[str, Any]:
    return dict(json.loads(state_path(state_dir, STACK).read_text()))


def inventory(cloud: LocalCloud) -> Counter[str]:
    """What the stack has in moto, counted by kind."""
    s3, sm = client(cloud, "s3"), client(cloud, "sagemaker")
    events, lam = client(cloud, "events"), client(cloud, "lambda")
    kms = client(cloud, "kms")
    functions = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    rules = [r["Name"] for r in events.list_rules(NamePrefix=PREFIX)["Rules"]]
    keys = [
        k["KeyId"]
        for k in kms.list_keys()["Keys"]
        if kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"
    ]
    return Counter(
        {
            "functions": len(functions),
            "buckets": sum(b["Name"].startswith(PREFIX) for b in s3.list_buckets()["Buckets"]),
            "package groups": len(sm.list_model_package_groups()["ModelPackageGroupSummaryList"]),
            "queues": len(client(cloud, "sqs").list_queues().get("QueueUrls", [])),
            "topics": len(client(cloud, "sns").list_topics()["Topics"]),
            "tables": len(client(cloud, "dynamodb").list_tables()["TableNames"]),
            "rules": len(rules),
            "targets": sum(len(events.list_targets_by_rule(Rule=r)["Targets"]) for r in rules),
            "alarms": len(client(cloud, "cloudwatch").describe_alarms()["MetricAlarms"]),
            "roles": sum(r["RoleName"].startswith(PREFIX) for r in _roles(cloud)),
            "keys": len(keys),
            "aliases": sum(
                a["AliasName"].startswith(f"alias/{PREFIX}") for a in kms.list_aliases()["Aliases"]
            ),
            "launch templates": len(
                client(cloud, "ec2").describe_launch_templates()["LaunchTemplates"]
            ),
            "host groups": len(
                client(cloud, "autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
            ),
            "permissions": sum(
                len(json.loads(lam.get_policy(FunctionName=f)["Policy"])["Statement"])
                for f in functions
            ),
        }
    )


def _roles(cloud: LocalCloud) -> list[dict[str, Any]]:
    return list(client(cloud, "iam").list_roles()["Roles"])


EXPECTED = {
    "functions": 4,
    "buckets": 4,
    "package groups": 1,
    "queues": 5,
    "topics": 1,
    "tables": 1,
    "rules": 14,
    "targets": 14,
    "alarms": 12,
    "roles": 6,
    "keys": 1,
    "aliases": 1,
    "launch templates": 1,
    "host groups": 1,
    "permissions": 14,
}


# --- halfway failure, re-run, re-run again ---------------------------------------------------


def test_failed_deploy_names_the_resource_and_says_rerun(deploys: Deploys) -> None:
    message = str(deploys.failure)
    assert f"deploy of stack {STACK!r} stopped at {FUNCTION}::" in message
    assert "injected failure" in message
    assert "re-run to converge" in message
    assert isinstance(deploys.failure.__cause__, DeployError)


def test_failed_deploy_records_what_it_created(deploys: Deploys, cloud: LocalCloud) -> None:
    recorded = deploys.state_after_failure["resources"]
    types = Counter(r["type"] for r in recorded.values())
    assert deploys.state_after_failure["outputs"] == {}, "an unfinished deploy has no outputs"
    assert types[FUNCTION] == 0
    assert types["aws:kms/key:Key"] == 1 and types["aws:s3/bucket:Bucket"] == 4
    assert 0 < len(recorded) < 129
    assert deploys.inventory_after_failure["functions"] == 0
    assert deploys.inventory_after_failure["buckets"] == 4
    # every recorded id is real: the re-run reuses these, it does not create twins
    first = deploys.state_first["resources"]
    for key, record in recorded.items():
        assert first[key]["id"] == record["id"], key
    assert f"{deploys.failure}".count("stopped at") == 1


def test_rerun_converges_to_the_full_stack(deploys: Deploys) -> None:
    assert deploys.first.resource_count == 129
    assert len(deploys.state_first["resources"]) == 129
    assert dict(deploys.inventory_first) == EXPECTED
    assert deploys.state_first["outputs"] == deploys.first.outputs
    assert deploys.first.outputs["retrainFunctionName"] == f"{PREFIX}-retrain"


def test_deploying_again_changes_nothing(deploys: Deploys) -> None:
    assert deploys.second.resource_count == deploys.first.resource_count
    assert dict(deploys.inventory_second) == EXPECTED
    assert deploys.second.outputs == deploys.first.outputs
    ids = {k: r["id"] for k, r in deploys.state_second["resources"].items()}
    assert ids == {k: r["id"] for k, r in deploys.state_first["resources"].items()}
    assert stack_outputs(deploys.state_dir, STACK) == deploys.first.outputs


def test_unknown_stack_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(
        StackConfigError, match=r"unknown stack 'nope'.*available stacks: dev, local"
    ):
        deploy("nope", "http://127.0.0.1:1", tmp_path, REPO_ROOT)
    assert not state_path(tmp_path, "nope").exists()


# --- security properties, as moto holds them --------------------------------------------------


def _buckets(outputs: dict[str, Any]) -> list[str]:
    names = [outputs[k] for k in ("rawBucket", "artifactsBucket", "captureBucket")]
    return [*names, outputs["accessLogBucket"]]


def test_buckets_are_kms_encrypted_private_tls_only_and_versioned(
    deploys: Deploys, cloud: LocalCloud
) -> None:
    s3, outputs = client(cloud, "s3"), deploys.first.outputs
    key_arn = outputs["kmsKeyArn"]
    for bucket in _buckets(outputs):
        [rule] = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
            "Rules"
        ]
        default = rule["ApplyServerSideEncryptionByDefault"]
        assert default["SSEAlgorithm"] == "aws:kms", (bucket, rule)
        assert default["KMSMasterKeyID"] == key_arn, (bucket, rule)
        assert rule.get("BucketKeyEnabled") is True, (bucket, rule)

        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert block == dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
            True,
        ), (bucket, block)

        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        tls_denies = [
            s
            for s in policy["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert tls_denies, (bucket, policy)

        assert s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled", bucket


def test_key_rotates_and_every_queue_uses_it(deploys: Deploys, cloud: LocalCloud) -> None:
    key_arn = deploys.first.outputs["kmsKeyArn"]
    assert client(cloud, "kms").get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"]
    sqs, lam = client(cloud, "sqs"), client(cloud, "lambda")
    dlqs = set()
    for name in (
        "retrainFunctionName",
        "promoteFunctionName",
        "driftFunctionName",
        "qualityFunctionName",
    ):
        config = lam.get_function_configuration(FunctionName=deploys.first.outputs[name])
        dlqs.add(config["DeadLetterConfig"]["TargetArn"])
    assert len(dlqs) == 4
    jobs = deploys.first.outputs["trainingJobsQueueUrl"]
    queues = set(sqs.list_queues()["QueueUrls"])
    assert jobs in queues
    for url in queues:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert url == jobs or attributes["QueueArn"] in dlqs
        assert attributes.get("KmsMasterKeyId") == key_arn, (url, attributes)


def test_the_training_hosts_group_is_idle_and_launches_from_the_template(
    deploys: Deploys, cloud: LocalCloud
) -> None:
    [group] = client(cloud, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[deploys.first.outputs["trainingHosts"]]
    )["AutoScalingGroups"]
    assert (group["MinSize"], group["MaxSize"], group["DesiredCapacity"]) == (0, 1, 0)
    template = group["LaunchTemplate"]
    assert template["LaunchTemplateId"] == deploys.first.outputs["launchTemplateId"]
    # (moto answers the default service-linked role whatever the group was created with)
    [role] = [
        r
        for r in client(cloud, "iam").list_roles(PathPrefix="/aws-service-role/")["Roles"]
        if r["RoleName"] == f"AWSServiceRoleForAutoScaling_{PREFIX}"
    ]
    assert role["Path"] == "/aws-service-role/autoscaling.amazonaws.com/"


def test_launch_template_requires_imdsv2(deploys: Deploys, cloud: LocalCloud) -> None:
    template_id = deploys.first.outputs["launchTemplateId"]
    [version] = client(cloud, "ec2").describe_launch_template_versions(
        LaunchTemplateId=template_id, Versions=["$Default"]
    )["LaunchTemplateVersions"]
    options = version["LaunchTemplateData"]["MetadataOptions"]
    assert options["HttpTokens"] == "required", options


def test_lambda_environment_is_the_published_one(deploys: Deploys, cloud: LocalCloud) -> None:
    outputs, lam = deploys.first.outputs, client(cloud, "lambda")
    for name in (
        "retrainFunctionName",
        "promoteFunctionName",
        "driftFunctionName",
        "qualityFunctionName",
    ):
        config = lam.get_function_configuration(FunctionName=outputs[name])
        assert config["Environment"]["Variables"] == outputs["lambdaEnvironment"], name


# --- destroy: last, it empties the account -----------------------------------------------------


def test_destroy_removes_the_stack(deploys: Deploys, cloud: LocalCloud) -> None:
    problems = destroy(STACK, cloud.endpoint_url, deploys.state_dir, "us-east-1")

    assert problems == []
    left = inventory(cloud)
    # (moto cannot delete a model package group: it stays, and a re-deploy adopts it)
    for kind in ("functions", "buckets", "queues", "tables", "rules", "alarms", "keys"):
        assert left[kind] == 0, (kind, left)
    assert _state(deploys.state_dir) == {"resources": {}, "outputs": {}}
    assert stack_outputs(deploys.state_dir, STACK) == {}

    # and up again after down: the same stack, nothing twice
    again = deploy(STACK, cloud.endpoint_url, deploys.state_dir, REPO_ROOT)
    assert again.resource_count == 129
    assert dict(inventory(cloud)) == {**EXPECTED, "keys": 1}
    names = ("rawBucket", "retrainFunctionName", "idempotencyTable", "modelPackageGroupName")
    assert [again.outputs[n] for n in names] == [deploys.first.outputs[n] for n in names]
