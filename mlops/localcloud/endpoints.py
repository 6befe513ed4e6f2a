"""Endpoint host: serves real predictions for the endpoints deployed in moto.

STAND-IN for SageMaker hosting, which moto lacks: its ``InvokeEndpoint`` answers
a fixed ``b'body'`` (even for a missing endpoint) and it has no ``UpdateEndpoint``.

- ``InvokeEndpoint``: endpoint -> its serving state (endpoint config, production
  variant, model URL: :mod:`mlops.localcloud.serving_state`) -> the model
  (:mod:`mlops.localcloud.model_cache`), whose serving functions answer the
  request body. A missing endpoint is a ``ValidationError`` (400); a request the
  model refuses is a ``ModelError`` (424) carrying the model's status and
  message, as SageMaker does. With the config's ``DataCaptureConfig`` enabled,
  invocations are captured (:mod:`mlops.localcloud.data_capture`).
- ``UpdateEndpoint`` (called through :mod:`mlops.localcloud.update_endpoint`):
  validates the new config, sets ``Updating``, loads the new config's models
  while the old config keeps serving, then swaps the endpoint to the new config
  (``InService``). If loading fails the endpoint stays on the old config,
  ``InService``, with ``FailureReason`` set (SageMaker's rollback).
- Endpoint state changes (created InService, an update done or rolled back) go
  to the ``on_state_change`` callback, which the local cloud turns into
  "SageMaker Endpoint State Change" events (moto emits none).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

from lambdas.ground_truth import MAX_INFERENCE_ID, is_inference_id
from mlops.localcloud import endpoint_metrics
from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, moto_now
from mlops.localcloud.data_capture import DataCapture
from mlops.localcloud.model_cache import ModelCache, ModelLoader
from mlops.localcloud.serving_state import (
    EndpointFault,
    Serving,
    Variant,
    pick_variant,
    resolve,
)
from mlops.localcloud.shadow import ShadowMirror, sampled
from mlops.localcloud.update_endpoint import UpdateEndpointRequest, find_endpoint

# boto3 sends InvokeEndpoint's InferenceId in this header; the answer echoes it
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"

logger = logging.getLogger(__name__)

# (moto endpoint, account, region), called once the endpoint's new state is stored
StateChange = Callable[[Any, str, str], None]


class EndpointHost:
    """Loads models and answers ``InvokeEndpoint`` / ``UpdateEndpoint`` for moto's endpoints.

    Parameters
    ----------
    clients : ClientFactory
        boto3 clients bound to the local cloud (model download, capture upload).
    activity : Activity
        Counts pending endpoint updates (``wait_idle``).
    state_dir : Path
        Models are unpacked under ``<state_dir>/models/``.
    loader : callable, optional
        ``(model.tar.gz bytes, workdir) -> model``;
        :func:`mlops.localcloud.model_cache.default_loader` by default.
    update_grace : float
        ``UpdateEndpoint`` answers once the update is done or after this many seconds,
        whichever is first (the status stays ``Updating`` until it is done), so that
        clients polling with a waiter rarely wait a whole poll interval.
    on_state_change : callable, optional
        ``(endpoint, account, region)``: an endpoint became InService (created, updated
        or rolled back).
    """

    def __init__(
        self,
        *,
        clients: ClientFactory,
        activity: Activity,
        state_dir: Path,
        loader: ModelLoader | None = None,
        update_grace: float = 5.0,
        on_state_change: StateChange | None = None,
    ) -> None:
        self.activity = activity
        self.update_grace = update_grace
        self.on_state_change = on_state_change
        self.models = ModelCache(clients=clients, state_dir=state_dir, loader=loader)
        self.captures = DataCapture(clients)
        self.shadows = ShadowMirror(activity)
        self._lock = threading.Lock()
        self._serving: dict[tuple[str, str, str], Serving] = {}
        self._threads: list[threading.Thread] = []
        self._openmp: Any = None  # threadpoolctl's handle, once a model has loaded OpenMP

    def _one_openmp_thread(self) -> contextlib.AbstractContextManager[Any]:
        """One OpenMP thread for this request's prediction (a per-thread setting).

        Requests already run side by side, one thread each; an OpenMP team per request
        on top oversubscribes the cores, and beside a training job a single-row gradient
        boosting prediction went from 2.0 ms to 8.7 ms (measured on 2 cores)."""
        if self._openmp is None:
            from mlops.endpoint.server import openmp_controller

            self._openmp = openmp_controller() or False
        if not self._openmp:
            return contextlib.nullcontext()
        return cast(contextlib.AbstractContextManager[Any], self._openmp.limit(limits=1))

    def close(self) -> None:
        for thread in list(self._threads):
            thread.join(10)
        self.shadows.close()
        self.captures.flush(close=True)

    def flush_capture(self) -> None:
        """Write every queued capture record now (``wait_idle`` calls this)."""
        self.captures.flush()

    @staticmethod
    def _backend(account: str, region: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account][region]

    def _state_changed(self, endpoint: Any, account: str, region: str) -> None:
        if self.on_state_change is None:
            return
        try:
            self.on_state_change(endpoint, account, region)
        except Exception:  # a listener's failure never fails the endpoint
            logger.exception("endpoint %s: state change listener failed", endpoint.endpoint_name)

    def created(self, account: str, region: str, endpoint: Any) -> None:
        """``CreateEndpoint`` stored ``endpoint`` (InService at once, as moto creates it)."""
        self._state_changed(endpoint, account, region)

    # ------------------------------------------------------------------ UpdateEndpoint

    def update_endpoint(self, request: UpdateEndpointRequest) -> str:
        """``UpdateEndpoint``; returns the endpoint ARN (raises moto's ValidationError)."""
        from moto.sagemaker.exceptions import ValidationError

        account, region, name = request.account, request.region, request.endpoint_name
        config_name = request.endpoint_config_name
        backend = self._backend(account, region)
        endpoint = find_endpoint(backend, name)
        try:
            new = resolve(backend, config_name)
        except EndpointFault as fault:
            raise ValidationError(message=fault.message) from None
        status = endpoint.endpoint_status
        if status in ("Creating", "Updating", "SystemUpdating"):
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        if status != "InService":
            raise ValidationError(
                message=f'Cannot update endpoint "{endpoint.arn}" in status {status}.'
            )
        key = (account, region, name)
        with self._lock:
            if key not in self._serving:  # pin what serves now, before anything changes
                with contextlib.suppress(EndpointFault):
                    self._serving[key] = resolve(backend, endpoint.endpoint_config_name)
        now = moto_now()
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        endpoint.last_modified_time = now
        endpoint.pending_deployment_summary = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [
                {"VariantName": v.name, "VariantStatus": [{"Status": "Creating", "StartTime": now}]}
                for v in new.variants
            ],
            "StartTime": now,
        }
        self.activity.begin("endpoint")
        thread = threading.Thread(
            target=self._apply_update,
            args=(endpoint, key, new, region),
            name=f"localcloud-update-{name}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()
        thread.join(self.update_grace)
        return str(endpoint.arn)

    def _apply_update(
        self, endpoint: Any, key: tuple[str, str, str], new: Serving, region: str
    ) -> None:
        try:
            for variant in new.variants:
                self.models.get(
                    new.config_name,
                    variant.model_data_url,
                    region,
                    variant.archive_sha256,
                    variant.environment,
                )
        except Exception as exc:
            logger.warning("endpoint %s: update to %s failed: %s", key[2], new.config_name, exc)
            endpoint.failure_reason = f"Failed to update endpoint to {new.config_name}: {exc}"[
                :1024
            ]
        else:
            backend = self._backend(key[0], key[1])
            config = backend.endpoint_configs.get(new.config_name)
            endpoint.endpoint_config_name = new.config_name
            if config is not None:
                endpoint.production_variants = endpoint._process_production_variants(
                    config.production_variants
                )
                endpoint.data_capture_config = config.data_capture_config
            with self._lock:
                self._serving[key] = new
            self.captures.close_endpoint(key)
            endpoint.failure_reason = None
            logger.info("endpoint %s: now serving %s", key[2], new.config_name)
        finally:
            endpoint.pending_deployment_summary = None
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = moto_now()
            self._state_changed(endpoint, key[0], key[1])
            self.activity.end("endpoint")
            current = threading.current_thread()
            if current in self._threads:
                self._threads.remove(current)

    def forget(self, account: str, region: str, name: str) -> None:
        """``DeleteEndpoint``: drop the serving state (models stay cached per config)."""
        key = (account, region, name)
        with self._lock:
            self._serving.pop(key, None)
        self.captures.close_endpoint(key)

    # ------------------------------------------------------------------ InvokeEndpoint

    def invoke(
        self,
        account: str,
        region: str,
        name: str,
        body: bytes,
        headers: Any,
    ) -> tuple[int, dict[str, str], Any]:
        """``InvokeEndpoint``: ``(status, headers, body)`` for moto's response."""
        try:
            return self._invoke(account, region, name, body, headers)
        except EndpointFault as fault:
            return fault.response()

    def _invoke(
        self, account: str, region: str, name: str, body: bytes, headers: Any
    ) -> tuple[int, dict[str, str], Any]:
        backend = self._backend(account, region)
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise EndpointFault(
                400, "ValidationError", f"Endpoint {name} of account {account} not found."
            )
        if endpoint.endpoint_status not in ("InService", "Updating", "SystemUpdating"):
            raise EndpointFault(
                400,
                "ValidationError",
                f"Endpoint {name} of account {account} is in status {endpoint.endpoint_status}.",
            )
        key = (account, region, name)
        with self._lock:
            serving = self._serving.get(key)
        if serving is None:
            serving = resolve(backend, endpoint.endpoint_config_name)
            with self._lock:
                serving = self._serving.setdefault(key, serving)
        inference_id = inference_id_of(headers.get(INFERENCE_ID_HEADER))
        live = {
            v["VariantName"]: float(v["CurrentWeight"])
            for v in endpoint.production_variants
            if v.get("CurrentWeight") is not None
        }
        variant = pick_variant(serving, headers.get("X-Amzn-SageMaker-Target-Variant"), live)
        content_type = headers.get("Content-Type") or "application/octet-stream"
        accept = headers.get("Accept") or None
        request = _Request(key, serving, body, content_type, accept, inference_id)
        answer, answer_type = self._serve(request, variant)
        weight = live.get(variant.name, variant.weight)
        for shadow in serving.shadows:
            if sampled(shadow.weight, weight):
                self.shadows.mirror(name, shadow.name, partial(self._serve, request, shadow))
        return (
            200,
            {
                "Content-Type": answer_type,
                "x-Amzn-Invoked-Production-Variant": variant.name,
                INFERENCE_ID_HEADER: inference_id,
            },
            answer,
        )

    def _serve(self, request: _Request, variant: Variant) -> tuple[bytes, str]:
        """One variant's answer to a request: loaded, predicted, measured, captured."""
        account, region, name = request.key
        serving = request.serving
        try:
            model = self.models.get(
                serving.config_name,
                variant.model_data_url,
                region,
                variant.archive_sha256,
                variant.environment,
            )
        except Exception as exc:
            logger.warning(
                "endpoint %s: model %s failed to load: %s", name, variant.model_name, exc
            )
            raise _model_error(name, account, region, 500, f"model failed to load: {exc}") from None
        from mlops.endpoint import InvocationError

        started = time.perf_counter()
        try:
            with self._one_openmp_thread():
                answer, answer_type = model.invoke(
                    request.body, request.content_type, request.accept
                )
        except InvocationError as exc:
            endpoint_metrics.publish(account, region, name, variant.name, exc.status, None)
            raise _model_error(name, account, region, exc.status, exc.message) from None
        except Exception as exc:
            logger.exception("endpoint %s: invocation failed", name)
            endpoint_metrics.publish(account, region, name, variant.name, 500, None)
            raise _model_error(name, account, region, 500, f"{type(exc).__name__}: {exc}") from None
        latency_us = (time.perf_counter() - started) * 1e6
        endpoint_metrics.publish(account, region, name, variant.name, 200, latency_us)
        self.captures.capture(
            request.key,
            serving.capture,
            variant.name,
            region,
            request.body,
            request.content_type,
            answer,
            answer_type,
            request.inference_id,
        )
        return answer, answer_type


@dataclass(frozen=True)
class _Request:
    """An ``InvokeEndpoint`` request, as each variant that answers it sees it."""

    key: tuple[str, str, str]
    serving: Serving
    body: bytes
    content_type: str
    accept: str | None
    inference_id: str


def inference_id_of(given: str | None) -> str:
    """The request's ``InferenceId`` (SageMaker's limits: 1-64 printable characters, not
    starting with a space), or a new UUID when the caller sent none."""
    if given is None:
        return str(uuid.uuid4())
    if not is_inference_id(given):
        raise EndpointFault(
            400,
            "ValidationError",
            f"InferenceId {given[:80]!r} must be 1 to {MAX_INFERENCE_ID} printable characters "
            "and not start with whitespace.",
        )
    return given


def _model_error(name: str, account: str, region: str, status: int, message: str) -> EndpointFault:
    """SageMaker's ``ModelError`` (424) for a model that answered ``status``."""
    kind = "client" if 400 <= status < 500 else "server"
    return EndpointFault(
        424,
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{message}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:"
        f"group=/aws/sagemaker/Endpoints/{name} in account {account} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn=f"arn:aws:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/{name}",
    )
