"""The frozen reference set: labelled rows every challenger and its champion are scored on.

``s3://<artifacts>/reference/current.json`` names the set in force: its CSV
(``reference/<id>/reference.csv``, written once), SHA-256, row count, where it came
from and who set it. promote freezes the first approved model's test split (the job's
``test.csv`` in ``output.tar.gz``); a person replaces it with ``mlops reference set``.
Every change also leaves ``reference/history/<time>-<digest>.json``. Jobs never write
here; ``lambdas.training`` gives the set to every job as its ``reference`` channel.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from lambdas import constants as c
from lambdas.aws import (
    Clients,
    error_code,
    error_text,
    get_json,
    parse_s3_uri,
    publish_alert,
    put_json,
    read_tar_members,
    sse_args,
)
from lambdas.config import Config, JsonDict
from lambdas.errors import ControlPlaneError
from lambdas.handling import iso, utcnow

MAX_REFERENCE_BYTES = 100 * 1024 * 1024
MIN_REFERENCE_ROWS = 20


class ReferenceError(ControlPlaneError):
    """The reference set cannot be read, made or replaced; the message says why."""


def current_reference(config: Config, clients: Any) -> JsonDict | None:
    """The manifest of the reference set in force, or ``None`` before one is frozen."""
    config.require("artifacts_bucket")
    doc = get_json(
        clients.s3, config.artifacts_bucket or "", c.REFERENCE_MANIFEST_KEY, denied_as_missing=True
    )
    if doc is None:
        return None
    if not isinstance(doc, dict) or not doc.get("uri") or not doc.get("sha256"):
        raise ReferenceError(f"{c.REFERENCE_MANIFEST_KEY} is not a reference manifest")
    return doc


def has_reference(config: Config, clients: Any) -> bool:
    """Is a reference set in force? A manifest that cannot be read counts as one (never
    overwritten unseen)."""
    try:
        return current_reference(config, clients) is not None
    except (ClientError, ReferenceError):
        return True


def _shape(body: bytes, target: str | None) -> tuple[list[str], int]:
    """The CSV's header and row count; raises :class:`ReferenceError` naming the problem."""
    try:
        reader = csv.reader(io.StringIO(body.decode("utf-8-sig")))
        header = next(reader, [])
        rows = sum(1 for row in reader if row)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ReferenceError(f"the reference set is not a UTF-8 CSV: {exc}") from None
    if not header:
        raise ReferenceError("the reference set has no header row")
    if target and target not in header:
        raise ReferenceError(f"the reference set has no target column {target!r}")
    if rows < MIN_REFERENCE_ROWS:
        raise ReferenceError(f"the reference set has {rows} rows; at least {MIN_REFERENCE_ROWS}")
    return header, rows


def set_reference(
    config: Config,
    clients: Any,
    body: bytes,
    *,
    source: Mapping[str, Any],
    set_by: str,
    reason: str,
    target: str | None = None,
) -> JsonDict:
    """Make ``body`` (a labelled CSV with a header) the reference set in force.

    The CSV is stored once under its digest; the manifest and a history record say
    where it came from (``source``), who set it and why. Returns the new manifest.
    """
    config.require("artifacts_bucket")
    if len(body) > MAX_REFERENCE_BYTES:
        raise ReferenceError(f"the reference set is over {MAX_REFERENCE_BYTES} bytes")
    header, rows = _shape(body, target)
    digest = hashlib.sha256(body).hexdigest()
    bucket = config.artifacts_bucket or ""
    key = f"{c.REFERENCE_PREFIX}{digest[:16]}/reference.csv"
    # the key is the bytes' digest: writing it again writes the same bytes
    clients.s3.put_object(
        Bucket=bucket, Key=key, Body=body, ContentType="text/csv", **sse_args(config.kms_key_arn)
    )
    now = iso(utcnow())
    manifest: JsonDict = {
        "version": 1,
        "uri": f"s3://{bucket}/{key}",
        "sha256": digest,
        "rows": rows,
        "columns": header,
        "source": dict(source),
        "set_by": set_by,
        "set_at": now,
        "reason": reason,
    }
    put_json(clients.s3, bucket, c.REFERENCE_MANIFEST_KEY, manifest, config.kms_key_arn)
    stamp = now.replace(":", "").replace("-", "")
    put_json(
        clients.s3,
        bucket,
        f"{c.REFERENCE_PREFIX}history/{stamp}-{digest[:12]}.json",
        manifest,
        config.kms_key_arn,
    )
    return manifest


def job_test_split(config: Config, clients: Any, job_name: str) -> bytes:
    """The test split a training job wrote (``test.csv`` in its ``output.tar.gz``)."""
    uri = f"s3://{config.artifacts_bucket}/{c.TRAINING_PREFIX}{job_name}/output/{c.OUTPUT_ARCHIVE}"
    try:
        members = read_tar_members(clients.s3, uri, [c.TEST_SPLIT_FILE])
    except ClientError as exc:
        raise ReferenceError(f"cannot read {uri}: {error_code(exc)}") from None
    if c.TEST_SPLIT_FILE not in members:
        raise ReferenceError(f"{uri} holds no {c.TEST_SPLIT_FILE}")
    return members[c.TEST_SPLIT_FILE]


def freeze_job_test_split(
    config: Config,
    clients: Any,
    job_name: str,
    *,
    package_arn: str | None,
    set_by: str,
    reason: str,
) -> JsonDict:
    """Make ``job_name``'s test split the reference set (promote: the first approved model)."""
    body = job_test_split(config, clients, job_name)
    return set_reference(
        config,
        clients,
        body,
        source={"kind": "job", "job": job_name, "package": package_arn},
        set_by=set_by,
        reason=reason,
    )


def freeze_first_reference(
    config: Config, clients: Clients, job_name: str, package_arn: str
) -> str:
    """The first approved model's test split becomes the reference set; never fails promotion."""
    try:
        manifest = freeze_job_test_split(
            config,
            clients,
            job_name,
            package_arn=package_arn,
            set_by="promote (first approved model)",
            reason="no reference set yet: the first approved model's test split",
        )
    except (ClientError, ReferenceError) as exc:
        why = f"reference set not frozen: {error_text(exc)}"
        publish_alert(
            clients.sns,
            config.alert_topic_arn,
            f"[mlops] {config.model_name}: no reference set",
            {"model": config.model_name, "job": job_name, "reason": why},
        )
        return why
    return f"frozen: {manifest['uri']} ({manifest['rows']} rows, sha256 {manifest['sha256']})"


def reference_bucket_key(manifest: Mapping[str, Any]) -> tuple[str, str]:
    return parse_s3_uri(str(manifest["uri"]))
