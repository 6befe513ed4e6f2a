"""The mlops package's one base error, so the CLI catches one class."""

from __future__ import annotations


class MlopsError(Exception):
    """Base of the mlops package's errors; the message is meant for the user."""
