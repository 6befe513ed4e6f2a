"""The one error the local deployer raises."""

from __future__ import annotations

from mlops.errors import MlopsError


class DeployError(MlopsError, RuntimeError):
    """A resource could not be created; names the resource and the AWS error."""
