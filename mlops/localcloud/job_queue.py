"""One kind of SageMaker job (transform, processing) run in turn by a worker thread.

Each job is counted in :class:`~mlops.localcloud.activity.Activity` from the request that
created it until it ended, so ``wait_idle`` waits for it; ``stop`` marks it ``Stopping``
and sets its stop flag, which the runner checks between steps.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from queue import Queue
from typing import Any

from mlops.localcloud.activity import Activity

logger = logging.getLogger(__name__)


@dataclass
class Entry:
    job: Any
    account: str
    region: str
    stop: threading.Event = field(default_factory=threading.Event)
    proc: Any = None  # the job's process, when it has one


class JobQueue:
    """A queue of one ``kind`` of job (``"transform"``: ``job.transform_job_name``...)."""

    MAX_REASON = 1024  # SageMaker's FailureReason / ExitMessage length

    def __init__(self, kind: str, activity: Activity) -> None:
        self.kind, self.activity = kind, activity
        self.closing = False
        self._queue: Queue[Entry | None] = Queue()
        self._entries: dict[str, Entry] = {}
        self._thread = threading.Thread(target=self._work, name=f"localcloud-{kind}", daemon=True)
        self._thread.start()

    def _name(self, job: Any) -> str:
        return str(getattr(job, f"{self.kind}_job_name"))

    def submit(self, job: Any, account: str, region: str) -> None:
        self.activity.begin(self.kind)
        entry = Entry(job, account, region)
        self._entries[self._name(job)] = entry
        self._queue.put(entry)

    def stop(self, name: str) -> bool:
        """Ask a queued or running job to stop; False when it is not running here."""
        entry = self._entries.get(name)
        status = f"{self.kind}_job_status"
        if entry is None or getattr(entry.job, status) != "InProgress":
            return False  # an ended job keeps its status
        setattr(entry.job, status, "Stopping")
        entry.stop.set()
        return True

    def stopped_reason(self) -> str:
        """The FailureReason of a stopped job: none for a stop a caller asked for."""
        return "the local cloud shut down while the job ran" if self.closing else ""

    def close(self, timeout: float = 10.0) -> None:
        self.closing = True
        for entry in list(self._entries.values()):
            entry.stop.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            try:
                self._run(entry)
            except Exception:
                logger.exception("%s job %s crashed", self.kind, self._name(entry.job))
            finally:
                self._entries.pop(self._name(entry.job), None)
                self.activity.end(self.kind)

    def _run(self, entry: Entry) -> None:
        raise NotImplementedError
