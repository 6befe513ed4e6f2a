"""Content types the endpoint speaks, and the ``Accept`` negotiation between them."""

from __future__ import annotations

from http import HTTPStatus

from mlops.endpoint.errors import InvocationError

CSV = "text/csv"
JSON = "application/json"
SUPPORTED_TYPES = (CSV, JSON)


def media_type(header: str | None) -> str:
    """``'Text/CSV; charset=utf-8'`` -> ``'text/csv'``."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def negotiate(accept: str | None, request_type: str) -> str:
    """Pick the response type from an ``Accept`` header (default: the request's type).

    Raises
    ------
    InvocationError
        406 when no type the header accepts is one the endpoint answers in.
    """
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
