"""The models local endpoints serve: downloaded and loaded once per endpoint config.

A model is the ``model.tar.gz`` at a production variant's ``ModelDataUrl``,
unpacked under ``<state_dir>/models/`` and loaded by a loader
(:func:`default_loader`: the serving functions of ``jobs/inference.py``). It is
cached per (endpoint config, model URL), so an update to a new config loads its
models while the old config's keep serving.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from lambdas.aws import parse_s3_uri
from mlops.localcloud.awsutil import ClientFactory
from mlops.localcloud.state import MODELS_DIR


class ServingModel(Protocol):
    def invoke(
        self, body: bytes, content_type: str, accept: str | None = None
    ) -> tuple[bytes, str]: ...


ModelLoader = Callable[[bytes, Path], ServingModel]


def default_loader(data: bytes, workdir: Path) -> ServingModel:
    """``mlops.endpoint.LocalModel.from_tarball``: serving functions of ``jobs/inference.py``."""
    from mlops.endpoint import LocalModel

    return LocalModel.from_tarball(data, workdir)


class ModelCache:
    """Loaded models by (endpoint config, model URL); one download and load each.

    Parameters
    ----------
    clients : ClientFactory
        boto3 clients bound to the local cloud (model download).
    state_dir : Path
        Models are unpacked under ``<state_dir>/models/``.
    loader : callable, optional
        ``(model.tar.gz bytes, workdir) -> model``; :func:`default_loader` by default.
    """

    def __init__(
        self, *, clients: ClientFactory, state_dir: Path, loader: ModelLoader | None = None
    ) -> None:
        self.clients = clients
        self.state_dir = state_dir
        self.loader = loader or default_loader
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], ServingModel] = {}
        self._model_locks: dict[tuple[str, str], threading.Lock] = {}

    def get(
        self, config_name: str, url: str, region: str, archive_sha256: str | None = None
    ) -> ServingModel:
        """The model at ``url`` for ``config_name``, loaded on first use.

        ``archive_sha256``: the digest the serving Model says was approved; an archive
        with other bytes is refused, as the stack's serving code does.
        """
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
            actual = hashlib.sha256(data).hexdigest()
            if archive_sha256 and actual != archive_sha256:
                raise RuntimeError(
                    f"model data {url} has SHA-256 {actual}, not the approved "
                    f"{archive_sha256}; refusing to serve it"
                )
            digest = hashlib.sha256(f"{config_name}\n{url}".encode()).hexdigest()[:16]
            workdir = self.state_dir / MODELS_DIR / digest
            model = self.loader(data, workdir)
            with self._lock:
                self._models[key] = model
            return model
