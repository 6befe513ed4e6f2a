"""The machine's own ``/opt/ml``, for job code that uses a container's literal paths.

Without a container a processing script's ``/opt/ml/processing/input`` or the v3 SDK's
``/opt/ml/input/data/sm_drivers/sm_train.sh`` reach only this machine's ``/opt/ml``. A
job that needs it holds a machine-wide lock (a second local cloud's job waits), finds
its folders absent or empty (it never deletes what it did not make) and leaves none
behind.
"""

from __future__ import annotations

import fcntl
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from mlops.errors import MlopsError

ML_ROOT = Path("/opt/ml")
LOCK_FILE = Path(tempfile.gettempdir()) / "mlops-opt-ml.lock"


class OptMlError(MlopsError):
    """``/opt/ml`` cannot be used for the job; the message says why."""


@contextmanager
def claimed(paths: Sequence[Path]) -> Iterator[None]:
    """Hold ``/opt/ml`` and make ``paths`` in it; remove every folder made, after."""
    with LOCK_FILE.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        created: list[Path] = []
        try:
            for path in paths:
                if path.exists():
                    if path != ML_ROOT and path.is_dir() and any(path.iterdir()):
                        raise OptMlError(
                            f"{path} exists and is not empty: the local cloud deletes only "
                            "what it made (remove it, or pick another path)"
                        )
                    continue
                missing = [p for p in (path, *path.parents) if not p.exists()]
                path.mkdir(parents=True, exist_ok=True)
                created.append(missing[-1])  # the highest folder made
            yield
        except PermissionError as exc:
            raise OptMlError(
                f"the job's code uses the container's paths under {ML_ROOT}, which this user "
                f"may not create: {exc} (run the local cloud as a user who may, or in a "
                "container)"
            ) from None
        finally:
            for path in reversed(created):
                shutil.rmtree(path, ignore_errors=True)
