"""What a rollout's trial measured, and the verdict on it.

Per variant, since the trial began: ``Invocations``, ``Invocation4XXErrors``,
``Invocation5XXErrors`` and the mean ``ModelLatency`` from SageMaker's CloudWatch metrics
(namespace ``AWS/SageMaker``, dimensions ``EndpointName`` and ``VariantName``; a shadow
variant publishes them too). From the captures (one-row records with an inference ID, as
the quality monitor joins them): the shadow's agreement with the champion on the same
requests, and each variant's live primary metric on the rows ground truth has labelled.

:func:`judge` is pure: the numbers and the settings in, the verdict out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lambdas import constants as c
from lambdas.aws import Clients
from lambdas.config import Config, JsonDict
from lambdas.ground_truth import Labels
from lambdas.quality_data import Captured, norm_label, read_captures, read_labels
from lambdas.quality_metrics import realised

NAMESPACE = "AWS/SageMaker"
MAX_DATAPOINTS = 1440  # GetMetricStatistics answers at most this many per call
LATENCY_FLOOR_MS = 1.0  # below a millisecond apart, latencies are the same

WAITING, PROMOTE, WITHDRAW = "waiting", "promote", "withdraw"


@dataclass
class VariantStats:
    """One variant's traffic since the trial began."""

    requests: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    latency_ms: float | None = None  # mean model latency of the answered requests
    labelled: int = 0  # its predictions ground truth has labelled
    live: float | None = None  # its primary metric on those rows

    @property
    def error_rate(self) -> float | None:
        return self.errors_5xx / self.requests if self.requests else None


@dataclass
class Evidence:
    mode: str
    primary: str
    champion: VariantStats
    challenger: VariantStats
    agreement: float | None = None  # shadow: share of paired requests with the same label
    paired: int = 0
    hours: float = 0.0  # since the trial's config began serving
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> JsonDict:
        out = asdict(self)
        for side in ("champion", "challenger"):
            out[side]["error_rate"] = getattr(self, side).error_rate
        return out


def metric_period(start: datetime, end: datetime, *, now: datetime) -> int:
    """A GetMetricStatistics period for ``[start, end]``: within its datapoint limit
    (with a margin: CloudWatch rounds the start down), and as coarse as CloudWatch keeps
    data that old (1-minute points for 15 days, 5-minute for 63, then hourly)."""
    seconds = max(60.0, (end - start).total_seconds())
    period = 60 * max(1, math.ceil(seconds / (MAX_DATAPOINTS - 2) / 60))
    age = now - start
    step = 3600 if age > timedelta(days=63) else 300 if age > timedelta(days=15) else 60
    return step * math.ceil(period / step)


def _totals(
    clients: Clients, endpoint: str, variant: str, metric: str, start: datetime, end: datetime
) -> tuple[float, float]:
    """``(sum, sample count)`` of one metric of one variant over ``[start, end]``."""
    period = metric_period(start, end, now=end)
    answer = clients.cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName=metric,
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": variant},
        ],
        StartTime=start,
        EndTime=max(end, start + timedelta(seconds=60)),  # the API wants start < end
        Period=period,
        Statistics=["Sum", "SampleCount"],
    )
    points = answer.get("Datapoints", [])
    return (
        sum(float(p.get("Sum", 0.0)) for p in points),
        sum(float(p.get("SampleCount", 0.0)) for p in points),
    )


def variant_stats(
    clients: Clients, endpoint: str, variant: str, start: datetime, end: datetime
) -> VariantStats:
    """A variant's requests, errors and mean latency from CloudWatch."""
    requests, _ = _totals(clients, endpoint, variant, "Invocations", start, end)
    e4, _ = _totals(clients, endpoint, variant, "Invocation4XXErrors", start, end)
    e5, _ = _totals(clients, endpoint, variant, "Invocation5XXErrors", start, end)
    latency, answered = _totals(clients, endpoint, variant, "ModelLatency", start, end)
    return VariantStats(
        requests=round(requests),
        errors_4xx=round(e4),
        errors_5xx=round(e5),
        latency_ms=latency / answered / 1000 if answered else None,  # microseconds
    )


def _live(stats: VariantStats, captured: Captured, labels: Labels, spec: Mapping[str, Any]) -> None:
    known, positive = set(spec["labels"]), spec["positive"]
    rows = [
        (norm_label(labels.by_id[i]), s)
        for i, s in captured.served.items()
        if i in labels.by_id and norm_label(labels.by_id[i]) in known
    ]
    stats.labelled = len(rows)
    if rows:
        scores = realised(
            [t == positive for t, _ in rows],
            [s.predicted == positive for _, s in rows],
            [s.score for _, s in rows],
        )
        value = scores.get(spec["primary"])
        stats.live = None if value is None else float(value)


