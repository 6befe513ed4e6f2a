"""``report.html``: one self-contained page of metrics, data checks and pictures.

The confusion matrix, ROC and precision-recall curves are drawn by scikit-learn's
displays onto Agg figures and embedded as base64 PNGs. Without matplotlib (the
SageMaker scikit-learn image may lack it) the page keeps its tables only.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from jobs.metrics import METRICS

_FIGSIZE = (4.2, 3.8)


def axes() -> tuple[Any, Any]:
    """A figure on its own Agg canvas and its axes: no pyplot figure, no GUI backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=_FIGSIZE)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _pictures(
    y_true: np.ndarray,
    proba: np.ndarray,
    labels: list[Any],
    positive: Any,
    threshold: float | None,
    cm: np.ndarray,
) -> dict[str, str]:
    """Confusion matrix, ROC and PR curves as base64 PNGs (ImportError without matplotlib)."""
    fig, ax = axes()  # first: without matplotlib nothing below is imported
    from sklearn.metrics import ConfusionMatrixDisplay, PrecisionRecallDisplay, RocCurveDisplay

    names = [str(label) for label in labels]
    # by row: on a 1:99 set the minority row would be invisible in raw counts
    totals = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
    ConfusionMatrixDisplay(shares, display_labels=names).plot(
        ax=ax,
        cmap="Blues",
        colorbar=False,
        values_format=".2f",
        xticks_rotation=45 if len(names) > 4 else "horizontal",
    )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion matrix (test): share of each true class")
    pictures = {"Confusion matrix": png(fig)}

    if positive is not None:
        curves = [(f"positive {positive}", y_true == positive, proba[:, labels.index(positive)])]
    else:
        curves = [(names[i], y_true == label, proba[:, i]) for i, label in enumerate(labels[:10])]

    roc, ax_roc = axes()
    pr, ax_pr = axes()
    for name, is_pos, score in curves:
        if is_pos.all() or not is_pos.any():
            continue
        RocCurveDisplay.from_predictions(is_pos, score, pos_label=True, name=name, ax=ax_roc)
        PrecisionRecallDisplay.from_predictions(is_pos, score, pos_label=True, name=name, ax=ax_pr)
        if threshold is not None:  # the operating point the tuned threshold picks
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
    pictures["ROC curve"] = png(roc)
    pictures["Precision-recall curve"] = png(pr)
    return pictures


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
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
        f"{table(header, rows)}\n"
        "<h3>Champion's confusion matrix (same test split)</h3>\n"
        f"{table([corner, *[str(label) for label in labels]], cm_rows)}\n"
        f"<p>Champion model SHA-256 <code>{esc(str(champion.get('model_sha256')))}</code>.</p>\n"
    )


def render_report(
    evaluation: dict[str, Any], y_true: np.ndarray, proba: np.ndarray
) -> tuple[str, bool]:
    """The self-contained HTML report; returns (html, whether pictures were drawn)."""
    from jobs.report_model import model_pictures, model_sections  # they import axes, table

    esc = html.escape
    labels = list(evaluation["labels"])
    cm = np.asarray(evaluation["confusion_matrix"])
    try:
        pictures = _pictures(
            y_true, proba, labels, evaluation["positive_label"], evaluation["threshold"], cm
        )
        pictures.update(model_pictures(evaluation, y_true, proba))
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
        table(["column", "missing", "infinities"], missing_rows)
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
    from jobs.report_evidence import evidence_sections  # it imports this module's table

    champion_section = _champion_section(evaluation) + evidence_sections(evaluation)
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
{table(["metric", "model", "majority-class baseline"], metric_rows)}
{champion_section}<h2>Confusion matrix (rows: true, columns: predicted)</h2>
{table([corner, *[str(label) for label in labels]], cm_rows)}
{note}{images}
{model_sections(evaluation)}<h2>Data checks</h2>
{table(["check", "value"], check_rows)}
<h3>Class counts (after cleaning)</h3>
{table(["class", "rows"], class_rows)}
<h3>Missing values and infinities (as read; the model imputes both)</h3>
{missing_table}
<h2>Hyperparameters</h2>
{table(["name", "value"], hp_rows)}
{"<h2>Warnings</h2><ul>" + warn + "</ul>" if warn else ""}
<p>Model file {esc(evaluation["model"]["file"])}, SHA-256
<code>{esc(evaluation["model"]["sha256"])}</code>.</p>
</body></html>
"""
    return page, bool(pictures)
