"""Run one Lambda handler once: ``python -m mlops.localcloud.invoke <module.function>``.

STAND-IN for the Lambda Python runtime, used by the event router. The event
arrives as JSON on stdin; the handler's return value leaves as JSON on stdout
(exit 0), or Lambda's error document ``{"errorMessage", "errorType",
"stackTrace"}`` (exit 1). While the handler runs, file descriptor 1 points at
stderr, so whatever the handler prints (logs) never mixes with the result.
The environment is prepared by the router (the function's variables, the
local cloud's endpoint, fake credentials, ``AWS_LAMBDA_*``).
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
