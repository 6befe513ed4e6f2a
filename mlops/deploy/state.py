"""The deploy state file: each logical resource's physical id and outputs.

`.mlops/stacks/<stack>.json` is what lets a re-run update in place, a deploy that
failed halfway converge, and `mlops down` delete in reverse order.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.deploy.shapes import jsonable

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def state_path(state_dir: Path, stack: str) -> Path:
    return state_dir / "stacks" / f"{_SAFE.sub('_', stack)}.json"


@dataclass
class DeployState:
    """Logical resource -> physical id and outputs, persisted after every change."""

    path: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(cls, path: Path) -> DeployState:
        if path.exists():
            data = json.loads(path.read_text())
            return cls(path, data.get("resources", {}), data.get("outputs", {}))
        return cls(path)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            return self.resources.get(key)

    def put(self, key: str, typ: str, physical_id: str, outputs: dict[str, Any]) -> None:
        with self._lock:
            order = self.resources.get(key, {}).get("order", len(self.resources))
            self.resources[key] = {
                "type": typ,
                "id": physical_id,
                "outputs": jsonable(outputs),
                "order": order,
            }
            self.save()

    def drop(self, key: str) -> None:
        with self._lock:
            self.resources.pop(key, None)
            self.save()

    def save(self) -> None:
        """Write the file atomically (a crash leaves the previous version, never half)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"resources": self.resources, "outputs": self.outputs}, indent=1))
        tmp.replace(self.path)
