"""SageMaker data capture: successful invocations recorded as JSON lines, in batches.

Into the capture bucket (S3 through boto3, moto included) or a local folder with the
same layout.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.endpoint.media import CSV, media_type

logger = logging.getLogger(__name__)

DEFAULT_VARIANT = "AllTraffic"


def _encoding(media_type: str, data: bytes, csv_types: frozenset[str]) -> tuple[str, str]:
    """SageMaker capture ``(encoding, data)``: text for CSV/JSON, base64 otherwise."""
    kind = "CSV" if media_type in csv_types else "JSON" if "json" in media_type else ""
    if kind:
        try:
            return kind, data.decode()
        except UnicodeDecodeError:
            pass
    return "BASE64", base64.b64encode(data).decode("ascii")


@dataclass(slots=True)
class _Event:
    when: float
    request: bytes
    request_type: str
    response: bytes
    response_type: str
    inference_id: str | None


class CaptureWriter:
    """Write SageMaker data-capture records to S3 or to a local folder, in batches.

    Objects land at ``[<prefix>/]<endpoint>/<variant>/YYYY/MM/DD/HH/<uuid>.jsonl``
    (hour of the inference, UTC), one JSON record a line, as SageMaker writes them.
    :meth:`capture` only queues the event; a background thread writes a batch every
    ``max_records`` events or ``max_seconds`` seconds, and :meth:`close` writes the
    rest. A failed write is logged and counted (``errors``, ``dropped``), never raised:
    capture must not fail a request.

    Parameters
    ----------
    endpoint_name, variant_name : str
        First two parts of the object keys.
    s3_client, bucket : optional
        A boto3 S3 client and the capture bucket; or give ``directory``.
    prefix : str
        Key prefix inside the bucket (the path part of ``DestinationS3Uri``).
    kms_key_id : str, optional
        Encrypt objects with this KMS key (``SSEKMSKeyId``).
    directory : Path, optional
        Write the same layout under this folder instead of S3.
    sample_percent : float
        Share of invocations captured, 0 to 100.
    capture_input, capture_output : bool
        SageMaker's ``CaptureOptions`` (``Input`` / ``Output``).
    """

    def __init__(
        self,
        *,
        endpoint_name: str,
        variant_name: str = DEFAULT_VARIANT,
        s3_client: Any = None,
        bucket: str | None = None,
        prefix: str = "",
        kms_key_id: str | None = None,
        directory: Path | str | None = None,
        sample_percent: float = 100.0,
        capture_input: bool = True,
        capture_output: bool = True,
        csv_content_types: Sequence[str] = (CSV,),
        max_records: int = 500,
        max_seconds: float = 5.0,
        max_buffered: int = 100_000,
    ) -> None:
        if directory is None and (s3_client is None or not bucket):
            raise ValueError("CaptureWriter needs s3_client and bucket, or directory")
        if not 0 <= sample_percent <= 100:
            raise ValueError(f"sample_percent must be within 0..100, got {sample_percent}")
        self.endpoint_name, self.variant_name = endpoint_name, variant_name
        self.s3_client, self.bucket, self.kms_key_id = s3_client, bucket, kms_key_id
        self.prefix = prefix.strip("/")
        self.directory = Path(directory) if directory is not None else None
        self.sample_percent = float(sample_percent)
        self.capture_input, self.capture_output = capture_input, capture_output
        self._csv_types = frozenset(media_type(t) for t in csv_content_types)
        self.max_records, self.max_seconds, self.max_buffered = (
            max_records,
            max_seconds,
            max_buffered,
        )
        self.captured = 0  # events accepted (sampled in)
        self.written = 0  # records stored
        self.objects = 0  # objects (files) stored
        self.errors = 0  # failed writes
        self.dropped = 0  # records lost to failed writes or a full buffer
        self._buffer: list[_Event] = []
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()
        self._closed = False
        self._random = random.Random()  # sampling, not security
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._thread.start()

    @classmethod
    def from_data_capture_config(
        cls,
        config: dict[str, Any],
        *,
        endpoint_name: str,
        variant_name: str = DEFAULT_VARIANT,
        s3_client: Any,
        **kwargs: Any,
    ) -> CaptureWriter | None:
        """Build from an endpoint config's ``DataCaptureConfig``; None when capture is off."""
        if not config or not config.get("EnableCapture", True):
            return None
        uri = config["DestinationS3Uri"]
        if not uri.startswith("s3://"):
            raise ValueError(f"DestinationS3Uri must be an s3:// URI, got {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        modes = {option.get("CaptureMode") for option in config.get("CaptureOptions") or []}
        header = config.get("CaptureContentTypeHeader") or {}
        return cls(
            endpoint_name=endpoint_name,
            variant_name=variant_name,
            s3_client=s3_client,
            bucket=bucket,
            prefix=prefix,
            kms_key_id=config.get("KmsKeyId"),
            sample_percent=float(config.get("InitialSamplingPercentage", 100)),
            capture_input=not modes or "Input" in modes,
            capture_output=not modes or "Output" in modes,
            csv_content_types=header.get("CsvContentTypes") or (CSV,),
            **kwargs,
        )

    # -- request path: keep it cheap ------------------------------------------------

    def capture(
        self,
        request: bytes,
        content_type: str,
        response: bytes,
        accept: str,
        inference_id: str | None = None,
    ) -> bool:
        """Queue one invocation (if sampled in); True when it was queued.

        ``inference_id`` is the caller's ``InferenceId``: the key ground-truth labels
        are joined on (``eventMetadata.inferenceId``)."""
        if self._closed or self.sample_percent <= 0:
            return False
        if self.sample_percent < 100 and self._random.random() * 100 >= self.sample_percent:
            return False
        event = _Event(time.time(), request, content_type, response, accept, inference_id)
        with self._cond:
            if len(self._buffer) >= self.max_buffered:
                self.dropped += 1
                return False
            self._buffer.append(event)
            self.captured += 1
            if len(self._buffer) >= self.max_records:
                self._cond.notify()
        return True

    # -- writing -------------------------------------------------------------------------

    def _record(self, event: _Event) -> dict[str, Any]:
        """The SageMaker capture record for one event."""
        data: dict[str, Any] = {}
        if self.capture_input:
            ct = media_type(event.request_type)
            encoding, text = _encoding(ct, event.request, self._csv_types)
            data["endpointInput"] = {
                "observedContentType": event.request_type,
                "mode": "INPUT",
                "data": text,
                "encoding": encoding,
            }
        if self.capture_output:
            ct = media_type(event.response_type)
            encoding, text = _encoding(ct, event.response, self._csv_types)
            data["endpointOutput"] = {
                "observedContentType": event.response_type,
                "mode": "OUTPUT",
                "data": text,
                "encoding": encoding,
            }
        when = datetime.fromtimestamp(event.when, UTC)
        metadata = {"eventId": str(uuid.uuid4())}
        if event.inference_id is not None:
            metadata["inferenceId"] = event.inference_id
        metadata["inferenceTime"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}

    def _key(self, hour: str) -> str:
        parts = [self.prefix] if self.prefix else []
        parts += [self.endpoint_name, self.variant_name, hour, f"{uuid.uuid4()}.jsonl"]
        return "/".join(parts)

    def _put(self, key: str, payload: bytes) -> None:
        if self.directory is not None:
            path = self.directory / key
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.partial")  # readers never see half a file
            partial.write_bytes(payload)
            partial.replace(path)
            return
        extra: dict[str, str] = {}
        if self.kms_key_id:
            extra = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}
        self.s3_client.put_object(
            Bucket=self.bucket, Key=key, Body=payload, ContentType="application/jsonl", **extra
        )

    def _write(self, events: list[_Event]) -> None:
        by_hour: dict[str, list[str]] = {}
        for event in events:
            hour = datetime.fromtimestamp(event.when, UTC).strftime("%Y/%m/%d/%H")
            by_hour.setdefault(hour, []).append(json.dumps(self._record(event)))
        for hour, lines in by_hour.items():
            key = self._key(hour)
            try:
                self._put(key, ("\n".join(lines) + "\n").encode())
            except Exception as exc:  # S3 down, bucket gone, disk full: never the caller's problem
                self.errors += 1
                self.dropped += len(lines)
                logger.warning(
                    "data capture: could not write %d record(s) to %s: %s", len(lines), key, exc
                )
            else:
                self.written += len(lines)
                self.objects += 1

    def flush(self) -> None:
        """Write every queued event now."""
        with self._write_lock:
            with self._cond:
                events, self._buffer = self._buffer, []
            if events:
                self._write(events)

    def _run(self) -> None:
        while True:
            deadline = time.monotonic() + self.max_seconds
            with self._cond:
                while not self._closed and len(self._buffer) < self.max_records:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                closed = self._closed
            self.flush()
            if closed:
                return

    def close(self) -> None:
        """Write what is queued and stop the background writer."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()
        self.flush()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
