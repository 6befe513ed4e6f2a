"""The local endpoint's errors."""

from __future__ import annotations

from mlops.errors import MlopsError


class EndpointError(MlopsError):
    """Base class of the local endpoint's errors."""


class PortInUse(EndpointError):
    """The address to listen on is taken by another process."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        super().__init__(
            f"port {port} on {host} is already in use: stop the process listening there "
            f"or pick another port (e.g. --port {port + 1})"
        )


class InvocationError(EndpointError):
    """A request the model cannot answer; ``status`` is the HTTP status to reply with."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"{status}: {message}")
