"""Pure converters from Pulumi's input shapes to the shapes the AWS APIs take.

No AWS calls here: camelCase to PascalCase, string flags to bools, tag maps to tag
lists, wire floats back to ints, assets to zip bytes, policy documents to text.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pulumi

from mlops.deploy.errors import DeployError


def whole_numbers(value: Any) -> Any:
    """Pulumi's wire format turns every number into a float; AWS wants ints back."""
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def jsonable(value: Any) -> Any:
    """`value` with anything JSON cannot hold (assets, outputs...) as its repr."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return repr(value)


def pascal(value: Any, renames: dict[str, str] | None = None) -> Any:
    """camelCase Pulumi inputs -> PascalCase AWS API shapes, recursively."""
    renames = renames or {}
    if isinstance(value, dict):
        out = {}
        for key, inner in value.items():
            if inner is None:
                continue
            name = renames.get(key, key[:1].upper() + key[1:])
            out[name] = pascal(inner, renames)
        return out
    if isinstance(value, list):
        return [pascal(v, renames) for v in value]
    return value


_BOOL_FIELDS = {"AssociatePublicIpAddress", "DeleteOnTermination", "Encrypted"}


def ec2_bools(value: Any) -> Any:
    """The provider types some EC2 flags as "true"/"false" strings; the API wants bools."""
    if isinstance(value, dict):
        return {
            k: (v == "true" if k in _BOOL_FIELDS and isinstance(v, str) else ec2_bools(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [ec2_bools(v) for v in value]
    return value


def tag_list(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """The resource's `tags` map as AWS's [{"Key", "Value"}] list."""
    return [{"Key": k, "Value": str(v)} for k, v in (inputs.get("tags") or {}).items()]


def policy_text(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


def zip_archive(archive: Any) -> bytes:
    """Zip a pulumi AssetArchive/FileArchive the way the provider would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        _add_to_zip(zf, archive, "")
    return buffer.getvalue()


def _add_to_zip(zf: zipfile.ZipFile, item: Any, prefix: str) -> None:
    if isinstance(item, pulumi.AssetArchive):
        for name, inner in item.assets.items():
            _add_to_zip(zf, inner, f"{prefix}{name}")
    elif isinstance(item, pulumi.FileArchive):
        root = Path(item.path)
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, f"{prefix}/{path.relative_to(root)}".lstrip("/"))
    elif isinstance(item, pulumi.FileAsset):
        zf.write(item.path, prefix)
    elif isinstance(item, pulumi.StringAsset):
        zf.writestr(prefix, item.text)
    else:
        raise DeployError(f"unsupported archive member {prefix!r}: {type(item).__name__}")
