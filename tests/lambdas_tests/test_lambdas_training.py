"""lambdas.training, config and incoming: the pure builders, the config and the data version."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lambdas import constants as c
from lambdas.aws import Clients
from lambdas.config import Config, ConfigError, make_job_name
from lambdas.incoming import data_version
from lambdas.training import (
    BOOT_SCRIPT,
    build_ec2_job,
    build_training_request,
    champion_model_uri,
    render_boot_script,
    render_user_data,
    sklearn_image_uri,
)

ENV = {
    c.MODEL_NAME: "churn",
    c.RAW_BUCKET: "raw",
    c.ARTIFACTS_BUCKET: "art",
    c.SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/sm",
    c.KMS_KEY_ARN: "arn:aws:kms:eu-west-1:123456789012:key/k",
    c.TRAINING_HOSTS: "churn-training-hosts",
    c.TRAINING_JOBS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs",
    "AWS_REGION": "eu-west-1",
}
JOB = "churn-20240501-120000-0123abcd"
VERSION = "0123abcd" + "0" * 56
CHAMPION_JOB = "churn-20240401-120000-89abcdef"
CHAMPION = {  # as lambdas.registry.find_champion returns it
    "arn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-packages/3",
    "version": 3,
    "image": "img",
    "model_data_url": f"s3://art/training/{CHAMPION_JOB}/output/model.tar.gz",
    "evaluation_uri": f"s3://art/training/{CHAMPION_JOB}/evaluation.json",
}


def _config(**overrides: str) -> Config:
    return Config.from_env({**ENV, **overrides})


def test_training_request_follows_the_contract() -> None:
    request = build_training_request(_config(), JOB, VERSION, "s3")

    assert request["TrainingJobName"] == JOB
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": (
            "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:"
            + c.DEFAULT_SKLEARN_IMAGE_TAG
        ),
        "TrainingInputMode": "File",
    }
    hps = request["HyperParameters"]
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]) == "s3://art/code/jobs.tar.gz"
    assert json.loads(hps["sagemaker_region"]) == "eu-west-1"
    assert json.loads(hps["target"]) == "label"
    assert all(isinstance(v, str) for v in hps.values())
    [channel] = request["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    assert channel["DataSource"]["S3DataSource"] == {
        "S3DataType": "S3Prefix",
        "S3Uri": "s3://raw/incoming/",
        "S3DataDistributionType": "FullyReplicated",
    }
    assert request["OutputDataConfig"] == {
        "S3OutputPath": "s3://art/training/",
        "KmsKeyId": ENV[c.KMS_KEY_ARN],
    }
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == ENV[c.KMS_KEY_ARN]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert request["RoleArn"] == ENV[c.SAGEMAKER_ROLE_ARN]
    assert request["EnableNetworkIsolation"] is False
    assert "VpcConfig" not in request
    assert request["Tags"] == [
        {"Key": "mlops:model", "Value": "churn"},
        {"Key": "mlops:data-version", "Value": VERSION},
        {"Key": "mlops:trigger", "Value": "s3"},
    ]


@pytest.mark.parametrize("isolated", [False, True])
def test_a_champion_becomes_the_champion_channel(isolated: bool) -> None:
    config = _config(**{c.NETWORK_ISOLATION: str(isolated).lower()})

    request = build_training_request(config, JOB, VERSION, "drift", CHAMPION)

    channels = {ch["ChannelName"]: ch for ch in request["InputDataConfig"]}
    assert set(channels) == {"train", "champion", *(["code"] if isolated else [])}
    assert channels["champion"] == {
        "ChannelName": "champion",
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",  # the one object: model.tar.gz
                "S3Uri": CHAMPION["model_data_url"],
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }
    hps = request["HyperParameters"]
    assert json.loads(hps["champion-package"]) == CHAMPION["arn"]
    # everything else is the request a first model gets
    first = build_training_request(config, JOB, VERSION, "drift")
    assert {
        k: v for k, v in request.items() if k not in {"InputDataConfig", "HyperParameters"}
    } == {k: v for k, v in first.items() if k not in {"InputDataConfig", "HyperParameters"}}
    assert {k: v for k, v in hps.items() if k != "champion-package"} == first["HyperParameters"]


@pytest.mark.parametrize(
    "champion",
    [
        None,  # first model
        {**CHAMPION, "model_data_url": "s3://elsewhere/models/model.tar.gz"},  # role can't read
        {**CHAMPION, "model_data_url": None},
    ],
)
def test_no_usable_champion_no_channel(champion: dict | None) -> None:
    request = build_training_request(_config(), JOB, VERSION, "s3", champion)

    assert [ch["ChannelName"] for ch in request["InputDataConfig"]] == ["train"]
    assert "champion-package" not in request["HyperParameters"]
    assert champion_model_uri(_config(), champion) is None
    assert "CHAMPION=''" in render_user_data(_config(), JOB, champion)


def test_training_request_with_vpc_isolation_and_overrides() -> None:
    config = _config(
        **{
            c.SUBNET_IDS: "subnet-a, subnet-b",
            c.SECURITY_GROUP_IDS: "sg-1",
            c.NETWORK_ISOLATION: "true",
            c.TRAINING_IMAGE_URI: "my.registry/sklearn:custom",
            c.TRAINING_HYPERPARAMETERS: '{"target": "churned", "seed": 7}',
            c.TRAINING_MAX_SECONDS: "600",
        }
    )

    request = build_training_request(config, JOB, VERSION, "manual")

    assert request["VpcConfig"] == {
        "Subnets": ["subnet-a", "subnet-b"],
        "SecurityGroupIds": ["sg-1"],
    }
    assert request["EnableNetworkIsolation"] is True
    # an isolated container cannot fetch the bundle from S3: it arrives as a channel
    assert [ch["ChannelName"] for ch in request["InputDataConfig"]] == ["train", "code"]
    assert json.loads(request["HyperParameters"]["sagemaker_submit_directory"]) == (
        "/opt/ml/input/data/code/jobs.tar.gz"
    )
    assert request["AlgorithmSpecification"]["TrainingImage"] == "my.registry/sklearn:custom"
    assert json.loads(request["HyperParameters"]["target"]) == "churned"
    assert json.loads(request["HyperParameters"]["seed"]) == 7
    assert request["StoppingCondition"]["MaxRuntimeInSeconds"] == 600


def test_half_a_vpc_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=c.SECURITY_GROUP_IDS):
        build_training_request(_config(**{c.SUBNET_IDS: "subnet-a"}), JOB, VERSION, "s3")


def test_unknown_region_needs_an_explicit_image() -> None:
    with pytest.raises(ConfigError, match=c.TRAINING_IMAGE_URI):
        sklearn_image_uri("xx-nowhere-1")
    assert sklearn_image_uri("cn-north-1").endswith(
        ".amazonaws.com.cn/sagemaker-scikit-learn:" + c.DEFAULT_SKLEARN_IMAGE_TAG
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({c.MODEL_NAME: ""}, c.MODEL_NAME),
        ({c.MODEL_NAME: "churn_v2"}, c.MODEL_NAME),
        ({c.MODEL_NAME: "m" * 40}, "at most"),
        ({c.TRAINING_MAX_SECONDS: "an hour"}, c.TRAINING_MAX_SECONDS),
        ({c.PROMOTION_MARGIN: "nan"}, c.PROMOTION_MARGIN),
        ({c.TRAINING_HYPERPARAMETERS: "[1]"}, c.TRAINING_HYPERPARAMETERS),
        ({c.ENDPOINT_MODE: "gpu"}, c.ENDPOINT_MODE),
        ({c.NETWORK_ISOLATION: "maybe"}, c.NETWORK_ISOLATION),
    ],
)
def test_bad_configuration_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**env)


def test_require_lists_every_missing_variable() -> None:
    config = Config.from_env({c.MODEL_NAME: "churn"})

    with pytest.raises(ConfigError) as error:
        config.require("raw_bucket", "role_arn", "model_package_group")

    assert str(error.value) == (
        f"missing configuration: {c.RAW_BUCKET}, {c.SAGEMAKER_ROLE_ARN}, {c.MODEL_PACKAGE_GROUP}"
    )


def test_config_defaults_come_from_the_constants() -> None:
    config = Config.from_env({c.MODEL_NAME: "churn", c.ARTIFACTS_BUCKET: "art"})

    assert config.promotion_margin == float(c.DEFAULTS[c.PROMOTION_MARGIN])
    assert config.drift_threshold == float(c.DEFAULTS[c.DRIFT_THRESHOLD])
    assert config.endpoint_mode == c.DEFAULTS[c.ENDPOINT_MODE]
    assert config.code_s3_uri == "s3://art/code/jobs.tar.gz"
    assert config.capture_on is False  # serverless endpoints have no data capture
    assert Config.from_env({c.MODEL_NAME: "m", c.ENDPOINT_MODE: "instance"}).capture_on
    assert Config.from_env({c.MODEL_NAME: "m", c.CAPTURE_ENABLED: "true"}).capture_on


def test_dataclass_defaults_and_blank_variables_agree_with_the_defaults_table() -> None:
    env = {c.MODEL_NAME: "churn", "AWS_REGION": "eu-west-1"}
    blank = {name: " " for name in c.DEFAULTS}

    from_env = Config.from_env(env)

    assert Config(model_name="churn", region="eu-west-1") == replace(from_env, code_s3_uri=None)
    assert Config.from_env({**blank, **env}) == from_env


def test_job_name_follows_the_contract() -> None:
    name = make_job_name("churn", datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC), VERSION)

    assert name == JOB
    assert _config().job_name_pattern.match(name)
    assert len(make_job_name("m" * 38, datetime.now(UTC), VERSION)) == 63


def test_data_version_is_order_and_quote_independent() -> None:
    a = {"key": "incoming/a.csv", "etag": '"aaa"'}
    b = {"key": "incoming/b.csv", "etag": "bbb"}

    assert data_version([a, b]) == data_version([b, {**a, "etag": "aaa"}])
    assert data_version([a, b]) != data_version([a, {**b, "etag": "ccc"}])
    expected = "incoming/a.csv\taaa\nincoming/b.csv\tbbb"
    import hashlib

    assert data_version([a, b]) == hashlib.sha256(expected.encode()).hexdigest()


# --- EC2 backend --------------------------------------------------------------------------------


def test_an_ec2_job_is_a_message_with_its_script_and_an_expiry() -> None:
    job = build_ec2_job(_config(), JOB, now=1_700_000_000.5)

    assert job["job"] == JOB
    assert job["script"] == render_user_data(_config(), JOB)
    assert job["expires"] == 1_700_000_000 + 3600
    json.dumps(job)  # the queue message body


def test_the_boot_script_takes_one_job_and_scales_the_group_in(tmp_path: Path) -> None:
    script = render_boot_script("eu-west-1", "https://sqs.eu-west-1.amazonaws.com/1/jobs")

    for expected in [
        "QUEUE=https://sqs.eu-west-1.amazonaws.com/1/jobs",
        "aws sqs receive-message",
        "aws sqs delete-message",  # at most once: deleted before it runs
        "--should-decrement-desired-capacity",
        "X-aws-ec2-metadata-token",  # IMDSv2
        "bash /opt/mlops-job.sh",
    ]:
        assert expected in script, expected
    assert script.index("delete-message") < script.index("bash /opt/mlops-job.sh")
    path = tmp_path / BOOT_SCRIPT
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_user_data_runs_the_same_contract_and_is_valid_bash(tmp_path: Path) -> None:
    script = render_user_data(_config(), JOB)

    for expected in [
        f"LINEAGE=s3://art/lineage/{JOB}.json",  # downloads exactly the lineage's versions
        "--version-id",
        "-m jobs.train",
        "SM_CHANNEL_TRAIN=/opt/ml/input/data/train",
        "SM_MODEL_DIR=/opt/ml/model",
        f"OUT=s3://art/training/{JOB}/output",
        '"$OUT/model.tar.gz"',
        '"$OUT/output.tar.gz"',
        '"$OUT/failure"',
        "aws events put-events",
        'timeout "$MAX_SECONDS"',
        "scikit-learn==",
    ]:
        assert expected in script, expected
    hps = script.split("<<'MLOPS_HPS'\n", 1)[1].split("\nMLOPS_HPS", 1)[0]
    assert json.loads(json.loads(hps)["sagemaker_program"]) == "train.py"
    assert shutil.which("bash"), "the EC2 host runs this with bash: the syntax check needs it"
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_user_data_downloads_the_champion_like_sagemaker(tmp_path: Path) -> None:
    script = build_ec2_job(_config(), JOB, CHAMPION, now=0)["script"]

    assert f"CHAMPION={CHAMPION['model_data_url']}" in script
    assert 'aws s3 cp "$CHAMPION" /opt/ml/input/data/champion/model.tar.gz' in script
    assert "export SM_CHANNEL_CHAMPION=/opt/ml/input/data/champion" in script
    assert 'SM_CHANNELS="$CHANNELS"' in script
    hps = json.loads(script.split("<<'MLOPS_HPS'\n", 1)[1].split("\nMLOPS_HPS", 1)[0])
    assert json.loads(hps["champion-package"]) == CHAMPION["arn"]
    assert shutil.which("bash"), "the EC2 host runs this with bash: the syntax check needs it"
    path = tmp_path / "user-data.sh"
    path.write_text(script)
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_handlers_import_nothing_heavy() -> None:
    code = (
        "import sys, lambdas.retrain, lambdas.promote, lambdas.drift, lambdas.training;"
        "heavy = {'pandas', 'numpy', 'sklearn', 'scipy', 'sagemaker'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)

    assert out.stdout.strip() == "[]"


def test_clients_follow_the_endpoint_of_the_handler_environment() -> None:
    # the local cloud calls handle(event, environ) in-process with its own endpoint
    local = Config.from_env(
        {c.MODEL_NAME: "m", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL": "http://127.0.0.1:5999"}
    )
    aws = Config.from_env({c.MODEL_NAME: "m", "AWS_REGION": "eu-west-1"})

    assert Clients.for_config(local).sagemaker.meta.endpoint_url == "http://127.0.0.1:5999"
    assert Clients.for_config(aws).sagemaker.meta.endpoint_url == (
        "https://api.sagemaker.eu-west-1.amazonaws.com"
    )
