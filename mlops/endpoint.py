"""The local endpoint: one model served over the SageMaker inference container contract.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` takes
``text/csv`` or ``application/json`` (``Content-Type``) and answers in the type the
``Accept`` header picks (default: the request's type). The work is done by the
serving functions of ``jobs/inference.py`` (``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``), exactly as the SageMaker scikit-learn container calls them.

Successful invocations can be recorded in SageMaker's data-capture format by a
:class:`CaptureWriter`, into the capture bucket (S3 through boto3, moto included)
or into a local folder with the same layout.

The HTTP server is the standard library's threading server kept thin: HTTP/1.1
keep-alive, ``Content-Length`` always set, every response (status line, headers and
body) sent in one write with ``TCP_NODELAY`` on, and no per-request logging.
A response split over two small packets would stall a keep-alive client for the
delayed-ACK timeout (~40 ms) on every request.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import hashlib
import importlib
import io
import json
import logging
import os
import random
import signal
import socket
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

CSV = "text/csv"
JSON = "application/json"
SUPPORTED_TYPES = (CSV, JSON)
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints' request limit
_DRAIN_LIMIT = 64 * 1024 * 1024  # read and discard an oversized body up to this, then reply
_IDLE_TIMEOUT_S = 65.0  # keep-alive connections idle longer than this are closed
MODEL_FILE = "model.joblib"  # same names as lambdas.constants, which must stay light
EVALUATION_FILE = "evaluation.json"
BASELINE_FILE = "baseline.json"
DEFAULT_VARIANT = "AllTraffic"


class EndpointError(Exception):
    """Base class of the local endpoint's errors."""


class PortInUse(EndpointError):
    """The address to listen on is taken by another process."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        super().__init__(
            f"port {port} on {host} is already in use: stop the process listening there "
            f"or pick another port (e.g. --port {port + 1})"
        )


class InvocationError(EndpointError):
    """A request the model cannot answer; ``status`` is the HTTP status to reply with."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"{status}: {message}")


class ServingModule(Protocol):
    """The four SageMaker scikit-learn serving functions (``jobs/inference.py``)."""

    def model_fn(self, model_dir: str) -> Any: ...
    def input_fn(self, request_body: Any, request_content_type: str) -> Any: ...
    def predict_fn(self, input_data: Any, model: Any) -> Any: ...
    def output_fn(self, prediction: Any, accept: str) -> Any: ...


# --------------------------------------------------------------------------- model


