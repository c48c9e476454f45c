"""Empirical size of per-window p-values on the real ACLED outcomes: `run.py calibration`.

Twenty (or more) placebo placements with no effect (simulated QIPs near MINUSMA bases, aid
projects at settlements, as `bayes-wake sauter` without project files), the real violence
against civilians in the six study regions 2017-2020, the paper's 6 x 5 grid, weighted CEM
with TCM. Under no effect a test of level 0.05 should flag 5% of windows.
"""

from __future__ import annotations

import time

import numpy as np
from bench_recovery import ACLED, HERE, SHARED, battery, sauter_studies

CHOICES = ("classical", "HC1", "CR1:site", "CR2:site", "CR1:cell10km", "CR2:cell10km",
           "conley:25", "conley-bm:25")


#: Per placement design (issue 30): anchors that share events (clumped projects) need
#: clusters that group them by proximity.
DESIGN_CHOICES = ("classical", "HC1", "CR2:site", "CR2:near=5,60", "CR2:near=10,90",
                  "conley-bm:25")
#: The designs, exchangeable first; on ``bases`` the placements themselves differ before any
#: treatment (violence near bases trended differently), so its "size" is a bias.
DESIGNS = {"settlements": "QIPs placed as aid projects (exchangeable)",
           "clumped": "aid projects in programmes of 5 within 5 km and 60 days",
           "bases": "QIPs near bases: a placement bias, not a size"}


def size_table(placements=range(20), choices=CHOICES, alphas=(0.05,),
               design: str = "bases") -> list[dict]:
    """Size of the per-window tests at each level of ``alphas`` over placebo placements of
    one ``design`` (:func:`bayes_wake.simulate.placements.simulate_project_placement`)."""
    from bayes_wake.checks.calibration import calibration_table, placebo_size
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.wakes import count_wakes

    settings = MWASettings(match_on=("dist_base_km",), weighted=True, tcm=True)
    results = []
    for p in placements:
        events = sauter_studies(p, outcomes=("vac",), design=design)["vac"]
        events = _with_clusters(events)
        cube = count_wakes(events, np.arange(10, 61, 10), np.arange(3.0, 15.1, 3.0),
                           covariates=["dist_base_km", "site", "cell10km"])
        table = calibration_table(cube, settings, choices, placement=p)
        results.append({"cells": table.to_dict("list")})
    return [row for alpha in alphas
            for row in _rows(placebo_size(results, choices, alpha), alpha)]


