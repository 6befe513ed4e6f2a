"""The local cloud: one process that makes a moto server act like the AWS account.

moto stores resources but runs nothing; this package adds, in one process beside
moto's server, what the stack needs from AWS offline (all narrow STAND-INS):
a job runner for SageMaker training jobs, an event router that delivers S3,
schedule, training-state and alarm events to the deployed Lambda handlers, real
predictions for ``InvokeEndpoint``, and the SageMaker calls moto lacks
(``UpdateEndpoint``, ``StopTrainingJob``). See ``docs/local-cloud.md``.

Process management (for the CLI)::

    info = start(Path(".mlops"), port=5000)   # background process, waits until healthy
    status(Path(".mlops"))                    # LocalCloudInfo | None
    stop(Path(".mlops"))                      # True if one was running

and :mod:`mlops.localcloud.client` (``fire_schedule``, ``wait_idle``,
``deliveries``) against it. In-process, for tests::

    with LocalCloud(port=0, repo_root=...) as cloud:
        ...  # boto3 clients with endpoint_url=cloud.endpoint_url
        cloud.wait_idle(30)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.localcloud.process import start, status, stop
from mlops.localcloud.state import LocalCloudError, LocalCloudInfo, read_deliveries

if TYPE_CHECKING:
    from mlops.localcloud.server import LocalCloud

__all__ = [
    "LocalCloud",
    "LocalCloudError",
    "LocalCloudInfo",
    "read_deliveries",
    "start",
    "status",
    "stop",
]


def __getattr__(name: str) -> Any:
    # LocalCloud imports moto (~0.5 s); the CLI and the Lambda invoker do not need it.
    if name == "LocalCloud":
        from mlops.localcloud.server import LocalCloud

        return LocalCloud
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
