"""Writing artefacts safely: atomic files, staged output folders, provenance, CSV tables.

A run either leaves all its files in the output folder or none of them: files are written to a
staging folder beside the target, and the staging folder replaces the target whole only when
the whole run succeeded, so files of an earlier run never sit beside the new ones. A folder
that this package did not write is never replaced unless asked (``overwrite``); every output
folder carries a marker file (:data:`MARKER`, written last) that lists the files written here,
and a folder counts as this package's only while it holds nothing else.

A folder replaced on the way is first renamed aside (``.NAME.staging-pPID-old-*``); the marker
of the new folder names it, and only a folder so named is ever deleted by a later run. One that
a killed run left is put back, or kept with a warning (:func:`remove_stale_staging`).
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
import warnings
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from bayes_wake.errors import OutputFolderError

__all__ = ["atomic_path", "staged_directory", "provenance", "file_sha256", "package_versions",
           "check_output_folder", "prepared_output", "remove_stale_staging", "keep_in_output",
           "is_package_output", "write_table", "csv_text_cell", "write_netcdf",
           "write_mwa_tables", "csv_header_name", "MARKER", "STAGING_MARKER"]

#: Hidden file in every output folder this package writes: JSON that lists the files written
#: there (``NAME/`` for a folder owned whole, the task store) and the folders set aside for it.
MARKER = ".bayes-wake-output"
#: Empty file in every staging folder of a running command: only a folder holding it (or
#: an empty one, or one with a bayes_wake :data:`MARKER`) is ever deleted as a killed run's.
STAGING_MARKER = ".bayes-wake-staging"
_STAGING = ".staging-"
#: The most bytes of ``--out``'s name that a staging name carries: with ".", ".staging-",
#: "pPID-", "old-" and mkdtemp's 8 characters it stays within a file name's 255 bytes.
_STEM_BYTES = 200
#: The longest file name (bytes) of the file systems Linux, macOS and Windows use.
_NAME_MAX = 255
# Children of output folders that the running process writes in place (the resumable task
# store of ``sensitivity``): kept when the staged folder replaces the old one.
_KEPT: set[Path] = set()
# Folders this process set aside while it replaces an output folder (resolved paths).
_ASIDE: set[Path] = set()
# Folders of killed runs that this process kept and warned about (once each).
_WARNED: set[Path] = set()
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
    leaves ``out`` as it was. What killed runs left beside ``out`` is cleared up first
    (:func:`remove_stale_staging`).

    Raises
    ------
    OutputFolderError
        ``out`` cannot be written, or holds files this package did not write (and
        ``overwrite`` is False).
    """
    out = check_output_folder(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))
    try:
        (stage / STAGING_MARKER).touch()
        yield stage
        for item in stage.rglob("*"):
            if item.is_file():
                os.chmod(item, 0o666 & ~_umask())
        os.chmod(stage, 0o777 & ~_umask())  # mkdtemp makes 0700
        _replace_folder(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _staging_prefix(out: Path) -> str:
    return f".{_staging_stem(out)}{_STAGING}p{os.getpid()}-"


def _staging_stem(out: Path) -> str:
    """``out``'s name as staging names carry it: whole, or, for a name too long to take the
    staging suffixes within 255 bytes, its start and a hash of the whole name (so two long
    names that share a start do not share staging folders)."""
    name = out.name
    if len(os.fsencode(name)) <= _STEM_BYTES:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    head = name
    while len(os.fsencode(head)) > _STEM_BYTES - len(digest) - 1:
        head = head[:-1]
    return f"{head}~{digest}"


def _replace_folder(stage: Path, out: Path) -> None:
    """Put ``stage`` in the place of ``out``, moving the kept children of ``out`` across.

    The marker goes into ``stage`` last, just before the rename, and names the folders set
    aside for it: a run killed before the rename leaves them to be put back, one killed after
    leaves them to be deleted.
    """
    target = out.resolve()
    kept = sorted(p for p in _KEPT if p.parent == target)
    _KEPT.difference_update(kept)
    old = None
    try:
        with _signals_held():  # an interrupt lands after the swap, done or undone
            old = _swap_in(stage, out, kept)
    finally:
        if old is not None:  # the new folder is in place (its marker names `old`)
            _discard(old)


def _swap_in(stage: Path, out: Path, kept: Sequence[Path]) -> Path | None:
    """The renames of :func:`_replace_folder`: the kept children of ``out`` into ``stage``,
    ``out`` aside, ``stage`` to ``out``. Returns the folder set aside (or None); on an error
    every rename is undone."""
    moved, old = [], None
    try:
        for path in kept:
            source, dest = out / path.name, stage / path.name
            if source.exists() and not dest.exists():
                os.rename(source, dest)
                moved.append((source, dest))
        if out.exists():
            old = _set_aside(out)
        aside = [p.name for p in _ASIDE if p.parent == out.parent.resolve()
                 and p.name.startswith(_staging_prefix(out) + "old-")]
        _write_marker(stage, owned=[p.name for p in kept], replaces=aside)
        (stage / STAGING_MARKER).unlink(missing_ok=True)  # after the marker: never unmarked
        os.rename(stage, out)
    except BaseException:
        if old is not None and not out.exists():
            _put_back(old, out)
        for source, dest in moved:
            os.rename(dest, source)
        raise
    return old


def _set_aside(out: Path) -> Path:
    """Rename ``out`` to a new hidden ``.NAME.staging-pPID-old-*`` folder beside it."""
    aside = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out) + "old-"))
    os.rename(out, aside)  # onto the empty folder just made, so the name is ours alone
    _ASIDE.add(aside.resolve())
    return aside


