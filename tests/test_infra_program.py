"""The Pulumi program under recording mocks: every resource exists, configured as stated.

Each configuration (dev, prod, prod/dev with a pinned model) is evaluated once per
session (tests/infra_helpers.py); dev and prod run one after the other in this process.
"""

from __future__ import annotations

import hashlib
import io
import json
import runpy
import sys
import tarfile
from pathlib import Path

import pulumi
import pytest
from infra_helpers import (
    PINNED_URL,
    REPO_ROOT,
    T_ALARM,
    T_BUCKET,
    T_ENDPOINT,
    T_ENDPOINT_CONFIG,
    T_FUNCTION,
    T_MODEL,
    T_PERMISSION,
    T_QUEUE,
    T_ROLE,
    T_ROLE_POLICY,
    T_RULE,
    T_TARGET,
    actions,
    as_list,
    by_input,
    document,
    one,
    pinned,
    program,
    role_statements,
    statement,
)

from infra import serving
from infra.bundle import build_bundle
from infra.config import load_stack_config
from infra.preview import (
    MOCK_ACCOUNT_ID,
    MOCK_AMI_ID,
    ProgramRun,
    RecordingMocks,
    check_rules,
    install_mocks,
)
from lambdas import constants as c
from lambdas import hosting

ACCOUNT = MOCK_ACCOUNT_ID
STACKS = ["dev", "prod"]
FUNCTIONS = ["retrain", "promote", "drift", "quality"]
BUCKET_ROLES = ["raw", "artifacts", "capture", "access-logs"]


@pytest.fixture(params=STACKS)
def run(request: pytest.FixtureRequest) -> ProgramRun:
    return program(request.param)


def prefix(run: ProgramRun) -> str:
    return f"mlops-{run.stack}-fraud"


def bucket_name(run: ProgramRun, role: str) -> str:
    return f"{prefix(run)}-{role}-{ACCOUNT}"


def key_arn(run: ProgramRun) -> str:
    return one(run, "aws:kms/key:Key").outputs["arn"]


def companion(run: ProgramRun, resource_type: str, bucket: str) -> dict:
    found = by_input(run, resource_type, "bucket", bucket)
    assert len(found) == 1, f"{bucket}: expected one {resource_type}, found {len(found)}"
    return dict(found[0].inputs)


# --- the whole program ------------------------------------------------------------------


def test_dev_then_prod_in_one_process_give_separate_stacks() -> None:
    dev, prod = program("dev"), program("prod")
    assert dev.settings.endpoint_mode == "serverless"
    assert prod.settings.endpoint_mode == "instance"
    assert all("::dev::" not in r.urn for r in prod), "prod run kept resources of dev"
    assert all(r.urn.startswith("urn:pulumi:dev::mlops::") for r in dev)
    assert len(dev.custom_resources) == len(prod.custom_resources) >= 90


def test_policy_rules_pass_on_every_configuration() -> None:
    for run in (program("dev"), program("prod"), pinned("prod"), pinned("dev")):
        violations = check_rules(run)
        assert violations == [], f"{run.stack}: " + "\n".join(map(str, violations))


def test_every_resource_is_parented_by_a_component(run: ProgramRun) -> None:
    components = {r.urn for r in run if not r.custom}
    assert {r.type for r in run if not r.custom} == {
        "mlops:storage:Storage",
        "mlops:identity:Identity",
        "mlops:registry:Registry",
        "mlops:training:Training",
        "mlops:serving:Serving",
        "mlops:retraining:Retraining",
        "mlops:monitoring:Monitoring",
    }
    orphans = [r.urn for r in run.custom_resources if r.parent not in components]
    assert orphans == []
    for resource in run.custom_resources:
        component = next(r for r in run if r.urn == resource.parent)
        assert resource.name.startswith(f"{component.name}-"), resource.urn


def test_cli_entry_point_runs_the_same_program(monkeypatch: pytest.MonkeyPatch) -> None:
    """As `pulumi up` does: run infra/ as a script, with infra/ as the working directory."""
    mocks = RecordingMocks()
    install_mocks(mocks, project="mlops", stack="dev", config=load_stack_config("dev", REPO_ROOT))
    monkeypatch.chdir(REPO_ROOT / "infra")
    monkeypatch.setattr(sys, "path", [str(REPO_ROOT / "infra"), *sys.path])
    pulumi.runtime.test(lambda: runpy.run_path(".", run_name="__main__") and None)()
    assert sorted(r.urn for r in mocks.resources) == sorted(r.urn for r in program("dev"))


# --- storage ---------------------------------------------------------------------------


