"""infra/config/: stack files load as the CLI would; bad values give a clear message."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from infra_helpers import REPO_ROOT

from infra import config as cfg
from infra.config import (
    StackConfigError,
    keys,
    load_settings,
    load_stack_config,
    settings_for_stack,
)
from infra.preview import run_program
from lambdas import constants as c

BASE = {"aws:region": "us-east-1", "mlops:modelName": "fraud"}


def settings(**values: str) -> cfg.Settings:
    merged = {**BASE, **{k if ":" in k else f"mlops:{k}": v for k, v in values.items()}}
    return load_settings(merged.get, stack="dev", all_keys=merged)


def test_defaults() -> None:
    s = settings()
    assert (s.project, s.stack, s.region, s.model_name) == ("mlops", "dev", "us-east-1", "fraud")
    assert s.endpoint_mode == "serverless"
    assert s.retrain_schedule == "rate(7 days)"
    assert s.drift_schedule == "rate(1 day)"
    assert s.training_backend == "sagemaker"
    assert s.raw_expiration_days is None
    assert s.pinned_model_data_url is None and s.ec2_ami_id is None and s.alert_email is None
    assert s.training_image_uri == s.serving_image_uri
    assert s.training_image_uri.startswith(
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:"
    )
    assert s.powertools_layer_arn == (
        "arn:aws:lambda:us-east-1:017000801446:layer:"
        f"AWSLambdaPowertoolsPythonV3-python311-x86_64:{cfg.POWERTOOLS_LAYER_VERSION}"
    )
    assert json.loads(s.training_hyperparameters) == {}


def test_every_key_is_documented_and_read() -> None:
    doc = (REPO_ROOT / "docs" / "infra.md").read_text()
    for key in cfg.KEYS:
        assert f"`mlops:{key.name}`" in doc, f"docs/infra.md does not document mlops:{key.name}"
    asked: set[str] = set()

    def getter(key: str) -> str | None:
        asked.add(key)
        return BASE.get(key)

    load_settings(getter, stack="dev")
    assert {k.removeprefix("mlops:") for k in asked if k.startswith("mlops:")} == cfg.KEY_NAMES


def _field(key: cfg.Key) -> str:
    """The Settings field of a key: camelCase -> snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key.name).lower()


LITERAL_DEFAULTS = [k for k in cfg.KEYS if k.default is not None and not k.default.startswith("(")]


def test_lambda_keys_default_as_the_lambdas_do() -> None:
    env_keys = [k for k in cfg.KEYS if k.env is not None and k.env in c.DEFAULTS]
    assert len(env_keys) >= 18, [k.name for k in env_keys]
    for key in env_keys:
        assert key.default == c.DEFAULTS[key.env], f"mlops:{key.name} vs {key.env}"
    # a key that names a Lambda variable without a control-plane default computes its own
    for key in cfg.KEYS:
        if key.env is not None and key.env not in c.DEFAULTS:
            assert key.default is not None and key.default.startswith("("), key.name


@pytest.mark.parametrize("key", LITERAL_DEFAULTS, ids=lambda k: k.name)
def test_unset_key_takes_the_key_table_default(key: cfg.Key) -> None:
    value = getattr(settings(), _field(key))
    assert str(value) == key.default, f"mlops:{key.name}: {value!r} != {key.default!r}"


@pytest.mark.parametrize(
    ("name", "default", "expected"),
    [
        ("driftThreshold", "0.35", 0.35),  # number
        ("trainingMaxSeconds", "7200", 7200),  # integer
        ("endpointMode", "instance", "instance"),  # choice
        ("trainingInstanceType", "ml.c5.xlarge", "ml.c5.xlarge"),  # matching
        ("retrainSchedule", "rate(2 days)", "rate(2 days)"),  # schedule (string)
        ("trainingHyperparameters", '{"b": 1, "a": 2}', '{"a": 2, "b": 1}'),
    ],
)
def test_reader_reads_defaults_from_the_key_table(
    monkeypatch: pytest.MonkeyPatch, name: str, default: str, expected: object
) -> None:
    monkeypatch.setitem(keys.KEY_DEFAULTS, name, default)
    assert getattr(settings(), _field(cfg.Key(name, None, ""))) == expected


