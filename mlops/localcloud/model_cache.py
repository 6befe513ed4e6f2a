"""The models local endpoints serve: downloaded and loaded once per endpoint config.

A model is the ``model.tar.gz`` at a production variant's ``ModelDataUrl``,
unpacked under ``<state_dir>/models/`` and loaded by a loader
(:func:`default_loader`: the serving functions of ``jobs/inference.py``). It is
cached per (endpoint config, model URL), so an update to a new config loads its
models while the old config's keep serving.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from lambdas.aws import parse_s3_uri
from mlops.endpoint.user_module import PROGRAM_ENV, SUBMIT_DIRECTORY_ENV
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


def user_loader(
    data: bytes, workdir: Path, environment: Mapping[str, str], fetch: Callable[[str], bytes]
) -> ServingModel:
    """A model with its own serving module (``SAGEMAKER_PROGRAM``): the archive unpacked,
    the code from ``SAGEMAKER_SUBMIT_DIRECTORY`` (an S3 source tarball, fetched) or the
    archive's ``code/`` folder, the module's functions with the container's defaults."""
    from mlops.endpoint import LocalModel
    from mlops.endpoint.user_module import code_folder, load_module

    model_dir = workdir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    _untar(data, model_dir, "model data")
    submit = environment.get(SUBMIT_DIRECTORY_ENV, "")
    fetched = None
    if submit.startswith("s3://"):
        fetched = workdir / "code"
        fetched.mkdir(parents=True, exist_ok=True)
        _untar(fetch(submit), fetched, f"{SUBMIT_DIRECTORY_ENV} {submit}")
    serving = load_module(code_folder(model_dir, submit, fetched), environment[PROGRAM_ENV])
    return LocalModel(model_dir, serving=serving)


def _untar(data: bytes, target: Path, what: str) -> None:
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            archive.extractall(target, filter="data")  # no absolute paths, no links out
    except tarfile.TarError as exc:
        raise RuntimeError(f"{what} is not a tar.gz archive: {exc}") from None


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
        self,
        config_name: str,
        url: str,
        region: str,
        archive_sha256: str | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> ServingModel:
        """The model at ``url`` for ``config_name``, loaded on first use.

        ``archive_sha256``: the digest the serving Model says was approved; an archive
        with other bytes is refused, as the stack's serving code does. ``environment``:
        the container's; with ``SAGEMAKER_PROGRAM`` the user's own serving module is
        used (:func:`user_loader`), as the SageMaker scikit-learn container does.
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
            data = self._download(url, region)
            actual = hashlib.sha256(data).hexdigest()
            if archive_sha256 and actual != archive_sha256:
                raise RuntimeError(
                    f"model data {url} has SHA-256 {actual}, not the approved "
                    f"{archive_sha256}; refusing to serve it"
                )
            digest = hashlib.sha256(f"{config_name}\n{url}".encode()).hexdigest()[:16]
            workdir = self.state_dir / MODELS_DIR / digest
            env = dict(environment or {})
            if env.get(PROGRAM_ENV):
                model = user_loader(data, workdir, env, lambda u: self._download(u, region))
            else:
                model = self.loader(data, workdir)
            with self._lock:
                self._models[key] = model
            return model

    def _download(self, url: str, region: str) -> bytes:
        bucket, s3_key = parse_s3_uri(url)
        try:
            return bytes(
                self.clients("s3", region).get_object(Bucket=bucket, Key=s3_key)["Body"].read()
            )
        except Exception as exc:
            raise RuntimeError(f"could not download {url}: {exc}") from exc
