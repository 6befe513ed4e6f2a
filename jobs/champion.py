"""The champion (the model serving now), scored on the challenger's own test split.

``evaluation.json["champion"]`` (docs/contracts.md): the promotion gate compares both
models on the same rows. A champion that cannot be loaded or applied is recorded as an
error and never fails the challenger's training.
"""

from __future__ import annotations

import json
import posixpath
import tarfile
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs import data
from jobs.contract import BASELINE_FILE, EVALUATION_FILE, MODEL_FILE, PROFILE_FILE
from jobs.errors import JobError
from jobs.inference import sha256_file
from jobs.metrics import compute_metrics, confusion

CHAMPION_MEMBERS = (MODEL_FILE, EVALUATION_FILE, PROFILE_FILE, BASELINE_FILE)
_CHAMPION_KEYS = ("pipeline", "features", "labels", "threshold", "positive_label")


class ChampionError(JobError):
    """The champion cannot be loaded or applied here; the message says why."""


def _champion_files(source: Path, workdir: Path) -> Path:
    """The folder holding the champion's ``model.joblib`` (extracting a model.tar.gz).

    ``source`` is a folder with ``model.joblib`` (an extracted model), a folder with one
    ``*.tar.gz`` (the SageMaker channel: the champion's ``model.tar.gz``), or the archive.
    Only the archive's top-level ``CHAMPION_MEMBERS`` are read.
    """
    if source.is_dir():
        if (source / CHAMPION_MEMBERS[0]).is_file():
            return source
        archives = sorted(p for p in source.iterdir() if p.name.endswith(".tar.gz"))
        if len(archives) != 1:
            found = ", ".join(sorted(p.name for p in source.iterdir())[:10]) or "nothing"
            raise ChampionError(
                f"champion folder {source} holds neither model.joblib nor one model.tar.gz "
                f"(found: {found})"
            )
        source = archives[0]
    elif not source.is_file():
        raise ChampionError(f"champion path {source} does not exist")
    try:
        with tarfile.open(source, mode="r:*") as tar:
            for member in tar:
                name = posixpath.normpath(member.name)
                if name in CHAMPION_MEMBERS and member.isfile():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        (workdir / name).write_bytes(handle.read())
    except tarfile.ReadError as exc:
        raise ChampionError(f"the champion archive {source.name} is not a tar archive") from exc
    except (tarfile.TarError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())
        raise ChampionError(f"cannot read the champion archive {source.name}: {reason}") from exc
    if not (workdir / CHAMPION_MEMBERS[0]).is_file():
        raise ChampionError(f"the champion archive {source.name} holds no model.joblib")
    return workdir


