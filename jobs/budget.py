"""The job's time budget (``max-seconds``): what may still run, and what was skipped.

The search ends itself at its share of the budget (:mod:`jobs.search`). Every stage after
it that is not needed for a valid model (cross-fitted calibration, the learning curve,
permutation importance, partial dependence; the refit too) asks :meth:`Budget.affords`
with its expected cost, estimated from the search's own fit and predict times; a stage
that would run past the budget less a reserve (for the champion, the report and writing
the model) is skipped and named in ``evaluation.json["budget"]``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

RESERVE_SHARE = 0.1  # of the budget, kept for what always runs after the optional stages
MIN_RESERVE = 2.0


class Budget:
    """Seconds left of ``seconds`` since construction, by ``clock``."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self._start = clock()
        self.reserve = max(MIN_RESERVE, RESERVE_SHARE * self.seconds)
        self.skipped: list[dict[str, Any]] = []

    def spent(self) -> float:
        return self._clock() - self._start

    def left(self) -> float:
        """Seconds an optional stage may still use (the reserve excluded)."""
        return self.seconds - self.reserve - self.spent()

    def affords(self, stage: str, expected: float) -> bool:
        """Whether ``stage`` fits; if not, it is recorded as skipped with the numbers."""
        left = self.left()
        if expected <= left:
            return True
        self.skipped.append(
            {
                "stage": stage,
                "expected_seconds": round(expected, 3),
                "left_seconds": round(max(0.0, left), 3),
            }
        )
        return False

    def record(self) -> dict[str, Any]:
        """``evaluation.json["budget"]``."""
        spent = self.spent()
        return {
            "seconds": self.seconds,
            "spent_seconds": round(spent, 3),
            "within": spent <= self.seconds,
            "skipped": list(self.skipped),
        }