def _media_type(header: str | None) -> str:
    """``'Text/CSV; charset=utf-8'`` -> ``'text/csv'``."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def _negotiate(accept: str | None, request_type: str) -> str:
    """Pick the response type from an ``Accept`` header (default: the request's type)."""
    if not accept:
        return request_type
    if accept in SUPPORTED_TYPES:  # the usual case, without parsing
        return accept
    choices: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            choices.append((-quality, position, media))
    for _, _, media in sorted(choices):
        if media in SUPPORTED_TYPES:
            return media
        if media == "*/*":
            return request_type
        if media.endswith("/*"):
            family = media[:-1]
            if request_type.startswith(family):
                return request_type
            for supported in SUPPORTED_TYPES:
                if supported.startswith(family):
                    return supported
    raise InvocationError(
        HTTPStatus.NOT_ACCEPTABLE,
        f"cannot answer in {accept!r}: the endpoint answers {' or '.join(SUPPORTED_TYPES)}",
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _model_root(folder: Path) -> Path:
    """The folder holding ``model.joblib``: the archive root or its only sub-folder."""
    if (folder / MODEL_FILE).exists():
        return folder
    children = [child for child in folder.iterdir() if not child.name.startswith(".")]
    if len(children) == 1 and (children[0] / MODEL_FILE).exists():
        return children[0]
    return folder


class LocalModel:
    """A loaded model and its serving functions.

    Parameters
    ----------
    model_dir : Path
        The model folder (``model.joblib``, ``evaluation.json``, ``baseline.json``).
    serving : module, optional
        The serving functions; ``jobs.inference`` by default.
    """

    def __init__(self, model_dir: Path, serving: ServingModule | None = None) -> None:
        self.model_dir = Path(model_dir)
        if serving is None:
            serving = importlib.import_module("jobs.inference")
        assert serving is not None
        self.serving = serving
        self._input_fn = serving.input_fn
        self._predict_fn = serving.predict_fn
        self._output_fn = serving.output_fn
        self.model = serving.model_fn(str(self.model_dir))
        self.evaluation = _read_json(self.model_dir / EVALUATION_FILE)
        self.features: list[str] = self._find_features()
        model_file = self.model_dir / MODEL_FILE
        self.model_sha256 = _file_sha256(model_file) if model_file.exists() else ""
        recorded = (self.evaluation.get("model") or {}).get("sha256")
        if recorded and self.model_sha256 and recorded != self.model_sha256:
            logger.warning(
                "%s: model.joblib sha256 %s differs from evaluation.json's %s",
                self.model_dir,
                self.model_sha256,
                recorded,
            )

    def _find_features(self) -> list[str]:
        """Feature names in request order: from the model bundle, else the JSON files."""
        if isinstance(self.model, dict) and self.model.get("features"):
            return [str(name) for name in self.model["features"]]
        baseline = _read_json(self.model_dir / BASELINE_FILE)
        for names in (baseline.get("feature_order"), self.evaluation.get("features")):
            if isinstance(names, list) and names:
                return [str(name) for name in names]
        return []

    @classmethod
    def from_dir(cls, model_dir: Path | str, serving: ServingModule | None = None) -> LocalModel:
        """Load the model folder written by the training job."""
        folder = Path(model_dir)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder not found: {folder}")
        return cls(_model_root(folder), serving)

    @classmethod
    def from_tarball(
        cls,
        path_or_bytes: Path | str | bytes | bytearray,
        workdir: Path | str,
        serving: ServingModule | None = None,
    ) -> LocalModel:
        """Unpack a SageMaker ``model.tar.gz`` (path or bytes) into ``workdir``, then load it."""
        target = Path(workdir)
        target.mkdir(parents=True, exist_ok=True)
        source: dict[str, Any] = (
            {"fileobj": io.BytesIO(path_or_bytes)}
            if isinstance(path_or_bytes, bytes | bytearray)
            else {"name": path_or_bytes}
        )
        with tarfile.open(mode="r:*", **source) as archive:
            # the "data" filter refuses absolute paths, links out of the folder, devices
            archive.extractall(target, filter="data")
        return cls.from_dir(target, serving)

    def invoke(
        self, body: bytes, content_type: str, accept: str | None = None
    ) -> tuple[bytes, str]:
        """Answer one ``/invocations`` request: ``(response body, response content type)``.

        Raises
        ------
        InvocationError
            415 for an unsupported ``Content-Type``, 406 for an ``Accept`` the endpoint
            cannot answer, 400 for bad input (the serving functions' ``ValueError``
            message), 500 for anything else.
        """
        request_type = _media_type(content_type)
        if request_type not in SUPPORTED_TYPES:
            shown = content_type or "none"
            raise InvocationError(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"unsupported Content-Type {shown!r}: send {' or '.join(SUPPORTED_TYPES)}",
            )
        response_type = _negotiate(accept, request_type)
        if not body or not body.strip():
            raise InvocationError(HTTPStatus.BAD_REQUEST, "empty request body")
        try:
            data = self._input_fn(body, request_type)
            prediction = self._predict_fn(data, self.model)
            result = self._output_fn(prediction, response_type)
        except ValueError as exc:
            raise InvocationError(HTTPStatus.BAD_REQUEST, str(exc) or "bad input") from exc
        except Exception as exc:
            logger.exception("invocation failed")
            raise InvocationError(
                HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}"
            ) from exc
        if isinstance(result, tuple):  # output_fn may also return (body, content type)
            result, response_type = result
        if isinstance(result, str):
            return result.encode(), response_type
        return bytes(result), response_type


# ------------------------------------------------------------------- data capture


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
        self._csv_types = frozenset(_media_type(t) for t in csv_content_types)
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

    def capture(self, request: bytes, content_type: str, response: bytes, accept: str) -> bool:
        """Queue one invocation (if sampled in); True when it was queued."""
        if self._closed or self.sample_percent <= 0:
            return False
        if self.sample_percent < 100 and self._random.random() * 100 >= self.sample_percent:
            return False
        event = _Event(time.time(), request, content_type, response, accept)
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
            ct = _media_type(event.request_type)
            encoding, text = _encoding(ct, event.request, self._csv_types)
            data["endpointInput"] = {
                "observedContentType": event.request_type,
                "mode": "INPUT",
                "data": text,
                "encoding": encoding,
            }
        if self.capture_output:
            ct = _media_type(event.response_type)
            encoding, text = _encoding(ct, event.response, self._csv_types)
            data["endpointOutput"] = {
                "observedContentType": event.response_type,
                "mode": "OUTPUT",
                "data": text,
                "encoding": encoding,
            }
        when = datetime.fromtimestamp(event.when, UTC)
        return {
            "captureData": data,
            "eventMetadata": {
                "eventId": str(uuid.uuid4()),
                "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            "eventVersion": "0",
        }

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


# --------------------------------------------------------------------------- server

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_date_cache: tuple[int, bytes] = (0, b"")


def _http_date() -> bytes:
    """The ``Date`` header value, formatted once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        stamp = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now))
        _date_cache = (now, stamp.encode())
    return _date_cache[1]


def _not_found(path: str) -> str:
    return f"not found: {path} (the endpoint serves GET /ping and POST /invocations)"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlops-endpoint"
    timeout = _IDLE_TIMEOUT_S
    server: EndpointServer

    def setup(self) -> None:
        super().setup()
        # the whole response goes out in one write; no Nagle delay on top of that
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server._track(self.connection)
        self.server._limit_threads()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server._untrack(self.connection)

    # -- responses: always one write ---------------------------------------------------

    def _send(
        self, status: int, body: bytes = b"", content_type: str = "text/plain; charset=utf-8"
    ) -> None:
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n" % (
            status,
            _REASONS.get(status, "Unknown").encode(),
            content_type.encode("latin-1"),
            len(body),
            _http_date(),
        )
        if self.close_connection:
            head += b"Connection: close\r\n"
        if getattr(self, "command", None) == "HEAD":
            body = b""
        self.wfile.write(head + b"\r\n" + body)

    def _error(self, status: int, message: str, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._send(status, message.encode("utf-8", "replace") + b"\n")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Replies to requests the stdlib parser rejects (bad request line, headers, method)."""
        if message is None:
            message = _REASONS.get(code, "error")
        self._error(code, message, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no per-request lines on stderr

    def log_error(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.address_string(), *args)

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        has_body = "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        if has_body and self._read_body() is None:  # keep the connection's framing
            return
        if path == "/ping":
            self._send(HTTPStatus.OK)
        elif path == "/invocations":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations")
        else:
            self._error(HTTPStatus.NOT_FOUND, _not_found(path))

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._read_body()
        if body is None:
            return
        if path == "/invocations":
            self._invoke(body)
        elif path == "/ping":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping")
        else:
            self._error(HTTPStatus.NOT_FOUND, _not_found(path))

    def _other_method(self) -> None:
        path = self.path.split("?", 1)[0]
        if self._read_body() is None:  # keep the connection's framing when a body was sent
            return
        if path in ("/ping", "/invocations"):
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} not allowed on {path}")
        else:
            self._error(HTTPStatus.NOT_FOUND, _not_found(path))

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other_method

    def _invoke(self, body: bytes) -> None:
        headers = self.headers
        content_type = headers.get("Content-Type", "")
        accept = headers.get("Accept")
        server = self.server
        try:
            answer, answer_type = server.model.invoke(body, content_type, accept)
        except InvocationError as exc:
            self._error(exc.status, exc.message)
            return
        capture = server.capture
        if capture is not None:  # queued before replying: an answered request is captured
            capture.capture(body, content_type, answer, answer_type)
        self._send(HTTPStatus.OK, answer, answer_type)

    def _read_body(self) -> bytes | None:
        """The request body, or None after replying with the reason it cannot be read."""
        headers = self.headers
        if headers.get("Transfer-Encoding"):
            if headers["Transfer-Encoding"].strip().lower() != "chunked":
                self._error(HTTPStatus.NOT_IMPLEMENTED, "only chunked Transfer-Encoding", True)
                return None
            return self._read_chunked()
        length_header = headers.get("Content-Length")
        if length_header is None:
            if self.command == "POST":
                self._error(HTTPStatus.LENGTH_REQUIRED, "Content-Length header required")
                return None
            return b""
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError(length_header)
        except ValueError:
            # the body's end is unknown: the connection cannot carry another request
            self._error(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length_header!r}", True)
            return None
        if length > MAX_PAYLOAD_BYTES:
            self._too_large(length)
            return None
        body = self.rfile.read(length)
        if len(body) < length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _too_large(self, length: int) -> None:
        message = f"payload of {length} bytes is over the {MAX_PAYLOAD_BYTES} bytes limit"
        if length > _DRAIN_LIMIT:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, close=True)
            return
        remaining = length  # drain, so the client reads the reply instead of a reset
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                self.close_connection = True
                return
            remaining -= len(chunk)
        self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)

    def _read_chunked(self) -> bytes | None:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._error(HTTPStatus.BAD_REQUEST, "bad chunked encoding", close=True)
                return None
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_PAYLOAD_BYTES:
                message = f"payload is over the {MAX_PAYLOAD_BYTES} bytes limit"
                self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, close=True)
                return None
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)


