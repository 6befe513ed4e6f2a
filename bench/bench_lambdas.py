"""Cold import time of each Lambda handler module and the size of the Lambda zip.

Run by hand: ``.venv/bin/python bench/bench_lambdas.py [--runs 5]``. Prints, asserts
nothing. Targets: a handler imports in under 300 ms and the zip is under 1 MB.

- Import time is ``python -X importtime -c "import lambdas.<handler>"``: the sum of the
  cumulative microseconds of the top-level ``lambdas*`` entries (what importing the
  handler costs beyond interpreter start-up; minus the editable-install import hook,
  which does not exist in Lambda), best of ``--runs`` fresh processes. On a busy
  machine the figures swing by 2x: the load average is printed with them, and
  ``import boto3`` alone as a reference (boto3 is most of every handler's cost). The
  idempotency utility is imported on first use (only when a job is about to start or a
  promotion runs); its extra cost is printed separately.
- The zip holds ``lambdas/`` only (no ``__pycache__``): boto3 is in the Lambda runtime
  and aws-lambda-powertools comes from the AWS-published Powertools layer.
- A handler must not import pandas, numpy or scikit-learn: the modules each import pulls
  in are checked for them.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLERS = ("lambdas.retrain", "lambdas.promote", "lambdas.drift")
HEAVY = ("pandas", "numpy", "sklearn", "scipy", "sagemaker")
IMPORT_TARGET_MS = 300
ZIP_TARGET_BYTES = 1024 * 1024


def import_profile(statement: str) -> tuple[float, set[str], dict[str, float], dict[str, float]]:
    """``(ms for lambdas*, modules imported, top-level and second-level cumulative ms)``."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    modules: set[str] = set()
    top: dict[str, float] = {}
    second: dict[str, float] = {}
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative_us, raw_name = line.split("|", 2)
        name = raw_name.strip()
        modules.add(name)
        level = (len(raw_name) - len(raw_name.lstrip()) - 1) // 2  # " name" is level 0
        if level == 0:
            top[name] = int(cumulative_us) / 1000
        elif level == 1:
            second[name] = int(cumulative_us) / 1000
    own = sum(ms for name, ms in top.items() if name.split(".")[0] == "lambdas")
    # the editable install's import hook is loaded while resolving `lambdas`; not in Lambda
    own -= sum(ms for name, ms in second.items() if name.startswith("__editable__"))
    return own, modules, top, second


def best_of(
    statement: str, runs: int
) -> tuple[float, set[str], dict[str, float], dict[str, float]]:
    results = [import_profile(statement) for _ in range(runs)]
    return min(results, key=lambda r: r[0])


def zip_size() -> tuple[int, int]:
    buffer = io.BytesIO()
    files = 0
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((ROOT / "lambdas").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                archive.write(path, path.relative_to(ROOT).as_posix())
                files += 1
    return len(buffer.getvalue()), files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per handler")
    args = parser.parse_args()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"cold import (best of {args.runs}; target < {IMPORT_TARGET_MS} ms; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    _, _, top, _ = best_of("import boto3", args.runs)
    print(f"  reference: import boto3 alone {top.get('boto3', 0.0):.1f} ms")
    for module in HANDLERS:
        ms, modules, _, second = best_of(f"import {module}", args.runs)
        heavy = sorted(
            h for h in HEAVY if h in modules or any(m.startswith(h + ".") for m in modules)
        )
        biggest = sorted(
            ((n, v) for n, v in second.items() if not n.startswith("__editable__")),
            key=lambda kv: -kv[1],
        )[:3]
        verdict = "ok" if ms < IMPORT_TARGET_MS else "OVER TARGET"
        print(
            f"  {module:<18} {ms:7.1f} ms  {verdict:<11}  heavy imports: {heavy or 'none'}"
            f"  (largest: {', '.join(f'{n} {v:.0f} ms' for n, v in biggest)})"
        )
    _, _, top, _ = best_of(
        "import lambdas.retrain; import aws_lambda_powertools.utilities.idempotency", args.runs
    )
    idem = top.get("aws_lambda_powertools.utilities.idempotency", 0.0)
    print(f"  first use of the idempotency utility adds ~{idem:.1f} ms (imported lazily)")

    size, files = zip_size()
    verdict = "ok" if size < ZIP_TARGET_BYTES else "OVER TARGET"
    print(f"lambda zip (lambdas/ only, {files} files): {size / 1024:.1f} KiB  {verdict}")
    print("  boto3: Lambda runtime; aws-lambda-powertools: the AWS Powertools layer")


if __name__ == "__main__":
    main()
