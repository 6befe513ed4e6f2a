"""The shape every handler shares: accept or reject the event, act, log; at most once; the clock.

A malformed event is rejected before any AWS call, returned and never raised, so Lambda
does not retry it into the dead-letter queue. powertools' idempotency is imported only
when a handler first runs something at most once (it is the heaviest import).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from lambdas.aws import Clients
from lambdas.config import Config, JsonDict
from lambdas.errors import ControlPlaneError


class BadEvent(ControlPlaneError, ValueError):
    """The event is not one this handler accepts; the message says why."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- events --------------------------------------------------------------------------

# The largest event a handler needs is SageMaker's training state change, which carries the
# job's description (a few KB). A bigger one is refused before it costs a job or a record:
# a multi-MB event once started a job and then could not be stored as idempotency key.
MAX_EVENT_BYTES = 16 * 1024


def check_event_size(event: Any) -> None:
    """Raise :class:`BadEvent` when ``event`` serialises to more than ``MAX_EVENT_BYTES``."""
    size = len(json.dumps(event, separators=(",", ":"), default=str).encode())
    if size > MAX_EVENT_BYTES:
        raise BadEvent(f"event is {size} bytes; at most {MAX_EVENT_BYTES} are accepted")


def event_kind(event: Any) -> tuple[str, str, Mapping[str, Any]]:
    """``(source, detail-type, detail)`` of an EventBridge-shaped event.

    Raises
    ------
    BadEvent
        When the event is not a JSON object with string ``source`` / ``detail-type`` and
        an object ``detail``.
    """
    if not isinstance(event, Mapping):
        raise BadEvent(f"event is a {type(event).__name__}, not a JSON object")
    if "Records" in event:
        raise BadEvent(
            "S3/SNS/SQS 'Records' events are not accepted: deliver S3 events through "
            "EventBridge (bucket notification 'EventBridge: on')"
        )
    source, detail_type = event.get("source"), event.get("detail-type")
    if not isinstance(source, str) or not isinstance(detail_type, str):
        raise BadEvent("event has no 'source' and 'detail-type' (not an EventBridge event)")
    detail = event.get("detail", {})
    if detail is None:
        detail = {}
    if not isinstance(detail, Mapping):
        raise BadEvent(f"'detail' of {source}/{detail_type} is not an object")
    return source, detail_type, detail


def rejected(reason: str, **extra: Any) -> JsonDict:
    """The outcome of an event a handler will not act on (returned, never raised)."""
    return {"status": "rejected", "reason": reason, **extra}


def handle_event(
    event: Any,
    environ: Mapping[str, str],
    *,
    parse: Callable[[Any, Config], Any],
    act: Callable[..., JsonDict],
    logger: Any,
    context: Any = None,
    clients: Clients | None = None,
    calm: frozenset[str] | None = None,
) -> JsonDict:
    """The shape every event-driven handler shares: read the config, parse the event, act.

    A malformed event is rejected before any AWS call: logged and returned, never raised,
    so Lambda does not retry it into the dead-letter queue. The outcome is logged at info
    when its status is in ``calm`` (``None``: always), else at warning.
    """
    config = Config.from_env(environ)
    try:
        check_event_size(event)
        parsed = parse(event, config)
    except BadEvent as exc:
        outcome = rejected(str(exc))
        logger.warning(f"rejected event: {exc}", extra={"outcome": outcome})
        return outcome
    outcome = act(config, clients or Clients.for_config(config), parsed, lambda_context=context)
    level = logger.info if calm is None or outcome["status"] in calm else logger.warning
    level(f"{outcome['status']}: {outcome['reason']}", extra={"outcome": outcome})
    return outcome


# --- at most once ----------------------------------------------------------------------


class _Deadline:
    """Stands in for a Lambda context outside Lambda (CLI, local cloud).

    powertools uses the remaining time to expire an INPROGRESS record; without it a
    crash mid-call would block the data version until the record's TTL.
    """

    def __init__(self, seconds: int = 900) -> None:
        self._end = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._end - time.monotonic()) * 1000))


def run_once(
    config: Config,
    clients: Clients,
    *,
    key: str,
    key_prefix: str,
    fn: Callable[[], JsonDict],
    lambda_context: Any = None,
    ttl_seconds: int,
) -> tuple[JsonDict, bool]:
    """Run ``fn`` at most once per ``key`` (powertools idempotency on DynamoDB).

    Returns ``(result, ran)``: ``ran`` is False when the result was replayed from an
    earlier run. An exception from ``fn`` deletes the record (the key may run again).
    """
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    assert config.idempotency_table is not None  # checked by the callers
    persistence = DynamoDBPersistenceLayer(
        table_name=config.idempotency_table, boto3_client=clients.dynamodb
    )
    idem = IdempotencyConfig(
        event_key_jmespath="key",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=ttl_seconds,
        lambda_context=lambda_context or _Deadline(),  # type: ignore[arg-type]
    )
    ran: list[bool] = []

    @idempotent_function(
        data_keyword_argument="data",
        persistence_store=persistence,
        config=idem,
        key_prefix=key_prefix,
    )
    def once(data: JsonDict) -> JsonDict:
        ran.append(True)
        return fn()

    return once(data={"key": key}), bool(ran)
