"""Pure builders of a training run: the SageMaker request and the EC2 training host.

No AWS calls here. The retrain handler, the ``mlops train`` CLI, the SageMaker SDK path
(``mlops/sagemaker_sdk.py``) and the tests all build a job with these functions, so they
cannot disagree about what a job looks like.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from lambdas import constants as c
from lambdas.config import Config, ConfigError, JsonDict

# sagemaker-scikit-learn framework images: ECR registry account per region
# (the same accounts for every framework version; from the SageMaker Python SDK's
# image_uri_config/sklearn.json).
SKLEARN_REGISTRIES = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}

# What the jobs need on the EC2 training host when the code bundle carries no
# requirements.txt (the versions the project is developed and tested with).
EC2_REQUIREMENTS = (
    "scikit-learn==1.9.1",
    "pandas==3.1.1",
    "numpy==2.4.6",
    "pyarrow==24.0.0",
    "matplotlib==3.11.2",
    "joblib==1.6.0",
)

CODE_CHANNEL = "code"  # with network isolation the code bundle arrives as a channel
CHAMPION_CHANNEL = "champion"  # the champion's model.tar.gz, evaluated on the same test split
CHAMPION_PACKAGE_HP = "champion-package"  # the champion's model package ARN (lineage)


def sklearn_image_uri(region: str, tag: str = c.DEFAULT_SKLEARN_IMAGE_TAG) -> str:
    """The SageMaker scikit-learn framework image for ``region``."""
    account = SKLEARN_REGISTRIES.get(region)
    if account is None:
        raise ConfigError(
            f"no scikit-learn framework image known for region {region!r}: "
            f"set {c.TRAINING_IMAGE_URI}"
        )
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{domain}/sagemaker-scikit-learn:{tag}"


def training_image(config: Config) -> str:
    return config.training_image_uri or sklearn_image_uri(config.region)


def output_prefix(config: Config) -> str:
    """``s3://<artifacts>/training/``; SageMaker appends ``<job>/output/model.tar.gz``."""
    return f"s3://{config.artifacts_bucket}/{c.TRAINING_PREFIX}"


def model_artifacts_uri(config: Config, job_name: str) -> str:
    return f"{output_prefix(config)}{job_name}/output/model.tar.gz"


def job_tags(config: Config, data_version: str, trigger: str) -> list[dict[str, str]]:
    return [
        {"Key": "mlops:model", "Value": config.model_name},
        {"Key": "mlops:data-version", "Value": data_version},
        {"Key": "mlops:trigger", "Value": trigger},
    ]


def champion_model_uri(config: Config, champion: Mapping[str, Any] | None) -> str | None:
    """The champion's ``model.tar.gz`` if a training job may read it, else ``None``.

    Only a model under ``s3://<artifacts>/training/`` is given to the job: that is what
    the SageMaker execution role (and the EC2 host role) may read. A champion elsewhere
    (e.g. registered by hand) is left out: a channel that cannot be downloaded would
    fail the whole job, and the gate then compares on the champion's own test split.
    """
    url = (champion or {}).get("model_data_url")
    prefix = f"s3://{config.artifacts_bucket}/{c.TRAINING_PREFIX}"
    if isinstance(url, str) and url.startswith(prefix) and url.endswith(".tar.gz"):
        return url
    return None


