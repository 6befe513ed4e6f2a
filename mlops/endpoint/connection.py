"""One client connection: HTTP/1.1 requests parsed from the byte stream, answered inline.

A minimal HTTP/1.1 parser (``bytes.find``/``partition``, no dependency): keep-alive and
pipelining, ``Content-Length`` and chunked bodies, the endpoint's limits. Requests go
to :mod:`mlops.endpoint.routes`; each response (status line, headers and body) goes
out in one ``transport.write``: a response split over two small packets would stall a
keep-alive client for the delayed-ACK timeout (~40 ms) on every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING

from mlops.endpoint import routes

if TYPE_CHECKING:
    from mlops.endpoint.server import EndpointServer

logger = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints' request limit
_DRAIN_LIMIT = 64 * 1024 * 1024  # read and discard an oversized body up to this, then reply
_REASONS = {status.value: status.phrase for status in HTTPStatus}
_STATUS_LINES = {
    code: b"HTTP/1.1 %d %s\r\n" % (code, text.encode()) for code, text in _REASONS.items()
}
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


class Connection(asyncio.Protocol):
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
            status, answer, content_type = routes.answer(
                self.server, request.method, request.path, request.headers, body
            )
            self._send(request, status, answer, content_type)
        except Exception:  # a bug here must not take the server down
            logger.exception("error answering %s %s", _text(request.method), _text(request.path))
            if not self._closing:
                self._send(request, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", close=True)

    def _send(
        self,
        request: _Request | None,
        status: int,
        body: bytes | str,
        content_type: str = routes.TEXT,
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
