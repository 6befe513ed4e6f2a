"""Hyperparameter tuning jobs that really run.

STAND-IN for SageMaker's tuning: moto records ``CreateHyperParameterTuningJob`` and
reports it ``Completed`` with a placeholder best job (``FakeTrainingJobName``). Here the
job is ``InProgress`` and a thread of its own runs it: it asks the strategy
(:mod:`mlops.localcloud.tuning_space`, Optuna) for hyperparameters, starts each trial as
a real training job from the ``TrainingJobDefinition`` (its static hyperparameters plus
the tuned ones, named ``<tuning job>-NNN-<hex>``, tagged and carrying ``TuningJobArn``),
at most ``MaxParallelTrainingJobs`` at a time and ``MaxNumberOfTrainingJobs`` in all
(a grid: every combination), reads each trial's objective from its
``FinalMetricDataList`` (the definition's ``MetricDefinitions`` over its log) and tells
the strategy. ``DescribeHyperParameterTuningJob`` answers the counters and the
``BestTrainingJob`` with its objective and tuned hyperparameters;
``ListTrainingJobsForHyperParameterTuningJob`` lists the trials (sorted by
``FinalObjectiveMetricValue``, ``Name``, ``CreationTime`` or ``Status``);
``StopHyperParameterTuningJob`` stops the running trials. The job ends ``Completed``
(``Failed`` when no trial reported the objective, naming why), and SageMaker's
"SageMaker HyperParameter Tuning Job State Change" is emitted.

Refused with a clear ``ValidationException`` rather than pretended
(:mod:`mlops.localcloud.tuning_api`): early stopping ``Auto``, warm start, ``Hyperband``,
several training job definitions.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, epoch_ms, moto_now
from mlops.localcloud.events import sagemaker_job_event
from mlops.localcloud.tuning_space import (
    Range,
    grid,
    parse_ranges,
    sampler,
    suggest,
)

logger = logging.getLogger(__name__)

STATE_CHANGE = "SageMaker HyperParameter Tuning Job State Change"
_POLL_S = 0.2
_STOP_WAIT_S = 30.0  # a stopped trial gets SIGTERM, then SIGKILL after 5 s
_DONE = {"Completed", "Failed", "Stopped"}


@dataclass
class Trial:
    name: str
    tuned: dict[str, str]
    handle: Any  # Optuna's trial, or None for a grid point
    job: Any = None
    told: bool = False


@dataclass
class Tuning:
    """One tuning job's run: its trials and what it learnt."""

    job: Any
    account: str
    region: str
    ranges: list[Range]
    objective: dict[str, str]
    stop: threading.Event = field(default_factory=threading.Event)
    trials: list[Trial] = field(default_factory=list)


