"""The child half of the Lambda runtime stand-in: one execution environment.

``python -m mlops.localcloud.lambda_worker <module.function>`` is one warm Lambda
execution environment: it imports the handler once (Lambda's init phase) and then
runs one invocation per request line on stdin, as Lambda reuses a warm environment.
A request is ``{"event", "request_id", "log", "env"}``: while the handler runs, file
descriptors 1 and 2 point at the ``log`` file, so whatever it prints lands there and
never mixes with the answer, which is one JSON line on the original stdout:
``{"ok": true, "result": ...}`` or ``{"ok": false, "result": <Lambda's error document
{"errorMessage", "errorType", "stackTrace"}>}``. A handler that cannot be imported
answers every request with that error (Lambda's ``Runtime.ImportModuleError``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any


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


def error_document(exc: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_exception(exc),
    }


class _Environment:
    """The handler, imported on the first invocation (so its init logs are that one's)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.handler: Callable[[Any, Any], Any] | None = None
        self.init_error: dict[str, Any] | None = None

    def invoke(self, request: dict[str, Any]) -> dict[str, Any]:
        os.environ.update(request.get("env") or {})
        if self.handler is None and self.init_error is None:
            try:
                self.handler = load_handler(self.spec)
            except Exception as exc:  # answered on each invocation, as Lambda does
                traceback.print_exc()
                self.init_error = error_document(exc)
        if self.handler is None:
            print(f"[ERROR] init failed: {self.init_error}", file=sys.stderr)
            return {"ok": False, "result": self.init_error}
        try:
            return {"ok": True, "result": self.handler(request.get("event"), LambdaContext())}
        except Exception as exc:
            traceback.print_exc()
            return {"ok": False, "result": error_document(exc)}


def serve(spec: str, requests: Any, answers: Any) -> None:
    """Answer each request line until stdin closes."""
    environment = _Environment(spec)
    between = os.open(os.devnull, os.O_WRONLY)  # where output goes between invocations
    for line in requests:
        request = json.loads(line)
        with open(request["log"], "ab", buffering=0) as log:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                answer = environment.invoke(request)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(between, 1)
                os.dup2(between, 2)
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m mlops.localcloud.lambda_worker <module.function>", file=sys.stderr)
        return 2
    # the answers keep the original stdout; fd 1 itself is pointed at each log
    answers = os.fdopen(os.dup(1), "w")
    serve(args[0], sys.stdin, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
