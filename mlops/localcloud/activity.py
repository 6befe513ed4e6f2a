"""Counts the work in flight so callers can wait until the local cloud is idle."""

from __future__ import annotations

import threading
from collections import Counter


class Activity:
    """A counter of queued or running work items, by kind ("job", "event", ...).

    Work is counted from the moment it is queued (inside the API request that
    caused it) until everything it caused has been queued in turn, so "idle"
    means nothing is left to happen: no job queued or running, no event pending.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._counts: Counter[str] = Counter()

    def begin(self, kind: str) -> None:
        with self._cond:
            self._counts[kind] += 1

    def end(self, kind: str) -> None:
        with self._cond:
            self._counts[kind] -= 1
            if self._counts[kind] <= 0:
                del self._counts[kind]
            self._cond.notify_all()

    def busy(self) -> dict[str, int]:
        with self._cond:
            return dict(self._counts)

    def wait_idle(self, timeout: float | None) -> bool:
        """True once nothing is in flight; False if ``timeout`` seconds pass first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._counts, timeout)
