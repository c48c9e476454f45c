"""The hierarchical wake model in PyMC: post counts per wake and cell, effects pooled over the grid.

For each wake (treatment or control anchor) and each (window, radius) cell::

    post ~ NegativeBinomial(mu, alpha)        (or Poisson, or Normal for checks)
    log mu = a[cell] + b[cell] * log1p(pre) + tau[cell] * treated + x @ gamma (+ stratum)

or, with ``pre_count: paired``, post given pre + post is (beta-)binomial with log odds
``a[cell] + tau[cell] * treated + ...``. Each form's likelihood, predictive outcome and treated
means are an object of :mod:`bayes_wake.bayes.likelihoods`; this module builds the fields and
the linear predictor, and the wakes and weights come from the one per-cell matcher,
:func:`bayes_wake.mwa.analysis.matched_cells`.

``tau`` is the treatment effect (a log rate ratio). Its prior over the grid is a BYM2-type
field: a mix of an intrinsic Gaussian Markov random field on the grid graph (neighbouring
windows and radii share strength) and independent cell noise, with the mix and the overall
scale learned, so a rough surface is not forced flat.

The likelihood runs over the *unique* rows (cell, pre, post, treated, weight, covariates)
with their multiplicities, which is exact and far cheaper than one term per wake and cell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr

from bayes_wake.bayes.did_surface import grid_edges
from bayes_wake.bayes.likelihoods import Likelihood, likelihood_for
from bayes_wake.bayes.spec import FieldPrior, ModelSpec
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import (
    MWASettings,
    covariate_strata,
    matched_cells,
    wake_weights,
)

__all__ = ["ModelData", "prepare_model_data", "covariate_names", "build_model",
           "grid_field_basis"]


@dataclass(frozen=True)
class ModelData:
    """The wake cube reduced to the model's unique rows.

    Attributes
    ----------
    windows, radii
        The grid (``t_unit`` and km).
    cell
        Cell index of each row (``window`` outer, ``radius`` inner).
    pre, post, treated
        Pre and post counts and the treatment flag of each row.
    weight
        Likelihood weight of each row: multiplicity x CEM weight.
    covariates
        Standardised covariates, shape (rows, k), and their names.
    stratum
        Stratum index of each row (``strata`` matching), else zeros.
    treated_rows
        For the additive effect: per row, the number of *treated* wakes it stands for that
        enter the effect (matched treated wakes in ``weights`` mode).
    """

    windows: np.ndarray
    radii: np.ndarray
    cell: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    treated: np.ndarray
    weight: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    stratum: np.ndarray
    n_strata: int
    treated_rows: np.ndarray
    n_wake_terms: int
    attrs: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Number of (window, radius) cells."""
        return len(self.windows) * len(self.radii)

    @property
    def n_rows(self) -> int:
        """Number of unique likelihood rows."""
        return len(self.cell)


