"""SageMaker ``UpdateEndpoint`` for moto, which answers it 500 NotImplemented.

STAND-IN, the one used everywhere: :func:`install` puts an ``update_endpoint``
handler on moto's ``SageMakerResponse`` that reads the request and hands it to
an updater, which does the update and returns the endpoint ARN:

- the local cloud passes its endpoint host (a real rollout: the new config's
  models load while the old one serves, with rollback on failure);
- in-process tests under ``mock_aws`` use :func:`repoint`, the end state of a
  successful blue/green update at once. Nothing of the rollout itself (fleets,
  canary, baking, alarms) is simulated there.

Hooks for tests: ``on_request`` sees every request (e.g. to read its
``DeploymentConfig``), and ``failure`` may return a message to refuse the update
with, as a ``ValidationException``, like SageMaker refusing a busy endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UpdateEndpointRequest:
    """One ``UpdateEndpoint`` call."""

    account: str
    region: str
    endpoint_name: str
    endpoint_config_name: str
    deployment_config: dict[str, Any] | None = None


Updater = Callable[[UpdateEndpointRequest], str]
# Patcher.set, or pytest's monkeypatch.setattr with raising=False (moto has no such attribute)
SetAttr = Callable[[Any, str, Any], object]


def find_endpoint(backend: Any, name: str) -> Any:
    """moto's endpoint ``name``, or SageMaker's ValidationError for a missing one."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint

    endpoint = backend.endpoints.get(name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(name, backend.account_id, backend.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    return endpoint


def repoint(request: UpdateEndpointRequest) -> str:
    """Point the endpoint at the new config now: a successful update's end state."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[request.account][request.region]
    endpoint = find_endpoint(backend, request.endpoint_name)
    config = backend.describe_endpoint_config(request.endpoint_config_name)
    endpoint.endpoint_config_name = request.endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(
        config["ProductionVariants"]
    )
    return str(endpoint.arn)


def install(
    set_attr: SetAttr,
    updater: Updater = repoint,
    *,
    on_request: Callable[[UpdateEndpointRequest], None] | None = None,
    failure: Callable[[], str | None] | None = None,
) -> None:
    """Give moto an ``UpdateEndpoint`` that calls ``updater``.

    Parameters
    ----------
    set_attr : callable
        ``(owner, name, value)``: sets ``SageMakerResponse.update_endpoint`` so that it
        can be undone (``Patcher.set``, or ``monkeypatch.setattr`` with ``raising=False``).
    updater : callable
        Does the update, returns the endpoint ARN; :func:`repoint` by default.
    on_request : callable, optional
        Called with every request first, even one that then fails.
    failure : callable, optional
        Returns a message to refuse the request with (ValidationError), or None.
    """
    from moto.core.responses import ActionResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: Any) -> Any:
        backend = self.sagemaker_backend
        request = UpdateEndpointRequest(
            account=backend.account_id,
            region=backend.region_name,
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
            deployment_config=self._get_param("DeploymentConfig"),
        )
        if on_request is not None:
            on_request(request)
        message = failure() if failure is not None else None
        if message:
            raise ValidationError(message=message)
        return ActionResult({"EndpointArn": updater(request)})

    set_attr(SageMakerResponse, "update_endpoint", update_endpoint)
