"""Fit the Bayesian wake model and report its posterior effect surface.

Build and fit are separate steps (:func:`bayes_wake.bayes.model.build_model`, then
:func:`sample_model`); :func:`fit_surface` runs both on a wake cube. Results are ArviZ
DataTrees whose effect variables have dims ``window`` x ``radius``, like the OLS surface, so the
two plot side by side without reshaping.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import get_args

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.bayes.likelihoods import Likelihood, TreatedDraws, likelihood_for
from bayes_wake.bayes.model import (
    ModelData,
    build_model,
    covariate_names,
    prepare_model_data,
)
from bayes_wake.bayes.spec import ModelSpec
from bayes_wake.core.windows import GridRegion
from bayes_wake.errors import ConvergenceWarning, SettingsError
from bayes_wake.options import DEFAULT_SPEC, Sampler
from bayes_wake.io.artefacts import package_versions, write_netcdf
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import MWASettings

__all__ = ["BayesResult", "fit_surface", "sample_model", "effect_surface_table", "FILE_NAMES",
           "load_posterior", "SAMPLERS", "Diagnostics", "SHRINKAGE_COLUMNS"]

#: The sampler backends (:data:`bayes_wake.options.Sampler`).
SAMPLERS = get_args(Sampler)
#: Convergence thresholds (Vehtari et al. 2021).
MAX_RHAT, MIN_ESS = 1.01, 400
SURFACE_COLUMNS = ["t_window", "spat_window", "mean", "sd", "ci_lower", "ci_upper",
                   "ci_prob", "prob_positive", "rate_ratio_median", "rate_ratio_ci_lower",
                   "rate_ratio_ci_upper", "rate_ratio_defined", "r_hat", "ess_bulk",
                   "converged"]
#: The share of draws in which a cell's rate ratio must be defined (its counterfactual
#: positive) for the table to give the ratio's median and interval; below it they are NA.
MIN_RATIO_DEFINED = 0.95
#: The count-scale surface's further columns: the cell's own estimate, how far pooling moved
#: the posterior mean from it (robust standard errors) and whether it pulled a clear one
#: toward 0 (:func:`bayes_wake.bayes.did_surface.shrinkage`).
SHRINKAGE_COLUMNS = ["ols_estimate", "shift_se", "pulled_to_zero"]


@dataclass(frozen=True)
class Diagnostics:
    """MCMC diagnostics over the effect cells.

    Attributes
    ----------
    max_r_hat, min_ess_bulk, divergences
        Worst rank-normalised R-hat and bulk ESS over the effect cells, and the number of
        divergent transitions.
    compile_seconds, sample_seconds
        Wall time of compilation and sampling.
    """

    max_r_hat: float
    min_ess_bulk: float
    divergences: int
    compile_seconds: float
    sample_seconds: float

    @property
    def converged(self) -> bool:
        """R-hat <= 1.01, bulk ESS >= 400 in every cell, and no divergences."""
        return (self.max_r_hat <= MAX_RHAT and self.min_ess_bulk >= MIN_ESS
                and self.divergences == 0)

    def problems(self) -> list[str]:
        """What is wrong, in words (empty when converged)."""
        out = []
        if self.max_r_hat > MAX_RHAT:
            out.append(f"max R-hat {self.max_r_hat:.3f} > {MAX_RHAT}")
        if self.min_ess_bulk < MIN_ESS:
            out.append(f"min bulk ESS {self.min_ess_bulk:.0f} < {MIN_ESS}")
        if self.divergences:
            out.append(counted(self.divergences, "divergent transition"))
        return out

    def summary(self) -> str:
        """One line: times, worst R-hat and ESS, divergences, and NOT CONVERGED if so."""
        return (f"sampling {self.sample_seconds:.1f} s (compile {self.compile_seconds:.1f} s); "
                f"max R-hat {self.max_r_hat:.3f}, min bulk ESS {self.min_ess_bulk:.0f}, "
                f"{counted(self.divergences, 'divergence')}"
                + ("" if self.converged else " -- NOT CONVERGED: " + "; ".join(self.problems())))

    @property
    def warning(self) -> str | None:
        """``NOT CONVERGED: ...`` for outputs of a fit that failed the rule, else None."""
        return None if self.converged else "NOT CONVERGED: " + "; ".join(self.problems())


@dataclass
class BayesResult:
    """A fitted wake model.

    Attributes
    ----------
    idata
        The ArviZ DataTree: ``posterior`` holds ``effect`` (log rate ratio),
        ``rate_ratio`` and ``additive_effect`` (extra post events per treated wake) with dims
        chain x draw x window x radius, plus the other parameters.
    surface
        The per-cell summary (:func:`effect_surface_table`) as an :class:`xarray.Dataset`
        with dims ``window`` x ``radius``.
    diagnostics
        Convergence diagnostics.
    spec
        The model spec.
    count_data
        The count model's wakes and counts (:class:`bayes_wake.bayes.count_model.CountData`)
        for its predictive checks and LOO; None for the other models.
    """

    idata: xr.DataTree
    surface: xr.Dataset
    diagnostics: Diagnostics
    spec: ModelSpec
    count_data: object = None

    def table(self) -> pd.DataFrame:
        """The surface as the ``effect_surface.csv`` table (t_window outer, spat_window inner);
        its ``converged`` column (1 or 0, the same in every row) says whether the fit passed
        the convergence rule; count-scale fits add :data:`SHRINKAGE_COLUMNS`."""
        frame = self.surface.to_dataframe().reset_index()
        frame = frame.rename(columns={"window": "t_window", "radius": "spat_window"})
        frame["ci_prob"] = self.surface.attrs["ci_prob"]  # the level of ci_lower, ci_upper
        return frame[SURFACE_COLUMNS + [c for c in SHRINKAGE_COLUMNS if c in frame]]

    def write_outputs(self, folder: str | os.PathLike,
                      region: GridRegion | None = None) -> str | None:
        """Write ``effect_surface.csv``, ``grid_summary.csv`` (the grid's average effect, and
        ``region``'s in a second row when given) and ``posterior.nc`` into ``folder`` and,
        for a fit that failed the convergence rule, ``NOT_CONVERGED.txt`` (the table's header
        says so too). Returns the warning (None when converged)."""
        from bayes_wake.io.artefacts import write_table

        folder = Path(folder)
        warning = self.diagnostics.warning
        table = self.table()
        if warning:
            table.attrs["warning"] = warning
            (folder / "NOT_CONVERGED.txt").write_text(warning + "\n")
        write_table(table, folder / "effect_surface.csv")
        summary = [self.grid_summary()] + ([] if region is None else [self.grid_summary(region)])
        write_table(pd.concat(summary, ignore_index=True), folder / "grid_summary.csv")
        self.to_netcdf(folder / "posterior.nc")
        return warning

    def grid_summary(self, where=None) -> pd.DataFrame:
        """The average effect over the grid's cells (or a region's), one row: per draw the
        mean of the additive effect over the cells with an estimate, summarised as the
        surface is (mean, sd, the fit's interval, P(average > 0)).

        Parameters
        ----------
        where
            As in :meth:`prob_positive`: None for the whole grid, a
            :class:`~bayes_wake.core.windows.GridRegion` (``region`` is then its words, e.g.
            ``t >= 20 days and s <= 9 km``), a boolean DataArray over (window, radius) or a
            callable of the window and radius coordinates.
        """
        effect = self.idata.posterior["additive_effect"]
        mask = _region_mask(effect, where) & effect.notnull().all(("chain", "draw"))
        average = effect.where(mask).mean(("window", "radius"), skipna=True)
        prob = float(self.surface.attrs["ci_prob"])
        tails = average.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=("chain", "draw"))
        return pd.DataFrame([{
            "region": _region_name(where), "cells": int(mask.sum()),
            "mean": float(average.mean()), "sd": float(average.std(ddof=1)),
            "ci_lower": float(tails[0]), "ci_upper": float(tails[1]), "ci_prob": prob,
            "prob_positive": float((average > 0).mean()) if int(mask.sum()) else np.nan}])

    def to_netcdf(self, path: str | os.PathLike) -> Path:
        """Save the DataTree atomically (the pointwise log-likelihood is never stored), its
        effects named for what they are (:data:`FILE_NAMES`): ``effect`` is the count-scale
        effect (``additive_effect`` here), ``log_rate_ratio`` the log of ``rate_ratio``."""
        return write_netcdf(_named_for_file(self.idata), path)

    def prob_positive(self, where=None) -> float:
        """Posterior probability that the additive effect is positive over a grid region.

        Parameters
        ----------
        where
            A boolean DataArray over (window, radius), or a callable taking the surface's
            window and radius coordinates and returning one; None means the whole grid.
            The probability is that the effect is positive in *every* selected cell with
            an estimate; NA cells (no estimate, as in the OLS table) are left out, with a
            warning that counts them.

        Raises
        ------
        SettingsError
            If the region holds no cell with an estimate.
        """
        effect = self.idata.posterior["additive_effect"]
        mask = _region_mask(effect, where)
        defined = effect.notnull().all(("chain", "draw"))
        use = mask & defined
        left_out = int((mask & ~defined).sum())
        if not bool(use.any()):
            raise SettingsError(f"the region selects no cell with an estimate ({int(mask.sum())} "
                                f"cells selected, {left_out} of them NA)")
        if left_out:
            warnings.warn(f"prob_positive: {counted(left_out, 'NA cell')} of the region left out",
                          stacklevel=2)
        selected = (effect > 0).where(use, True)
        return float(selected.all(("window", "radius")).mean())


def _region_name(where) -> str:
    """``grid``, a grid region's words, or ``region`` for a mask or callable."""
    if where is None:
        return "grid"
    return where.describe() if isinstance(where, GridRegion) else "region"


def _region_mask(effect: xr.DataArray, where) -> xr.DataArray:
    """The cells a region selects, as a boolean DataArray over (window, radius)."""
    if where is None:
        mask = xr.ones_like(effect.isel(chain=0, draw=0), dtype=bool)
    elif isinstance(where, GridRegion):
        window, radius = effect["window"], effect["radius"]
        mask = xr.DataArray(where.mask(window.to_numpy(), radius.to_numpy()),
                            dims=("window", "radius"),
                            coords={"window": window, "radius": radius})
    elif callable(where):
        mask = where(effect["window"], effect["radius"])
    else:
        mask = where
    return xr.DataArray(mask).astype(bool) if not isinstance(mask, xr.DataArray) else \
        mask.astype(bool)


def _data_hash(data: ModelData) -> str:
    digest = hashlib.sha256()
    for array in (data.cell, data.pre, data.post, data.treated, data.weight, data.covariates):
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return digest.hexdigest()


#: nutpie's compiled models of the count-scale surface, by grid shape and prior (the last four
#: per process: a battery fits one grid with a few specs many times).
_COMPILED: dict = {}


def sample_model(model, spec: ModelSpec, *, progressbar: bool = True,
                 reuse: tuple | None = None) -> tuple[xr.DataTree, float, float]:
    """Sample a built model with the spec's sampler settings.

    Parameters
    ----------
    reuse
        ``(key, data)``: with nutpie, the model compiled for ``key`` earlier in this process
        is given ``data`` (its ``pm.Data`` values) instead of compiling ``model`` again.

    Returns
    -------
    tuple
        The DataTree, compile seconds and sample seconds.
    """
    settings = spec.sampler
    if settings.backend not in SAMPLERS:
        raise SettingsError(f"unknown sampler {settings.backend!r}; use {', '.join(SAMPLERS)}")
    cores = min(settings.chains, os.cpu_count() or 1)
    start = time.perf_counter()
    if settings.backend == "nutpie":
        import nutpie

        if reuse is None:
            compiled = nutpie.compile_pymc_model(model)
        else:
            key, data = reuse
            if key not in _COMPILED:
                while len(_COMPILED) >= 4:  # the oldest goes
                    _COMPILED.pop(next(iter(_COMPILED)))
                _COMPILED[key] = nutpie.compile_pymc_model(model)
            compiled = _COMPILED[key].with_data(**data)
        compile_s = time.perf_counter() - start
        start = time.perf_counter()
        idata = nutpie.sample(compiled, draws=settings.draws, tune=settings.tune,
                              chains=settings.chains, cores=cores, seed=settings.seed,
                              target_accept=settings.target_accept, progress_bar=progressbar)
        return idata, compile_s, time.perf_counter() - start
    import pymc as pm

    kwargs = {}
    if settings.backend == "numpyro":
        try:
            import numpyro  # noqa: F401
        except ImportError:
            raise SettingsError("the numpyro sampler needs `pip install -e .[numpyro]` "
                                "(numpyro and jax)") from None
        kwargs["nuts_sampler"] = "numpyro"
    else:
        kwargs["nuts_sampler"] = "pymc"
    with model:
        idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                          cores=cores, random_seed=settings.seed,
                          target_accept=settings.target_accept, progressbar=progressbar,
                          compute_convergence_checks=False, **kwargs)
    # PyMC compiles inside pm.sample; its time is counted as sampling time here.
    return idata, 0.0, time.perf_counter() - start


