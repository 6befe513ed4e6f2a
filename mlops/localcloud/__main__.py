"""``python -m mlops.localcloud --port 5000 --state-dir .mlops``: the background process."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mlops.localcloud.state import (
    DEFAULT_PORT,
    LocalCloudError,
    LocalCloudInfo,
    remove_info,
    write_info,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops.localcloud", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-dir", type=Path, default=Path(".mlops"))
    parser.add_argument("--repo-root", type=Path, default=None)
    parser.add_argument(
        "--tick", type=float, default=None, help="fire every schedule rule every TICK seconds"
    )
    parser.add_argument("--max-jobs", type=int, default=1, help="training jobs run at once")
    parser.add_argument(
        "--persist",
        action="store_true",
        help="restore <state-dir>/snapshot at start, keep it up to date, save it at stop",
    )
    parser.add_argument("--verbose", action="store_true", help="log every API request")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    repo_root = (args.repo_root or Path.cwd()).resolve()
    if str(repo_root) not in sys.path:
        sys.path.insert(0, str(repo_root))  # jobs.inference for the endpoints

    from mlops.localcloud.server import LocalCloud

    state_dir = args.state_dir.resolve()
    cloud = LocalCloud(
        args.port,
        state_dir=state_dir,
        tick=args.tick,
        repo_root=repo_root,
        max_jobs=args.max_jobs,
        persist=args.persist,
    )
    try:
        cloud.start()
    except LocalCloudError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.INFO)

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    pid = os.getpid()
    write_info(
        state_dir,
        LocalCloudInfo(
            endpoint_url=cloud.endpoint_url,
            port=cloud.port,
            pid=pid,
            started_at=cloud.started_at,
            state_dir=str(state_dir),
        ),
    )
    try:
        cloud.serve_forever(stop)
    finally:
        remove_info(state_dir, pid)
        cloud.close()
        logging.getLogger(__name__).info("local cloud stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
