"""The hooks into moto that make its stored resources act (all STAND-INS, narrowly).

Installed by :class:`mlops.localcloud.server.LocalCloud` while it runs, removed
when it stops (moto's classes are left as they were). Each hook below is
labelled with the AWS behaviour it stands in for and what does the work.

- SageMaker ``CreateTrainingJob``: job set InProgress and run by the job runner
  (moto: Completed at once, nothing runs). Its ``Environment`` is kept (moto
  drops it) and its ``MetricDefinitions`` too (moto replaces them with a sample).
- SageMaker ``StopTrainingJob``: added (moto lacks it); stops the job's process.
- SageMaker ``UpdateEndpoint``: added (moto: 500 NotImplemented); endpoint host,
  through :mod:`mlops.localcloud.update_endpoint`.
- SageMaker ``DescribeEndpoint``: ``DataCaptureConfig`` in its summary shape
  (moto echoes the config's, which lacks ``CaptureStatus``/``CurrentSamplingPercentage``).
- SageMaker ``DescribeModel`` / ``DescribeEndpointConfig`` / ``DescribeEndpoint``: no
  empty structures (moto: ``VpcConfig: {}``, ``Containers: []``, ``DataCaptureConfig: {}``,
  which sagemaker-core's and the v3 SDK's typed shapes refuse).
- SageMaker ``UpdateEndpointWeightsAndCapacities``: values left out keep theirs (moto:
  None), weights summing to 0 are refused; invocations route by the live weights.
- SageMaker ``DeleteEndpoint``: the endpoint host forgets the endpoint.
- SageMaker ``CreateEndpoint``: a "SageMaker Endpoint State Change" event (moto:
  none); the endpoint host sends one too when an update ends, done or rolled back.
- SageMaker ``UpdateModelPackage``: merges ``CustomerMetadataProperties`` and keeps
  the approval status/description the request leaves out (moto replaces and
  clears them); ``CreateModelPackage``: a versioned package is
  ``PendingManualApproval`` by default (moto: none). "SageMaker Model Package State
  Change" events on creation and on an approval status change (moto: none). In
  :mod:`mlops.localcloud.model_packages`.
- sagemaker-runtime ``InvokeEndpoint``: real predictions (moto: ``b'body'``).
- EventBridge rule targets: Lambda targets go to the event router (moto: 500
  for PutEvents; S3 events silently dropped); disabled rules and schedule-only
  rules no longer receive pattern events.
- S3 -> EventBridge: the event in AWS's shape (``reason`` "PutObject", ISO time,
  ``etag``), on the default bus only (moto: ``reason`` "ObjectCreated", all buses).
- S3 -> Lambda notifications: through the event router (moto needs Docker).
- CloudWatch ``SetAlarmState``: a "CloudWatch Alarm State Change" event when the
  state changes (moto: none).
- Lambda ``DeadLetterConfig``: stored and returned (moto drops it); the router
  sends failed events there.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlops.localcloud.server import LocalCloud

logger = logging.getLogger(__name__)

_MISSING = object()


class Patcher:
    """Set attributes on classes/modules and put the originals back on :meth:`undo`."""

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, name: str, value: Any) -> Any:
        """Replace ``owner.name``; returns the original (None when there was none)."""
        original = owner.__dict__.get(name, _MISSING) if hasattr(owner, "__dict__") else _MISSING
        if original is _MISSING:
            original = getattr(owner, name, _MISSING)
            self._undo.append((owner, name, _MISSING))
        else:
            self._undo.append((owner, name, original))
        setattr(owner, name, value)
        return None if original is _MISSING else original

    def undo(self) -> None:
        while self._undo:
            owner, name, original = self._undo.pop()
            if original is _MISSING:
                with contextlib.suppress(AttributeError):
                    delattr(owner, name)
            else:
                setattr(owner, name, original)


def install(cloud: LocalCloud) -> Patcher:
    """Hook moto so that ``cloud``'s runner, router and endpoint host do the work."""
    patcher = Patcher()
    _patch_sagemaker(patcher, cloud)
    _patch_runtime(patcher, cloud)
    _patch_events(patcher, cloud)
    _patch_s3(patcher, cloud)
    _patch_cloudwatch(patcher, cloud)
    _patch_lambda(patcher)
    _patch_policy_conditions(patcher)
    from mlops.localcloud import honesty, processing, transform, tuning_api

    honesty.install(patcher)
    transform.install(patcher, lambda: cloud.transforms)
    processing.install(patcher, lambda: cloud.processing)
    tuning_api.install(patcher, lambda: cloud.tuner)
    return patcher


# ----------------------------------------------------------------------- IAM conditions


