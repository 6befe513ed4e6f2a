"""The tuning job API calls the local cloud answers itself (see :mod:`mlops.localcloud.tuning`).

``CreateHyperParameterTuningJob`` (validated first: what cannot run is refused by name),
``DescribeHyperParameterTuningJob`` (no placeholders: what is not known yet is left out),
``ListTrainingJobsForHyperParameterTuningJob`` (moto: 500) and
``StopHyperParameterTuningJob``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.localcloud.tuning import Trial, Tuner, Tuning, summary, update_counters
from mlops.localcloud.tuning_space import TuningRequestError, grid, parse_ranges, sampler

MAX_NAME = 32  # SageMaker's limit on a tuning job's name


def validate(
    config: dict[str, Any], definition: dict[str, Any] | None, request: dict[str, Any]
) -> None:
    """What the local cloud refuses (``TuningRequestError``) before anything is stored."""
    if request.get("TrainingJobDefinitions"):
        raise TuningRequestError(
            "TrainingJobDefinitions (several) is not run by the local cloud: "
            "use TrainingJobDefinition"
        )
    if not definition:
        raise TuningRequestError("TrainingJobDefinition is required")
    if (config.get("ResourceLimits") or {}).get("MaxRuntimeInSeconds"):
        raise TuningRequestError(
            "ResourceLimits.MaxRuntimeInSeconds is not run by the local cloud: bound each "
            "trial with the definition's StoppingCondition"
        )
    if request.get("WarmStartConfig"):
        raise TuningRequestError(
            "WarmStartConfig is not run by the local cloud: start a new tuning job"
        )
    if (config.get("TrainingJobEarlyStoppingType") or "Off") != "Off":
        raise TuningRequestError(
            "TrainingJobEarlyStoppingType Auto is not run by the local cloud: every trial "
            "runs to its end (use Off)"
        )
    strategy = str(config.get("Strategy") or "Bayesian")
    if strategy not in ("Random", "Bayesian", "Grid"):
        sampler(strategy, None)  # raises, naming the strategies that run
    ranges = parse_ranges(config.get("ParameterRanges") or {})
    if strategy == "Grid":
        grid(ranges)
    elif not (config.get("ResourceLimits") or {}).get("MaxNumberOfTrainingJobs"):
        raise TuningRequestError(
            f"ResourceLimits.MaxNumberOfTrainingJobs is required with {strategy}"
        )
    objective = config.get("HyperParameterTuningJobObjective") or {}
    names = [
        m.get("Name")
        for m in (definition.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []
    ]
    if objective.get("MetricName") not in names:
        raise TuningRequestError(
            f"the objective metric {objective.get('MetricName')!r} is not one of the training "
            f"job definition's MetricDefinitions {names}"
        )


def restored_run(backend: Any, job: Any) -> Tuning:
    """A tuning job's trials from its training jobs (a restart forgets the tuner's own)."""
    config = job.hyper_parameter_tuning_job_config
    names = [r.name for r in parse_ranges(config.get("ParameterRanges") or {})]
    run = Tuning(
        job,
        backend.account_id,
        backend.region_name,
        [],
        dict(config.get("HyperParameterTuningJobObjective") or {}),
    )
    for trial_job in backend.training_jobs.values():
        if getattr(trial_job, "tuning_job_arn", None) == job.arn:
            tuned = {k: v for k, v in (trial_job.hyper_parameters or {}).items() if k in names}
            run.trials.append(Trial(trial_job.training_job_name, tuned, None, trial_job, True))
    return run


def install(patcher: Any, tuner: Callable[[], Tuner]) -> None:
    """Run created tuning jobs; answer their description, trials and stop."""
    from moto.core.responses import ActionResult, EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    create = SageMakerModelBackend.create_hyper_parameter_tuning_job
    describe = SageMakerModelBackend.describe_hyper_parameter_tuning_job

    def create_tuning_job(self: Any, **kwargs: Any) -> Any:
        name = kwargs["hyper_parameter_tuning_job_name"]
        if name in self.hyper_parameter_tuning_jobs:
            raise ValidationError(message=f"Hyperparameter tuning job {name} already exists")
        if len(name) > MAX_NAME:
            raise ValidationError(
                message=f"HyperParameterTuningJobName {name!r} is longer than {MAX_NAME} characters"
            )
        try:
            validate(
                kwargs["hyper_parameter_tuning_job_config"],
                kwargs.get("training_job_definition"),
                {
                    "TrainingJobDefinitions": kwargs.get("training_job_definitions"),
                    "WarmStartConfig": kwargs.get("warm_start_config"),
                },
            )
        except TuningRequestError as exc:
            raise ValidationError(message=str(exc)) from None
        arn = create(self, **kwargs)
        job = self.hyper_parameter_tuning_jobs[name]
        job.hyper_parameter_tuning_job_status = "InProgress"
        job.hyper_parameter_tuning_end_time = None
        job.tuning_job_completion_details = job.consumed_resources = None
        job.best_training_job = job.OverallBestTrainingJob = None
        tuner().start(self, job)
        update_counters(tuner().runs[name])
        return arn

    def describe_tuning_job(self: Any, hyper_parameter_tuning_job_name: str) -> Any:
        answer = describe(self, hyper_parameter_tuning_job_name)
        return {k: v for k, v in answer.items() if v not in (None, "", {})}

    def list_trials(self: Any) -> Any:
        name = self._get_param("HyperParameterTuningJobName")
        job = self.sagemaker_backend.hyper_parameter_tuning_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find hyper parameter tuning job '{name}'.")
        run = tuner().runs.get(name) or restored_run(self.sagemaker_backend, job)
        rows = [summary(run, t) for t in run.trials if t.job is not None]
        if self._get_param("StatusEquals"):
            rows = [r for r in rows if r["TrainingJobStatus"] == self._get_param("StatusEquals")]
        sort_by = self._get_param("SortBy") or "Name"  # SageMaker's defaults
        descending = (self._get_param("SortOrder") or "Ascending") == "Descending"
        if sort_by == "FinalObjectiveMetricValue":  # trials without an objective are left out
            rows = sorted(
                (r for r in rows if "FinalHyperParameterTuningJobObjectiveMetric" in r),
                key=lambda r: r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"],
                reverse=descending,
            )
        else:
            key = {"Name": "TrainingJobName", "Status": "TrainingJobStatus"}.get(
                sort_by, "CreationTime"
            )
            rows = sorted(rows, key=lambda r: r[key], reverse=descending)
        start = int(self._get_param("NextToken") or 0)
        limit = int(self._get_param("MaxResults") or 100)
        answer: dict[str, Any] = {"TrainingJobSummaries": rows[start : start + limit]}
        if start + limit < len(rows):
            answer["NextToken"] = str(start + limit)
        return ActionResult(answer)

    def stop_tuning_job(self: Any) -> Any:
        name = self._get_param("HyperParameterTuningJobName")
        if name not in self.sagemaker_backend.hyper_parameter_tuning_jobs:
            raise ValidationError(message=f"Could not find hyper parameter tuning job '{name}'.")
        tuner().stop(name)
        return EmptyResult()

    patcher.set(SageMakerModelBackend, "create_hyper_parameter_tuning_job", create_tuning_job)
    patcher.set(SageMakerModelBackend, "describe_hyper_parameter_tuning_job", describe_tuning_job)
    patcher.set(SageMakerResponse, "list_training_jobs_for_hyper_parameter_tuning_job", list_trials)
    patcher.set(SageMakerResponse, "stop_hyper_parameter_tuning_job", stop_tuning_job)
