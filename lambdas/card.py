"""A model card per model package: what was approved, on which data, by which rules.

Pure builders (:func:`build_card`, :func:`render_card_html`, :func:`apply_approval`) and
the S3 side (:func:`write_card`, :func:`read_card`). The card is a JSON-safe dict,
``card_version`` 1; a section the inputs lack is ``null``, never invented. Promote writes
it under ``models/<job>/`` and records the JSON's URI in the package's
``CustomerMetadataProperties`` as :data:`CARD_PROPERTY`. Standard library and boto3 only.
"""

from __future__ import annotations

import copy
import html
import json
import math
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws import error_code, error_text, parse_s3_uri, sse_args
from lambdas.config import JsonDict
from lambdas.errors import ControlPlaneError

CARD_VERSION = 1
CARD_PROPERTY = "mlops:card"  # CustomerMetadataProperties key: s3:// URI of card.json
CARD_JSON = "card.json"
CARD_HTML = "card.html"
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
METRIC_KEYS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc")
MAX_LISTED_OBJECTS = 50  # a card stays readable; the lineage record has them all


class CardError(ControlPlaneError, ValueError):
    """A model card is missing, unreadable or malformed; the message names it."""


# --- building ----------------------------------------------------------------------------


def build_card(
    *,
    model_name: str,
    package_arn: str,
    package_version: int | None,
    job_name: str,
    approval: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    gate: list[Mapping[str, Any]],
    lineage: Mapping[str, Any] | None,
    digests: Mapping[str, str] | None,
    model_data_url: str | None,
    created_at: str,
    primary_metric: str | None = None,
) -> JsonDict:
    """The card of one model package (see the module doc); raises :class:`CardError`.

    ``approval``: ``{"status", "by", "at", "description"}`` (status one of
    :data:`APPROVAL_STATUSES`). ``evaluation``: the job's evaluation.json, possibly partial
    or ``None``. ``gate``: the gate's rules as promote reports them (``{"rule", "held",
    "why"}``). ``lineage``: ``lineage/<job>.json`` or ``None``. ``primary_metric``: the
    gate's metric when it overrode the evaluation's own.
    """
    evaluation = evaluation if isinstance(evaluation, Mapping) else {}
    primary = primary_metric or _str_or_none(evaluation.get("primary_metric"))
    guard = evaluation.get("data_guard")
    card: JsonDict = {
        "card_version": CARD_VERSION,
        "model": model_name,
        "package": {"arn": package_arn, "version": package_version},
        "job": job_name,
        "created_at": created_at,
        "approval": _approval(approval),
        "data": _data(lineage),
        "metrics": _metrics(evaluation, primary),
        "data_guard": dict(guard) if isinstance(guard, Mapping) else None,
        "gate": _gate(gate),
        "artifacts": {"model_data_url": model_data_url, "sha256": dict(digests or {})},
    }
    return _json_safe(card)


def apply_approval(
    card: Mapping[str, Any], *, status: str, by: str, at: str, description: str | None = None
) -> JsonDict:
    """A copy of ``card`` with a later approval (a human's); the previous one is kept,
    last, in ``approval_history``."""
    updated = copy.deepcopy(dict(card))
    history = list(updated.get("approval_history") or [])
    if updated.get("approval") is not None:
        history.append(updated["approval"])
    updated["approval"] = _approval(
        {"status": status, "by": by, "at": at, "description": description}
    )
    updated["approval_history"] = history
    return updated


def _approval(approval: Mapping[str, Any]) -> JsonDict:
    if not isinstance(approval, Mapping):
        raise CardError(f"approval must be a dict with status/by/at, not {approval!r}")
    status = approval.get("status")
    if status not in APPROVAL_STATUSES:
        raise CardError(f"approval status {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    return {
        "status": status,
        "by": _str_or_none(approval.get("by")),
        "at": _str_or_none(approval.get("at")),
        "description": _str_or_none(approval.get("description")),
    }


def _data(lineage: Mapping[str, Any] | None) -> JsonDict | None:
    if not isinstance(lineage, Mapping):
        return None
    objects = [o for o in lineage.get("objects") or [] if isinstance(o, Mapping)]
    listed = [
        {k: o.get(k) for k in ("bucket", "key", "version_id", "etag")}
        for o in objects[:MAX_LISTED_OBJECTS]
    ]
    return {
        "data_version": lineage.get("data_version"),
        "count": len(objects),
        "versions": listed,
        "truncated": len(objects) > len(listed),
    }