class Tuner:
    """Runs every tuning job in a thread of its own; trials go to the job runner."""

    def __init__(
        self,
        *,
        activity: Activity,
        clients: ClientFactory,
        on_finished: Callable[[dict[str, Any], str, str], None],
    ) -> None:
        self.activity, self.clients, self.on_finished = activity, clients, on_finished
        self.runs: dict[str, Tuning] = {}
        self._threads: list[threading.Thread] = []

    def start(self, backend: Any, job: Any) -> None:
        config = job.hyper_parameter_tuning_job_config
        definition = job.training_job_definition or {}
        run = Tuning(
            job,
            backend.account_id,
            backend.region_name,
            parse_ranges(config.get("ParameterRanges") or {}),
            dict(config.get("HyperParameterTuningJobObjective") or {}),
        )
        self.runs[job.hyper_parameter_tuning_job_name] = run
        self.activity.begin("tuning")
        thread = threading.Thread(
            target=self._run, args=(backend, run, definition), name="localcloud-tuning", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def stop(self, name: str) -> None:
        run = self.runs.get(name)
        if run is not None and run.job.hyper_parameter_tuning_job_status == "InProgress":
            run.job.hyper_parameter_tuning_job_status = "Stopping"  # an ended job keeps its
            run.stop.set()

    def close(self, timeout: float = 10.0) -> None:
        for run in self.runs.values():
            run.stop.set()
        for thread in self._threads:
            thread.join(timeout)

    # --- the run -------------------------------------------------------------------------

    def _run(self, backend: Any, run: Tuning, definition: dict[str, Any]) -> None:
        job = run.job
        try:
            try:
                self._tune(backend, run, definition)
            finally:
                self._end_trials(run)  # however the search ended, no trial outlives it
            finished = [t for t in run.trials if t.job is not None]
            if run.stop.is_set():
                job.hyper_parameter_tuning_job_status = "Stopped"
            elif not any(objective_value(run, t.job) is not None for t in finished):
                job.hyper_parameter_tuning_job_status = "Failed"
                job.failure_reason = (
                    f"No training job reported the objective metric "
                    f"{run.objective.get('MetricName')!r}: "
                    + (_reason(finished) or "no training job ran")
                )
            else:
                job.hyper_parameter_tuning_job_status = "Completed"
        except Exception as exc:
            logger.exception("tuning job %s crashed", job.hyper_parameter_tuning_job_name)
            job.hyper_parameter_tuning_job_status = "Failed"
            job.failure_reason = f"InternalServerError: {type(exc).__name__}: {exc}"
        finally:
            update_counters(run)
            job.hyper_parameter_tuning_end_time = job.last_modified_time = moto_now()
            event = state_change_event(job, run.account, run.region)
            try:
                self.on_finished(event, run.account, run.region)
            finally:
                self.activity.end("tuning")

    def _tune(self, backend: Any, run: Tuning, definition: dict[str, Any]) -> None:
        import optuna

        config = run.job.hyper_parameter_tuning_job_config
        limits = config.get("ResourceLimits") or {}
        strategy = str(config.get("Strategy") or "Bayesian")
        parallel = max(1, int(limits.get("MaxParallelTrainingJobs") or 1))
        points = grid(run.ranges) if strategy == "Grid" else None
        total = len(points) if points is not None else int(limits["MaxNumberOfTrainingJobs"])
        if points is not None and limits.get("MaxNumberOfTrainingJobs"):
            total = min(total, int(limits["MaxNumberOfTrainingJobs"]))
        study = None
        if points is None:
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            direction = "minimize" if run.objective.get("Type") == "Minimize" else "maximize"
            seed = config.get("RandomSeed")
            study = optuna.create_study(
                direction=direction, sampler=sampler(strategy, None if seed is None else int(seed))
            )
        while not run.stop.is_set():
            running = [t for t in run.trials if t.job.training_job_status not in _DONE]
            for trial in run.trials:
                if not trial.told and trial.job.training_job_status in _DONE:
                    self._tell(study, run, trial)
            if len(run.trials) >= total and not running:
                return
            if len(run.trials) < total and len(running) < parallel:
                self._launch(backend, run, definition, study, points)
                update_counters(run)
                continue
            update_counters(run)
            run.stop.wait(_POLL_S)

    def _end_trials(self, run: Tuning) -> None:
        sm = self.clients("sagemaker", run.region)
        for trial in run.trials:
            if trial.job.training_job_status not in _DONE:
                sm.stop_training_job(TrainingJobName=trial.name)
        deadline = time.monotonic() + _STOP_WAIT_S  # their end is the tuning job's
        while time.monotonic() < deadline and any(
            t.job.training_job_status not in _DONE for t in run.trials
        ):
            time.sleep(_POLL_S)

    def _launch(
        self,
        backend: Any,
        run: Tuning,
        definition: dict[str, Any],
        study: Any,
        points: list[dict[str, str]] | None,
    ) -> None:
        index = len(run.trials) + 1
        if points is not None:
            handle, tuned = None, points[index - 1]
        else:
            handle = study.ask()
            tuned = {r.name: suggest(handle, r) for r in run.ranges}
        name = f"{run.job.hyper_parameter_tuning_job_name[:44]}-{index:03d}-{secrets.token_hex(4)}"
        request = {
            "TrainingJobName": name,
            "HyperParameters": {**(definition.get("StaticHyperParameters") or {}), **tuned},
            "AlgorithmSpecification": definition.get("AlgorithmSpecification"),
            "RoleArn": definition.get("RoleArn"),
            "InputDataConfig": definition.get("InputDataConfig"),
            "OutputDataConfig": definition.get("OutputDataConfig"),
            "ResourceConfig": definition.get("ResourceConfig"),
            "StoppingCondition": definition.get("StoppingCondition"),
            "Environment": definition.get("Environment"),
            "Tags": [
                *(run.job.tags or []),
                {
                    "Key": "sagemaker:tuning-job-name",
                    "Value": run.job.hyper_parameter_tuning_job_name,
                },
            ],
        }
        trial = Trial(name, tuned, handle)
        # through the API, as any client: the job runner runs it like every training job
        sm = self.clients("sagemaker", run.region)
        sm.create_training_job(**{k: v for k, v in request.items() if v})
        trial.job = backend.training_jobs[name]
        trial.job.tuning_job_arn = run.job.arn
        run.trials.append(trial)

    def _tell(self, study: Any, run: Tuning, trial: Trial) -> None:
        import optuna

        trial.told = True
        if study is None:
            return
        value = objective_value(run, trial.job)
        if value is None:
            study.tell(trial.handle, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial.handle, value)


def objective_value(run: Tuning, job: Any) -> float | None:
    if job is None or job.training_job_status != "Completed":
        return None
    name = run.objective.get("MetricName")
    for metric in job.final_metric_data_list or []:
        if metric.get("MetricName") == name:
            return float(metric["Value"])
    return None


def _reason(trials: list[Trial]) -> str:
    reasons = [getattr(t.job, "failure_reason", None) for t in trials]
    named = [r for r in reasons if r]
    if named:
        return f"the last training job failed: {named[-1]}"
    return "the metric definition's regex matched no line of the trials' logs"


def summary(run: Tuning, trial: Trial) -> dict[str, Any]:
    """A trial as ``ListTrainingJobsForHyperParameterTuningJob`` and ``BestTrainingJob``
    describe it."""
    job = trial.job
    value = objective_value(run, job)
    out: dict[str, Any] = {
        "TrainingJobName": trial.name,
        "TrainingJobArn": job.arn,
        "TuningJobName": run.job.hyper_parameter_tuning_job_name,
        "CreationTime": job.creation_time,
        "TrainingJobStatus": job.training_job_status,
        "TunedHyperParameters": dict(trial.tuned),
        "ObjectiveStatus": "Succeeded"
        if value is not None
        else "Pending"
        if job.training_job_status not in _DONE
        else "Failed",
    }
    if getattr(job, "training_start_time", None):
        out["TrainingStartTime"] = job.training_start_time
    if job.training_job_status in _DONE and getattr(job, "training_end_time", None):
        out["TrainingEndTime"] = job.training_end_time
    if getattr(job, "failure_reason", None):
        out["FailureReason"] = job.failure_reason
    if value is not None:
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": run.objective.get("Type", "Maximize"),
            "MetricName": run.objective.get("MetricName"),
            "Value": value,
        }
    return out


