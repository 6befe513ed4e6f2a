"""Data capture of local endpoints: one capture writer per endpoint variant.

With an endpoint config's ``DataCaptureConfig`` enabled, each invocation is
written to its ``DestinationS3Uri`` (``<endpoint>/<variant>/YYYY/MM/DD/HH/*.jsonl``,
with its ``KmsKeyId``) by :class:`mlops.endpoint.CaptureWriter`, as SageMaker
does. Writers are made on first use and closed when the endpoint moves to
another config or is deleted.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from mlops.localcloud.awsutil import ClientFactory

logger = logging.getLogger(__name__)

EndpointKey = tuple[str, str, str]  # (account, region, endpoint name)


class DataCapture:
    """The capture writers of the endpoints served, by (account, region, endpoint, variant)."""

    def __init__(self, clients: ClientFactory) -> None:
        self.clients = clients
        self._lock = threading.Lock()
        self._writers: dict[tuple[str, str, str, str], Any] = {}

    def capture(
        self,
        key: EndpointKey,
        config: dict[str, Any],
        variant: str,
        region: str,
        body: bytes,
        content_type: str,
        answer: bytes,
        answer_type: str,
        inference_id: str | None = None,
    ) -> None:
        """Record one invocation, if ``config`` (a ``DataCaptureConfig``) asks for it."""
        if (
            not config
            or not config.get("EnableCapture", True)
            or not config.get("DestinationS3Uri")
        ):
            return
        capture_key = (*key, variant)
        with self._lock:
            writer = self._writers.get(capture_key)
            if writer is None:
                from mlops.endpoint import CaptureWriter

                try:
                    writer = CaptureWriter.from_data_capture_config(
                        config,
                        endpoint_name=key[2],
                        variant_name=variant,
                        s3_client=self.clients("s3", region),
                        max_seconds=1.0,
                    )
                except Exception as exc:
                    logger.warning("endpoint %s: data capture off: %s", key[2], exc)
                    return
                if writer is None:
                    return
                self._writers[capture_key] = writer
        writer.capture(body, content_type, answer, answer_type, inference_id)

    def flush(self, close: bool = False) -> None:
        """Write every queued capture record now; with ``close`` the writers are done."""
        with self._lock:
            writers = list(self._writers.items())
            if close:
                self._writers.clear()
        for _, writer in writers:
            if close:
                writer.close()
            else:
                writer.flush()

    def close_endpoint(self, key: EndpointKey) -> None:
        """Close the endpoint's writers (it serves another config now, or is gone)."""
        with self._lock:
            stale = [k for k in self._writers if k[:3] == key]
            writers = [self._writers.pop(k) for k in stale]
        for writer in writers:
            writer.close()
