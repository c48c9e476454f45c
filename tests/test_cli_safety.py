"""What a user meets on the command line: no silent damage to inputs or outputs, one-line
errors (exit 2, nothing written) instead of tracebacks, and R's spellings of the options."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_wake.cli import main
from bayes_wake.io.artefacts import MARKER, STAGING_MARKER, csv_header_name, write_table

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--t-window", "2", "4", "2", "--spat-window", "2", "4", "2"]


def run(*argv: str):
    return CliRunner().invoke(main, [str(a) for a in argv])


def last_line(result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def mwa(data, out, *extra):
    return run("mwa", "--data", data, *SMALL, "--match", "match1,match2", *extra, "--out", out)


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


# ---------------------------------------------------------------------------------------------
# input files
# ---------------------------------------------------------------------------------------------


def test_duplicate_rows_are_reported_kept_and_dropped_with_the_flag(mwa_example_csv, tmp_path):
    lines = lines_of(mwa_example_csv)
    treated = [i for i, line in enumerate(lines) if line.startswith('"treatment"')][:2]
    data = write_lines(tmp_path / "dup.csv", [*lines, *(lines[i] for i in treated)])
    kept = mwa(data, tmp_path / "kept")
    assert kept.exit_code == 0, kept.output
    said = " ".join(kept.output.split())
    assert "2 exact duplicate rows (rows 395, 396 repeat earlier rows); kept" in said
    assert "drop them with --drop-duplicates" in said  # the option, not the Python argument
    assert "drop_duplicates=True" not in said and said.count("duplicate rows") == 1
    record = json.loads((tmp_path / "kept" / "provenance.json").read_text())
    assert record["events"]["duplicate_rows"] == 2
    assert record["events"]["duplicate_row_numbers"] == [395, 396]
    assert record["events"]["duplicates_dropped"] is False
    assert record["settings"]["drop_duplicates"] is False

    dropped = mwa(data, tmp_path / "dropped", "--drop-duplicates")
    assert dropped.exit_code == 0, dropped.output
    record = json.loads((tmp_path / "dropped" / "provenance.json").read_text())
    assert record["events"] == {"rows_read": 396, "duplicate_rows": 2,
                                "duplicate_row_numbers": [395, 396], "duplicates_dropped": True}
    original = mwa(mwa_example_csv, tmp_path / "original")
    assert original.exit_code == 0
    for name in ("wakes.csv", "estimates.csv"):
        same = pd.read_csv(tmp_path / "dropped" / name)
        pd.testing.assert_frame_equal(same, pd.read_csv(tmp_path / "original" / name))
        assert len(pd.read_csv(tmp_path / "kept" / name)) > len(same) or name != "wakes.csv"


def test_the_sensitivity_command_reads_duplicates_the_same_way(mwa_example_csv, tmp_path):
    lines = lines_of(mwa_example_csv)
    data = write_lines(tmp_path / "dup.csv", [*lines, lines[7]])
    out = tmp_path / "sens"
    result = run("sensitivity", "--data", data, *SMALL, "--match", "match1", "match2",
                 "--permutations", "20", "--date-shifts", "0", "--workers", "0",
                 "--bayes-checks", "none", "--drop-duplicates", "--out", out)
    assert result.exit_code == 0, result.output
    assert "1 exact duplicate row (row 395 repeats an earlier row); dropped" in \
        " ".join(result.output.split())
    record = json.loads((out / "provenance.json").read_text())
    assert record["events"]["duplicate_rows"] == 1 and record["events"]["duplicates_dropped"]
    assert record["settings"]["drop_duplicates"] is True
    assert record["settings"]["mwa"]["match_on"] == ["match1", "match2"]


def test_duplicate_ids_of_repeated_rows_name_the_option(mwa_example_csv, tmp_path):
    lines = lines_of(mwa_example_csv)
    numbered = [f"{lines[0]},id"] + [f"{line},{k}" for k, line in enumerate(lines[1:], 1)]
    data = write_lines(tmp_path / "ids.csv", [*numbered, numbered[7]])
    result = run("mwa", "--data", data, *SMALL, "--match", "match1,match2", "--column",
                 "id=id", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "duplicate event id 7" in last_line(result)
    assert "drop them with --drop-duplicates" in last_line(result)
    assert "drop_duplicates=True" not in result.output


def test_mixed_utc_offsets_are_an_error_naming_file_rows_and_column(mwa_example_csv, tmp_path):
    lines = lines_of(mwa_example_csv)
    lines[3] = lines[3].replace(' 00:00:00"', ' 00:00:00+02:00"')
    data = write_lines(tmp_path / "mixed.csv", lines)
    out = tmp_path / "o"
    result = mwa(data, out)
    assert result.exit_code == 2
    assert re.search(r"mixed\.csv, row 3, column 'timestamp': mixes timestamps with a UTC "
                     r"offset", last_line(result))
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.csv"]


@pytest.mark.parametrize(("old", "new", "row", "match", "expected"), [
    ("0.335288085509092", "inf", 1, "match1",
     "bad.csv, row 1, column 'lat': non-finite coordinate: latitude inf"),
    ('"match1"', '"m/x"', 0, "m/x", "bad.csv, column 'm/x': covariate name 'm/x' contains '/'"),
])
def test_bad_values_are_one_line_errors(mwa_example_csv, tmp_path, old, new, row, match,
                                        expected):
    lines = lines_of(mwa_example_csv)
    lines[row] = lines[row].replace(old, new)
    data = write_lines(tmp_path / "bad.csv", lines)
    result = run("mwa", "--data", data, *SMALL, "--match", match, "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    assert expected in last_line(result)
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_a_latin1_file_is_read_with_a_warning_at_its_true_byte_offset(mwa_example_csv,
                                                                      tmp_path):
    lines = lines_of(mwa_example_csv)
    lines[0] += ',"place"'
    lines[1:] = [line + (',"Ségou"' if k == 299 else ',"Gao"') for k, line in
                 enumerate(lines[1:])]
    raw = ("\n".join(lines) + "\n").encode("latin-1")
    data = tmp_path / "latin1.csv"
    data.write_bytes(raw)
    result = mwa(data, tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert (f"latin1.csv, row 300, column 'place': not UTF-8 (invalid continuation byte at "
            f"byte {raw.index(b'\xe9')}, line 301); read as Windows-1252") in \
        " ".join(result.output.split())


def test_file_names_are_printed_as_they_are_not_as_markup(mwa_example_csv, tmp_path):
    data = tmp_path / "[red]X.csv"
    shutil.copy(mwa_example_csv, data)
    result = mwa(data, tmp_path / "[bold]out")
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "[red]X.csv: 25 treatment" in said
    assert "Wrote " + str(tmp_path / "[bold]out") in said


# ---------------------------------------------------------------------------------------------
# the output folder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["file/sub", "/dev/null/x", "/proc/x"])
def test_an_impossible_out_is_refused_before_any_work(tmp_path, out):
    (tmp_path / "file").write_text("a file\n")
    out = tmp_path / out if out.startswith("file") else Path(out)
    bad_data = tmp_path / "bad.csv"  # would fail if it were read: --out is checked first
    bad_data.write_text("nothing useful\n")
    result = run("mwa", "--data", bad_data, *SMALL, "--out", out)
    assert result.exit_code == 2, result.output
    line = last_line(result)
    assert line.startswith(f"bayes-wake: error: --out {out}: ")
    assert "not a folder" in line or "cannot create a folder in /proc" in line
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "file"]


def test_a_folder_bayes_wake_did_not_write_is_refused_and_replaced_only_on_request(
        mwa_example_csv, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work\n")
    result = mwa(mwa_example_csv, out)
    assert result.exit_code == 2
    assert last_line(result) == (
        f"bayes-wake: error: --out {out}: the folder is not empty and was not written by "
        "bayes-wake; choose another folder, or pass --overwrite to replace it whole")
    assert sorted(p.name for p in out.iterdir()) == ["thesis.tex"]

    result = mwa(mwa_example_csv, out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "thesis.tex").exists()
    assert (out / "estimates.csv").is_file() and (out / MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no folder set aside is left


def test_a_new_run_replaces_an_earlier_run_whole(mwa_example_csv, tmp_path):
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0
    # what a `fit` run leaves and an `mwa` run does not write, listed as its marker lists it
    (out / "posterior.nc").write_bytes(b"5x5 posterior")
    (out / "NOT_CONVERGED.txt").write_text("NOT CONVERGED\n")
    (out / "figures").mkdir()
    (out / "figures" / "old.png").write_bytes(b"png")
    _list_in_marker(out, "posterior.nc", "NOT_CONVERGED.txt", "figures/old.png")
    result = run("mwa", "--data", mwa_example_csv, "--t-window", "2", "6", "2",
                 "--spat-window", "2", "4", "2", "--match", "match1", "--out", out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "SUTVA.csv", "cube.nc", "effect_surface.png", "estimates.csv",
         "matching.csv", "pretrend.csv", "provenance.json", "wakes.csv"])
    assert len(pd.read_csv(out / "estimates.csv")) == 6
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~_umask())


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_out_folder_holding_an_input_is_refused_and_the_input_kept(mwa_example_csv,
                                                                       tmp_path, overwrite):
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0  # a folder bayes-wake wrote
    data = out / "data.csv"
    shutil.copy(mwa_example_csv, data)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = mwa(data, out, *(["--overwrite"] if overwrite else []))
    assert result.exit_code == 2, result.output
    assert "holds the input" in last_line(result) and "data.csv" in last_line(result)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_option_words_that_name_a_folder_are_not_inputs_and_paths_with_equals_are(
        mwa_example_csv, tmp_path, monkeypatch):
    """Only file options are inputs: a rerun into ``--out days`` with ``--t-unit days`` is a
    plain rerun; a data file under ``run=1/`` is still an input of ``--out run=1``."""
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = mwa(mwa_example_csv, "days", "--t-unit", "days")
        assert result.exit_code == 0, result.output
    Path("run=1").mkdir()
    shutil.copy(mwa_example_csv, "run=1/e.csv")
    result = mwa("run=1/e.csv", "run=1", "--overwrite")
    assert result.exit_code == 2 and "holds the input run=1/e.csv" in last_line(result)
    assert Path("run=1/e.csv").is_file()


def _list_in_marker(out: Path, *names: str) -> None:
    """Add ``names`` to the files that the marker of ``out`` lists (as the run that wrote
    them would have)."""
    record = json.loads((out / MARKER).read_text())
    record["files"] = sorted({*record["files"], *names})
    (out / MARKER).write_text(json.dumps(record))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failing_run_leaves_the_old_folder_as_it_was(mwa_example_csv, tmp_path, monkeypatch,
                                                       overwrite):
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    import bayes_wake.plotting as plotting

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plotting, "save_figure", broken)
    result = mwa(mwa_example_csv, out, *(["--overwrite"] if overwrite else []))
    assert result.exit_code != 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_stale_staging_folders_of_killed_runs_are_removed(mwa_example_csv, tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        stale = tmp_path / f".run.staging-p{dead}-x1"
        live = tmp_path / f".run.staging-p{sleeper.pid}-x3"  # a run still going
        other = tmp_path / f".other.staging-p{dead}-x5"  # beside another folder
        for path in [stale, live, other]:
            path.mkdir()
            (path / "estimates.csv").write_text("half written\n")
            (path / STAGING_MARKER).touch()
        (tmp_path / f".run.staging-p{dead}-old-x2").mkdir()  # killed before it set one aside
        (tmp_path / f".run.staging-p{dead}-x6").mkdir()  # killed before it wrote its marker
        result = mwa(mwa_example_csv, tmp_path / "run")
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            [live.name, other.name, "run"])
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_users_folder_named_like_a_staging_folder_is_never_deleted(mwa_example_csv,
                                                                     tmp_path):
    """A user's backups beside --out, named like staging folders but without the package's
    staging marker, were deleted by the next run: now kept, each named once in a warning."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    mine = [tmp_path / ".run.staging-mybackup", tmp_path / f".run.staging-p{dead}-notes",
            tmp_path / ".run.staging-old-mine"]
    for path in mine:
        path.mkdir()
        (path / "notes.txt").write_text("mine\n")
    for _ in range(2):
        result = mwa(mwa_example_csv, tmp_path / "run")
        assert result.exit_code == 0, result.output
    for path in mine:
        assert (path / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in mine), "run"])
    assert not (tmp_path / "run" / "notes.txt").exists()