def prepare_model_data(cube: xr.Dataset, spec: ModelSpec, match_on=(), *, tcm: bool = False,
                       delete_sutva: bool = False) -> ModelData:
    """Reduce a wake cube to the unique likelihood rows the model needs.

    The wakes of each cell and their weights come from the one per-cell matcher,
    :func:`bayes_wake.mwa.analysis.matched_cells`; ``nested: increments`` with ``matching:
    weights`` matches once, on the largest cell (:func:`bayes_wake.mwa.analysis.wake_weights`),
    and ``matching: strata`` takes the covariate strata of
    :func:`bayes_wake.mwa.analysis.covariate_strata`.

    Parameters
    ----------
    cube
        The wake cube.
    spec
        The model spec (matching mode, covariates).
    match_on
        The matching columns (R's ``matchColumns``); also what ``match`` stands for in
        ``spec.covariates``.
    tcm, delete_sutva
        As in :func:`bayes_wake.mwa.analysis.matched_wake_analysis`.

    Returns
    -------
    ModelData
        Unique rows with multiplicities, and what the additive effect needs.
    """
    match_on = list(match_on)
    names = covariate_names(spec, match_on)
    missing = [n for n in names if n not in cube.coords]
    if missing:
        raise SettingsError(f"covariate(s) {missing} are not in the wake cube")
    if spec.matching == "weights" and not match_on:
        raise SettingsError("matching: weights needs match columns (match_on)")
    stratum_event = _strata(cube, spec, match_on)
    table, n_terms = _wake_rows(cube, spec, match_on, _standardised(cube, names), stratum_event,
                                tcm=tcm, delete_sutva=delete_sutva)
    # identical rows collapse: the likelihood of a row counted m times is m x its likelihood
    key_cols = [0, 1, 2, 3, 4, 5, *range(7, table.shape[1])]
    unique, inverse, multiplicity = np.unique(table[:, key_cols], axis=0, return_inverse=True,
                                              return_counts=True)
    treated_rows = np.bincount(inverse.ravel(), weights=table[:, 6], minlength=len(unique))
    weight = unique[:, 4] * multiplicity
    temper = _temper(spec, unique, weight)
    return ModelData(
        windows=cube["window"].to_numpy(), radii=cube["radius"].to_numpy(),
        cell=unique[:, 0].astype(np.int64), pre=unique[:, 1], post=unique[:, 2],
        treated=unique[:, 3], weight=weight * temper,
        covariates=unique[:, 6:], covariate_names=tuple(names),
        stratum=unique[:, 5].astype(np.int64), n_strata=int(stratum_event.max()) + 1,
        treated_rows=treated_rows, n_wake_terms=n_terms,
        attrs={"t_unit": cube.attrs.get("t_unit", "days"),
               "convention": cube.attrs.get("convention", ""),
               "match_on": json.dumps(match_on), "tcm": int(tcm), "temper": temper,
               "nested": spec.nested,
               "delete_sutva": int(delete_sutva)},
    )


def covariate_names(spec: ModelSpec, match_on) -> list[str]:
    """The spec's covariates, ``match`` standing for the matching columns, without repeats."""
    names: list[str] = []
    for name in spec.covariates:
        names.extend(match_on if name == "match" else [name])
    return list(dict.fromkeys(names))


