"""The promotion gate (pure): may a challenger's evaluation.json replace the champion?

No AWS call and nothing but the standard library. The champion's value is, when the
challenger's job measured it, the champion's metrics on the challenger's own test split
(``evaluation.json["champion"]``), else the champion's own evaluation.json.

Three outcomes, as the model registry has them: ``Approved`` (every rule holds),
``Rejected`` (a metric rule fails) and ``PendingManualApproval`` (the metrics hold but the
evidence is doubtful: the data guard tripped; or the stack wants a person for every
model, ``mlops:approvalMode=manual``). A person then approves or rejects in the registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from lambdas.evidence import (
    GuardLimits,
    data_guard_check,
    drift_excuse,
    fairness_check,
    reference_check,
    reference_loss,
)

APPROVED, REJECTED, PENDING = "Approved", "Rejected", "PendingManualApproval"
# a rule whose failure asks a person instead of refusing: the metrics may be right
# (a fairness audit that is missing or measured nothing is doubtful evidence, not a verdict)
HOLDING_RULES = frozenset({"data-guard", "fairness-audit"})
FAIRNESS_ACTIONS = ("hold", "reject")
_TOLERANCE = 1e-9  # so that 0.83 - 0.82 counts as a 0.01 margin
SAME_SPLIT = "same-split"
OWN_SPLIT = "own-split"


def is_finite_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class GateDecision:
    """The gate's verdict: every rule with whether it held and why."""

    outcome: str  # APPROVED | REJECTED | PENDING
    primary_metric: str
    challenger_value: float | None
    champion_value: float | None
    checks: tuple[tuple[str, bool, str], ...]  # (rule, held, explanation)
    # how the champion's value was measured: "same-split" (by the challenger's job, on
    # the challenger's test split), "own-split" (the champion's own evaluation.json), or
    # None (no champion, or no comparison possible)
    comparison: str | None = None
    guard: tuple[dict[str, Any], ...] = ()  # the data guard's rules, re-judged here
    manual: bool = False  # mlops:approvalMode=manual asked for a person
    holding: frozenset[str] = HOLDING_RULES  # rules whose failure holds, not rejects

    @property
    def approved(self) -> bool:
        return self.outcome == APPROVED

    @property
    def reason(self) -> str:
        """Every rule with its numbers: the failing ones first."""
        if self.approved:
            checks = list(self.checks)
            if self.comparison is not None:  # the decisive comparison first
                checks.sort(key=lambda check: check[0] != "beats-champion")
            return "approved: " + "; ".join(text for _, _, text in checks)
        failed = [text for _, held, text in self.checks if not held]
        held = [text for _, ok, text in self.checks if ok]
        if self.outcome == PENDING:
            why = failed or ["mlops:approvalMode is manual: a person approves every model"]
            head = "pending manual approval: " + "; ".join(why)
        else:
            head = "rejected: " + "; ".join(failed)
        return head + ("; held: " + "; ".join(held) if held else "")


def decide(
    checks: list[tuple[str, bool, str]],
    *,
    manual: bool = False,
    holding: frozenset[str] = HOLDING_RULES,
) -> str:
    """The outcome of a list of checks: see the module docstring."""
    failed = {rule for rule, held, _ in checks if not held}
    if failed - holding:
        return REJECTED
    return PENDING if failed or manual else APPROVED


def _metric(evaluation: Mapping[str, Any] | None, section: str, name: str) -> float | None:
    value = ((evaluation or {}).get(section) or {}).get(name)
    return float(value) if is_finite_number(value) else None


def minority_recall(evaluation: Mapping[str, Any]) -> float | None:
    """``metrics.minority_recall``, else recall of the rarest true class in the confusion matrix."""
    value = _metric(evaluation, "metrics", "minority_recall")
    if value is not None:
        return value
    matrix = evaluation.get("confusion_matrix")
    if not isinstance(matrix, list) or not matrix:
        return None
    try:
        rows = [[float(x) for x in row] for row in matrix]
    except (TypeError, ValueError):
        return None
    support = [(sum(row), i) for i, row in enumerate(rows) if sum(row) > 0]
    if not support:
        return None
    total, i = min(support)
    return rows[i][i] / total if i < len(rows[i]) else None


def same_split_champion(
    challenger: Mapping[str, Any], metric: str, champion_package: str | None = None
) -> tuple[float | None, str | None]:
    """The champion's ``metric`` measured by the challenger's job on its own test split.

    Returns ``(value, None)``, or ``(None, why not)``: no ``champion`` section (an older
    job, or a first model), the job could not apply the champion (``champion.error``), the
    metric is missing, or the section is about another package than ``champion_package``
    (the champion changed while the job ran).
    """
    section = challenger.get("champion")
    if not isinstance(section, Mapping):
        return None, None
    if section.get("error"):
        return None, f"the job could not evaluate the champion: {str(section['error'])[:160]}"
    package = section.get("package")
    if champion_package and isinstance(package, str) and package and package != champion_package:
        return None, f"the job evaluated {package}, not the current champion"
    value = _metric(section, "metrics", metric)
    if value is None:
        return None, f"the job's champion metrics lack {metric}"
    return value, None


