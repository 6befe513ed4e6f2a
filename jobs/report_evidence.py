"""The report's evidence beyond the test split: the data guard and the reference set."""

from __future__ import annotations

import html
from typing import Any

from jobs.report import table


def evidence_sections(evaluation: dict[str, Any]) -> str:
    """HTML for ``data_guard`` and ``reference`` ("" when the job had neither)."""
    return _guard(evaluation.get("data_guard")) + _reference(evaluation)


def _guard(guard: Any) -> str:
    if not isinstance(guard, dict):
        return ""
    esc = html.escape
    title = "<h2>Data guard (new rows vs the champion's training data)</h2>\n"
    if guard.get("status") != "checked":
        why = esc(str(guard.get("reason") or guard.get("status")))
        return f"{title}<p>{esc(str(guard.get('status')))}: {why}.</p>\n"
    rows = [
        [
            check.get("rule"),
            check.get("value"),
            check.get("threshold"),
            "held" if check.get("held") else "TRIPPED",
            check.get("severity"),
            check.get("detail") or "",
        ]
        for check in guard.get("checks") or []
    ]
    files = ", ".join(str(f) for f in guard.get("new_files") or [])
    return (
        f"{title}<p>{guard.get('new_rows')} new rows from {esc(files)}. The job's verdicts "
        "use its hyperparameters; promote re-judges each value with the stack's thresholds. "
        "Info rules never refuse a model.</p>\n"
        + table(["rule", "value", "threshold", "verdict", "kind", "detail"], rows)
    )


def _reference(evaluation: dict[str, Any]) -> str:
    section = evaluation.get("reference")
    if not isinstance(section, dict):
        return ""
    esc = html.escape
    title = "<h2>Reference set (frozen rows no model trains on)</h2>\n"
    if section.get("error"):
        return f"{title}<p>Not scored: {esc(str(section['error']))}.</p>\n"
    mine = section.get("metrics") or {}
    theirs = (section.get("champion") or {}).get("metrics") or {}
    rows = [[name, value, theirs.get(name)] for name, value in mine.items()]
    difference = section.get("difference") or {}
    interval = ""
    if "low" in difference:
        interval = (
            f" Challenger - champion {esc(str(difference.get('metric')))}: "
            f"{difference['value']:+.4f}, 95% paired-bootstrap interval "
            f"[{difference['low']:+.4f}, {difference['high']:+.4f}]."
        )
    return (
        f"{title}<p>{section.get('n')} rows, SHA-256 <code>{esc(str(section.get('sha256')))}"
        f"</code>.{interval}</p>\n" + table(["metric", "challenger", "champion"], rows)
    )
