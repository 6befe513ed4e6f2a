"""Benchmark: evaluate the whole Pulumi program under mocks, per stack configuration.

Prints seconds and resource counts (nothing is asserted). Target: under 5 s per stack.

    .venv/bin/python bench/bench_preview.py [stack ...]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CONFIGS: dict[str, tuple[str, dict[str, str]]] = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "local": ("local", {}),
    "prod+pinned": ("prod", {"mlops:pinnedModelDataUrl": "s3://bench-models/m/model.tar.gz"}),
}


def cold_seconds(stack: str) -> float:
    """A fresh interpreter: imports + one evaluation (what `mlops preview` costs)."""
    code = (
        "from infra.preview import run_program; import tempfile, pathlib; "
        f"run_program({stack!r}, build_dir=pathlib.Path(tempfile.mkdtemp()))"
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
    return time.perf_counter() - start


def main(selected: list[str]) -> None:
    import tempfile

    start = time.perf_counter()
    from infra.preview import check_rules, run_program

    print(f"import infra.preview: {time.perf_counter() - start:.2f} s")
    build_dir = Path(tempfile.mkdtemp(prefix="mlops-bench-"))
    print(f"{'config':<12} {'first s':>8} {'again s':>8} {'cold proc s':>12} "
          f"{'resources':>10} {'custom':>7} {'violations':>10}")  # fmt: skip
    for label in selected:
        stack, overrides = CONFIGS[label]
        first = run_program(stack, overrides=overrides, build_dir=build_dir)
        again = run_program(stack, overrides=overrides, build_dir=build_dir)
        violations = check_rules(again)
        cold = cold_seconds(stack) if not overrides else float("nan")
        print(
            f"{label:<12} {first.seconds:>8.2f} {again.seconds:>8.2f} {cold:>12.2f} "
            f"{len(again):>10} {len(again.custom_resources):>7} {len(violations):>10}"
        )


if __name__ == "__main__":
    main(sys.argv[1:] or list(CONFIGS))