def _put_back(aside: Path, out: Path) -> None:
    """Rename ``aside`` back to ``out``; what stands at ``out`` (what a failed or killed run
    wrote there) is renamed to a staging folder first and then removed."""
    trash = None
    if out.exists():
        trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out)))
        os.rename(out, trash)
        (trash / STAGING_MARKER).touch()
    os.rename(aside, out)
    _ASIDE.discard(aside.resolve())
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _discard(aside: Path) -> None:
    _ASIDE.discard(aside.resolve())
    shutil.rmtree(aside, ignore_errors=True)


def _write_marker(folder: Path, *, owned: Sequence[str] = (),
                  replaces: Sequence[str] = ()) -> None:
    """Write :data:`MARKER` into ``folder``: every file in it, ``NAME/`` for each child folder
    in ``owned`` (the task store, owned whole, listed before it exists), and ``replaces``,
    the folders set aside for this one."""
    files = {*_entries(folder, owned), *(f"{name}/" for name in owned)}
    record = {"written_by": "bayes_wake", "version": package_versions().get("bayes_wake"),
              "files": sorted(files), "replaces": sorted(replaces)}
    write_json(record, folder / MARKER)


def _entries(folder: Path, owned: Sequence[str] | set[str] = ()) -> list[str]:
    """Every file and link under ``folder`` (paths relative to it, the marker left out), and
    ``NAME/`` for each existing top-level folder in ``owned``, whose insides are not listed."""
    found = []
    for root, dirs, files in os.walk(folder):
        here = Path(root).relative_to(folder)
        if here == Path("."):
            found += [f"{name}/" for name in dirs if name in owned]
            dirs[:] = [name for name in dirs if name not in owned]
            files = [name for name in files if name not in (MARKER, STAGING_MARKER)]
        links = [name for name in dirs if os.path.islink(os.path.join(root, name))]
        found += [(here / name).as_posix() for name in [*files, *links]]
    return sorted(found)


def _marker(folder: Path) -> dict | None:
    """The marker of ``folder`` when it is one this version writes (it lists files)."""
    try:
        record = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("written_by") != "bayes_wake":
        return None
    files = record.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return record


def _unlisted(folder: Path) -> list[str] | None:
    """The files in ``folder`` that its marker does not list; None without such a marker."""
    record = _marker(folder)
    if record is None:
        return None
    listed = set(record["files"])
    owned = {name[:-1] for name in listed if name.endswith("/")}
    return [name for name in _entries(folder, owned) if name not in listed]


