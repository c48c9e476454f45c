"""Recovery on the package's own simulator: `run.py simulator`.

Four simulated paper-size studies (`simulate_study(seed)`, seeds 0-3, the paper's 6 x 5 grid)
with a planted effect surface. Per spec and seed: RMSE of the posterior mean and of the OLS
estimate against the truth, coverage of the 90% equal-tailed interval, and the convergence
diagnostics. The simulator's wakes have homogeneous baselines; the real-data battery
(`run.py recovery`) is the harder test.
"""

from __future__ import annotations

import time

import numpy as np
from bench_bayes import RADII, WINDOWS

SPECS = ("smooth_did", "smooth_nb")


def _row(spec_name: str, seed: int) -> dict:
    import arviz as az

    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.mwa.analysis import MWASettings, matched_wake_analysis
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes

    study = simulate_study(seed)
    covariates = list(study.events.attrs["covariates"])
    cube = count_wakes(study.events, WINDOWS, RADII)
    fit = fit_surface(cube, load_spec(spec_name), MWASettings(match_on=covariates, weighted=True),
                      progressbar=False)
    ols = matched_wake_analysis(cube, MWASettings(match_on=covariates, weighted=True)).surface
    truth = study.true_effect(WINDOWS, RADII, convention="mwa")
    common = np.isfinite(ols["estimate"]) & np.isfinite(fit.surface["mean"])
    interval = az.eti(fit.idata.posterior["additive_effect"], prob=0.9)
    inside = (interval.sel(ci_bound="lower") <= truth) & (truth <= interval.sel(ci_bound="upper"))
    d = fit.diagnostics
    return {"spec": spec_name, "seed": seed,
            "rmse": float(((fit.surface["mean"] - truth) ** 2).where(common).mean() ** 0.5),
            "rmse ols": float(((ols["estimate"] - truth) ** 2).where(common).mean() ** 0.5),
            "coverage 90%": float(inside.where(common).mean()),
            "max R-hat": d.max_r_hat, "min bulk ESS": d.min_ess_bulk,
            "divergences": d.divergences}


def run(quick: bool = False) -> list[dict]:
    start = time.perf_counter()
    rows = [_row(spec, seed) for spec in SPECS for seed in range(1 if quick else 4)]
    rows.append({"spec": "seconds", "seed": round(time.perf_counter() - start)})
    return rows
