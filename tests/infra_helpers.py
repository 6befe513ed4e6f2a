"""Shared helpers of the infra tests: run the Pulumi program under recording mocks once
per configuration, and read what it recorded."""

from __future__ import annotations

import copy
import functools
import json
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra.preview import ProgramRun, RecordedResource, run_program

REPO_ROOT = Path(__file__).resolve().parents[1]
BUILD_DIR = Path(tempfile.mkdtemp(prefix="mlops-infra-tests-"))
PINNED_URL = "s3://pinned-models-bucket/fraud/model.tar.gz"

T_BUCKET = "aws:s3/bucket:Bucket"
T_ROLE = "aws:iam/role:Role"
T_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
T_FUNCTION = "aws:lambda/function:Function"
T_RULE = "aws:cloudwatch/eventRule:EventRule"
T_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
T_PERMISSION = "aws:lambda/permission:Permission"
T_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
T_QUEUE = "aws:sqs/queue:Queue"
T_ENDPOINT = "aws:sagemaker/endpoint:Endpoint"
T_ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
T_MODEL = "aws:sagemaker/model:Model"


@functools.cache
def _run(stack: str, overrides: tuple[tuple[str, str], ...]) -> ProgramRun:
    # One build directory per run: jobs/ may change between runs (others edit it).
    build_dir = Path(tempfile.mkdtemp(prefix=f"{stack}-", dir=BUILD_DIR))
    return run_program(stack, REPO_ROOT, overrides=dict(overrides), build_dir=build_dir)


def program(stack: str, **overrides: str) -> ProgramRun:
    """The program for ``Pulumi.<stack>.yaml`` with ``mlops:<key>=value`` overrides,
    evaluated once per distinct configuration in the test session."""
    return _run(stack, tuple(sorted((f"mlops:{k}", v) for k, v in overrides.items())))


def pinned(stack: str = "prod") -> ProgramRun:
    return program(stack, pinnedModelDataUrl=PINNED_URL)


def one(run: ProgramRun, resource_type: str, name: str | None = None) -> RecordedResource:
    """The single resource of a type (or the one with that logical name)."""
    if name is not None:
        return run.get(resource_type, name)
    found = run.of_type(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {[r.urn for r in found]}"
    return found[0]


def by_input(run: ProgramRun, resource_type: str, prop: str, value: Any) -> list[RecordedResource]:
    return [r for r in run.of_type(resource_type) if r.inputs.get(prop) == value]


def document(resource: RecordedResource, prop: str = "policy") -> dict[str, Any]:
    raw = resource.inputs[prop]
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def statement(doc: dict[str, Any], sid: str) -> dict[str, Any]:
    for s in statements(doc):
        if s.get("Sid") == sid:
            return s
    raise AssertionError(f"no statement {sid!r}; have {[s.get('Sid') for s in statements(doc)]}")


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def actions(statements_: Iterable[dict[str, Any]]) -> set[str]:
    return {a for s in statements_ for a in as_list(s.get("Action"))}


def role_documents(run: ProgramRun, role_name: str) -> list[dict[str, Any]]:
    """Every inline policy document attached to the role with this physical name."""
    return [document(p) for p in by_input(run, T_ROLE_POLICY, "role", role_name)]


def role_statements(run: ProgramRun, role_name: str) -> list[dict[str, Any]]:
    return [s for doc in role_documents(run, role_name) for s in statements(doc)]


def mutated(props: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    """A deep copy of ``props`` with ``props[path...] = value`` (or the key deleted)."""
    result = copy.deepcopy(dict(props))
    target = result
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return result