def gather(
    config: Config,
    clients: Clients,
    *,
    mode: str,
    live_variant: str,
    start: datetime,
    end: datetime,
    spec: Mapping[str, Any] | None,
) -> Evidence:
    """The trial's numbers; ``spec`` (:func:`lambdas.quality.champion_spec` of the
    challenger) is needed for agreement and live quality (binary models), else skipped."""
    endpoint = config.endpoint_name or ""
    evidence = Evidence(
        mode=mode,
        primary=str(spec["primary"]) if spec else "f1",
        champion=variant_stats(clients, endpoint, live_variant, start, end),
        challenger=variant_stats(clients, endpoint, c.CHALLENGER_VARIANT_NAME, start, end),
        hours=(end - start).total_seconds() / 3600,
    )
    if spec is None or not config.capture_on:
        evidence.problems.append("no captures to compare (capture off, or not a binary model)")
        return evidence
    problems: list[str] = []
    ours = read_captures(
        config, clients, start, end, spec, problems, variants=[live_variant], earlier=False
    )
    theirs = read_captures(
        config,
        clients,
        start,
        end,
        spec,
        problems,
        variants=[c.CHALLENGER_VARIANT_NAME],
        earlier=False,
    )
    if mode == "shadow":
        paired = [i for i in theirs.served if i in ours.served]
        evidence.paired = len(paired)
        if paired:
            same = sum(ours.served[i].predicted == theirs.served[i].predicted for i in paired)
            evidence.agreement = same / len(paired)
    labels = read_labels(config, clients, start, end, problems)
    _live(evidence.champion, ours, labels, spec)
    _live(evidence.challenger, theirs, labels, spec)
    evidence.problems += problems[:20]
    return evidence


@dataclass(frozen=True)
class Verdict:
    outcome: str  # waiting | promote | withdraw
    checks: tuple[tuple[str, bool | None, str], ...]  # (rule, held; None: not measured, why)
    reason: str


def judge(evidence: Evidence, config: Config) -> Verdict:
    """Promote, withdraw, or wait for ``mlops:rolloutMinRequests`` challenger requests.

    Rules (a rule that could not be measured neither holds nor trips):
    ``error-rate`` the challenger's 5XX rate at most the champion's plus
    ``MLOPS_ROLLOUT_MAX_ERROR_INCREASE``; ``latency`` its mean model latency at most
    ``MLOPS_ROLLOUT_MAX_LATENCY_RATIO`` times the champion's (or within a millisecond);
    ``agreement`` (shadow) at least ``MLOPS_ROLLOUT_MIN_AGREEMENT`` of paired requests
    answered alike; ``live-quality`` with at least ``MLOPS_QUALITY_MIN_ROWS`` labelled rows
    each, its primary metric no more than ``MLOPS_QUALITY_TOLERANCE`` below the champion's.
    """
    ours, theirs = evidence.champion, evidence.challenger
    if theirs.requests < config.rollout_min_requests:
        why = f"challenger served {theirs.requests} of {config.rollout_min_requests} requests"
        if evidence.hours < config.rollout_max_hours:
            return Verdict(WAITING, (), why)
        # a doubled fleet is not kept for ever on a trial that cannot conclude
        why += f" in {evidence.hours:.0f} hours (at most {config.rollout_max_hours})"
        return Verdict(WITHDRAW, (("traffic", False, why),), f"traffic: {why}")
    checks: list[tuple[str, bool | None, str]] = []
    champion_rate = ours.error_rate or 0.0
    rate = theirs.error_rate or 0.0
    limit = champion_rate + config.rollout_max_error_increase
    checks.append(
        ("error-rate", rate <= limit, f"5XX rate {rate:.4f} vs champion {champion_rate:.4f}")
    )
    if ours.latency_ms is None or theirs.latency_ms is None:
        checks.append(("latency", None, "no model latency measured for both"))
    else:
        allowed = max(
            ours.latency_ms * config.rollout_max_latency_ratio, ours.latency_ms + LATENCY_FLOOR_MS
        )
        checks.append(
            (
                "latency",
                theirs.latency_ms <= allowed,
                f"mean {theirs.latency_ms:.2f} ms vs champion {ours.latency_ms:.2f} ms "
                f"(at most {allowed:.2f})",
            )
        )
    if evidence.mode == "shadow":
        if evidence.agreement is None:
            checks.append(("agreement", None, "no paired captured predictions"))
        else:
            checks.append(
                (
                    "agreement",
                    evidence.agreement >= config.rollout_min_agreement,
                    f"{evidence.agreement:.4f} of {evidence.paired} requests answered alike "
                    f"(at least {config.rollout_min_agreement})",
                )
            )
    enough = min(ours.labelled, theirs.labelled) >= config.quality_min_rows
    if not enough or ours.live is None or theirs.live is None:
        checks.append(
            (
                "live-quality",
                None,
                f"labelled rows {theirs.labelled} / champion {ours.labelled} "
                f"(fewer than {config.quality_min_rows})",
            )
        )
    else:
        floor = ours.live - config.quality_tolerance
        checks.append(
            (
                "live-quality",
                theirs.live >= floor,
                f"live {evidence.primary} {theirs.live:.4f} vs champion {ours.live:.4f} over "
                f"{theirs.labelled} / {ours.labelled} labelled rows (at least {floor:.4f})",
            )
        )
    tripped = [f"{rule}: {why}" for rule, held, why in checks if held is False]
    if tripped:
        return Verdict(WITHDRAW, tuple(checks), "; ".join(tripped))
    held = [f"{rule}: {why}" for rule, ok, why in checks if ok]
    return Verdict(PROMOTE, tuple(checks), "; ".join(held) or "no rule tripped")
