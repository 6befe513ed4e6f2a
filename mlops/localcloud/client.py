"""Talk to a running local cloud's control API (``/_localcloud/`` on its port).

Used by the CLI against the background process; every function takes the
endpoint URL (``http://127.0.0.1:5000``) or a :class:`LocalCloudInfo`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from mlops.localcloud.state import CONTROL_PREFIX, LocalCloudError, LocalCloudInfo

Target = str | LocalCloudInfo


def _url(target: Target, action: str) -> str:
    base = target.endpoint_url if isinstance(target, LocalCloudInfo) else target
    return base.rstrip("/") + CONTROL_PREFIX + action


def _call(target: Target, action: str, body: dict[str, Any] | None, timeout: float) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
        _url(target, action),
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise LocalCloudError(message) from None
    except (urllib.error.URLError, OSError) as exc:
        raise LocalCloudError(
            f"the local cloud at {_url(target, '')} is not reachable: {exc}"
        ) from None


def health(target: Target, timeout: float = 2.0) -> dict[str, Any] | None:
    """``{"ok": True, "pid": ..., "endpoint_url": ...}``, or None when not answering."""
    try:
        result = _call(target, "health", None, timeout)
    except LocalCloudError:
        return None
    return result if isinstance(result, dict) else None


def status(target: Target, timeout: float = 5.0) -> dict[str, Any]:
    """Counters: busy work by kind, active jobs, deliveries (total and failed)."""
    return dict(_call(target, "status", None, timeout))


def fire_schedule(target: Target, rule: str, timeout: float = 10.0) -> int:
    """Fire schedule rule ``rule`` now; the number of Lambda deliveries queued."""
    return int(_call(target, "fire_schedule", {"rule": rule}, timeout)["delivered"])


def wait_idle(target: Target, timeout: float = 300.0) -> bool:
    """Block until no job runs and no event is pending; False if ``timeout`` passed."""
    result = _call(target, "wait_idle", {"timeout": timeout}, timeout + 10.0)
    return bool(result["idle"])


def deliveries(target: Target, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every Lambda delivery made so far, oldest first."""
    return list(_call(target, "deliveries", None, timeout)["deliveries"])