def _to_grid(posterior: xr.Dataset, data: ModelData) -> xr.Dataset:
    """Reshape every ``cell`` dim of the posterior into ``window`` x ``radius``."""
    out = {}
    for name, var in posterior.data_vars.items():
        if name == "effect_grid":
            continue
        if "cell" in var.dims:
            values = var.transpose(..., "cell").to_numpy()
            shape = values.shape[:-1] + (len(data.windows), len(data.radii))
            dims = [d for d in var.dims if d != "cell"] + ["window", "radius"]
            out[name] = (dims, values.reshape(shape))
        else:
            out[name] = var
    grid = xr.Dataset(out, coords={"window": data.windows, "radius": data.radii})
    for dim in ("chain", "draw"):
        grid = grid.assign_coords({dim: posterior[dim].to_numpy()})
    return grid


def _treated_means(grid: xr.Dataset, data: ModelData, likelihood: Likelihood):
    """Per cell and draw: the treated wakes' expected post count with treatment (``fitted``)
    and without it (``counterfactual``: fitted over the rate ratio), averaged over the treated
    wakes the effect is for (events per wake); and the events (pre + post) of those wakes."""
    n_w, n_r = len(data.windows), len(data.radii)
    stacked = grid.stack(sample=("chain", "draw"))
    n_samples = stacked.sizes["sample"]
    fitted = np.full((n_samples, n_w, n_r), np.nan)
    counterfactual = np.full((n_samples, n_w, n_r), np.nan)
    events = np.zeros((n_w, n_r))  # events (pre + post) of the treated wakes per cell
    coef, strata = _shared_draws(stacked)
    for c in range(data.n_cells):
        i, j = divmod(c, n_r)
        in_cell = (data.cell == c) & (data.treated == 1)
        n_treated = data.treated_rows[in_cell].sum()
        rows = np.flatnonzero(in_cell & (data.treated_rows > 0))
        if n_treated == 0:
            continue
        draws = _cell_draws(stacked, i, j, data, rows, coef, strata)
        mu1 = likelihood.treated_mean(draws, data, rows)
        n = data.treated_rows[rows][:, None]
        events[i, j] = float((data.treated_rows[rows] * (data.pre + data.post)[rows]).sum())
        fitted[:, i, j] = (n * mu1).sum(axis=0) / n_treated
        counterfactual[:, i, j] = (n * mu1 * np.exp(-draws.effect)[None, :]).sum(
            axis=0) / n_treated
    return fitted, counterfactual, events


