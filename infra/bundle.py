"""The jobs source bundle (``code/jobs.tar.gz``), built reproducibly.

The SageMaker scikit-learn container runs ``train.py`` / ``inference.py`` from the
root of ``sagemaker_submit_directory``; the bundle holds two shims there plus the
``jobs/`` package. Same sources -> same bytes (sorted entries, mtime 0, uid/gid 0,
no ``__pycache__``), so the upload only changes when the code does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

BUNDLE_NAME = "jobs.tar.gz"

TRAIN_SHIM = '''"""SageMaker training entry point (sagemaker_program): runs jobs.train."""

from jobs.train import main

if __name__ == "__main__":
    raise SystemExit(main())
'''

INFERENCE_SHIM = '''"""SageMaker serving entry point: re-exports the handlers of jobs.inference."""

from jobs import inference as _inference

for _name in ("model_fn", "input_fn", "predict_fn", "output_fn"):
    if hasattr(_inference, _name):
        globals()[_name] = getattr(_inference, _name)
'''

_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
_SKIP_SUFFIXES = (".pyc", ".pyo")


@dataclass(frozen=True)
class Bundle:
    path: Path
    sha256: str
    files: tuple[str, ...]


def _package_files(package_dir: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(package_dir):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for file_name in names:
            if file_name.endswith(_SKIP_SUFFIXES) or file_name.startswith("."):
                continue
            files.append(Path(root) / file_name)
    return sorted(files, key=lambda p: p.relative_to(package_dir.parent).as_posix())


def _add(tar: tarfile.TarFile, arcname: str, data: bytes) -> None:
    info = tarfile.TarInfo(arcname)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(data))


def bundle_bytes(repo_root: Path) -> tuple[bytes, tuple[str, ...]]:
    """Return the bundle's bytes and member names (whatever ``jobs/`` holds right now)."""
    entries: dict[str, bytes] = {
        "train.py": TRAIN_SHIM.encode(),
        "inference.py": INFERENCE_SHIM.encode(),
    }
    package = repo_root / "jobs"
    if package.is_dir():
        for path in _package_files(package):
            entries[path.relative_to(repo_root).as_posix()] = path.read_bytes()
        requirements = package / "requirements.txt"
        if requirements.is_file():  # the framework container pip-installs it from the root
            entries["requirements.txt"] = requirements.read_bytes()
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for arcname in sorted(entries):
            _add(tar, arcname, entries[arcname])
    return raw.getvalue(), tuple(sorted(entries))


def build_bundle(repo_root: Path, out_dir: Path | None = None) -> Bundle:
    """Write ``<out_dir>/jobs.tar.gz`` (default ``<repo>/.mlops/build``) atomically."""
    out_dir = out_dir or repo_root / ".mlops" / "build"
    out_dir.mkdir(parents=True, exist_ok=True)
    data, files = bundle_bytes(repo_root)
    path = out_dir / BUNDLE_NAME
    digest = hashlib.sha256(data).hexdigest()
    if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest):
        # Several processes may build at once (tests, previews): write, then rename.
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".jobs-", suffix=".tar.gz")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return Bundle(path=path, sha256=digest, files=files)
