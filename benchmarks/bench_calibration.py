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
    from bayes_wake.calibration import calibration_table, placebo_size
    from bayes_wake.mwa import MWASettings
    from bayes_wake.wakes import count_wakes

    settings = MWASettings(match_on=("dist_base_km",), weighted=True, tcm=True)
    results = []
    for p in placements:
        events = sauter_studies(p, outcomes=("vac",))["vac"]
        events = _with_clusters(events)
        cube = count_wakes(events, np.arange(10, 61, 10), np.arange(3.0, 15.1, 3.0),
                           covariates=["dist_base_km", "site", "cell10km"])
        table = calibration_table(cube, settings, choices, placement=p)
        results.append({"cells": table.to_dict("list")})
    size = placebo_size(results, choices, alpha)
    return [{"standard errors": r.choice, "placements": r.placements,
             "size (nominal 0.05)": r.size, "Monte Carlo SE": r.mc_se,
             "mean significant of 30": r.mean_flagged, "max significant": r.max_flagged,
             "positive share of false positives": r.positive_share}
            for r in size.itertuples()]


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


def run(quick: bool = False) -> list[dict]:
    if not ACLED.exists():
        return [{"skipped": f"no ACLED data at {ACLED}"}]
    start = time.perf_counter()
    rows = size_table(range(5 if quick else 20))
    rows.append({"standard errors": "seconds", "placements": round(time.perf_counter() - start)})
    return rows
