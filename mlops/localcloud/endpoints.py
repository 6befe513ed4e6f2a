"""Endpoint host: serves real predictions for the endpoints deployed in moto.

STAND-IN for SageMaker hosting, which moto lacks: its ``InvokeEndpoint`` answers
a fixed ``b'body'`` (even for a missing endpoint) and it has no ``UpdateEndpoint``.

- ``InvokeEndpoint``: endpoint -> endpoint config -> production variant -> model
  -> ``PrimaryContainer.ModelDataUrl``; that ``model.tar.gz`` is downloaded and
  loaded with :class:`mlops.endpoint.LocalModel` (cached per endpoint config and
  model URL), and the request body is answered by the model's serving functions.
  A missing endpoint is a ``ValidationError`` (400); a request the model refuses
  is a ``ModelError`` (424) carrying the model's status and message, as SageMaker
  does. With the config's ``DataCaptureConfig`` enabled, invocations are written
  to its ``DestinationS3Uri`` (``<endpoint>/<variant>/YYYY/MM/DD/HH/*.jsonl``,
  with its ``KmsKeyId``) by :class:`mlops.endpoint.CaptureWriter`.
- ``UpdateEndpoint``: validates the new config, sets ``Updating``, loads the new
  config's models while the old config keeps serving, then swaps the endpoint to
  the new config (``InService``). If loading fails the endpoint stays on the old
  config, ``InService``, with ``FailureReason`` set (SageMaker's rollback).

The endpoint's serving state (config, variants, model URLs, capture settings) is
snapshotted when first used, so deleting an old config or model after an update
does not break an endpoint, as on SageMaker.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, parse_s3_uri, utcnow
from mlops.localcloud.state import MODELS_DIR

logger = logging.getLogger(__name__)

_random = random.Random()  # traffic split between variants, not security


class ServingModel(Protocol):
    def invoke(
        self, body: bytes, content_type: str, accept: str | None = None
    ) -> tuple[bytes, str]: ...


ModelLoader = Callable[[bytes, Path], ServingModel]


def default_loader(data: bytes, workdir: Path) -> ServingModel:
    """``mlops.endpoint.LocalModel.from_tarball``: serving functions of ``jobs/inference.py``."""
    from mlops.endpoint import LocalModel

    return LocalModel.from_tarball(data, workdir)


class EndpointFault(Exception):
    """An error answered to the client: HTTP status, error code, message, extra fields."""

    def __init__(self, status: int, code: str, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def response(self) -> tuple[int, dict[str, str], str]:
        body = {"__type": self.code, "message": self.message, "Message": self.message}
        body.update(self.fields)
        # moto takes the status from the "status" header, not from the tuple
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": self.code,
            "status": str(self.status),
        }
        return self.status, headers, json.dumps(body)


@dataclass
class _Variant:
    name: str
    model_name: str
    model_data_url: str
    weight: float


@dataclass
class _Serving:
    """What an endpoint serves: one endpoint config, resolved."""

    config_name: str
    variants: list[_Variant]
    capture: dict[str, Any] = field(default_factory=dict)


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
        ``(model.tar.gz bytes, workdir) -> model``; :func:`default_loader` by default.
    update_grace : float
        ``UpdateEndpoint`` answers once the update is done or after this many seconds,
        whichever is first (the status stays ``Updating`` until it is done), so that
        clients polling with a waiter rarely wait a whole poll interval.
    """

    def __init__(
        self,
        *,
        clients: ClientFactory,
        activity: Activity,
        state_dir: Path,
        loader: ModelLoader | None = None,
        update_grace: float = 5.0,
    ) -> None:
        self.clients = clients
        self.activity = activity
        self.state_dir = state_dir
        self.loader = loader or default_loader
        self.update_grace = update_grace
        self._lock = threading.Lock()
        self._serving: dict[tuple[str, str, str], _Serving] = {}
        self._models: dict[tuple[str, str], ServingModel] = {}
        self._model_locks: dict[tuple[str, str], threading.Lock] = {}
        self._captures: dict[tuple[str, str, str, str], Any] = {}
        self._threads: list[threading.Thread] = []

    def close(self) -> None:
        for thread in list(self._threads):
            thread.join(10)
        self.flush_capture(close=True)

    # ------------------------------------------------------------------ resolving

    @staticmethod
    def _backend(account: str, region: str) -> Any:
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account][region]

    def _resolve(self, backend: Any, config_name: str) -> _Serving:
        from moto.sagemaker.models import FakeEndpointConfig

        config = backend.endpoint_configs.get(config_name)
        if config is None:
            arn = FakeEndpointConfig.arn_formatter(
                config_name, backend.account_id, backend.region_name
            )
            raise EndpointFault(
                400, "ValidationError", f"Could not find endpoint configuration '{arn}'."
            )
        variants = []
        for pv in config.production_variants:
            model = backend._models.get(pv["ModelName"])
            if model is None:
                raise EndpointFault(
                    400, "ValidationError", f"Could not find model '{pv['ModelName']}'."
                )
            container = model.primary_container or (model.containers or [{}])[0]
            url = (container or {}).get("ModelDataUrl")
            if not url:
                raise EndpointFault(
                    400,
                    "ValidationError",
                    f"model {model.model_name} has no PrimaryContainer.ModelDataUrl: the local "
                    "cloud serves model.tar.gz artifacts only",
                )
            variants.append(
                _Variant(
                    name=pv["VariantName"],
                    model_name=model.model_name,
                    model_data_url=url,
                    weight=float(pv.get("InitialVariantWeight", 1.0) or 0.0),
                )
            )
        return _Serving(config_name, variants, dict(config.data_capture_config or {}))

    def _model(self, config_name: str, url: str, region: str) -> ServingModel:
        key = (config_name, url)
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                return model
            lock = self._model_locks.setdefault(key, threading.Lock())
        with lock:  # one download/load per model, others wait for it
            with self._lock:
                if key in self._models:
                    return self._models[key]
            bucket, s3_key = parse_s3_uri(url)
            try:
                data = (
                    self.clients("s3", region).get_object(Bucket=bucket, Key=s3_key)["Body"].read()
                )
            except Exception as exc:
                raise RuntimeError(f"could not download model data {url}: {exc}") from exc
            digest = hashlib.sha256(f"{config_name}\n{url}".encode()).hexdigest()[:16]
            workdir = self.state_dir / MODELS_DIR / digest
            model = self.loader(data, workdir)
            with self._lock:
                self._models[key] = model
            return model

    # ------------------------------------------------------------------ UpdateEndpoint

    def update_endpoint(self, account: str, region: str, name: str, config_name: str) -> str:
        """``UpdateEndpoint``; returns the endpoint ARN (raises moto's ValidationError)."""
        from moto.sagemaker.exceptions import ValidationError
        from moto.sagemaker.models import FakeEndpoint

        backend = self._backend(account, region)
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(name, account, region)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        try:
            new = self._resolve(backend, config_name)
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
                    self._serving[key] = self._resolve(backend, endpoint.endpoint_config_name)
        now = utcnow()
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
        self, endpoint: Any, key: tuple[str, str, str], new: _Serving, region: str
    ) -> None:
        try:
            for variant in new.variants:
                self._model(new.config_name, variant.model_data_url, region)
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
            self._close_captures(key)
            endpoint.failure_reason = None
            logger.info("endpoint %s: now serving %s", key[2], new.config_name)
        finally:
            endpoint.pending_deployment_summary = None
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = utcnow()
            self.activity.end("endpoint")
            current = threading.current_thread()
            if current in self._threads:
                self._threads.remove(current)

    def forget(self, account: str, region: str, name: str) -> None:
        """``DeleteEndpoint``: drop the serving state (models stay cached per config)."""
        key = (account, region, name)
        with self._lock:
            self._serving.pop(key, None)
        self._close_captures(key)

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
            serving = self._resolve(backend, endpoint.endpoint_config_name)
            with self._lock:
                serving = self._serving.setdefault(key, serving)
        variant = self._pick_variant(serving, headers.get("X-Amzn-SageMaker-Target-Variant"))
        content_type = headers.get("Content-Type") or "application/octet-stream"
        accept = headers.get("Accept") or None
        try:
            model = self._model(serving.config_name, variant.model_data_url, region)
        except Exception as exc:
            logger.warning(
                "endpoint %s: model %s failed to load: %s", name, variant.model_name, exc
            )
            raise self._model_error(
                name, account, region, 500, f"model failed to load: {exc}"
            ) from None
        from mlops.endpoint import InvocationError

        try:
            answer, answer_type = model.invoke(body, content_type, accept)
        except InvocationError as exc:
            raise self._model_error(name, account, region, exc.status, exc.message) from None
        except Exception as exc:
            logger.exception("endpoint %s: invocation failed", name)
            raise self._model_error(
                name, account, region, 500, f"{type(exc).__name__}: {exc}"
            ) from None
        self._capture(key, serving, variant.name, region, body, content_type, answer, answer_type)
        return (
            200,
            {"Content-Type": answer_type, "x-Amzn-Invoked-Production-Variant": variant.name},
            answer,
        )

    @staticmethod
    def _model_error(
        name: str, account: str, region: str, status: int, message: str
    ) -> EndpointFault:
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

    @staticmethod
    def _pick_variant(serving: _Serving, target: str | None) -> _Variant:
        if not serving.variants:
            raise EndpointFault(400, "ValidationError", "the endpoint has no production variant")
        if target:
            for variant in serving.variants:
                if variant.name == target:
                    return variant
            raise EndpointFault(
                400,
                "ValidationError",
                f"Variant {target} not found for endpoint config {serving.config_name}.",
            )
        total = sum(v.weight for v in serving.variants)
        if total <= 0:
            return serving.variants[0]
        pick = _random.uniform(0, total)
        for variant in serving.variants:
            pick -= variant.weight
            if pick <= 0:
                return variant
        return serving.variants[-1]

    # ------------------------------------------------------------------ data capture

    def _capture(
        self,
        key: tuple[str, str, str],
        serving: _Serving,
        variant: str,
        region: str,
        body: bytes,
        content_type: str,
        answer: bytes,
        answer_type: str,
    ) -> None:
        config = serving.capture
        if (
            not config
            or not config.get("EnableCapture", True)
            or not config.get("DestinationS3Uri")
        ):
            return
        capture_key = (*key, variant)
        with self._lock:
            writer = self._captures.get(capture_key)
            if writer is None:
                from mlops.endpoint import CaptureWriter

                try:
                    writer = CaptureWriter.from_data_capture_config(
                        config,
                        endpoint_name=key[2],
                        variant_name=variant,
                        s3_client=self.clients("s3", region),
                        max_seconds=1.0,
                    )
                except Exception as exc:
                    logger.warning("endpoint %s: data capture off: %s", key[2], exc)
                    return
                if writer is None:
                    return
                self._captures[capture_key] = writer
        writer.capture(body, content_type, answer, answer_type)

    def flush_capture(self, close: bool = False) -> None:
        """Write every queued capture record now (``wait_idle`` calls this)."""
        with self._lock:
            writers = list(self._captures.items())
            if close:
                self._captures.clear()
        for _, writer in writers:
            if close:
                writer.close()
            else:
                writer.flush()

    def _close_captures(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            stale = [k for k in self._captures if k[:3] == key]
            writers = [self._captures.pop(k) for k in stale]
        for writer in writers:
            writer.close()
