"""The report's model-development sections: selection, budget, calibration, diagnosis,
importance, partial dependence, fairness and the data profile, each with its picture.

Every section reads its part of ``evaluation.json`` and is left out when the job did not
produce that part (a stage the budget skipped, a multiclass task, no sensitive features).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from jobs.report import axes, png, table


def _rows_of(evaluation: dict[str, Any], key: str) -> dict[str, Any] | None:
    part = evaluation.get(key)
    return part if isinstance(part, dict) else None


def _selection(evaluation: dict[str, Any]) -> str:
    selection, budget = _rows_of(evaluation, "selection"), _rows_of(evaluation, "budget")
    if selection is None:
        return ""
    esc = html.escape
    winner = selection.get("winner")
    rows = [
        [
            "winner" if i == winner else "",
            c.get("family"),
            c.get("balance"),
            ", ".join(f"{k}={v}" for k, v in sorted((c.get("params") or {}).items())),
            c.get("validation_score"),
            c.get("validation_pr_auc"),
            c.get("fit_seconds"),
        ]
        for i, c in enumerate(selection.get("candidates") or [])
    ]
    header = ["", "family", "imbalance", "parameters", selection.get("metric"), "PR-AUC", "fit s"]
    skipped = selection.get("skipped") or []
    limit = esc(str(selection.get("budget_seconds")))
    out = (
        "<h2>Model selection</h2>\n"
        f"<p>{len(rows)} candidates scored on {esc(str(selection.get('scored_on')))} "
        f"in {esc(str(selection.get('seconds')))} s of a {limit}"
        " s search budget; the winner was refitted on train + validation and scored on test"
        " once.</p>\n"
        f"{table([str(h) for h in header], rows)}\n"
    )
    if skipped:
        out += f"<p>Skipped for time: {esc(', '.join(str(s) for s in skipped))}.</p>\n"
    if budget is not None:
        within = "within" if budget.get("within") else "OVER"
        out += (
            f"<p>Whole job: {esc(str(budget.get('spent_seconds')))} s of "
            f"{esc(str(budget.get('seconds')))} s ({within} budget).</p>\n"
        )
        stages = [
            [s.get("stage"), s.get("expected_seconds"), s.get("left_seconds")]
            for s in budget.get("skipped") or []
        ]
        if stages:
            out += table(["stage skipped", "expected s", "s left"], stages) + "\n"
    return out


def _calibration(evaluation: dict[str, Any]) -> str:
    cal = _rows_of(evaluation, "calibration")
    if cal is None:
        return ""
    esc = html.escape
    raw = cal.get("uncalibrated") or {}
    rows = [
        ["method", cal.get("method")],
        ["calibrated", cal.get("calibrated")],
        ["Brier score (test)", cal.get("brier")],
        ["Brier score before calibration (test)", raw.get("brier")],
        ["threshold tuned on", cal.get("threshold_from")],
    ]
    rows += [[f"cross-validated Brier, {k}", v] for k, v in (cal.get("cv_brier") or {}).items()]
    return (
        "<h2>Calibration</h2>\n"
        f"<p>Rule: {esc(str(cal.get('rule')))}. A calibrated probability of 0.2 means about "
        "one positive in five: live quality estimates rely on it.</p>\n"
        f"{table(['', 'value'], rows)}\n"
    )


def _diagnosis(evaluation: dict[str, Any]) -> str:
    diag = _rows_of(evaluation, "diagnosis")
    if diag is None:
        return ""
    esc = html.escape
    metric = str(diag.get("metric"))
    rows = [[part, diag.get(part)] for part in ("train", "validation", "test", "baseline")]
    out = (
        "<h2>Diagnosis</h2>\n"
        f"<p>Verdict <b>{esc(str(diag.get('verdict')))}</b> ({esc(str(diag.get('rule')))}).</p>\n"
        f"{table(['split', metric], rows)}\n"
    )
    stopped = diag.get("boosting")
    if isinstance(stopped, dict):
        how = "stopped early" if stopped.get("stopped_early") else "ran every round"
        out += (
            f"<p>Gradient boosting {how}: {esc(str(stopped.get('iterations')))} of "
            f"{esc(str(stopped.get('max_iter')))} rounds (early stopping "
            f"{'on' if stopped.get('early_stopping') else 'off'}).</p>\n"
        )
    curve = diag.get("learning_curve")
    if isinstance(curve, dict):
        points = [[p.get("rows"), p.get("train"), p.get("validation")] for p in curve["points"]]
        verdict = "more data would still help" if curve.get("still_learning") else "flattening"
        out += (
            f"<h3>Learning curve ({esc(str(curve.get('metric')))})</h3>\n"
            f"<p>{verdict} ({esc(str(curve.get('rule')))}).</p>\n"
            f"{table(['rows fitted', 'train', 'validation'], points)}\n"
        )
    return out


def _importance(evaluation: dict[str, Any]) -> str:
    imp = _rows_of(evaluation, "importance")
    if imp is None:
        return ""
    rows = [[t["feature"], t["mean"], t["std"]] for t in imp.get("top") or []]
    return (
        "<h2>Permutation importance (validation)</h2>\n"
        f"<p>Drop in {html.escape(str(imp.get('scoring')))} when a feature is shuffled, "
        f"{imp.get('repeats')} repeats on {imp.get('rows')} validation rows.</p>\n"
        f"{table(['feature', 'mean drop', 'std'], rows)}\n"
    )


def _fairness(evaluation: dict[str, Any]) -> str:
    fair = _rows_of(evaluation, "fairness")
    if fair is None:
        return ""
    esc = html.escape
    out = (
        "<h2>Fairness audit (test)</h2>\n"
        f"<p>Largest gap {esc(str(fair.get('largest_gap')))} between groups of at least "
        f"{esc(str(fair.get('min_group_rows')))} rows.</p>\n"
    )
    names = ["rows", "positives", "selection_rate", "precision", "recall"]
    names += ["false_positive_rate", "f1"]
    for column, entry in (fair.get("features") or {}).items():
        rows = [[group, *[m.get(n) for n in names]] for group, m in entry["groups"].items()]
        gaps = (
            f"demographic parity difference {entry['demographic_parity_difference']}, "
            f"equalized odds difference {entry['equalized_odds_difference']}"
            if "demographic_parity_difference" in entry
            else str(entry.get("note"))
        )
        small = entry.get("small_groups") or []
        if small:
            gaps += f"; too small to compare: {', '.join(small)}"
        out += f"<h3>{esc(column)}</h3>\n<p>{esc(gaps)}.</p>\n{table(['group', *names], rows)}\n"
    return out


def _profile(evaluation: dict[str, Any]) -> str:
    prof = _rows_of(evaluation, "profile")
    if prof is None:
        return ""
    esc = html.escape
    rows = []
    for name, item in (prof.get("features") or {}).items():
        summary = item.get("top") or item.get("quantiles")
        if isinstance(summary, dict):
            summary = ", ".join(f"{k}: {v}" for k, v in summary.items())
        elif isinstance(summary, list):
            summary = " / ".join("n/a" if q is None else f"{q:.4g}" for q in summary)
        rows.append(
            [
                name,
                item.get("type"),
                item.get("missing_share"),
                item.get("distinct"),
                summary,
                item.get("mutual_information"),
                item.get("auc"),
                ", ".join(item.get("flags") or []),
            ]
        )
    balance = ", ".join(f"{k}: {v:.2%}" for k, v in (prof.get("class_balance") or {}).items())
    flagged = prof.get("flagged") or {}
    flags = (
        "Flagged: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in flagged.items()) + "."
        if flagged
        else "No feature is flagged constant, leaky or high-cardinality."
    )
    header = ["feature", "type", "missing share", "distinct", "min/q1/median/q3/max or top"]
    header += ["mutual information", "AUC alone", "flags"]
    return (
        "<h2>Data profile</h2>\n"
        f"<p>{prof.get('rows')} rows ({prof.get('sampled_rows')} sampled for the relations); "
        f"class balance {esc(balance)}. {esc(flags)}</p>\n"
        f"{table(header, rows)}\n"
    )


def model_sections(evaluation: dict[str, Any]) -> str:
    """HTML for every model-development part the evaluation holds."""
    return "".join(
        part(evaluation)
        for part in (_selection, _diagnosis, _calibration, _importance, _fairness, _profile)
    )


def _threshold_curve(y_true: np.ndarray, score: np.ndarray, threshold: float | None) -> str:
    from sklearn.metrics import precision_recall_curve

    precision, recall, cuts = precision_recall_curve(y_true, score)
    p, r = precision[:-1], recall[:-1]
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    fig, ax = axes()
    ax.plot(cuts, p, label="precision")
    ax.plot(cuts, r, label="recall")
    ax.plot(cuts, f1, label="F1")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle=":", label=f"threshold {threshold:.3f}")
    ax.set_xlabel("decision threshold")
    ax.set_ylim(0, 1.02)
    ax.set_title("Metrics vs threshold (test)")
    ax.legend(fontsize=8)
    return png(fig)


def _reliability(cal: dict[str, Any]) -> str:
    fig, ax = axes()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    raw = cal.get("uncalibrated")
    if isinstance(raw, dict):
        curve = raw["curve"]
        ax.plot(curve["mean_predicted"], curve["fraction_positive"], "s--", label="uncalibrated")
    curve = cal["curve"]
    ax.plot(curve["mean_predicted"], curve["fraction_positive"], "o-", label="served")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction positive")
    ax.set_title(f"Reliability (test, Brier {cal.get('brier')})")
    ax.legend(fontsize=8)
    return png(fig)


def _learning(curve: dict[str, Any]) -> str:
    fig, ax = axes()
    rows = [p["rows"] for p in curve["points"]]
    for part in ("train", "validation"):
        values = [np.nan if p[part] is None else p[part] for p in curve["points"]]
        ax.plot(rows, values, "o-", label=part)
    ax.set_xlabel("rows fitted")
    ax.set_ylabel(str(curve.get("metric")))
    ax.set_title("Learning curve")
    ax.legend(fontsize=8)
    return png(fig)


def _importance_bars(imp: dict[str, Any]) -> str:
    top = list(reversed(imp.get("top") or []))
    fig, ax = axes()
    ax.barh([t["feature"] for t in top], [t["mean"] for t in top], xerr=[t["std"] for t in top])
    ax.set_xlabel(f"drop in {imp.get('scoring')}")
    ax.set_title("Permutation importance (validation)")
    return png(fig)


def _group_bars(column: str, groups: dict[str, Any]) -> str:
    names = ("selection_rate", "recall", "false_positive_rate")
    fig, ax = axes()
    keys = list(groups)
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        x = np.arange(len(keys)) + i * width
        ax.bar(x, [groups[k][name] for k in keys], width=width, label=name.replace("_", " "))
    ax.set_xticks(np.arange(len(keys)) + width, keys, rotation=45 if len(keys) > 4 else 0)
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Per group: {column} (test)")
    ax.legend(fontsize=8)
    return png(fig)


def _dependence(name: str, item: dict[str, Any]) -> str:
    fig, ax = axes()
    if item["type"] == "categorical":
        ax.bar(item["grid"], item["average"])
    else:
        ax.plot(item["grid"], item["average"], "-")
    ax.set_xlabel(name)
    ax.set_ylabel("average P(positive)")
    ax.set_title(f"Partial dependence: {name}")
    return png(fig)


def model_pictures(
    evaluation: dict[str, Any], y_true: np.ndarray, proba: np.ndarray
) -> dict[str, str]:
    """The section pictures as base64 PNGs (ImportError without matplotlib)."""
    pictures: dict[str, str] = {}
    labels, positive = list(evaluation["labels"]), evaluation.get("positive_label")
    if positive is not None and positive in labels:
        is_pos = y_true == positive
        if is_pos.any() and not is_pos.all():
            score = proba[:, labels.index(positive)]
            pictures["Metrics vs threshold"] = _threshold_curve(
                is_pos, score, evaluation.get("threshold")
            )
    cal = _rows_of(evaluation, "calibration")
    if cal is not None and isinstance(cal.get("curve"), dict):
        pictures["Reliability curve"] = _reliability(cal)
    curve = (evaluation.get("diagnosis") or {}).get("learning_curve")
    if isinstance(curve, dict):
        pictures["Learning curve"] = _learning(curve)
    imp = _rows_of(evaluation, "importance")
    if imp is not None and imp.get("top"):
        pictures["Permutation importance"] = _importance_bars(imp)
    for name, item in ((evaluation.get("partial_dependence") or {}).get("features") or {}).items():
        pictures[f"Partial dependence: {name}"] = _dependence(name, item)
    for column, entry in ((evaluation.get("fairness") or {}).get("features") or {}).items():
        pictures[f"Per group: {column}"] = _group_bars(column, entry["groups"])
    return pictures
