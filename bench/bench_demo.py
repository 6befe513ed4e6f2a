"""Benchmark: the whole demo loop (`mlops demo`) in a local cloud of its own.

Prints seconds per stage and the total (nothing is asserted). Target: under 30 s of
stages at the default 5,000 rows a day (`mlops demo`'s) on a 2-core machine.

    .venv/bin/python bench/bench_demo.py [rows]
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TARGET_S = 30.0

from mlops import demo  # noqa: E402 - after the path insert


def main(rows: int) -> None:
    from rich.console import Console

    from mlops import demo

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-demo-") as workdir:
        result = demo.run(
            REPO_ROOT, rows=rows, workdir=Path(workdir), console=Console(file=io.StringIO())
        )
    wall = time.perf_counter() - start
    print(f"demo with {rows} rows/day: {result.resources} resources, {len(result.jobs)} jobs")
    width = max(len(stage) for stage in result.timings)
    for stage, seconds in result.timings.items():
        print(f"  {stage:<{width}} {seconds:6.2f} s")
    verdict = "within" if result.total_seconds < TARGET_S else "OVER"
    print(
        f"  {'total (stages)':<{width}} {result.total_seconds:6.2f} s  ({verdict} {TARGET_S:.0f} s)"
    )
    print(f"  {'wall (start + stop too)':<{width}} {wall:6.2f} s")
    for package in result.packages:
        print(f"  package {package['version']}: {package['status']}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else demo.ROWS)
