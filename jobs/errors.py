"""The jobs' one base error: every error a job raises on purpose."""

from __future__ import annotations


class JobError(Exception):
    """Base of the jobs' errors; the message says what was wrong."""
