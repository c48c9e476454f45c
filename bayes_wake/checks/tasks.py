"""Run many independent tasks (permutation chunks, placebo chunks, model fits) on Dask.

A task is a plain top-level function with its arguments and a key: the SHA-256 of the data's
hash and every setting that changes its result. Results are JSON documents written atomically
to ``DIR/tasks/<key>.json`` by the client as each task finishes, so

- a run that is killed keeps every finished task, and nothing half-written (a stale temporary
  file from a kill is removed on the next run);
- a rerun with the same data and settings skips every finished key and computes only the rest;
- a rerun that asks for more (more permutations) reuses the chunks it already has, because a
  chunk's key and random stream depend on its number, not on how many chunks there are.

Where the work runs: a ``dask.distributed.LocalCluster`` on this machine by default (one
single-threaded worker process per core), an existing cluster given by its scheduler address,
or (``scheduler="inline"``) this process without Dask, for tests and tiny runs. Objects that
many tasks share (the permutation design, the events, the wake cube) are sent to the workers
once (``Client.scatter(broadcast=True)``), not once per task. Results travel back to the
client, so workers need no shared file system.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bayes_wake.errors import BayesWakeError, OutputFolderError, SettingsError, TaskFailed
from bayes_wake.io.artefacts import atomic_path, keep_in_output
from bayes_wake.io.tables import counted

__all__ = [
    "TASK_FORMAT",
    "RunReport",
    "Shared",
    "Task",
    "probe_scheduler",
    "TaskFailed",
    "TaskStore",
    "chunk_sizes",
    "layout",
    "run_tasks",
    "task_key",
]

#: Version of the stored task format; part of every key.
TASK_FORMAT = 1


@dataclass(frozen=True)
class Shared:
    """A placeholder in a task's arguments for an object shared by many tasks."""

    name: str


@dataclass(frozen=True)
class Task:
    """One independent piece of work.

    Attributes
    ----------
    key
        SHA-256 hex digest of the data and settings (:func:`task_key`).
    function
        A module-level function (it is pickled by reference) returning a JSON-ready dict.
    args
        Its positional arguments; :class:`Shared` placeholders are replaced by the shared
        objects on the worker.
    label
        A short description for progress and logs.
    kind
        The task family (``labels``, ``date_shift``, ``fit``), for the layout table.
    priority
        Higher runs first (long model fits before short permutation chunks).
    """

    key: str
    function: Callable[..., dict]
    args: tuple = ()
    label: str = ""
    kind: str = "task"
    priority: int = 0