#: Runs ``bayes-wake`` in forked children, each killed (SIGKILL, by itself) just before its
#: K-th rename, folder removal or removal of a tree, for K = 1, 2, ... until a run finishes.
#: Each killed run starts from a copy of the template folder (default: the output of a first
#: run, which also loads the modules for the children) as ``--out``; after it a plain run
#: follows. Prints, per K, what the plain run said and returned and what it left.
KILLED_RUNS = """
import json, os, shutil, signal, sys
from pathlib import Path
from bayes_wake.cli import main

args, overwrite, root, template = json.loads(sys.argv[1])
root = Path(root)

def run(argv, kill_at=0, log=os.devnull):
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    calls = [0]
    def killing(real):
        def call(*a, **k):
            calls[0] += 1
            if calls[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*a, **k)
        return call
    if kill_at:
        os.rename, os.rmdir = killing(os.rename), killing(os.rmdir)
        shutil.rmtree = killing(shutil.rmtree)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(fd, 1), os.dup2(fd, 2)
    code = 1
    try:
        main(argv, prog_name="bayes-wake")
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        os._exit(code)

try:
    main(args + ["--out", str(root / "warm")], prog_name="bayes-wake")
except SystemExit as stop:
    assert stop.code == 0, stop.code
records = []
for k in range(1, 100):
    work = root / "w"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(template or root / "warm", work / "out", symlinks=True)
    killed = run(args + ["--out", str(work / "out")] + ["--overwrite"] * overwrite, k)
    if killed == 0:
        break
    assert killed == -signal.SIGKILL, killed
    code = run(args + ["--out", str(work / "out")], log=str(root / "log"))
    out = work / "out"
    records.append({"k": k, "code": code, "said": (root / "log").read_text(),
                    "beside": sorted(p.name for p in work.iterdir()),
                    "out": sorted(p.name for p in out.iterdir()) if out.is_dir() else None,
                    "draft": (out / "draft.txt").read_text() if out.is_dir()
                    and (out / "draft.txt").is_file() else None})
print(json.dumps(records))
"""