def hyperparameters(
    config: Config, job_name: str, champion: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The job's hyperparameters before encoding (what the job sees in ``SM_HPS``).

    With a usable ``champion`` (see :func:`champion_model_uri`), ``champion-package`` is
    its model package ARN, recorded by the job in ``evaluation.json`` (lineage).
    """
    assert config.code_s3_uri is not None  # required by the callers
    submit_dir = config.code_s3_uri
    if config.network_isolation:
        # The container cannot reach S3: the SDK's recipe is to ship the bundle as an
        # input channel and point sagemaker_submit_directory at its local copy.
        submit_dir = f"/opt/ml/input/data/{CODE_CHANNEL}/{config.code_s3_uri.rsplit('/', 1)[-1]}"
    hps: dict[str, Any] = {"target": "label", **config.hyperparameters}
    hps.update(
        {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": submit_dir,
            "sagemaker_region": config.region,
            "sagemaker_job_name": job_name,
            "sagemaker_container_log_level": 20,
        }
    )
    if champion_model_uri(config, champion) and (champion or {}).get("arn"):
        hps[CHAMPION_PACKAGE_HP] = str((champion or {})["arn"])
    return hps


def encode_hyperparameters(hps: dict[str, Any]) -> dict[str, str]:
    """JSON-encode every value, as the SageMaker SDK does for framework estimators."""
    return {str(k): json.dumps(v) for k, v in hps.items()}


def build_training_request(
    config: Config,
    job_name: str,
    data_version: str,
    trigger: str,
    champion: Mapping[str, Any] | None = None,
) -> JsonDict:
    """The ``create_training_job`` keyword arguments for one job.

    Parameters
    ----------
    config : Config
        Needs the artifacts and raw buckets, the SageMaker role and the code bundle URI.
    job_name : str
        See :func:`lambdas.config.make_job_name`.
    data_version : str
        sha256 of the training data (see :func:`lambdas.incoming.data_version`).
    trigger : str
        ``"s3"``, ``"schedule"``, ``"drift"`` or ``"manual"``; becomes a tag.
    champion : dict, optional
        The champion (:func:`lambdas.registry.find_champion`). Its ``model.tar.gz`` becomes
        input channel ``champion`` (the job evaluates it on the challenger's test split)
        and its ARN hyperparameter ``champion-package``. ``None``: first model, no channel.
    """
    config.require("artifacts_bucket", "raw_bucket", "role_arn", "code_s3_uri")
    channels: list[JsonDict] = [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": f"s3://{config.raw_bucket}/{c.INCOMING_PREFIX}",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
            "InputMode": "File",
        }
    ]
    if config.network_isolation:
        channels.append(
            {
                "ChannelName": CODE_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": config.code_s3_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        )
    champion_uri = champion_model_uri(config, champion)
    if champion_uri:
        # S3Prefix on the object's full key downloads that one object: model.tar.gz
        channels.append(
            {
                "ChannelName": CHAMPION_CHANNEL,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": champion_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "InputMode": "File",
            }
        )
    output: JsonDict = {"S3OutputPath": output_prefix(config)}
    resources: JsonDict = {
        "InstanceType": config.training_instance_type,
        "InstanceCount": 1,
        "VolumeSizeInGB": 30,
    }
    if config.kms_key_arn:
        output["KmsKeyId"] = config.kms_key_arn
        resources["VolumeKmsKeyId"] = config.kms_key_arn
    request: JsonDict = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": {
            "TrainingImage": training_image(config),
            "TrainingInputMode": "File",
        },
        "RoleArn": config.role_arn,
        "HyperParameters": encode_hyperparameters(hyperparameters(config, job_name, champion)),
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": config.training_max_seconds},
        "EnableNetworkIsolation": config.network_isolation,
        "Tags": job_tags(config, data_version, trigger),
    }
    if config.subnet_ids or config.security_group_ids:
        if not (config.subnet_ids and config.security_group_ids):
            raise ConfigError(f"a VPC needs both {c.SUBNET_IDS} and {c.SECURITY_GROUP_IDS}")
        request["VpcConfig"] = {
            "Subnets": list(config.subnet_ids),
            "SecurityGroupIds": list(config.security_group_ids),
        }
    return request


# --- EC2 backend ----------------------------------------------------------------------

_USER_DATA = """#!/bin/bash
# mlops training host for {job}: runs the SageMaker training contract once, uploads
# the same artifacts a SageMaker job would, reports the outcome, then terminates.
set -uo pipefail
exec > >(tee -a /var/log/mlops-training.log) 2>&1
JOB={job}
REGION={region}
export AWS_DEFAULT_REGION="$REGION"
OUT={out}
LINEAGE={lineage}
CODE={code}
CHAMPION={champion}
KMS={kms}
MAX_SECONDS={max_seconds}
VENV=/opt/mlops/venv
STATUS=Failed
REASON="training host did not finish"
# dead man's switch: the host goes away even if this script hangs
shutdown -h +$(( MAX_SECONDS / 60 + 30 )) || true

sse() {{ if [ -n "$KMS" ]; then echo --sse aws:kms --sse-kms-key-id "$KMS"; fi; }}

finish() {{
  set +e
  if [ "$STATUS" != Completed ]; then
    mkdir -p /opt/ml/output
    [ -s /opt/ml/output/failure ] || echo "$REASON" > /opt/ml/output/failure
    REASON=$(head -c 1000 /opt/ml/output/failure)
    aws s3 cp /opt/ml/output/failure "$OUT/failure" $(sse)
  fi
  aws s3 cp /var/log/mlops-training.log "$OUT/host.log" $(sse)
  DETAIL=$(STATUS="$STATUS" REASON="$REASON" JOB="$JOB" OUT="$OUT" python3 -c '
import json, os
d = {{"TrainingJobName": os.environ["JOB"], "TrainingJobStatus": os.environ["STATUS"],
     "ModelArtifacts": {{"S3ModelArtifacts": os.environ["OUT"] + "/model.tar.gz"}},
     "Backend": "ec2"}}
if os.environ["STATUS"] != "Completed":
    d["FailureReason"] = os.environ["REASON"]
print(json.dumps([{{"Source": {source}, "DetailType": {detail_type},
                    "Detail": json.dumps(d)}}]))')
  aws events put-events --entries "$DETAIL"
  shutdown -h now
}}
trap finish EXIT

step() {{ REASON="$1"; }}

step "could not install python"
dnf install -y -q python3.11 python3.11-pip || exit 1
python3.11 -m venv "$VENV" || exit 1

step "could not fetch the code bundle $CODE"
mkdir -p /opt/ml/code /opt/ml/model /opt/ml/output/data /opt/ml/input/config \\
  /opt/ml/input/data/train
aws s3 cp "$CODE" /tmp/code.tar.gz && tar -xzf /tmp/code.tar.gz -C /opt/ml/code || exit 1

step "could not install the jobs' dependencies"
if [ -f /opt/ml/code/requirements.txt ]; then
  "$VENV/bin/pip" install -q -r /opt/ml/code/requirements.txt || exit 1
else
  "$VENV/bin/pip" install -q {requirements} || exit 1
fi

step "could not fetch the training data listed in $LINEAGE"
aws s3 cp "$LINEAGE" /tmp/lineage.json || exit 1
python3 -c '
import json
for o in json.load(open("/tmp/lineage.json"))["objects"]:
    print("\\t".join([o["bucket"], o["key"], o["version_id"]]))' > /tmp/objects.tsv || exit 1
while IFS=$'\\t' read -r BUCKET KEY VERSION; do
  DEST="/opt/ml/input/data/train/${{KEY#{incoming}}}"
  mkdir -p "$(dirname "$DEST")"
  if [ "$VERSION" = null ]; then
    aws s3api get-object --bucket "$BUCKET" --key "$KEY" "$DEST" > /dev/null || exit 1
  else
    aws s3api get-object --bucket "$BUCKET" --key "$KEY" --version-id "$VERSION" \\
      "$DEST" > /dev/null || exit 1
  fi
done < /tmp/objects.tsv

CHANNELS='["train"]'
if [ -n "$CHAMPION" ]; then
  # optional: without it the job trains as a first model would (no same-split comparison)
  mkdir -p /opt/ml/input/data/champion
  if aws s3 cp "$CHAMPION" /opt/ml/input/data/champion/model.tar.gz; then
    export SM_CHANNEL_CHAMPION=/opt/ml/input/data/champion
    CHANNELS='["champion", "train"]'
  else
    echo "could not fetch the champion's model $CHAMPION: no same-split comparison"
  fi
fi

cat > /opt/ml/input/config/hyperparameters.json <<'MLOPS_HPS'
{encoded_hps}
MLOPS_HPS
export SM_HPS={hps}
export SM_MODEL_DIR=/opt/ml/model SM_CHANNEL_TRAIN=/opt/ml/input/data/train
export SM_OUTPUT_DATA_DIR=/opt/ml/output/data SM_OUTPUT_DIR=/opt/ml/output
export SM_CHANNELS="$CHANNELS" SM_CURRENT_HOST=algo-1 SM_HOSTS='["algo-1"]'
export SM_NUM_CPUS=$(nproc) SM_MODULE_NAME=train SM_TRAINING_ENV="{{}}"

step "training failed (see host.log)"
cd /opt/ml/code
timeout "$MAX_SECONDS" "$VENV/bin/python" -m jobs.train
RC=$?
if [ $RC -eq 124 ]; then step "MaxRuntimeExceeded: stopped after $MAX_SECONDS s"; exit 1; fi
[ $RC -eq 0 ] || exit 1

step "could not upload the artifacts to $OUT"
tar -czf /tmp/model.tar.gz -C /opt/ml/model . || exit 1
tar -czf /tmp/output.tar.gz -C /opt/ml/output/data . || exit 1
aws s3 cp /tmp/model.tar.gz "$OUT/model.tar.gz" $(sse) || exit 1
aws s3 cp /tmp/output.tar.gz "$OUT/output.tar.gz" $(sse) || exit 1
STATUS=Completed
REASON=""
"""


def render_user_data(
    config: Config, job_name: str, champion: Mapping[str, Any] | None = None
) -> str:
    """The bash user data of the EC2 training host for ``job_name``.

    The host (Amazon Linux 2023, AWS CLI and python3 preinstalled) installs Python 3.11
    and the jobs' dependencies, downloads the code bundle and exactly the object versions
    listed in ``lineage/<job>.json``, runs ``python -m jobs.train`` with the ``SM_*``
    environment under the job's time limit, uploads ``model.tar.gz`` / ``output.tar.gz``
    to ``training/<job>/output/`` (or ``failure``), sends a training-state event on the
    default event bus (same detail-type as SageMaker's, source ``mlops.control-plane``)
    and shuts down (the instance terminates: ``InstanceInitiatedShutdownBehavior``).
    With a ``champion`` it also downloads the champion's ``model.tar.gz`` into
    ``/opt/ml/input/data/champion`` (``SM_CHANNEL_CHAMPION``), as SageMaker would; if that
    download fails the job still trains, without the same-split comparison.
    """
    config.require("artifacts_bucket", "code_s3_uri")
    hps = hyperparameters(config, job_name, champion)
    hps["sagemaker_submit_directory"] = "/opt/ml/code"
    decoded = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    q = shlex.quote
    return _USER_DATA.format(
        job=q(job_name),
        region=q(config.region),
        out=q(f"{output_prefix(config)}{job_name}/output"),
        lineage=q(f"s3://{config.artifacts_bucket}/{c.LINEAGE_PREFIX}{job_name}.json"),
        code=q(str(config.code_s3_uri)),
        champion=q(champion_model_uri(config, champion) or ""),
        kms=q(config.kms_key_arn or ""),
        max_seconds=int(config.training_max_seconds),
        source=json.dumps(c.EVENT_SOURCE),
        detail_type=json.dumps(c.TRAINING_STATE_CHANGE),
        requirements=" ".join(q(r) for r in EC2_REQUIREMENTS),
        incoming=c.INCOMING_PREFIX,
        encoded_hps=json.dumps(encode_hyperparameters(hps), indent=1),
        hps=q(json.dumps(decoded)),
    )


def build_ec2_launch(
    config: Config,
    job_name: str,
    data_version: str,
    trigger: str,
    champion: Mapping[str, Any] | None = None,
) -> JsonDict:
    """The ``ec2.run_instances`` keyword arguments for the EC2 training backend.

    Instance type, AMI, instance profile, subnet and metadata options come from the
    stack's launch template; this adds the user data, the tags and self-termination.
    ``champion``: as for :func:`build_training_request`.
    """
    config.require("launch_template_id")
    tags = [
        *job_tags(config, data_version, trigger),
        {"Key": "mlops:job", "Value": job_name},
        {"Key": "Name", "Value": f"mlops-training-{job_name}"},
    ]
    return {
        "LaunchTemplate": {"LaunchTemplateId": config.launch_template_id, "Version": "$Default"},
        "MinCount": 1,
        "MaxCount": 1,
        "InstanceInitiatedShutdownBehavior": "terminate",
        "UserData": render_user_data(config, job_name, champion),
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": tags},
            {"ResourceType": "volume", "Tags": tags},
        ],
    }
