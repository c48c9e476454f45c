"""Task runner: keys, atomic results, resume after a failure or a kill, and the Dask path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from bayes_wake.checks.randomisation import grid_design, label_permutation_chunk
from bayes_wake.checks.tasks import (
    Shared,
    Task,
    TaskFailed,
    TaskStore,
    chunk_sizes,
    run_tasks,
    task_key,
)
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import MWASettings
from bayes_wake.wakes import count_wakes

EXECUTED: list[int] = []


def _square(n: int, fail_on: int | None = None) -> dict:
    """A task that records each execution (inline runs share this process)."""
    if n == fail_on:
        raise RuntimeError(f"task {n} breaks")
    EXECUTED.append(n)
    return {"n": n, "square": n * n, "array": np.arange(3), "nan": float("nan")}


def _tasks(count: int, fail_on: int | None = None) -> list[Task]:
    return [Task(task_key("data", {"n": n}), _square, (n, fail_on), f"square {n}", "square")
            for n in range(count)]


@pytest.fixture(autouse=True)
def _clear():
    EXECUTED.clear()


def test_keys_are_stable_and_change_with_data_and_settings():
    key = task_key("abc", {"chunk": 1, "size": 100})
    assert key == task_key("abc", {"size": 100, "chunk": 1})  # order-free
    assert len(key) == 64
    assert key != task_key("abd", {"chunk": 1, "size": 100})
    assert key != task_key("abc", {"chunk": 2, "size": 100})


def test_rerun_computes_only_missing_keys(tmp_path):
    first = run_tasks(_tasks(6), tmp_path, scheduler="inline")
    assert sorted(EXECUTED) == list(range(6)) and len(first.computed) == 6
    assert first.results[_tasks(6)[2].key]["square"] == 4
    assert first.results[_tasks(6)[2].key]["nan"] is None  # NaN stored as JSON null
    EXECUTED.clear()
    again = run_tasks(_tasks(6), tmp_path, scheduler="inline")
    assert EXECUTED == [] and len(again.reused) == 6 and again.where == "none needed"
    assert again.results == first.results
    store = TaskStore(tmp_path)
    for task in _tasks(6)[1:3]:
        store.path(task.key).unlink()
    more = run_tasks(_tasks(8), tmp_path, scheduler="inline")  # two lost, two new
    assert sorted(EXECUTED) == [1, 2, 6, 7]
    assert len(more.reused) == 4 and len(more.computed) == 4


def test_a_failing_task_keeps_the_finished_ones_and_a_rerun_resumes(tmp_path):
    with pytest.raises(TaskFailed, match="square 3 failed: RuntimeError: task 3 breaks"):
        run_tasks(_tasks(6, fail_on=3), tmp_path, scheduler="inline")
    done = sorted(EXECUTED)
    assert 3 not in done and done
    EXECUTED.clear()
    tasks = [Task(t.key, _square, (n,), t.label, t.kind)  # same keys, fixed task
             for n, t in enumerate(_tasks(6, fail_on=3))]
    report = run_tasks(tasks, tmp_path, scheduler="inline")
    assert sorted(EXECUTED) == sorted(set(range(6)) - set(done))
    assert len(report.reused) == len(done)


def test_results_are_written_atomically(tmp_path, monkeypatch):
    store = TaskStore(tmp_path)
    key = task_key("x", {})

    class Unserialisable:
        pass

    with pytest.raises(TypeError):
        store.save(key, {"bad": Unserialisable()})
    assert not store.path(key).exists()
    store.root.mkdir(parents=True, exist_ok=True)
    assert not list(store.root.iterdir())  # no temporary file left behind
    store.save(key, {"ok": 1})
    assert store.done(key) and store.load(key)["result"] == {"ok": 1}
    # a truncated or foreign file is not taken as done
    store.path(key).write_text('{"key": "')
    assert not store.done(key)


def test_duplicate_keys_and_bad_chunks_are_refused(tmp_path):
    from bayes_wake.errors import SettingsError

    task = _tasks(1)[0]
    with pytest.raises(SettingsError, match="same key"):
        run_tasks([task, task], tmp_path, scheduler="inline")
    assert chunk_sizes(250, 100) == [100, 100, 50]
    with pytest.raises(SettingsError, match="at least 1"):
        chunk_sizes(10, 0)


KILLABLE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from bayes_wake.checks.tasks import Task, run_tasks, task_key

    def slow(n):
        Path(sys.argv[2], f"ran-{n}-{os.getpid()}").touch()  # one file per execution
        time.sleep(0.4)
        return {"n": n}

    if __name__ == "__main__":
        tasks = [Task(task_key("d", {"n": n}), slow, (n,), f"slow {n}") for n in range(8)]
        run_tasks(tasks, sys.argv[1], scheduler="inline")
""")


