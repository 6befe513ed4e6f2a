"""Pure builders of a training run: the SageMaker request and the EC2 training host.

No AWS calls here. The retrain handler, the ``mlops train`` CLI, the SageMaker SDK path
(``mlops/sagemaker_sdk.py``) and the tests all build a job with these functions, so they
cannot disagree about what a job looks like.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
from collections.abc import Mapping
from importlib import resources
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
REFERENCE_CHANNEL = "reference"  # the frozen reference set, scored by both models


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


READABLE_MODEL_PREFIXES = (c.MODELS_PREFIX, c.TRAINING_PREFIX)


def champion_model_uri(config: Config, champion: Mapping[str, Any] | None) -> str | None:
    """The champion's ``model.tar.gz`` if a training job may read it, else ``None``.

    Only a model under ``s3://<artifacts>/models/`` (what promote released) or
    ``training/`` is given to the job: that is what the SageMaker execution role (and the
    EC2 host role) may read. A champion elsewhere
    (e.g. registered by hand) is left out: a channel that cannot be downloaded would
    fail the whole job, and the gate then compares on the champion's own test split.
    """
    url = (champion or {}).get("model_data_url")
    prefixes = tuple(f"s3://{config.artifacts_bucket}/{p}" for p in READABLE_MODEL_PREFIXES)
    if isinstance(url, str) and url.startswith(prefixes) and url.endswith(".tar.gz"):
        return url
    return None


def reference_uri(config: Config, reference: Mapping[str, Any] | None) -> str | None:
    """The reference set's CSV if it is where promote freezes it (what jobs may read)."""
    uri = (reference or {}).get("uri")
    if isinstance(uri, str) and uri.startswith(
        f"s3://{config.artifacts_bucket}/{c.REFERENCE_PREFIX}"
    ):
        return uri
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
    # the stack's data-guard thresholds, so the job's own verdicts agree with the gate's
    hps: dict[str, Any] = {
        "target": "label",
        "max-label-shift": config.max_label_shift,
        "min-label-agreement": config.min_label_agreement,
        "min-label-learnability": config.min_label_learnability,
        "max-duplicate-share": config.max_duplicate_share,
        **config.hyperparameters,
    }
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
    reference: Mapping[str, Any] | None = None,
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
    reference : dict, optional
        The reference set's manifest (:func:`lambdas.reference.current_reference`): its
        CSV becomes input channel ``reference``.
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
    # S3Prefix on an object's full key downloads that one object
    for name, uri in (
        (CHAMPION_CHANNEL, champion_model_uri(config, champion)),
        (REFERENCE_CHANNEL, reference_uri(config, reference)),
    ):
        if uri:
            channels.append(
                {
                    "ChannelName": name,
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": uri,
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

#: The host's script, beside this module (so it is in the function's zip): bash with
#: ``@@NAME@@`` markers, a spelling no bash syntax uses, filled by :func:`render_user_data`.
USER_DATA_TEMPLATE = "ec2_host.sh"
_FIELD = re.compile(r"@@([A-Z][A-Z0-9_]*)@@")


@functools.cache
def user_data_template() -> str:
    """The text of ``lambdas/ec2_host.sh``."""
    return resources.files("lambdas").joinpath(USER_DATA_TEMPLATE).read_text(encoding="utf-8")


def fill_template(template: str, fields: Mapping[str, str]) -> str:
    """Replace every ``@@NAME@@`` of ``template`` with ``fields[NAME]``, in one pass (a value
    that itself contains ``@@X@@`` stays as it is).

    Raises
    ------
    KeyError
        A marker has no field.
    ValueError
        A field has no marker (a typo on either side).
    """
    used: set[str] = set()

    def value(match: re.Match[str]) -> str:
        used.add(match[1])
        return fields[match[1]]

    text = _FIELD.sub(value, template)
    unused = sorted(set(fields) - used)
    if unused:
        raise ValueError(f"{USER_DATA_TEMPLATE} has no marker for {', '.join(unused)}")
    return text


def render_user_data(
    config: Config,
    job_name: str,
    champion: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
) -> str:
    """The bash user data of the EC2 training host for ``job_name``.

    The host (Amazon Linux 2023, AWS CLI and python3 preinstalled) installs Python 3.11
    and the jobs' dependencies, downloads the code bundle and exactly the object versions
    listed in ``lineage/<job>.json``, runs ``python -m jobs.train`` with the ``SM_*``
    environment under the job's time limit, uploads ``model.tar.gz`` / ``output.tar.gz``
    to ``training/<job>/output/`` (or ``failure``), sends a training-state event on the
    default event bus (same detail-type as SageMaker's, source ``mlops.control-plane``);
    the boot script that ran it then takes the host out of its group.
    With a ``champion`` it also downloads the champion's ``model.tar.gz`` into
    ``/opt/ml/input/data/champion`` (``SM_CHANNEL_CHAMPION``), as SageMaker would; if that
    download fails the job still trains, without the same-split comparison. The same for
    the ``reference`` set (``/opt/ml/input/data/reference``).
    """
    config.require("artifacts_bucket", "code_s3_uri")
    hps = hyperparameters(config, job_name, champion)
    hps["sagemaker_submit_directory"] = "/opt/ml/code"
    decoded = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
    q = shlex.quote
    return fill_template(
        user_data_template(),
        {
            "JOB": q(job_name),
            "REGION": q(config.region),
            "OUT": q(f"{output_prefix(config)}{job_name}/output"),
            "LINEAGE": q(f"s3://{config.artifacts_bucket}/{c.LINEAGE_PREFIX}{job_name}.json"),
            "CODE": q(str(config.code_s3_uri)),
            "CHAMPION": q(champion_model_uri(config, champion) or ""),
            "REFERENCE": q(reference_uri(config, reference) or ""),
            "KMS": q(config.kms_key_arn or ""),
            "MAX_SECONDS": str(int(config.training_max_seconds)),
            # inside the python3 -c '...' of finish(): JSON strings, no single quotes
            "SOURCE": json.dumps(c.EVENT_SOURCE),
            "DETAIL_TYPE": json.dumps(c.TRAINING_STATE_CHANGE),
            "REQUIREMENTS": " ".join(q(r) for r in EC2_REQUIREMENTS),
            "INCOMING": c.INCOMING_PREFIX,
            # inside a quoted heredoc: taken literally
            "ENCODED_HPS": json.dumps(encode_hyperparameters(hps), indent=1),
            "HPS": q(json.dumps(decoded)),
        },
    )


def build_ec2_job(
    config: Config,
    job_name: str,
    champion: Mapping[str, Any] | None = None,
    reference: Mapping[str, Any] | None = None,
    *,
    now: float,
) -> JsonDict:
    """The job message retrain queues for the EC2 training hosts (the body, as JSON).

    ``{"job", "script", "expires"}``: the host's boot script (:data:`BOOT_SCRIPT`, the
    launch template's user data) takes it from the queue and runs ``script``
    (:func:`render_user_data`); a job not taken by ``expires`` (epoch seconds: a host
    that never came up) is dropped rather than run late. ``champion``, ``reference``: as
    for :func:`build_training_request`.
    """
    config.require("training_hosts", "training_jobs_queue_url")
    return {
        "job": job_name,
        "script": render_user_data(config, job_name, champion, reference),
        "expires": int(now) + EC2_JOB_TTL_SECONDS,
    }


#: The host's boot script (the launch template's user data): takes a job, runs it,
#: scales in. Markers filled by :func:`render_boot_script` when the stack is deployed.
BOOT_SCRIPT = "ec2_boot.sh"
#: A queued job that no host took within this long is dropped (the launch failed).
EC2_JOB_TTL_SECONDS = 3600


def render_boot_script(region: str, queue_url: str) -> str:
    """The training hosts' user data for the stack's job queue in ``region``."""
    template = resources.files("lambdas").joinpath(BOOT_SCRIPT).read_text(encoding="utf-8")
    q = shlex.quote
    return fill_template(template, {"REGION": q(region), "QUEUE": q(queue_url)})
