"""Pulumi mocks that create each declared resource in a moto server through boto3.

The resource modules (`mlops.deploy.resources`) register one handler per resource
type with `handles` (and a deleter with `deletes`); `DeployingMocks` dispatches each
resource the program declares to its handler and records the result in the state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
from botocore.exceptions import ClientError

from infra.preview import RecordingMocks
from lambdas.aws import client as aws_client
from mlops.deploy.errors import DeployError
from mlops.deploy.shapes import whole_numbers
from mlops.deploy.state import DeployState
from mlops.localcloud.state import FAKE_KEYS

ACCOUNT_ID = "123456789012"  # moto's default account

Handler = Callable[["Ctx", dict[str, Any], "dict[str, Any] | None"], tuple[str, dict[str, Any]]]
Deleter = Callable[["Ctx", str, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
DELETERS: dict[str, Deleter] = {}


def handles(typ: str) -> Callable[[Handler], Handler]:
    """Register the function creating or updating resources of type `typ`."""

    def register(fn: Handler) -> Handler:
        HANDLERS[typ] = fn
        return fn

    return register


def deletes(typ: str) -> Callable[[Deleter], Deleter]:
    """Register the function deleting resources of type `typ` (none: just forgotten)."""

    def register(fn: Deleter) -> Deleter:
        DELETERS[typ] = fn
        return fn

    return register


@dataclass
class Ctx:
    """What a handler gets: boto3 clients for the moto server, and ARNs in its account."""

    endpoint_url: str
    region: str

    def client(self, service: str) -> Any:
        return aws_client(service, self.region, self.endpoint_url, credentials=FAKE_KEYS)

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if region else ''}:{ACCOUNT_ID}:{resource}"


def exists(call: Callable[[], Any], *codes: str) -> bool:
    """Does `call` (a describe/head) succeed? False on one of `codes` (any, if none)."""
    try:
        call()
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] in codes or not codes:
            return False
        raise


class DeployingMocks(RecordingMocks):
    """Creates every resource the program declares in the moto server.

    Records like the preview's mocks (so the policy rules can run over a deploy
    too), but each custom resource is created through boto3 first.
    """

    def __init__(self, ctx: Ctx, state: DeployState) -> None:
        super().__init__(account_id=ACCOUNT_ID, region=ctx.region)
        self.ctx = ctx
        self.state = state
        self.created: list[str] = []
        self.failures: list[str] = []

    def create(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        if not args.custom or args.typ.startswith("pulumi:providers:"):
            return super().create(args)
        handler = HANDLERS.get(args.typ)
        key = f"{args.typ}::{args.name}"
        if handler is None:
            message = f"{key}: the local deployer has no mapping for {args.typ}"
            self.failures.append(message)
            raise DeployError(message)
        try:
            inputs = whole_numbers(dict(args.inputs))
            physical_id, outputs = handler(self.ctx, inputs, self.state.get(key))
        except Exception as exc:
            # any handler failure (botocore's ParamValidationError, a dropped
            # connection...) must name the resource and leave a re-runnable state
            message = f"{key}: {exc}"
            self.failures.append(message)
            raise DeployError(message) from exc
        self.state.put(key, args.typ, physical_id, outputs)
        self.created.append(key)
        return physical_id, {**args.inputs, "id": physical_id, **outputs}

    def invoke(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if token == "aws:ssm/getParameter:getParameter":
            # moto serves AWS's public AMI parameters; its answer beats a fixed id
            try:
                value = self.ctx.client("ssm").get_parameter(Name=args["name"])["Parameter"]
            except ClientError:
                return super().invoke(token, args)
            result = super().invoke(token, args)
            result.update(value=value["Value"], insecureValue=value["Value"])
            return result
        return super().invoke(token, args)


def delete_stack(ctx: Ctx, state: DeployState) -> list[str]:
    """Delete what `deploy` created, newest first; returns what could not go."""
    problems = []
    ordered = sorted(state.resources.items(), key=lambda item: item[1]["order"], reverse=True)
    for key, record in ordered:
        deleter = DELETERS.get(record["type"])
        try:
            if deleter is not None:
                deleter(ctx, record["id"], record["outputs"])
            state.drop(key)
        except ClientError as exc:
            problems.append(f"{key}: {exc}")
    if not problems:
        state.outputs = {}
        state.save()
    return problems
