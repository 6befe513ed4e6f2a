"""Event router: delivers EventBridge events to the deployed Lambda handlers.

STAND-IN for EventBridge -> Lambda delivery, which moto lacks (its EventBridge
cannot target Lambda; its Lambda invoke needs Docker).

Events reach EventBridge rules in moto (``Rule.send_to_targets``, patched in
:mod:`mlops.localcloud.patches`) from: S3 objects created in EventBridge-enabled
buckets, ``PutEvents`` calls, training job state changes (the job runner),
model package and endpoint state changes, CloudWatch alarm state changes and
fired schedules (their shapes are in :mod:`mlops.localcloud.events`). For every
enabled rule whose ``EventPattern`` matches (moto's own matcher), each Lambda
target becomes a :class:`Delivery`, queued and run in order on one worker
thread: the deployed function's ``Handler`` (e.g. ``lambdas.retrain.handler``)
runs in the Lambda runtime stand-in (:mod:`mlops.localcloud.invoke`) with its
function's environment, and the outcome is recorded. Non-Lambda targets (SQS,
logs, ...) keep moto's own delivery.

Differences from AWS, on purpose: no retries (a failed invocation goes straight
to the function's dead-letter queue, if set), one delivery at a time, and the
handler runs from the repository checkout, not from the deployed zip.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from queue import Queue
from typing import Any

from mlops.localcloud.activity import Activity
from mlops.localcloud.awsutil import ClientFactory, iso_z
from mlops.localcloud.events import scheduled_event
from mlops.localcloud.invoke import LambdaRuntime
from mlops.localcloud.state import DEFAULT_REGION, EVENTS_FILE

logger = logging.getLogger(__name__)

_SENTINEL = None


@dataclass
class Delivery:
    """One event on its way to one Lambda target."""

    rule: str
    rule_arn: str
    target_id: str
    function_arn: str
    payload: Any
    source: str = ""
    detail_type: str = ""
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    queued_at: str = field(default_factory=iso_z)


def lambda_event(event: dict[str, Any]) -> dict[str, Any]:
    """The event as a Lambda target receives it: ISO ``time``, no moto internals."""
    out = copy.deepcopy(event)
    out["time"] = iso_z(out.get("time") or None)
    out.pop("ingestion-time", None)
    return out


def _json_path(document: Any, path: str) -> Any:
    """The tiny JSONPath subset EventBridge ``InputPath`` uses in practice: ``$.a.b``."""
    if path in ("", "$"):
        return document
    node = document
    for part in path.removeprefix("$.").split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def target_payload(target: dict[str, Any], event: dict[str, Any]) -> Any:
    """Apply the target's ``Input`` / ``InputPath`` / ``InputTransformer`` to the event."""
    shaped = lambda_event(event)
    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        return _json_path(shaped, target["InputPath"])
    transformer = target.get("InputTransformer")
    if transformer:
        from moto.events.utils import EventTemplateParser

        shaped.setdefault("ingestion-time", time.time())
        return EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=shaped,  # type: ignore[arg-type]
        )
    return shaped


def _arn_parts(arn: str) -> tuple[str, str, str]:
    """``(service, region, account)`` of an ARN."""
    parts = arn.split(":")
    if len(parts) < 6:
        return "", "", ""
    return parts[2], parts[3], parts[4]