class EndpointServer(ThreadingHTTPServer):
    """The threading HTTP server of one endpoint; ``model`` may be swapped while serving.

    Each connection is served by its own thread. ``model_threads`` caps the OpenMP
    threads one prediction may use in that thread (None: the library's default).
    Concurrent requests already spread over the cores; an OpenMP team per request on
    top of that oversubscribes them, and one descheduled team member stalls the
    whole prediction (single-row gradient boosting: ~1 ms becomes 25-100 ms on a
    busy 2-core machine).
    """

    daemon_threads = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        model: LocalModel,
        capture: CaptureWriter | None = None,
        model_threads: int | None = 1,
    ) -> None:
        self.model = model
        self.capture = capture
        self.model_threads = model_threads
        self._openmp = _openmp_controller() if model_threads else None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def _limit_threads(self) -> None:
        """Cap OpenMP threads for the calling (connection) thread; the setting is per thread."""
        if self._openmp is not None:
            self._openmp.limit(limits=self.model_threads)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def _track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is routine; anything else is logged once."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            logger.debug("connection from %s dropped: %s", client_address, error)
        else:
            logger.exception("error serving %s", client_address)

    def server_close(self) -> None:
        """Stop listening and end open keep-alive connections (their threads then exit)."""
        super().server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _openmp_controller() -> Any:
    """threadpoolctl's handle on the loaded OpenMP runtimes, or None without any."""
    try:
        from threadpoolctl import ThreadpoolController  # a scikit-learn dependency
    except ImportError:
        return None
    controller = ThreadpoolController().select(user_api="openmp")
    return controller if controller.lib_controllers else None