def test_docs_show_the_key_table_defaults() -> None:
    doc = (REPO_ROOT / "docs" / "infra.md").read_text()
    for key in LITERAL_DEFAULTS:
        assert f"| `mlops:{key.name}` | `{key.default}` |" in doc, key.name


@pytest.mark.parametrize(
    ("region", "account"),
    [
        ("us-east-1", "683313688378"),
        ("eu-west-1", "141502667606"),
        ("us-west-2", "246618743249"),
        ("eu-central-1", "492215442770"),
    ],
)
def test_default_image_per_region(region: str, account: str) -> None:
    s = settings(**{"aws:region": region})
    assert s.training_image_uri.startswith(f"{account}.dkr.ecr.{region}.amazonaws.com/")


def test_unknown_region_without_explicit_image() -> None:
    with pytest.raises(StackConfigError, match=r"mlops:trainingImageUri: .*'sa-east-1'.*set"):
        settings(**{"aws:region": "sa-east-1"})
    image = "123456789012.dkr.ecr.sa-east-1.amazonaws.com/my-sklearn:1.0"
    s = settings(**{"aws:region": "sa-east-1", "trainingImageUri": image, "servingImageUri": image})
    assert s.serving_image_uri == image


def test_missing_model_name() -> None:
    with pytest.raises(StackConfigError, match=r"mlops:modelName is required"):
        load_settings({"aws:region": "us-east-1"}.get, stack="dev")


