"""What promote also reads when a challenger goes on trial (``mlops:rolloutMode`` shadow or
ab): the variants' captures, the ground-truth labels and SageMaker's variant metrics."""

from __future__ import annotations

from infra.naming import Names
from infra.policies.grants import list_prefixes, objects
from infra.policies.statements import Statement, allow
from lambdas import constants as c


def trial_statements(n: Names) -> list[Statement]:
    """Read-only: the trial's evidence (lambdas/trial_evidence.py); writes nothing new."""
    capture_prefix = f"{n.endpoint}/"  # SageMaker writes <endpoint>/<variant>/YYYY/…
    return [
        list_prefixes("ListTrialCaptures", n, n.capture_bucket, [capture_prefix]),
        allow("ReadTrialCaptures", ["s3:GetObject"], objects(n, n.capture_bucket, capture_prefix)),
        list_prefixes("ListTrialLabels", n, n.raw_bucket, [c.GROUND_TRUTH_PREFIX]),
        allow("ReadTrialLabels", ["s3:GetObject"], objects(n, n.raw_bucket, c.GROUND_TRUTH_PREFIX)),
        # cloudwatch:GetMetricStatistics has no resource-level permission (and no
        # namespace condition key): "*" is the only valid resource. It reads, never writes.
        allow("ReadVariantMetrics", ["cloudwatch:GetMetricStatistics"], "*"),
    ]
