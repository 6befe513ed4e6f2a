"""The raw data under ``incoming/``: the objects a job trains on, and their data version.

Each object is recorded in ``lineage/<job>.json``; the data version (a hash over their
keys and ETags) keys the retrain handler's at-most-once guard.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from lambdas import constants as c
from lambdas.config import JsonDict


def list_incoming(s3: Any, bucket: str) -> list[JsonDict]:
    """The current version of every object under ``incoming/`` in the raw bucket.

    Each item is ``{"bucket", "key", "version_id", "etag", "size"}`` (the lineage format);
    ETags lose their quotes; an unversioned bucket reports version ``"null"``.
    """
    objects: list[JsonDict] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=c.INCOMING_PREFIX):
        for version in page.get("Versions", []):
            if not version.get("IsLatest", True):
                continue
            objects.append(
                {
                    "bucket": bucket,
                    "key": version["Key"],
                    "version_id": version.get("VersionId") or "null",
                    "etag": version.get("ETag", "").strip('"'),
                    "size": int(version.get("Size", 0)),
                    "source": source_of(version["Key"]),
                }
            )
    objects.sort(key=lambda o: o["key"])
    return objects


def source_of(key: str) -> str:
    """``"feedback"`` for the quality monitor's joined labelled rows, else ``"ingested"``."""
    name = key.rsplit("/", 1)[-1]
    return "feedback" if name.startswith(c.FEEDBACK_FILE_PREFIX) else "ingested"


def data_version(objects: Iterable[Mapping[str, Any]]) -> str:
    """sha256 (hex) of the sorted lines ``key<TAB>etag`` joined by ``\\n`` (ETag unquoted)."""
    lines = sorted(f"{o['key']}\t{str(o['etag']).strip(chr(34))}" for o in objects)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