def best(run: Tuning) -> dict[str, Any] | None:
    scored = [(objective_value(run, t.job), t) for t in run.trials if t.job is not None]
    scored = [(v, t) for v, t in scored if v is not None]
    if not scored:
        return None
    sign = -1.0 if run.objective.get("Type") == "Minimize" else 1.0
    _, top = max(scored, key=lambda pair: sign * float(pair[0] or 0.0))
    return summary(run, top)


def update_counters(run: Tuning) -> None:
    statuses = [t.job.training_job_status for t in run.trials if t.job is not None]
    summaries = [summary(run, t) for t in run.trials if t.job is not None]
    run.job.training_job_status_counters = {
        "Completed": statuses.count("Completed"),
        "InProgress": sum(s not in _DONE for s in statuses),
        "RetryableError": 0,
        "NonRetryableError": statuses.count("Failed"),
        "Stopped": statuses.count("Stopped"),
    }
    run.job.objective_status_counters = {
        k: sum(s["ObjectiveStatus"] == k for s in summaries)
        for k in ("Succeeded", "Pending", "Failed")
    }
    top = best(run)
    run.job.best_training_job = top
    run.job.OverallBestTrainingJob = top
    run.job.last_modified_time = moto_now()


def state_change_event(job: Any, account: str, region: str) -> dict[str, Any]:
    detail = {
        "HyperParameterTuningJobName": job.hyper_parameter_tuning_job_name,
        "HyperParameterTuningJobArn": job.arn,
        "HyperParameterTuningJobStatus": job.hyper_parameter_tuning_job_status,
        "FailureReason": job.failure_reason or None,
        "TrainingJobStatusCounters": job.training_job_status_counters,
        "ObjectiveStatusCounters": job.objective_status_counters,
        "BestTrainingJob": _epochs(job.best_training_job),
        "CreationTime": epoch_ms(job.creation_time),
        "HyperParameterTuningEndTime": epoch_ms(job.hyper_parameter_tuning_end_time),
    }
    return sagemaker_job_event(STATE_CHANGE, job.arn, account, region, detail)


def _epochs(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: epoch_ms(v) if k.endswith("Time") else v for k, v in doc.items()}
