"""Shadow variants: a copy of an endpoint's traffic for the config's shadow variants.

STAND-IN for SageMaker shadow tests. moto drops ``ShadowProductionVariants`` from
``CreateEndpointConfig``; :func:`install` keeps them on the config and answers them in
``DescribeEndpointConfig`` / ``DescribeEndpoint``, as SageMaker does. A request to the
endpoint is copied to each shadow variant with the probability SageMaker samples with,
the shadow's weight over the production variant's (capped at 1). The copy runs after
the caller has its answer, in :class:`ShadowMirror`'s worker threads: its answer is
captured under the shadow's variant name with the caller's inference ID and its
metrics are published under its ``VariantName``; it is never returned, and its errors
never reach the caller (they are logged and counted in ``Invocation5XXErrors``).
"""

from __future__ import annotations

import concurrent.futures
import logging
import random
from collections.abc import Callable
from typing import Any

from mlops.localcloud.activity import Activity

logger = logging.getLogger(__name__)

SHADOW_ATTR = "_localcloud_shadow_variants"
_random = random.Random()  # sampling, not security


def shadow_variants(config: Any) -> list[dict[str, Any]]:
    """The ``ShadowProductionVariants`` a config was created with."""
    return list(getattr(config, SHADOW_ATTR, None) or [])


def install(patcher: Any) -> None:
    """Keep ``ShadowProductionVariants`` on endpoint configs and describe them."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    create = SageMakerResponse.create_endpoint_config

    def create_endpoint_config(self: Any) -> Any:
        shadows = self._get_param("ShadowProductionVariants") or []
        names = [v.get("VariantName") for v in self._get_param("ProductionVariants") or []]
        for shadow in shadows:
            if shadow.get("VariantName") in names:
                raise ValidationError(
                    message=f"Variant name {shadow.get('VariantName')} is used twice: shadow "
                    "and production variants need names of their own."
                )
            names.append(shadow.get("VariantName"))
        result = create(self)
        config = self.sagemaker_backend.endpoint_configs.get(self._get_param("EndpointConfigName"))
        if config is not None and shadows:
            setattr(config, SHADOW_ATTR, [dict(v) for v in shadows])
        return result

    patcher.set(SageMakerResponse, "create_endpoint_config", create_endpoint_config)

    describe_config = SageMakerModelBackend.describe_endpoint_config

    def describe_endpoint_config(self: Any, endpoint_config_name: str) -> dict[str, Any]:
        response = dict(describe_config(self, endpoint_config_name))
        shadows = shadow_variants(self.endpoint_configs.get(endpoint_config_name))
        if shadows:
            response["ShadowProductionVariants"] = shadows
        return response

    patcher.set(SageMakerModelBackend, "describe_endpoint_config", describe_endpoint_config)

    describe_endpoint = SageMakerModelBackend.describe_endpoint

    def describe_endpoint_patched(self: Any, endpoint_name: str) -> dict[str, Any]:
        response = dict(describe_endpoint(self, endpoint_name))
        endpoint = self.endpoints.get(endpoint_name)
        config = self.endpoint_configs.get(endpoint.endpoint_config_name) if endpoint else None
        summaries = [
            {
                "VariantName": v["VariantName"],
                "CurrentWeight": float(v.get("InitialVariantWeight", 1.0)),
                "DesiredWeight": float(v.get("InitialVariantWeight", 1.0)),
                "CurrentInstanceCount": int(v.get("InitialInstanceCount", 1)),
                "DesiredInstanceCount": int(v.get("InitialInstanceCount", 1)),
            }
            for v in shadow_variants(config)
        ]
        if summaries:
            response["ShadowProductionVariants"] = summaries
        return response

    patcher.set(SageMakerModelBackend, "describe_endpoint", describe_endpoint_patched)


def sampled(shadow_weight: float, production_weight: float) -> bool:
    """Whether this request is copied: shadow weight / production weight, at most 1."""
    if shadow_weight <= 0:
        return False
    if production_weight <= 0 or shadow_weight >= production_weight:
        return True
    return _random.random() < shadow_weight / production_weight


class ShadowMirror:
    """Runs the shadow copies of requests in worker threads, counted as busy work."""

    def __init__(self, activity: Activity, workers: int = 2) -> None:
        self.activity = activity
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="localcloud-shadow"
        )

    def mirror(self, endpoint: str, variant: str, run: Callable[[], Any]) -> None:
        """Run ``run`` (one shadow variant's copy of a request) soon; never raises."""
        self.activity.begin("shadow")
        try:
            self._pool.submit(self._run, endpoint, variant, run)
        except RuntimeError:  # shut down: the local cloud is stopping
            self.activity.end("shadow")

    def _run(self, endpoint: str, variant: str, run: Callable[[], Any]) -> None:
        try:
            run()
        except Exception as exc:  # the caller has its answer; the shadow's error is ours
            logger.warning("endpoint %s: shadow variant %s failed: %s", endpoint, variant, exc)
        finally:
            self.activity.end("shadow")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)
