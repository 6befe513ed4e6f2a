"""Metrics, decision-threshold tuning, the drift baseline and the HTML report."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import posixpath
import tarfile
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.preprocessing import label_binarize

from jobs import data
from jobs.inference import category_value, sha256_file

METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "f1_macro",
    "minority_recall",
    "mcc",
    "roc_auc",
    "pr_auc",
)
# Metrics the binary decision threshold can be tuned for; the others either do
# not depend on it (roc_auc, pr_auc) or are maximised by a degenerate threshold
# (precision, recall), so for those the threshold is tuned for f1.
TUNABLE = ("f1", "f1_macro", "accuracy", "balanced_accuracy", "mcc")


def minority_label(labels: Sequence[Any], counts: Sequence[int]) -> Any:
    """The least frequent label; ties go to the later label (1 over 0)."""
    best = min(range(len(labels)), key=lambda i: (counts[i], -i))
    return labels[best]


def _safe(fn: Callable[[], float]) -> float | None:
    """A metric that is undefined here (e.g. one class in y_true) becomes None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(fn())
        except ValueError:
            return None
    return value if math.isfinite(value) else None


def compute_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    proba: np.ndarray,
    labels: Sequence[Any],
    positive: Any,
    minority: Any,
) -> dict[str, float | None]:
    """All metrics of the contract, on one set of predictions.

    Binary: precision/recall/f1 for ``positive``; multiclass (``positive`` is
    None): macro averages, and one-vs-rest macro ROC-AUC / PR-AUC.
    """
    labels = list(labels)
    out: dict[str, float | None] = {
        "accuracy": _safe(lambda: accuracy_score(y_true, y_pred)),
        "balanced_accuracy": _safe(lambda: balanced_accuracy_score(y_true, y_pred)),
        "f1_macro": _safe(
            lambda: f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "minority_recall": _safe(
            lambda: recall_score(
                y_true, y_pred, labels=[minority], average="macro", zero_division=0
            )
        ),
        "mcc": _safe(lambda: matthews_corrcoef(y_true, y_pred)),
    }
    if positive is not None:
        pos = labels.index(positive)
        is_pos = y_true == positive
        kw: dict[str, Any] = {"pos_label": positive, "zero_division": 0}
        out["precision"] = _safe(lambda: precision_score(y_true, y_pred, **kw))
        out["recall"] = _safe(lambda: recall_score(y_true, y_pred, **kw))
        out["f1"] = _safe(lambda: f1_score(y_true, y_pred, **kw))
        out["roc_auc"] = _safe(lambda: roc_auc_score(is_pos, proba[:, pos]))
        out["pr_auc"] = _safe(lambda: average_precision_score(is_pos, proba[:, pos]))
    else:
        kw = {"labels": labels, "average": "macro", "zero_division": 0}
        out["precision"] = _safe(lambda: precision_score(y_true, y_pred, **kw))
        out["recall"] = _safe(lambda: recall_score(y_true, y_pred, **kw))
        out["f1"] = out["f1_macro"]
        onehot = label_binarize(y_true, classes=labels)
        out["roc_auc"] = _safe(
            lambda: roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
        )
        out["pr_auc"] = _safe(lambda: average_precision_score(onehot, proba, average="macro"))
    return {k: out[k] for k in METRICS}


def tune_threshold(is_pos: np.ndarray, scores: np.ndarray, metric: str) -> tuple[float, float]:
    """Threshold on ``scores`` maximising ``metric`` (predict positive if >=).

    Every distinct score is a candidate (from the ROC curve's counts); the
    returned threshold sits halfway between the chosen score and the next
    lower one, so it does not hinge on one validation row.
    """
    if metric not in TUNABLE:
        metric = "f1"
    is_pos = np.asarray(is_pos, dtype=bool)
    p = int(is_pos.sum())
    n = len(is_pos) - p
    if p == 0 or n == 0:
        return 0.5, float("nan")
    fpr, tpr, thr = roc_curve(is_pos, scores, drop_intermediate=False)
    tp = tpr * p
    fp = fpr * n
    fn = p - tp
    tn = n - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1_pos = np.nan_to_num(2 * tp / (2 * tp + fp + fn))
        f1_neg = np.nan_to_num(2 * tn / (2 * tn + fn + fp))
        values = {
            "f1": lambda: f1_pos,
            "f1_macro": lambda: (f1_pos + f1_neg) / 2,
            "accuracy": lambda: (tp + tn) / (p + n),
            "balanced_accuracy": lambda: (tpr + (1 - fpr)) / 2,
            "mcc": lambda: np.nan_to_num(
                (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
            ),
        }[metric]()
    best = int(np.argmax(values))
    if best == 0:  # predicting no positive at all was best: a useless model
        return float(np.nextafter(1.0, 2.0)), float(values[best])
    upper = float(thr[best])
    lower = float(thr[best + 1]) if best + 1 < len(thr) else upper
    return (upper + lower) / 2 if math.isfinite(upper) else lower, float(values[best])


def feature_baseline(
    frame: pd.DataFrame,
    features: Sequence[str],
    categorical: Sequence[str],
    bins: int = 10,
    max_categories: int = 200,
) -> dict[str, dict[str, Any]]:
    """Per-feature bins and proportions the drift monitor compares traffic against.

    Numeric: inner edges are the training quantiles (deduplicated), closed by
    "-inf" / "inf"; a value ``x`` falls in bin ``i`` when
    ``edges[i] <= x < edges[i + 1]`` (``bisect_right`` over the inner edges).
    Missing values and infinities (which the model treats as missing) count
    under ``missing``; bin proportions plus ``missing`` sum to 1.
    """
    out: dict[str, dict[str, Any]] = {}
    total = len(frame)
    for name in features:
        column = frame[name]
        if name in categorical:
            values = column.map(category_value, na_action="ignore")
            counts = values.value_counts(dropna=True)
            kept = counts.iloc[:max_categories]
            missing = int(values.isna().sum())
            other = int(counts.iloc[max_categories:].sum())
            out[name] = {
                "type": "categorical",
                "categories": [str(c) for c in kept.index],
                "proportions": [int(c) / total for c in kept.to_numpy()],
                "missing": missing / total,
                "other": other / total,
            }
            continue
        x = column.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = x[np.isfinite(x)]
        inner = (
            np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf"))
            if len(finite)
            else np.array([])
        )
        where = np.searchsorted(inner, finite, side="right")
        counts_arr = np.bincount(where, minlength=len(inner) + 1)
        out[name] = {
            "type": "numeric",
            "edges": ["-inf", *[float(e) for e in inner], "inf"],
            "proportions": [int(c) / total for c in counts_arr],
            "missing": (total - len(finite)) / total,
        }
    return out


# --- the champion, on the challenger's test split -------------------------------

CHAMPION_MEMBERS = ("model.joblib", "evaluation.json")
_CHAMPION_KEYS = ("pipeline", "features", "labels", "threshold", "positive_label")


class ChampionError(Exception):
    """The champion cannot be loaded or applied here; the message says why."""


def _champion_files(source: Path, workdir: Path) -> Path:
    """The folder holding the champion's ``model.joblib`` (extracting a model.tar.gz).

    ``source`` is a folder with ``model.joblib`` (an extracted model), a folder with one
    ``*.tar.gz`` (the SageMaker channel: the champion's ``model.tar.gz``), or the archive.
    Only ``model.joblib`` and ``evaluation.json`` at the archive's top level are read.
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


def load_champion(source: str | Path) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
    """Load the champion: ``(model dict, sha256 of model.joblib, its evaluation.json)``.

    The SHA-256 of ``model.joblib`` must match its ``evaluation.json`` when that file is
    there (as ``inference.model_fn`` checks); ``evaluation.json`` is ``None`` without it.
    Raises :class:`ChampionError` with the reason.
    """
    import joblib  # only needed with a champion

    with tempfile.TemporaryDirectory(prefix="champion-") as tmp:
        folder = _champion_files(Path(source), Path(tmp))
        digest = sha256_file(folder / CHAMPION_MEMBERS[0])
        own: dict[str, Any] | None = None
        if (folder / CHAMPION_MEMBERS[1]).is_file():
            try:
                own = json.loads((folder / CHAMPION_MEMBERS[1]).read_text())
            except ValueError as exc:
                raise ChampionError(f"the champion's evaluation.json is not JSON: {exc}") from exc
            expected = ((own or {}).get("model") or {}).get("sha256")
            if expected and expected != digest:
                raise ChampionError(
                    f"the champion's model.joblib SHA-256 is {digest} but its evaluation.json "
                    f"records {expected}"
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. pickled by another scikit-learn
                model = joblib.load(folder / CHAMPION_MEMBERS[0])
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
    return model, digest, own


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
    predicted = classes[chosen]
    return {
        "metrics": compute_metrics(y_true, predicted, proba, labels, positive, minority),
        "confusion_matrix": confusion(y_true, predicted, labels),
        "threshold": None if threshold is None else float(threshold),
        "positive_label": own_positive,
    }


def evaluate_champion(
    source: str | Path,
    test: pd.DataFrame,
    y_true: np.ndarray,
    classes: np.ndarray,
    positive: Any,
    minority: Any,
    package: str | None = None,
) -> dict[str, Any]:
    """``evaluation.json["champion"]``: the champion scored on the challenger's test split.

    ``{"metrics", "confusion_matrix", "threshold", "positive_label", "model_sha256",
    "package", "n_test", "own_metrics"}`` (``own_metrics``: from the champion's own
    evaluation.json, on its older test split, or ``None``); or ``{"error": reason,
    "package"}`` when the champion cannot be loaded or applied. Never raises: a champion
    that cannot be compared must not fail the challenger's training.
    """
    try:
        model, digest, own = load_champion(source)
        scored = champion_metrics(model, test, y_true, classes, positive, minority)
    except ChampionError as exc:
        return {"error": str(exc), "package": package}
    except Exception as exc:  # never fail the job over the comparison
        return {"error": f"unexpected error: {type(exc).__name__}: {exc}", "package": package}
    own_metrics = (own or {}).get("metrics")
    return {
        **scored,
        "model_sha256": digest,
        "package": package,
        "n_test": len(y_true),
        "sklearn_version": model.get("sklearn_version"),
        "own_metrics": own_metrics if isinstance(own_metrics, dict) else None,
    }


# --- report -------------------------------------------------------------------


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _thin(x: np.ndarray, y: np.ndarray, limit: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    # a curve from 200k test rows has as many points; the picture needs far fewer
    if len(x) <= limit:
        return x, y
    keep = np.unique(np.linspace(0, len(x) - 1, limit).astype(int))
    return x[keep], y[keep]


def _pictures(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: list[Any],
    positive: Any,
    threshold: float | None,
    cm: np.ndarray,
) -> dict[str, str]:
    """Confusion matrix, ROC and PR curves as base64 PNGs (needs matplotlib)."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state

    pictures = {}
    names = [str(label) for label in labels]
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            dark = cm[i, j] > cm.max() / 2
            color = "white" if dark else "black"
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color=color)
    ax.set_xticks(range(len(names)), names, rotation=45 if len(names) > 4 else 0)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test)")
    pictures["Confusion matrix"] = _png(fig)

    if positive is not None:
        curves = [(f"positive {positive}", y_true == positive, proba[:, labels.index(positive)])]
    else:
        curves = [(names[i], y_true == label, proba[:, i]) for i, label in enumerate(labels[:10])]

    roc = Figure(figsize=(4.2, 3.8))
    ax_roc = roc.subplots()
    pr = Figure(figsize=(4.2, 3.8))
    ax_pr = pr.subplots()
    for name, is_pos, score in curves:
        if is_pos.all() or not is_pos.any():
            continue
        fpr, tpr, _ = roc_curve(is_pos, score)
        auc = roc_auc_score(is_pos, score)
        ax_roc.plot(*_thin(fpr, tpr), label=f"{name} (AUC {auc:.3f})")
        precision, recall, _ = precision_recall_curve(is_pos, score)
        ap = average_precision_score(is_pos, score)
        ax_pr.plot(*_thin(recall, precision), label=f"{name} (AP {ap:.3f})")
        if threshold is not None:
            chosen = score >= threshold
            tp = float((chosen & is_pos).sum())
            ax_roc.plot(
                [float((chosen & ~is_pos).sum()) / max(1, int((~is_pos).sum()))],
                [tp / is_pos.sum()],
                "o",
                color="black",
                label=f"threshold {threshold:.3f}",
            )
            ax_pr.plot(
                [tp / is_pos.sum()], [tp / max(1.0, float(chosen.sum()))], "o", color="black"
            )
            ax_pr.axhline(float(is_pos.mean()), color="grey", linestyle=":", label="prevalence")
    ax_roc.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax_roc.set_xlabel("false positive rate")
    ax_roc.set_ylabel("true positive rate")
    ax_roc.set_title("ROC curve (test)")
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_ylim(0, 1.02)
    ax_pr.set_title("Precision-recall curve (test)")
    ax_pr.legend(loc="lower left", fontsize=8)
    pictures["ROC curve"] = _png(roc)
    pictures["Precision-recall curve"] = _png(pr)
    return pictures


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _champion_section(evaluation: dict[str, Any]) -> str:
    """The "Challenger vs champion (same test split)" part of the report ("" without one)."""
    champion = evaluation.get("champion")
    if not isinstance(champion, dict):
        return ""
    esc = html.escape
    title = "<h2>Challenger vs champion (same test split)</h2>\n"
    package = champion.get("package")
    who = f"the champion {esc(str(package))}" if package else "the champion"
    if champion.get("error"):
        return (
            f"{title}<p>{who[0].upper()}{who[1:]} could not be evaluated on this test split: "
            f"{esc(str(champion['error']))}. The promotion gate falls back to the champion's "
            "own (older) test split.</p>\n"
        )
    mine, theirs = evaluation["metrics"], champion.get("metrics") or {}
    own = champion.get("own_metrics") or {}
    rows = []
    for name in METRICS:
        a, b = mine.get(name), theirs.get(name)
        diff = a - b if isinstance(a, float) and isinstance(b, float) else None
        rows.append([name, a, b, None if diff is None else f"{diff:+.4f}", own.get(name)])
    header = ["metric", "challenger", "champion", "challenger - champion"]
    header.append("champion, own test split")
    threshold = champion.get("threshold")
    decided = f"its own threshold {threshold:.4f}" if isinstance(threshold, float) else "argmax"
    labels = list(evaluation["labels"])
    cm = champion.get("confusion_matrix") or []
    cm_rows = [[str(label), *cm[i]] for i, label in enumerate(labels) if i < len(cm)]
    corner = "true \\ predicted"
    return (
        f"{title}<p>Both models on the same {champion.get('n_test')} test rows; {who} "
        f"decides with {decided}. The last column is the champion's own evaluation on the "
        "test split of its training data, for reference only: after drift it is not "
        "comparable.</p>\n"
        f"{_table(header, rows)}\n"
        "<h3>Champion's confusion matrix (same test split)</h3>\n"
        f"{_table([corner, *[str(label) for label in labels]], cm_rows)}\n"
        f"<p>Champion model SHA-256 <code>{esc(str(champion.get('model_sha256')))}</code>.</p>\n"
    )


