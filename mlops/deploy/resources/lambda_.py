"""Lambda: the control-plane functions (zipped code) and their invoke permissions."""

from __future__ import annotations

import contextlib
import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from mlops.deploy.mocks import Ctx, deletes, handles
from mlops.deploy.shapes import zip_archive


@handles("aws:lambda/function:Function")
def _function(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    lam = ctx.client("lambda")
    name = inputs["name"]
    code = zip_archive(inputs["code"])
    config: dict[str, Any] = {
        "Role": inputs["role"],
        "Handler": inputs["handler"],
        "Runtime": inputs.get("runtime", "python3.11"),
        "Timeout": int(inputs.get("timeout", 3)),
        "MemorySize": int(inputs.get("memorySize", 128)),
        "Environment": {"Variables": (inputs.get("environment") or {}).get("variables", {})},
    }
    if inputs.get("layers"):
        config["Layers"] = list(inputs["layers"])
    if inputs.get("deadLetterConfig"):
        config["DeadLetterConfig"] = {"TargetArn": inputs["deadLetterConfig"]["targetArn"]}
    if inputs.get("tracingConfig"):
        config["TracingConfig"] = {"Mode": inputs["tracingConfig"]["mode"]}
    if inputs.get("kmsKeyArn"):
        config["KMSKeyArn"] = inputs["kmsKeyArn"]
    try:
        lam.get_function(FunctionName=name)
        lam.update_function_code(FunctionName=name, ZipFile=code)
        lam.update_function_configuration(FunctionName=name, **config)
    except lam.exceptions.ResourceNotFoundException:
        lam.create_function(
            FunctionName=name, Code={"ZipFile": code}, Tags=inputs.get("tags") or {}, **config
        )
    if inputs.get("reservedConcurrentExecutions") not in (None, -1):
        lam.put_function_concurrency(
            FunctionName=name,
            ReservedConcurrentExecutions=int(inputs["reservedConcurrentExecutions"]),
        )
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    return name, {
        "arn": arn,
        "invokeArn": (
            f"arn:aws:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        ),
        "qualifiedArn": f"{arn}:$LATEST",
        "version": "$LATEST",
    }


@deletes("aws:lambda/function:Function")
def _function_delete(ctx: Ctx, physical_id: str, outputs: dict[str, Any]) -> None:
    ctx.client("lambda").delete_function(FunctionName=physical_id)


@handles("aws:lambda/permission:Permission")
def _permission(ctx: Ctx, inputs: dict[str, Any], prev: dict[str, Any] | None) -> tuple[str, dict]:
    lam = ctx.client("lambda")
    statement = (
        inputs.get("statementId")
        or hashlib.sha1(  # noqa: S324 - a name, not security
            json.dumps(inputs, sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
    )
    function = inputs["function"]
    with contextlib.suppress(ClientError):  # replace, not duplicate, on a re-run
        lam.remove_permission(FunctionName=function, StatementId=statement)
    args: dict[str, Any] = {
        "FunctionName": function,
        "StatementId": statement,
        "Action": inputs["action"],
        "Principal": inputs["principal"],
    }
    if inputs.get("sourceArn"):
        args["SourceArn"] = inputs["sourceArn"]
    lam.add_permission(**args)
    return f"{function}/{statement}", {}
