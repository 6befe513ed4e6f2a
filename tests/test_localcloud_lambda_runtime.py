"""The Lambda runtime stand-in's warm execution environments (mlops.localcloud.invoke)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from localcloud_helpers import alive

from mlops.localcloud.invoke import LambdaRuntime

REPO_ROOT = Path(__file__).resolve().parents[1]

HANDLER_PY = textwrap.dedent(
    """
    import os, sys, time
    print("init of", os.environ["AWS_LAMBDA_FUNCTION_NAME"])
    CALLS = []

    def handler(event, context):
        CALLS.append(event)
        print("handling", event.get("n"), "request", context.aws_request_id)
        if event.get("sleep"):
            time.sleep(event["sleep"])
        if event.get("exit") is not None:
            sys.stdout.flush()
            os._exit(event["exit"])
        if event.get("fail"):
            raise ValueError("failed on purpose")
        return {"pid": os.getpid(), "calls": len(CALLS), "colour": os.environ.get("COLOUR")}
    """
)


def _fn(name: str = "fn", handler: str = "handler_mod.handler", **extra: Any) -> Any:
    return SimpleNamespace(
        function_name=name,
        function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=handler,
        timeout=extra.pop("timeout", 3),
        memory_size=128,
        region="us-east-1",
        environment_vars=extra.pop("env", {"COLOUR": "blue"}),
        code_sha_256=extra.pop("sha", "abc"),
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Any:
    code = tmp_path / "code"
    code.mkdir()
    (code / "handler_mod.py").write_text(HANDLER_PY)
    (code / "broken_mod.py").write_text("import no_such_module_here\n")
    rt = LambdaRuntime(
        endpoint_url="http://127.0.0.1:1",
        python_path=[str(code), str(REPO_ROOT)],
        state_dir=tmp_path / "state",
    )
    yield rt
    rt.kill()


def test_second_invocation_reuses_the_warm_environment(runtime: LambdaRuntime) -> None:
    fn = _fn()
    first = runtime.invoke(fn, {"n": 1}, "req-1")
    second = runtime.invoke(fn, {"n": 2}, "req-2")

    assert first["status"] == second["status"] == "succeeded", (first, second)
    assert first["cold_start"] is True and second["cold_start"] is False
    assert first["result"]["pid"] == second["result"]["pid"]
    assert second["result"]["calls"] == 2  # module state survived, as in a warm Lambda
    # each invocation's log holds its own output; init logs belong to the first
    assert "init of fn" in first["log_tail"] and "init of fn" not in second["log_tail"]
    assert "handling 1 request req-1" in first["log_tail"]
    assert "handling 2" in second["log_tail"] and "handling 1" not in second["log_tail"]
    log = (runtime.state_dir / "lambda" / "fn.log").read_text()  # type: ignore[operator]
    assert log.index("START RequestId: req-1") < log.index("handling 2")
    assert runtime.warm() == {fn.function_arn: 2}


def test_new_configuration_or_code_starts_a_fresh_environment(runtime: LambdaRuntime) -> None:
    first = runtime.invoke(_fn(), {}, "r1")
    recoloured = runtime.invoke(_fn(env={"COLOUR": "red"}), {}, "r2")
    redeployed = runtime.invoke(_fn(env={"COLOUR": "red"}, sha="def"), {}, "r3")

    assert recoloured["cold_start"] and redeployed["cold_start"]
    assert recoloured["result"] == {
        "pid": recoloured["result"]["pid"],
        "calls": 1,
        "colour": "red",
    }
    pids = {o["result"]["pid"] for o in (first, recoloured, redeployed)}
    assert len(pids) == 3
    assert not alive(first["result"]["pid"]) and not alive(recoloured["result"]["pid"])


def test_timeout_ends_the_environment_and_the_next_call_is_cold(runtime: LambdaRuntime) -> None:
    fn = _fn(timeout=1)
    warm = runtime.invoke(fn, {}, "r1")
    timed_out = runtime.invoke(fn, {"sleep": 30}, "r2")
    after = runtime.invoke(fn, {}, "r3")

    assert timed_out["status"] == "failed"
    assert timed_out["error"] == "Task timed out after 1 seconds"
    assert not alive(warm["result"]["pid"])
    assert after["status"] == "succeeded" and after["cold_start"] is True
    assert after["result"]["calls"] == 1


def test_crashed_runtime_is_reported_and_replaced(runtime: LambdaRuntime) -> None:
    fn = _fn()
    crashed = runtime.invoke(fn, {"exit": 3}, "r1")
    after = runtime.invoke(fn, {"n": 2}, "r2")

    assert crashed["status"] == "failed"
    assert crashed["error"] == "Runtime exited with error: exit status 3"
    assert after["status"] == "succeeded" and after["cold_start"] is True


def test_handler_errors_and_import_errors_are_lambda_error_documents(
    runtime: LambdaRuntime,
) -> None:
    failed = runtime.invoke(_fn(), {"fail": True}, "r1")
    assert failed["status"] == "failed"
    assert failed["error"] == "ValueError: failed on purpose"
    assert failed["result"]["errorType"] == "ValueError"
    assert "Traceback" in failed["log_tail"]
    assert runtime.invoke(_fn(), {}, "r2")["cold_start"] is False  # the error kept it warm

    broken = _fn("broken", handler="broken_mod.handler")
    outcomes = [runtime.invoke(broken, {}, f"b{i}") for i in range(2)]
    for outcome in outcomes:
        assert outcome["status"] == "failed"
        assert outcome["error"] == "ModuleNotFoundError: No module named 'no_such_module_here'"
    missing = runtime.invoke(_fn("missing", handler="handler_mod.nope"), {}, "m1")
    assert missing["error"] == "AttributeError: Handler 'nope' missing on module 'handler_mod'"


def test_kill_ends_every_environment(runtime: LambdaRuntime) -> None:
    pids = [runtime.invoke(_fn(f"f{i}"), {}, f"r{i}")["result"]["pid"] for i in range(2)]
    assert all(alive(pid) for pid in pids)
    runtime.kill()
    assert not any(alive(pid) for pid in pids)
    assert runtime.warm() == {}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_environments_die_with_a_killed_local_cloud(tmp_path: Path) -> None:
    (tmp_path / "handler_mod.py").write_text(HANDLER_PY)
    parent = textwrap.dedent(
        f"""
        import json, os, sys
        from types import SimpleNamespace
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from mlops.localcloud.invoke import LambdaRuntime
        rt = LambdaRuntime(endpoint_url="http://127.0.0.1:1",
                           python_path=[{str(tmp_path)!r}, {str(REPO_ROOT)!r}])
        fn = SimpleNamespace(function_name="fn", function_arn="arn:fn",
                             handler="handler_mod.handler", timeout=3, memory_size=128,
                             region="us-east-1", environment_vars={{}}, code_sha_256="x")
        import threading, time
        threading.Thread(target=rt.invoke, args=(fn, {{"sleep": 120}}, "r1"), daemon=True).start()
        while not rt._environments:
            time.sleep(0.01)
        time.sleep(1.0)  # the handler is sleeping now: stdin stays open until we exit
        print(json.dumps({{"pid": rt._environments["arn:fn"].proc.pid}}), flush=True)
        os._exit(0)  # as SIGKILL would: no cleanup runs
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", parent], capture_output=True, text=True, timeout=60, check=True
    )
    pid = json.loads(out.stdout)["pid"]
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), f"the execution environment {pid} outlived its local cloud"
