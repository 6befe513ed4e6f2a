"""``python -m mlops.endpoint MODEL``: serve one model in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import mlops.endpoint as endpoint
from mlops.endpoint.capture import DEFAULT_VARIANT, CaptureWriter
from mlops.endpoint.errors import PortInUse
from mlops.endpoint.server import serve


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlops.endpoint MODEL [--port N] [--capture-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m mlops.endpoint", description=endpoint.__doc__)
    parser.add_argument("model", help="model folder or model.tar.gz")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--capture-dir", type=Path, help="write data capture under this folder")
    parser.add_argument("--endpoint-name", default="local-endpoint")
    parser.add_argument("--variant-name", default=DEFAULT_VARIANT)
    parser.add_argument("--sample-percent", type=float, default=100.0)
    parser.add_argument(
        "--model-threads", type=int, default=1, help="OpenMP threads per request (0: default)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    capture = None
    if args.capture_dir is not None:
        capture = CaptureWriter(
            endpoint_name=args.endpoint_name,
            variant_name=args.variant_name,
            directory=args.capture_dir,
            sample_percent=args.sample_percent,
        )
    try:
        serve(args.model, args.host, args.port, capture, model_threads=args.model_threads or None)
    except (PortInUse, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