def is_package_output(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was written by bayes_wake and holds nothing else: its
    :data:`MARKER` parses and lists every file in it."""
    return _unlisted(Path(folder)) == []


def _holds_only_stores(folder: Path) -> bool:
    """True when ``folder`` is empty or holds only task stores of bayes_wake: what a run
    writes in place before its outputs (a killed run's half-written folder)."""
    if not folder.is_dir() or folder.is_symlink():
        return False
    if not any(folder.iterdir()):
        return True
    record = _marker(folder)
    return (is_package_output(folder)
            and all(name.endswith("/") for name in record["files"]))


def _refusal(out: Path) -> str | None:
    """Why the non-empty folder ``out`` is not this package's to replace, or None."""
    unlisted = _unlisted(out)
    if unlisted:
        return f"it holds {_named(unlisted)}, which bayes-wake did not write"
    if unlisted is not None:
        return None
    if not (out / MARKER).exists():
        return "the folder is not empty and was not written by bayes-wake"
    found = _entries(out)
    return (f"its marker {MARKER} lists no files (an earlier version of bayes-wake, or not "
            f"bayes-wake, wrote it), so bayes-wake cannot tell its files from yours: "
            f"{_named(found)}") if found else None


def _named(names: Sequence[str], shown: int = 3) -> str:
    """``a``, ``a and b``, ``a, b and c``, ``a, b, c and 4 more``."""
    if len(names) <= shown:
        return " and ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
    return f"{', '.join(names[:shown])} and {len(names) - shown} more"


def keep_in_output(path: str | os.PathLike) -> None:
    """Register ``path``, a child of an output folder that this run writes in place (the
    resumable task store), so :func:`staged_directory` keeps it when it replaces the folder.

    A new or empty output folder is marked as written by bayes_wake on the way, and the marker
    of a folder bayes_wake wrote lists ``path``, so that a killed run can be resumed; a folder
    holding other files is left unmarked.
    """
    path = Path(path).resolve()
    folder = path.parent
    if not folder.exists() or not any(folder.iterdir()):
        folder.mkdir(parents=True, exist_ok=True)
        _write_marker(folder, owned=[path.name])
    elif is_package_output(folder):
        record = _marker(folder)
        owned = [name[:-1] for name in record["files"] if name.endswith("/")]
        if path.name not in owned:
            _write_marker(folder, owned=[*owned, path.name],
                          replaces=record.get("replaces", []))
    _KEPT.add(path)


def check_output_folder(out: str | os.PathLike, *, overwrite: bool = False,
                        inputs: Sequence[str | os.PathLike] = ()) -> Path:
    """Check, before any work, that ``out`` can be written as an output folder.

    First clears up what killed runs left beside ``out`` (see :func:`remove_stale_staging`:
    a folder they set aside is put back); returns ``out`` as a Path.

    Parameters
    ----------
    out
        The output folder.
    overwrite
        Replace a non-empty folder that holds files bayes_wake did not write.
    inputs
        The run's input files and folders: none may lie inside ``out``, which the run replaces
        whole.

    Raises
    ------
    OutputFolderError
        A parent of ``out`` is a file (``base.csv/sub``, ``/dev/null/x``), the nearest existing
        parent takes no new folder (``/proc/x``, no permission), ``out`` is a file, ``out``
        holds one of ``inputs``, or ``out`` holds files that its marker does not list (or has
        no marker that lists files) and ``overwrite`` is False, or ``out``'s name is longer
        than a file name can be (255 bytes).
    """
    out = Path(out)
    if len(os.fsencode(out.name)) > _NAME_MAX:
        raise OutputFolderError(f"out={out.name[:40]}...: a folder name of "
                                f"{len(os.fsencode(out.name)):,} bytes; file systems take at "
                                f"most {_NAME_MAX}")
    out = _resolved_output(out)
    remove_stale_staging(out)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"out={out}: is a file, not a folder")
    inside = [Path(p) for p in inputs if _within(Path(p), out)]
    if inside:
        raise OutputFolderError(
            f"out={out}: holds the input {inside[0]}, and a run replaces that folder "
            "whole; move the input or write to another folder")
    parent = out.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputFolderError(f"out={out}: {parent} is not a folder")
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=_staging_prefix(out))  # stale if killed
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputFolderError(f"out={out}: cannot create a folder in {parent} ({reason})"
                                ) from None
    os.rmdir(probe)
    refusal = _refusal(out) if out.is_dir() and not overwrite and any(out.iterdir()) else None
    if refusal:
        raise OutputFolderError(f"out={out}: {refusal}; choose another folder, or pass "
                                "overwrite=True to replace it whole")
    return out


