"""The gate's evidence beyond the test split (pure): the frozen reference set, the data guard.

A challenger's test split comes from the same data it learned from, so garbage labels
make it look good there. Two checks do not depend on that data: its score on the frozen
reference set (rows no job trains on) against the champion's score on the same rows, and
the data guard, the job's comparison of the new data with the champion's profile
(``evaluation.json["data_guard"]``, see docs/contracts.md). The job reports each guard
rule's value; the thresholds applied here are the stack's (``mlops:maxLabelShift`` ...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOLERANCE = 1e-9


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class GuardLimits:
    """The stack's thresholds for the data guard's rules."""

    max_label_shift: float = 0.1
    min_label_agreement: float = 0.25
    min_label_learnability: float = 0.25
    max_duplicate_share: float = 0.2

    def limit(self, rule: str) -> tuple[str, float] | None:
        """``("max"|"min", threshold)`` for a guard rule this stack sets, else ``None``."""
        return {
            "label-shift": ("max", self.max_label_shift),
            "label-agreement": ("min", self.min_label_agreement),
            "label-learnability": ("min", self.min_label_learnability),
            "duplicates": ("max", self.max_duplicate_share),
            "class-coverage": ("max", 0.0),
            "schema": ("max", 0.0),
        }.get(rule)


def judge_guard_rule(check: Mapping[str, Any], limits: GuardLimits) -> dict[str, Any]:
    """One rule of ``data_guard.checks`` re-judged with this stack's threshold.

    Returns ``{"rule", "value", "threshold", "held", "severity", "detail"}``. A value the
    job could not compute keeps the job's verdict; a rule this stack has no threshold for
    keeps the job's threshold and verdict.
    """
    rule = str(check.get("rule") or "?")
    value = _number(check.get("value"))
    severity = "info" if check.get("severity") == "info" else "guard"
    threshold = _number(check.get("threshold"))
    held = bool(check.get("held"))
    bound = limits.limit(rule)
    if bound is not None:
        kind, threshold = bound
        if value is not None:
            held = value <= threshold + _TOLERANCE if kind == "max" else value >= threshold
    return {
        "rule": rule,
        "value": value,
        "threshold": threshold,
        "held": held,
        "severity": severity,
        "detail": str(check.get("detail") or "")[:300],
    }


def _shown(rule: Mapping[str, Any]) -> str:
    value, threshold = rule["value"], rule["threshold"]
    if value is None:
        text = f"{rule['rule']} n/a"
    else:
        text = f"{rule['rule']} {value:.4g}"
        if threshold is not None:
            if rule["rule"] in {"label-agreement", "label-learnability"}:
                text += f" {'>=' if rule['held'] else '<'} {threshold:.4g}"
            else:
                text += f" {'<=' if rule['held'] else '>'} {threshold:.4g}"
    if not rule["held"] and rule["detail"]:
        text += f" ({rule['detail'][:120]})"
    return text


def data_guard_check(
    evaluation: Mapping[str, Any], limits: GuardLimits, *, has_champion: bool
) -> tuple[bool, str, list[dict[str, Any]]]:
    """``(held, explanation, rules)`` for the gate's ``data-guard`` rule.

    Without a champion there is nothing to compare with: holds. With one, the job must
    have checked its data: a missing section or an ``error`` status trips the rule, as
    does any ``guard`` rule over its threshold. ``info`` rules (feature drift) never do:
    drift is a reason to retrain, not to refuse.
    """
    section = evaluation.get("data_guard")
    if not has_champion:
        return True, "data guard: no champion to compare the new data with", []
    if not isinstance(section, Mapping):
        return False, "data guard: the job did not check its new data against the champion", []
    status = section.get("status")
    if status == "skipped":
        why = str(section.get("reason") or "no reason given")[:200]
        return True, f"data guard skipped: {why}", []
    if status != "checked":
        why = str(section.get("reason") or status or "no status")[:200]
        return False, f"data guard could not run: {why}", []
    checks = section.get("checks")
    rules = [
        judge_guard_rule(check, limits)
        for check in (checks if isinstance(checks, list) else [])
        if isinstance(check, Mapping)
    ]
    guards = [r for r in rules if r["severity"] == "guard"]
    if not guards:
        return False, "data guard: the job reported no guard rule", rules
    tripped = [r for r in guards if not r["held"]]
    rows = section.get("new_rows")
    head = f"data guard on {rows} new rows" if isinstance(rows, int) else "data guard"
    shown = "; ".join(_shown(r) for r in (tripped or guards))
    info = [r for r in rules if r["severity"] == "info" and not r["held"]]
    if info:
        shown += "; info: " + ", ".join(_shown(r) for r in info)
    if tripped:
        return False, f"{head}: tripped: {shown}", rules
    return True, f"{head}: held: {shown}", rules


def reference_check(
    evaluation: Mapping[str, Any],
    *,
    metric: str,
    reference: Mapping[str, Any] | None,
    tolerance: float,
    has_champion: bool,
) -> tuple[bool, str]:
    """``(held, explanation)`` for the ``reference-set`` rule.

    ``reference`` is the current reference set's manifest (``sha256``, ``uri``), or
    ``None`` before there is one. The job must have scored this very set (its digest),
    and the challenger may not lose more than ``tolerance`` of ``metric`` to the champion
    on it.
    """
    if reference is None:
        return True, "reference set: none frozen yet"
    want = str(reference.get("sha256") or "")
    section = evaluation.get("reference")
    if not isinstance(section, Mapping):
        return False, f"reference set: the job was not scored on reference {want[:12]}"
    got = str(section.get("sha256") or "")
    if got != want:
        return False, f"reference set: the job scored {got[:12] or 'nothing'}, not {want[:12]}"
    if section.get("error"):
        return False, f"reference set: the job could not score it: {str(section['error'])[:160]}"
    value = _number((section.get("metrics") or {}).get(metric))
    if value is None:
        return False, f"reference set: the challenger's {metric} is missing"
    rows = section.get("n")
    where = f"on the reference set ({rows} rows)" if isinstance(rows, int) else "on the reference"
    champion = section.get("champion")
    if not has_champion:
        return True, f"reference set: {metric} {value:.4f} {where}; no champion to compare"
    champ = None
    if isinstance(champion, Mapping) and not champion.get("error"):
        champ = _number((champion.get("metrics") or {}).get(metric))
    if champ is None:
        why = champion.get("error") if isinstance(champion, Mapping) else None
        return False, f"reference set: the champion's {metric} is missing" + (
            f": {str(why)[:160]}" if why else ""
        )
    loss = champ - value
    head = f"reference set: {metric} {value:.4f} vs champion {champ:.4f} {where} ({-loss:+.4f}"
    if loss <= tolerance + _TOLERANCE:
        return True, f"{head}, within tolerance {tolerance:.4f})"
    # beyond the tolerance: a regression only if the paired bootstrap says it is one
    interval = _interval(section.get("difference"), metric)
    if interval is None:
        return False, f"{head}, beyond tolerance {tolerance:.4f})"
    low, high = interval
    shown = f"95% interval of the difference [{low:+.4f}, {high:+.4f}]"
    if high >= -tolerance - _TOLERANCE:
        return True, f"{head}, {shown} reaches -{tolerance:.4f}: not a clear regression)"
    return False, f"{head}, {shown} entirely below -{tolerance:.4f}: a regression)"


def _interval(difference: Any, metric: str) -> tuple[float, float] | None:
    """The job's paired-bootstrap interval of challenger - champion, if it is for ``metric``."""
    if not isinstance(difference, Mapping) or difference.get("metric") != metric:
        return None
    low, high = _number(difference.get("low")), _number(difference.get("high"))
    if low is None or high is None or low > high:
        return None
    return low, high