def _shared_draws(stacked: xr.Dataset):
    """Draws of the covariate coefficients, shape (covariates, samples), and of the stratum
    effects, shape (strata, samples); None where the model has none."""
    coef = stacked["covariate_coef"].transpose("covariate", "sample").to_numpy() \
        if "covariate_coef" in stacked else None
    strata = None
    if "stratum_raw" in stacked:
        strata = (stacked["stratum_sd"].to_numpy()[None, :]
                  * stacked["stratum_raw"].transpose("stratum", "sample").to_numpy())
    return coef, strata


def _cell_draws(stacked: xr.Dataset, i: int, j: int, data: ModelData, rows: np.ndarray,
                coef, strata) -> TreatedDraws:
    """The linear-predictor draws of cell (i, j) for its treated rows."""
    def at_cell(name):
        return stacked[name].isel(window=i, radius=j).to_numpy() if name in stacked else None

    return TreatedDraws(
        intercept=at_cell("intercept"), effect=at_cell("effect"), slope=at_cell("slope"),
        covariates=data.covariates[rows] @ coef if coef is not None and coef.shape[0] else None,
        strata=strata[data.stratum[rows]] if strata is not None else None)


def _cumulative_effects(grid: xr.Dataset, data: ModelData, spec: ModelSpec) -> xr.Dataset:
    """Additive effect, rate ratio and log rate ratio per cumulative (window, radius) cell."""
    dims = ("chain", "draw", "window", "radius")
    shape = (grid.sizes["chain"], grid.sizes["draw"], len(data.windows), len(data.radii))
    coords = {"chain": grid["chain"], "draw": grid["draw"], "window": data.windows,
              "radius": data.radii}
    likelihood = likelihood_for(spec)
    fitted, counterfactual, events = _treated_means(grid, data, likelihood)
    if spec.nested == "increments":  # the cumulative cell is the sum of its increments
        fitted, counterfactual, events = _cumulate(fitted, counterfactual, events)
    uninformative = likelihood.uninformative(events)
    fitted[:, uninformative] = np.nan
    counterfactual[:, uninformative] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = fitted / counterfactual
    out = xr.Dataset({
        "additive_effect": (dims, (fitted - counterfactual).reshape(shape)),
        "rate_ratio": (dims, ratio.reshape(shape)),
        "effect": (dims, np.log(ratio).reshape(shape)),
    }, coords=coords)
    return out


