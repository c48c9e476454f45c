"""Sensitivity checks at the paper's size: batched permutations against a statsmodels loop, and
the sensitivity tasks on Dask with 1 and 2 workers.

Study: `simulate_study(0)` (400 treatments, 1,500 controls, 1,100 outcome events), grid
t = 10..60 days by 10 x s = 3..15 km by 3 (30 windows), matched on the three covariates,
weighted, classical errors (R's table).

- ``permutations``: 1,000 within-stratum label permutations, every one refitting the 30
  windows. Batched: :func:`bayes_wake.checks.randomisation.label_permutation_chunk` (labels and all
  fits in NumPy). Loops: the same permuted labels fitted one window at a time with statsmodels
  ``WLS`` and with bayes_wake's ``weighted_ols`` (R's rules), timed on a subset and scaled to
  1,000; the t-values of all three agree.
- ``dask``: the frequentist tasks of a sensitivity run (1,000 permutations in chunks of 100,
  100 date-shift placebos in chunks of 10), then the same plus 4 Bayesian fits (``quick``:
  300 permutations and 30 placebos only), run in this process, then on a LocalCluster with
  1 and with 2 workers (cluster start-up included). A fit samples its 4 chains on 2 threads,
  so fits already use both cores without Dask.
- ``layout``: per task kind, the number of tasks, seconds per task, and what travels: shared
  objects are scattered once per worker, each task returns a small JSON document.

Run under the MCMC lock (``flock /tmp/bayes_wake_mcmc.lock``): the full run fits models.
"""

from __future__ import annotations

import json
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

WINDOWS = [10, 20, 30, 40, 50, 60]
RADII = [3.0, 6.0, 9.0, 12.0, 15.0]
COVARIATES = ("dist_base_km", "dist_river_km", "pop_density")


def _study():
    from bayes_wake.checks.randomisation import grid_design
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes

    events = simulate_study(0).events
    cube = count_wakes(events, WINDOWS, RADII)
    settings = MWASettings(match_on=COVARIATES, weighted=True)
    return events, cube, settings, grid_design(cube, settings)


