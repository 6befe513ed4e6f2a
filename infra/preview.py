"""Evaluate the real Pulumi program offline, under Pulumi's mock runtime.

:func:`run_program` loads ``Pulumi.<stack>.yaml`` as the CLI would, runs
``infra/__main__.py``'s ``main()`` with a recording mock and returns every resource
(type, name, inputs, outputs, parent, dependencies, ignore_changes) plus the stack
outputs; :func:`check_rules` runs the policy-pack rules over them.

The mock runtime is process-global state: :func:`run_program` resets it before each
run, so runs happen one after another (dev, then prod) in one process, never
concurrently in threads. A deploying mock (moto) subclasses :class:`RecordingMocks`
and overrides :meth:`RecordingMocks.create` / :meth:`RecordingMocks.invoke`.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings

from infra import rules
from infra.config import Settings, settings_for_stack
from infra.naming import partition_for

REPO_ROOT = Path(__file__).resolve().parents[1]
MOCK_ACCOUNT_ID = "123456789012"
MOCK_AMI_ID = "ami-0123456789abcdef0"


#: The service-linked roles the program creates, by service (AWS names them).
SERVICE_LINKED_ROLES = {"autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling"}


@dataclass(frozen=True)
class RecordedResource:
    """One resource registered by the program (inputs and outputs in camelCase)."""

    urn: str
    type: str
    name: str
    id: str
    custom: bool
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    parent: str = ""
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ignore_changes: tuple[str, ...] = ()
    protect: bool = False
    delete_before_replace: bool = False

    def to_stack_resource(self) -> rules.StackResource:
        return rules.StackResource(
            type=self.type,
            urn=self.urn,
            props=self.inputs,
            property_dependencies={k: frozenset(v) for k, v in self.property_dependencies.items()},
        )


@dataclass(frozen=True)
class ProgramRun:
    """The result of :func:`run_program`: iterate it for the resources."""

    stack: str
    settings: Settings
    resources: tuple[RecordedResource, ...]
    outputs: Mapping[str, Any]
    seconds: float

    def __iter__(self) -> Iterator[RecordedResource]:
        return iter(self.resources)

    def __len__(self) -> int:
        return len(self.resources)

    @property
    def custom_resources(self) -> list[RecordedResource]:
        return [r for r in self.resources if r.custom]

    def of_type(self, resource_type: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == resource_type]

    def get(self, resource_type: str, name: str) -> RecordedResource:
        """The resource with this type and logical name (KeyError listing the candidates)."""
        for resource in self.resources:
            if resource.type == resource_type and resource.name == name:
                return resource
        names = sorted(r.name for r in self.of_type(resource_type))
        raise KeyError(f"no {resource_type} named {name!r}; have {names}")


def _short_hash(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


_ARN_SERVICES = {
    "appautoscaling": "application-autoscaling",
    "lambda": "lambda",
}


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi mocks that record every resource and return realistic outputs.

    Override :meth:`create` (resource -> ``(id, outputs)``) and :meth:`invoke`
    (provider function -> result) to do real work, e.g. create it in moto.
    """

    def __init__(self, account_id: str = MOCK_ACCOUNT_ID, region: str = "us-east-1") -> None:
        self.account_id = account_id
        self.region = region
        self.partition = partition_for(region)
        self.resources: list[RecordedResource] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    # --- pulumi.runtime.Mocks ------------------------------------------------------------
    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str | None, dict]:
        resource_id, outputs = self.create(args)
        request = getattr(self._local, "request", None)
        urn = getattr(self._local, "urn", "") or f"{args.typ}::{args.name}"
        deps: dict[str, tuple[str, ...]] = {}
        if request is not None:
            for prop, value in request.propertyDependencies.items():
                deps[prop] = tuple(value.urns)
        record = RecordedResource(
            urn=urn,
            type=args.typ,
            name=args.name,
            id=resource_id or "",
            custom=bool(args.custom),
            inputs=dict(args.inputs),
            outputs=outputs,
            parent=request.parent if request is not None else "",
            dependencies=tuple(request.dependencies) if request is not None else (),
            property_dependencies=deps,
            ignore_changes=tuple(request.ignoreChanges) if request is not None else (),
            protect=bool(getattr(request, "protect", False)),
            delete_before_replace=bool(getattr(request, "deleteBeforeReplace", False)),
        )
        with self._lock:
            self.resources.append(record)
        return resource_id, outputs

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        return self.invoke(args.token, dict(args.args)), []

    # --- overridable -----------------------------------------------------------------------
    def invoke(self, token: str, args: Mapping[str, Any]) -> dict[str, Any]:
        if token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account_id,
                "arn": f"arn:{self.partition}:iam::{self.account_id}:user/mock",
                "userId": "AIDAMOCKUSER",
                "id": self.account_id,
            }
        if token == "aws:ssm/getParameter:getParameter":
            name = str(args.get("name"))
            return {
                "id": name,
                "name": name,
                "value": MOCK_AMI_ID,
                "insecureValue": MOCK_AMI_ID,
                "type": "String",
                "version": 1,
                "arn": self.arn("ssm", f"parameter{name}"),
                "withDecryption": True,
            }
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            names = [f"{self.region}{zone}" for zone in "abc"]
            return {"id": self.region, "names": names, "zoneIds": names, "groupNames": []}
        if token == "aws:index/getRegion:getRegion":
            return {"id": self.region, "name": self.region, "region": self.region}
        if token == "aws:index/getPartition:getPartition":
            return {"id": self.partition, "partition": self.partition, "dnsSuffix": "amazonaws.com"}
        return {}

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:{self.partition}:{service}:{region}:{self.account_id}:{resource}"

    def create(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        """Fake ``(id, outputs)``: the inputs plus the ids, names and ARNs AWS would add."""
        inputs = dict(args.inputs)
        if not args.custom:
            return "", {}
        typ, logical = args.typ, args.name
        suffix = _short_hash(typ, logical, length=7)
        name = inputs.get("name") or (
            f"{inputs['namePrefix']}{suffix}" if inputs.get("namePrefix") else f"{logical}-{suffix}"
        )
        module = typ.split(":")[1].split("/")[0]
        out: dict[str, Any] = {**inputs}
        resource_id: str = name

        if typ == rules.BUCKET:
            bucket = inputs.get("bucket") or f"{logical}-{suffix}"
            resource_id = bucket
            out.update(
                bucket=bucket,
                arn=f"arn:{self.partition}:s3:::{bucket}",
                bucketDomainName=f"{bucket}.s3.amazonaws.com",
                bucketRegionalDomainName=f"{bucket}.s3.{self.region}.amazonaws.com",
                region=self.region,
            )
            return resource_id, out
        if typ == rules.OBJECT_V2:
            out.update(etag=_short_hash(str(inputs.get("sourceHash")), length=32), versionId="v1")
            return str(inputs.get("key")), out
        if module == "s3":
            return str(inputs.get("bucket") or name), out
        if typ == rules.KMS_KEY:
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{typ}/{logical}"))
            out.update(keyId=key_id, arn=self.arn("kms", f"key/{key_id}"))
            return key_id, out
        if typ == "aws:kms/alias:Alias":
            out.update(arn=self.arn("kms", str(name)))
            return str(name), out
        if typ == "aws:iam/serviceLinkedRole:ServiceLinkedRole":
            service = str(inputs["awsServiceName"])
            role = SERVICE_LINKED_ROLES[service]
            role += f"_{inputs['customSuffix']}" if inputs.get("customSuffix") else ""
            path = f"/aws-service-role/{service}/"
            arn = self.arn("iam", f"role{path}{role}", regional=False)
            out.update(name=role, path=path, arn=arn)
            return str(out["arn"]), out
        if typ == "aws:autoscaling/group:Group":
            group_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{typ}/{logical}"))
            resource = f"autoScalingGroup:{group_id}:autoScalingGroupName/{name}"
            out.update(name=name, arn=self.arn("autoscaling", resource))
            return str(name), out
        if module == "iam":
            kind = {
                rules.ROLE: "role",
                "aws:iam/instanceProfile:InstanceProfile": "instance-profile",
                rules.POLICY: "policy",
            }.get(typ)
            out["name"] = name
            if kind:
                out.update(arn=self.arn("iam", f"{kind}/{name}", regional=False), uniqueId=suffix)
            if typ == rules.ROLE_POLICY:
                return f"{inputs.get('role')}:{name}", out
            return str(name), out
        if typ == rules.QUEUE:
            url = f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{name}"
            out.update(name=name, url=url, arn=self.arn("sqs", str(name)))
            return url, out
        if typ == rules.TOPIC:
            arn = self.arn("sns", str(name))
            out.update(name=name, arn=arn)
            return arn, out
        if typ == "aws:sns/topicSubscription:TopicSubscription":
            arn = f"{inputs.get('topic')}:{uuid.uuid5(uuid.NAMESPACE_URL, logical)}"
            out.update(arn=arn)
            return arn, out
        if typ == rules.TABLE:
            out.update(name=name, arn=self.arn("dynamodb", f"table/{name}"))
            return str(name), out
        if typ == rules.LOG_GROUP:
            out.update(name=name, arn=self.arn("logs", f"log-group:{name}"))
            return str(name), out
        if typ == "aws:cloudwatch/eventRule:EventRule":
            out.update(name=name, arn=self.arn("events", f"rule/{name}"))
            return str(name), out
        if typ == rules.METRIC_ALARM:
            out.update(name=name, arn=self.arn("cloudwatch", f"alarm:{name}"))
            return str(name), out
        if typ == rules.FUNCTION:
            arn = self.arn("lambda", f"function:{name}")
            out.update(
                name=name,
                arn=arn,
                qualifiedArn=f"{arn}:$LATEST",
                invokeArn=(
                    f"arn:{self.partition}:apigateway:{self.region}:lambda:path/2015-03-31/"
                    f"functions/{arn}/invocations"
                ),
                version="$LATEST",
            )
            return str(name), out
        if typ == rules.SECURITY_GROUP:
            group_id = f"sg-{suffix}{_short_hash(logical, length=10)}"
            out.update(name=name, arn=self.arn("ec2", f"security-group/{group_id}"))
            return group_id, out
        if typ == rules.LAUNCH_TEMPLATE:
            template_id = f"lt-{_short_hash(typ, logical)}"
            out.update(
                name=name,
                arn=self.arn("ec2", f"launch-template/{template_id}"),
                latestVersion=1,
                defaultVersion=1,
            )
            return template_id, out
        if module == "sagemaker":
            kind = {
                "aws:sagemaker/modelPackageGroup:ModelPackageGroup": "model-package-group",
                "aws:sagemaker/model:Model": "model",
                rules.ENDPOINT_CONFIG: "endpoint-config",
                rules.ENDPOINT: "endpoint",
            }.get(typ, module)
            if typ == "aws:sagemaker/modelPackageGroup:ModelPackageGroup":
                name = inputs.get("modelPackageGroupName") or name
            else:
                out["name"] = name
            out["arn"] = self.arn("sagemaker", f"{kind}/{str(name).lower()}")
            return str(name), out
        if module == "appautoscaling":
            out["arn"] = self.arn("application-autoscaling", f"scalable-target/{suffix}")
            return str(inputs.get("resourceId") or name), out
        service = _ARN_SERVICES.get(module, module)
        out.setdefault("arn", self.arn(service, f"{logical}/{name}"))
        return str(name), out


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Hands each registration request (parent, dependencies, ignore_changes...) to the
    :class:`RecordingMocks`, which only sees the inputs otherwise."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.recorder = mocks

    def RegisterResource(self, request: Any) -> Any:
        local = self.recorder._local
        local.request = request
        local.urn = self.make_urn(request.parent, request.type, request.name)
        try:
            return super().RegisterResource(request)
        finally:
            local.request = None
            local.urn = ""


def install_mocks(
    mocks: RecordingMocks, *, project: str, stack: str, config: Mapping[str, str]
) -> None:
    """Point Pulumi's (global) runtime at ``mocks`` with this configuration, forgetting
    the previous run's root stack resource, config and mocks."""
    pulumi_settings.reset_options(project=project, stack=stack)
    pulumi.runtime.set_all_config(dict(config))
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks)
    )


