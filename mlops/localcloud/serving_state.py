"""What a local endpoint serves: its endpoint config, resolved, and the variant a request gets.

An endpoint's serving state (config, variants, model URLs, capture settings) is
snapshotted from moto's stored endpoint config when first used, so deleting an
old config or model after an update does not break the endpoint, as on
SageMaker. :class:`EndpointFault` is the error answered to the client when
that state cannot be found or a request cannot be served.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from lambdas.constants import MODEL_ARCHIVE_SHA256_ENV
from mlops.errors import MlopsError

_random = random.Random()  # traffic split between variants, not security


class EndpointFault(MlopsError):
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
class Variant:
    name: str
    model_name: str
    model_data_url: str
    weight: float
    archive_sha256: str | None = None  # the digest promote released; the archive must match
    environment: dict[str, str] = field(default_factory=dict)  # the container's Environment


@dataclass
class Serving:
    """What an endpoint serves: one endpoint config, resolved."""

    config_name: str
    variants: list[Variant]
    capture: dict[str, Any] = field(default_factory=dict)
    shadows: list[Variant] = field(default_factory=list)  # ShadowProductionVariants


def resolve(backend: Any, config_name: str) -> Serving:
    """Endpoint config -> production variants -> models -> ``ModelDataUrl``, from moto."""
    from moto.sagemaker.models import FakeEndpointConfig

    config = backend.endpoint_configs.get(config_name)
    if config is None:
        arn = FakeEndpointConfig.arn_formatter(config_name, backend.account_id, backend.region_name)
        raise EndpointFault(
            400, "ValidationError", f"Could not find endpoint configuration '{arn}'."
        )
    from mlops.localcloud.shadow import shadow_variants

    return Serving(
        config_name,
        [_variant(backend, pv) for pv in config.production_variants],
        dict(config.data_capture_config or {}),
        [_variant(backend, pv) for pv in shadow_variants(config)],
    )


def _variant(backend: Any, pv: dict[str, Any]) -> Variant:
    model = backend._models.get(pv["ModelName"])
    if model is None:
        raise EndpointFault(400, "ValidationError", f"Could not find model '{pv['ModelName']}'.")
    container = model.primary_container or (model.containers or [{}])[0]
    url = (container or {}).get("ModelDataUrl")
    if not url:
        raise EndpointFault(
            400,
            "ValidationError",
            f"model {model.model_name} has no PrimaryContainer.ModelDataUrl: the local "
            "cloud serves model.tar.gz artifacts only",
        )
    environment = dict((container or {}).get("Environment") or {})
    return Variant(
        name=pv["VariantName"],
        model_name=model.model_name,
        model_data_url=url,
        weight=float(pv.get("InitialVariantWeight", 1.0) or 0.0),
        archive_sha256=environment.get(MODEL_ARCHIVE_SHA256_ENV),
        environment=environment,
    )


def pick_variant(
    serving: Serving, target: str | None, weights: dict[str, float] | None = None
) -> Variant:
    """The ``TargetVariant`` asked for, else one drawn by weight: ``weights`` (the
    endpoint's current ones, after ``UpdateEndpointWeightsAndCapacities``), else the
    config's ``InitialVariantWeight``."""
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
    live = weights or {}
    weighed = [(v, live.get(v.name, v.weight)) for v in serving.variants]
    total = sum(w for _, w in weighed)
    if total <= 0:
        return serving.variants[0]
    pick = _random.uniform(0, total)
    for variant, weight in weighed:
        if weight <= 0:
            continue
        pick -= weight
        if pick <= 0:
            return variant
    return next(v for v, w in reversed(weighed) if w > 0)