def _json_member(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ChampionError(f"the champion's {name} is not JSON: {exc}") from exc
    return doc if isinstance(doc, dict) else None


def load_champion(source: str | Path) -> dict[str, Any]:
    """Load the champion: ``{"model", "sha256", "own", "profile", "baseline"}``.

    ``model`` is the model dict, ``sha256`` that of ``model.joblib``, which must match its
    ``evaluation.json`` (``own``) when that file is there (as ``inference.model_fn``
    checks); ``own``, ``profile`` (profile.json) and ``baseline`` (baseline.json) are
    ``None`` when absent. Raises :class:`ChampionError` with the reason.
    """
    import joblib  # only needed with a champion

    with tempfile.TemporaryDirectory(prefix="champion-") as tmp:
        folder = _champion_files(Path(source), Path(tmp))
        digest = sha256_file(folder / MODEL_FILE)
        own = _json_member(folder, EVALUATION_FILE)
        expected = ((own or {}).get("model") or {}).get("sha256")
        if expected and expected != digest:
            raise ChampionError(
                f"the champion's model.joblib SHA-256 is {digest} but its evaluation.json "
                f"records {expected}"
            )
        profile = _json_member(folder, PROFILE_FILE)
        baseline = _json_member(folder, BASELINE_FILE)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. pickled by another scikit-learn
                model = joblib.load(folder / MODEL_FILE)
        except Exception as exc:  # unpickling runs arbitrary code paths: any error
            raise ChampionError(
                f"cannot load the champion's model.joblib: {type(exc).__name__}: {exc}"
            ) from exc
    if not isinstance(model, dict):
        raise ChampionError(
            f"the champion's model.joblib holds a {type(model).__name__}, not the model dict"
        )
    absent = [k for k in _CHAMPION_KEYS if k not in model]
    if absent:
        raise ChampionError(f"the champion's model.joblib lacks key(s): {', '.join(absent)}")
    return {"model": model, "sha256": digest, "own": own, "profile": profile, "baseline": baseline}


def champion_metrics(
    model: dict[str, Any],
    test: pd.DataFrame,
    y_true: np.ndarray,
    classes: np.ndarray,
    positive: Any,
    minority: Any,
) -> dict[str, Any]:
    """The champion's predictions on the challenger's test rows, scored like the challenger.

    ``test`` holds the test rows (feature columns as cleaned for the challenger),
    ``classes`` the challenger's labels (its pipeline's ``classes_``). The champion decides
    with its own tuned threshold for its own positive label; the metrics use the
    challenger's positive and minority label, so the two rows of numbers mean the same.
    """
    predicted, proba = champion_predictions(model, test, classes)
    labels = [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()]
    threshold = model.get("threshold")
    return {
        "metrics": compute_metrics(y_true, predicted, proba, labels, positive, minority),
        "confusion_matrix": confusion(y_true, predicted, labels),
        "threshold": None if threshold is None else float(threshold),
        "positive_label": model.get("positive_label"),
    }


def champion_predictions(
    model: dict[str, Any], test: pd.DataFrame, classes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The champion's ``(labels, probabilities)`` on ``test``, columns in ``classes`` order."""
    labels = [c.item() if isinstance(c, np.generic) else c for c in classes.tolist()]
    features = [str(f) for f in model["features"]]
    absent = [f for f in features if f not in test.columns]
    if absent:
        shown = ", ".join(absent[:10]) + (" ..." if len(absent) > 10 else "")
        raise ChampionError(f"the champion needs feature(s) the challenger's data lacks: {shown}")
    own_labels = [str(x) for x in model["labels"]]
    if sorted(own_labels) != sorted(str(x) for x in labels):
        raise ChampionError(
            f"the champion predicts labels {own_labels}, the challenger's data has "
            f"{[str(x) for x in labels]}"
        )
    categorical = [str(f) for f in model.get("categorical") or [] if str(f) in features]
    pipeline = model["pipeline"]
    try:
        x = data.prepare_features(test, features, categorical)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = np.asarray(pipeline.predict_proba(x), dtype=float)
        own_classes = [str(x) for x in pipeline.classes_.tolist()]
    except Exception as exc:  # the champion's pipeline on these rows: any error
        raise ChampionError(
            f"cannot apply the champion to the test split: {type(exc).__name__}: {exc}"
        ) from exc
    if sorted(own_classes) != sorted(str(x) for x in labels):
        raise ChampionError(f"the champion's pipeline has classes {own_classes}")
    order = [own_classes.index(str(label)) for label in labels]
    proba = raw[:, order]  # columns in the challenger's label order
    threshold = model.get("threshold")
    own_positive = model.get("positive_label")
    keys = [str(label) for label in labels]
    if threshold is not None and own_positive is not None and len(labels) == 2:
        pos = keys.index(str(own_positive))
        chosen = np.where(proba[:, pos] >= float(threshold), pos, 1 - pos)
    else:
        chosen = proba.argmax(axis=1)
    return classes[chosen], proba


def try_load_champion(source: str | Path) -> dict[str, Any]:
    """:func:`load_champion`, or ``{"error": reason}``: never raises."""
    try:
        return load_champion(source)
    except ChampionError as exc:
        return {"error": str(exc)}
    except Exception as exc:  # never fail the job over the champion
        return {"error": f"unexpected error: {type(exc).__name__}: {exc}"}


def evaluate_champion(
    source: str | Path | dict[str, Any],
    test: pd.DataFrame,
    y_true: np.ndarray,
    classes: np.ndarray,
    positive: Any,
    minority: Any,
    package: str | None = None,
) -> dict[str, Any]:
    """``evaluation.json["champion"]``: the champion scored on the challenger's test split.

    ``source`` is where the champion is, or what :func:`try_load_champion` returned.
    ``{"metrics", "confusion_matrix", "threshold", "positive_label", "model_sha256",
    "package", "n_test", "own_metrics"}`` (``own_metrics``: from the champion's own
    evaluation.json, on its older test split, or ``None``); or ``{"error": reason,
    "package"}`` when the champion cannot be loaded or applied. Never raises: a champion
    that cannot be compared must not fail the challenger's training.
    """
    loaded = source if isinstance(source, dict) else try_load_champion(source)
    if loaded.get("error"):
        return {"error": loaded["error"], "package": package}
    model = loaded["model"]
    try:
        scored = champion_metrics(model, test, y_true, classes, positive, minority)
    except ChampionError as exc:
        return {"error": str(exc), "package": package}
    except Exception as exc:  # never fail the job over the comparison
        return {"error": f"unexpected error: {type(exc).__name__}: {exc}", "package": package}
    own_metrics = (loaded.get("own") or {}).get("metrics")
    return {
        **scored,
        "model_sha256": loaded["sha256"],
        "package": package,
        "n_test": len(y_true),
        "sklearn_version": model.get("sklearn_version"),
        "own_metrics": own_metrics if isinstance(own_metrics, dict) else None,
    }