def reference_loss(
    evaluation: Mapping[str, Any], metric: str, reference: Mapping[str, Any] | None
) -> float | None:
    """Champion minus challenger on the reference set, when the job scored this very set."""
    section = evaluation.get("reference")
    if reference is None or not isinstance(section, Mapping) or section.get("error"):
        return None
    if str(section.get("sha256") or "") != str(reference.get("sha256") or ""):
        return None
    value = _number((section.get("metrics") or {}).get(metric))
    champion = section.get("champion")
    champ = None
    if isinstance(champion, Mapping):
        champ = _number((champion.get("metrics") or {}).get(metric))
    return None if value is None or champ is None else champ - value


def drift_excuse(
    guard: list[dict[str, Any]], *, loss: float | None, gain: float | None
) -> str | None:
    """Why a loss on the reference set is the price of drift, not a regression; else None.

    The reference set speaks for the distribution it was frozen from. When the data
    guard checked the new rows and every label rule held (the labels still mean what
    they meant), the features drifted (``feature-psi`` over its threshold) and the
    challenger gains more on the current test split than it loses on the old rows, the
    loss is what adapting costs. Drifted but correctly labelled data must not be refused.
    """
    guards = [r for r in guard if r["severity"] == "guard"]
    drifted = [r for r in guard if r["rule"] == "feature-psi" and not r["held"]]
    if not guards or not all(r["held"] for r in guards) or not drifted:
        return None
    if loss is None or gain is None or not 0 < loss <= gain:
        return None
    return (
        f"held: the new data drifted (feature-psi {drifted[0]['value']:.4g}) with every label "
        f"rule holding, and the challenger gains {gain:+.4f} on the current test split for "
        f"{-loss:+.4f} on the old reference rows; refresh the reference set "
        "(mlops reference set JOB) once the old distribution is gone"
    )


