"""Whole-process times of the command line: `benchmarks/run.py cli`.

What a user waits for, imports included: ``bayes-wake --help``, and ``bayes-wake mwa`` (count,
match, OLS, the four tables, the cube and the PNG) on R's 394-event example and on a study of
the paper's size (1,900 anchors, 1,100 outcomes, 6 x 5 grid), each the median of 5 runs of
``/usr/bin/time`` (wall seconds and peak memory). Targets (issue 11): ``--help`` <= 0.3 s,
``mwa`` at paper size <= 1.0 s; R's example with its windows in seconds should take what it
takes in days (11 s and 7.7 GB while the pre-trend had a slot per second). A row times the
imports alone (the libraries the outputs need: pandas, SciPy, xarray, h5netcdf, matplotlib,
click, rich): the floor under any ``mwa`` run with this stack. The ``mwa`` process hides
dask from xarray (``bayes_wake.cli.run``); a row times the same run with dask visible, as
in-process callers have it. Where R and ``mwa`` are installed
(``../shared/r_reference/install.sh``), R's ``matchedwake`` runs on the same paper-size file.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("BAYES_WAKE_SHARED", HERE.parents[1] / "shared"))
EXAMPLE = SHARED / "data" / "mwa_example" / "mwa_data.csv"
CLI = str(Path(sys.executable).parent / "bayes-wake")


_FLOOR = ("import pandas, scipy.sparse, scipy.special, scipy.spatial, xarray, h5netcdf, "
          "matplotlib.pyplot, click, rich.progress, rich.table")
# bayes-wake mwa in a process that lets xarray import dask, as before bayes_wake.cli.run
_WITH_DASK = "import sys; sys.argv[0] = 'bayes-wake'; from bayes_wake.cli import main; main()"


def _timed(argv: list[str], repeat: int, env: dict | None = None,
           cwd: Path | None = None) -> tuple[float, float]:
    """Median wall seconds and peak RSS (MB) of ``argv`` over ``repeat`` runs."""
    walls, peaks = [], []
    for _ in range(repeat):
        done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *argv], capture_output=True,
                              text=True, env=env, cwd=cwd)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        wall, peak = done.stderr.strip().splitlines()[-1].split()
        walls.append(float(wall))
        peaks.append(float(peak) / 1024)
    return statistics.median(walls), max(peaks)


def _paper_csv(folder: Path) -> Path:
    from bayes_wake.simulate import simulate_study

    events = simulate_study(0).events
    frame = events.assign(type=events["role"], timestamp=events["time"].dt.strftime(
        "%Y-%m-%d %H:%M:%S"))[["type", "lon", "lat", "timestamp", *events.attrs["covariates"]]]
    path = folder / "paper.csv"
    frame.to_csv(path, index=False)
    return path


def _mwa_argv(data: Path, out: Path, grid: tuple[str, ...], match: str,
              t_unit: str = "days") -> list[str]:
    return [CLI, "mwa", "--data", str(data), "--t-window", *grid[:3], "--spat-window",
            *grid[3:], "--match", match, "--weighted", "--t-unit", t_unit, "--out", str(out),
            "--overwrite"]


def run(quick: bool = False) -> list[dict]:
    if shutil.which("/usr/bin/time") is None:
        return [{"skipped": "no /usr/bin/time on this machine"}]
    repeat = 3 if quick else 5
    folder = Path(tempfile.mkdtemp(prefix="bw-cli-"))
    rows = []
    wall, peak = _timed([CLI, "--help"], repeat)
    rows.append({"command": "bayes-wake --help", "wall_s": wall, "target_s": 0.3,
                 "peak_mb": peak})
    if EXAMPLE.exists():
        wall, peak = _timed(_mwa_argv(EXAMPLE, folder / "example", ("2", "10", "2", "2",
                                                                      "10", "2"),
                                      "match1,match2"), repeat)
        rows.append({"command": "bayes-wake mwa, R's example (394 events, 5 x 5)",
                     "wall_s": wall, "target_s": "", "peak_mb": peak})
        # the same windows in seconds: time and memory must not grow with the unit
        seconds = ("172800", "864000", "172800", "2", "10", "2")
        wall, peak = _timed(_mwa_argv(EXAMPLE, folder / "seconds", seconds, "match1,match2",
                                      "seconds"), repeat)
        rows.append({"command": "the same in seconds (--t-window 172800 864000 172800)",
                     "wall_s": wall, "target_s": "", "peak_mb": peak})
    paper = _paper_csv(folder)
    wall, peak = _timed(_mwa_argv(paper, folder / "paper", ("10", "60", "10", "3", "15", "3"),
                                  "dist_base_km,dist_river_km,pop_density"), repeat)
    rows.append({"command": "bayes-wake mwa, paper size (1,900 anchors x 1,100, 6 x 5)",
                 "wall_s": wall, "target_s": 1.0, "peak_mb": peak})
    argv = _mwa_argv(paper, folder / "paper", ("10", "60", "10", "3", "15", "3"),
                     "dist_base_km,dist_river_km,pop_density")
    wall, peak = _timed([sys.executable, "-c", _WITH_DASK, *argv[1:]], repeat)
    rows.append({"command": "the same, dask visible to xarray (imports dask.array, distributed)",
                 "wall_s": wall, "target_s": "", "peak_mb": peak})
    # the floor under any mwa run: the libraries its outputs need, imported and nothing done
    wall, peak = _timed([sys.executable, "-c", _FLOOR], repeat)
    rows.append({"command": "imports alone (pandas, SciPy, xarray, h5netcdf, matplotlib, ...)",
                 "wall_s": wall, "target_s": "", "peak_mb": peak})
    rscript = shutil.which("Rscript")
    if rscript:
        code = ("suppressMessages(library(mwa)); d <- read.csv(commandArgs(TRUE)[1]); "
                "d$timestamp <- as.POSIXct(d$timestamp, tz = 'UTC'); "
                "invisible(matchedwake(d, c(10, 60, 10), c(3, 15, 3), c('type', 'treatment'), "
                "c('type', 'control'), c('type', 'dependent'), "
                "c('dist_base_km', 'dist_river_km', 'pop_density'), weighted = TRUE, "
                "t_unit = 'days'))")
        try:
            # install.sh puts mwa and cem into /tmp/r_reference_lib
            env = {**os.environ, "R_LIBS_USER": os.environ.get("R_LIBS_USER",
                                                               "/tmp/r_reference_lib")}
            # matchedwake writes matchedwake_log.txt into its working folder
            wall, peak = _timed([rscript, "-e", code, str(paper)], 1, env, cwd=folder)
            rows.append({"command": "R mwa::matchedwake, paper size", "wall_s": wall,
                         "target_s": "", "peak_mb": peak})
        except RuntimeError as exc:
            rows.append({"command": "R mwa::matchedwake", "wall_s": "",
                         "target_s": f"failed: {str(exc).splitlines()[0][:60]}"})
    shutil.rmtree(folder, ignore_errors=True)
    return rows
