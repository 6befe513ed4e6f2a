"""The Lambda runtime stand-in: warm execution environments for deployed functions.

STAND-IN for the Lambda Python runtime, which moto runs in Docker only. The parent
half, :class:`LambdaRuntime` (used by the event router), builds the function's
environment (its variables, the local cloud's endpoint, fake credentials,
``AWS_LAMBDA_*``) and keeps one warm execution environment per function, a
``python -m mlops.localcloud.lambda_worker <Handler>`` process that imports the handler
on its first invocation and reuses it after, as Lambda does. A new code hash, handler or
configuration starts a fresh one; a timed-out invocation or a crashed runtime ends its
environment (as Lambda resets it); environments idle for :data:`IDLE_S` are reaped,
and all of them end with the local cloud (:mod:`mlops.localcloud.children`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.localcloud.children import die_with_parent
from mlops.localcloud.state import DEFAULT_REGION, FAKE_CREDENTIALS

logger = logging.getLogger(__name__)

# Lambda's init phase has its own 10 s budget on top of the function timeout.
INIT_ALLOWANCE_S = 10.0
IDLE_S = 600.0  # Lambda reaps an idle environment after minutes; so do we
_LOG_TAIL_CHARS = 4000
_ENV_PREFIXES_DROPPED = ("AWS_", "MLOPS_", "SM_", "_HANDLER", "LAMBDA_")
_PER_INVOCATION = ("AWS_LAMBDA_LOG_STREAM_NAME", "_LOCALCLOUD_REQUEST_ID")


@dataclass
class _Environment:
    """One warm execution environment: its process and what it was started for."""

    key: str
    proc: subprocess.Popen[bytes]
    invocations: int = 0
    last_used: float = field(default_factory=time.monotonic)
    busy: threading.Lock = field(default_factory=threading.Lock)  # one invocation at a time

    def alive(self) -> bool:
        return self.proc.poll() is None

    def end(self) -> None:
        if self.alive():
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class LambdaRuntime:
    """Runs handlers of moto's Lambda functions in warm execution environments.

    Parameters
    ----------
    endpoint_url : str
        Given to handlers as ``AWS_ENDPOINT_URL``.
    python_path : sequence of str
        The handlers' ``PYTHONPATH`` (the repository root first).
    cwd : Path, optional
        The handlers' working directory.
    state_dir : Path, optional
        Each function's output is appended to ``<state_dir>/lambda/<function>.log``.
    """

    def __init__(
        self,
        *,
        endpoint_url: str,
        python_path: Sequence[str],
        cwd: Path | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.python_path = list(python_path)
        self.cwd = cwd
        self.state_dir = state_dir
        self._environments: dict[str, _Environment] = {}
        self._lock = threading.Lock()
        self._scratch = tempfile.TemporaryDirectory(prefix="mlops-lambda-")

    def kill(self) -> None:
        """End every execution environment (the local cloud shuts down)."""
        with self._lock:
            environments, self._environments = list(self._environments.values()), {}
        for environment in environments:
            environment.end()
        with contextlib.suppress(OSError):
            self._scratch.cleanup()

    def warm(self) -> dict[str, int]:
        """Function ARN -> invocations served by its live environment."""
        with self._lock:
            return {arn: e.invocations for arn, e in self._environments.items() if e.alive()}

    def environment(self, fn: Any, request_id: str) -> dict[str, str]:
        """The handler's environment: its function's variables on a Lambda-like base."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_DROPPED)}
        env.pop("PYTHONPATH", None)
        region = getattr(fn, "region", DEFAULT_REGION)
        env.update(
            {
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,
                "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
                "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"localcloud/{request_id}",
                "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
                "_HANDLER": fn.handler or "",
                "_LOCALCLOUD_FUNCTION_ARN": fn.function_arn,
                "_LOCALCLOUD_REQUEST_ID": request_id,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": os.pathsep.join(self.python_path),
            }
        )
        env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
        # after the function's own variables: the local cloud is the only AWS there is
        env.update(FAKE_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def _environment_for(self, fn: Any, env: dict[str, str]) -> tuple[_Environment, bool]:
        """The function's warm environment, or a new one: ``(environment, started now)``."""
        static = {k: v for k, v in env.items() if k not in _PER_INVOCATION}
        identity = [fn.handler, getattr(fn, "code_sha_256", ""), sorted(static.items())]
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        now = time.monotonic()
        stale: list[_Environment] = []
        with self._lock:
            for arn, other in list(self._environments.items()):
                if now - other.last_used > IDLE_S:
                    stale.append(self._environments.pop(arn))
            current = self._environments.get(fn.function_arn)
            if current is not None and (current.key != key or not current.alive()):
                stale.append(self._environments.pop(fn.function_arn))
                current = None
        for environment in stale:
            environment.end()
        if current is not None:
            return current, False
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "mlops.localcloud.lambda_worker", fn.handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=static,
            cwd=str(self.cwd) if self.cwd else None,
            preexec_fn=die_with_parent,  # only a prctl call between fork and exec
        )
        environment = _Environment(key, proc)
        with self._lock:
            self._environments[fn.function_arn] = environment
        return environment, True

    def invoke(self, fn: Any, payload: Any, request_id: str) -> dict[str, Any]:
        """Run ``fn``'s handler on ``payload`` in its warm environment; the outcome."""
        if not fn.handler:
            return {"status": "failed", "error": "the function has no Handler"}
        env = self.environment(fn, request_id)
        environment, cold = self._environment_for(fn, env)
        timeout = float(fn.timeout or 3) + (INIT_ALLOWANCE_S if cold else 0.0)
        log = Path(self._scratch.name) / f"{request_id}.log"
        request = {
            "event": payload,
            "log": str(log),
            "env": {k: env[k] for k in _PER_INVOCATION},
        }
        with environment.busy:
            answer, failure = self._exchange(environment, request, timeout)
            environment.invocations += 1
            environment.last_used = time.monotonic()
        logs = ""
        with contextlib.suppress(OSError):
            logs = log.read_text("utf-8", "replace")
            log.unlink()
        self._append_function_log(fn.function_name, request_id, logs)
        outcome: dict[str, Any] = {"log_tail": logs[-_LOG_TAIL_CHARS:], "cold_start": cold}
        if failure is not None:
            with self._lock:
                if self._environments.get(fn.function_arn) is environment:
                    del self._environments[fn.function_arn]
            environment.end()
            if failure == "timeout":
                init = f" (+{INIT_ALLOWANCE_S:.0f} s init)" if cold else ""
                failure = f"Task timed out after {fn.timeout} seconds{init}"
            outcome.update(status="failed", error=failure)
            return outcome
        result = answer["result"]
        if answer.get("ok"):
            outcome.update(status="succeeded", result=result)
        else:
            message = result.get("errorMessage") if isinstance(result, dict) else None
            kind = result.get("errorType") if isinstance(result, dict) else None
            outcome.update(
                status="failed",
                error=f"{kind}: {message}" if kind else (message or "the handler failed"),
                result=result,
            )
        return outcome

    @staticmethod
    def _exchange(
        environment: _Environment, request: dict[str, Any], timeout: float
    ) -> tuple[dict[str, Any], str | None]:
        """Send one request, wait for its answer: ``(answer, None)`` or ``({}, why)``."""
        proc = environment.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write((json.dumps(request, default=str) + "\n").encode())
            proc.stdin.flush()
        except OSError:
            return {}, f"Runtime exited with error: exit status {proc.poll()}"
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return {}, "timeout"
        line = proc.stdout.readline()
        if not line:
            code = proc.wait(5)
            return {}, f"Runtime exited with error: exit status {code}"
        return json.loads(line), None

    def _append_function_log(self, function: str, request_id: str, text: str) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / "lambda" / f"{function}.log"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as handle:
                handle.write(f"START RequestId: {request_id}\n{text}END RequestId: {request_id}\n")
        except OSError:
            logger.warning("could not write %s", path)