def test_a_killed_run_leaves_no_corrupt_result_and_resumes(tmp_path):
    script = tmp_path / "killable.py"
    script.write_text(KILLABLE)
    out, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    process = subprocess.Popen([sys.executable, str(script), str(out), str(marks)])
    tasks_dir = out / "tasks"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if tasks_dir.is_dir() and len(list(tasks_dir.glob("*.json"))) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = list(tasks_dir.glob("*.json"))
    assert 2 <= len(finished) < 8
    for path in finished:  # every stored result is whole
        document = json.loads(path.read_text())
        assert document["key"] == path.stem
    # simulate a kill in the middle of a write: a stale temporary file
    (tasks_dir / f".{'0' * 64}.json.abc.tmp").write_text("{half")
    ran_before = len(list(marks.iterdir()))
    subprocess.run([sys.executable, str(script), str(out), str(marks)], check=True)
    assert not list(tasks_dir.glob(".*.tmp"))
    assert len(list(tasks_dir.glob("*.json"))) == 8
    ran_again = len(list(marks.iterdir())) - ran_before
    assert ran_again == 8 - len(finished)  # only the missing keys ran again


def test_dask_local_cluster_gives_the_inline_results(mwa_example_events, tmp_path):
    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2.0, 4.0, 6.0, 8.0, 10.0])
    design = grid_design(cube, MWASettings(match_on=("match1", "match2"), weighted=True,
                                           tcm=True))
    tasks = [Task(task_key("example", {"chunk": c}), label_permutation_chunk,
                  (Shared("design"), c, 25, 1), f"chunk {c}", "labels") for c in range(4)]
    inline = run_tasks(tasks, tmp_path / "inline", shared={"design": design},
                       scheduler="inline")
    lines: list[str] = []
    on_dask = run_tasks(tasks, tmp_path / "dask", shared={"design": design}, n_workers=1,
                        log=lines.append)
    assert on_dask.where == "LocalCluster" and on_dask.workers == 1
    assert on_dask.results == inline.results
    assert any("Dask: 1 worker" in line for line in lines)
    assert Path(tmp_path / "dask" / "tasks").is_dir()


def test_an_existing_cluster_is_used_by_its_address(mwa_example_events, tmp_path):
    from distributed import LocalCluster

    cube = count_wakes(mwa_example_events, [2, 4], [2.0, 4.0])
    design = grid_design(cube, MWASettings(match_on=("match1", "match2"), weighted=True))
    tasks = [Task(task_key("example", {"chunk": c}), label_permutation_chunk,
                  (Shared("design"), c, 10, 1), f"chunk {c}", "labels") for c in range(2)]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        report = run_tasks(tasks, tmp_path, shared={"design": design},
                           scheduler=cluster.scheduler_address)
        assert report.where == cluster.scheduler_address and len(report.computed) == 2
        assert cluster.status.name == "running"  # a cluster we did not start stays up


@pytest.mark.parametrize("address", ["bogus", "tcp://host-without-port"])
def test_a_scheduler_address_that_is_no_address_is_a_settings_error(tmp_path, address):
    """distributed raises ValueError on an address it cannot parse; the user gets one line."""
    with pytest.raises(SettingsError, match="not a Dask scheduler address"):
        run_tasks(_tasks(2), tmp_path, scheduler=address)


def _server(reply: bytes | None):
    """A TCP server on a free local port that answers every connection with ``reply`` (or
    says nothing) and keeps it open; returns (address, stop)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held = []

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            held.append(conn)
            if reply:
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()

    return f"tcp://127.0.0.1:{listener.getsockname()[1]}", close


@pytest.mark.parametrize("reply, said", [
    (None, "sent no Dask handshake within"),  # a server that waits for a request (HTTP)
    (b"SSH-2.0-OpenSSH_9.6\r\n", "are not a Dask handshake")])  # a banner read as a length
def test_a_server_that_is_not_dask_is_one_line_within_seconds(tmp_path, mwa_example_csv,
                                                              reply, said):
    """--scheduler at a non-Dask server: a 2.82 EiB allocation traceback or a hang past 60 s
    before; now one line within the connect timeout."""
    from click.testing import CliRunner

    from bayes_wake.cli import main

    address, close = _server(reply)
    try:
        started = time.monotonic()
        result = CliRunner().invoke(main, [
            "sensitivity", "--data", str(mwa_example_csv), "--t-window", "2", "4", "2",
            "--spat-window", "2", "4", "2", "--match", "match1", "--permutations", "10",
            "--date-shifts", "0", "--bayes-checks", "none", "--scheduler", address,
            "--out", str(tmp_path / "x")])
        assert time.monotonic() - started < 30
    finally:
        close()
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output


def test_a_dask_scheduler_passes_the_probe():
    from distributed import LocalCluster

    from bayes_wake.checks.tasks import probe_scheduler

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None,
                      protocol="tcp://") as cluster:
        probe_scheduler(cluster.scheduler_address)