def _cumulate(fitted: np.ndarray, counterfactual: np.ndarray, events: np.ndarray):
    """Ring x interval increments to cumulative (window, radius) cells: each cell sums the
    increments of every shorter-or-equal interval and nearer-or-equal ring.

    Parameters
    ----------
    fitted, counterfactual
        Per draw and increment, shape (draws, windows, radii); NaN increments (no treated
        wake) add nothing.
    events
        Per increment, shape (windows, radii).
    """
    def both(a, first):
        return np.nancumsum(np.nancumsum(a, axis=first), axis=first + 1)

    return both(fitted, 1), both(counterfactual, 1), events.cumsum(axis=0).cumsum(axis=1)


def effect_surface_table(posterior: xr.Dataset, converged: bool | None = None) -> xr.Dataset:
    """Per-cell summary of the additive effect and the rate ratio.

    Intervals are ArviZ's default (``arviz.rcParams["stats.ci_prob"]`` and ``ci_kind``); the
    interval probability is recorded in the attrs.

    Parameters
    ----------
    posterior
        Draws of ``additive_effect`` and ``rate_ratio`` (dims chain, draw, window, radius).
    converged
        Whether the fit passed the convergence rule (:attr:`Diagnostics.converged`); None
        judges it from this table alone (R-hat and bulk ESS of the additive effect, without
        the divergences). It fills the ``converged`` column (1 or 0, the same in every cell).
    """
    ci_prob = az.rcParams["stats.ci_prob"]
    ci_kind = az.rcParams["stats.ci_kind"]
    interval = az.hdi if ci_kind == "hdi" else az.eti
    additive = posterior["additive_effect"]
    ratio = posterior["rate_ratio"]
    add_ci = interval(additive, prob=ci_prob)
    table = xr.Dataset({
        "mean": additive.mean(("chain", "draw")),
        "sd": additive.std(("chain", "draw"), ddof=1),
        "ci_lower": add_ci.sel(ci_bound="lower", drop=True),
        "ci_upper": add_ci.sel(ci_bound="upper", drop=True),
        "prob_positive": (additive > 0).mean(("chain", "draw")).where(
            additive.notnull().all(("chain", "draw"))),
        **_ratio_summary(ratio, ci_prob),
        "r_hat": az.rhat(additive),
        "ess_bulk": az.ess(additive, method="bulk"),
    })
    if converged is None:
        converged = bool(table["r_hat"].max() <= MAX_RHAT and table["ess_bulk"].min() >= MIN_ESS)
    table["converged"] = xr.full_like(table["mean"], int(converged), dtype=np.int64)
    table.attrs.update({"ci_prob": ci_prob, "ci_kind": ci_kind,
                        "scale": "mean, sd, ci_*: extra post-period events per treated wake"})
    return table