def _standardised(cube: xr.Dataset, names: list[str]) -> np.ndarray:
    """The named event covariates, standardised (mean 0, sd 1; a constant column is only
    centred), shape (event, covariates)."""
    x_event = np.column_stack([cube[n].to_numpy().astype(float) for n in names]) if names \
        else np.zeros((cube.sizes["event"], 0))
    sd = x_event.std(axis=0)
    return (x_event - x_event.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _strata(cube: xr.Dataset, spec: ModelSpec, match_on: list[str]) -> np.ndarray:
    """Stratum of every wake (``matching: strata``: its coarsened match columns), else 0."""
    if spec.matching != "strata":
        return np.zeros(cube.sizes["event"], dtype=np.int64)
    if not match_on:
        raise SettingsError("matching: strata needs match columns (match_on)")
    return covariate_strata(cube, match_on)


def _wake_rows(cube: xr.Dataset, spec: ModelSpec, match_on: list[str], x_event: np.ndarray,
               stratum_event: np.ndarray, *, tcm: bool, delete_sutva: bool):
    """One row per wake and cell in the model: cell, pre, post, treated, weight, stratum,
    treated count, covariates; and the number of rows.

    Each cell's wakes and weights come from :func:`~bayes_wake.mwa.analysis.matched_cells`
    (per-cell CEM with ``matching: weights``; all wakes, weight 1, otherwise), or, for
    ``increments`` with ``weights``, from one matching on the largest cell, so that the
    increments' sum refers to one population of matched treated wakes.
    """
    once = spec.nested == "increments" and spec.matching == "weights"
    per_cell = spec.matching == "weights" and not once
    settings = MWASettings(match_on=tuple(match_on) if per_cell else (), weighted=True, tcm=tcm,
                           delete_sutva=delete_sutva, matching=per_cell)
    wake_weight = wake_weights(cube, MWASettings(match_on=tuple(match_on), weighted=True,
                                                 tcm=tcm)) if once else None
    pre_all, post_all = _period_counts(cube, increments=spec.nested == "increments")
    treated_event = cube["treated"].to_numpy().astype(np.int64)
    n_r = cube.sizes["radius"]
    blocks = []
    for cell in matched_cells(cube, settings, balance=False):
        idx, weight = cell.events, cell.weights
        if wake_weight is not None:
            idx = idx[wake_weight[idx] > 0]
            weight = wake_weight[idx]
        i, j = cell.index
        blocks.append(np.column_stack([
            np.full(len(idx), i * n_r + j), pre_all[idx, i, j], post_all[idx, i, j],
            treated_event[idx], weight, stratum_event[idx], treated_event[idx].astype(float),
            x_event[idx]]))
    if not blocks:
        return np.zeros((0, 7 + x_event.shape[1])), 0
    return np.concatenate(blocks), sum(len(b) for b in blocks)


def _period_counts(cube: xr.Dataset, *, increments: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pre and post counts, shape (event, window, radius): cumulative, or in disjoint rings x
    intervals with ``increments`` (every event in exactly one increment)."""
    pre, post = (cube["dependent"].sel(period=p).transpose("event", "window", "radius")
                 .to_numpy() for p in ("pre", "post"))
    return (_increments(pre), _increments(post)) if increments else (pre, post)


def _temper(spec: ModelSpec, unique: np.ndarray, weight: np.ndarray) -> float:
    """``nested: temper``'s factor: events in the largest cell over events summed over cells
    (the largest cell holds nearly every event of the smaller ones: count them once); 1
    otherwise."""
    if spec.nested != "temper" or not len(unique):
        return 1.0
    events = weight * (unique[:, 1] + unique[:, 2])
    per_cell = np.bincount(unique[:, 0].astype(np.int64), weights=events)
    return float(per_cell.max() / per_cell.sum()) if per_cell.sum() > 0 else 1.0


def _increments(cumulative: np.ndarray) -> np.ndarray:
    """Counts in disjoint (interval, ring) increments from cumulative (window, radius) counts,
    shape (event, window, radius)."""
    out = np.diff(cumulative, axis=1, prepend=0)
    return np.diff(out, axis=2, prepend=0)


def grid_field_basis(n_windows: int, n_radii: int) -> tuple[np.ndarray, float]:
    """Eigenbasis of the intrinsic GMRF on a window x radius grid, sum-to-zero built in.

    The precision of the intrinsic GMRF (ICAR) is the graph Laplacian of the grid (4-nearest
    neighbours). Dropping its null space (the constant) gives a proper field with a hard
    sum-to-zero constraint: ``field = basis @ z`` with ``z ~ N(0, 1)``.

    Returns
    -------
    basis : numpy.ndarray
        Shape (cells, cells - 1), columns scaled by ``1 / sqrt(eigenvalue)``.
    scaling : float
        Geometric mean of the field's marginal variances (Riebler et al. 2016); dividing the
        field by ``sqrt(scaling)`` gives it unit typical variance, as BYM2 requires.
    """
    n = n_windows * n_radii
    edges = grid_edges(n_windows, n_radii)
    lap = edges.T @ edges
    if n == 1:
        return np.zeros((1, 0)), 1.0
    values, vectors = np.linalg.eigh(lap)
    keep = values > 1e-9 * values.max()
    basis = vectors[:, keep] / np.sqrt(values[keep])
    marginal = (basis**2).sum(axis=1)
    return basis, float(np.exp(np.mean(np.log(marginal))))


def _grid_field(name: str, prior: FieldPrior, data: ModelData, *,
                trend: tuple[float, float, float] | None = None):
    """A field over the grid's cells with the spec's pooling (``dims="cell"``).

    ``trend = (prior mean on log window, prior mean on log radius, prior sd)`` adds a plane
    in (log window, log radius) to the field's mean, so the pooled field shrinks toward a
    tilted surface rather than a flat one.
    """
    n_w, n_r = len(data.windows), len(data.radii)
    mean = pm.Normal(f"{name}_mean", prior.mean_mu, prior.mean_sd)
    level = mean
    if trend is not None and prior.pooling != "none":
        log_t = np.log(np.repeat(data.windows.astype(float), n_r))
        log_s = np.log(np.tile(data.radii.astype(float), n_w))
        if len(data.windows) > 1:
            slope_t = pm.Normal(f"{name}_log_window", trend[0], trend[2])
            level = level + slope_t * (log_t - log_t.mean())
        if len(data.radii) > 1:
            slope_s = pm.Normal(f"{name}_log_radius", trend[1], trend[2])
            level = level + slope_s * (log_s - log_s.mean())
    if prior.pooling == "none":
        raw = pm.Normal(f"{name}_raw", 0.0, 1.0, dims="cell")
        return pm.Deterministic(name, level + prior.scale_sd * raw, dims="cell")
    scale = pm.HalfNormal(f"{name}_sd", prior.scale_sd)
    noise = pm.Normal(f"{name}_iid", 0.0, 1.0, dims="cell")
    if prior.pooling == "hierarchical" or data.n_cells < 2:
        return pm.Deterministic(name, level + scale * noise, dims="cell")
    basis, scaling = grid_field_basis(n_w, n_r)
    z = pm.Normal(f"{name}_gmrf", 0.0, 1.0, shape=basis.shape[1])
    smooth = pt.dot(basis, z) / np.sqrt(scaling)
    mix = pm.Beta(f"{name}_smooth_share", 2.0, 2.0)
    noise_centred = noise - noise.mean()  # the mean lives in `mean`; keep both parts centred
    return pm.Deterministic(
        name, level + scale * (pt.sqrt(mix) * smooth + pt.sqrt(1 - mix) * noise_centred),
        dims="cell")


def build_model(data: ModelData, spec: ModelSpec, *, predictive: bool = False) -> pm.Model:
    """Build the PyMC model of a spec on prepared data.

    Parameters
    ----------
    data
        From :func:`prepare_model_data`.
    spec
        The model spec.
    predictive
        Build the predictive twin: the outcome is an unobserved random variable per unique
        row (for prior and posterior predictive draws) instead of the weighted likelihood.

    Returns
    -------
    pymc.Model
        With dims ``cell`` (and ``window``/``radius`` labels as coords ``cell_window`` and
        ``cell_radius``), ``row``, ``covariate`` and ``stratum``.
    """
    n_w, n_r = len(data.windows), len(data.radii)
    coords = {
        "cell": np.arange(data.n_cells),
        "row": np.arange(data.n_rows),
        "covariate": list(data.covariate_names),
        "window": data.windows,
        "radius": data.radii,
    }
    likelihood = likelihood_for(spec)
    with pm.Model(coords=coords) as model:
        intercept = _grid_field("intercept", spec.intercept, data,
                                trend=likelihood.intercept_trend)
        effect = _grid_field("effect", spec.effect, data,
                             trend=likelihood.effect_trend(spec.effect))
        pm.Deterministic("effect_grid", effect.reshape((n_w, n_r)), dims=("window", "radius"))
        eta = intercept[data.cell] + effect[data.cell] * data.treated
        eta = _other_terms(model, data, spec, likelihood, eta)
        if predictive:
            likelihood.predictive(data, eta)
        else:
            pm.Potential("weighted_loglik", likelihood.loglik(data, eta))
    return model


def _other_terms(model: pm.Model, data: ModelData, spec: ModelSpec, likelihood: Likelihood,
                 eta):
    """``eta`` plus the pre-count slope (lagged forms), the covariates and the strata."""
    pre = likelihood.pre_term(data.pre)
    if pre is not None:
        slope = _grid_field("slope", spec.slope, data)
        eta = eta + slope[data.cell] * pre
    if data.covariates.shape[1]:
        gamma = pm.Normal("covariate_coef", 0.0, spec.covariate_sd, dims="covariate")
        eta = eta + pt.dot(data.covariates, gamma)
    if spec.matching == "strata" and data.n_strata > 1:
        model.add_coord("stratum", np.arange(data.n_strata))
        strata_sd = pm.HalfNormal("stratum_sd", 0.5)
        strata_raw = pm.Normal("stratum_raw", 0.0, 1.0, dims="stratum")
        eta = eta + strata_sd * strata_raw[data.stratum]
    return eta