def _patch_policy_conditions(patcher: Patcher) -> None:
    """STAND-IN for a moto gap: moto counts a Condition whose context key the request
    does not carry as satisfied, so a Deny on ``aws:SecureTransport: false`` refuses every
    request to a TLS-only bucket. In IAM a missing key makes the condition false (bar
    ``...IfExists`` and ``Null``), so the statement does not apply: here it is neutral,
    as for a request that came over TLS 1.2 to AWS's HTTPS endpoints."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    original = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(
        self: Any,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> Any:
        known = incoming_condition_values or {}
        for operator, values in (self._statement.get("Condition") or {}).items():
            if operator.endswith("IfExists") or operator == "Null":
                continue
            if any(key not in known for key in values):
                return PermissionResult.NEUTRAL
        return original(self, action, resource, principal, incoming_condition_values)

    patcher.set(IAMPolicyStatement, "is_action_permitted", is_action_permitted)


# ----------------------------------------------------------------------- SageMaker


def _pruned(value: Any) -> Any:
    """``value`` without empty structures: SageMaker omits a field it has no value for
    (moto answers ``VpcConfig: {}``, ``Containers: []``, ``DataCaptureConfig: {}``, which
    the SDKs' typed shapes refuse)."""
    if isinstance(value, dict):
        kept = {k: _pruned(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in ({}, [], None)}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _patch_variant_weights(patcher: Patcher, backend_class: Any) -> None:
    """STAND-IN fixes to moto's ``UpdateEndpointWeightsAndCapacities``: a value the request
    leaves out keeps its current one (moto sets it to None), and weights that would sum to
    0 are refused (nothing would take traffic); the endpoint host routes by the result."""
    from moto.sagemaker.exceptions import ValidationError

    original = backend_class.update_endpoint_weights_and_capacities

    def update(self: Any, endpoint_name: str, desired_weights_and_capacities: Any) -> Any:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return original(self, endpoint_name, desired_weights_and_capacities)
        config = self.endpoint_configs.get(endpoint.endpoint_config_name)
        initial = {
            v["VariantName"]: float(v.get("InitialVariantWeight", 1.0))
            for v in (config.production_variants if config else [])
        }
        before = {v["VariantName"]: dict(v) for v in endpoint.production_variants}
        weights = {
            name: float(v.get("CurrentWeight", initial.get(name, 1.0)))
            for name, v in before.items()
        }
        for wanted in desired_weights_and_capacities:
            if wanted.get("DesiredWeight") is not None and wanted.get("VariantName") in weights:
                weights[wanted["VariantName"]] = float(wanted["DesiredWeight"])
        if weights and sum(weights.values()) <= 0:
            raise ValidationError(
                message="The variants' weights would sum to 0: at least one variant must "
                "have a positive DesiredWeight to take traffic."
            )
        arn = original(self, endpoint_name, desired_weights_and_capacities)
        for variant in endpoint.production_variants:
            old = before.get(variant["VariantName"], {})
            variant["CurrentWeight"] = variant["DesiredWeight"] = weights.get(
                variant["VariantName"], 1.0
            )
            for key in ("DesiredInstanceCount", "CurrentInstanceCount"):
                if variant.get(key) is None and old.get(key) is not None:
                    variant[key] = old[key]
        return arn

    patcher.set(backend_class, "update_endpoint_weights_and_capacities", update)


def _patch_describe_shapes(patcher: Patcher, response_class: Any) -> None:
    """STAND-IN: DescribeModel, DescribeEndpointConfig and DescribeEndpoint in the shapes
    SageMaker answers (no empty structures), so sagemaker-core's ``Model.get`` /
    ``EndpointConfig.get`` / ``Endpoint.get`` and the SDKs' deploy paths parse them."""
    from moto.core.responses import ActionResult

    for name in ("describe_model", "describe_endpoint_config", "describe_endpoint"):
        original = getattr(response_class, name)

        def described(self: Any, _original: Callable[..., Any] = original) -> Any:
            result = _original(self)
            if isinstance(result, ActionResult) and isinstance(result.result, dict):
                return ActionResult(_pruned(result.result))
            return result

        patcher.set(response_class, name, described)


def _patch_sagemaker(patcher: Patcher, cloud: LocalCloud) -> None:
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    from mlops.localcloud import model_packages, update_endpoint

    create_job = SageMakerModelBackend.create_training_job

    # STAND-IN: SageMaker training. moto marks the job Completed; we queue it to run.
    def create_training_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        spec = kwargs.get("algorithm_specification")
        definitions = copy.deepcopy((spec or {}).get("MetricDefinitions"))
        job = create_job(self, *args, **kwargs)
        # moto overwrites MetricDefinitions with a sample; keep the caller's
        if definitions:
            job.algorithm_specification["MetricDefinitions"] = definitions
        else:
            job.algorithm_specification.pop("MetricDefinitions", None)
        cloud.runner.submit(job, self.account_id, self.region_name)
        return job

    patcher.set(SageMakerModelBackend, "create_training_job", create_training_job)

    create_job_response = SageMakerResponse.create_training_job

    # STAND-IN: moto drops CreateTrainingJob's Environment; keep it for the job's process.
    def create_training_job_response(self: Any) -> Any:
        environment = self._get_param("Environment")
        result = create_job_response(self)
        job = self.sagemaker_backend.training_jobs.get(self._get_param("TrainingJobName"))
        if job is not None and environment:
            job.environment = dict(environment)
        return result

    patcher.set(SageMakerResponse, "create_training_job", create_training_job_response)

    # STAND-IN: StopTrainingJob (moto lacks it).
    def stop_training_job(self: Any) -> Any:
        name = self._get_param("TrainingJobName")
        backend = self.sagemaker_backend
        job = backend.training_jobs.get(name)
        if job is None:
            arn = FakeTrainingJob.arn_formatter(name, backend.account_id, backend.region_name)
            raise ValidationError(message=f"Could not find training job '{arn}'.")
        cloud.runner.stop(job, backend.account_id, backend.region_name)
        return EmptyResult()

    patcher.set(SageMakerResponse, "stop_training_job", stop_training_job)

    # STAND-IN: UpdateEndpoint (moto: 500 NotImplemented), rolled out by the endpoint host.
    update_endpoint.install(patcher.set, lambda request: cloud.endpoints.update_endpoint(request))

    describe_endpoint = SageMakerModelBackend.describe_endpoint

    # STAND-IN: DescribeEndpoint's DataCaptureConfig is a summary in AWS.
    def describe_endpoint_patched(self: Any, endpoint_name: str) -> dict[str, Any]:
        response = dict(describe_endpoint(self, endpoint_name))
        capture = response.get("DataCaptureConfig")
        if capture and "CaptureStatus" not in capture:
            enabled = bool(capture.get("EnableCapture", True))
            response["DataCaptureConfig"] = {
                "EnableCapture": enabled,
                "CaptureStatus": "Started" if enabled else "Stopped",
                "CurrentSamplingPercentage": capture.get("InitialSamplingPercentage", 100),
                "DestinationS3Uri": capture.get("DestinationS3Uri", ""),
                "KmsKeyId": capture.get("KmsKeyId", ""),
            }
        elif not capture:
            response.pop("DataCaptureConfig", None)
        return response

    patcher.set(SageMakerModelBackend, "describe_endpoint", describe_endpoint_patched)

    from mlops.localcloud import shadow

    shadow.install(patcher)  # before the shapes: its fields are pruned like the rest
    _patch_describe_shapes(patcher, SageMakerResponse)
    _patch_variant_weights(patcher, SageMakerModelBackend)

    delete_endpoint = SageMakerModelBackend.delete_endpoint

    def delete_endpoint_patched(self: Any, endpoint_name: str) -> None:
        delete_endpoint(self, endpoint_name)
        cloud.endpoints.forget(self.account_id, self.region_name, endpoint_name)

    patcher.set(SageMakerModelBackend, "delete_endpoint", delete_endpoint_patched)

    create_endpoint = SageMakerModelBackend.create_endpoint

    # STAND-IN: "SageMaker Endpoint State Change" for a new endpoint (InService at once in moto).
    def create_endpoint_patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        endpoint = create_endpoint(self, *args, **kwargs)
        cloud.endpoints.created(self.account_id, self.region_name, endpoint)
        return endpoint

    patcher.set(SageMakerModelBackend, "create_endpoint", create_endpoint_patched)

    # STAND-IN: UpdateModelPackage merges like SageMaker; model package state change events.
    model_packages.install(patcher.set, cloud.router.publish)


def _patch_runtime(patcher: Patcher, cloud: LocalCloud) -> None:
    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    # Binary request bodies must reach the model as bytes (moto decodes them as UTF-8).
    patcher.set(SageMakerRuntimeResponse, "use_raw_body", True)

    # STAND-IN: SageMaker hosting. moto answers a fixed b'body'.
    def invoke_endpoint(self: Any) -> Any:
        name = self._get_params().get("EndpointName") or self.path.split("/")[2]
        body = self.raw_body if isinstance(self.raw_body, bytes) else str(self.raw_body).encode()
        return cloud.endpoints.invoke(self.current_account, self.region, name, body, self.headers)

    patcher.set(SageMakerRuntimeResponse, "invoke_endpoint", invoke_endpoint)


# ---------------------------------------------------------------------- EventBridge


def _patch_events(patcher: Patcher, cloud: LocalCloud) -> None:
    from moto.events.models import Rule

    original: Callable[..., None] = Rule.send_to_targets

    # STAND-IN: EventBridge -> Lambda (moto raises NotImplementedError for Lambda targets).
    def send_to_targets(self: Any, event: Any, transform_input: bool = True) -> None:
        cloud.router.on_rule_event(self, event, transform_input, original)

    patcher.set(Rule, "send_to_targets", send_to_targets)
    # fire_schedule hands a schedule rule's non-Lambda targets to moto's own code
    patcher.set(Rule, "_localcloud_original_send_to_targets", original)


# ------------------------------------------------------------------------------- S3


def _patch_s3(patcher: Patcher, cloud: LocalCloud) -> None:
    from moto.s3 import notifications

    from mlops.localcloud.events import s3_object_event

    original_eventbridge = notifications._send_event_bridge_message

    # STAND-IN: S3 -> EventBridge notifications in AWS's event shape.
    def send_event_bridge_message(account_id: str, bucket: Any, event_name: str, key: Any) -> None:
        try:
            if "ObjectTagging" in str(getattr(event_name, "value", event_name)):
                # moto tags (and notifies) on every PutObject, even without tags: AWS does not
                return
            event = s3_object_event(account_id, bucket, event_name, key)
            if event is None:  # other event types: moto's own shape
                original_eventbridge(account_id, bucket, event_name, key)
                return
            cloud.router.publish(event, account_id, bucket.region_name)
        except Exception:  # like moto: a notification failure never fails the S3 call
            logger.exception("S3 EventBridge notification for %s failed", bucket.name)

    patcher.set(notifications, "_send_event_bridge_message", send_event_bridge_message)

    # STAND-IN: S3 -> Lambda notifications (moto invokes through Docker).
    def invoke_awslambda(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        from mlops.localcloud.router import Delivery

        cloud.router.enqueue(
            Delivery(
                rule="s3-notification",
                rule_arn="",
                target_id="",
                function_arn=fn_arn,
                payload=event_body,
                source="aws:s3",
                detail_type="S3 notification",
            )
        )

    patcher.set(notifications, "_invoke_awslambda", invoke_awslambda)


# ------------------------------------------------------------------------ CloudWatch


def _patch_cloudwatch(patcher: Patcher, cloud: LocalCloud) -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    from mlops.localcloud.awsutil import iso_z
    from mlops.localcloud.events import alarm_event

    set_alarm_state = CloudWatchBackend.set_alarm_state

    # STAND-IN: "CloudWatch Alarm State Change" events (moto emits none).
    def set_alarm_state_patched(
        self: Any, alarm_name: str, reason: str, reason_data: str, state_value: str
    ) -> None:
        alarm = self.alarms.get(alarm_name)
        previous = (
            {
                "value": alarm.state_value,
                "reason": alarm.state_reason,
                "timestamp": iso_z(alarm.state_updated_timestamp),
            }
            if alarm is not None
            else None
        )
        set_alarm_state(self, alarm_name, reason, reason_data, state_value)
        if alarm is not None and previous is not None and previous["value"] != state_value:
            cloud.router.publish(
                alarm_event(alarm, self.account_id, self.region_name, previous),
                self.account_id,
                self.region_name,
            )

    patcher.set(CloudWatchBackend, "set_alarm_state", set_alarm_state_patched)


# ---------------------------------------------------------------------------- Lambda


def _patch_lambda(patcher: Patcher) -> None:
    from moto.awslambda.models import LambdaFunction

    init = LambdaFunction.__init__
    update = LambdaFunction.update_configuration
    get_configuration = LambdaFunction.get_configuration

    # STAND-IN: Lambda DeadLetterConfig (moto drops it).
    def init_patched(
        self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any
    ) -> None:
        init(self, account_id, spec, *args, **kwargs)
        self._localcloud_dead_letter_arn = (spec.get("DeadLetterConfig") or {}).get("TargetArn")

    def update_patched(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if "DeadLetterConfig" in config_updates:
            dlq = config_updates.get("DeadLetterConfig") or {}
            self._localcloud_dead_letter_arn = dlq.get("TargetArn") or None
        return update(self, config_updates)

    def get_configuration_patched(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        config = get_configuration(self, *args, **kwargs)
        arn = getattr(self, "_localcloud_dead_letter_arn", None)
        if arn:
            config["DeadLetterConfig"] = {"TargetArn": arn}
        return config

    patcher.set(LambdaFunction, "__init__", init_patched)
    patcher.set(LambdaFunction, "update_configuration", update_patched)
    patcher.set(LambdaFunction, "get_configuration", get_configuration_patched)
