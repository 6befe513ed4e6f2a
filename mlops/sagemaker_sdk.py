"""Submit the control plane's training job with the SageMaker Python SDK (sagemaker-core).

Many users drive SageMaker through the SDK rather than boto3. This builds exactly the job
``lambdas.retrain`` submits: the request comes from the same pure function,
:func:`lambdas.training.build_training_request`, and is mapped field by field onto
sagemaker-core's ``TrainingJob.create`` (PascalCase request keys become the snake_case
arguments and shapes, by sagemaker-core's own botocore-model codec):

==========================  ===================================================
``create_training_job``     ``sagemaker-core`` ``TrainingJob.create(...)``
==========================  ===================================================
TrainingJobName             training_job_name
AlgorithmSpecification      algorithm_specification: AlgorithmSpecification
RoleArn                     role_arn
HyperParameters             hyper_parameters (already JSON-encoded strings)
InputDataConfig             input_data_config: [Channel(data_source=DataSource(
                            s3_data_source=S3DataSource(...)))]
OutputDataConfig            output_data_config: OutputDataConfig(kms_key_id=...)
ResourceConfig              resource_config: ResourceConfig(volume_kms_key_id=...)
StoppingCondition           stopping_condition: StoppingCondition
VpcConfig                   vpc_config: VpcConfig
EnableNetworkIsolation      enable_network_isolation
Tags                        tags: [Tag(key, value)]
==========================  ===================================================

sagemaker-core is an optional (dev) dependency and heavy to import (~2 s, it pulls in
pandas): it is imported inside :func:`submit_with_sdk`, never by the Lambda handlers.
The job name, lineage and guards stay the caller's business: use ``mlops train`` or
``lambdas.retrain.start_training`` for the guarded path; this function only submits.

Example
-------
>>> from lambdas.config import Config, make_job_name
>>> from lambdas.handling import utcnow
>>> import os
>>> config = Config.from_env(os.environ)
>>> name = make_job_name(config.model_name, utcnow(), data_version)
>>> submit_with_sdk(config, name, data_version, trigger="manual")
'arn:aws:sagemaker:...:training-job/churn-...'
"""

from __future__ import annotations

from typing import Any

from lambdas.config import Config
from lambdas.training import build_training_request


def _sagemaker_core() -> tuple[Any, Any]:
    """``(TrainingJob, transform)`` from sagemaker-core 2.x (``sagemaker.core``) or 1.x."""
    try:
        from sagemaker.core.resources import TrainingJob
        from sagemaker.core.utils.code_injection.codec import transform
    except ImportError:  # sagemaker-core 1.x
        from sagemaker_core.main.code_injection.codec import transform
        from sagemaker_core.main.resources import TrainingJob
    return TrainingJob, transform


def sdk_arguments(request: dict[str, Any]) -> dict[str, Any]:
    """The ``TrainingJob.create`` keyword arguments for a ``create_training_job`` request."""
    _, transform = _sagemaker_core()
    return dict(transform(request, "CreateTrainingJobRequest"))


def submit_with_sdk(
    config: Config,
    job_name: str,
    data_version: str,
    trigger: str = "manual",
    *,
    session: Any = None,
    champion: dict[str, Any] | None = None,
    reference: dict[str, Any] | None = None,
) -> str:
    """Submit the training job with sagemaker-core; returns the job's ARN.

    Parameters
    ----------
    config : Config
        The control plane's configuration (``Config.from_env(os.environ)``).
    job_name, data_version, trigger
        As for :func:`lambdas.training.build_training_request`.
    session : boto3.Session, optional
        Defaults to sagemaker-core's (the default boto3 session; ``AWS_ENDPOINT_URL``
        applies, so this works against the local cloud's moto server too).
    champion : dict, optional
        :func:`lambdas.registry.find_champion`'s result: its model becomes the job's
        ``champion`` channel, as in :func:`lambdas.training.build_training_request`.
    reference : dict, optional
        The reference set's manifest: its CSV becomes the ``reference`` channel.
    """
    training_job, _ = _sagemaker_core()
    request = build_training_request(config, job_name, data_version, trigger, champion, reference)
    job = training_job.create(**sdk_arguments(request), session=session, region=config.region)
    return str(job.training_job_arn)
