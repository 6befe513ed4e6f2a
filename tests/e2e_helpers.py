"""Helpers for the whole-loop tests: a demo cloud that outlives the demo, lookups by job."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from mlops.localcloud.server import LocalCloud
from mlops.target import Target

REPO_ROOT = Path(__file__).resolve().parents[1]

RETRAIN, PROMOTE, DRIFT = "retrain", "promote", "drift"


class KeptCloud(LocalCloud):
    """A LocalCloud that the demo's ``with`` does not close: the tests go on using it.

    ``exits`` counts the demo's exits; :meth:`close` (the fixture's teardown) stops it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exits = 0

    def __exit__(self, *exc: object) -> None:
        self.exits += 1


class ClosingRecorder(LocalCloud):
    """A LocalCloud that records its life: started, closed, and the last one made."""

    last: ClosingRecorder | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = False
        ClosingRecorder.last = self

    def close(self) -> None:
        super().close()
        self.closed = True


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def deliveries_of(
    deliveries: list[dict[str, Any]], function: str, detail_type: str | None = None
) -> list[dict[str, Any]]:
    """Deliveries to the stack's ``function`` (retrain / promote / drift), optionally by type."""
    return [
        d
        for d in deliveries
        if str(d.get("function", "")).endswith(f"-{function}")
        and (detail_type is None or d.get("detail_type") == detail_type)
    ]


def job_of_delivery(delivery: dict[str, Any]) -> str:
    result = delivery.get("result") or {}
    return str(result.get("job_name", ""))


def read_json(target: Target, bucket_output: str, key: str) -> dict[str, Any]:
    body = target.client("s3").get_object(Bucket=target.output(bucket_output), Key=key)["Body"]
    return dict(json.loads(body.read()))


def endpoint_model_data(target: Target) -> str:
    """The ModelDataUrl behind the endpoint's current config."""
    sm = target.client("sagemaker")
    config_name = sm.describe_endpoint(EndpointName=target.output("endpointName"))[
        "EndpointConfigName"
    ]
    config = sm.describe_endpoint_config(EndpointConfigName=config_name)
    model = config["ProductionVariants"][0]["ModelName"]
    return str(sm.describe_model(ModelName=model)["PrimaryContainer"]["ModelDataUrl"])