def _killed_runs(tmp_path: Path, data: Path, overwrite: bool,
                 template: Path | None) -> list[dict]:
    args = ["mwa", "--data", str(data), *SMALL, "--match", "match1,match2"]
    plan = json.dumps([args, overwrite, str(tmp_path / "runs"),
                       str(template) if template else None])
    (tmp_path / "runs").mkdir()
    done = subprocess.run([sys.executable, "-c", KILLED_RUNS, plan], cwd=REPO, check=False,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_an_overwrite_run_killed_at_any_point_never_loses_the_folder(mwa_example_csv,
                                                                     tmp_path):
    """The tester's case: ``--overwrite`` into a thesis folder, killed; the next plain run
    puts the folder back (one line says so) and refuses it, or, when the killed run had put
    its new folder in place, replaces that; nothing is left beside ``--out``."""
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "draft.txt").write_text("x\n")
    records = _killed_runs(tmp_path, mwa_example_csv, True, thesis)
    assert len(records) >= 4  # set aside, new folder in place, old one removed
    for record in records:
        assert record["beside"] == ["out"], record
        if record["draft"] is None:  # the killed run had put its outputs in place
            assert record["code"] == 0 and "estimates.csv" in record["out"], record
        else:
            assert record["draft"] == "x\n" and record["out"] == ["draft.txt"], record
            assert record["code"] == 2 and "not written by bayes-wake" in record["said"]
    put_back = [r for r in records if "put back" in r["said"]]
    assert put_back and all(r["draft"] == "x\n" for r in put_back)
    assert " ".join(put_back[0]["said"].split()).startswith(
        "put back " + str(tmp_path / "runs" / "w" / "out") + ": a bayes-wake run that was "
        "killed before it finished had set it aside as .out.staging-p")


def test_a_rerun_killed_at_any_point_leaves_one_of_the_two_runs(mwa_example_csv, tmp_path):
    """A plain rerun into a folder bayes-wake wrote sets the old folder aside too: killed at
    any point, the next run finds the old or the new folder in place, never none."""
    records = _killed_runs(tmp_path, mwa_example_csv, False, None)
    assert len(records) >= 4
    for record in records:
        assert record["code"] == 0 and record["beside"] == ["out"], record
        assert MARKER in record["out"] and "estimates.csv" in record["out"], record
    assert any("put back" in r["said"] for r in records)