def _ratio_summary(ratio: xr.DataArray, ci_prob: float) -> dict:
    """The rate ratio's median and equal-tailed interval over the draws where it is defined,
    and the share of such draws (``rate_ratio_defined``); NA where fewer than
    :data:`MIN_RATIO_DEFINED` of the draws define it (its mean was dominated by draws whose
    counterfactual was near 0: 6.45 with a maximum of 28,784 on R's example)."""
    draws = ("chain", "draw")
    defined = ratio.notnull() & np.isfinite(ratio)
    share = defined.mean(draws)
    kept = ratio.where(defined)
    tails = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
    with warnings.catch_warnings():  # a cell with no defined draw: NA, said by its share
        warnings.simplefilter("ignore", RuntimeWarning)
        bounds = kept.quantile(tails, dim=draws, skipna=True)
        median = kept.median(draws, skipna=True)
    enough = share >= MIN_RATIO_DEFINED
    return {"rate_ratio_median": median.where(enough),
            "rate_ratio_ci_lower": bounds.isel(quantile=0, drop=True).where(enough),
            "rate_ratio_ci_upper": bounds.isel(quantile=1, drop=True).where(enough),
            "rate_ratio_defined": share}


def fit_surface(cube: xr.Dataset, spec: ModelSpec, settings: MWASettings, *,
                progressbar: bool = True, log: Callable[[str], None] | None = None,
                period: str = "post") -> BayesResult:
    """Fit the spec's model to a wake cube and summarise the posterior effect surface.

    Parameters
    ----------
    cube
        The wake cube.
    spec
        The model spec (with the sampler settings to use).
    settings
        The matched wake analysis whose OLS table the model reanalyses
        (:class:`~bayes_wake.mwa.analysis.MWASettings`; ``bayes-wake fit`` passes the one its
        ``--match``, ``--weighted``, ``--tcm``, ``--delete-sutva``, ``--formula`` and
        ``--spillover`` built, so the command line and this function fit the same model).
        Whether the model matches is the spec's ``matching``; ``weighted`` and ``formula``
        enter the count-scale model (``estimand: count_did``), the rate-ratio models always
        use the CEM weights of their matching mode. With ``spillover`` (count-scale models
        only) each cell's regression holds the exposure terms of
        :mod:`bayes_wake.mwa.spillover` before the treatment column, so the surface is the
        *direct* effect of one treatment, its neighbours' spillover held apart.
    progressbar
        Show the sampler's progress bar (PyMC's name; ``progress`` elsewhere in the
        package is a callback).
    log
        Called with short status lines.
    period
        ``post`` (the effect) or ``lead``: the same model fitted to the pre-trend placebo,
        the OLS table's regression one period earlier
        (:func:`bayes_wake.mwa.analysis.lead_cells`; count-scale surfaces only, on a cube
        counted with ``leads=True``), which estimates 0 where the treated and control places
        evolved alike before any treatment: a clear lead surface is a placement difference
        that the effect surface carries too.

    Returns
    -------
    BayesResult
        Posterior, surface table and diagnostics. A fit that fails the convergence checks
        is returned with a :class:`~bayes_wake.errors.ConvergenceWarning`.
    """
    log = log or (lambda _message: None)
    if period != "post" and not spec.cell_surface:
        raise SettingsError(f"period={period!r} (the pre-trend surface) is fitted by the "
                            f"count-scale surfaces ({DEFAULT_SPEC}, ...), not by {spec.name}")
    if spec.counts_model:
        from bayes_wake.bayes.count_model import fit_counts

        if settings.spillover:
            raise SettingsError(f"spillover=True is not modelled by {spec.name} (the count model "
                                f"has no exposure terms yet); use {DEFAULT_SPEC}")
        return fit_counts(cube, spec, match_on=settings.match_on, weighted=settings.weighted,
                          tcm=settings.tcm, delete_sutva=settings.delete_sutva,
                          formula=settings.formula, progressbar=progressbar, log=log)
    if spec.estimand == "count_did":
        return _fit_count_did(cube, spec, settings, progressbar=progressbar, log=log,
                              period=period)
    if settings.spillover:
        raise SettingsError(f"spillover=True needs a count-scale model (estimand count_did, e.g. "
                            f"{DEFAULT_SPEC}); {spec.name} models rate ratios")
    return _fit_rate_ratio(cube, spec, settings, progressbar=progressbar, log=log)


