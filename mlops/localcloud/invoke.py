"""The Lambda runtime stand-in: run a deployed function's handler once per event.

STAND-IN for the Lambda Python runtime, which moto runs in Docker only. Two
halves of one protocol, both here:

- the parent, :class:`LambdaRuntime` (used by the event router): builds the
  function's environment (its variables, the local cloud's endpoint, fake
  credentials, ``AWS_LAMBDA_*``), runs ``python -m mlops.localcloud.invoke
  <module.function>`` with the event as JSON on stdin, enforces the function's
  timeout and turns the exit into an outcome dict;
- the child, :func:`main`: imports the handler, calls it with a
  :class:`LambdaContext`, and writes its return value as JSON on stdout (exit 0)
  or Lambda's error document ``{"errorMessage", "errorType", "stackTrace"}``
  (exit 1). While the handler runs, file descriptor 1 points at stderr, so
  whatever the handler prints (logs) never mixes with the result.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlops.localcloud.state import DEFAULT_REGION, FAKE_CREDENTIALS

logger = logging.getLogger(__name__)

# Lambda's init phase has its own 10 s budget on top of the function timeout.
INIT_ALLOWANCE_S = 10.0
_LOG_TAIL_CHARS = 4000
_ENV_PREFIXES_DROPPED = ("AWS_", "MLOPS_", "SM_", "_HANDLER", "LAMBDA_")


# ---------------------------------------------------------------------- the parent


class LambdaRuntime:
    """Runs handlers of moto's Lambda functions, one subprocess per invocation.

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
        self._current: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """End the invocation running now, if any (the local cloud shuts down)."""
        proc = self._current
        if proc is not None and proc.poll() is None:
            proc.kill()

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

    def invoke(self, fn: Any, payload: Any, request_id: str) -> dict[str, Any]:
        """Run ``fn``'s handler on ``payload`` in a subprocess; the outcome as a dict."""
        if not fn.handler:
            return {"status": "failed", "error": "the function has no Handler"}
        env = self.environment(fn, request_id)
        timeout = float(fn.timeout or 3) + INIT_ALLOWANCE_S
        cmd = [sys.executable, "-m", "mlops.localcloud.invoke", fn.handler]
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(self.cwd) if self.cwd else None,
        )
        self._current = proc
        try:
            out, err = proc.communicate(json.dumps(payload).encode(), timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            timed_out = True
        finally:
            self._current = None
        logs = err.decode("utf-8", "replace")
        self._append_function_log(fn.function_name, request_id, logs)
        outcome: dict[str, Any] = {"log_tail": logs[-_LOG_TAIL_CHARS:]}
        if timed_out:
            outcome.update(
                status="failed",
                error=f"Task timed out after {fn.timeout} seconds (+{INIT_ALLOWANCE_S:.0f} s init)",
            )
            return outcome
        try:
            result = json.loads(out.decode() or "null")
        except ValueError:
            result = out.decode("utf-8", "replace")
        if proc.returncode == 0:
            outcome.update(status="succeeded", result=result)
        else:
            message = result.get("errorMessage") if isinstance(result, dict) else None
            kind = result.get("errorType") if isinstance(result, dict) else None
            outcome.update(
                status="failed",
                error=f"{kind}: {message}" if kind else (message or f"exit code {proc.returncode}"),
                result=result,
            )
        return outcome

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


# ---------------------------------------------------------------------- the child


class LambdaContext:
    """The attributes of Lambda's context object that handlers and powertools read."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "local-function")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = env.get(
            "_LOCALCLOUD_FUNCTION_ARN",
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}",
        )
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = env.get("_LOCALCLOUD_REQUEST_ID") or str(uuid.uuid4())
        self.log_group_name = env.get(
            "AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}"
        )
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "localcloud")
        self.identity = None
        self.client_context = None
        timeout_s = float(env.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(spec: str) -> Callable[[Any, Any], Any]:
    """``"lambdas.retrain.handler"`` (or ``"lambdas/retrain.handler"``) -> the function."""
    module_name, _, function_name = spec.replace("/", ".").rpartition(".")
    if not module_name or not function_name:
        raise ValueError(f"bad handler {spec!r}: expected module.function")
    module = importlib.import_module(module_name)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'")
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m mlops.localcloud.invoke <module.function>", file=sys.stderr)
        return 2
    event = json.loads(sys.stdin.read() or "null")
    result_fd = os.dup(1)
    sys.stdout.flush()
    os.dup2(2, 1)  # prints and logs of the handler go to stderr
    code = 0
    try:
        handler = load_handler(args[0])
        result: Any = handler(event, LambdaContext())
    except Exception as exc:
        code = 1
        result = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_exception(exc),
        }
        traceback.print_exc()
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(result_fd, "w") as out:
        out.write(json.dumps(result, default=str))
    return code


if __name__ == "__main__":
    sys.exit(main())