FAIRNESS_GAPS = ("demographic_parity_difference", "equalized_odds_difference")


def fairness_check(challenger: Mapping[str, Any], max_gap: float) -> tuple[str, bool, str]:
    """Rule ``fairness-gap`` or ``fairness-audit``: ``(rule, held, explanation)``.

    ``fairness-gap``: no sensitive feature's demographic-parity or equalized-odds
    difference (test split, groups with enough rows) exceeds ``max_gap``. ``fairness-audit``
    (fails only when the audit is missing or measured no gap: evidence, not a verdict).
    """
    section = challenger.get("fairness")
    if not isinstance(section, Mapping) or not isinstance(section.get("features"), Mapping):
        return (
            "fairness-audit",
            False,
            f"mlops:maxFairnessGap is {max_gap:g} but the job ran no fairness audit "
            "(set the sensitive-features hyperparameter)",
        )
    worst: tuple[float, str, str] | None = None
    unmeasured = []
    for column, entry in sorted(section["features"].items()):
        gaps = (
            [(_number(entry.get(k)), k) for k in FAIRNESS_GAPS]
            if isinstance(entry, Mapping)
            else []
        )
        measured = [(v, k) for v, k in gaps if v is not None]
        if not measured:
            unmeasured.append(str(column))
        for value, kind in measured:
            if worst is None or value > worst[0]:
                worst = (value, str(column), kind)
    if worst is None:
        return (
            "fairness-audit",
            False,
            "the fairness audit measured no gap (fewer than two groups with "
            f"{section.get('min_group_rows')}+ rows in {', '.join(unmeasured) or 'any feature'})",
        )
    value, column, kind = worst
    held = value <= max_gap + 1e-9
    text = (
        f"largest fairness gap {value:.4f} ({kind.replace('_', ' ')} over {column}) "
        f"{'<=' if held else '>'} mlops:maxFairnessGap {max_gap:.4f}"
    )
    if unmeasured:
        text += f"; not measured for {', '.join(unmeasured)} (groups too small)"
    return "fairness-gap", held, text
