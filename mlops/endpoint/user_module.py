"""A user's model served the way the SageMaker scikit-learn container serves it.

The container imports the module named by ``SAGEMAKER_PROGRAM`` from
``SAGEMAKER_SUBMIT_DIRECTORY`` (an S3 ``sourcedir.tar.gz``, or ``/opt/ml/model/code``:
the ``code/`` folder the SDK repacks into ``model.tar.gz``) and calls its ``model_fn``,
``input_fn``, ``predict_fn``, ``output_fn``, with its own defaults for the last three
(sagemaker-scikit-learn-container's ``serving.py``: decode the request to a NumPy
array, ``model.predict``, encode the prediction as JSON or CSV). ``model_fn`` has no
default: the container refuses to guess how a model was saved, and so does this.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import sys
import traceback
import types
from pathlib import Path
from typing import Any

import numpy as np

from mlops.endpoint.errors import EndpointError

PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIRECTORY_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
#: Where the container finds the repacked code (the SDK's default submit directory).
MODEL_CODE_DIR = "/opt/ml/model/code"


class UserModuleError(EndpointError, RuntimeError):
    """The user's serving module cannot be found, imported or used."""


def default_input_fn(body: Any, content_type: str) -> Any:
    """The container's default: CSV or JSON (or NPY) to a NumPy array."""
    if isinstance(body, bytes) and content_type != "application/x-npy":
        body = body.decode("utf-8")
    if content_type == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(body)) if row]
        return np.array(rows, dtype=np.float64)
    if content_type == "application/json":
        payload = json.loads(body)
        if isinstance(payload, dict) and "instances" in payload:
            payload = payload["instances"]
        return np.array(payload)
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise ValueError(f"the default input_fn does not read {content_type!r}")


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[str, str]:
    """The container's default: JSON (a list) or CSV (one line per row)."""
    values = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    if accept == "text/csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for row in values if isinstance(values, list) else [values]:
            writer.writerow(row if isinstance(row, list) else [row])
        return out.getvalue(), "text/csv"
    return json.dumps(values), "application/json"


def code_folder(model_dir: Path, submit_directory: str | None, fetched: Path | None) -> Path:
    """Where the user's module lives: a fetched S3 source tarball, else the archive's
    ``code/`` folder (``/opt/ml/model/code`` in the container), else the archive root."""
    if fetched is not None:
        return fetched
    if submit_directory and submit_directory.startswith(MODEL_CODE_DIR):
        return model_dir / "code" / submit_directory[len(MODEL_CODE_DIR) :].lstrip("/")
    return model_dir / "code" if (model_dir / "code").is_dir() else model_dir


def load_module(folder: Path, program: str) -> types.SimpleNamespace:
    """The four serving functions of ``folder/program``, defaults filled in."""
    path = folder / program
    if not path.is_file():
        present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        raise UserModuleError(
            f"{PROGRAM_ENV}={program}: no such file in the code folder {folder} "
            f"(it has: {', '.join(present) or 'nothing'})"
        )
    name = f"mlops_user_serving_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))  # the module's own helper imports, as in the container
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        tail = "".join(traceback.format_exception(exc)[-3:]).strip()
        raise UserModuleError(f"{program} failed to import: {tail}") from exc
    finally:
        sys.path.remove(str(folder))
    if not hasattr(module, "model_fn"):
        raise UserModuleError(
            f"{program} has no model_fn: the scikit-learn container has no default for it "
            "(how was the model saved?); define model_fn(model_dir)"
        )
    return types.SimpleNamespace(
        model_fn=module.model_fn,
        input_fn=getattr(module, "input_fn", default_input_fn),
        predict_fn=getattr(module, "predict_fn", default_predict_fn),
        output_fn=getattr(module, "output_fn", default_output_fn),
    )
