"""A model folder loaded with its serving functions, and how one request is answered.

The work is done by the serving functions of ``jobs/inference.py`` (``model_fn``,
``input_fn``, ``predict_fn``, ``output_fn``), exactly as the SageMaker scikit-learn
container calls them. The folder is the training job's ``SM_MODEL_DIR`` or a SageMaker
``model.tar.gz`` of it.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import logging
import tarfile
import tempfile
from http import HTTPStatus
from pathlib import Path
from typing import Any, Protocol

from lambdas.constants import BASELINE_FILE, EVALUATION_FILE, MODEL_FILE
from mlops.endpoint.errors import InvocationError
from mlops.endpoint.media import SUPPORTED_TYPES, media_type, negotiate

logger = logging.getLogger(__name__)


class ServingModule(Protocol):
    """The four SageMaker scikit-learn serving functions (``jobs/inference.py``)."""

    def model_fn(self, model_dir: str) -> Any: ...
    def input_fn(self, request_body: Any, request_content_type: str) -> Any: ...
    def predict_fn(self, input_data: Any, model: Any) -> Any: ...
    def output_fn(self, prediction: Any, accept: str) -> Any: ...


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_root(folder: Path) -> Path:
    """The folder holding ``model.joblib``: the archive root or its only sub-folder."""
    if (folder / MODEL_FILE).exists():
        return folder
    children = [child for child in folder.iterdir() if not child.name.startswith(".")]
    if len(children) == 1 and (children[0] / MODEL_FILE).exists():
        return children[0]
    return folder


class LocalModel:
    """A loaded model and its serving functions.

    Parameters
    ----------
    model_dir : Path
        The model folder (``model.joblib``, ``evaluation.json``, ``baseline.json``).
    serving : module, optional
        The serving functions; ``jobs.inference`` by default.
    """

    def __init__(self, model_dir: Path, serving: ServingModule | None = None) -> None:
        self.model_dir = Path(model_dir)
        # (folder, program) when load_model() made it: worker processes load it again
        self.origin: tuple[str, str | None] | None = None
        if serving is None:
            serving = importlib.import_module("jobs.inference")
        assert serving is not None
        self.serving = serving
        self._input_fn = serving.input_fn
        self._predict_fn = serving.predict_fn
        self._output_fn = serving.output_fn
        self.model = serving.model_fn(str(self.model_dir))
        self.evaluation = _read_json(self.model_dir / EVALUATION_FILE)
        self.features: list[str] = self._find_features()
        model_file = self.model_dir / MODEL_FILE
        self.model_sha256 = _file_sha256(model_file) if model_file.exists() else ""
        recorded = (self.evaluation.get("model") or {}).get("sha256")
        if recorded and self.model_sha256 and recorded != self.model_sha256:
            logger.warning(
                "%s: %s sha256 %s differs from %s's %s",
                self.model_dir,
                MODEL_FILE,
                self.model_sha256,
                EVALUATION_FILE,
                recorded,
            )

    def _find_features(self) -> list[str]:
        """Feature names in request order: from the model bundle, else the JSON files."""
        if isinstance(self.model, dict) and self.model.get("features"):
            return [str(name) for name in self.model["features"]]
        baseline = _read_json(self.model_dir / BASELINE_FILE)
        for names in (baseline.get("feature_order"), self.evaluation.get("features")):
            if isinstance(names, list) and names:
                return [str(name) for name in names]
        return []

    @classmethod
    def from_dir(cls, model_dir: Path | str, serving: ServingModule | None = None) -> LocalModel:
        """Load the model folder written by the training job."""
        folder = Path(model_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder not found: {folder}")
        return cls(_model_root(folder), serving)

    @classmethod
    def from_tarball(
        cls,
        path_or_bytes: Path | str | bytes | bytearray,
        workdir: Path | str,
        serving: ServingModule | None = None,
    ) -> LocalModel:
        """Unpack a SageMaker ``model.tar.gz`` (path or bytes) into ``workdir``, then load it."""
        target = Path(workdir)
        target.mkdir(parents=True, exist_ok=True)
        source: dict[str, Any] = (
            {"fileobj": io.BytesIO(path_or_bytes)}
            if isinstance(path_or_bytes, bytes | bytearray)
            else {"name": path_or_bytes}
        )
        with tarfile.open(mode="r:*", **source) as archive:
            # the "data" filter refuses absolute paths, links out of the folder, devices
            archive.extractall(target, filter="data")
        return cls.from_dir(target, serving)

    def invoke(
        self, body: bytes, content_type: str, accept: str | None = None
    ) -> tuple[bytes, str]:
        """Answer one ``/invocations`` request: ``(response body, response content type)``.

        Raises
        ------
        InvocationError
            415 for an unsupported ``Content-Type``, 406 for an ``Accept`` the endpoint
            cannot answer, 400 for bad input (the serving functions' ``ValueError``
            message), 500 for anything else.
        """
        request_type = media_type(content_type)
        if request_type not in SUPPORTED_TYPES:
            shown = content_type or "none"
            raise InvocationError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Type {shown!r}: send {' or '.join(SUPPORTED_TYPES)}",
            )
        response_type = negotiate(accept, request_type)
        if not body or not body.strip():
            raise InvocationError(HTTPStatus.BAD_REQUEST, "empty request body")
        try:
            data = self._input_fn(body, request_type)
            prediction = self._predict_fn(data, self.model)
            result = self._output_fn(prediction, response_type)
        except ValueError as exc:
            raise InvocationError(HTTPStatus.BAD_REQUEST, str(exc) or "bad input") from exc
        except Exception as exc:
            logger.exception("invocation failed")
            raise InvocationError(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}"
            ) from exc
        if isinstance(result, tuple):  # output_fn may also return (body, content type)
            result, response_type = result
        if isinstance(result, str):
            return result.encode(), response_type
        return bytes(result), response_type


def load_model(
    model_dir_or_tarball: Path | str,
    workdir: Path | str | None = None,
    program: str | None = None,
) -> LocalModel:
    """Load a model folder or a ``model.tar.gz`` (unpacked into ``workdir`` or a temp folder).

    ``program``: the user's serving module in the model's ``code/`` folder (the SageMaker
    scikit-learn container's ``SAGEMAKER_PROGRAM``); found by itself when the folder has
    ``code/inference.py`` and is not one of this project's models."""
    source = Path(model_dir_or_tarball)
    if not source.exists():
        raise FileNotFoundError(f"no model folder or model.tar.gz at {source}")
    if source.is_file():
        folder = Path(workdir or tempfile.mkdtemp(prefix="mlops-endpoint-"))
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(source, mode="r:*") as archive:
            archive.extractall(folder, filter="data")
        source = folder
    own = (_model_root(source) / EVALUATION_FILE).exists()
    if program is None and not own and (source / "code" / "inference.py").is_file():
        program = "inference.py"
    if program is None:
        model = LocalModel.from_dir(source)
    else:
        from mlops.endpoint.user_module import code_folder, load_module

        model = LocalModel(source, serving=load_module(code_folder(source, None, None), program))
    model.origin = (str(source), program)  # how another process loads the same model
    return model