def evaluate_gate(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    *,
    primary_metric: str | None = None,
    margin: float = 0.01,
    min_minority_recall: float = 0.5,
    champion_package: str | None = None,
    reference: Mapping[str, Any] | None = None,
    reference_tolerance: float = 0.02,
    guard_limits: GuardLimits | None = None,
    manual: bool = False,
    max_fairness_gap: float | None = None,
    fairness_action: str = "hold",
) -> GateDecision:
    """Decide whether ``challenger`` (an evaluation.json) may replace ``champion``.

    Rules (all must hold for ``Approved``):

    1. the challenger's primary metric beats the majority-class baseline's (strictly);
    2. its balanced accuracy beats the baseline's (strictly);
    3. its minority-class recall is at least ``min_minority_recall``;
    4. with a champion: primary metric >= champion's + ``margin``; no champion: holds.
       The champion's value is the one the challenger's job measured on the challenger's
       own test split (``challenger["champion"]["metrics"]``: both models on the same
       held-out data) when present, else the champion's own evaluation.json (its older
       test split). ``champion_package``: the current champion's ARN; a same-split
       measurement of another package is not used.
    5. reference set (``reference``: the current set's manifest, or ``None`` before one
       is frozen): the job scored this very set, and the challenger loses at most
       ``reference_tolerance`` of the metric to the champion there (a loss the 95%
       interval cannot tell from noise holds; so does the price of drift, see
       :func:`lambdas.evidence.drift_excuse`).
    6. data guard (:func:`lambdas.evidence.data_guard_check`): with a champion, the new
       data passed every guard rule. Failing it alone gives ``PendingManualApproval``.
    7. fairness, only with ``max_fairness_gap`` (:func:`lambdas.evidence.fairness_check`):
       no sensitive feature's gap on the test split exceeds it; over it, ``fairness_action``
       ``hold`` asks a person and ``reject`` rejects. A missing audit holds.

    ``manual``: all holding still gives ``PendingManualApproval``.
    ``primary_metric`` overrides the challenger's own ``primary_metric``.
    """
    metric = primary_metric or str(challenger.get("primary_metric") or "f1")
    value = _metric(challenger, "metrics", metric)
    checks: list[tuple[str, bool, str]] = []

    base = _metric(challenger, "baseline", metric)
    if value is None or base is None:
        checks.append(
            (
                "beats-baseline",
                False,
                f"{metric} missing from metrics or baseline of evaluation.json",
            )
        )
    else:
        checks.append(
            (
                "beats-baseline",
                value > base,
                f"{metric} {value:.4f} {'>' if value > base else '<='} majority-class {base:.4f}",
            )
        )

    ba, ba_base = (_metric(challenger, s, "balanced_accuracy") for s in ("metrics", "baseline"))
    if ba is None or ba_base is None:
        checks.append(
            ("balanced-accuracy", False, "balanced_accuracy missing from evaluation.json")
        )
    else:
        held = ba > ba_base
        checks.append(
            (
                "balanced-accuracy",
                held,
                f"balanced accuracy {ba:.4f} {'>' if held else '<='} majority-class {ba_base:.4f}",
            )
        )

    recall = minority_recall(challenger)
    if recall is None:
        checks.append(("minority-recall", False, "minority recall not available"))
    else:
        held = recall >= min_minority_recall
        checks.append(
            (
                "minority-recall",
                held,
                f"minority recall {recall:.4f} {'>=' if held else '<'} "
                f"floor {min_minority_recall:.4f}",
            )
        )

    champ = None
    comparison = None
    if champion is None:
        checks.append(("beats-champion", True, "no champion: first model"))
    else:
        champ, why_not = same_split_champion(challenger, metric, champion_package)
        if champ is not None:
            comparison, where = SAME_SPLIT, "on the same test split"
        else:
            champ = _metric(champion, "metrics", metric)
            comparison, where = OWN_SPLIT, "on the champion's own test split"
            if why_not:
                where += f" ({why_not})"
        if champ is None or value is None:
            comparison = None
            checks.append(("beats-champion", False, f"cannot compare {metric} with the champion"))
        else:
            gain = value - champ
            held = gain >= margin - _TOLERANCE
            checks.append(
                (
                    "beats-champion",
                    held,
                    f"{metric} {value:.4f} vs champion {champ:.4f} {where} "
                    f"({gain:+.4f} {'>=' if held else '<'} margin {margin:.4f})"
                    + ("" if held else ": does not gain the margin"),
                )
            )
    held, text = reference_check(
        challenger,
        metric=metric,
        reference=reference,
        tolerance=reference_tolerance,
        has_champion=champion is not None,
    )
    guard_held, guard_text, guard = data_guard_check(
        challenger, guard_limits or GuardLimits(), has_champion=champion is not None
    )
    if not held and comparison == SAME_SPLIT and champ is not None and value is not None:
        excuse = drift_excuse(
            guard, loss=reference_loss(challenger, metric, reference), gain=value - champ
        )
        if excuse:
            held, text = True, f"{text}; {excuse}"
    checks.append(("reference-set", held, text))
    checks.append(("data-guard", guard_held, guard_text))
    holding = HOLDING_RULES
    if max_fairness_gap is not None:
        if fairness_action not in FAIRNESS_ACTIONS:
            raise ValueError(f"fairness_action {fairness_action!r}: one of {FAIRNESS_ACTIONS}")
        checks.append(fairness_check(challenger, max_fairness_gap))
        if fairness_action == "hold":
            holding = holding | {"fairness-gap"}
    return GateDecision(
        outcome=decide(checks, manual=manual, holding=holding),
        primary_metric=metric,
        challenger_value=value,
        champion_value=champ,
        checks=tuple(checks),
        comparison=comparison,
        guard=tuple(guard),
        manual=manual,
        holding=holding,
    )
