"""The local cloud's state on disk: moto's backends, saved on change and on stop.

``<state_dir>/snapshot/state.pickle`` holds every moto backend in use (S3 objects with
their versions, SageMaker jobs, models, packages and endpoints, DynamoDB items, IAM,
EventBridge rules, alarms, queues, KMS keys, Lambda functions...), pickled with a
header that names the format, moto's and Python's versions. :class:`Saver` writes it
at most once a second while requests change things and once more at stop; a write
goes to a temporary file first, so a crash leaves the previous snapshot whole.
:func:`restore` puts it back into the backends of a new process. Nothing in it
is secret beyond the fake account's data, and it is read only from the state folder
the user owns (pickle runs code on load: never point it at a file you did not write).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import platform
import threading
import time
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlops.localcloud.state import LocalCloudError

logger = logging.getLogger(__name__)

SNAPSHOT_DIR = "snapshot"
SNAPSHOT_FILE = "state.pickle"
FORMAT = 1
MIN_INTERVAL_S = 1.0


def snapshot_path(state_dir: Path) -> Path:
    return Path(state_dir) / SNAPSHOT_DIR / SNAPSHOT_FILE


def _versions() -> dict[str, Any]:
    import moto

    return {"format": FORMAT, "moto": moto.__version__, "python": platform.python_version()}


def _lock(kind: str) -> Any:
    return threading.RLock() if kind == "RLock" else threading.Lock()


def _private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


_LOCK_TYPES = {type(threading.Lock()): "Lock", type(threading.RLock()): "RLock"}


def _versioned_store(cls: type, lists: dict[str, list[Any]]) -> Any:
    store = cls()
    for key, versions in lists.items():
        store.setlist(key, versions)
    return store


class _Pickler(pickle.Pickler):
    """Pickles what moto keeps besides plain objects: locks (fresh ones on load),
    KMS key material (as PEM), weak-value caches (as their current content), and S3's
    key store with every version of each key (its ``items()`` shows the latest only)."""

    def reducer_override(self, obj: Any) -> Any:
        from moto.s3.utils import _VersionedKeyStore

        if isinstance(obj, _VersionedKeyStore):
            lists = {key: list(dict.__getitem__(obj, key)) for key in dict.keys(obj)}
            return _versioned_store, (type(obj), lists)
        kind = _LOCK_TYPES.get(type(obj))
        if kind is not None:
            return _lock, (kind,)
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        factory = obj.default_factory if isinstance(obj, defaultdict) else None
        if factory is not None and getattr(factory, "__name__", "") == "<lambda>":
            # `defaultdict(lambda: {})`: the same dict with the factory's type instead
            return defaultdict, (type(factory()), dict(obj.items()))
        if isinstance(obj, weakref.WeakValueDictionary):
            return weakref.WeakValueDictionary, (dict(obj.items()),)
        module = type(obj).__module__
        if module.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            from cryptography.hazmat.primitives import serialization

            pem = obj.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            return _private_key, (pem,)
        return NotImplemented


def capture() -> bytes:
    """Every moto backend in use, as one pickle (header first)."""
    from moto.core.base_backend import BackendDict, backend_lock

    backends: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    with backend_lock:
        for service in list(BackendDict._instances):  # type: ignore[misc]
            for account, region, backend in service.iter_backends():
                state = backends.setdefault(service.service_name, {}).setdefault(account, {})
                state[region] = dict(backend.__dict__)
        buffer = io.BytesIO()
        pickle.dump(_versions(), buffer)  # read on its own, before the rest
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(backends)
    return buffer.getvalue()


def save(state_dir: Path) -> Path:
    """Write the snapshot (atomically); its path."""
    path = snapshot_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = capture()
    partial = path.with_suffix(".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def restore(state_dir: Path) -> list[str] | None:
    """Load the snapshot into moto's backends: the services restored, or None without one.

    Raises LocalCloudError for a snapshot that cannot be read or was written by another
    version (never an empty cloud in silence: ``--fresh`` starts one on purpose).
    """
    from moto.backends import get_backend

    path = snapshot_path(state_dir)
    if not path.exists():
        return None
    fresh = "start with `mlops local start --fresh` (or `mlops local reset`) to begin empty"
    try:
        with path.open("rb") as handle:
            header = pickle.load(handle)  # noqa: S301 - the user's own state folder
            if not isinstance(header, dict) or header.get("format") != FORMAT:
                raise LocalCloudError(
                    f"{path} is not a local-cloud snapshot of format {FORMAT} "
                    f"(it says {header!r}); {fresh}"
                )
            if header.get("moto") != _versions()["moto"]:
                raise LocalCloudError(
                    f"{path} was written with moto {header.get('moto')}, this is moto "
                    f"{_versions()['moto']}: its objects may not load; {fresh}"
                )
            backends = pickle.load(handle)  # noqa: S301
    except LocalCloudError:
        raise
    except Exception as exc:  # truncated, corrupt, or from code that no longer exists
        raise LocalCloudError(
            f"cannot read the snapshot {path}: {type(exc).__name__}: {exc}; {fresh}"
        ) from exc
    for service, accounts in backends.items():
        target: Any = get_backend(service)
        for account, regions in accounts.items():
            for region, state in regions.items():
                target[account][region].__dict__.update(state)
    return sorted(backends)


def remove(state_dir: Path) -> bool:
    """Delete the snapshot; True when there was one."""
    path = snapshot_path(state_dir)
    existed = path.exists()
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return existed


class Saver:
    """Saves the snapshot in the background after changes, at most every second."""

    def __init__(self, state_dir: Path, interval: float = MIN_INTERVAL_S) -> None:
        self.state_dir = Path(state_dir)
        self.interval = interval
        self.saves = 0
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one save at a time
        self._thread = threading.Thread(target=self._work, name="localcloud-snapshot", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def changed(self) -> None:
        self._dirty.set()

    def save_now(self) -> None:
        with self._lock:
            self._dirty.clear()
            try:
                save(self.state_dir)
                self.saves += 1
            except Exception:  # keep serving; the previous snapshot stays whole
                logger.exception("could not save the local cloud's snapshot")

    def close(self) -> None:
        """Stop the thread and write a last snapshot."""
        self._stop.set()
        self._dirty.set()
        if self._thread.is_alive():
            self._thread.join(30)
        self.save_now()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._dirty.wait()
            if self._stop.is_set():
                return
            self.save_now()
            time.sleep(self.interval)


def fail_interrupted_jobs() -> list[str]:
    """Restored training, transform, processing and tuning jobs that were running when the last run
    ended are Failed now: their processes died with it (SageMaker, too, fails a job whose
    instance is lost)."""
    from moto.sagemaker.models import sagemaker_backends

    from mlops.localcloud import training_status

    failed = []
    for _, _, backend in sagemaker_backends.iter_backends():
        for job in list(getattr(backend, "training_jobs", {}).values()):
            if job.training_job_status in ("InProgress", "Stopping"):
                training_status.finish(
                    job,
                    "Failed",
                    "Failed",
                    "InternalServerError: the local cloud stopped while the job was running",
                )
                failed.append(job.training_job_name)
        for kind in ("transform", "processing"):
            for job in list(getattr(backend, f"{kind}_jobs", {}).values()):
                if getattr(job, f"{kind}_job_status") in ("InProgress", "Stopping"):
                    setattr(job, f"{kind}_job_status", "Failed")
                    job.failure_reason = "InternalServerError: the local cloud stopped meanwhile"
                    failed.append(getattr(job, f"{kind}_job_name"))
        for tuning in list(getattr(backend, "hyper_parameter_tuning_jobs", {}).values()):
            if tuning.hyper_parameter_tuning_job_status in ("InProgress", "Stopping"):
                tuning.hyper_parameter_tuning_job_status = "Failed"
                tuning.failure_reason = "InternalServerError: the local cloud stopped meanwhile"
                failed.append(tuning.hyper_parameter_tuning_job_name)
    return failed
