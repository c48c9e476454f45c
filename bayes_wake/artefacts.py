"""Writing artefacts safely: atomic files, staged output folders, provenance.

A run either leaves all its files in the output folder or none of them: files are written to a
staging folder beside the target and moved in only when the whole run succeeded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["atomic_path", "staged_directory", "provenance", "file_sha256", "package_versions"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def staged_directory(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder; on success move its files into ``out``, on failure drop it.

    Files already in ``out`` that the run does not write are left alone; files it writes
    replace the old ones only after the whole run succeeded.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        yield stage
        for item in stage.rglob("*"):
            if item.is_file():
                os.chmod(item, 0o666 & ~_umask())
        out.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.rglob("*")):
            if item.is_file():
                target = out / item.relative_to(stage)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(item, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of bayes_wake and the libraries its numbers depend on."""
    out = {"python": platform.python_version()}
    for name in ("bayes_wake", "numpy", "scipy", "pandas", "xarray", "statsmodels", "pymc",
                 "pytensor", "arviz", "nutpie"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def provenance(settings: dict, inputs: dict[str, str | None] | None = None) -> dict:
    """A provenance record: settings, input files with hashes, versions, time of the run."""
    files = {}
    for role, path in (inputs or {}).items():
        if path and Path(path).is_file():
            files[role] = {"path": str(path), "sha256": file_sha256(path)}
        elif path:
            files[role] = {"path": str(path)}
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": settings,
        "inputs": files,
        "versions": package_versions(),
    }


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return Path(path)
