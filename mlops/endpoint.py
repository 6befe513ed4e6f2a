"""The local endpoint: one model served over the SageMaker inference container contract.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` takes
``text/csv`` or ``application/json`` (``Content-Type``) and answers in the type the
``Accept`` header picks (default: the request's type). The work is done by the
serving functions of ``jobs/inference.py`` (``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn``), exactly as the SageMaker scikit-learn container calls them.

Successful invocations can be recorded in SageMaker's data-capture format by a
:class:`CaptureWriter`, into the capture bucket (S3 through boto3, moto included)
or into a local folder with the same layout.

The HTTP server is one asyncio event loop with a minimal HTTP/1.1 parser
(``asyncio.Protocol``, no dependency), answering every request inline on the loop's
thread: the model call is CPU-bound and holds the GIL, so more threads only add GIL
hand-offs. HTTP/1.1 keep-alive and pipelining, ``Content-Length`` always set, every
response (status line, headers and body) sent in one write with ``TCP_NODELAY`` on,
and no per-request logging. A response split over two small packets would stall a
keep-alive client for the delayed-ACK timeout (~40 ms) on every request.
"""

from __future__ import annotations

import argparse
import asyncio
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
_STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, text.encode()) for code, text in _REASONS.items()
}
_TEXT = "text/plain; charset=utf-8"
_MAX_HEAD_BYTES = 64 * 1024  # request line and headers together
_MAX_HEADERS = 100
_MAX_CHUNK_LINE = 1024
_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS"))
_BATCH = 16  # pipelined requests answered in one go before other connections get a turn
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_date_cache: tuple[int, bytes] = (0, b"")
_monotonic = time.monotonic


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


def _text(value: bytes) -> str:
    return value.decode("latin-1")