def test_missing_region() -> None:
    with pytest.raises(StackConfigError, match=r"aws:region is required"):
        load_settings({"mlops:modelName": "fraud"}.get, stack="dev")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "endpointMode",
            "gpu",
            r"mlops:endpointMode: 'gpu' is invalid; expected one of serverless, instance",
        ),
        ("trainingBackend", "batch", r"mlops:trainingBackend: 'batch' .* one of sagemaker, ec2"),
        ("retrainSchedule", "weekly", r"mlops:retrainSchedule: 'weekly' .* schedule expression"),
        ("driftSchedule", "rate(0 days)", r"mlops:driftSchedule"),
        ("driftSchedule", "rate(2 day)", r"mlops:driftSchedule"),
        ("driftThreshold", "0", r"mlops:driftThreshold: '0' .* a number > 0"),
        ("driftThreshold", "abc", r"mlops:driftThreshold"),
        ("promotionMargin", "-0.1", r"mlops:promotionMargin: '-0.1' .* >= 0"),
        ("minMinorityRecall", "1.5", r"mlops:minMinorityRecall: '1.5' .* <= 1"),
        ("maxFairnessGap", "1.5", r"mlops:maxFairnessGap: '1.5' .* <= 1"),
        ("fairnessAction", "warn", r"mlops:fairnessAction: 'warn' .* one of hold, reject"),
        ("serverlessMemoryMb", "1000", r"mlops:serverlessMemoryMb: 1000 .* one of 1024, 2048"),
        ("serverlessMaxConcurrency", "0", r"mlops:serverlessMaxConcurrency: '0' .* 1..200"),
        ("endpointInstanceCount", "0", r"mlops:endpointInstanceCount: '0' .* >= 1"),
        ("endpointInstanceCount", "two", r"mlops:endpointInstanceCount: 'two' .* integer"),
        ("autoscalingMax", "0", r"mlops:autoscalingMax"),
        ("canaryPercent", "100", r"mlops:canaryPercent: '100' .* 1..99"),
        ("captureSamplePercent", "0", r"mlops:captureSamplePercent"),
        ("rolloutMode", "canary", r"mlops:rolloutMode: 'canary' .* one of direct, shadow, ab"),
        ("rolloutMode", "shadow", r"mlops:rolloutMode: 'shadow' .* Serverless endpoints have"),
        ("abTrafficPercent", "60", r"mlops:abTrafficPercent: '60' .* 1..50"),
        ("rolloutMinRequests", "0", r"mlops:rolloutMinRequests"),
        ("rolloutCheckSchedule", "often", r"mlops:rolloutCheckSchedule"),
        ("captureRetentionDays", "-1", r"mlops:captureRetentionDays: '-1' .* >= 1"),
        ("noncurrentVersionDays", "0", r"mlops:noncurrentVersionDays"),
        ("logRetentionDays", "10", r"mlops:logRetentionDays: 10 .* one of 1, 3, 5"),
        ("lambdaReservedConcurrency", "0", r"mlops:lambdaReservedConcurrency: '0'"),
        ("lambdaTimeoutSeconds", "901", r"mlops:lambdaTimeoutSeconds: '901' .* 1..900"),
        ("trainingInstanceType", "m5.large", r"mlops:trainingInstanceType: 'm5.large' .* ml\.\*"),
        ("ec2InstanceType", "ml.m5.large", r"mlops:ec2InstanceType"),
        ("ec2AmiId", "ubuntu", r"mlops:ec2AmiId: 'ubuntu' .* AMI id"),
        ("trainingImageUri", "python:3.11", r"mlops:trainingImageUri: 'python:3.11' .* ECR"),
        ("trainingHyperparameters", "[1]", r"mlops:trainingHyperparameters: .* a JSON object"),
        ("alertEmail", "ops", r"mlops:alertEmail: 'ops' .* e-mail"),
        ("pinnedModelDataUrl", "https://x/model.tar.gz", r"mlops:pinnedModelDataUrl: .* s3://"),
        ("powertoolsLayerArn", "layer", r"mlops:powertoolsLayerArn"),
        ("modelName", "Churn_Model", r"mlops:modelName: 'Churn_Model' .* lowercase"),
        ("modelName", "a" * 30, r"mlops:modelName: .* a shorter name"),
        ("aws:region", "moon-1", r"aws:region: 'moon-1' is not an AWS region"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(key: str, value: str, message: str) -> None:
    with pytest.raises(StackConfigError, match=message):
        settings(**{key: value})


def test_autoscaling_max_below_min() -> None:
    with pytest.raises(
        StackConfigError, match=r"mlops:autoscalingMax: 2 .* >= autoscalingMin \(3\)"
    ):
        settings(autoscalingMin="3", autoscalingMax="2")


def test_unknown_key_is_a_typo() -> None:
    with pytest.raises(
        StackConfigError, match=r"unknown configuration key\(s\) mlops:endpointMod;"
    ):
        settings(endpointMod="instance")
    # other namespaces (aws:*) are not ours to check
    assert settings(**{"aws:skipMetadataApiCheck": "true"}).region == "us-east-1"


def test_unknown_stack_lists_the_available_ones() -> None:
    with pytest.raises(StackConfigError) as excinfo:
        load_stack_config("staging", REPO_ROOT)
    message = str(excinfo.value)
    assert "unknown stack 'staging'" in message
    assert "available stacks: dev, local, prod" in message
    with pytest.raises(StackConfigError, match="unknown stack 'staging'"):
        run_program("staging")


@pytest.mark.parametrize("stack", ["dev", "prod", "local"])
def test_stack_files_load_and_validate(stack: str) -> None:
    s, values = settings_for_stack(stack, REPO_ROOT)
    assert s.stack == stack and s.model_name == "fraud"
    assert all(isinstance(v, str) for v in values.values())


@pytest.mark.parametrize(
    ("stack", "mode"), [("prod", "manual"), ("dev", "auto"), ("local", "auto")]
)
def test_prod_asks_a_person_for_every_model(stack: str, mode: str) -> None:
    s, _ = settings_for_stack(stack, REPO_ROOT)
    assert s.approval_mode == mode
    assert (s.min_label_agreement, s.min_label_learnability) == (0.25, 0.25)


def test_guard_thresholds_are_validated() -> None:
    with pytest.raises(StackConfigError, match="minLabelLearnability"):
        settings(minLabelLearnability="1.5")
    with pytest.raises(StackConfigError, match="approvalMode"):
        settings(approvalMode="sometimes")


def test_local_stack_points_every_service_at_moto() -> None:
    values = load_stack_config("local", REPO_ROOT)
    assert values["aws:skipCredentialsValidation"] == "true"
    assert values["aws:skipRequestingAccountId"] == "true"
    assert values["aws:skipMetadataApiCheck"] == "true"
    assert values["aws:s3UsePathStyle"] == "true"
    (endpoints,) = json.loads(values["aws:endpoints"])
    assert set(endpoints.values()) == {"http://127.0.0.1:5000"}
    used = {"s3", "iam", "sts", "kms", "sqs", "sns", "lambda", "dynamodb", "cloudwatch", "logs",
            "events", "sagemaker", "ec2", "ssm", "applicationautoscaling"}  # fmt: skip
    assert used <= set(endpoints)
    local = settings_for_stack("local", REPO_ROOT)[0]
    assert local.powertools_layer_arn == ""  # moto has no AWS-published layers
    assert local.ec2_ami_id is not None  # no SSM public parameters in moto either


def test_powertools_layer_can_be_switched_off() -> None:
    assert settings(powertoolsLayerArn="none").powertools_layer_arn == ""
    custom = "arn:aws:lambda:us-east-1:123456789012:layer:my-powertools:3"
    assert settings(powertoolsLayerArn=custom).powertools_layer_arn == custom


def test_yaml_values_become_cli_strings(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.x.yaml").write_text(
        "config:\n"
        "  aws:region: eu-west-1\n"
        "  mlops:modelName: fraud\n"
        "  mlops:endpointInstanceCount: 3\n"
        "  mlops:driftThreshold: 0.25\n"
        "  mlops:alertEmail:\n"
        "    value: ops@example.com\n"
        "  aws:skipMetadataApiCheck: true\n"
        "  mlops:trainingHyperparameters:\n"
        "    target: frauded\n"
    )
    values = load_stack_config("x", tmp_path)
    assert values["mlops:endpointInstanceCount"] == "3"
    assert values["mlops:driftThreshold"] == "0.25"
    assert values["aws:skipMetadataApiCheck"] == "true"
    assert values["mlops:alertEmail"] == "ops@example.com"
    assert json.loads(values["mlops:trainingHyperparameters"]) == {"target": "frauded"}
    s, _ = settings_for_stack("x", tmp_path, {"mlops:endpointMode": "instance"})
    assert (s.endpoint_instance_count, s.drift_threshold, s.endpoint_mode) == (3, 0.25, "instance")


def test_secrets_and_unnamespaced_keys_are_refused(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.s.yaml").write_text("config:\n  mlops:alertEmail:\n    secure: AAAB\n")
    with pytest.raises(StackConfigError, match="mlops:alertEmail: secret values cannot be read"):
        load_stack_config("s", tmp_path)
    (tmp_path / "Pulumi.n.yaml").write_text("config:\n  modelName: fraud\n")
    with pytest.raises(StackConfigError, match=r"needs a namespace, e\.g\. mlops:modelName"):
        load_stack_config("n", tmp_path)


def test_the_target_column_goes_to_the_jobs_as_their_target() -> None:
    assert settings().target_column == "label"
    chosen = settings(targetColumn="churned")
    assert chosen.target_column == "churned"
    assert json.loads(chosen.training_hyperparameters)["target"] == "churned"
    both = settings(targetColumn="churned", trainingHyperparameters='{"target": "churned"}')
    assert both.target_column == "churned"
    with pytest.raises(StackConfigError, match="mlops:targetColumn"):
        settings(targetColumn="churned", trainingHyperparameters='{"target": "label"}')


def test_pulumi_new_asks_for_what_a_stack_needs() -> None:
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    template = project["template"]
    assert template["description"]
    prompts = template["config"]
    assert set(prompts) == {
        "aws:region",
        "mlops:modelName",
        "mlops:targetColumn",
        "mlops:endpointMode",
    }
    known = {f"mlops:{k.name}" for k in cfg.KEYS} | {"aws:region"}
    assert set(prompts) <= known
    assert all(p["description"] for p in prompts.values())
    # the defaults (and a model name a user types) make a stack that loads
    answers = {k: str(p.get("default", "fraud")) for k, p in prompts.items()}
    loaded = load_settings(answers.get, stack="dev", all_keys=answers)
    assert loaded.endpoint_mode == "serverless" and loaded.target_column == "label"
