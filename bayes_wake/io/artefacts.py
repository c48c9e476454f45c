"""Writing artefacts safely: atomic files, staged output folders, provenance, CSV tables.

A run either leaves all its files in the output folder or none of them: files are written to a
staging folder beside the target, and the staging folder replaces the target whole only when
the whole run succeeded, so files of an earlier run never sit beside the new ones. A folder
that this package did not write is never replaced unless asked (``overwrite``); every output
folder carries a small marker file (:data:`MARKER`) that says it was written here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bayes_wake.errors import OutputFolderError

__all__ = ["atomic_path", "staged_directory", "provenance", "file_sha256", "package_versions",
           "check_output_folder", "prepared_output", "remove_stale_staging", "keep_in_output",
           "is_package_output", "write_table", "write_mwa_tables", "csv_header_name", "MARKER"]

#: Hidden file in every output folder this package writes (what ``--out`` checks for).
MARKER = ".bayes-wake-output"
_STAGING = ".staging-"
# Children of output folders that the running process writes in place (the resumable task
# store of ``sensitivity``): kept when the staged folder replaces the old one.
_KEPT: set[Path] = set()
# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


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
def staged_directory(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on success it replaces ``out`` whole, on failure it is dropped.

    Nothing of an earlier run in ``out`` survives a successful run, except what this process
    registered with :func:`keep_in_output` (the task store of a resumable run); a failed run
    leaves ``out`` as it was. Stale staging folders of killed runs beside ``out`` are removed.

    Raises
    ------
    OutputFolderError
        ``out`` cannot be written, or is a non-empty folder this package did not write (and
        ``overwrite`` is False).
    """
    out = check_output_folder(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))
    try:
        yield stage
        for item in stage.rglob("*"):
            if item.is_file():
                os.chmod(item, 0o666 & ~_umask())
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700
        _write_marker(stage)
        _replace_folder(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _staging_prefix(out: Path) -> str:
    return f".{out.name}{_STAGING}p{os.getpid()}-"


def _replace_folder(stage: Path, out: Path) -> None:
    """Put ``stage`` in the place of ``out``, moving the kept children of ``out`` across."""
    target = out.resolve()
    kept = sorted(p for p in _KEPT if p.parent == target)
    _KEPT.difference_update(kept)
    if not out.exists():
        os.rename(stage, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out) + "old-"))
    os.rename(out, old)  # onto the empty folder just made, so the name is ours alone
    moved = []
    try:
        for path in kept:
            source, dest = old / path.name, stage / path.name
            if source.exists() and not dest.exists():
                os.rename(source, dest)
                moved.append((source, dest))
        os.rename(stage, out)
    except BaseException:
        for source, dest in moved:
            os.rename(dest, source)
        if not out.exists():
            os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_marker(folder: Path) -> None:
    record = {"written_by": "bayes_wake", "version": package_versions().get("bayes_wake")}
    (folder / MARKER).write_text(json.dumps(record) + "\n")