def run_program(
    stack: str,
    repo_root: Path = REPO_ROOT,
    *,
    overrides: Mapping[str, str] | None = None,
    mocks: RecordingMocks | None = None,
    build_dir: Path | None = None,
) -> ProgramRun:
    """Run the program for ``Pulumi.<stack>.yaml`` (plus config ``overrides``) under mocks.

    Raises :class:`infra.config.StackConfigError` for an unknown stack or bad configuration.
    Not thread-safe: Pulumi's mock runtime is global; runs go one after another.
    """
    settings, values = settings_for_stack(stack, repo_root, overrides)
    if mocks is None:
        mocks = RecordingMocks(region=settings.region)
    entry = importlib.import_module("infra.__main__")

    install_mocks(mocks, project=settings.project, stack=stack, config=values)

    outputs: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        result = entry.main(repo_root, build_dir=build_dir)
        return pulumi.Output.from_input(result).apply(outputs.update)

    start = time.perf_counter()
    pulumi.runtime.test(program)()
    seconds = time.perf_counter() - start
    resources = tuple(sorted(mocks.resources, key=lambda r: r.urn))
    return ProgramRun(stack, settings, resources, outputs, seconds)


def check_rules(resources: Sequence[RecordedResource] | ProgramRun) -> list[rules.Violation]:
    """Every policy-pack rule over recorded resources (custom resources only)."""
    return rules.check_stack(r.to_stack_resource() for r in resources if r.custom)
