"""Empirical size of per-window p-values on the real ACLED outcomes: `run.py calibration`.

Twenty (or more) placebo placements with no effect (simulated QIPs near MINUSMA bases, aid
projects at settlements, as `bayes-wake sauter` without project files), the real violence
against civilians in the six study regions 2017-2020, the paper's 6 x 5 grid, weighted CEM
with TCM. Under no effect a test of level 0.05 should flag 5% of windows.
"""

from __future__ import annotations

import time

import numpy as np

from bench_recovery import ACLED, sauter_studies

CHOICES = ("classical", "HC1", "CR1:site", "CR2:site", "CR1:cell10km", "CR2:cell10km",
           "conley:25", "conley-bm:25")


def size_table(placements=range(20), choices=CHOICES, alpha=0.05) -> list[dict]:
    from bayes_wake.recovery import calibration_table
    from bayes_wake.wakes import count_wakes

    tables = []
    for p in placements:
        events = sauter_studies(p, outcomes=("vac",))["vac"]
        events = _with_clusters(events)
        cube = count_wakes(events, np.arange(10, 61, 10), np.arange(3.0, 15.1, 3.0),
                           covariates=["dist_base_km", "site", "cell10km"])
        tables.append(calibration_table(cube, ["dist_base_km"], choices, placement=p))
    return _summarise(tables, choices, alpha)


def _with_clusters(events):
    """Cluster columns: the site (identical coordinates) and a 10 km grid cell."""
    events = events.copy()
    coords = events[["lat", "lon"]].round(6).astype(str).agg(",".join, axis=1)
    events["site"] = coords.factorize()[0].astype(float)
    km = 10.0 / 111.32
    cell = (np.floor(events["lat"] / km).astype(int).astype(str) + ":"
            + np.floor(events["lon"] / (km / np.cos(np.radians(events["lat"])))).astype(int)
            .astype(str))
    events["cell10km"] = cell.factorize()[0].astype(float)
    events.attrs["covariates"] = ["dist_base_km", "site", "cell10km"]
    return events


def _summarise(tables, choices, alpha):
    import pandas as pd

    frame = pd.concat(tables, ignore_index=True)
    rows = []
    for choice in choices:
        p = frame[f"pvalue_{choice}"]
        sig = (p <= alpha).groupby(frame["placement"]).sum()
        rows.append({"standard errors": choice, "placements": int(sig.size),
                     "size (nominal 0.05)": float((p[p.notna()] <= alpha).mean()),
                     "mean significant of 30": float(sig.mean()),
                     "max significant": int(sig.max()),
                     "placements with >= 5": int((sig >= 5).sum()),
                     "positive share of false positives": float(
                         (frame["estimate"][p <= alpha] > 0).mean()) if (p <= alpha).any()
                     else float("nan")})
    return rows


def run(quick: bool = False) -> list[dict]:
    if not ACLED.exists():
        return [{"skipped": f"no ACLED data at {ACLED}"}]
    start = time.perf_counter()
    rows = size_table(range(5 if quick else 20))
    rows.append({"standard errors": "seconds", "placements": round(time.perf_counter() - start)})
    return rows
