"""The one error the local deployer raises."""

from __future__ import annotations


class DeployError(RuntimeError):
    """A resource could not be created; names the resource and the AWS error."""
