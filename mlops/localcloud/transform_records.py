"""Batch transform's record handling, as SageMaker documents it. Pure.

- split an input object into records (``SplitType`` ``None`` / ``Line``) and group them into
  requests (``BatchStrategy`` ``SingleRecord`` / ``MultiRecord`` within ``MaxPayloadInMB``);
- ``DataProcessing``: ``InputFilter`` and ``OutputFilter`` are JSONPath expressions over a
  record (a CSV record is an array of its values), with SageMaker's subset of JSONPath:
  ``$``, ``.name`` / ``['name']``, ``[n]``, ``[a:b]``, ``[*]`` and unions ``[0,2:4]``;
  ``JoinSource: Input`` joins each input record with its output: a CSV output is appended
  to the CSV input, a JSON output goes under ``SageMakerOutput`` of the input object
  (an input that is not an object becomes ``SageMakerInput``);
- ``AssembleWith``: ``Line`` ends every record's output with a newline, ``None``
  concatenates them.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from mlops.errors import MlopsError

MB = 1024 * 1024


class TransformError(MlopsError, ValueError):
    """The input, a filter or the model's output does not fit the job's settings."""


def split_records(data: bytes, split_type: str) -> list[bytes]:
    """The records of one input object: the whole object, or its non-empty lines."""
    if split_type == "None":
        return [data] if data.strip() else []
    if split_type == "Line":
        return [line for line in data.splitlines() if line.strip()]
    raise TransformError(
        f"SplitType {split_type} is not run by the local cloud (None and Line are)"
    )


def batches(records: Sequence[bytes], strategy: str, max_payload_mb: int) -> Iterator[list[bytes]]:
    """Requests of records: one each, or as many as fit ``max_payload_mb`` (lines joined)."""
    limit = max_payload_mb * MB if max_payload_mb else None  # 0: no limit (streaming)
    batch: list[bytes] = []
    size = 0
    for record in records:
        if limit is not None and len(record) > limit:
            raise TransformError(
                f"a record of {len(record) / MB:.1f} MB is over MaxPayloadInMB "
                f"({max_payload_mb}): split the input (SplitType Line) or raise the limit"
            )
        if strategy == "SingleRecord":
            yield [record]
            continue
        if batch and limit is not None and size + len(record) + 1 > limit:
            yield batch
            batch, size = [], 0
        batch.append(record)
        size += len(record) + 1
    if batch:
        yield batch


# --- JSONPath, SageMaker's subset ---------------------------------------------------------

_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\['([^']*)'\]|\[([^\]]*)\]")


def _indices(selector: str, length: int) -> list[int]:
    out: list[int] = []
    for part in selector.split(","):
        part = part.strip()
        if part == "*":
            out += list(range(length))
        elif ":" in part:
            low, _, high = part.partition(":")
            out += list(range(length))[
                slice(int(low) if low else None, int(high) if high else None)
            ]
        else:
            index = int(part)
            if not -length <= index < length:
                raise TransformError(f"index {index} is out of a record of {length} values")
            out.append(index % length)
    return out


def select(doc: Any, path: str) -> Any:
    """``doc`` filtered by the JSONPath ``path``; a selection of several values is a list."""
    path = path.strip()
    if not path.startswith("$"):
        raise TransformError(f"JSONPath {path!r} must start with $")
    rest, value = path[1:], doc
    while rest:
        match = _STEP.match(rest)
        if match is None:
            raise TransformError(f"JSONPath {path!r}: cannot read {rest!r}")
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if name is not None:
            if not isinstance(value, dict) or name not in value:
                raise TransformError(f"JSONPath {path!r}: the record has no {name!r}")
            value = value[name]
        else:
            if not isinstance(value, list):
                raise TransformError(f"JSONPath {path!r}: [{match.group(3)}] needs an array")
            selector = match.group(3)
            picked = [value[i] for i in _indices(selector, len(value))]
            single = "," not in selector and ":" not in selector and "*" not in selector
            value = picked[0] if single else picked
        rest = rest[match.end() :]
    return value


# --- records as values ------------------------------------------------------------------------


def _is_json(content_type: str) -> bool:
    return "json" in content_type.lower()


def parse(record: bytes, content_type: str) -> Any:
    """A record as JSONPath sees it: JSON as parsed, CSV as the array of its values."""
    text = record.decode("utf-8")
    if _is_json(content_type):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise TransformError(f"a record is not JSON: {exc}") from None
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) != 1:
        raise TransformError(f"a CSV record has {len(rows)} lines: filters need one per record")
    return rows[0]


def render(value: Any, content_type: str) -> bytes:
    if _is_json(content_type):
        return json.dumps(value).encode()
    values = value if isinstance(value, list) else [value]
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(values)
    return out.getvalue().encode()


def per_record(output: bytes, accept: str, count: int) -> list[bytes]:
    """The model's answer to ``count`` records, one part per record (to join or filter)."""
    if count == 1:
        return [output.strip()]
    if "jsonlines" in accept.lower():
        lines = [line for line in output.splitlines() if line.strip()]
        if len(lines) == count:
            return lines
    elif _is_json(accept):
        try:
            doc = json.loads(output)
        except json.JSONDecodeError as exc:
            raise TransformError(f"the model's {accept} answer is not JSON: {exc}") from None
        items = doc
        if isinstance(doc, dict) and len(doc) == 1:
            [items] = doc.values()  # e.g. {"predictions": [...]}
        if isinstance(items, list) and len(items) == count:
            return [json.dumps(item).encode() for item in items]
    else:
        lines = [line for line in output.splitlines() if line.strip()]
        if len(lines) == count:
            return lines
    raise TransformError(
        f"the model answered {count} records with output that does not split into {count} "
        "parts: use BatchStrategy SingleRecord to join or filter it"
    )


def join(record: bytes, output: bytes, content_type: str, accept: str) -> tuple[Any, str]:
    """``JoinSource: Input``: the joined record and the type filters read it as."""
    if _is_json(content_type) or _is_json(accept):
        source = parse(record, content_type) if _is_json(content_type) else record.decode()
        result = json.loads(output) if _is_json(accept) else output.decode().strip()
        if isinstance(source, dict):
            return {**source, "SageMakerOutput": result}, "application/json"
        return {"SageMakerInput": source, "SageMakerOutput": result}, "application/json"
    return parse(record, "text/csv") + parse(output, "text/csv"), "text/csv"


def assemble(parts: Sequence[bytes], assemble_with: str) -> bytes:
    if assemble_with == "Line":
        return b"".join(part.rstrip(b"\n") + b"\n" for part in parts)
    return b"".join(parts)
