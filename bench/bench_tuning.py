"""A tuning job in the local cloud on the demo data: 8 trials, 2 at a time, vs the default.

Starts a local cloud, uploads the demo's transactions and the jobs bundle, runs one
training job with the stack's default hyperparameters, then a Bayesian tuning job
(Optuna) over the model family and its main knobs, objective the validation F1 the job
prints (``metric validation_f1=...;``). Prints the tuning job's wall time and, for the
default and the best trial, the validation F1 (what the tuner saw) and the test F1 (the
job's held-out split, which the objective never saw).

    .venv/bin/python bench/bench_tuning.py [--rows 5000] [--trials 8] [--parallel 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from infra.bundle import build_bundle  # noqa: E402
from lambdas import constants as c  # noqa: E402
from lambdas.config import Config  # noqa: E402
from lambdas.training import build_training_request  # noqa: E402
from mlops import datasets  # noqa: E402
from mlops.localcloud import LocalCloud  # noqa: E402

BUCKET = "bench-tuning"
METRICS = [
    {"Name": "validation:f1", "Regex": "metric validation_f1=([0-9.]+);"},
    {"Name": "test:f1", "Regex": "metric test_f1=([0-9.]+);"},
]
RANGES = {
    "CategoricalParameterRanges": [{"Name": "model", "Values": ["gbm", "logreg", "forest"]}],
    "ContinuousParameterRanges": [
        {
            "Name": "learning-rate",
            "MinValue": "0.02",
            "MaxValue": "0.3",
            "ScalingType": "Logarithmic",
        },
        {"Name": "c", "MinValue": "0.01", "MaxValue": "10", "ScalingType": "Logarithmic"},
    ],
    "IntegerParameterRanges": [{"Name": "max-leaf-nodes", "MinValue": "8", "MaxValue": "64"}],
}


def _metrics(sm: Any, job: str) -> dict[str, float]:
    described = sm.describe_training_job(TrainingJobName=job)
    return {m["MetricName"]: m["Value"] for m in described.get("FinalMetricDataList", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCloud(0, state_dir=Path(tmp) / "cloud", max_jobs=args.parallel) as cloud,
    ):
        s3 = cloud.clients("s3", "us-east-1")
        sm = cloud.clients("sagemaker", "us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        frame = datasets.transactions(args.rows, seed=11)
        csv = datasets.write_csv(frame, Path(tmp) / "day.csv")
        s3.upload_file(str(csv), BUCKET, "incoming/2026-11-01/day.csv")
        bundle = build_bundle(REPO, Path(tmp) / "build")
        s3.upload_file(str(bundle.path), BUCKET, c.CODE_BUNDLE_KEY)
        config = Config.from_env(
            {
                c.MODEL_NAME: "bench",
                c.RAW_BUCKET: BUCKET,
                c.ARTIFACTS_BUCKET: BUCKET,
                c.SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/bench",
                c.TRAINING_HYPERPARAMETERS: json.dumps({"max-seconds": 20}),
            }
        )
        request = build_training_request(config, "bench-default", "0" * 64, "manual")
        request["AlgorithmSpecification"]["MetricDefinitions"] = METRICS
        started = time.monotonic()
        sm.create_training_job(**request)
        assert cloud.wait_idle(600)
        default_s = time.monotonic() - started
        default = _metrics(sm, "bench-default")
        definition = {
            k: request[k]
            for k in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig")
        }
        definition.update(
            StaticHyperParameters=request["HyperParameters"],
            ResourceConfig=request["ResourceConfig"],
            StoppingCondition=request["StoppingCondition"],
        )
        started = time.monotonic()
        sm.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="bench-tuning",
            HyperParameterTuningJobConfig={
                "Strategy": "Bayesian",
                "HyperParameterTuningJobObjective": {
                    "Type": "Maximize",
                    "MetricName": "validation:f1",
                },
                "ResourceLimits": {
                    "MaxNumberOfTrainingJobs": args.trials,
                    "MaxParallelTrainingJobs": args.parallel,
                },
                "ParameterRanges": RANGES,
                "TrainingJobEarlyStoppingType": "Off",
                "RandomSeed": 3,
            },
            TrainingJobDefinition=definition,
        )
        assert cloud.wait_idle(1800)
        tuning_s = time.monotonic() - started
        done = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="bench-tuning")
        best = done["BestTrainingJob"]
        tuned = _metrics(sm, best["TrainingJobName"])
    print(f"rows {args.rows}, {args.trials} trials, {args.parallel} in parallel")
    print(
        f"default job: {default_s:.1f} s; tuning job: {tuning_s:.1f} s "
        f"({tuning_s / default_s:.1f}x one default job)"
    )
    counters = done["TrainingJobStatusCounters"]
    print(f"status {done['HyperParameterTuningJobStatus']}, counters {counters}")
    print(f"best trial {best['TrainingJobName']}: {best['TunedHyperParameters']}")
    for name, doc in (("default", default), ("tuned best", tuned)):
        print(
            f"{name:>10}: validation F1 {doc.get('validation:f1', float('nan')):.4f}, "
            f"test F1 {doc.get('test:f1', float('nan')):.4f}"
        )


if __name__ == "__main__":
    main()
