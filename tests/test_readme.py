"""The README's walkthrough and the your-data guide run verbatim, in a fresh folder.

Each marked block (``<!-- walkthrough:start -->`` ... ``:end -->``) is run line by line
with bash in a scratch folder that holds only a link to this repository's ``.venv``,
against a fresh local cloud (on a free port: ``MLOPS_LOCAL_PORT``). A line fails the
test when it exits non-zero, or when its output lacks what its ``# prints:`` comment
says. The timings of each step are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from infra_helpers import REPO_ROOT

from mlops.localcloud.process import free_port

PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$")


@dataclass(frozen=True)
class Step:
    line: str
    prints: str | None


def blocks(path: Path, name: str) -> list[Step]:
    """The steps of the ``name`` block of ``path``."""
    text = path.read_text()
    found = re.search(rf"<!-- {name}:start -->\s*```\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert found, f"{path.name}: no {name} block"
    steps = []
    for line in found[1].splitlines():
        if line.strip():
            match = PRINTS.search(line)
            steps.append(Step(line, match[1] if match else None))
    return steps


def run_block(steps: list[Step], folder: Path) -> list[tuple[str, float]]:
    (folder / ".venv").symlink_to(REPO_ROOT / ".venv")
    env = {**os.environ, "MLOPS_LOCAL_PORT": str(free_port()), "COLUMNS": "200"}
    timings = []
    try:
        for step in steps:
            started = time.monotonic()
            done = subprocess.run(
                ["bash", "-c", step.line],
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            timings.append((step.line.split("#")[0].strip(), time.monotonic() - started))
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"{step.line}\nexited {done.returncode}:\n{output}"
            if step.prints:
                assert step.prints in output, (
                    f"{step.line}\ndoes not print {step.prints!r}:\n{output}"
                )
    finally:
        # a failed step must not leave the local cloud running
        subprocess.run(
            [str(folder / ".venv/bin/mlops"), "local", "stop"], cwd=folder, capture_output=True
        )
    for line, seconds in timings:
        print(f"{seconds:6.1f} s  {line}")
    return timings


def test_the_blocks_are_found_and_say_what_they_print() -> None:
    readme = blocks(REPO_ROOT / "README.md", "walkthrough")
    guide = blocks(REPO_ROOT / "docs" / "your-data.md", "your-data")
    assert readme[0].line.startswith(".venv/bin/mlops local start")
    assert readme[-1].prints == "local cloud stopped"
    assert sum(s.prints is not None for s in readme) >= 8
    assert any("init" in s.line for s in guide) and any("predict" in s.line for s in guide)


@pytest.mark.slow
def test_the_readme_walkthrough_runs_verbatim(tmp_path: Path) -> None:
    run_block(blocks(REPO_ROOT / "README.md", "walkthrough"), tmp_path)
    assert (tmp_path / "data" / "day1.csv").is_file()


@pytest.mark.slow
def test_the_your_data_guide_runs_verbatim(tmp_path: Path) -> None:
    stack_file = REPO_ROOT / "Pulumi.cells.yaml"
    assert not stack_file.exists(), f"{stack_file.name} is left from an earlier run: remove it"
    try:
        run_block(blocks(REPO_ROOT / "docs" / "your-data.md", "your-data"), tmp_path)
        assert "mlops:targetColumn: benign" in stack_file.read_text()
    finally:
        stack_file.unlink(missing_ok=True)
