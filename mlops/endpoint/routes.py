"""What each request gets: the SageMaker inference container's ``/ping`` and ``/invocations``."""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING

from mlops.endpoint.errors import InvocationError

if TYPE_CHECKING:
    from mlops.endpoint.server import EndpointServer

TEXT = "text/plain; charset=utf-8"
# InvokeEndpoint's InferenceId, as the SageMaker front end forwards it
INFERENCE_ID_HEADER = b"x-amzn-sagemaker-inference-id"

# (status, body, content type); a str body is a message, sent as UTF-8 text
Answer = tuple[int, bytes | str, str]


def _not_found(path: bytes) -> Answer:
    message = f"not found: {_text(path)} (the endpoint serves GET /ping and POST /invocations)"
    return HTTPStatus.NOT_FOUND, message, TEXT


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def answer(
    server: EndpointServer, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
) -> Answer:
    """The answer to one request (``path`` without its query string)."""
    if method == b"POST":
        if path == b"/invocations":
            return _invoke(server, headers, body)
        if path == b"/ping":
            return HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping", TEXT
        return _not_found(path)
    if method == b"GET" or method == b"HEAD":
        if path == b"/ping":
            return HTTPStatus.OK, b"", TEXT
        if path == b"/invocations":
            return HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations", TEXT
        return _not_found(path)
    if path == b"/ping" or path == b"/invocations":
        return HTTPStatus.METHOD_NOT_ALLOWED, f"{_text(method)} not allowed on {_text(path)}", TEXT
    return _not_found(path)


def _invoke(server: EndpointServer, headers: dict[bytes, bytes], body: bytes) -> Answer:
    content_type, accept = request_types(headers)
    try:
        result, result_type = server.model.invoke(body, content_type, accept)
    except InvocationError as exc:
        return exc.status, exc.message, TEXT
    return answered(server, headers, body, result, result_type)


def request_types(headers: dict[bytes, bytes]) -> tuple[str, str | None]:
    """The request's ``Content-Type`` ("" when absent) and ``Accept``."""
    raw_type = headers.get(b"content-type")
    accept = headers.get(b"accept")
    return ("" if raw_type is None else _text(raw_type)), (
        None if accept is None else _text(accept)
    )


def answered(
    server: EndpointServer, headers: dict[bytes, bytes], body: bytes, result: bytes, kind: str
) -> Answer:
    """A prediction's answer, captured first (an answered request is a captured one)."""
    capture = server.capture
    if capture is not None:
        raw_id = headers.get(INFERENCE_ID_HEADER)
        inference_id = None if raw_id is None else _text(raw_id)
        capture.capture(body, request_types(headers)[0], result, kind, inference_id)
    return HTTPStatus.OK, result, kind