class _BadRequest(Exception):
    """A request whose framing is broken: reply ``status`` and close the connection."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(f"{status}: {message}")


class _Request:
    """A parsed request head and how its body is framed."""

    __slots__ = (
        "chunked",
        "expect",
        "head",
        "headers",
        "http10",
        "keep_alive",
        "length",
        "method",
        "path",
    )

    def __init__(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> None:
        self.method, self.path, self.headers = method, path, headers
        self.keep_alive = True
        self.http10 = False  # an HTTP/1.0 keep-alive request: say so in the reply
        self.head = method == b"HEAD"
        self.length = -1  # Content-Length; -1 when absent
        self.chunked = False
        self.expect = False  # Expect: 100-continue

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return None if value is None else _text(value)


def _parse_head(head: bytes) -> _Request:
    """Parse the request line and headers (without the blank line ending them).

    Raises ``_BadRequest`` for what the connection cannot go on from, with the
    status http.server answers: 400 bad syntax, 505 HTTP/2+, 431 too many headers,
    501 unknown method or transfer coding.
    """
    lines = head.split(b"\r\n")
    if head.count(b"\n") != len(lines) - 1:  # lines ended by a bare LF
        lines = head.replace(b"\r\n", b"\n").split(b"\n")
    words = lines[0].split()
    if len(words) != 3:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad request line {_text(lines[0])[:200]!r}")
    method, target, version = words
    major, dot, minor = version[5:].partition(b".")
    if not (
        version.startswith(b"HTTP/")
        and dot
        and major.isdigit()
        and minor.isdigit()
        and len(major) + len(minor) <= 10
    ):
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad request version {_text(version)[:50]!r}")
    http11 = (int(major), int(minor)) >= (1, 1)
    if int(major) >= 2:
        raise _BadRequest(
            HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"HTTP version {_text(version)} not supported"
        )
    if len(lines) > _MAX_HEADERS + 1:
        raise _BadRequest(
            HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"over {_MAX_HEADERS} header lines"
        )
    headers: dict[bytes, bytes] = {}
    name = b""
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t") and name:  # obsolete line folding
            headers[name] += b" " + line.strip()
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or b" " in name or b"\t" in name:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad header line {_text(line)[:200]!r}")
        name = name.lower()
        value = value.strip()
        previous = headers.setdefault(name, value)
        if previous != value and name == b"content-length":
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
    if method not in _METHODS:
        raise _BadRequest(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {_text(method)!r}")
    request = _Request(method, target.partition(b"?")[0], headers)
    connection = headers.get(b"connection")
    if http11:
        request.keep_alive = connection is None or b"close" not in connection.lower()
        expect = headers.get(b"expect")
        request.expect = expect is not None and expect.lower() == b"100-continue"
    else:
        request.keep_alive = connection is not None and b"keep-alive" in connection.lower()
        request.http10 = request.keep_alive
    coding = headers.get(b"transfer-encoding")
    if coding is not None:
        if coding.lower() != b"chunked":
            raise _BadRequest(HTTPStatus.NOT_IMPLEMENTED, "only chunked Transfer-Encoding")
        request.chunked = True
        if b"content-length" in headers:  # a smuggling attempt or a broken proxy
            request.keep_alive = False
        return request
    length = headers.get(b"content-length")
    if length is not None:
        if not length.isdigit():
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"bad Content-Length {_text(length)!r}")
        request.length = int(length) if len(length) <= 18 else 1 << 62
    return request


class _Chunked:
    """Where the parse of a chunked body stands."""

    __slots__ = ("parts", "total", "trailers")

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.total = 0
        self.trailers = False


class _Connection(asyncio.Protocol):
    """One client connection on the server's event loop.

    Requests are parsed from the byte stream and answered inline, in order, each
    response (status line, headers, body) in one ``transport.write``.
    """

    def __init__(self, server: EndpointServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.last_active = _monotonic()
        self._buffer = b""  # received, not parsed yet
        self._request: _Request | None = None  # parsed head whose body is arriving
        self._parts: list[bytes] = []  # that body so far (Content-Length framing)
        self._received = 0
        self._chunked: _Chunked | None = None  # that body so far (chunked framing)
        self._drain = 0  # bytes of an oversized body still to discard, then reply 413
        self._drained: tuple[_Request, int] | None = None
        self._closing = False
        self._paused = False
        self._scheduled = False

    # -- asyncio callbacks -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:  # the whole response goes out in one write; no Nagle delay
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server._connections.discard(self)
        self._closing = True
        self._buffer, self._parts, self._chunked = b"", [], None
        if exc is not None:
            logger.debug("connection dropped: %s", exc)

    def pause_writing(self) -> None:
        """The client is not reading its answers: stop answering (and reading) for now."""
        self._paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self.transport is not None and not self._closing:
            self.transport.resume_reading()
            if self._buffer:
                self._process()

    def data_received(self, data: bytes) -> None:
        self.last_active = _monotonic()
        if self._closing:
            return
        if self._drain:
            if len(data) < self._drain:
                self._drain -= len(data)
                return
            data = data[self._drain :]
            self._drain = 0
            self._reply_too_large()
            if self._closing:
                return
        request = self._request
        if request is not None and self._chunked is None:  # a Content-Length body
            self._parts.append(data)
            self._received += len(data)
            if self._received < request.length:
                return
            whole = b"".join(self._parts)
            self._parts, self._request = [], None
            if len(whole) == request.length:
                body = whole
            else:
                body, self._buffer = whole[: request.length], whole[request.length :]
            self._respond(request, body)
        elif self._buffer:
            self._buffer += data
        else:
            self._buffer = data
        if self._buffer:
            self._process()

    # -- parsing -----------------------------------------------------------------------

    def _process(self) -> None:
        """Answer the complete requests in the buffer, in order."""
        self._scheduled = False
        answered = 0
        while self._buffer and not self._closing and not self._paused:
            if answered == _BATCH:  # let other connections have a turn
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._resume)
                return
            if self._chunked is not None:
                body = self._read_chunked()
                if body is None:
                    return
                request, self._request, self._chunked = self._request, None, None
                assert request is not None
                self._respond(request, body)
                answered += 1
                continue
            buffer = self._buffer
            if buffer[0] in b"\r\n":  # blank lines between requests are allowed
                self._buffer = buffer = buffer.lstrip(b"\r\n")
                if not buffer:
                    return
            end = buffer.find(b"\r\n\r\n")
            bare = buffer.find(b"\n\n", 0, end if end >= 0 else len(buffer))
            if bare >= 0:
                end, start = bare, bare + 2
            elif end >= 0:
                start = end + 4
            else:
                if len(buffer) > _MAX_HEAD_BYTES:
                    self._fail(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
                return
            if end > _MAX_HEAD_BYTES:
                self._fail(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
                return
            try:
                request = _parse_head(buffer[:end])
            except _BadRequest as exc:
                self._fail(exc.status, exc.message)
                return
            answered += 1
            if request.chunked:
                self._request, self._chunked = request, _Chunked()
                self._buffer = buffer[start:]
                if request.expect and not self._buffer:
                    self._write(_CONTINUE)
                continue
            length = request.length
            if length < 0:
                self._buffer = buffer[start:]
                if request.method == b"POST":
                    self._send(
                        request, HTTPStatus.LENGTH_REQUIRED, "Content-Length header required"
                    )
                else:
                    self._respond(request, b"")
                continue
            if length > MAX_PAYLOAD_BYTES:
                self._too_large(request, buffer, start)
                continue
            if len(buffer) - start >= length:  # the usual case: the whole request is here
                stop = start + length
                self._buffer = buffer[stop:]
                self._respond(request, buffer[start:stop])
                continue
            # the body is still arriving: collect it in data_received
            self._request = request
            self._parts = [buffer[start:]]
            self._received = len(buffer) - start
            self._buffer = b""
            if request.expect:
                self._write(_CONTINUE)
            return

    def _resume(self) -> None:
        if self._scheduled and not self._closing:
            self._process()

    def _too_large(self, request: _Request, buffer: bytes, start: int) -> None:
        length = request.length
        if length > _DRAIN_LIMIT or request.expect:
            # not worth reading (or not sent yet): reply and close
            self._buffer = b""
            self._drained = (request, length)
            self._reply_too_large(close=True)
            return
        # read and discard the body, so the client reads the reply instead of a reset
        available = len(buffer) - start
        self._drained = (request, length)
        if available >= length:
            self._buffer = buffer[start + length :]
            self._reply_too_large()
        else:
            self._buffer = b""
            self._drain = length - available

    def _reply_too_large(self, close: bool = False) -> None:
        assert self._drained is not None
        request, length = self._drained
        self._drained = None
        message = f"payload of {length} bytes is over the {MAX_PAYLOAD_BYTES} bytes limit"
        self._send(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, close=close)

    def _read_chunked(self) -> bytes | None:
        """The chunked body once complete (the buffer then holds what follows), else None."""
        state = self._chunked
        assert state is not None
        buffer, pos = self._buffer, 0
        while True:
            newline = buffer.find(b"\n", pos)
            if newline < 0:
                limit = _MAX_HEAD_BYTES if state.trailers else _MAX_CHUNK_LINE
                if len(buffer) - pos > limit:
                    self._fail(HTTPStatus.BAD_REQUEST, "bad chunked encoding")
                    return None
                break
            line = buffer[pos:newline].rstrip(b"\r")
            if state.trailers:
                pos = newline + 1
                if not line:
                    self._buffer = buffer[pos:]
                    return b"".join(state.parts)
                continue
            size_text = line.split(b";", 1)[0].strip()
            if not size_text or len(size_text) > 16 or size_text.strip(b"0123456789abcdefABCDEF"):
                self._fail(HTTPStatus.BAD_REQUEST, "bad chunked encoding")
                return None
            size = int(size_text, 16)
            if size == 0:
                state.trailers = True
                pos = newline + 1
                continue
            if state.total + size > MAX_PAYLOAD_BYTES:
                message = f"payload is over the {MAX_PAYLOAD_BYTES} bytes limit"
                self._fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
                return None
            data_start = newline + 1
            data_end = data_start + size
            if buffer[data_end : data_end + 1] == b"\n":
                after = data_end + 1
            elif buffer[data_end : data_end + 2] == b"\r\n":
                after = data_end + 2
            elif len(buffer) < data_end + 2:
                break  # the chunk is still arriving
            else:
                self._fail(HTTPStatus.BAD_REQUEST, "bad chunked encoding")
                return None
            state.parts.append(buffer[data_start:data_end])
            state.total += size
            pos = after
        self._buffer = buffer[pos:]  # keep only the unparsed rest
        return None

    # -- answering ---------------------------------------------------------------------

    def _respond(self, request: _Request, body: bytes) -> None:
        try:
            self._route(request, body)
        except Exception:  # a bug here must not take the server down
            logger.exception("error answering %s %s", _text(request.method), _text(request.path))
            if not self._closing:
                self._send(request, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", close=True)

    def _route(self, request: _Request, body: bytes) -> None:
        method, path = request.method, request.path
        if method == b"POST":
            if path == b"/invocations":
                self._invoke(request, body)
            elif path == b"/ping":
                self._send(request, HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping")
            else:
                self._send(request, HTTPStatus.NOT_FOUND, _not_found(_text(path)))
        elif method == b"GET" or method == b"HEAD":
            if path == b"/ping":
                self._send(request, HTTPStatus.OK, b"")
            elif path == b"/invocations":
                self._send(request, HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations")
            else:
                self._send(request, HTTPStatus.NOT_FOUND, _not_found(_text(path)))
        elif path == b"/ping" or path == b"/invocations":
            message = f"{_text(method)} not allowed on {_text(path)}"
            self._send(request, HTTPStatus.METHOD_NOT_ALLOWED, message)
        else:
            self._send(request, HTTPStatus.NOT_FOUND, _not_found(_text(path)))

    def _invoke(self, request: _Request, body: bytes) -> None:
        server = self.server
        content_type = request.header(b"content-type") or ""
        try:
            answer, answer_type = server.model.invoke(body, content_type, request.header(b"accept"))
        except InvocationError as exc:
            self._send(request, exc.status, exc.message)
            return
        capture = server.capture
        if capture is not None:  # queued before replying: an answered request is captured
            capture.capture(body, content_type, answer, answer_type)
        self._send(request, HTTPStatus.OK, answer, answer_type)

    def _send(
        self,
        request: _Request | None,
        status: int,
        body: bytes | str,
        content_type: str = _TEXT,
        *,
        close: bool = False,
    ) -> None:
        """Reply in one write (str bodies are messages: UTF-8, newline-terminated)."""
        if isinstance(body, str):
            body = body.encode("utf-8", "replace") + b"\n"
        close = close or request is None or not request.keep_alive
        status_line = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        head = b"%sContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n" % (
            status_line,
            content_type.encode("latin-1", "replace"),
            len(body),
            _http_date(),
        )
        if close:
            head += b"Connection: close\r\n"
        elif request is not None and request.http10:
            head += b"Connection: keep-alive\r\n"
        if request is not None and request.head:
            body = b""
        self._write(head + b"\r\n" + body)
        if close:
            self.close()

    def _fail(self, status: int, message: str) -> None:
        """Reply to a request the connection cannot go on from, then close."""
        self._send(None, status, message)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        """Close once the replies written so far are sent."""
        self._closing = True
        self._buffer, self._parts, self._chunked = b"", [], None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()


class EndpointServer:
    """One endpoint's HTTP server: one asyncio event loop, in the thread that serves.

    ``serve_forever()`` runs the loop in the calling thread until ``shutdown()`` (from
    any thread); ``server_close()`` stops listening and ends open connections. Every
    request is answered inline on that one thread: the model call is CPU-bound and
    holds the GIL anyway, and one thread spares the GIL hand-offs a thread per
    connection costs. ``model`` may be swapped while serving.

    ``model_threads`` caps the OpenMP threads one prediction may use in the serving
    thread (None: the library's default). A machine's other cores run the clients and
    the other processes; an OpenMP team per request on top of that oversubscribes
    them, and one descheduled team member stalls the whole prediction (single-row
    gradient boosting: ~1 ms becomes 25-100 ms on a busy 2-core machine).
    """

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
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[_Connection] = set()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(self.request_queue_size)
            self.server_address: tuple[Any, ...] = sock.getsockname()
            loop = asyncio.new_event_loop()
            # accepts once the loop runs, in serve_forever()
            self._listener = loop.run_until_complete(
                loop.create_server(
                    lambda: _Connection(self), sock=sock, backlog=self.request_queue_size
                )
            )
        except BaseException:
            if loop is not None:
                loop.close()
            sock.close()
            raise
        self.socket = sock
        self._loop = loop
        self._lock = threading.Lock()
        self._serving_thread: int | None = None
        self._shutdown_request = False
        self._closed = False
        self._is_shut_down = threading.Event()
        self._is_shut_down.set()
        self._tick: asyncio.TimerHandle | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host!s}:{port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve in this thread until :meth:`shutdown`.

        ``poll_interval``: how often idle keep-alive connections are looked for (and,
        in the main thread, how soon a signal handler gets to run at the latest).
        """
        with self._lock:
            if self._shutdown_request:  # shutdown() came first: return at once
                self._shutdown_request = False
                return
            if self._closed:
                raise RuntimeError("the server is closed")
            if self._serving_thread is not None:
                raise RuntimeError("the server is already serving")
            self._serving_thread = threading.get_ident()
            self._is_shut_down.clear()
        limiter = None
        try:
            if self._openmp is not None:  # a per-thread setting: this thread runs the model
                limiter = self._openmp.limit(limits=self.model_threads)
            self._tick = self._loop.call_later(poll_interval, self._sweep, poll_interval)
            self._loop.run_forever()
        finally:
            if self._tick is not None:
                self._tick.cancel()
            if limiter is not None:
                limiter.restore_original_limits()
            with self._lock:
                self._serving_thread = None
                self._shutdown_request = False
                closed = self._closed
            try:
                if closed:  # server_close() came while serving
                    self._close_now()
            finally:
                self._is_shut_down.set()

    def _sweep(self, poll_interval: float) -> None:
        """Close connections idle for longer than the keep-alive timeout."""
        deadline = _monotonic() - _IDLE_TIMEOUT_S
        for connection in [c for c in self._connections if c.last_active < deadline]:
            connection.abort()
        self._tick = self._loop.call_later(poll_interval, self._sweep, poll_interval)

    def _stop(self) -> None:
        if self._serving_thread is not None:
            self._loop.stop()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it returned (thread-safe)."""
        with self._lock:
            thread = self._serving_thread
            if thread is None:
                self._shutdown_request = True  # a serve_forever() about to start returns
                return
            self._loop.call_soon_threadsafe(self._stop)
        if thread != threading.get_ident():
            self._is_shut_down.wait()

    def server_close(self) -> None:
        """Stop listening and end open keep-alive connections."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._serving_thread
            if thread is not None:  # serve_forever() closes on its way out
                self._loop.call_soon_threadsafe(self._stop)
        if thread is None:
            self._close_now()
        elif thread != threading.get_ident():
            self._is_shut_down.wait()

    def _close_now(self) -> None:
        """Close the listener and the connections, then the loop (which is not running)."""
        loop = self._loop
        try:
            for connection in list(self._connections):
                connection.abort()
            self._listener.close()
            loop.run_until_complete(asyncio.sleep(0))  # runs the transports' closing callbacks
        finally:
            loop.close()
            self.socket.close()

    def __enter__(self) -> EndpointServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server_close()


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
