"""The Pulumi program's one base error: every error infra raises on purpose."""

from __future__ import annotations


class InfraError(Exception):
    """Base of infra's errors; the message names the key or resource that was wrong."""
