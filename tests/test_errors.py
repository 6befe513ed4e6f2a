"""One base error per package, so the CLI (and a caller) catches one class per package."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

from infra.errors import InfraError
from jobs.errors import JobError
from lambdas.errors import ControlPlaneError
from mlops.cli.common import USER_ERRORS
from mlops.errors import MlopsError

BASES = {"infra": InfraError, "jobs": JobError, "lambdas": ControlPlaneError, "mlops": MlopsError}


def _exceptions(package: str) -> list[type[BaseException]]:
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue  # entry points: importing one would run it
        module = importlib.import_module(info.name)
        found += [
            obj
            for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == info.name
        ]
    return found


@pytest.mark.parametrize("package", sorted(BASES))
def test_every_error_of_a_package_derives_from_its_base(package: str) -> None:
    errors = _exceptions(package)

    strays = [
        f"{e.__module__}.{e.__qualname__}" for e in errors if not issubclass(e, BASES[package])
    ]

    assert len(errors) > 1  # the walk found the package's errors, not only its base
    assert strays == []


def test_the_cli_reports_the_bases_of_the_packages_it_calls() -> None:
    assert set(USER_ERRORS) == {MlopsError, InfraError}