def _fit_rate_ratio(cube: xr.Dataset, spec: ModelSpec, settings: MWASettings, *,
                    progressbar: bool, log: Callable[[str], None]) -> BayesResult:
    """Fit a rate-ratio model (:mod:`bayes_wake.bayes.model`) and its cumulative surface."""
    data = prepare_model_data(cube, spec, settings.match_on, tcm=settings.tcm,
                              delete_sutva=settings.delete_sutva)
    log(f"model {spec.name}: {data.n_wake_terms:,} wake x cell terms in {data.n_rows:,} "
        f"unique rows; sampling {counted(spec.sampler.chains, 'chain')} with "
        f"{spec.sampler.backend}")
    model = build_model(data, spec)
    idata, compile_s, sample_s = sample_model(model, spec, progressbar=progressbar)
    grid = _to_grid(idata.posterior.to_dataset(), data)
    cumulative = _cumulative_effects(grid, data, spec)
    if spec.nested == "increments":
        grid = grid.rename({"effect": "increment_effect"})
        grid["increment_effect"].attrs["long_name"] = (
            "log rate ratio in the disjoint ring x interval increment")
    grid = grid.drop_vars("effect", errors="ignore").assign(cumulative)
    grid["effect"].attrs["long_name"] = "treatment effect (log rate ratio)"
    grid["additive_effect"].attrs.update(
        long_name="extra expected post-period events per treated wake",
        units="events per wake")
    surface = effect_surface_table(grid)
    divergences = int(idata.sample_stats["diverging"].sum()) \
        if "diverging" in idata.sample_stats else 0
    effect_rhat = az.rhat(grid["effect"])
    effect_ess = az.ess(grid["effect"], method="bulk")
    diagnostics = Diagnostics(
        max_r_hat=float(np.nanmax([effect_rhat.max(skipna=True), surface["r_hat"].max()])),
        min_ess_bulk=float(np.nanmin([effect_ess.min(skipna=True),
                                      surface["ess_bulk"].min()])),
        divergences=divergences, compile_seconds=compile_s, sample_seconds=sample_s)
    return _result(grid, idata, surface, diagnostics, spec, data_hash=_data_hash(data),
                   model_attrs={**data.attrs, "rows": data.n_rows,
                                "wake_terms": data.n_wake_terms})


def build_for_cube(cube, spec: ModelSpec, settings: MWASettings):
    """The PyMC model that :func:`fit_surface` samples for this cube, spec and settings."""
    if spec.counts_model:
        from bayes_wake.bayes.count_model import build_count_model, prepare_count_data

        return build_count_model(prepare_count_data(
            cube, spec, settings.match_on, weighted=settings.weighted, tcm=settings.tcm,
            delete_sutva=settings.delete_sutva), spec)
    if spec.estimand == "count_did":
        from bayes_wake.bayes.did_surface import build_surface_model

        if spec.effect.pooling == "none":
            raise SettingsError(f"{spec.name}: the unpooled surface is drawn exactly from its "
                                "estimates; it has no prior to check or model to sample")
        return build_surface_model(_surface_data(cube, spec, settings), **_surface_prior(spec))
    return build_model(prepare_model_data(cube, spec, settings.match_on, tcm=settings.tcm,
                                          delete_sutva=settings.delete_sutva), spec)


def _surface_prior(spec: ModelSpec) -> dict:
    """The count-scale surface's prior settings from a spec."""
    return {"amplitude_sd": spec.effect.scale_sd, "scale_sd": spec.effect.scale_sd,
            "mean_sd": spec.effect.mean_sd, "discrepancy": spec.discrepancy,
            "pooling": spec.effect.pooling}


def _surface_data(cube, spec: ModelSpec, settings: MWASettings, period: str = "post"):
    """The cell estimates the count-scale surface pools: the OLS table's matched wakes, with
    the spec's matching and formula (its own regression), NA wherever the table is; of the
    effect (``period`` ``post``) or of the pre-trend placebo (``lead``)."""
    from bayes_wake.bayes.did_surface import prepare_surface_data, restrict, table_cells
    from bayes_wake.bayes.spec import surface_errors

    model = replace(settings, matching=spec.matching != "none",
                    formula=spec.formula or settings.formula)
    covariates = covariate_names(spec, list(settings.match_on))
    data = prepare_surface_data(cube, model, covariates=covariates,
                                errors=surface_errors(spec.errors, settings.vcov),
                                period=period)
    if model.formula == settings.formula:
        return data
    return restrict(data, table_cells(cube, replace(model, formula=settings.formula),
                                      covariates))


