"""The Bayesian fit at the paper's size: compile and sampling time per sampler, and the gain
from the likelihood over unique rows.

Targets: the default model (``smooth_did``; ``adaptive_did`` beside it) compiles and samples
4 chains to max R-hat <= 1.01, bulk ESS >= 400 in every effect cell and no divergences in
under 30 s wall on 2 cores (issue 8); the rate-ratio model ``smooth_nb`` in under 2 minutes
(issue 3), per sampler; the count model ``nb_did`` (issue 23) in under 60 s with
compilation, and the same on the simulated study with twice and four times the wakes
(:func:`scaling`).
"""

from __future__ import annotations

import importlib.util
import time
import warnings

WINDOWS = [10, 20, 30, 40, 50, 60]
RADII = [3.0, 6.0, 9.0, 12.0, 15.0]


def _study():
    from bayes_wake.simulate import simulate_study
    from bayes_wake.wakes import count_wakes

    study = simulate_study(0)
    cube = count_wakes(study.events, WINDOWS, RADII)
    return cube, list(study.events.attrs["covariates"])


def _row(label: str, spec, cube, covariates) -> dict:
    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.mwa.analysis import MWASettings
    from bayes_wake.errors import ConvergenceWarning

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = fit_surface(cube, spec, MWASettings(match_on=covariates, weighted=True),
                          progressbar=False)
    wall = time.perf_counter() - start
    d = fit.diagnostics
    model = __import__("json").loads(fit.idata.attrs["model_data"])
    return {"model": label, "sampler": spec.sampler.backend,
            "likelihood_rows": model.get("rows", model.get("cells", model.get("wakes"))),
            "wake_x_cell_terms": model.get("wake_terms", ""),
            "compile_s": d.compile_seconds, "sample_s": d.sample_seconds, "wall_s": wall,
            "max_rhat": d.max_r_hat, "min_ess_bulk": d.min_ess_bulk,
            "divergences": d.divergences, "converged": d.converged}


def run(quick: bool = False) -> list[dict]:
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.options import DEFAULT_SPEC

    cube, covariates = _study()
    rows = [_row(f"{DEFAULT_SPEC} (default)", load_spec(DEFAULT_SPEC), cube, covariates),
            _row("adaptive_did", load_spec("adaptive_did"), cube, covariates),
            _row("nb_did", load_spec("nb_did"), cube, covariates)]
    spec = load_spec("smooth_nb")
    rows.append(_row("smooth_nb", spec, cube, covariates))
    rows.append(_row("smooth_nb", spec.with_sampler(backend="pymc"), cube, covariates))
    if importlib.util.find_spec("numpyro") and importlib.util.find_spec("jax"):
        rows.append(_row("smooth_nb", spec.with_sampler(backend="numpyro"), cube, covariates))
    else:
        rows.append({"model": "smooth_nb", "sampler": "numpyro",
                     "converged": "not installed (pip install -e .[numpyro])"})
    if not quick:  # what collapsing to unique rows saves: the lagged model keeps covariates
        rows.append(_row("lagged_nb (one row per wake x cell)", load_spec("lagged_nb"), cube,
                         covariates))
    return rows
