"""The import contracts of pyproject.toml, checked against what really imports what."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_RUNTIME = {"boto3", "botocore", "aws_lambda_powertools"}


def test_lambdas_import_only_the_standard_library_boto3_and_powertools() -> None:
    # the forbidden list in pyproject names what is heavy; this says what is allowed
    graph = grimp.build_graph("lambdas", include_external_packages=True)
    external = {
        imported.split(".")[0]
        for module in graph.find_children("lambdas") | {"lambdas"}
        for imported in graph.find_modules_directly_imported_by(module)
        if not imported.startswith("lambdas")
    }

    assert external - LAMBDA_RUNTIME - set(sys.stdlib_module_names) == set()
    assert "boto3" in external  # the graph saw the handlers' real imports


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("lambdas/bad.py", "import pandas\n"),
        ("jobs/bad.py", "import lambdas\n"),
        ("infra/bad.py", "from jobs import bad\n"),
    ],
)
def test_lint_imports_fails_on_a_broken_contract(tmp_path: Path, module: str, line: str) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for package in ("infra", "jobs", "lambdas", "mlops"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / module).write_text(line)
    lint_imports = Path(sys.executable).with_name("lint-imports")

    broken = subprocess.run(
        [str(lint_imports)], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    (tmp_path / module).write_text("")
    fixed = subprocess.run(
        [str(lint_imports)], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "BROKEN" in broken.stdout
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