def _fit_count_did(cube, spec: ModelSpec, settings: MWASettings, *, progressbar,
                   log, period: str = "post") -> BayesResult:
    """Fit the count-scale DiD surface model (:mod:`bayes_wake.bayes.did_surface`) to the
    effect or (``period="lead"``) to the pre-trend placebo."""
    data = _surface_data(cube, spec, settings, period)
    what = "" if period == "post" else " (pre-trend placebo: pre ~ lead)"
    log(f"model {spec.name}{what}: {len(data.defined)} of {counted(data.n_cells, 'cell')} "
        f"with an OLS estimate, robust covariance over {counted(data.n_clusters, 'cluster')} "
        f"({data.attrs['errors']}); sampling {counted(spec.sampler.chains, 'chain')} with "
        f"{spec.sampler.backend}")
    idata, compile_s, sample_s, surface_draws, names = _draw_count_did(data, spec,
                                                                       progressbar)
    posterior = idata.posterior.to_dataset()
    # a cell that is NA in the OLS table (no estimate, as in R) stays NA: the pooled surface
    # is reported only where the paper's estimand is defined
    undefined = np.ones(data.n_cells, bool)
    undefined[data.defined] = False
    surface_draws[..., undefined.reshape(len(data.windows), len(data.radii))] = np.nan
    dims = ("chain", "draw", "window", "radius")
    ratio = _rate_ratio(data.treated_post[None, None], surface_draws)
    grid = posterior.assign_coords(window=data.windows, radius=data.radii).assign(
        additive_effect=(dims, surface_draws), rate_ratio=(dims, ratio),
        effect=(dims, np.log(ratio)))
    grid["additive_effect"].attrs.update(
        long_name="extra expected post-period events per matched treated wake, relative to "
                  "the control wakes' change (count-scale DiD)" if period == "post" else
                  "lead: extra pre-period events per matched treated wake relative to the "
                  "control wakes' change from the lead period, before any treatment "
                  "(pre-trend placebo; 0 where the places evolved alike)",
        units="events per wake")
    grid["rate_ratio"].attrs["long_name"] = ("treated wakes' mean post count over that count "
                                             "minus the additive effect (secondary; NA where "
                                             "the treated wakes hold no post events)")
    grid["effect"].attrs["long_name"] = "log of rate_ratio"
    surface = _with_shrinkage(effect_surface_table(grid), data)
    diagnostics = _diagnostics(idata, grid, names, compile_s, sample_s)
    return _result(grid, idata, surface, diagnostics, spec,
                   data_hash=_array_hash(data.estimate, data.covariance),
                   model_attrs={**data.attrs, "cells": len(data.defined),
                                "clusters": data.n_clusters})


def _draw_count_did(data, spec: ModelSpec, progressbar: bool):
    """Draws of the count-scale surface: exact for the unpooled surface, else by sampling the
    hyperparameters and drawing the surface given them.

    Returns
    -------
    tuple
        The sampler's DataTree, compile and sample seconds, the surface draws (chain, draw,
        window, radius) and the names of the variables the diagnostics judge.
    """
    from bayes_wake.bayes.did_surface import (
        HYPERPARAMETERS,
        build_surface_model,
        draw_surface,
        draw_unpooled,
        surface_inputs,
    )

    if spec.effect.pooling == "none":
        surface_draws = draw_unpooled(data, spec.sampler.chains, spec.sampler.draws,
                                      spec.sampler.seed)
        return _no_sampler(spec), 0.0, 0.0, surface_draws, ["additive_effect"]
    model = build_surface_model(data, **_surface_prior(spec))
    key = ("count_did", len(data.windows), len(data.radii), spec.effect, spec.discrepancy)
    idata, compile_s, sample_s = sample_model(model, spec, progressbar=progressbar,
                                              reuse=(key, surface_inputs(data)))
    hyperparameters = HYPERPARAMETERS[spec.effect.pooling]
    hyper = {n: idata.posterior[n].to_numpy() for n in hyperparameters}
    prior = _surface_prior(spec)
    surface_draws = draw_surface(data, hyper, seed=spec.sampler.seed,
                                 mean_sd=prior["mean_sd"], discrepancy=prior["discrepancy"],
                                 pooling=spec.effect.pooling)
    return idata, compile_s, sample_s, surface_draws, [*hyperparameters, "additive_effect"]


def _with_shrinkage(surface: xr.Dataset, data) -> xr.Dataset:
    """The surface with :data:`SHRINKAGE_COLUMNS`: each cell's own estimate, how far pooling
    moved the posterior mean from it and whether it pulled a clear one toward 0."""
    from bayes_wake.bayes.did_surface import CLEAR_T, PULL_SE, shrinkage

    moved = shrinkage(data, surface["mean"].transpose("window", "radius").to_numpy())
    cells = ("window", "radius")
    surface["ols_estimate"] = (cells, data.estimate)
    surface["shift_se"] = (cells, moved["shift_se"])
    surface["pulled_to_zero"] = (cells, moved["pulled_to_zero"].astype(np.int64))
    surface["shift_se"].attrs["long_name"] = (
        f"(posterior mean - ols_estimate) / the estimate's robust standard error "
        f"({data.attrs['errors']})")
    surface["pulled_to_zero"].attrs["long_name"] = (
        f"1 where the estimate is clear (|t| > {CLEAR_T:g}) and pooling moved the posterior "
        f"mean more than {PULL_SE:g} standard errors toward 0")
    return surface