def _resolved_output(out: Path) -> Path:
    """``out`` as the folder a run replaces: ``.``, ``x/..`` and a link resolved to the real
    folder (the link stays, pointing at the new folder); refused when it is a mount point or
    holds the folder the command runs in.

    Raises
    ------
    OutputFolderError
        ``out`` is a mount point (a file system's root cannot be replaced), or it is or holds
        the current folder.
    """
    given = out
    if out.name in ("", ".", "..") or ".." in out.parts or out.is_symlink():
        out = Path(os.path.realpath(out))
    if out.is_dir() and os.path.ismount(out):
        raise OutputFolderError(f"out={given}: is a mount point, which a run cannot replace "
                                "whole; name a new folder inside it")
    if out.exists() and _within(Path.cwd(), out):
        raise OutputFolderError(f"out={given}: is (or holds) the folder you run in, and a "
                                "run replaces that folder whole; name a new folder")
    return out


def _within(path: Path, folder: Path) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (links resolved)."""
    if not folder.exists():
        return False
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def remove_stale_staging(out: str | os.PathLike) -> int:
    """Clear up the hidden ``.NAME.staging-*`` folders beside ``out`` that runs killed before
    they finished left behind (their process is gone); returns how many were removed.

    Staging folders are removed when they are the package's own (:func:`_is_staging`: empty,
    or holding :data:`STAGING_MARKER` or a bayes_wake :data:`MARKER`); a folder that only
    carries a staging name (a user's ``.out.staging-mybackup``) is kept, with a warning. A
    folder set aside (``-old-``) is removed only when it is empty or the marker of ``out``
    names it (the run that set it aside put its new folder in place). Any other is put back
    as ``out`` when ``out`` is missing or holds only what a killed run wrote in place (its
    task store), and else kept; a warning says which.
    """
    out = Path(out)
    pattern = re.compile(re.escape(f".{_staging_stem(out)}{_STAGING}") + r"p(\d+)-(old-)?")
    try:
        beside = sorted(out.parent.iterdir())
    except OSError:  # no folder, no permission: check_output_folder says so
        return 0
    removed, aside = 0, []
    for path in beside:
        found = pattern.match(path.name)
        if found is None or not path.is_dir() or _alive(found.group(1)):
            continue
        if found.group(2) and not _replaced(path, out):
            aside.append(path)
            continue
        if not found.group(2) and not _is_staging(path):
            _warn_once(path, f"kept {path}: named like a bayes-wake staging folder, but "
                             "bayes-wake did not make it")
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    for path in sorted(aside, key=_holds_only_stores):  # a user's folder goes back first
        _restore(path, out)
    return removed


def _is_staging(path: Path) -> bool:
    """True for a staging folder of this package: empty (killed right after it was made),
    holding :data:`STAGING_MARKER`, or a bayes_wake output (a failed run's folder renamed
    to a staging name before the marker was written into it)."""
    return (not any(path.iterdir()) or (path / STAGING_MARKER).is_file()
            or _marker(path) is not None)


def _warn_once(path: Path, message: str) -> None:
    if path not in _WARNED:
        _WARNED.add(path)
        warnings.warn(message, stacklevel=4)


def _replaced(aside: Path, out: Path) -> bool:
    """True when ``aside`` is empty or named by the marker of ``out`` as replaced by it."""
    record = _marker(out) if out.is_dir() else None
    return not any(aside.iterdir()) or aside.name in (record or {}).get("replaces", [])


def _restore(aside: Path, out: Path) -> None:
    """Put back ``aside``, set aside from ``out`` by a killed run, or keep it; warn which."""
    story = "a bayes-wake run that was killed before it finished had set it aside"
    if not out.exists() or _holds_only_stores(out):
        try:
            _put_back(aside, out)
        except OSError as exc:
            story += f", and it cannot be put back ({exc.strerror or type(exc).__name__})"
        else:
            warnings.warn(f"put back {out}: {story} as {aside.name}", stacklevel=4)
            return
    _warn_once(aside, f"kept {aside}: {story} from {out}, which now holds other files; "
                      "move it back or delete it yourself")


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
    return not _zombie(pid)


def _zombie(pid: str) -> bool:
    """True when the process has exited and waits to be reaped (a run killed under
    ``timeout``, whose parent died with it, stays so until init reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (macOS) or gone
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


@contextlib.contextmanager
def prepared_output(out: str | os.PathLike, *, overwrite: bool = False,
                    inputs: Sequence[str | os.PathLike] = ()) -> Iterator[Path]:
    """The output folder of a command, checked before any work (:func:`check_output_folder`).

    With ``overwrite``, an existing non-empty ``out`` is set aside for the run, so nothing of
    it is read or kept (not even a task store); it is deleted when the run succeeds and put
    back when the run fails (or, killed, by the next run: :func:`remove_stale_staging`).
    """
    out = check_output_folder(out, overwrite=overwrite, inputs=inputs)
    claim = _claim(out)
    aside = None
    try:
        with _signals_held():  # Ctrl-C or SIGTERM here arrive once `aside` is known
            if overwrite and out.is_dir() and any(out.iterdir()):
                aside = _set_aside(out)
        yield out
    except BaseException:
        if aside is not None:
            with _signals_held():
                _put_back(aside, out)  # what the failed run wrote (a task store) goes
        raise
    finally:
        _release(claim)
    if aside is not None:
        _discard(aside)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the block (a rename and the bookkeeping of it): one that
    arrives is recorded and acted on (its own handler: Ctrl-C's KeyboardInterrupt) after the
    block, where the caller knows what to put back. Only the main thread can; elsewhere the
    block runs as it is."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    wanted = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.getsignal(number) for number in wanted}
    arrived: list[int] = []
    for number in wanted:
        signal.signal(number, lambda received, _frame: arrived.append(received))
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)
        for number in arrived[:1]:
            _deliver(number, before[number])


def _deliver(number: int, handler) -> None:
    """Act on a held signal as its handler would have."""
    import signal

    if callable(handler):
        handler(number, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), number)


def _claim(out: Path):
    """Claim ``out`` for this run; the claim ends with the process, however it ends.

    On Linux the claim is a Unix socket in the abstract namespace named after ``out``'s
    resolved path: the kernel releases it when the process exits, killed or not, so a
    killed run leaves nothing behind. Elsewhere it is an empty staging folder
    ``.NAME.staging-pPID-run-*`` beside ``out``, which the next run removes once its process
    is gone (:func:`_claim_folder`). Returns what :func:`_release` ends.

    Raises
    ------
    OutputFolderError
        Another live bayes-wake process claimed ``out`` first.
    """
    import socket
    import sys

    if not sys.platform.startswith("linux"):
        return _claim_folder(out)
    name = "\0bayes-wake-out:" + hashlib.sha256(os.fsencode(out.resolve())).hexdigest()
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(name)
    except OSError:
        claim.close()
        raise OutputFolderError(f"out={out}: another bayes-wake run is writing it; wait for "
                                "it to finish or choose another folder") from None
    return claim


def _release(claim) -> None:
    if isinstance(claim, Path):
        shutil.rmtree(claim, ignore_errors=True)
    else:
        claim.close()


def _claim_folder(out: Path) -> Path:
    """The claim where there is no abstract socket: of the live runs that made a claim
    folder for ``out``, the first (the oldest folder, then the name) goes on."""
    out.parent.mkdir(parents=True, exist_ok=True)
    mine = Path(tempfile.mkdtemp(dir=out.parent, prefix=_staging_prefix(out) + "run-"))
    pattern = re.compile(re.escape(f".{_staging_stem(out)}{_STAGING}") + r"p(\d+)-run-")
    claims = []
    for path in out.parent.iterdir():
        found = pattern.match(path.name)
        if found and (path.name == mine.name or (_alive(found.group(1))
                                                 and int(found.group(1)) != os.getpid())):
            with contextlib.suppress(OSError):
                claims.append((path.stat().st_mtime_ns, path.name, found.group(1)))
    first = min(claims)
    if first[1] != mine.name:
        shutil.rmtree(mine, ignore_errors=True)
        raise OutputFolderError(f"out={out}: another bayes-wake run (process {first[2]}) "
                                "is writing it; wait for it to finish or choose another folder")
    return mine


def csv_header_name(name: object) -> str:
    """A column name as written in a CSV header: names a spreadsheet would read as a formula
    (starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) get a leading ``'``, as
    OWASP recommends against CSV injection."""
    text = str(name)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_text_cell(value: object) -> object:
    """A text cell as written to CSV: text a spreadsheet would read as a formula gets a
    leading ``'`` (as :func:`csv_header_name`); a cell that is a plain number (``-0.5``) is
    no formula and stays, and so does anything that is not text."""
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


def _escaped_text(table):
    """``table`` with every text cell passed through :func:`csv_text_cell` (a copy only
    where a column holds text)."""
    text = [c for c in table.columns if table[c].dtype == object
            or str(table[c].dtype) in ("string", "str", "category")]
    if not text:
        return table
    table = table.copy()
    for column in text:
        table[column] = table[column].astype(object).map(csv_text_cell)
    return table


def write_table(table, path: str | os.PathLike, *, float_format: str | None = "%.15g") -> Path:
    """Write a pandas table as CSV, atomically: the one CSV writer of the package.

    Numbers get 15 significant digits (R-like; ``float_format=None`` for the shortest exact
    text), NA is an empty cell, and header names and text cells are escaped against formula
    injection by :func:`csv_header_name` and :func:`csv_text_cell`.
    """
    with atomic_path(path) as tmp:
        _escaped_text(table).to_csv(tmp, index=False, float_format=float_format, na_rep="",
                                    header=[csv_header_name(c) for c in table.columns])
    return Path(path)


def write_mwa_tables(result, folder: str | os.PathLike) -> dict[str, Path]:
    """Write the ``estimates``, ``matching``, ``SUTVA`` and ``wakes`` tables of an
    :class:`~bayes_wake.mwa.analysis.MWAResult` to ``folder`` (made if missing) through
    :func:`write_table`, and ``pretrend`` (the pre-trend placebo per cell) where the result
    has one: numbers with 15 significant digits, NA an empty cell, each file written to a
    temporary name and renamed into place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables: Mapping = {"estimates": result.estimates, "matching": result.matching,
                       "SUTVA": result.sutva, "wakes": result.wakes}
    if getattr(result, "pretrend", None) is not None:
        tables = {**tables, "pretrend": result.pretrend}
    return {name: write_table(table, folder / f"{name}.csv") for name, table in tables.items()}


def write_netcdf(data, path: str | os.PathLike) -> Path:
    """Write an xarray Dataset or DataTree to netCDF (HDF5, h5netcdf) atomically.

    The file is built in memory and then written with Python's own file calls: HDF5 writing
    straight to a full disk fails inside its C library (tracebacks from h5py, then a
    segmentation fault as it closes the file); this way a full disk is one ``OSError``
    (ENOSPC) that the command reports in one line.
    """
    import io

    buffer = io.BytesIO()
    data.to_netcdf(buffer, engine="h5netcdf")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
    return Path(path)


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


def provenance(settings: dict, inputs: dict[str, str | None] | None = None, *,
               extra: dict | None = None) -> dict:
    """A provenance record: settings, input files with hashes, versions, time of the run.

    Parameters
    ----------
    settings
        The run's settings, as the library knows them (the settings objects' ``to_dict``).
    inputs
        Input files by role (``{"data": path}``), hashed when they exist.
    extra
        What only the caller knows (the command line: the command, its own options, what
        the reader found): its ``settings`` go before ``settings``' entries, its other keys
        are added to the record.
    """
    extra = dict(extra or {})
    files = {}
    for role, path in (inputs or {}).items():
        if path and Path(path).is_file():
            files[role] = {"path": str(path), "sha256": file_sha256(path)}
        elif path:
            files[role] = {"path": str(path)}
    return {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {**extra.pop("settings", {}), **settings},
        "inputs": files,
        "versions": package_versions(),
        **extra,
    }


def write_json(data: dict, path: str | os.PathLike) -> Path:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return Path(path)
