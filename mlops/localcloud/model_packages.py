"""SageMaker model registry stand-ins: UpdateModelPackage as SageMaker does it, and its events.

STAND-INS for two moto gaps (moto 5.2):

- ``UpdateModelPackage``: moto replaces ``CustomerMetadataProperties`` with the
  request's and sets ``ModelApprovalStatus`` / ``ApprovalDescription`` to None
  when the request leaves them out. SageMaker merges: the request's keys are
  added or overwritten, ``CustomerMetadataPropertiesToRemove`` drops keys, and
  what the request leaves out is kept.
- ``CreateModelPackage`` of a versioned package without ``ModelApprovalStatus``:
  SageMaker makes it ``PendingManualApproval`` (moto: none).

And the "SageMaker Model Package State Change" event (moto emits none), for a
versioned package when it is created and when an update changes its
``ModelApprovalStatus``. AWS documents the event as "a change in the status of a
model package"; an update of only metadata or the description sends none here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops.localcloud.events import model_package_event

# (event, account, region): the router's publish
Publish = Callable[[dict[str, Any], str, str], None]
SetAttr = Callable[[Any, str, Any], object]

PENDING = "PendingManualApproval"


def merge_update(
    package: Any,
    *,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    customer_metadata_properties_to_remove: list[str] | None,
    additional_inference_specifications_to_add: list[Any] | None,
) -> None:
    """Apply an ``UpdateModelPackage`` request to moto's package as SageMaker does."""
    from moto.sagemaker.utils import validate_model_approval_status

    # refuse a bad request before anything changes
    if model_approval_status is not None:
        validate_model_approval_status(model_approval_status)
    package.validate_additional_inference_specifications(additional_inference_specifications_to_add)
    if model_approval_status is not None:
        package.model_approval_status = model_approval_status
    if approval_description is not None:
        package.approval_description = approval_description
    merged = dict(package.customer_metadata_properties or {})
    merged.update(customer_metadata_properties or {})
    for key in customer_metadata_properties_to_remove or []:
        merged.pop(key, None)
    package.customer_metadata_properties = merged or None
    package.add_additional_inference_specifications(additional_inference_specifications_to_add)
    package.modifications_done()


def install(set_attr: SetAttr, publish: Publish) -> None:
    """Put the stand-ins on moto's ``SageMakerModelBackend``; events go to ``publish``."""
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import SageMakerModelBackend

    create = SageMakerModelBackend.create_model_package

    def emit(backend: Any, package: Any) -> None:
        if package.model_package_type == "Versioned":
            event = model_package_event(package, backend.account_id, backend.region_name)
            publish(event, backend.account_id, backend.region_name)

    def create_model_package(self: Any, *args: Any, **kwargs: Any) -> str:
        arn = str(create(self, *args, **kwargs))
        package = self.model_packages[arn]
        if package.model_package_type == "Versioned" and package.model_approval_status is None:
            package.model_approval_status = PENDING
        emit(self, package)
        return arn

    def update_model_package(
        self: Any,
        model_package_arn: str,
        model_approval_status: str | None,
        approval_description: str | None,
        customer_metadata_properties: dict[str, str] | None,
        customer_metadata_properties_to_remove: list[str],
        additional_inference_specifications_to_add: list[Any] | None,
    ) -> str:
        key = self.model_package_name_mapping.get(model_package_arn, model_package_arn)
        package = self.model_packages.get(key)
        if package is None:
            raise ValidationError(message=f"Model package {model_package_arn} not found")
        before = package.model_approval_status
        merge_update(
            package,
            model_approval_status=model_approval_status,
            approval_description=approval_description,
            customer_metadata_properties=customer_metadata_properties,
            customer_metadata_properties_to_remove=customer_metadata_properties_to_remove,
            additional_inference_specifications_to_add=additional_inference_specifications_to_add,
        )
        if package.model_approval_status != before:
            emit(self, package)
        return str(package.arn)

    set_attr(SageMakerModelBackend, "create_model_package", create_model_package)
    set_attr(SageMakerModelBackend, "update_model_package", update_model_package)
