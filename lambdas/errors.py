"""The control plane's one base error: every error a handler raises on purpose."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base of the control plane's errors; the message says what was wrong."""