def _no_sampler(spec: ModelSpec) -> xr.DataTree:
    """The sampler's outputs of a model drawn exactly, without MCMC: no hyperparameters and
    no divergences, in the shape the diagnostics read."""
    coords = {"chain": np.arange(spec.sampler.chains), "draw": np.arange(spec.sampler.draws)}
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(
        (spec.sampler.chains, spec.sampler.draws), bool))}, coords=coords)
    return xr.DataTree.from_dict({"posterior": xr.Dataset(coords=coords),
                                  "sample_stats": stats})


def _rate_ratio(post: np.ndarray, additive: np.ndarray) -> np.ndarray:
    """The treated wakes' mean post count over its counterfactual (that count minus the
    additive effect), NaN where the counterfactual is not positive and where the treated
    wakes hold no post-period events: there the ratio is 0 whatever the effect, so it says
    nothing about it (and its log would be -inf)."""
    counterfactual = post - additive
    informative = (post > 0) & (counterfactual > 0)  # False wherever either is NaN
    return np.divide(post, counterfactual, out=np.full(np.broadcast(post, additive).shape,
                                                       np.nan), where=informative)


def _diagnostics(idata, grid, names, compile_s, sample_s) -> Diagnostics:
    """Worst R-hat and bulk ESS over the named variables, and the divergences."""
    rhat = [float(az.rhat(grid[n]).max(skipna=True)) for n in names]
    ess = [float(az.ess(grid[n], method="bulk").min(skipna=True)) for n in names]
    divergences = int(idata.sample_stats["diverging"].sum()) \
        if "diverging" in idata.sample_stats else 0
    return Diagnostics(max_r_hat=float(np.nanmax(rhat)), min_ess_bulk=float(np.nanmin(ess)),
                       divergences=divergences, compile_seconds=compile_s,
                       sample_seconds=sample_s)


def _array_hash(*arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return digest.hexdigest()


def _result(grid, idata, surface, diagnostics, spec, *, data_hash, model_attrs) -> BayesResult:
    """Assemble the DataTree with provenance and warn loudly if the fit did not converge."""
    tree = xr.DataTree.from_dict({"posterior": grid,
                                  "sample_stats": idata.sample_stats.to_dataset()})
    tree.attrs.update({
        "spec": json.dumps(spec.model_dump(mode="json")), "spec_digest": spec.digest(),
        "data_sha256": data_hash, "versions": json.dumps(package_versions()),
        "converged": int(diagnostics.converged),
        "diagnostics": json.dumps(diagnostics.__dict__),
        "model_data": json.dumps(model_attrs),
        "ci_prob": surface.attrs["ci_prob"], "ci_kind": surface.attrs["ci_kind"],
        "estimand": spec.estimand,
    })
    surface["converged"] = xr.full_like(surface["mean"], int(diagnostics.converged),
                                        dtype=np.int64)
    surface.attrs.update({"converged": int(diagnostics.converged),
                          "t_unit": model_attrs.get("t_unit", "days"),
                          "estimand": spec.estimand})
    if not diagnostics.converged:
        warnings.warn("the posterior did not converge: " + "; ".join(diagnostics.problems()),
                      ConvergenceWarning, stacklevel=3)
    return BayesResult(idata=tree, surface=surface, diagnostics=diagnostics, spec=spec)


def load_posterior(path: str | os.PathLike) -> xr.DataTree:
    """Load a posterior written by :meth:`BayesResult.to_netcdf` (with the file's names:
    ``effect`` the count-scale effect, ``log_rate_ratio``, ``rate_ratio``)."""
    return az.from_netcdf(path, engine="h5netcdf")


#: The posterior's effects as ``posterior.nc`` names them: the headline, count-scale effect
#: (extra post-period events per treated wake, ``effect_surface.csv``'s ``mean``) is
#: ``effect``; the log rate ratio, ``effect`` in :attr:`BayesResult.idata`, is
#: ``log_rate_ratio``.
FILE_NAMES = {"effect": "log_rate_ratio", "additive_effect": "effect"}


def _named_for_file(idata: xr.DataTree) -> xr.DataTree:
    """``idata`` with the posterior's variables renamed by :data:`FILE_NAMES`."""
    if "posterior" not in idata.children:
        return idata
    posterior = idata["posterior"].to_dataset()
    names = {old: new for old, new in FILE_NAMES.items() if old in posterior.data_vars}
    if not names:
        return idata
    renamed = posterior.rename_vars(names)
    if "log_rate_ratio" in renamed:
        renamed["log_rate_ratio"].attrs["long_name"] = "log of rate_ratio"
    tree = idata.copy()
    tree["posterior"] = xr.DataTree(renamed)
    return tree
