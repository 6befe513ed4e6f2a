"""Where the operator's commands go: the local cloud or an AWS account.

A deployed stack is described by its outputs (bucket names, function names, the
Lambda environment...). Locally they come from the deploy state `mlops up --local`
wrote; for AWS from `pulumi stack output --json`. The control-plane commands then
call the same functions the Lambdas run, with the deployed Lambda environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.aws import client as aws_client
from mlops import localcloud
from mlops.deploy import stack_outputs, state_path
from mlops.errors import MlopsError
from mlops.localcloud.state import FAKE_KEYS

DEFAULT_STATE_DIR = Path(".mlops")


class TargetError(MlopsError, RuntimeError):
    """The stack can't be reached; the message says what to run."""


@dataclass
class Target:
    stack: str
    outputs: dict[str, Any]
    endpoint_url: str | None  # None: real AWS
    region: str

    @property
    def is_local(self) -> bool:
        return self.endpoint_url is not None

    def environ(self) -> dict[str, str]:
        """The deployed Lambdas' environment, plus what reaches the local cloud."""
        env = {k: str(v) for k, v in (self.outputs.get("lambdaEnvironment") or {}).items()}
        env["AWS_DEFAULT_REGION"] = self.region
        env["AWS_REGION"] = self.region
        if self.endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.endpoint_url
        return env

    def client(self, service: str) -> Any:
        if self.endpoint_url:
            return aws_client(service, self.region, self.endpoint_url, credentials=FAKE_KEYS)
        return aws_client(service, self.region)

    def output(self, name: str) -> Any:
        if name not in self.outputs:
            raise TargetError(f"stack {self.stack!r} has no output {name!r}; redeploy it")
        return self.outputs[name]


def _pulumi_outputs(stack: str) -> dict[str, Any]:
    pulumi_cli = shutil.which("pulumi")
    if pulumi_cli is None:
        raise TargetError(
            f"stack {stack!r} is not deployed locally and the Pulumi CLI is not installed: "
            "run `mlops local start` and `mlops up --local`, or install Pulumi and `pulumi up`"
        )
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [pulumi_cli, "stack", "output", "--json", "--show-secrets", "-s", stack],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise TargetError(f"`pulumi stack output -s {stack}` failed: {result.stderr.strip()}")
    outputs: dict[str, Any] = json.loads(result.stdout)
    return outputs


def connect(stack: str, state_dir: Path = DEFAULT_STATE_DIR) -> Target:
    """The target for `stack`: its local deploy if there is one, else AWS via Pulumi."""
    if state_path(state_dir, stack).exists():
        info = localcloud.status(state_dir)
        if info is None:
            raise TargetError(
                f"stack {stack!r} was deployed to a local cloud that is not running: "
                "run `mlops local start` then `mlops up --local` (the local cloud keeps "
                "its resources in memory)"
            )
        outputs = stack_outputs(state_dir, stack)
        if not outputs:
            raise TargetError(f"the local deploy of {stack!r} did not finish: rerun `mlops up`")
        return Target(stack, outputs, info.endpoint_url, str(outputs.get("region", "us-east-1")))
    outputs = _pulumi_outputs(stack)
    region = str(outputs.get("region") or os.environ.get("AWS_REGION") or "us-east-1")
    return Target(stack, outputs, None, region)


def from_outputs(stack: str, outputs: Mapping[str, Any], endpoint_url: str | None) -> Target:
    return Target(stack, dict(outputs), endpoint_url, str(outputs.get("region", "us-east-1")))
