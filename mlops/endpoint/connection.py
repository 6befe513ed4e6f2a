"""One client connection: HTTP/1.1 requests parsed by h11, answered inline, in order.

h11 parses and frames each request (request line, headers, ``Content-Length`` and
chunked bodies, the ``Host`` rule); the connection adds the endpoint's limits, hands
the request to :mod:`mlops.endpoint.routes` and writes each response itself, status
line, headers and body in one ``transport.write``. Not through h11's send path: that
validates every response's headers again, and closes every HTTP/1.0 connection, where
the endpoint honours ``Connection: keep-alive``. A response split over two small
packets would stall a keep-alive client for the delayed-ACK timeout (~40 ms) on every
request.

h11 runs one request/response cycle per ``h11.Connection``; as the responses do not
go through h11, every request gets a fresh one, fed what the last one left unparsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import h11

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


def _new_parser() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)


def _chunk_left(parser: h11.Connection) -> int:
    """Bytes of the chunk being read that have not arrived yet (0 when unknown).

    h11 keeps a chunk's declared size to itself; peeking at it refuses a chunk declared
    over the payload limit on its size line, rather than after 6 MB of it arrived.
    """
    left = getattr(getattr(parser, "_reader", None), "_bytes_in_chunk", 0)
    return left if isinstance(left, int) else 0


class _Request:
    """A parsed request head, how its body is framed and the body so far."""

    __slots__ = (
        "chunked",
        "drain",
        "expect",
        "head",
        "headers",
        "http10",
        "keep_alive",
        "length",
        "method",
        "parts",
        "path",
        "size",
    )

    def __init__(self, method: bytes, path: bytes, headers: dict[bytes, bytes]) -> None:
        self.method, self.path, self.headers = method, path, headers
        self.keep_alive = True
        self.http10 = False  # an HTTP/1.0 keep-alive request: say so in the reply
        self.head = method == b"HEAD"
        self.length = -1  # Content-Length; -1 when absent
        self.chunked = False
        self.expect = False  # Expect: 100-continue, not answered yet
        self.drain = False  # an oversized body, read and dropped before replying 413
        self.parts: list[bytes] = []
        self.size = 0


class Connection(asyncio.Protocol):
    """One client connection on the server's event loop.

    Requests are parsed from the byte stream and answered inline, in order, each
    response (status line, headers, body) in one ``transport.write``.
    """

    def __init__(self, server: EndpointServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.last_active = _monotonic()
        self._parser = _new_parser()
        self._started = False  # the parser holds bytes of a request
        self._request: _Request | None = None  # parsed head whose body is arriving
        self._closing = False
        self._paused = False
        self._scheduled = False
        self._busy = False  # a large request is being answered off the event loop

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
        self._request = None
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
            self._process()

    def data_received(self, data: bytes) -> None:
        self.last_active = _monotonic()
        if self._closing:
            return
        if not self._started:
            # blank lines before a request are allowed (RFC 9112 2.2); h11 refuses them
            data = data.lstrip(b"\r\n")
            if not data:
                return
            self._started = True
        self._parser.receive_data(data)
        self._process()

    # -- parsing -----------------------------------------------------------------------

    def _process(self) -> None:
        """Answer the complete requests received, in order."""
        self._scheduled = False
        answered = 0
        while not self._closing and not self._paused and not self._busy:
            try:
                event = self._parser.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(exc.error_status_hint, str(exc))
                return
            kind = type(event)
            if kind is h11.Data:
                self._body(event.data)  # type: ignore[union-attr]
            elif kind is h11.Request:
                self._start(event)  # type: ignore[arg-type]
            elif kind is h11.EndOfMessage:
                self._end()
                if not self._started:  # nothing of a next request received yet
                    return
                answered += 1
                if answered == _BATCH:  # let other connections have a turn
                    self._scheduled = True
                    asyncio.get_running_loop().call_soon(self._resume)
                    return
            elif event is h11.NEED_DATA:
                self._waiting()
                return
            else:  # ConnectionClosed or PAUSED: nothing more to parse
                return

    def _resume(self) -> None:
        if self._scheduled and not self._closing:
            self._process()

    def _start(self, event: h11.Request) -> None:
        """A request head: check it against the endpoint's limits, note its framing."""
        headers: dict[bytes, bytes] = {}
        size = len(event.target)  # h11 checks the head's size only while it is incomplete
        for name, value in event.headers:
            size += len(name) + len(value)
            if name not in headers:  # the first of repeated headers counts
                headers[name] = value
        if size > _MAX_HEAD_BYTES:
            self._fail(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
            return
        version = event.http_version
        if version >= b"2":
            message = f"HTTP version {_text(version)} not supported"
            self._fail(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, message)
            return
        if len(event.headers) > _MAX_HEADERS:
            self._fail(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, f"over {_MAX_HEADERS} headers")
            return
        method = event.method
        if method not in _METHODS:
            self._fail(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {_text(method)!r}")
            return
        request = _Request(method, event.target.partition(b"?")[0], headers)
        self._request = request
        connection = headers.get(b"connection")
        if version >= b"1.1":
            request.keep_alive = connection is None or b"close" not in connection.lower()
            expect = headers.get(b"expect")
            request.expect = expect is not None and expect.lower() == b"100-continue"
        else:
            request.keep_alive = connection is not None and b"keep-alive" in connection.lower()
            request.http10 = request.keep_alive
        length = headers.get(b"content-length")
        if b"transfer-encoding" in headers:  # h11 let only "chunked" through
            request.chunked = True
            if length is not None:  # a smuggling attempt or a broken proxy
                request.keep_alive = False
        elif length is not None:
            request.length = int(length)  # h11 checked it is digits
            if request.length > MAX_PAYLOAD_BYTES:
                if request.length > _DRAIN_LIMIT or request.expect:
                    # not worth reading (or not sent yet): reply and close
                    self._reply_too_large(request, close=True)
                else:  # read and drop it, so the client reads the reply, not a reset
                    request.drain = True

    def _body(self, data: bytes) -> None:
        request = self._request
        assert request is not None
        request.expect = False  # the body is coming: no 100 Continue needed
        request.size += len(data)
        if request.drain:
            return
        if request.size > MAX_PAYLOAD_BYTES:  # only a chunked body gets here
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"payload is over the {MAX_PAYLOAD_BYTES} bytes limit",
            )
            return
        request.parts.append(data)

    def _waiting(self) -> None:
        """The parser needs more bytes: of a request head or of a body."""
        request = self._request
        if request is None:
            return
        if request.chunked and request.size + _chunk_left(self._parser) > MAX_PAYLOAD_BYTES:
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"payload is over the {MAX_PAYLOAD_BYTES} bytes limit",
            )
        elif request.expect:
            request.expect = False
            self._write(_CONTINUE)

    def _end(self) -> None:
        """A whole request: answer it, then start the next cycle on what follows."""
        request, self._request = self._request, None
        assert request is not None
        if request.drain:
            self._reply_too_large(request)
        elif request.length < 0 and not request.chunked and request.method == b"POST":
            self._send(request, HTTPStatus.LENGTH_REQUIRED, "Content-Length header required")
        else:
            body = b"".join(request.parts)  # h11 hands out bytearrays
            large = len(body) >= self.server.offload_bytes
            if large and request.method == b"POST" and request.path == b"/invocations":
                self._offload(request, body)
            else:
                self._respond(request, body)
        if self._closing:
            return
        rest, _ = self._parser.trailing_data
        self._parser = _new_parser()
        rest = rest.lstrip(b"\r\n")
        self._started = bool(rest)
        if rest:
            self._parser.receive_data(rest)

    def _reply_too_large(self, request: _Request, close: bool = False) -> None:
        message = f"payload of {request.length} bytes is over the {MAX_PAYLOAD_BYTES} bytes limit"
        self._send(request, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message, close=close)

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

    def _offload(self, request: _Request, body: bytes) -> None:
        """Answer a large request in the server's worker pool; this connection waits
        (its answers stay in order), every other one goes on being served."""
        self._busy = True
        content_type, accept = routes.request_types(request.headers)
        future = self.server.offloader().submit(body, content_type, accept)

        def done(finished: asyncio.Future[Any]) -> None:
            self._busy = False
            if self._closing:
                return
            try:
                outcome, first, second = finished.result()
                if outcome == "ok":
                    status, answer, kind = routes.answered(
                        self.server, request.headers, body, first, second
                    )
                else:
                    status, answer, kind = first, second, routes.TEXT
                self._send(request, status, answer, kind)
            except Exception:  # a worker that died, a bug: this request fails, not the server
                logger.exception("error answering %s", _text(request.path))
                self._send(request, HTTPStatus.INTERNAL_SERVER_ERROR, "internal error", close=True)
                return
            self._process()  # what arrived meanwhile

        future.add_done_callback(done)

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
        self._request = None
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self._closing = True
        if self.transport is not None:
            self.transport.abort()