def render_report(
    evaluation: dict[str, Any], y_true: np.ndarray, proba: np.ndarray
) -> tuple[str, bool]:
    """The self-contained HTML report; returns (html, whether pictures were drawn)."""
    esc = html.escape
    labels = list(evaluation["labels"])
    cm = np.asarray(evaluation["confusion_matrix"])
    try:
        pictures = _pictures(
            y_true, proba, labels, evaluation["positive_label"], evaluation["threshold"], cm
        )
        note = ""
    except ImportError:
        pictures = {}
        note = "<p><em>matplotlib is not installed here: tables only, no pictures.</em></p>"

    checks = evaluation["data_checks"]
    metric_rows = [
        [name, evaluation["metrics"].get(name), evaluation["baseline"].get(name)]
        for name in METRICS
    ]
    cm_rows = [[str(label), *cm[i].tolist()] for i, label in enumerate(labels)]
    check_rows = [
        ["rows in", checks["rows_in"]],
        ["rows used", checks["rows_out"]],
        ["duplicate rows dropped", checks["duplicates_dropped"]],
        ["rows without a label dropped", checks["target_missing_dropped"]],
        [
            "train / validation / test rows",
            f"{evaluation['n_train']} / {evaluation['n_validation']} / {evaluation['n_test']}",
        ],
    ]
    columns = [*evaluation["features"], evaluation["target"]]
    missing_rows = [
        [c, checks["missing_values"].get(c, 0), checks["infinities"].get(c, 0)]
        for c in columns
        if checks["missing_values"].get(c, 0) or checks["infinities"].get(c, 0)
    ]
    missing_table = (
        _table(["column", "missing", "infinities"], missing_rows)
        if missing_rows
        else f"<p>None in any of the {len(columns)} columns.</p>"
    )
    class_rows = list(checks["class_counts"].items())
    hp_rows = sorted(evaluation["hyperparameters"].items())
    images = "".join(
        f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(title)}</figcaption></figure>"
        for title, data in pictures.items()
    )
    warn = "".join(f"<li>{esc(w)}</li>" for w in evaluation.get("warnings", []))
    primary = evaluation["primary_metric"]
    threshold = evaluation["threshold"]
    summary = (
        f"Task <b>{esc(evaluation['task'])}</b>, model <b>{esc(evaluation['model_type'])}</b>, "
        f"primary metric <b>{esc(primary)}</b> = {esc(_fmt(evaluation['metrics'].get(primary)))} "
        f"(majority-class baseline {esc(_fmt(evaluation['baseline'].get(primary)))})"
    )
    if threshold is not None:
        summary += (
            f"; positive label <b>{esc(str(evaluation['positive_label']))}</b>, decision "
            f"threshold {threshold:.4f} tuned on validation"
        )
    corner = "true \\ predicted"
    champion_section = _champion_section(evaluation)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Training report {esc(evaluation["created_at"])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
</style></head><body>
<h1>Training report</h1>
<p>{summary}.</p>
<p>All metrics are measured on the test split ({evaluation["n_test"]} rows), which the model
never saw during fitting or threshold tuning. Created {esc(evaluation["created_at"])}.</p>
<h2>Metrics (test)</h2>
{_table(["metric", "model", "majority-class baseline"], metric_rows)}
{champion_section}<h2>Confusion matrix (rows: true, columns: predicted)</h2>
{_table([corner, *[str(label) for label in labels]], cm_rows)}
{note}{images}
<h2>Data checks</h2>
{_table(["check", "value"], check_rows)}
<h3>Class counts (after cleaning)</h3>
{_table(["class", "rows"], class_rows)}
<h3>Missing values and infinities (as read; the model imputes both)</h3>
{missing_table}
<h2>Hyperparameters</h2>
{_table(["name", "value"], hp_rows)}
{"<h2>Warnings</h2><ul>" + warn + "</ul>" if warn else ""}
<p>Model file {esc(evaluation["model"]["file"])}, SHA-256
<code>{esc(evaluation["model"]["sha256"])}</code>.</p>
</body></html>
"""
    return page, bool(pictures)


def confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> list[list[int]]:
    """Confusion matrix as lists, rows = true label in ``labels`` order."""
    return confusion_matrix(y_true, y_pred, labels=list(labels)).tolist()
