"""The local cloud's WSGI front: its control API (``/_localcloud/*``), moto for the rest.

Every request that may change moto's state tells the cloud, which snapshots it soon
when it persists (:mod:`mlops.localcloud.snapshot`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from mlops.localcloud.state import CONTROL_PREFIX, LocalCloudError

logger = logging.getLogger(__name__)


_READS = ("Describe", "List", "Get", "Search", "BatchGet", "Query", "Scan")


def _may_change(environ: dict[str, Any]) -> bool:
    """A request that may change state (JSON-protocol reads name themselves)."""
    if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
        return False
    action = str(environ.get("HTTP_X_AMZ_TARGET", "")).rpartition(".")[2]
    return not action.startswith(_READS)


class ControlApp:
    """WSGI app: ``/_localcloud/*`` answered here, everything else by moto."""

    def __init__(self, cloud: Any, moto_app: Callable[..., Iterable[bytes]]) -> None:
        self.cloud = cloud
        self.moto_app = moto_app

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            if _may_change(environ):
                self.cloud.changed()
            return self.moto_app(environ, start_response)
        status, payload = self._handle(environ, path[len(CONTROL_PREFIX) :])
        body = json.dumps(payload, default=str).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}
        start_response(
            f"{status} {reason.get(status, 'Error')}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _handle(self, environ: dict[str, Any], action: str) -> tuple[int, Any]:
        cloud = self.cloud
        method = environ.get("REQUEST_METHOD", "GET")
        try:
            request = self._json(environ) if method == "POST" else {}
            if action == "health":
                return 200, {"ok": True, "pid": os.getpid(), "endpoint_url": cloud.endpoint_url}
            if action == "status":
                return 200, cloud.status()
            if action == "deliveries":
                return 200, {"deliveries": cloud.deliveries}
            if action == "fire_schedule" and method == "POST":
                rule = str(request.get("rule", ""))
                try:
                    return 200, {"rule": rule, "delivered": cloud.fire_schedule(rule)}
                except LocalCloudError as exc:
                    return 404, {"error": str(exc)}
            if action == "wait_idle" and method == "POST":
                timeout = request.get("timeout")
                idle = cloud.wait_idle(None if timeout is None else float(timeout))
                return 200, {"idle": idle, "busy": cloud.activity.busy()}
        except ValueError as exc:
            return 400, {"error": f"bad request: {exc}"}
        except Exception as exc:
            logger.exception("control API %s failed", action)
            return 500, {"error": str(exc)}
        return 404, {"error": f"unknown control action {method} {CONTROL_PREFIX}{action}"}

    @staticmethod
    def _json(environ: dict[str, Any]) -> dict[str, Any]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        data = json.loads(raw or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data