class EventRouter:
    """Queue of Lambda deliveries and the worker thread that runs them.

    Parameters
    ----------
    clients : ClientFactory
        boto3 clients bound to the local cloud (dead-letter queues).
    endpoint_url : str
        Given to handlers as ``AWS_ENDPOINT_URL``.
    activity : Activity
        Counts pending deliveries (``wait_idle``).
    state_dir : Path, optional
        Where ``events.jsonl`` and ``lambda/<function>.log`` are written.
    python_path : sequence of Path
        Put on the handlers' ``PYTHONPATH`` (the repository root first).
    cwd : Path, optional
        The handlers' working directory.
    """

    def __init__(
        self,
        *,
        clients: ClientFactory,
        endpoint_url: str,
        activity: Activity,
        state_dir: Path | None,
        python_path: Sequence[Path],
        cwd: Path | None = None,
    ) -> None:
        self.clients = clients
        self.activity = activity
        self.state_dir = state_dir
        self.runtime = LambdaRuntime(
            endpoint_url=endpoint_url,
            python_path=[str(p) for p in python_path],
            cwd=cwd,
            state_dir=state_dir,
        )
        self.deliveries: list[dict[str, Any]] = []
        self._deliveries_lock = threading.Lock()
        self._queue: Queue[Delivery | None] = Queue()
        self._thread = threading.Thread(target=self._work, name="localcloud-router", daemon=True)
        self._closing = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        self._closing = True
        self.runtime.kill()
        self._queue.put(_SENTINEL)
        self._thread.join(timeout)

    # ------------------------------------------------------------------ publishing

    def publish(self, event: dict[str, Any], account: str, region: str) -> None:
        """Put an AWS service event on the default bus of ``account``/``region``.

        Rules see it through moto's ``Rule.send_to_targets`` (patched), so matching,
        Lambda delivery and moto's own targets (SQS, logs) all apply.
        """
        from moto.events.models import events_backends

        try:
            bus = events_backends[account][region].event_buses.get("default")
        except Exception:  # an unknown region: nothing can be subscribed there
            logger.exception("no events backend for %s/%s", account, region)
            return
        if bus is None:
            return
        for rule in list(bus.rules.values()):
            try:
                rule.send_to_targets(event)  # type: ignore[arg-type]
            except Exception:
                logger.exception("rule %s could not take event %s", rule.name, event.get("id"))

    def on_rule_event(
        self,
        rule: Any,
        event: dict[str, Any],
        transform_input: bool,
        original: Callable[..., None],
    ) -> None:
        """Patched ``Rule.send_to_targets``: match like EventBridge, then dispatch."""
        if getattr(rule, "state", "ENABLED") != "ENABLED":
            return  # moto delivers to disabled rules; EventBridge does not
        pattern = rule.event_pattern.get_pattern() if rule.event_pattern else {}
        if not pattern:
            # A rule without a pattern is a schedule rule: it fires on its schedule only
            # (moto's matcher treats an empty pattern as "match everything").
            return
        if not rule.event_pattern.matches_event(event):
            return
        self.dispatch(rule, event, transform_input, original)

    def dispatch(
        self,
        rule: Any,
        event: dict[str, Any],
        transform_input: bool = True,
        original: Callable[..., None] | None = None,
    ) -> int:
        """Send the event to the rule's targets; returns how many Lambda deliveries were queued."""
        lambda_targets = [t for t in rule.targets if _arn_parts(t["Arn"])[0] == "lambda"]
        other_targets = [t for t in rule.targets if _arn_parts(t["Arn"])[0] != "lambda"]
        for target in lambda_targets:
            try:
                payload = target_payload(target, event) if transform_input else lambda_event(event)
            except Exception as exc:
                logger.warning("rule %s: input transformation failed: %s", rule.name, exc)
                continue
            self.enqueue(
                Delivery(
                    rule=rule.name,
                    rule_arn=rule.arn,
                    target_id=target.get("Id", ""),
                    function_arn=target["Arn"],
                    payload=payload,
                    source=str(event.get("source", "")),
                    detail_type=str(event.get("detail-type", "")),
                )
            )
        if other_targets and original is not None:
            view = copy.copy(rule)  # same rule, only the targets moto can deliver to
            view.targets = other_targets
            try:
                original(view, event, transform_input)
            except Exception:
                logger.exception("rule %s: moto could not deliver to its other targets", rule.name)
        return len(lambda_targets)

    def enqueue(self, delivery: Delivery) -> None:
        self.activity.begin("event")
        self._queue.put(delivery)

    # ------------------------------------------------------------------ schedules

    def schedule_rules(self) -> list[Any]:
        """Every rule with a ``ScheduleExpression``, in every account/region in use."""
        from moto.events.models import events_backends

        rules = []
        for account in list(events_backends.keys()):
            for region in list(events_backends[account].keys()):
                for bus in list(events_backends[account][region].event_buses.values()):
                    rules += [r for r in list(bus.rules.values()) if r.scheduled_expression]
        return rules

    def fire_schedule(self, rule_name: str) -> int:
        """Fire the schedule rule ``rule_name`` now (a "Scheduled Event")."""
        matches = [r for r in self.schedule_rules() if r.name == rule_name]
        if not matches:
            known = sorted({r.name for r in self.schedule_rules()})
            raise KeyError(
                f"no schedule rule named {rule_name!r}"
                + (f" (schedule rules: {', '.join(known)})" if known else " (none deployed)")
            )
        enabled = [r for r in matches if r.state == "ENABLED"]
        if not enabled:
            raise KeyError(f"schedule rule {rule_name!r} is disabled")
        return sum(self._fire(r) for r in enabled)

    def fire_all_schedules(self) -> int:
        """The ``--tick`` action: fire every enabled schedule rule once."""
        return sum(self._fire(r) for r in self.schedule_rules() if r.state == "ENABLED")

    def _fire(self, rule: Any) -> int:
        from moto.events.models import Rule

        original = getattr(Rule, "_localcloud_original_send_to_targets", None)
        return self.dispatch(rule, scheduled_event(rule), True, original)

    # ------------------------------------------------------------------ delivery

    def _work(self) -> None:
        while True:
            delivery = self._queue.get()
            if delivery is _SENTINEL:
                return
            try:
                if not self._closing:
                    self._deliver(delivery)
            except Exception:  # never let the worker die
                logger.exception("delivery %s failed unexpectedly", delivery.id)
            finally:
                self.activity.end("event")

    def _function(self, arn: str) -> Any:
        from moto.awslambda.models import lambda_backends

        _, region, account = _arn_parts(arn)
        return lambda_backends[account][region or DEFAULT_REGION].get_function(arn)

    def _deliver(self, delivery: Delivery) -> None:
        started = time.monotonic()
        record: dict[str, Any] = {
            "id": delivery.id,
            "time": iso_z(),
            "queued_at": delivery.queued_at,
            "rule": delivery.rule,
            "rule_arn": delivery.rule_arn,
            "target_id": delivery.target_id,
            "function_arn": delivery.function_arn,
            "source": delivery.source,
            "detail_type": delivery.detail_type,
            "event": delivery.payload,
        }
        try:
            fn = self._function(delivery.function_arn)
        except Exception as exc:
            record.update(status="failed", error=f"function not found: {exc}")
            self._record(record, started)
            return
        record["function"] = fn.function_name
        record["handler"] = fn.handler
        result = self.runtime.invoke(fn, delivery.payload, delivery.id)
        record.update(result)
        if record["status"] != "succeeded":
            dlq = getattr(fn, "_localcloud_dead_letter_arn", None)
            if dlq:
                record["dead_letter"] = self._send_to_dlq(dlq, delivery, record)
        self._record(record, started)

    def _send_to_dlq(self, arn: str, delivery: Delivery, record: dict[str, Any]) -> str:
        service, region, _ = _arn_parts(arn)
        body = json.dumps(delivery.payload)
        try:
            if service == "sqs":
                sqs = self.clients("sqs", region)
                url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
                sqs.send_message(
                    QueueUrl=url,
                    MessageBody=body,
                    MessageAttributes={
                        "RequestID": {"DataType": "String", "StringValue": delivery.id},
                        "ErrorMessage": {
                            "DataType": "String",
                            "StringValue": str(record.get("error", ""))[:1000] or "error",
                        },
                    },
                )
            elif service == "sns":
                self.clients("sns", region).publish(TopicArn=arn, Message=body)
            else:
                return f"unsupported dead-letter target {arn}"
        except Exception as exc:
            logger.warning("could not send delivery %s to %s: %s", delivery.id, arn, exc)
            return f"failed: {exc}"
        return arn

    def _record(self, record: dict[str, Any], started: float) -> None:
        record["duration_s"] = round(time.monotonic() - started, 3)
        with self._deliveries_lock:
            self.deliveries.append(record)
            if self.state_dir is not None:
                try:
                    with (self.state_dir / EVENTS_FILE).open("a") as handle:
                        handle.write(json.dumps(record, default=str) + "\n")
                except OSError:
                    logger.warning("could not append to %s", self.state_dir / EVENTS_FILE)
        level = logging.INFO if record["status"] == "succeeded" else logging.WARNING
        logger.log(
            level,
            "delivery %s: %s -> %s %s %s",
            record["id"][:8],
            record.get("detail_type") or record.get("source"),
            record.get("function", record["function_arn"]),
            record["status"],
            record.get("error", ""),
        )
