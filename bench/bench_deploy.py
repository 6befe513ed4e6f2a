"""Benchmark: deploy the `local` stack into a local cloud, first run and re-run.

Also times the offline preview (`infra.preview.run_program`, the same program under
recording mocks) per stack for comparison. Prints seconds and resource counts
(nothing is asserted). Target: a deploy under 10 s.

    .venv/bin/python bench/bench_deploy.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

TARGET_S = 10.0
STACKS = ("dev", "prod", "local")


def main() -> None:
    start = time.perf_counter()
    from infra.preview import run_program
    from mlops.deploy import deploy
    from mlops.localcloud.server import LocalCloud

    print(f"imports: {time.perf_counter() - start:.2f} s")
    with tempfile.TemporaryDirectory(prefix="mlops-bench-deploy-") as tmp:
        state_dir = Path(tmp)
        start = time.perf_counter()
        with LocalCloud(0, state_dir=state_dir / "cloud", repo_root=REPO_ROOT) as cloud:
            print(f"local cloud start: {time.perf_counter() - start:.2f} s")
            print(f"{'deploy local':<16} {'seconds':>8} {'resources':>10} {'created':>8}")
            for label in ("first run", "re-run"):
                result = deploy("local", cloud.endpoint_url, state_dir, REPO_ROOT)
                verdict = "" if result.seconds < TARGET_S else f"  (OVER {TARGET_S:.0f} s)"
                print(
                    f"{label:<16} {result.seconds:>8.2f} {result.resource_count:>10} "
                    f"{len(result.created):>8}{verdict}"
                )
        print(f"{'preview':<16} {'seconds':>8} {'resources':>10}")
        for stack in STACKS:
            run = run_program(stack, REPO_ROOT, build_dir=state_dir / "build")
            print(f"{stack:<16} {run.seconds:>8.2f} {len(run.custom_resources):>10}")


if __name__ == "__main__":
    main()