def is_package_output(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was written by bayes_wake: it holds :data:`MARKER`, or (folders
    of versions before the marker) a ``provenance.json`` of this package."""
    folder = Path(folder)
    if (folder / MARKER).is_file():
        return True
    try:
        record = json.loads((folder / "provenance.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and "bayes_wake" in (record.get("versions") or {})


def keep_in_output(path: str | os.PathLike) -> None:
    """Register ``path``, a child of an output folder that this run writes in place (the
    resumable task store), so :func:`staged_directory` keeps it when it replaces the folder.

    A new or empty output folder is marked as written by bayes_wake on the way, so that a
    killed run can be resumed; a folder holding other files is left unmarked.
    """
    path = Path(path).resolve()
    folder = path.parent
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        _write_marker(folder)
    _KEPT.add(path)


def check_output_folder(out: str | os.PathLike, *, overwrite: bool = False,
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Check, before any work, that ``out`` can be written as an output folder.

    Removes stale staging folders of killed runs beside ``out`` (see
    :func:`remove_stale_staging`) and returns ``out`` as a Path.

    Parameters
    ----------
    out
        The output folder.
    overwrite
        Replace a non-empty folder that bayes_wake did not write.
    inputs
        The run's input files and folders: none may lie inside ``out``, which the run replaces
        whole.

    Raises
    ------
    OutputFolderError
        A parent of ``out`` is a file (``base.csv/sub``, ``/dev/null/x``), the nearest existing
        parent takes no new folder (``/proc/x``, no permission), ``out`` is a file, ``out``
        holds one of ``inputs``, or ``out`` is a non-empty folder that bayes_wake did not write
        and ``overwrite`` is False.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"--out {out}: is a file, not a folder")
    inside = [Path(p) for p in inputs if _within(Path(p), out)]
    if inside:
        raise OutputFolderError(
            f"--out {out}: holds the input {inside[0]}, and a run replaces its --out folder "
            "whole; move the input or write to another folder")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputFolderError(f"--out {out}: {parent} is not a folder")
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=".bayes-wake-probe-")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputFolderError(f"--out {out}: cannot create a folder in {parent} ({reason})"
                                ) from None
    os.rmdir(probe)
    if out.is_dir() and not overwrite and any(out.iterdir()) and not is_package_output(out):
        raise OutputFolderError(
            f"--out {out}: the folder is not empty and was not written by bayes-wake; choose "
            "another folder, or pass --overwrite to replace it whole")
    remove_stale_staging(out)
    return out


def _within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (links resolved)."""
    if not folder.exists():
        return False
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def remove_stale_staging(out: str | os.PathLike) -> int:
    """Remove the hidden ``.NAME.staging-*`` folders beside ``out`` that runs killed before
    they finished left behind (their process is gone); returns how many."""
    out = Path(out)
    if not out.parent.is_dir():
        return 0
    pattern = re.compile(re.escape(f".{out.name}{_STAGING}") + r"(?:p(\d+)-)?")
    removed = 0
    for path in out.parent.iterdir():
        found = pattern.match(path.name)
        if found is None or not path.is_dir() or _alive(found.group(1)):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


def _alive(pid: str | None) -> bool:
    if pid is None:  # named by a version before the process id was in the name
        return False
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


@contextlib.contextmanager
def prepared_output(out: str | os.PathLike, *, overwrite: bool = False,
                    inputs: Sequence[str | os.PathLike] = ()) -> Iterator[Path]:
    """The output folder of a command, checked before any work (:func:`check_output_folder`).

    With ``overwrite``, an existing non-empty ``out`` is set aside for the run, so nothing of
    it is read or kept (not even a task store); it is deleted when the run succeeds and put
    back when the run fails.
    """
    out = check_output_folder(out, overwrite=overwrite, inputs=inputs)
    aside = None
    if overwrite and out.is_dir() and any(out.iterdir()):
        aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out) + "old-"))
        os.rename(out, aside)
    try:
        yield out
    except BaseException:
        if aside is not None:
            if out.exists():  # what the failed run wrote in place (a task store)
                shutil.rmtree(out, ignore_errors=True)
            os.rename(aside, out)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def csv_header_name(name: object) -> str:
    """A column name as written in a CSV header: names a spreadsheet would read as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading ``'``, as
    OWASP recommends against CSV injection."""
    text = str(name)
    return "'" + text if text.startswith(_FORMULA_START) else text


def write_table(table, path: str | os.PathLike, *, float_format: str | None = "%.15g") -> Path:
    """Write a pandas table as CSV, atomically: the one CSV writer of the package.

    Numbers get 15 significant digits (R-like; ``float_format=None`` for the shortest exact
    text), NA is an empty cell, and header names are escaped by :func:`csv_header_name`.
    """
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format=float_format, na_rep="",
                     header=[csv_header_name(c) for c in table.columns])
    return Path(path)


def write_mwa_tables(result, folder: str | os.PathLike) -> dict[str, Path]:
    """Write the ``estimates``, ``matching``, ``SUTVA`` and ``wakes`` tables of an
    :class:`~bayes_wake.mwa.analysis.MWAResult` to ``folder`` through :func:`write_table`."""
    folder = Path(folder)
    tables: Mapping = {"estimates": result.estimates, "matching": result.matching,
                       "SUTVA": result.sutva, "wakes": result.wakes}
    return {name: write_table(table, folder / f"{name}.csv") for name, table in tables.items()}


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
