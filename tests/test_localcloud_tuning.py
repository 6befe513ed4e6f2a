"""Hyperparameter tuning jobs really run in the local cloud: every trial a real training
job whose log line the objective's metric definition reads; Random, Bayesian (Optuna)
and Grid; counters, the best job, the trials listed by objective, stop; bad requests."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localcloud_helpers import ACCOUNT, ROLE_NAME, client, targz

from mlops.localcloud import LocalCloud

BUCKET = "tune"
# the objective peaks at x = 3 (and is lower for the "worse" kernel): the tuner must find it
TRAIN = textwrap.dedent(
    """
    import json, os, time
    hps = json.loads(os.environ["SM_HPS"])
    x = float(hps["x"])
    penalty = 0.0 if hps.get("kernel", "good") == "good" else 1.0
    time.sleep(float(hps.get("sleep", 0)))
    print(f"validation objective: {-(x - 3) ** 2 - penalty:.6f}")
    """
)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[LocalCloud]:
    with LocalCloud(0, state_dir=tmp_path / "state", max_jobs=2) as running:
        s3 = client(running, "s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="code/src.tar.gz", Body=targz({"train.py": TRAIN}))
        s3.put_object(Bucket=BUCKET, Key="data/train.csv", Body=b"a,label\n1,0\n")
        yield running


def _definition(**static: str) -> dict[str, Any]:
    return {
        "StaticHyperParameters": {
            "sagemaker_program": json.dumps("train.py"),
            "sagemaker_submit_directory": json.dumps(f"s3://{BUCKET}/code/src.tar.gz"),
            **static,
        },
        "AlgorithmSpecification": {
            "TrainingImage": "sagemaker-scikit-learn:1.4-2-cpu-py3",
            "TrainingInputMode": "File",
            "MetricDefinitions": [
                {"Name": "validation:objective", "Regex": "validation objective: (-?[0-9.]+)"}
            ],
        },
        "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/{ROLE_NAME}",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/data/"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def _config(
    strategy: str, ranges: dict[str, Any], jobs: int = 6, parallel: int = 2
) -> dict[str, Any]:
    return {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {
            "Type": "Maximize",
            "MetricName": "validation:objective",
        },
        "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
        "ParameterRanges": ranges,
        "TrainingJobEarlyStoppingType": "Off",
        "RandomSeed": 7,
    }


def _tune(cloud: LocalCloud, name: str, config: dict[str, Any], **static: str) -> dict[str, Any]:
    sm = client(cloud, "sagemaker")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name,
        HyperParameterTuningJobConfig=config,
        TrainingJobDefinition=_definition(**static),
    )
    assert cloud.wait_idle(240)
    return dict(sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name))


X_RANGE = {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "6"}]}


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_every_trial_is_a_real_training_job_and_the_best_is_described(
    cloud: LocalCloud, strategy: str
) -> None:
    done = _tune(cloud, f"t-{strategy.lower()}", _config(strategy, X_RANGE))

    assert done["HyperParameterTuningJobStatus"] == "Completed", done.get("FailureReason")
    assert done["TrainingJobStatusCounters"]["Completed"] == 6
    assert done["ObjectiveStatusCounters"]["Succeeded"] == 6
    listed = client(cloud, "sagemaker").list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=f"t-{strategy.lower()}",
        SortBy="FinalObjectiveMetricValue",
        SortOrder="Descending",
    )["TrainingJobSummaries"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in listed]
    assert len(listed) == 6 and values == sorted(values, reverse=True)
    best = done["BestTrainingJob"]
    assert best["TrainingJobName"] == listed[0]["TrainingJobName"]
    x = float(best["TunedHyperParameters"]["x"])
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == pytest.approx(
        -((x - 3) ** 2), abs=1e-5
    )
    # each trial ran as a training job, with its own tuned value, and says it in its log
    described = client(cloud, "sagemaker").describe_training_job(
        TrainingJobName=best["TrainingJobName"]
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert described["HyperParameters"]["x"] == best["TunedHyperParameters"]["x"]
    assert len({s["TunedHyperParameters"]["x"] for s in listed}) == 6


def test_grid_runs_every_combination(cloud: LocalCloud) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "x", "Values": ["1", "3", "5"]},
            {"Name": "kernel", "Values": ["good", "worse"]},
        ]
    }
    config = _config("Grid", ranges)
    config["ResourceLimits"].pop("MaxNumberOfTrainingJobs")

    done = _tune(cloud, "t-grid", config)

    assert done["HyperParameterTuningJobStatus"] == "Completed"
    assert done["TrainingJobStatusCounters"]["Completed"] == 6
    assert done["BestTrainingJob"]["TunedHyperParameters"] == {"x": "3", "kernel": "good"}
    assert done["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0


def test_bayesian_search_beats_its_first_random_guesses(cloud: LocalCloud) -> None:
    done = _tune(cloud, "t-bayes", _config("Bayesian", X_RANGE, jobs=10, parallel=1))

    listed = client(cloud, "sagemaker").list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="t-bayes", SortBy="CreationTime", SortOrder="Ascending"
    )["TrainingJobSummaries"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in listed]
    assert max(values[3:]) >= max(values[:3])  # TPE after its 3 random start-up trials
    assert done["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] > -0.5


def test_a_metric_that_never_matches_fails_the_tuning_job_saying_so(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    definition = _definition()
    definition["AlgorithmSpecification"]["MetricDefinitions"][0]["Regex"] = "nowhere: ([0-9.]+)"
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="t-nomatch",
        HyperParameterTuningJobConfig=_config("Random", X_RANGE, jobs=2),
        TrainingJobDefinition=definition,
    )
    assert cloud.wait_idle(120)

    done = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="t-nomatch")
    assert done["HyperParameterTuningJobStatus"] == "Failed"
    assert (
        "validation:objective" in done["FailureReason"]
        and "regex matched no line" in done["FailureReason"]
    )


def test_stop_ends_the_running_trials(cloud: LocalCloud) -> None:
    sm = client(cloud, "sagemaker")
    sm.create_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="t-stop",
        HyperParameterTuningJobConfig=_config("Random", X_RANGE, jobs=4, parallel=2),
        TrainingJobDefinition=_definition(sleep="30"),
    )
    time.sleep(1.0)

    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="t-stop")

    assert cloud.wait_idle(60)
    done = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="t-stop")
    assert done["HyperParameterTuningJobStatus"] == "Stopped"
    assert done["TrainingJobStatusCounters"]["InProgress"] == 0
    assert done["TrainingJobStatusCounters"]["Completed"] == 0
    assert done["TrainingJobStatusCounters"]["Stopped"] >= 1


def test_minimize_lists_and_pages_like_sagemaker(cloud: LocalCloud) -> None:
    config = _config("Random", X_RANGE, jobs=5)
    config["HyperParameterTuningJobObjective"]["Type"] = "Minimize"
    done = _tune(cloud, "t-min", config)
    sm = client(cloud, "sagemaker")

    page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="t-min", MaxResults=2
    )
    names, token = [s["TrainingJobName"] for s in page["TrainingJobSummaries"]], page["NextToken"]
    while token:
        page = sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="t-min", MaxResults=2, NextToken=token
        )
        names += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
        token = page.get("NextToken")

    assert names == sorted(names) and len(names) == 5  # SageMaker's default: Name, ascending
    values = [
        s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        for s in sm.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="t-min", SortBy="FinalObjectiveMetricValue"
        )["TrainingJobSummaries"]
    ]
    best = done["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    assert best == min(values)  # Minimize: the lowest is the best
    completed = sm.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="t-min", StatusEquals="Stopped"
    )
    assert completed["TrainingJobSummaries"] == []
    # a stop after the end changes nothing
    sm.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="t-min")
    after = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="t-min")
    assert after["HyperParameterTuningJobStatus"] == "Completed"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "ParameterRanges": {
                    "ContinuousParameterRanges": [{"Name": "x", "MinValue": "5", "MaxValue": "1"}]
                }
            },
            "the range is empty",
        ),
        ({"ParameterRanges": {}}, "names no hyperparameter"),
        ({"Strategy": "Hyperband"}, "Hyperband is not run by the local cloud"),
        ({"TrainingJobEarlyStoppingType": "Auto"}, "Auto is not run by the local cloud"),
        (
            {"HyperParameterTuningJobObjective": {"Type": "Maximize", "MetricName": "auc"}},
            "'auc' is not one of",
        ),
        ({"Strategy": "Grid"}, "categorical ranges only"),
        (
            {
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": 2,
                    "MaxParallelTrainingJobs": 1,
                    "MaxRuntimeInSeconds": 600,
                }
            },
            "MaxRuntimeInSeconds is not run",
        ),
    ],
)
def test_requests_it_cannot_tune_are_refused(
    cloud: LocalCloud, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ClientError, match=message):
        client(cloud, "sagemaker").create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="t-bad",
            HyperParameterTuningJobConfig={**_config("Random", X_RANGE), **change},
            TrainingJobDefinition=_definition(),
        )


def test_a_name_longer_than_sagemakers_32_characters_is_refused(cloud: LocalCloud) -> None:
    with pytest.raises(ClientError, match="longer than 32 characters"):
        client(cloud, "sagemaker").create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="t" * 33,
            HyperParameterTuningJobConfig=_config("Random", X_RANGE),
            TrainingJobDefinition=_definition(),
        )