def task_key(data_hash: str, settings: Mapping[str, Any]) -> str:
    """The key of a task: SHA-256 of the data hash, the settings and the task format.

    Parameters
    ----------
    data_hash
        A digest of the input data.
    settings
        Everything else that changes the task's result (JSON-serialisable).

    Returns
    -------
    str
        64 hex characters.
    """
    text = json.dumps({"data": data_hash, "settings": settings, "format": TASK_FORMAT},
                      sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class TaskStore:
    """Finished task results under ``directory/tasks/<key>.json``.

    Parameters
    ----------
    directory
        The run's output folder.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.root = Path(directory) / "tasks"

    def path(self, key: str) -> Path:
        """Where a key's result lives."""
        if len(key) != 64 or any(ch not in "0123456789abcdef" for ch in key):
            raise SettingsError(f"not a task key: {key!r}")
        return self.root / f"{key}.json"

    def done(self, key: str) -> bool:
        """True when the key's result is stored (and readable)."""
        return self.stored(key) is not None

    def stored(self, key: str) -> dict | None:
        """The key's stored result document, or None when there is none readable."""
        if not self.path(key).is_file():
            return None
        try:
            return self.load(key)
        except (OSError, ValueError, OutputFolderError):  # unreadable, not JSON, another key
            return None

    def load(self, key: str) -> dict:
        """The stored result document of a key."""
        document = json.loads(self.path(key).read_text())
        if document.get("key") != key:
            raise OutputFolderError(f"{self.path(key)} holds the result of another key")
        return document

    def save(self, key: str, result: dict, meta: Mapping[str, Any] | None = None) -> Path:
        """Store a result atomically (a temporary file renamed into place)."""
        document = {"key": key, **(meta or {}), "result": _jsonable(result)}
        text = json.dumps(document, allow_nan=False, separators=(",", ":"))
        with atomic_path(self.path(key)) as tmp:
            tmp.write_text(text + "\n")
        return self.path(key)

    def clean_stale(self) -> int:
        """Remove temporary files left by a killed run; returns how many."""
        if not self.root.is_dir():
            return 0
        stale = list(self.root.glob(".*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)


@dataclass
class RunReport:
    """What :func:`run_tasks` did.

    Attributes
    ----------
    results
        Key -> result dict, for every task (stored earlier or computed now).
    computed, reused
        Keys computed in this run, and keys found finished.
    seconds
        Key -> seconds the task took on its worker (computed tasks only).
    wall_seconds
        Wall time of the run, cluster start-up included.
    workers
        Number of workers used (0 inline).
    where
        ``inline``, ``LocalCluster`` or the scheduler address.
    """

    results: dict[str, dict] = field(default_factory=dict)
    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    workers: int = 0
    where: str = "inline"


def _execute(function: Callable[..., dict], args: tuple) -> tuple[dict, float, str]:
    """Run one task on a worker; returns its result, seconds and where it ran."""
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start, f"{socket.gethostname()}:{os.getpid()}"


def _resolve(args: tuple, shared: Mapping[str, Any]) -> tuple:
    return tuple(shared[a.name] if isinstance(a, Shared) else a for a in args)


def run_tasks(
    tasks: Sequence[Task],
    directory: str | os.PathLike,
    *,
    shared: Mapping[str, Any] | None = None,
    scheduler: str | None = None,
    n_workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> RunReport:
    """Run the tasks whose results are not stored yet, and return every result.

    Parameters
    ----------
    tasks
        The tasks (keys must be unique).
    directory
        The run's folder; results go to ``directory/tasks/<key>.json``.
    shared
        Objects referred to by :class:`Shared` placeholders in the tasks' arguments.
    scheduler
        None for a new ``LocalCluster`` (shut down at the end), ``"inline"`` for this process
        without Dask, or the address of an existing scheduler (``tcp://host:8786``).
    n_workers
        Workers of the LocalCluster (default: one per core, at most the number of tasks to
        run).
    progress
        Called as ``progress(done, total)`` as tasks finish.
    log
        Called with short status lines.

    Returns
    -------
    RunReport

    Raises
    ------
    TaskFailed
        A task raised. Every task that finished before is stored, so a rerun resumes.
    """
    log = log or (lambda _message: None)
    shared = dict(shared or {})
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise SettingsError("two tasks have the same key")
    store = _open_store(directory, log)
    report = RunReport()
    started = time.perf_counter()
    todo = _reuse_stored(store, tasks, report)
    total = len(tasks)
    if report.reused:
        log(f"resuming: {len(report.reused)} of {counted(total, 'task')} already done")
    if progress:
        progress(len(report.reused), total)

    def tick() -> None:
        if progress:
            progress(len(report.results), total)

    finish = functools.partial(_finish, store, report, tick)
    if not todo:
        report.where = "none needed"
    elif scheduler == "inline":
        report.where = "inline"
        _run_inline(todo, shared, finish)
    else:
        _run_on_dask(todo, shared, scheduler, n_workers, finish, report, log)
    report.wall_seconds = time.perf_counter() - started
    return report


def _open_store(directory: str | os.PathLike, log: Callable[[str], None]) -> TaskStore:
    """The run's task store, its folder made, kept out of staged output folders and cleared
    of a killed run's temporary files."""
    store = TaskStore(directory)
    keep_in_output(store.root)  # the task store outlives the run's staged output folder
    store.root.mkdir(parents=True, exist_ok=True)
    stale = store.clean_stale()
    if stale:
        log(f"removed {counted(stale, 'temporary file')} left by an interrupted run")
    return store


def _reuse_stored(store: TaskStore, tasks: Sequence[Task], report: RunReport) -> list[Task]:
    """Put the stored results into `report`; returns the tasks still to run."""
    todo = []
    for task in tasks:
        document = store.stored(task.key)
        if document is not None:
            report.results[task.key] = document["result"]
            report.reused.append(task.key)
        else:
            todo.append(task)
    return todo


def _finish(store: TaskStore, report: RunReport, tick: Callable[[], object], task: Task,
            result: dict, seconds: float, where: str) -> None:
    """Store a computed task's result and record it in `report`; then `tick` the progress."""
    store.save(task.key, result, {"label": task.label, "kind": task.kind,
                                  "seconds": seconds, "worker": where})
    report.results[task.key] = _jsonable(result)
    report.computed.append(task.key)
    report.seconds[task.key] = seconds
    tick()


def _run_inline(todo: list[Task], shared: Mapping[str, Any], finish) -> None:
    """Run the tasks in this process, highest priority first."""
    for task in sorted(todo, key=lambda t: -t.priority):
        try:
            result, seconds, where = _execute(task.function, _resolve(task.args, shared))
        except BayesWakeError:
            raise
        except Exception as exc:
            raise TaskFailed(f"task {task.label or task.key[:12]} failed: "
                             f"{type(exc).__name__}: {exc}") from exc
        finish(task, result, seconds, where)


def _check_address(scheduler: str) -> None:
    """Refuse a scheduler address without a port (``bogus``, ``tcp://host``) before a client
    starts its event loop for it."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise SettingsError(f"{scheduler!r} is not a Dask scheduler address (e.g. "
                            f"tcp://host:8786): {exc}") from None


#: A Dask handshake message is a few hundred bytes; a first frame claimed larger than this is
#: not Dask's (an SSH or SMTP banner read as a length).
_HANDSHAKE_MAX = 1 << 20


def probe_scheduler(scheduler: str, timeout: float = 5.0) -> None:
    """Check that a ``tcp://`` address answers as a Dask scheduler does, before a client
    connects: a scheduler sends its handshake first (8 bytes of frame length, then the
    frames). A server that says nothing (a web server), or whose first bytes read as an
    absurd length (a banner), made Dask's client hang or try to allocate exabytes.

    Raises
    ------
    SettingsError
        Nothing listens there, nothing is said within ``timeout`` seconds, or the first
        bytes are not a Dask frame length.
    """
    import socket
    import struct

    from distributed.comm.addressing import parse_address, parse_host_port

    scheme, location = parse_address(scheduler)
    if scheme != "tcp":
        return  # tls, inproc, ucx: Dask's own client checks those
    host, port = parse_host_port(location)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            head = b""
            while len(head) < 8:
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise SettingsError(f"{scheduler} is not a Dask scheduler: it accepted the connection "
                            f"but sent no Dask handshake within {timeout:g} s") from None
    except OSError as exc:
        raise SettingsError(f"cannot reach the Dask scheduler at {scheduler}: "
                            f"{exc.strerror or exc}") from None
    if len(head) < 8 or not 0 < struct.unpack("<Q", head)[0] <= _HANDSHAKE_MAX:
        raise SettingsError(f"{scheduler} is not a Dask scheduler: its first bytes "
                            f"({head[:8]!r}) are not a Dask handshake")


def _run_on_dask(todo: list[Task], shared: dict, scheduler: str | None, n_workers: int | None,
                 finish, report: RunReport, log) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - dask is a core dependency
        raise SettingsError("Dask distributed is not installed: pip install "
                            "'dask[distributed]'") from None

    with contextlib.ExitStack() as stack:
        if scheduler is None:
            workers = n_workers or min(os.cpu_count() or 1, len(todo))
            cluster = stack.enter_context(LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster))
            report.where = "LocalCluster"
        else:
            _check_address(scheduler)
            probe_scheduler(scheduler)
            try:
                client = stack.enter_context(Client(scheduler, timeout="10s"))
            except (OSError, TimeoutError) as exc:
                raise SettingsError(f"cannot reach the Dask scheduler at {scheduler}: "
                                    f"{exc}") from None
            report.where = scheduler
        report.workers = len(client.nthreads())
        log(f"Dask: {counted(report.workers, 'worker')} at {report.where}; "
            f"{counted(len(todo), 'task')} to run")
        needed = {a.name for t in todo for a in t.args if isinstance(a, Shared)}
        remote = {name: client.scatter(shared[name], broadcast=True, hash=False)
                  for name in sorted(needed)}
        futures = {}
        for task in todo:
            future = client.submit(_execute, task.function, _resolve(task.args, remote),
                                   key=f"{task.kind}-{task.key}", priority=task.priority,
                                   pure=False)
            futures[future] = task
        failure = None
        for future in as_completed(futures):
            task = futures[future]
            if future.cancelled():
                continue
            if future.status == "error":
                exc = future.exception()
                failure = failure or TaskFailed(
                    f"task {task.label or task.key[:12]} failed: {type(exc).__name__}: {exc}")
                if isinstance(exc, BayesWakeError):
                    failure = exc
                for other in futures:
                    if not other.done():
                        other.cancel()
                continue
            result, seconds, where = future.result()
            finish(task, result, seconds, where)
        if failure is not None:
            raise failure


def _jsonable(value):
    """Plain JSON values: NumPy scalars and arrays become numbers and lists, NaN and
    infinities become None."""

    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def chunk_sizes(total: int, chunk: int) -> list[int]:
    """Split ``total`` draws into chunks of ``chunk`` (the last one smaller)."""
    if chunk < 1:
        raise SettingsError(f"the chunk size must be at least 1, got {chunk}")
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def layout(tasks: Iterable[Task], report: RunReport) -> list[dict]:
    """The task layout of a run: per kind, tasks, how many ran now, and seconds per task."""
    rows: dict[str, dict] = {}
    for task in tasks:
        row = rows.setdefault(task.kind, {"kind": task.kind, "tasks": 0, "computed": 0,
                                          "reused": 0, "task_seconds": 0.0})
        row["tasks"] += 1
        if task.key in report.seconds:
            row["computed"] += 1
            row["task_seconds"] += report.seconds[task.key]
        else:
            row["reused"] += 1
    for row in rows.values():
        row["mean_task_seconds"] = (row["task_seconds"] / row["computed"]
                                    if row["computed"] else float("nan"))
    return list(rows.values())