def test_kms_key_rotates_and_grants_only_named_services(run: ProgramRun) -> None:
    key = one(run, "aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    policy = document(key)
    assert "kms:*" not in actions(policy["Statement"])
    services = {
        s["Principal"].get("Service") for s in policy["Statement"] if "Service" in s["Principal"]
    }
    assert services == {
        "logs.us-east-1.amazonaws.com",
        "cloudwatch.amazonaws.com",
        "logging.s3.amazonaws.com",
    }
    assert all("Condition" in s for s in policy["Statement"] if "Service" in s["Principal"])
    alias = one(run, "aws:kms/alias:Alias")
    assert alias.inputs["name"] == f"alias/{prefix(run)}"


@pytest.mark.parametrize("role", BUCKET_ROLES)
def test_bucket_is_private_versioned_encrypted_and_tls_only(run: ProgramRun, role: str) -> None:
    name = bucket_name(run, role)
    assert by_input(run, T_BUCKET, "bucket", name), f"no bucket {name}"
    versioning = companion(run, "aws:s3/bucketVersioning:BucketVersioning", name)
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    encryption = companion(
        run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        name,
    )
    (rule,) = encryption["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key_arn(run),
    }
    assert rule["bucketKeyEnabled"] is True
    block = companion(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", name)
    for flag in (
        "blockPublicAcls",
        "blockPublicPolicy",
        "ignorePublicAcls",
        "restrictPublicBuckets",
    ):
        assert block[flag] is True, f"{name}: {flag}"
    ownership = companion(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", name)
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    policy = json.loads(companion(run, "aws:s3/bucketPolicy:BucketPolicy", name)["policy"])
    deny = statement(policy, "DenyInsecureTransport")
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Principal"] in ("*", {"AWS": "*"})  # everyone
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]


def _lifecycle(run: ProgramRun, role: str) -> dict:
    lifecycle = companion(
        run,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        bucket_name(run, role),
    )
    (rule,) = lifecycle["rules"]
    assert rule["status"] == "Enabled"
    return rule


def test_lifecycle_rules(run: ProgramRun) -> None:
    settings = run.settings
    raw = _lifecycle(run, "raw")
    assert "expiration" not in raw, "raw data must never expire by default"
    assert raw["noncurrentVersionExpiration"]["noncurrentDays"] == settings.noncurrent_version_days
    artifacts = _lifecycle(run, "artifacts")
    assert "expiration" not in artifacts
    assert artifacts["noncurrentVersionExpiration"]["noncurrentDays"] == (
        settings.noncurrent_version_days
    )
    capture = _lifecycle(run, "capture")
    assert capture["expiration"]["days"] == settings.capture_retention_days
    logs = _lifecycle(run, "access-logs")
    assert logs["expiration"]["days"] == settings.access_log_retention_days


def test_raw_expiration_is_opt_in() -> None:
    run = program("dev", rawExpirationDays="400")
    assert _lifecycle(run, "raw")["expiration"]["days"] == 400


def test_the_fairness_guardrail_is_opt_in_and_reaches_promote() -> None:
    unset = program("dev")
    env = one(unset, T_FUNCTION, "retraining-promote").inputs["environment"]["variables"]
    assert c.MAX_FAIRNESS_GAP not in env and env[c.FAIRNESS_ACTION] == "hold"
    run = program("dev", maxFairnessGap="0.15", fairnessAction="reject")
    env = one(run, T_FUNCTION, "retraining-promote").inputs["environment"]["variables"]
    assert (env[c.MAX_FAIRNESS_GAP], env[c.FAIRNESS_ACTION]) == ("0.15", "reject")


def test_data_buckets_log_to_the_access_log_bucket(run: ProgramRun) -> None:
    log_bucket = bucket_name(run, "access-logs")
    for role in ("raw", "artifacts", "capture"):
        logging = companion(run, "aws:s3/bucketLogging:BucketLogging", bucket_name(run, role))
        assert logging["targetBucket"] == log_bucket
        assert logging["targetPrefix"] == f"{role}/"
    policy = json.loads(companion(run, "aws:s3/bucketPolicy:BucketPolicy", log_bucket)["policy"])
    delivery = statement(policy, "S3ServerAccessLogDelivery")
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert sorted(delivery["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        f"arn:aws:s3:::{bucket_name(run, r)}" for r in ("raw", "artifacts", "capture")
    )


def test_raw_bucket_sends_events_to_eventbridge(run: ProgramRun) -> None:
    notification = one(run, "aws:s3/bucketNotification:BucketNotification")
    assert notification.inputs == {"bucket": bucket_name(run, "raw"), "eventbridge": True}


# --- identity ---------------------------------------------------------------------------

STAR_ALLOWED = {
    # action -> required condition operator (None: AWS offers no useful condition)
    "ecr:GetAuthorizationToken": None,
    "cloudwatch:PutMetricData": "StringLike",
    "xray:PutTraceSegments": None,
    "xray:PutTelemetryRecords": None,
    "sagemaker:ListTrainingJobs": None,
    "sagemaker:ListModelPackages": None,
    "autoscaling:DescribeAutoScalingGroups": None,
    "application-autoscaling:DescribeScalableTargets": None,
    "application-autoscaling:DescribeScalingPolicies": None,
}


def test_roles_trust_one_service_and_attach_no_managed_policy(run: ProgramRun) -> None:
    expected = {
        "sagemaker": "sagemaker.amazonaws.com",
        "retrain": "lambda.amazonaws.com",
        "promote": "lambda.amazonaws.com",
        "drift": "lambda.amazonaws.com",
        "quality": "lambda.amazonaws.com",
        "ec2-training": "ec2.amazonaws.com",
    }
    roles = {r.inputs["name"]: r for r in run.of_type(T_ROLE)}
    assert set(roles) == {f"{prefix(run)}-{kind}" for kind in expected}
    for kind, service in expected.items():
        role = roles[f"{prefix(run)}-{kind}"]
        (trust,) = document(role, "assumeRolePolicy")["Statement"]
        assert trust["Principal"] == {"Service": service}
        assert trust["Action"] == "sts:AssumeRole"
        # the confused-deputy guard, where the service sets the keys (EC2 does not)
        guard = trust.get("Condition", {})
        if kind == "ec2-training":
            assert guard == {}, guard
        else:
            assert guard["StringEquals"] == {"aws:SourceAccount": ACCOUNT}, kind
        if kind == "sagemaker":
            assert guard["ArnLike"] == {"aws:SourceArn": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:*"}
        assert "managedPolicyArns" not in role.inputs
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == []
    profile = one(run, "aws:iam/instanceProfile:InstanceProfile")
    assert profile.inputs["role"] == f"{prefix(run)}-ec2-training"


def test_role_policies_are_scoped(run: ProgramRun) -> None:
    own_buckets = {f"arn:aws:s3:::{bucket_name(run, r)}" for r in BUCKET_ROLES}
    policies = run.of_type(T_ROLE_POLICY)
    assert len(policies) == 7  # one per role + the retrain role's EC2 start-host policy
    for policy in policies:
        for s in document(policy)["Statement"]:
            where = f"{policy.name}/{s.get('Sid')}"
            assert s["Effect"] == "Allow", where
            resources = as_list(s["Resource"])
            for action in as_list(s["Action"]):
                assert action != "*" and not action.endswith(":*"), where
                if "*" in resources:
                    assert action in STAR_ALLOWED, f"{where}: {action} on '*'"
                    operator = STAR_ALLOWED[action]
                    if operator:
                        assert operator in s.get("Condition", {}), f"{where}: no condition"
            for arn in resources:
                if arn.startswith("arn:aws:s3:::"):
                    bucket = arn.removeprefix("arn:aws:s3:::").split("/")[0]
                    assert f"arn:aws:s3:::{bucket}" in own_buckets, f"{where}: {arn}"
                if arn.startswith("arn:aws:") and ":s3:" not in arn and ":ecr:" not in arn:
                    assert f":{ACCOUNT}:" in arn or ":::" in arn or "::image/" in arn, where
            if "iam:PassRole" in as_list(s["Action"]):
                assert "iam:PassedToService" in s["Condition"]["StringEquals"], where


def test_no_role_can_launch_instances_or_pass_roles_to_ec2(run: ProgramRun) -> None:
    """The escalation path iam:PassRole + ec2:RunInstances is closed: retrain queues a job
    and sets the hosts' group's desired capacity; the group launches with its own role."""
    everything = [
        s for role in run.of_type(T_ROLE) for s in role_statements(run, role.inputs["name"])
    ]
    acts = {a for s in everything for a in as_list(s["Action"])}
    assert "ec2:RunInstances" not in acts and "ec2:CreateTags" not in acts
    passed = {
        s["Condition"]["StringEquals"]["iam:PassedToService"]
        for s in everything
        if "iam:PassRole" in as_list(s["Action"])
    }
    assert passed == {"sagemaker.amazonaws.com"}
    group = one(run, "aws:autoscaling/group:Group")
    assert (group.inputs["minSize"], group.inputs["maxSize"], group.inputs["desiredCapacity"]) == (
        0,
        1,
        0,
    )
    assert "desiredCapacity" in group.ignore_changes  # retrain's and the host's, not Pulumi's
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
    assert group.inputs["launchTemplate"]["id"] == template.id
    slr = one(run, "aws:iam/serviceLinkedRole:ServiceLinkedRole")
    assert group.inputs["serviceLinkedRoleArn"] == slr.outputs["arn"]
    start = {s["Sid"]: s for s in role_statements(run, f"{prefix(run)}-retrain") if "Sid" in s}
    assert start["StartTrainingHost"]["Action"] == ["autoscaling:SetDesiredCapacity"]
    assert start["StartTrainingHost"]["Resource"].endswith(
        f":autoScalingGroupName/{prefix(run)}-training-hosts"
    )
    queue = one(run, "aws:sqs/queue:Queue", name="training-jobs")
    assert start["QueueTrainingJob"]["Resource"] == queue.outputs["arn"]


def test_each_function_role_writes_only_its_own_logs_and_dlq(run: ProgramRun) -> None:
    for kind in FUNCTIONS:
        docs = role_statements(run, f"{prefix(run)}-{kind}")
        logs = next(s for s in docs if s.get("Sid") == "WriteOwnLogs")
        assert logs["Resource"] == (
            f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/{prefix(run)}-{kind}:*"
        )
        dlq = next(s for s in docs if s.get("Sid") == "SendToOwnDeadLetterQueue")
        assert dlq["Resource"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{prefix(run)}-{kind}-dlq"


# --- registry and training ------------------------------------------------------------


def test_model_package_group(run: ProgramRun) -> None:
    group = one(run, "aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert group.inputs["modelPackageGroupName"] == prefix(run)


def test_launch_template_is_hardened(run: ProgramRun) -> None:
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["imageId"] == MOCK_AMI_ID  # from the SSM public parameter
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["instanceInitiatedShutdownBehavior"] == "terminate"
    (volume,) = template["blockDeviceMappings"]
    assert volume["ebs"]["encrypted"] == "true"
    assert volume["ebs"]["kmsKeyId"] == key_arn(run)
    (interface,) = template["networkInterfaces"]
    assert interface["associatePublicIpAddress"] == "false"
    group = one(run, "aws:ec2/securityGroup:SecurityGroup")
    assert interface["securityGroups"] == [group.id]
    assert "ingress" not in group.inputs
    assert [(e["protocol"], e["fromPort"], e["toPort"]) for e in group.inputs["egress"]] == [
        ("tcp", 443, 443)
    ]
    assert template["iamInstanceProfile"]["arn"].endswith(
        f"instance-profile/{prefix(run)}-ec2-training"
    )


def test_ami_id_from_config_skips_the_ssm_lookup() -> None:
    run = program("dev", ec2AmiId="ami-0fedcba9876543210")
    template = one(run, "aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["imageId"] == "ami-0fedcba9876543210"


def test_code_bundle_upload(run: ProgramRun) -> None:
    upload = one(run, "aws:s3/bucketObjectv2:BucketObjectv2").inputs
    assert upload["bucket"] == bucket_name(run, "artifacts")
    assert upload["key"] == c.CODE_BUNDLE_KEY
    assert upload["serverSideEncryption"] == "aws:kms"
    assert upload["kmsKeyId"] == key_arn(run)
    path = Path(upload["source"].path)
    assert upload["sourceHash"] == hashlib.sha256(path.read_bytes()).hexdigest()
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert {"train.py", "inference.py", "jobs/__init__.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert run.outputs["codeBundleUri"] == f"s3://{bucket_name(run, 'artifacts')}/code/jobs.tar.gz"


def test_bundle_is_deterministic_and_packs_whatever_jobs_holds(tmp_path: Path) -> None:
    (tmp_path / "jobs" / "__pycache__").mkdir(parents=True)
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    first = build_bundle(tmp_path, tmp_path / "a")
    (tmp_path / "jobs" / "__init__.py").touch()  # a new mtime, same content
    second = build_bundle(tmp_path, tmp_path / "b")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.files == ("inference.py", "jobs/__init__.py", "train.py")
    with tarfile.open(first.path) as tar:
        assert {m.mtime for m in tar.getmembers()} == {0}
        train = tar.extractfile("train.py")
        assert train is not None and b"from jobs.train import main" in train.read()
    (tmp_path / "jobs" / "data.py").write_text("X = 1\n")
    assert build_bundle(tmp_path, tmp_path / "a").sha256 != first.sha256
    empty = build_bundle(tmp_path / "nothing-here", tmp_path / "c")  # no jobs/ at all
    assert empty.files == ("inference.py", "train.py")
    with tarfile.open(fileobj=io.BytesIO(empty.path.read_bytes())) as tar:
        assert tar.getnames() == ["inference.py", "train.py"]


# --- serving ---------------------------------------------------------------------------


def test_no_pulumi_managed_endpoint_by_default(run: ProgramRun) -> None:
    for resource_type in (T_ENDPOINT, T_ENDPOINT_CONFIG, T_MODEL):
        assert run.of_type(resource_type) == [], resource_type
    assert run.of_type("aws:appautoscaling/target:Target") == []
    assert run.outputs["endpointName"] == prefix(run)
    assert run.outputs["pulumiManagedEndpoint"] is False


def test_promote_gets_the_serving_settings(run: ProgramRun) -> None:
    env = one(run, T_FUNCTION, "retraining-promote").inputs["environment"]["variables"]
    s = run.settings
    assert env[c.ENDPOINT_NAME] == prefix(run)
    assert env[c.ENDPOINT_MODE] == s.endpoint_mode
    assert env[c.SERVING_IMAGE_URI] == s.serving_image_uri
    assert env[c.SERVERLESS_MEMORY_MB] == str(s.serverless_memory_mb)
    assert env[c.SERVERLESS_MAX_CONCURRENCY] == str(s.serverless_max_concurrency)
    assert env[c.ENDPOINT_INSTANCE_TYPE] == s.endpoint_instance_type
    assert env[c.ENDPOINT_INSTANCE_COUNT] == str(s.endpoint_instance_count)
    assert env[c.CAPTURE_SAMPLE_PERCENT] == str(s.capture_sample_percent)
    assert env[c.CANARY_PERCENT] == str(s.canary_percent)
    assert env[c.AUTOSCALING_MIN] == str(s.autoscaling_min)
    assert env[c.AUTOSCALING_MAX] == str(s.autoscaling_max)
    assert env[c.AUTOSCALING_TARGET] == str(s.autoscaling_target)
    rollback = env[c.ROLLBACK_ALARM_NAMES].split(",")
    assert rollback == [f"{prefix(run)}-endpoint-5xx", f"{prefix(run)}-endpoint-latency"]
    alarm_names = {a.inputs["name"] for a in run.of_type(T_ALARM)}
    assert set(rollback) <= alarm_names


def test_stack_settings_differ_where_the_stacks_should() -> None:
    dev, prod = program("dev").settings, program("prod").settings
    assert (dev.endpoint_mode, prod.endpoint_mode) == ("serverless", "instance")
    assert prod.autoscaling_max > prod.autoscaling_min >= 1
    assert prod.log_retention_days > dev.log_retention_days


def test_pinned_prod_endpoint_captures_with_kms_and_ignores_promotions() -> None:
    run = pinned("prod")
    model = one(run, T_MODEL).inputs
    assert model["primaryContainer"]["modelDataUrl"] == PINNED_URL
    assert model["primaryContainer"]["environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["executionRoleArn"].endswith(f"role/{prefix(run)}-sagemaker")
    config = one(run, T_ENDPOINT_CONFIG).inputs
    (variant,) = config["productionVariants"]
    assert variant["variantName"] == c.VARIANT_NAME
    assert variant["instanceType"] == run.settings.endpoint_instance_type
    assert variant["initialInstanceCount"] == run.settings.endpoint_instance_count
    capture = config["dataCaptureConfig"]
    assert capture["enableCapture"] is True
    assert capture["destinationS3Uri"] == f"s3://{bucket_name(run, 'capture')}"
    assert capture["kmsKeyId"] == key_arn(run)
    assert capture["initialSamplingPercentage"] == run.settings.capture_sample_percent

    endpoint = one(run, T_ENDPOINT)
    assert endpoint.inputs["name"] == prefix(run)
    assert endpoint.inputs["endpointConfigName"] == config["name"]
    assert endpoint.ignore_changes == ("endpointConfigName",)
    deployment = endpoint.inputs["deploymentConfig"]
    routing = deployment["blueGreenUpdatePolicy"]["trafficRoutingConfiguration"]
    assert routing["type"] == "CANARY"
    assert routing["canarySize"] == {"type": "CAPACITY_PERCENT", "value": 10}
    alarms = [a["alarmName"] for a in deployment["autoRollbackConfiguration"]["alarms"]]
    assert alarms == run.outputs["rollbackAlarmNames"]
    alarm_urns = {a.urn for a in run.of_type(T_ALARM) if a.inputs["name"] in alarms}
    assert alarm_urns <= set(endpoint.dependencies), "alarms must exist before the endpoint"

    target = one(run, "aws:appautoscaling/target:Target").inputs
    assert target["resourceId"] == f"endpoint/{prefix(run)}/variant/{c.VARIANT_NAME}"
    assert target["scalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 6)
    policy = one(run, "aws:appautoscaling/policy:Policy").inputs
    assert policy["policyType"] == "TargetTrackingScaling"
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )
    assert tracking["targetValue"] == run.settings.autoscaling_target
    assert run.outputs["pulumiManagedEndpoint"] is True
    sagemaker = role_statements(run, f"{prefix(run)}-sagemaker")
    pinned_read = next(s for s in sagemaker if s.get("Sid") == "ReadPinnedModel")
    assert pinned_read["Resource"] == ["arn:aws:s3:::pinned-models-bucket/fraud/model.tar.gz"]


def test_pinned_endpoint_deploys_like_the_promote_handler() -> None:
    # one source: lambdas.hosting builds the deployment for Pulumi and for promotions
    run = pinned("prod")
    deployment = one(run, T_ENDPOINT).inputs["deploymentConfig"]
    policy = deployment["blueGreenUpdatePolicy"]
    assert policy["trafficRoutingConfiguration"]["waitIntervalInSeconds"] == (
        hosting.CANARY_WAIT_SECONDS
    )
    assert policy["terminationWaitInSeconds"] == hosting.TERMINATION_WAIT_SECONDS
    assert policy["maximumExecutionTimeoutInSeconds"] == hosting.MAX_DEPLOYMENT_SECONDS


def test_pinned_dev_endpoint_is_serverless_without_capture_or_guardrails() -> None:
    run = pinned("dev")
    config = one(run, T_ENDPOINT_CONFIG).inputs
    (variant,) = config["productionVariants"]
    assert variant["serverlessConfig"] == {"memorySizeInMb": 2048, "maxConcurrency": 5}
    # SageMaker serverless endpoints support neither data capture nor a volume key.
    assert "dataCaptureConfig" not in config and "kmsKeyArn" not in config
    endpoint = one(run, T_ENDPOINT)
    assert "deploymentConfig" not in endpoint.inputs
    assert endpoint.ignore_changes == ("endpointConfigName",)
    assert run.of_type("aws:appautoscaling/target:Target") == []


def test_endpoint_options_never_revert_a_promotion() -> None:
    parent = pulumi.ComponentResource.__new__(pulumi.ComponentResource)
    options = serving.endpoint_options(parent)
    assert options.ignore_changes == ["endpoint_config_name"]
    assert options.parent is parent


# --- retraining ------------------------------------------------------------------------

REQUIRED_ENV = {
    c.MODEL_NAME,
    c.RAW_BUCKET,
    c.ARTIFACTS_BUCKET,
    c.CAPTURE_BUCKET,
    c.KMS_KEY_ARN,
    c.SAGEMAKER_ROLE_ARN,
    c.MODEL_PACKAGE_GROUP,
    c.ENDPOINT_NAME,
    c.IDEMPOTENCY_TABLE,
    c.ALERT_TOPIC_ARN,
    c.TRAINING_BACKEND,
    c.TRAINING_IMAGE_URI,
    c.TRAINING_INSTANCE_TYPE,
    c.TRAINING_MAX_SECONDS,
    c.TRAINING_HYPERPARAMETERS,
    c.CODE_S3_URI,
    c.NETWORK_ISOLATION,
    c.TRAINING_HOSTS,
    c.TRAINING_JOBS_QUEUE_URL,
    c.PROMOTION_MARGIN,
    c.MIN_MINORITY_RECALL,
    c.SERVING_IMAGE_URI,
    c.ENDPOINT_MODE,
    c.SERVERLESS_MEMORY_MB,
    c.SERVERLESS_MAX_CONCURRENCY,
    c.ENDPOINT_INSTANCE_TYPE,
    c.ENDPOINT_INSTANCE_COUNT,
    c.CAPTURE_SAMPLE_PERCENT,
    c.ROLLBACK_ALARM_NAMES,
    c.CANARY_PERCENT,
    c.AUTOSCALING_MIN,
    c.AUTOSCALING_MAX,
    c.AUTOSCALING_TARGET,
    c.DRIFT_THRESHOLD,
    c.DRIFT_ALARM_NAME,
    c.METRIC_NAMESPACE,
}


@pytest.mark.parametrize("kind", FUNCTIONS)
def test_function(run: ProgramRun, kind: str) -> None:
    s = run.settings
    fn = one(run, T_FUNCTION, f"retraining-{kind}").inputs
    name = f"{prefix(run)}-{kind}"
    assert fn["name"] == name
    assert fn["runtime"] == "python3.11"
    assert fn["handler"] == f"lambdas.{kind}.handler"
    assert fn["role"] == f"arn:aws:iam::{ACCOUNT}:role/{name}"
    assert fn["layers"] == [s.powertools_layer_arn]
    assert "AWSLambdaPowertoolsPythonV3-python311-x86_64" in s.powertools_layer_arn
    assert fn["timeout"] == s.lambda_timeout_seconds
    assert fn["memorySize"] == s.lambda_memory_mb
    assert fn["reservedConcurrentExecutions"] == s.lambda_reserved_concurrency
    assert fn["tracingConfig"] == {"mode": "Active"}
    assert fn["kmsKeyArn"] == key_arn(run)
    queue = one(run, T_QUEUE, f"retraining-{kind}-dlq")
    assert fn["deadLetterConfig"]["targetArn"] == queue.outputs["arn"]
    assert queue.inputs["name"] == f"{name}-dlq"
    assert queue.inputs["kmsMasterKeyId"] == key_arn(run)
    queue_policy = document(
        one(run, "aws:sqs/queuePolicy:QueuePolicy", f"retraining-{kind}-dlq-policy")
    )
    allow = statement(queue_policy, "FunctionRoleSends")
    assert allow["Principal"] == {"AWS": fn["role"]}
    deny = statement(queue_policy, "DenyOtherSenders")
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": fn["role"]}}
    logs = one(run, "aws:cloudwatch/logGroup:LogGroup", f"retraining-{kind}-logs").inputs
    assert logs["name"] == f"/aws/lambda/{name}"
    assert logs["retentionInDays"] == s.log_retention_days
    assert logs["kmsKeyId"] == key_arn(run)
    assert fn["loggingConfig"]["logGroup"] == logs["name"]
    code = fn["code"]
    assert isinstance(code, pulumi.AssetArchive)
    assert Path(code.assets["lambdas"].path) == REPO_ROOT / "lambdas"


@pytest.mark.parametrize("kind", FUNCTIONS)
def test_function_environment_is_complete(run: ProgramRun, kind: str) -> None:
    env = one(run, T_FUNCTION, f"retraining-{kind}").inputs["environment"]["variables"]
    missing = REQUIRED_ENV - set(env)
    assert not missing, f"{kind}: missing {sorted(missing)}"
    assert all(isinstance(v, str) and v for v in env.values()), env
    assert env[c.MODEL_NAME] == f"fraud-{run.stack}"
    assert env[c.RAW_BUCKET] == bucket_name(run, "raw")
    assert env[c.ARTIFACTS_BUCKET] == bucket_name(run, "artifacts")
    assert env[c.CAPTURE_BUCKET] == bucket_name(run, "capture")
    assert env[c.KMS_KEY_ARN] == key_arn(run)
    assert env[c.SAGEMAKER_ROLE_ARN] == f"arn:aws:iam::{ACCOUNT}:role/{prefix(run)}-sagemaker"
    assert env[c.MODEL_PACKAGE_GROUP] == prefix(run)
    assert env[c.IDEMPOTENCY_TABLE] == f"{prefix(run)}-idempotency"
    assert env[c.ALERT_TOPIC_ARN] == f"arn:aws:sns:us-east-1:{ACCOUNT}:{prefix(run)}-alerts"
    assert env[c.CODE_S3_URI] == f"s3://{bucket_name(run, 'artifacts')}/{c.CODE_BUNDLE_KEY}"
    assert env[c.TRAINING_HOSTS] == one(run, "aws:autoscaling/group:Group").outputs["name"]
    queue = one(run, "aws:sqs/queue:Queue", name="training-jobs")
    assert env[c.TRAINING_JOBS_QUEUE_URL] == queue.outputs["url"]
    assert env[c.DRIFT_ALARM_NAME] == f"{prefix(run)}-drift"
    assert env[c.QUALITY_ALARM_NAME] == f"{prefix(run)}-quality"
    assert env[c.FEEDBACK_TO_TRAINING] == "true"
    assert json.loads(env[c.TRAINING_HYPERPARAMETERS]) == {}
    assert float(env[c.DRIFT_THRESHOLD]) == run.settings.drift_threshold
    assert env == run.outputs["lambdaEnvironment"]


def _rule(run: ProgramRun, kind: str) -> tuple[dict, dict, dict]:
    rule = one(run, T_RULE, f"retraining-{kind}")
    (target,) = by_input(run, T_TARGET, "rule", rule.inputs["name"])
    (permission,) = by_input(run, T_PERMISSION, "sourceArn", rule.outputs["arn"])
    return dict(rule.inputs), dict(target.inputs), dict(permission.inputs)


@pytest.mark.parametrize(
    ("kind", "function", "pattern"),
    [
        (
            "raw-object-created",
            "retrain",
            lambda p, s: {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [f"{p}-raw-{ACCOUNT}"]},
                    "object": {"key": [{"prefix": "incoming/"}]},
                },
            },
        ),
        (
            "training-state",
            "promote",
            lambda p, s: {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "detail": {
                    "TrainingJobName": [{"prefix": f"fraud-{s}-"}],
                    "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
                },
            },
        ),
        (
            "drift-alarm",
            "retrain",
            lambda p, s: {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"alarmName": [f"{p}-drift"], "state": {"value": ["ALARM"]}},
            },
        ),
        (
            "quality-alarm",
            "retrain",
            lambda p, s: {
                "source": ["aws.cloudwatch"],
                "detail-type": ["CloudWatch Alarm State Change"],
                "detail": {"alarmName": [f"{p}-quality"], "state": {"value": ["ALARM"]}},
            },
        ),
        (
            "ground-truth-created",
            "quality",
            lambda p, s: {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [f"{p}-raw-{ACCOUNT}"]},
                    "object": {"key": [{"prefix": "ground-truth/"}]},
                },
            },
        ),
        (
            "ec2-training-state",
            "promote",
            lambda p, s: {
                "source": [c.EVENT_SOURCE],
                "detail-type": [c.TRAINING_STATE_CHANGE, c.PROMOTE_REQUEST],
                "detail": {"TrainingJobName": [{"prefix": f"fraud-{s}-"}]},
            },
        ),
        (
            "training-ended",
            "retrain",
            lambda p, s: {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Training Job State Change"],
                "detail": {
                    "TrainingJobName": [{"prefix": f"fraud-{s}-"}],
                    "TrainingJobStatus": ["Completed", "Failed", "Stopped"],
                },
            },
        ),
        (
            "ec2-training-ended",
            "retrain",
            lambda p, s: {
                "source": [c.EVENT_SOURCE],
                "detail-type": [c.TRAINING_STATE_CHANGE],
                "detail": {"TrainingJobName": [{"prefix": f"fraud-{s}-"}]},
            },
        ),
        (
            "retrain-request",
            "retrain",
            lambda p, s: {
                "source": [c.EVENT_SOURCE],
                "detail-type": [c.RETRAIN_REQUEST],
                "detail": {"model": [f"fraud-{s}"]},
            },
        ),
    ],
)
def test_event_pattern_rules(run: ProgramRun, kind: str, function: str, pattern) -> None:
    rule, target, permission = _rule(run, kind)
    assert json.loads(rule["eventPattern"]) == pattern(prefix(run), run.stack)
    assert "scheduleExpression" not in rule
    fn = one(run, T_FUNCTION, f"retraining-{function}")
    assert target["arn"] == fn.outputs["arn"]
    assert permission["function"] == fn.inputs["name"]
    assert permission["principal"] == "events.amazonaws.com"
    assert permission["action"] == "lambda:InvokeFunction"


@pytest.mark.parametrize(
    ("kind", "function", "setting"),
    [
        ("retrain-schedule", "retrain", "retrain_schedule"),
        ("drift-schedule", "drift", "drift_schedule"),
        ("quality-schedule", "quality", "quality_schedule"),
    ],
)
def test_schedule_rules(run: ProgramRun, kind: str, function: str, setting: str) -> None:
    rule, target, permission = _rule(run, kind)
    assert rule["scheduleExpression"] == getattr(run.settings, setting)
    assert "eventPattern" not in rule
    assert target["arn"] == one(run, T_FUNCTION, f"retraining-{function}").outputs["arn"]
    assert permission["principal"] == "events.amazonaws.com"


def test_a_shadow_rollout_adds_the_trial_check_and_its_read_only_grants() -> None:
    direct = program("prod")
    shadow = program("prod", rolloutMode="shadow", rolloutCheckSchedule="rate(5 minutes)")

    rule, target, permission = _rule(shadow, "rollout-check")
    assert rule["scheduleExpression"] == "rate(5 minutes)"
    assert target["arn"] == one(shadow, T_FUNCTION, "retraining-promote").outputs["arn"]
    assert json.loads(target["input"]) == {
        "source": c.EVENT_SOURCE,
        "detail-type": c.ROLLOUT_CHECK,
        "detail": {},
    }
    assert permission["principal"] == "events.amazonaws.com"
    env = one(shadow, T_FUNCTION, "retraining-promote").inputs["environment"]["variables"]
    assert env[c.ROLLOUT_MODE] == "shadow" and env[c.ROLLOUT_MIN_REQUESTS] == "200"
    sids = {s["Sid"] for s in role_statements(shadow, f"{prefix(shadow)}-promote")}
    assert {"ReadTrialCaptures", "ReadTrialLabels", "ReadVariantMetrics"} <= sids
    # a direct rollout has no trial: no rule, no grants
    assert not [r for r in direct if r.name == "retraining-rollout-check"]
    direct_sids = {s["Sid"] for s in role_statements(direct, f"{prefix(direct)}-promote")}
    assert not direct_sids & {"ReadTrialCaptures", "ReadTrialLabels", "ReadVariantMetrics"}


def test_schedules_come_from_config() -> None:
    run = program("dev", retrainSchedule="cron(0 3 ? * MON *)")
    rule, _, _ = _rule(run, "retrain-schedule")
    assert rule["scheduleExpression"] == "cron(0 3 ? * MON *)"


def test_idempotency_table(run: ProgramRun) -> None:
    table = one(run, "aws:dynamodb/table:Table").inputs
    assert table["name"] == f"{prefix(run)}-idempotency"
    assert table["billingMode"] == "PAY_PER_REQUEST"
    assert table["hashKey"] == "id"
    assert table["attributes"] == [{"name": "id", "type": "S"}]
    assert table["ttl"] == {"attributeName": "expiration", "enabled": True}
    assert table["serverSideEncryption"] == {"enabled": True, "kmsKeyArn": key_arn(run)}
    assert table["pointInTimeRecovery"] == {"enabled": True}


# --- monitoring ------------------------------------------------------------------------


def test_alert_topic_is_encrypted(run: ProgramRun) -> None:
    topic = one(run, "aws:sns/topic:Topic")
    assert topic.inputs["name"] == f"{prefix(run)}-alerts"
    assert topic.inputs["kmsMasterKeyId"] == key_arn(run)
    assert run.of_type("aws:sns/topicSubscription:TopicSubscription") == []


def test_alert_email_subscribes() -> None:
    run = program("dev", alertEmail="ops@example.com")
    subscription = one(run, "aws:sns/topicSubscription:TopicSubscription").inputs
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ops@example.com")


def test_alarms(run: ProgramRun) -> None:
    p = prefix(run)
    alarms = {a.inputs["name"]: a.inputs for a in run.of_type(T_ALARM)}
    expected = {f"{p}-endpoint-5xx", f"{p}-endpoint-latency", f"{p}-drift", f"{p}-quality"}
    expected |= {f"{p}-{k}-errors" for k in FUNCTIONS} | {f"{p}-{k}-dlq-depth" for k in FUNCTIONS}
    assert set(alarms) == expected
    topic_arn = one(run, "aws:sns/topic:Topic").outputs["arn"]
    assert all(a["alarmActions"] == [topic_arn] for a in alarms.values())
    endpoint = {"EndpointName": p, "VariantName": c.VARIANT_NAME}
    five = alarms[f"{p}-endpoint-5xx"]
    assert (five["namespace"], five["metricName"], five["dimensions"]) == (
        "AWS/SageMaker",
        "Invocation5XXErrors",
        endpoint,
    )
    latency = alarms[f"{p}-endpoint-latency"]
    assert (latency["metricName"], latency["extendedStatistic"]) == ("ModelLatency", "p99")
    assert latency["dimensions"] == endpoint
    for kind in FUNCTIONS:
        errors = alarms[f"{p}-{kind}-errors"]
        assert (errors["namespace"], errors["dimensions"]) == (
            "AWS/Lambda",
            {"FunctionName": f"{p}-{kind}"},
        )
        depth = alarms[f"{p}-{kind}-dlq-depth"]
        assert depth["metricName"] == "ApproximateNumberOfMessagesVisible"
        assert depth["dimensions"] == {"QueueName": f"{p}-{kind}-dlq"}
    drift = alarms[f"{p}-drift"]
    assert (drift["namespace"], drift["metricName"]) == ("MLOps", c.DRIFT_METRIC_NAME)
    assert drift["dimensions"] == {"Model": f"fraud-{run.stack}", "Feature": "_max"}
    assert drift["threshold"] == run.settings.drift_threshold
    assert drift["comparisonOperator"] == "GreaterThanThreshold"
    quality = alarms[f"{p}-quality"]
    assert (quality["metricName"], quality["dimensions"]) == (
        c.QUALITY_SHORTFALL_METRIC,
        {"Model": f"fraud-{run.stack}"},
    )
    assert quality["threshold"] == run.settings.quality_tolerance
    assert quality["evaluationPeriods"] == run.settings.quality_windows


# --- outputs ---------------------------------------------------------------------------


def test_outputs(run: ProgramRun) -> None:
    o = run.outputs
    p = prefix(run)
    assert o["rawBucket"] == bucket_name(run, "raw")
    assert o["artifactsBucket"] == bucket_name(run, "artifacts")
    assert o["captureBucket"] == bucket_name(run, "capture")
    assert o["accessLogBucket"] == bucket_name(run, "access-logs")
    assert o["kmsKeyArn"] == key_arn(run)
    for kind, output in [
        ("sagemaker", "sagemakerRoleArn"),
        ("retrain", "retrainRoleArn"),
        ("promote", "promoteRoleArn"),
        ("drift", "driftRoleArn"),
        ("quality", "qualityRoleArn"),
        ("ec2-training", "ec2TrainingRoleArn"),
    ]:
        assert o[output] == f"arn:aws:iam::{ACCOUNT}:role/{p}-{kind}"
    for kind in FUNCTIONS:
        assert o[f"{kind}FunctionName"] == f"{p}-{kind}"
    assert o["idempotencyTable"] == f"{p}-idempotency"
    assert o["alertTopicArn"] == f"arn:aws:sns:us-east-1:{ACCOUNT}:{p}-alerts"
    assert o["modelPackageGroupName"] == p
    assert o["endpointName"] == p
    assert o["modelName"] == f"fraud-{run.stack}"
    assert o["driftAlarmName"] == f"{p}-drift"
    assert o["qualityAlarmName"] == f"{p}-quality"
    assert o["launchTemplateId"].startswith("lt-")
    assert o["ec2InstanceProfileArn"].endswith(f"instance-profile/{p}-ec2-training")
    assert o["region"] == "us-east-1"
