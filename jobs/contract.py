"""The SageMaker training contract: where the job finds its inputs and writes its outputs.

Folders come from the ``SM_*`` environment SageMaker sets (defaults: the container's
``/opt/ml`` layout); the file names are what docs/contracts.md promises to the control
plane and the serving container.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

MODEL_FILE = "model.joblib"
EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
REPORT_FILE = "report.html"
PROFILE_FILE = "profile.json"  # what the data guard compares a later job's new data with
TEST_SPLIT_FILE = "test.csv"  # the test split, in output.tar.gz: the first reference set
FAILURE_FILE = "failure"
HYPERPARAMETERS_FILE = "hyperparameters.json"


def add_path_arguments(parser: argparse.ArgumentParser) -> None:
    """The input channels and output folders, each defaulting to its ``SM_*`` variable."""
    env = os.environ.get
    parser.add_argument("--train", default=env("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument("--validation", default=env("SM_CHANNEL_VALIDATION"))
    parser.add_argument("--test", default=env("SM_CHANNEL_TEST"))
    parser.add_argument(
        "--champion",
        default=env("SM_CHANNEL_CHAMPION"),
        help="the champion's model.tar.gz (or a folder holding it, or an extracted model "
        "folder): scored on the same test split",
    )
    parser.add_argument(
        "--reference",
        default=env("SM_CHANNEL_REFERENCE"),
        help="the frozen reference set (a labelled CSV, or a folder holding one): scored "
        "by both models and never trained on",
    )
    parser.add_argument("--model-dir", "--model_dir", default=env("SM_MODEL_DIR", "/opt/ml/model"))
    parser.add_argument(
        "--output-data-dir",
        "--output_data_dir",
        default=env("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"),
    )
    parser.add_argument(
        "--output-dir", "--output_dir", default=env("SM_OUTPUT_DIR", "/opt/ml/output")
    )


def hyperparameters_file() -> Path:
    """``hyperparameters.json`` in ``SM_INPUT_CONFIG_DIR``, where SageMaker writes it."""
    config_dir = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config"))
    return config_dir / HYPERPARAMETERS_FILE


def write_failure(reason: str, output_dir: str | None) -> None:
    """One line to the SageMaker failure file (best effort) and to stderr."""
    line = " ".join(reason.split())
    print(f"training failed: {line}", file=sys.stderr)
    folder = Path(output_dir or os.environ.get("SM_OUTPUT_DIR") or "/opt/ml/output")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / FAILURE_FILE).write_text(line + "\n")
    except OSError as exc:
        print(f"could not write {folder / FAILURE_FILE}: {exc}", file=sys.stderr)