def _set_aside(tmp_path: Path, dead: int | None = None) -> tuple[Path, Path]:
    """``tmp_path/run``'s folder of a user's files as a killed ``--overwrite`` run set it
    aside (the process ``dead`` is gone), and ``run`` itself (not made)."""
    if dead is None:
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
    aside = tmp_path / f".run.staging-p{dead}-old-x2"
    aside.mkdir()
    (aside / "draft.txt").write_text("years of work\n")
    return aside, tmp_path / "run"


def test_a_killed_runs_task_store_gives_way_to_the_folder_it_set_aside(mwa_example_csv,
                                                                        tmp_path):
    """``sensitivity --overwrite`` killed while it fills its task store: the next run puts
    the user's folder back in place of the half-written one and then refuses it."""
    _, out = _set_aside(tmp_path)
    (out / "tasks").mkdir(parents=True)
    (out / "tasks" / "a.json").write_text("{}\n")
    (out / MARKER).write_text(json.dumps({"written_by": "bayes_wake", "files": ["tasks/"]}))
    result = mwa(mwa_example_csv, out)
    assert result.exit_code == 2
    assert "put back" in result.output and "not written by bayes-wake" in last_line(result)
    assert sorted(p.name for p in out.iterdir()) == ["draft.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_a_run_killed_under_timeout_is_dead_before_it_is_reaped(mwa_example_csv, tmp_path):
    """``timeout -s KILL`` dies with the run it kills, so the run stays a zombie until init
    reaps it: its folder set aside is put back by the next run all the same."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        for _ in range(200):
            if not stat.exists() or stat.read_text().rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.05)
        if not stat.exists():
            pytest.skip("no /proc")
        aside, out = _set_aside(tmp_path, child.pid)
        result = mwa(mwa_example_csv, out)
    finally:
        child.wait()
    assert result.exit_code == 2 and "put back" in result.output
    assert (out / "draft.txt").read_text() == "years of work\n" and not aside.exists()


@pytest.mark.parametrize("names_it", [False, True])
def test_a_set_aside_folder_is_deleted_only_when_the_new_folder_names_it(
        mwa_example_csv, tmp_path, names_it):
    """Beside a complete output folder, a folder set aside by a killed run is deleted only
    when the output's marker says it replaced that folder; else it is kept, and said so."""
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0
    aside, _ = _set_aside(tmp_path)
    record = json.loads((out / MARKER).read_text())
    record["replaces"] = [aside.name] if names_it else []
    (out / MARKER).write_text(json.dumps(record))
    result = mwa(mwa_example_csv, out)
    assert result.exit_code == 0, result.output
    assert aside.is_dir() != names_it
    said = " ".join(result.output.split())
    assert (f"kept {aside}: a bayes-wake run that was killed before it finished had set it "
            f"aside from {out}, which now holds other files; move it back or delete it "
            "yourself" in said) != names_it


@pytest.mark.parametrize("marker", [
    "", "not json", json.dumps({"written_by": "someone else", "files": ["precious.docx"]}),
    json.dumps({"written_by": "bayes_wake", "version": "0.1.0"})])
def test_a_marker_that_lists_no_files_makes_no_folder_ours(mwa_example_csv, tmp_path, marker):
    """``touch fake/.bayes-wake-output`` (or the marker of an earlier version, which lists no
    files) does not let a run replace the folder: refused, naming the files, nothing
    written; --overwrite still replaces it whole."""
    out = tmp_path / "fake"
    out.mkdir()
    (out / MARKER).write_text(marker)
    (out / "precious.docx").write_bytes(b"precious")
    result = mwa(mwa_example_csv, out)
    assert result.exit_code == 2
    assert last_line(result) == (
        f"bayes-wake: error: --out {out}: its marker {MARKER} lists no files (an earlier "
        "version of bayes-wake, or not bayes-wake, wrote it), so bayes-wake cannot tell its "
        "files from yours: precious.docx; choose another folder, or pass --overwrite to "
        "replace it whole")
    assert (out / "precious.docx").read_bytes() == b"precious"
    assert (out / MARKER).read_text() == marker
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fake"]
    result = mwa(mwa_example_csv, out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "precious.docx").exists()


def test_a_file_added_to_an_output_folder_is_never_replaced_unasked(mwa_example_csv,
                                                                     tmp_path):
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0
    record = json.loads((out / MARKER).read_text())
    assert record["files"] == sorted(["SUTVA.csv", "cube.nc", "effect_surface.png",
                                      "estimates.csv", "matching.csv", "pretrend.csv",
                                      "provenance.json", "wakes.csv"])
    (out / "notes.docx").write_text("my notes\n")
    (out / "mine").mkdir()
    (out / "mine" / "plot.png").write_bytes(b"png")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    result = mwa(mwa_example_csv, out)
    assert result.exit_code == 2
    assert last_line(result) == (
        f"bayes-wake: error: --out {out}: it holds mine/plot.png and notes.docx, which "
        "bayes-wake did not write; choose another folder, or pass --overwrite to replace it "
        "whole")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert (out / "mine" / "plot.png").is_file()
    result = mwa(mwa_example_csv, out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert not (out / "notes.docx").exists() and not (out / "mine").exists()


def test_sensitivity_into_a_folder_mwa_wrote_lists_its_task_store(mwa_example_csv, tmp_path):
    """The task store that ``sensitivity`` writes in place is added to the marker, so the
    run (and a resumed one) still finds the folder its own; the next run replaces it."""
    out = tmp_path / "run"
    assert mwa(mwa_example_csv, out).exit_code == 0
    result = run("sensitivity", "--data", mwa_example_csv, *SMALL, "--match", "match1",
                 "--permutations", "20", "--date-shifts", "0", "--workers", "0",
                 "--bayes-checks", "none", "--out", out)
    assert result.exit_code == 0, result.output
    files = json.loads((out / MARKER).read_text())["files"]
    assert "tasks/" in files and "provenance.json" in files and "wakes.csv" not in files
    assert mwa(mwa_example_csv, out).exit_code == 0
    assert not (out / "tasks").exists()


def test_spreadsheet_formulas_in_column_names_are_escaped(mwa_example_csv, tmp_path):
    lines = lines_of(mwa_example_csv)
    lines[0] = lines[0].replace('"match1"', '"=HYPERLINK(1)"').replace('"match2"', '"@sum"')
    data = write_lines(tmp_path / "formula.csv", lines)
    out = tmp_path / "o"
    result = run("mwa", "--data", data, *SMALL, "--match", "=HYPERLINK(1),@sum", "--out", out)
    assert result.exit_code == 0, result.output
    header = (out / "wakes.csv").read_text().splitlines()[0]
    assert header.endswith(",'=HYPERLINK(1),'@sum")
    for path in out.glob("*.csv"):
        names = path.read_text().splitlines()[0].split(",")
        assert not [n for n in names if n.lstrip('"').startswith(("=", "+", "-", "@"))], path


def test_the_one_csv_writer_escapes_every_formula_start(tmp_path):
    table = pd.DataFrame({"=a": [1.0], "+b": [2], "-c": [3], "@d": [4], "\te": [5], "ok": [6],
                          "x=y": [7]})
    write_table(table, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == \
        "'=a,'+b,'-c,'@d,'\te,ok,x=y"
    assert csv_header_name("-") == "'-" and csv_header_name("a-b") == "a-b"


# ---------------------------------------------------------------------------------------------
# R's spellings
# ---------------------------------------------------------------------------------------------


def test_r_time_units_match_columns_and_alphas_are_accepted(mwa_example_csv, tmp_path):
    hours = ["--t-window", "48", "96", "48", "--spat-window", "4", "8", "4"]
    ours = run("mwa", "--data", mwa_example_csv, *hours, "--t-unit", "minutes",
               "--match", "match1,match2", "--alpha", "0.05", "--out", tmp_path / "ours")
    theirs = run("mwa", "--data", mwa_example_csv, *hours, "--t-unit", "mins",
                 "--match", "match1", "match2", "--alpha1", "0.05", "--alpha2", "0.1",
                 "--out", tmp_path / "r")
    assert ours.exit_code == 0 and theirs.exit_code == 0, theirs.output
    for name in ("estimates.csv", "wakes.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "ours" / name),
                                      pd.read_csv(tmp_path / "r" / name))
    settings = json.loads((tmp_path / "r" / "provenance.json").read_text())["settings"]
    assert settings["t_unit"] == "minutes" and settings["alpha2"] == 0.1
    assert settings["match_on"] == ["match1", "match2"]
    # minutes-long wakes hold no events: nothing to test, which is not "no window reaches"
    assert "0 of 4 windows estimable" in " ".join(theirs.output.split())
    days = run("mwa", "--data", mwa_example_csv, "--t-window", "2", "10", "2", "--spat-window",
               "2", "10", "2", "--match", "match1", "match2", "--weighted", "--tcm",
               "--alpha1", "0.05", "--alpha2", "0.1", "--out", tmp_path / "days")
    assert "with 0.05 < p <= 0.1 (R's alpha2)" in " ".join(days.output.split())
    secs = run("mwa", "--data", mwa_example_csv, "--t-window", "172800", "172800", "1",
               "--spat-window", "4", "4", "1", "--t-unit", "secs", "--match", "match1",
               "--out", tmp_path / "secs")
    assert secs.exit_code == 0, secs.output

    bad = run("mwa", "--data", mwa_example_csv, *hours, "--match", "match1", "--alpha2",
              "0.01", "--out", tmp_path / "bad")
    assert bad.exit_code == 2
    assert "--alpha2 must lie between --alpha (0.05) and 1" in last_line(bad)


@pytest.mark.parametrize("options, said", [
    (["--match", "--weighted", "--out"], "--match needs covariate names; got the option "
                                         "--weighted"),
    (["--weighted", "--match", "--out"], "--match needs covariate names; got the option "
                                         "--out"),
    (["--match=--tcm", "--out"], "--match needs covariate names; got the option --tcm"),
    (["--weighted", "--out"], "name at least one covariate to match on with --match COL1,COL2 "
                              "(R: matchColumns), or switch matching off with --no-match"),
])
def test_match_without_covariate_names_is_refused_naming_the_options(mwa_example_csv, tmp_path,
                                                                     options, said):
    out = tmp_path / "o"
    result = run("mwa", "--data", mwa_example_csv, *SMALL, *options, out)
    assert result.exit_code == 2
    assert said in last_line(result) and "missing column" not in result.output
    assert not out.exists()


def test_a_quoted_space_separated_match_is_split_as_a_comma_separated_one(mwa_example_csv,
                                                                          tmp_path):
    quoted = run("mwa", "--data", mwa_example_csv, *SMALL, "--match", "match1 match2",
                 "--out", tmp_path / "quoted")
    assert quoted.exit_code == 0, quoted.output
    assert mwa(mwa_example_csv, tmp_path / "commas").exit_code == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "quoted" / "estimates.csv"),
                                  pd.read_csv(tmp_path / "commas" / "estimates.csv"))
    settings = json.loads((tmp_path / "quoted" / "provenance.json").read_text())["settings"]
    assert settings["match_on"] == ["match1", "match2"]


def test_a_long_out_name_runs_and_reruns_and_one_too_long_is_one_line(mwa_example_csv,
                                                                       tmp_path):
    """A 240-character --out made staging names past 255 bytes: 'cannot create a folder',
    or an OSError traceback."""
    out = tmp_path / ("o" * 240)
    for _ in range(2):  # the second run replaces the first's folder through a staging one
        result = mwa(mwa_example_csv, out)
        assert result.exit_code == 0, result.output
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    assert (out / "estimates.csv").is_file()
    too_long = tmp_path / ("x" * 256)
    result = mwa(mwa_example_csv, too_long)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "a folder name of 256 bytes; file systems take at most 255" in last_line(result)


def test_a_repeated_match_selects_a_column_whose_name_holds_a_space(mwa_example_csv,
                                                                     tmp_path):
    """``--match "match1,match 2"`` split the name at its space; repeating --match (or a
    comma list) keeps it whole."""
    data = tmp_path / "spaced.csv"
    data.write_text(mwa_example_csv.read_text().replace('"match2"', '"match 2"', 1))
    repeated = run("mwa", "--data", data, *SMALL, "--match", "match1", "--match", "match 2",
                   "--out", tmp_path / "repeated")
    assert repeated.exit_code == 0, repeated.output
    listed = run("mwa", "--data", data, *SMALL, "--match", "match1,match 2",
                 "--out", tmp_path / "listed")
    assert listed.exit_code == 0, listed.output
    assert mwa(mwa_example_csv, tmp_path / "commas").exit_code == 0
    for folder in ("repeated", "listed"):
        pd.testing.assert_frame_equal(pd.read_csv(tmp_path / folder / "estimates.csv"),
                                      pd.read_csv(tmp_path / "commas" / "estimates.csv"))
        settings = json.loads((tmp_path / folder / "provenance.json").read_text())["settings"]
        assert settings["match_on"] == ["match1", "match 2"]


# ---------------------------------------------------------------------------------------------
# Python version, README, .gitignore
# ---------------------------------------------------------------------------------------------


def test_an_old_python_gets_a_clear_message_on_import():
    source = (REPO / "bayes_wake" / "__init__.py").read_text()
    ast.parse(source, feature_version=(3, 8))  # the check itself runs on old Pythons
    code = ("import sys; sys.version_info = (3, 11, 9, 'final', 0)\n"
            "try:\n    import bayes_wake\nexcept ImportError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, check=True)
    assert done.stdout.strip() == "bayes_wake needs Python >= 3.12 (this is 3.11)"
    old = shutil.which("python3.11")
    if old:  # a real old Python, where this machine has one
        done = subprocess.run([old, "-c", "import bayes_wake"], capture_output=True, text=True,
                              cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1] == (
            "ImportError: bayes_wake needs Python >= 3.12 (this is 3.11)")
    readme = (REPO / "README.md").read_text().splitlines()[:5]
    assert any("Needs Python >= 3.12" in line for line in readme)


def test_output_folders_the_readme_writes_are_ignored_by_git():
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    outs = sorted({out for block in blocks for out in re.findall(r"--out\s+(\S+)", block)})
    assert "mwa-example" in outs and "bw-demo" in outs
    python = re.findall(r"```python\n(.*?)```", readme, re.S)
    written = {f for block in python
               for f in re.findall(r"(?:to_netcdf|write_outputs|savefig|save_figure)\(.*?"
                                   r"[\"']([^\"']+)[\"']", block)}
    assert "posterior.nc" in written
    outs = sorted({*outs, *written})
    for out in outs:
        path = out if "." in Path(out).name else f"{out}/x"
        done = subprocess.run(["git", "check-ignore", "-q", path], cwd=REPO)
        assert done.returncode == 0, f"{out} (written by the README) is not in .gitignore"


@pytest.mark.slow
def test_the_readme_python_blocks_run_as_written(mwa_example_csv, tmp_path, monkeypatch):
    """The README's Python, in order, from a repository root with R's example data where
    the README's paths put it (``../shared/data/...``), with the sampler shortened; every call
    must work and the region it asks about must hold cells with an estimate."""
    import warnings

    from bayes_wake.bayes import spec as specs

    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert len(blocks) >= 2 and "prob_positive" in blocks[-1]
    root = tmp_path / "bayes_wake"
    shared = tmp_path / "shared" / "data" / "mwa_example"
    shared.mkdir(parents=True)
    root.mkdir()
    shutil.copy(mwa_example_csv, shared / "mwa_data.csv")
    monkeypatch.chdir(root)
    real = specs.load_spec
    monkeypatch.setattr(specs, "load_spec", lambda name: real(name).with_sampler(
        draws=200, tune=300, chains=2, seed=1))
    namespace: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    fit = namespace["fit"]
    assert 0.0 <= fit.prob_positive(lambda w, r: (w >= 8) & (r >= 8)) <= 1.0
    assert (root / "posterior.nc").is_file()


#: What each command must leave in its --out folder when a README block runs it.
README_OUTPUTS = {"mwa": "estimates.csv", "fit": "effect_surface.csv", "sauter": "report.html",
                  "demo": "true_effect.csv", "recovery": "recovery_summary.csv",
                  "sensitivity": "sensitivity_report.html"}
FITTING = ("fit", "sauter", "sensitivity")


def _readme_commands() -> list[str]:
    """The README's shell commands after the set-up block, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    commands = []
    for block in blocks[1:]:  # the first installs the package and runs the tests
        text = block.replace("\\\n", " ")
        commands += [line.strip() for line in text.splitlines()
                     if line.strip() and not line.strip().startswith("#")]
    return commands


def _shortened(command: str) -> str:
    """The same command with a short sampler (a test may shorten the MCMC, nothing else)."""
    words = command.split()
    if len(words) < 2 or not words[0].endswith("bayes-wake") or words[1] not in FITTING:
        return command
    command = re.sub(r"--(draws|tune|chains) \d+ ?", "", command)
    return command + " --draws 150 --tune 200 --chains 2 --allow-unconverged"


@pytest.mark.slow
def test_the_readme_command_blocks_run_as_written(tmp_path):
    """Every shell command of the README after the set-up block runs from a copy of the
    repository root (``../shared`` beside it, the venv's ``bayes-wake``), exits 0 and writes
    what its section says; every command of the package has a section."""
    commands = _readme_commands()
    used = {c.split()[1] for c in commands if c.split()[0].endswith("bayes-wake")}
    assert used >= set(README_OUTPUTS), f"no README section runs {set(README_OUTPUTS) - used}"
    root = tmp_path / "repo"
    root.mkdir()
    (tmp_path / "shared").symlink_to(REPO.parent / "shared")
    for name in ("scripts", "benchmarks", "models"):
        (root / name).symlink_to(REPO / name)
    bin_dir = Path(sys.executable).parent
    for command in commands:
        line = _shortened(command).replace(".venv/bin/", f"{bin_dir}/")
        done = subprocess.run(line, shell=True, cwd=root, capture_output=True, text=True,
                              timeout=900)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        words = command.split()
        if words[0].endswith("bayes-wake"):
            out = root / words[words.index("--out") + 1]
            assert (out / README_OUTPUTS[words[1]]).stat().st_size > 0, command
            assert (out / "provenance.json").is_file(), command


def test_work_that_takes_no_time_prints_no_progress_but_logs_it(mwa_example_csv, tmp_path,
                                                                 caplog):
    """mwa printed 11 'matching and fitting' lines for a step that took 0 s."""
    import logging

    with caplog.at_level(logging.INFO, logger="bayes_wake.progress"):
        result = mwa(mwa_example_csv, tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "matching and fitting" not in result.output
    assert "counting wakes" not in result.output
    logged = [r.getMessage() for r in caplog.records if r.name == "bayes_wake.progress"]
    assert any(m.startswith("matching and fitting: 4/4") for m in logged), logged


def test_a_terminal_bar_shows_a_question_mark_until_the_total_is_known():
    """In a terminal the bar is drawn before the first task reports: its total reads "?",
    never "None" (it read "0/None")."""
    import io

    from rich.console import Console

    from bayes_wake.cli.common import _progress

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, highlight=False)
    progress = _progress(console, "sensitivity tasks")
    advance = progress.__enter__()
    try:
        progress._bar.refresh()
        before = buffer.getvalue()
        advance(3, 32)
        progress._bar.refresh()
        after = buffer.getvalue()[len(before):]
    finally:
        progress.__exit__(None, None, None)
    assert "None" not in before and "0/?" in before
    assert "3/32" in after


class _Clock:
    """A stand-in for time.monotonic that the test moves on."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_in_a_log_is_one_line_per_tenth_and_long_lines_do_not_wrap(monkeypatch):
    """Without a terminal (a log, CI) progress of work that lasts is printed line-wise, at
    0%, every further 10% and the end, and a long message stays on one line."""
    import io

    from rich.console import Console

    from bayes_wake.cli import common
    from bayes_wake.cli.common import _progress

    clock = _Clock()
    monkeypatch.setattr(common.time, "monotonic", clock)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=80, highlight=False,
                      soft_wrap=True)
    with _progress(console, "sensitivity tasks") as advance:
        clock.now += 5  # past PROGRESS_AFTER_S
        for done in range(0, 101):
            advance(done, 100)
        advance(100, 100)
    lines = buffer.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [
        f"sensitivity tasks: {k}/100 ({k}%)" for k in range(0, 101, 10)]
    console.print("x" * 200)
    assert buffer.getvalue().splitlines()[-1] == "x" * 200
    from bayes_wake.cli.common import _console

    assert _console().soft_wrap  # pytest's stderr is not a terminal


def test_progress_says_the_time_left_at_the_pace_so_far(monkeypatch):
    """Long runs say how long they will still take: each progress line of a log adds the
    time left at the pace so far (seconds under two minutes, else minutes), none at the
    end."""
    import io

    from rich.console import Console

    from bayes_wake.cli import common
    from bayes_wake.cli.common import _progress

    clock = _Clock()
    monkeypatch.setattr(common.time, "monotonic", clock)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200, highlight=False)
    with _progress(console, "recovery replicates") as advance:
        clock.now += 5
        for done in range(1, 101):
            clock.now += 3  # 3 s per replicate after 5 s of set-up
            advance(done, 100)
    lines = {line.split(":")[1].split(",")[0].strip(): line
             for line in buffer.getvalue().splitlines()}
    assert lines["10/100 (10%)"].endswith("35 s, about 5 min left")  # 35 * 90 / 10 = 315 s
    assert lines["90/100 (90%)"].endswith("275 s, about 31 s left")
    assert lines["100/100 (100%)"].endswith("305 s")


# --out as ., x/.., a link or a mount point; a full disk; two runs at once; SIGTERM


@pytest.mark.parametrize("given", [".", "x/..", "inner/.."])
def test_out_that_is_or_holds_the_folder_you_run_in_is_refused_before_any_work(
        mwa_example_csv, tmp_path, monkeypatch, given):
    """`--out .` (or `x/..`) failed after the whole run with a traceback and left a hidden
    folder: now one line before the data are read, and nothing written."""
    (tmp_path / "x").mkdir()
    (tmp_path / "inner").mkdir()
    monkeypatch.chdir(tmp_path)
    result = mwa(mwa_example_csv, given)
    assert result.exit_code == 2, result.output
    assert "is (or holds) the folder you run in" in last_line(result)
    assert "treatment" not in result.output  # stopped before the data were read
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inner", "x"]


def test_out_as_a_link_to_a_folder_writes_into_that_folder(mwa_example_csv, tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    for _ in range(2):  # a rerun replaces the folder behind the link
        result = mwa(mwa_example_csv, tmp_path / "link")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real" / "estimates.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_out_as_a_mount_point_is_refused_in_one_line(mwa_example_csv):
    result = mwa(mwa_example_csv, "/")
    assert result.exit_code == 2
    assert "is a mount point" in last_line(result) and "treatment" not in result.output


_LIMITED = """
import resource, signal, sys
from bayes_wake.cli import run
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv.pop(1)),) * 2)
run()
"""


def test_a_full_disk_is_one_line_exit_2_and_keeps_the_old_folder(mwa_example_csv, tmp_path):
    """With no room for the cube (a file-size limit: the write fails as on a full disk),
    HDF5 printed about 30 tracebacks and the process died of a segmentation fault: now one
    line, exit 2, and the earlier run's folder untouched."""
    out = tmp_path / "run"
    args = ["mwa", "--data", str(mwa_example_csv), "--t-window", "2", "10", "2",
            "--spat-window", "2", "10", "2", "--match", "match1,match2", "--out", str(out)]
    assert run(*args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    done = subprocess.run([sys.executable, "-c", _LIMITED, "20000", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "the disk is full" in errors[0], done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


_HOLDER = """
import sys, time
from pathlib import Path
from bayes_wake.io.artefacts import prepared_output
with prepared_output(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(60)
"""


def test_a_second_run_into_a_folder_another_run_is_writing_stops_in_one_line(
        mwa_example_csv, tmp_path):
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        result = mwa(mwa_example_csv, out)
        assert result.exit_code == 2
        line = last_line(result)
        assert line.startswith(f"bayes-wake: error: --out {out}: another bayes-wake run ")
        assert line.endswith("is writing it; wait for it to finish or choose another folder")
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    assert mwa(mwa_example_csv, out).exit_code == 0  # the claim ended with its process
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_runs_started_together_into_one_folder_never_print_a_traceback(mwa_example_csv,
                                                                       tmp_path):
    args = [sys.executable, "-m", "bayes_wake.cli", "mwa", "--data", str(mwa_example_csv),
            *SMALL, "--match", "match1,match2", "--out", str(tmp_path / "run")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
            for _ in range(3)]
    said = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    assert any(code == 0 for code, _ in said)
    for code, text in said:
        assert "Traceback" not in text
        assert code == 0 or (code == 2 and "another bayes-wake run" in text), text
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_sigterm_during_overwrite_puts_the_users_folder_back(mwa_example_csv, tmp_path):
    """SIGINT restored the folder --overwrite had set aside; SIGTERM left it hidden."""
    import signal

    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "draft.txt").write_text("years of work\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bayes_wake.cli", "mwa", "--data", str(mwa_example_csv),
         "--t-window", "2", "10", "2", "--spat-window", "2", "10", "2", "--match",
         "match1,match2", "--overwrite", "--out", str(thesis)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 120
    while thesis.exists() and time.monotonic() < deadline:  # set aside: the run is going
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=120)
    said = proc.stderr.read()
    assert code != 0 and "Traceback" not in said, said
    assert (thesis / "draft.txt").is_file(), (said, sorted(map(str, tmp_path.rglob("*"))))
    assert (thesis / "draft.txt").read_text() == "years of work\n"
    assert sorted(p.name for p in thesis.iterdir()) == ["draft.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["thesis"]


# memory estimated before any work


@pytest.mark.parametrize("argv, parts", [
    (["mwa", "--t-window", "2", "200", "2", "--spat-window", "1", "100", "1",
      "--memory-budget", "100M"],
     ["the wake grid: 75 anchors x 10,000 cells (100 windows x 100 radii)", "100.0 MB "
      "(--memory-budget)"]),
    (["mwa", "--t-window", "2", "10", "2", "--spat-window", "0.001", "2000", "0.001"],
     ["75 anchors x 10,000,000 cells", "the default --memory-budget, 50% of this machine's"]),
    (["sensitivity", *SMALL, "--permutations", "1000000000"],
     ["1,000,000,000 permutations: "]),
    (["sensitivity", *SMALL, "--workers", "100000"], ["100,000 Dask workers: 28.6 TB"])])
def test_a_run_beyond_the_memory_budget_is_refused_before_counting(mwa_example_csv, tmp_path,
                                                                   argv, parts):
    """`mwa --t-window 2 2000 2 --spat-window 1 1000 1` took 6 GB in 30 s and went on;
    `--permutations 1000000000` and `--workers 100000` ran until memory ran out."""
    started = time.monotonic()
    result = run(argv[0], "--data", mwa_example_csv, *argv[1:], "--match", "match1",
                 "--out", tmp_path / "x")
    assert result.exit_code == 2, result.output
    line = last_line(result)
    assert line.startswith("bayes-wake: error: this run would need about ")
    for part in parts:
        assert part in line, line
    assert time.monotonic() - started < 20 and not (tmp_path / "x").exists()


def test_a_bad_memory_budget_is_a_usage_error():
    result = run("mwa", "--data", "x.csv", *SMALL, "--memory-budget", "lots", "--out", "y")
    assert result.exit_code == 2 and "give a size such as 4G" in result.output


def test_sizes_read_as_powers_of_1024():
    from bayes_wake.cli.resources import parse_size

    assert parse_size("4G") == 4 * 2**30 and parse_size("500mb") == 500 * 2**20
    assert parse_size("1.5T") == int(1.5 * 2**40) and parse_size("123") == 123
