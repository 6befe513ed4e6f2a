"""Typed, validating reads of one namespace of configuration values.

An unset key falls back to its default in the key table (:data:`infra.config.keys.KEY_DEFAULTS`),
parsed like a value that was set, so no default is written twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from infra.config.settings import StackConfigError

#: ``get("ns:key")`` -> the raw string value, or ``None`` when unset (as ``pulumi.Config.get``).
Getter = Callable[[str], str | None]


class Reader:
    """Typed, validating access to one namespace of config values.

    ``defaults`` maps a key name to its default string (``None``: no default).
    """

    def __init__(self, get: Getter, namespace: str, defaults: Mapping[str, str | None]) -> None:
        self._get = get
        self._ns = namespace
        self._defaults = defaults

    def key(self, name: str) -> str:
        return f"{self._ns}:{name}"

    def raw(self, name: str) -> str | None:
        value = self._get(self.key(name))
        if value is None:
            return None
        value = str(value).strip()
        return value or None

    def default(self, name: str) -> str:
        """The key's literal default (LookupError if the table gives none: a program bug)."""
        value = self._defaults[name]
        if value is None or value.startswith("("):
            raise LookupError(f"{self.key(name)} has no literal default in the key table")
        return value

    def fail(self, name: str, value: object, expected: str) -> StackConfigError:
        return StackConfigError(f"{self.key(name)}: {value!r} is invalid; expected {expected}")

    def string(self, name: str) -> str:
        value = self.raw(name)
        return self.default(name) if value is None else value

    def choice(self, name: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        value = self.string(name)
        if value not in allowed:
            raise self.fail(name, value, f"one of {', '.join(allowed)}")
        return value

    def matching(self, name: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.raw(name)
        if value is None:
            if self._defaults[name] is None:
                raise StackConfigError(f"{self.key(name)} is required ({what})")
            value = self.default(name)
        if not pattern.match(value):
            raise self.fail(name, value, what)
        return value

    def optional(self, name: str, pattern: re.Pattern[str], what: str) -> str | None:
        value = self.raw(name)
        if value is not None and not pattern.match(value):
            raise self.fail(name, value, what)
        return value

    def integer(self, name: str, *, low: int = 1, high: int | None = None) -> int:
        value = self.raw(name)
        if value is None:
            return int(self.default(name))
        return self._int(name, value, low, high)

    def optional_integer(self, name: str, low: int = 1) -> int | None:
        value = self.raw(name)
        return None if value is None else self._int(name, value, low, None)

    def _int(self, name: str, value: str, low: int, high: int | None) -> int:
        bounds = f"an integer >= {low}" if high is None else f"an integer in {low}..{high}"
        try:
            number = int(value)
        except ValueError:
            raise self.fail(name, value, bounds) from None
        if number < low or (high is not None and number > high):
            raise self.fail(name, value, bounds)
        return number

    def number(
        self, name: str, *, low: float, high: float | None = None, strict: bool = False
    ) -> float:
        value = self.raw(name)
        if value is None:
            return float(self.default(name))
        op = ">" if strict else ">="
        bounds = f"a number {op} {low}" + ("" if high is None else f" and <= {high}")
        try:
            number = float(value)
        except ValueError:
            raise self.fail(name, value, bounds) from None
        if number != number or (number <= low if strict else number < low):  # NaN or too small
            raise self.fail(name, value, bounds)
        if high is not None and number > high:
            raise self.fail(name, value, bounds)
        return number