def _rows(size, alpha: float = 0.05) -> list[dict]:
    """The size table of :func:`bayes_wake.checks.calibration.placebo_size` as printed."""
    return [{"standard errors": r.choice, "placements": r.placements,
             f"size (nominal {alpha:.2f})": r.size, "Monte Carlo SE": r.mc_se,
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


SITE_CHOICES = ("classical", "HC1", "CR1:location", "CR2:location", "CR1:admin2", "CR2:admin2",
                "conley:25", "conley-bm:25")


def site_table(placements=range(20), choices=SITE_CHOICES, alpha=0.05) -> list[dict]:
    """The package's own placebo machinery (``sensitivity --placebo-sites``): anchors re-drawn
    over the settlements of the study regions, treatments weighted by exp(-distance to the
    nearest MINUSMA base / 30 km), the real ACLED violence against civilians kept."""
    from bayes_wake.checks.calibration import placebo_calibration_task, placebo_shift, placebo_size
    from bayes_wake.mwa.analysis import MWASettings

    events = sauter_studies(0, outcomes=("vac",))["vac"]  # its anchors are re-drawn
    sites = _settlement_sites()
    events = events.assign(admin2=0.0)
    events.attrs["covariates"] = ["dist_base_km", "admin2"]
    config = {"windows": list(range(10, 61, 10)), "radii": [3.0, 6.0, 9.0, 12.0, 15.0],
              "t_unit": "days", "convention": "mwa", "vcovs": list(choices),
              "mwa": MWASettings(match_on=("dist_base_km",), weighted=True, tcm=True).__dict__,
              "weight": "weight", "spec": None}
    results = [placebo_calibration_task(events, sites, p, 0, config) for p in placements]
    size = placebo_size(results, choices, alpha)
    return _rows(size, alpha) + [
        {"standard errors": f"({len(sites):,} sites; mean placebo estimate "
                            "{:+.3f}, t = {:.1f})".format(*placebo_shift(results))}]


def _settlement_sites():
    """Settlements of the six study regions with distance to base, admin-2 code, weight."""
    import pandas as pd

    from bayes_wake.io.covariates import add_covariates, load_layer
    from bayes_wake.studies.sauter.regions import (
        STUDY_REGIONS,
        filter_to_regions,
        load_regions,
        resolve_regions,
    )

    admin = SHARED / "ocha_cod_ab_mali_2015"
    places = pd.read_csv(admin / "settlements_cod_populated_places.csv")
    frame = pd.DataFrame({"lon": places["longitude"], "lat": places["latitude"],
                          "admin2": places["admin2Pcod"].factorize()[0].astype(float)})
    boundary = load_regions(admin / "mli_adm1_with_menaka_derived.geojson")
    frame, _ = filter_to_regions(frame, boundary, resolve_regions(STUDY_REGIONS, boundary),
                                 snap_km=0.0, step="settlements")
    bases = load_layer(SHARED / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv")
    frame = add_covariates(frame.reset_index(drop=True), layers={"dist_base_km": bases})
    frame["weight"] = np.exp(-frame["dist_base_km"] / 30.0)
    return frame


def posterior_size_rows(quick: bool = False) -> list[dict]:
    """Size of the default model's 90% intervals (and OLS's 95% ones, R's classical errors)
    per design and outcome over the placebo placements of ``nulls.yaml``: the share of cells
    whose interval excludes 0 (:func:`bayes_wake.checks.recovery.score_recovery`'s
    ``false_positive``)."""
    table, _ = battery(HERE / "nulls.yaml", quick=quick)
    table = table[table["truth"] == "truth"]
    return [{"standard errors": f"{r.method} ({'90% posterior' if r.method != 'ols' else '95%'}"
                                f" interval), {r.design}, {r.scenario}",
             "size (nominal 0.05)": r.false_positive if r.method == "ols" else "",
             "size (nominal 0.10)": r.false_positive if r.method != "ols" else ""}
            for r in table.itertuples()]


def run(quick: bool = False) -> list[dict]:
    if not ACLED.exists():
        return [{"skipped": f"no ACLED data at {ACLED}"}]
    start = time.perf_counter()
    rows = size_table(range(5 if quick else 20))
    rows.append({"standard errors": "seconds", "placements": round(time.perf_counter() - start)})
    start = time.perf_counter()
    rows.append({"standard errors": "--- re-drawn over settlements (placebo sites) ---"})
    rows += site_table(range(5 if quick else 20))
    rows.append({"standard errors": "seconds", "placements": round(time.perf_counter() - start)})
    for design, words in DESIGNS.items():
        start = time.perf_counter()
        rows.append({"standard errors": f"--- design {design}: {words} ---"})
        # both levels: 0.10 is the size to set beside the posterior's 90% intervals below
        rows += size_table(range(4 if quick else 10), DESIGN_CHOICES, (0.05, 0.10),
                           design=design)
        rows.append({"standard errors": "seconds",
                     "placements": round(time.perf_counter() - start)})
    start = time.perf_counter()
    rows.append({"standard errors": "--- the default model's intervals (benchmarks/nulls.yaml,"
                                    " 10 placements per design) ---"})
    rows += posterior_size_rows(quick)
    rows.append({"standard errors": "seconds", "placements": round(time.perf_counter() - start)})
    return rows