def permutation_rows(design, n_permutations: int = 1000, n_loop: int = 100) -> list[dict]:
    import statsmodels.api as sm

    from bayes_wake.checks.randomisation import (
        chunk_rng,
        label_permutation_chunk,
        permuted_labels,
    )
    from bayes_wake.core.regression import weighted_ols

    label_permutation_chunk(design, 0, 10, seed=1)  # warm-up
    start = time.perf_counter()
    for chunk in range(n_permutations // 100):
        label_permutation_chunk(design, chunk, 100, seed=1)
    batched = time.perf_counter() - start

    keys = chunk_rng(1, 0, 0).random((n_loop, design.n_events))
    labels = permuted_labels(design, keys)
    batched_t = design.statistics(labels).t.reshape(n_loop, -1)

    def loop(fit_one) -> tuple[float, np.ndarray]:
        t_values = np.full((n_loop, len(design.cells)), np.nan)
        start = time.perf_counter()
        for p in range(n_loop):
            for c, cell in enumerate(design.cells):
                treated = labels[c][p]
                w = np.where(treated, 1.0, cell.control_weight[cell.stratum])
                x = np.column_stack([np.ones(cell.n), cell.pre, treated.astype(float)])
                t_values[p, c] = fit_one(cell.outcome, x, w)
        return time.perf_counter() - start, t_values

    def with_statsmodels(y, x, w):
        result = sm.WLS(y, x, weights=w).fit()
        _ = result.pvalues[-1]
        return result.tvalues[-1]

    def with_weighted_ols(y, x, w):
        fit = weighted_ols(y, x, w)
        return fit.coef[-1] / fit.std_error[-1]

    rows = [{"case": f"{n_permutations:,} permutations x 30 windows: batched NumPy "
                     "(labels + fits)", "seconds": batched,
             "per_permutation_ms": 1000 * batched / n_permutations, "speed_up": 1.0}]
    for name, fit_one in (("loop over statsmodels WLS", with_statsmodels),
                          ("loop over weighted_ols (R rules)", with_weighted_ols)):
        seconds, t_values = loop(fit_one)
        np.testing.assert_allclose(t_values, batched_t, rtol=1e-8)
        total = seconds * n_permutations / n_loop
        rows.append({"case": f"{n_permutations:,} permutations x 30 windows: {name} "
                             f"(timed on {n_loop}, scaled)", "seconds": total,
                     "per_permutation_ms": 1000 * seconds / n_loop,
                     "speed_up": total / batched})
    rows[0]["speed_up"] = rows[1]["seconds"] / batched
    rows[1]["speed_up"] = 1.0
    rows[2]["speed_up"] = rows[1]["seconds"] / rows[2]["seconds"]
    return rows


def _tasks(events, cube, settings, design, permutations: int, date_shifts: int, fits: bool):
    from bayes_wake.checks.sensitivity import SensitivitySettings, _plan

    checks = ("surface", "likelihood", "matching", "sutva") if fits else ()
    sensitivity = SensitivitySettings(mwa=settings, windows=tuple(WINDOWS), radii=tuple(RADII),
                                      permutations=permutations, date_shifts=date_shifts,
                                      bayes_checks=checks, grid_region="t>=20, s<=9")
    tasks = _plan(events, cube, sensitivity, None, ())[0]
    shared = {"design": design, "events": events, "cube": cube, "regions": None}
    return tasks, shared


def dask_rows(events, cube, settings, design, permutations: int, shifts: int, fits: bool,
              with_layout: bool) -> list[dict]:
    from bayes_wake.checks.tasks import layout, run_tasks

    tasks, shared = _tasks(events, cube, settings, design, permutations, shifts, fits=fits)
    what = (f"{permutations:,} permutations + {shifts} date shifts"
            + (" + 4 Bayesian fits" if fits else "") + f" ({len(tasks)} tasks)")
    rows, reports = [], {}
    for label, scheduler, workers in (("in this process (no Dask)", "inline", None),
                                      ("LocalCluster, 1 worker", None, 1),
                                      ("LocalCluster, 2 workers", None, 2)):
        folder = Path(tempfile.mkdtemp(prefix="bench-sensitivity-"))
        try:
            start = time.perf_counter()
            report = run_tasks(tasks, folder, shared=shared, scheduler=scheduler,
                               n_workers=workers)
            wall = time.perf_counter() - start
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        reports[label] = report
        rows.append({"case": f"{what}: {label}", "workers": workers or 0,
                     "seconds": wall, "task_seconds": sum(report.seconds.values())})
    one = rows[1]["seconds"]
    for row in rows:
        row["speed_up"] = one / row["seconds"]
    if not with_layout:
        return rows
    report = reports["LocalCluster, 2 workers"]
    sizes = {name: len(pickle.dumps(obj)) / 1e6 for name, obj in shared.items()
             if obj is not None}
    result_kb = {}
    for task in tasks:
        result_kb.setdefault(task.kind, []).append(
            len(json.dumps(report.results[task.key])) / 1e3)
    shipped = {"labels": "design", "date_shift": "events", "fit": "cube"}
    for row in layout(tasks, report):
        kind = row["kind"]
        rows.append({"case": f"layout: {kind} tasks", "tasks": row["tasks"],
                     "seconds": row["mean_task_seconds"],
                     "note": f"per task; {shipped[kind]} ({sizes[shipped[kind]]:.2f} MB) "
                             f"scattered once per worker; result "
                             f"{np.mean(result_kb[kind]):.1f} kB JSON"})
    return rows


def run(quick: bool = False) -> list[dict]:
    events, cube, settings, design = _study()
    rows = permutation_rows(design, 1000, 20 if quick else 100)
    if quick:
        rows += dask_rows(events, cube, settings, design, 300, 30, False, True)
    else:
        rows += dask_rows(events, cube, settings, design, 1000, 100, False, False)
        rows += dask_rows(events, cube, settings, design, 1000, 100, True, True)
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