def _metrics(evaluation: Mapping[str, Any], primary: str | None) -> JsonDict | None:
    if not evaluation:
        return None
    keys = METRIC_KEYS + ((primary,) if primary and primary not in METRIC_KEYS else ())
    champion = _section(evaluation, "champion")
    reference = _section(evaluation, "reference")
    return {
        "primary": primary,
        "test": _subset(evaluation.get("metrics"), keys),
        "baseline": _subset(evaluation.get("baseline"), keys),
        "champion_same_split": _subset(champion.get("metrics"), keys),
        "champion_package": _str_or_none(champion.get("package")),
        "reference": _subset(reference.get("metrics"), keys),
        "reference_champion": _subset(_section(reference, "champion").get("metrics"), keys),
    }


def _section(doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = doc.get(name)
    return value if isinstance(value, Mapping) else {}


def _subset(metrics: Any, keys: tuple[str, ...]) -> JsonDict | None:
    if not isinstance(metrics, Mapping):
        return None
    return {k: metrics[k] for k in keys if k in metrics}


def _gate(gate: list[Mapping[str, Any]]) -> list[JsonDict]:
    rules = []
    for i, check in enumerate(gate or []):
        if not isinstance(check, Mapping) or "rule" not in check or "held" not in check:
            raise CardError(f"gate[{i}] is not a {{rule, held, why}} dict: {check!r}")
        rules.append(
            {"rule": str(check["rule"]), "held": bool(check["held"]), "why": str(check.get("why"))}
        )
    return rules


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_safe(value: Any) -> Any:
    """Plain JSON: NaN and infinities become null, tuples lists, other objects strings."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


# --- HTML --------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:72rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}"
    ".ok{color:#17803d}.bad{color:#b42318}.primary{font-weight:bold}"
    "code{font-size:.9em}"
)


def render_card_html(card: Mapping[str, Any]) -> str:
    """A short self-contained HTML page of the card; everything from data is escaped."""
    e = _esc
    package = card.get("package") or {}
    approval = card.get("approval") or {}
    title = f"{card.get('model')} v{package.get('version')}"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Model card: {e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Model card: {e(title)}</h1>",
        _definitions(
            [
                ("package", package.get("arn")),
                ("job", card.get("job")),
                ("created", card.get("created_at")),
                ("approval", approval.get("status")),
                ("by", approval.get("by")),
                ("at", approval.get("at")),
                ("description", approval.get("description")),
            ]
        ),
    ]
    history = card.get("approval_history") or []
    if history:
        rows = [[h.get("status"), h.get("by"), h.get("at"), h.get("description")] for h in history]
        parts += ["<h2>Earlier approvals</h2>", _table(["status", "by", "at", "why"], rows)]
    parts += ["<h2>Metrics</h2>", _metrics_html(card.get("metrics"))]
    gate = card.get("gate") or []
    parts.append("<h2>Gate</h2>")
    parts.append(
        _table(
            ["rule", "held", "why"],
            [[g.get("rule"), _mark(g.get("held")), g.get("why")] for g in gate],
        )
        if gate
        else "<p>no gate rules recorded</p>"
    )
    parts += ["<h2>Data guard</h2>", _guard_html(card.get("data_guard"))]
    parts += ["<h2>Data versions</h2>", _data_html(card.get("data"))]
    artifacts = card.get("artifacts") or {}
    digests = sorted((artifacts.get("sha256") or {}).items())
    parts += [
        "<h2>Artifacts</h2>",
        _definitions([("model data", artifacts.get("model_data_url")), *digests]),
        "</body></html>",
    ]
    return "\n".join(parts)


def _esc(value: Any) -> str:
    return html.escape("-" if value is None else str(value), quote=True)


class _Raw(str):
    """Markup built here (not data): inserted without escaping."""


def _mark(held: Any) -> _Raw:
    return _Raw("<span class='ok'>✓</span>" if held else "<span class='bad'>✗</span>")


def _cell(value: Any) -> str:
    if isinstance(value, _Raw):
        return f"<td>{value}</td>"
    if isinstance(value, float):
        return f"<td class='num'>{value:.4f}</td>"
    return f"<td>{_esc(value)}</td>"


def _table(header: list[str], rows: list[list[Any]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{row_class[i]}'" if row_class and row_class[i] else ""
        body.append(f"<tr{cls}>" + "".join(_cell(v) for v in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _definitions(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


METRIC_COLUMNS = (
    ("test", "test"),
    ("baseline", "baseline"),
    ("champion_same_split", "champion (same split)"),
    ("reference", "reference"),
    ("reference_champion", "champion (reference)"),
)


def metric_rows(metrics: Mapping[str, Any] | None) -> tuple[list[str], list[list[Any]]]:
    """(column titles, rows of metric name then one value per present column)."""
    if not metrics:
        return [], []
    columns = [(key, title) for key, title in METRIC_COLUMNS if metrics.get(key)]
    names = [n for n in (*METRIC_KEYS, metrics.get("primary")) if n]
    names = [n for i, n in enumerate(names) if n not in names[:i]]
    names = [n for n in names if any(n in metrics[key] for key, _ in columns)]
    rows = [[n, *(metrics[key].get(n) for key, _ in columns)] for n in names]
    return ["metric", *(title for _, title in columns)], rows


def _metrics_html(metrics: Mapping[str, Any] | None) -> str:
    header, rows = metric_rows(metrics)
    if not rows:
        return "<p>no metrics recorded</p>"
    primary = (metrics or {}).get("primary")
    classes = ["primary" if row[0] == primary else "" for row in rows]
    note = (
        f"<p>champion scored: {_esc(metrics['champion_package'])}</p>"
        if metrics and metrics.get("champion_package")
        else ""
    )
    return _table(header, rows, classes) + note


GUARD_COLUMNS = ("rule", "value", "threshold", "held", "severity", "detail")


def _guard_html(guard: Mapping[str, Any] | None) -> str:
    if not guard:
        return "<p>no data guard recorded</p>"
    head = f"<p>status <b>{_esc(guard.get('status'))}</b>: {_esc(guard.get('reason'))}</p>"
    checks = [c for c in guard.get("checks") or [] if isinstance(c, Mapping)]
    rows = [[_mark(c.get(k)) if k == "held" else c.get(k) for k in GUARD_COLUMNS] for c in checks]
    return head + (_table(list(GUARD_COLUMNS), rows) if rows else "")


def _data_html(data: Mapping[str, Any] | None) -> str:
    if not data:
        return "<p>no lineage recorded</p>"
    rows = [
        [f"s3://{v.get('bucket')}/{v.get('key')}", v.get("version_id"), v.get("etag")]
        for v in data.get("versions") or []
    ]
    more = int(data.get("count") or 0) - len(rows)
    return (
        f"<p>data version <code>{_esc(data.get('data_version'))}</code>, "
        f"{_esc(data.get('count'))} objects</p>"
        + _table(["object", "version", "ETag"], rows)
        + (f"<p>… and {more} more (see the lineage record)</p>" if more > 0 else "")
    )


# --- S3 ----------------------------------------------------------------------------------


def write_card(
    s3_client: Any, bucket: str, prefix: str, card: Mapping[str, Any], kms_key_arn: str | None
) -> dict[str, str]:
    """Write ``<prefix>card.json`` and ``<prefix>card.html`` (SSE-KMS with a key);
    returns ``{"json": uri, "html": uri}``."""
    if prefix and not prefix.endswith("/"):
        raise CardError(f"card prefix {prefix!r} must end with '/' (e.g. models/<job>/)")
    bodies = {
        "json": (CARD_JSON, json.dumps(card, indent=2, sort_keys=True), "application/json"),
        "html": (CARD_HTML, render_card_html(card), "text/html; charset=utf-8"),
    }
    uris = {}
    for kind, (name, text, content_type) in bodies.items():
        key = f"{prefix}{name}"
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=text.encode(),
            ContentType=content_type,
            **sse_args(kms_key_arn),
        )
        uris[kind] = f"s3://{bucket}/{key}"
    return uris


def read_card(s3_client: Any, uri: str) -> JsonDict:
    """The card at ``uri`` (``s3://bucket/key``); :class:`CardError` naming the URI when it
    is missing, unreadable or not a card."""
    try:
        bucket, key = parse_s3_uri(uri)
    except ValueError as exc:
        raise CardError(f"model card URI {uri!r}: {exc}") from None
    try:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if error_code(exc) in {"NoSuchKey", "404", "NotFound", "NoSuchBucket"}:
            raise CardError(f"no model card at {uri}") from None
        raise CardError(f"cannot read the model card {uri}: {error_text(exc)}") from None
    try:
        card = json.loads(body)
    except ValueError as exc:
        raise CardError(f"{uri} is not a model card: not JSON ({exc})") from None
    if not isinstance(card, dict) or "card_version" not in card or "approval" not in card:
        raise CardError(f"{uri} is not a model card: no card_version/approval")
    if card["card_version"] != CARD_VERSION:
        raise CardError(
            f"{uri} is a version {card['card_version']!r} card; this code reads {CARD_VERSION}"
        )
    return card