def make_server(
    model: LocalModel,
    host: str = "127.0.0.1",
    port: int = 8080,
    capture: CaptureWriter | None = None,
    *,
    model_threads: int | None = 1,
) -> EndpointServer:
    """Bind an endpoint server for ``model`` (port 0 picks a free port; see ``.url``).

    ``model_threads``: OpenMP threads per prediction (see :class:`EndpointServer`).

    Raises
    ------
    PortInUse
        When another process already listens on ``host:port``.
    """
    try:
        return EndpointServer((host, port), model, capture, model_threads)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise


def load_model(model_dir_or_tarball: Path | str, workdir: Path | str | None = None) -> LocalModel:
    """Load a model folder or a ``model.tar.gz`` (unpacked into ``workdir`` or a temp folder)."""
    source = Path(model_dir_or_tarball)
    if source.is_dir():
        return LocalModel.from_dir(source)
    if not source.is_file():
        raise FileNotFoundError(f"no model folder or model.tar.gz at {source}")
    if workdir is None:
        workdir = tempfile.mkdtemp(prefix="mlops-endpoint-")
    return LocalModel.from_tarball(source, workdir)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so a supervised server also flushes its capture."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve(
    model_dir_or_tarball: Path | str,
    host: str = "127.0.0.1",
    port: int = 8080,
    capture: CaptureWriter | None = None,
    *,
    model_threads: int | None = 1,
    on_ready: Callable[[EndpointServer], None] | None = None,
) -> None:
    """Serve a model in the foreground until Ctrl-C (or SIGTERM); then close cleanly.

    ``capture`` is closed (flushed) on the way out, whatever happens. Raises
    ``PortInUse`` before serving when the port is taken.
    """
    with contextlib.ExitStack() as stack:
        if capture is not None:
            stack.callback(capture.close)  # last out: flushes what the server captured
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-endpoint-"))
        model = load_model(model_dir_or_tarball, workdir)
        server = make_server(model, host, port, capture, model_threads=model_threads)
        stack.callback(server.server_close)
        if on_ready is not None:
            on_ready(server)
        else:
            print(
                f"serving model {model.model_sha256[:12]} ({len(model.features)} features) "
                f"on {server.url} - POST /invocations, GET /ping; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
        with _stop_on_sigterm(), contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mlops.endpoint MODEL [--port N] [--capture-dir DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m mlops.endpoint", description=__doc__)
    parser.add_argument("model", help="model folder or model.tar.gz")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--capture-dir", type=Path, help="write data capture under this folder")
    parser.add_argument("--endpoint-name", default="local-endpoint")
    parser.add_argument("--variant-name", default=DEFAULT_VARIANT)
    parser.add_argument("--sample-percent", type=float, default=100.0)
    parser.add_argument(
        "--model-threads", type=int, default=1, help="OpenMP threads per request (0: default)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING"))
    capture = None
    if args.capture_dir is not None:
        capture = CaptureWriter(
            endpoint_name=args.endpoint_name,
            variant_name=args.variant_name,
            directory=args.capture_dir,
            sample_percent=args.sample_percent,
        )
    try:
        serve(args.model, args.host, args.port, capture, model_threads=args.model_threads or None)
    except (PortInUse, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
