"""The recovery battery on the real ACLED Mali outcomes: `benchmarks/run.py recovery`.

Builds the Sauter-style studies (simulated placements; the outcome events are ACLED's, read
from ../shared/data and never written into the repository), plants the scenarios of
``battery.yaml`` on every placement, refits each method and prints the score table.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("BAYES_WAKE_SHARED", HERE.parents[1] / "shared")) / "data"
ACLED = SHARED / "acled_mali_2017_2020" / "2017-01-01-2020-12-31-Mali.csv"


def sauter_studies(placement: int, outcomes=("vac", "battles_nsag"),
                   design: str = "bases") -> dict[str, pd.DataFrame]:
    """Event tables of the Sauter design on the real ACLED outcomes, one per outcome."""
    from bayes_wake.studies.sauter.workflow import battery_studies

    return battery_studies(SHARED, placement, outcomes, design=design)


def battery(path=HERE / "battery.yaml", quick: bool = False, out=None, methods=None,
            mwa: dict | None = None):
    """Run the battery on every design and placement; returns (score table, cell table).

    The score table has one row per method, truth (``truth``: the effect on the OLS table's
    matched coefficient; ``truth_direct``: what each matched treated wake's own treatment
    caused in its own wake), design and scenario.
    """
    import tempfile
    from dataclasses import replace

    from bayes_wake.checks.recovery import (
        Battery,
        RecoverySettings,
        load_battery,
        run_recovery,
        score_recovery,
    )
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.options import DEFAULT_SPEC

    scenarios, conf = load_battery(path)
    placements = conf.get("placements", [0, 1, 2])[: 1 if quick else None]
    designs = conf.get("designs", ["bases"])[: 1 if quick else None]
    w0, w1, ws = conf.get("windows", [10, 60, 10])
    r0, r1, rs = conf.get("radii", [3, 15, 3])
    settings = RecoverySettings(
        windows=tuple(int(w) for w in np.arange(w0, w1 + 1, ws)),
        radii=tuple(float(r) for r in np.arange(r0, r1 + 1e-9, rs)),
        mwa=MWASettings.from_dict({"match_on": ["dist_base_km"], **conf.get("mwa", {}),
                                   **(mwa or {})}),
        methods=tuple(methods or conf.get("methods", ["ols", DEFAULT_SPEC])))
    frames, scen_all = {}, []
    for p in placements:  # placements outer: a battery stopped early is balanced over designs
        for design in designs:
            for name, frame in sauter_studies(p, design=design).items():
                frames[f"{name}@{design}:{p}"] = frame
            scen_all += [replace(s, data=f"{s.data}@{design}:{p}") for s in scenarios]
    directory = out or tempfile.mkdtemp(prefix="bw-battery-")
    # the placements are simulated (no effect of their own): the estimate itself is scored,
    # as in the tables of docs/bayesian_model.md, not the change from an unplanted fit
    cells = run_recovery(frames, Battery(tuple(scen_all), replicates=1, seed=0), settings,
                         directory, baseline=False, log=print)
    cells["design"] = cells["study"].str.extract(r"@(\w+):")[0]
    table = pd.concat([score_recovery(cells, truth, by=("design", "scenario"))
                       for truth in ("truth", "truth_direct")], ignore_index=True)
    return table, cells


def run(quick: bool = False, path=HERE / "battery.yaml") -> list[dict]:
    """The battery's score table (``path``: battery.yaml, or holdout.yaml for the scenarios
    the default model was not chosen on)."""
    if not ACLED.exists():
        return [{"skipped": f"no ACLED data at {ACLED}"}]
    start = time.perf_counter()
    table, _ = battery(path, quick=quick, out=os.environ.get("BAYES_WAKE_BATTERY_DIR"))
    keep = ["method", "truth", "design", "scenario", "replicates", "rmse", "rmse_vs_ols",
            "bias_large",
            "coverage", "width", "power", "false_positive_cells", "any_false_positive",
            "converged"]
    rows = table[keep].to_dict("records")
    rows.append({"method": "total seconds", "scenario": f"{time.perf_counter() - start:.0f}"})
    return rows


def run_spillover(quick: bool = False) -> list[dict]:
    """spillover.yaml with OLS with and without --spillover, scored on the direct effect:
    per design and scenario the RMSE, the mean error in the cells where the effect is
    largest and the 95% coverage of the direct effect with R's classical errors and with
    CR2 over anchors linked within 6 km and 60 days (a clump shares its outcome events)."""
    if not ACLED.exists():
        return [{"skipped": f"no ACLED data at {ACLED}"}]
    start = time.perf_counter()
    rows = []
    for vcov in ("classical", "CR2:near=6,60"):
        for spillover in (False, True):
            table, _ = battery(HERE / "spillover.yaml", quick=quick,
                               mwa={"spillover": spillover, "vcov": vcov})
            table = table[table["truth"] == "truth_direct"]
            for row in table.to_dict("records"):
                rows.append({"ols": "--spillover" if spillover else "plain", "vcov": vcov,
                             **{k: row[k] for k in ("design", "scenario", "replicates",
                                                    "rmse", "bias", "bias_large", "coverage",
                                                    "false_positive_cells")}})
    rows.append({"ols": "total seconds", "design": f"{time.perf_counter() - start:.0f}"})
    return rows
