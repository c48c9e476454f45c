"""The count model of the wakes on the OLS table's estimand (``nb_did``).

The estimand is the OLS table's: per (window, radius) cell, the extra post-period outcome
events per matched treated wake relative to the control wakes' change, on the count scale.
The model is of the counts themselves, each event once:

For matched wake *i* (CEM weight ``w_i``, one matching on the largest cell) and ring x
interval increment *c* (window outer)::

    pre_ic  ~ Poisson(f_ig * exp(a_c + x_i b))
    post_ic ~ Poisson(f_ig * exp(a_c + x_i b + d_c + tau_c * treated_i))
    f_ig    ~ Gamma(alpha, alpha)       (mean 1, variance 1 / alpha: the overdispersion)

``a_c`` is the increment's baseline (log events per wake), ``x_i b`` the covariates on the
wake's baseline rate (standardised match columns), ``d_c`` the common change from the pre to
the post period, ``tau_c`` the treatment's log rate ratio in the increment, pooled over the
grid with the prior of the count-scale surface
(:func:`bayes_wake.bayes.did_surface.increment_kernel` for ``smooth``,
:func:`~bayes_wake.bayes.did_surface.adaptive_precision` for ``adaptive``).
The frailty ``f_ig`` is shared by the counts of group *g* of the wake (``frailty``: the whole
wake, one ring, or one increment); because it multiplies every mean of its group it is
integrated out exactly: the group's counts are negative multinomial, so NUTS samples about
100 parameters whatever the number of wakes. ``alpha -> infinity`` is the Poisson model
(``likelihood: poisson``: no frailty).

**The count-scale effect** is computed by g-computation over the matched treated wakes: per
increment, the CEM-weighted mean over them of ``E[post | treated] - E[post | same wake,
untreated] = E[f | counts] exp(a + x b + d) (exp(tau) - 1)``, the frailty at its posterior
mean given the wake's own counts, ``(alpha + N_ig) / (alpha + M_ig)``; a cumulative cell
sums its increments. Assumption: the untreated change from pre to post is a common ratio
``exp(d_c)`` for treated and control wakes with the same covariates and frailty (parallel
trends in ratios at the wake level); the effect itself may be any count-scale excess the
log-linear increments can express, negative included (``tau < 0``: thinning of the wake's
own rate).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from scipy.special import gammaln

from bayes_wake.bayes.did_surface import (
    adaptive_precision,
    field_hyperpriors,
    grid_edges,
    increment_kernel,
)
from bayes_wake.bayes.spec import FieldPrior, ModelSpec
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import MWASettings, wake_weights

__all__ = ["CountData", "prepare_count_data", "build_count_model", "wake_loglik",
           "treated_means", "replicate_counts", "HYPERPARAMETERS"]

#: The prior's sampled hyperparameters, per pooling of the increment effects.
HYPERPARAMETERS = {
    "smooth": ("amplitude_window", "amplitude_radius", "amplitude", "length_window",
               "length_radius"),
    "adaptive": ("jump_scale", "jump_slab"),
    "none": (),
}
#: Prior of each increment's baseline ``a_c``: log events per wake (about e^-4 = 0.02).
BASELINE_PRIOR = (-4.0, 3.0)
#: Prior sd of each increment's pre-to-post change ``d_c`` (log ratio).
TREND_SD = 1.0


@dataclass(frozen=True)
class CountData:
    """The matched wakes' counts on the ring x interval increments.

    Attributes
    ----------
    windows, radii
        The grid (``t_unit`` and km).
    pre, post
        Counts per wake and increment, shape (wakes, windows * radii), window outer.
    treated
        1 for a treatment wake, 0 for a control, shape (wakes,).
    weight
        CEM weight of each wake (dimensionless; 1 without weights).
    covariates, covariate_names
        Standardised covariates, shape (wakes, k), and their names.
    group
        Frailty group of each increment, shape (windows * radii,), from 0.
    event
        Index of each wake in the cube's ``event`` dim.
    """

    windows: np.ndarray
    radii: np.ndarray
    pre: np.ndarray
    post: np.ndarray
    treated: np.ndarray
    weight: np.ndarray
    covariates: np.ndarray
    covariate_names: tuple[str, ...]
    group: np.ndarray
    event: np.ndarray
    attrs: dict = field(default_factory=dict)

    @property
    def n_cells(self) -> int:
        """Number of increments (= cells of the grid)."""
        return len(self.windows) * len(self.radii)

    @property
    def membership(self) -> np.ndarray:
        """Indicator of each increment's frailty group, shape (increments, groups)."""
        return (self.group[:, None] == np.arange(self.group.max() + 1)[None, :]).astype(float)

    @property
    def group_totals(self) -> np.ndarray:
        """Events (pre + post) per wake and frailty group, shape (wakes, groups)."""
        return (self.pre + self.post) @ self.membership


def _frailty_groups(kind: str, n_w: int, n_r: int) -> np.ndarray:
    """Frailty group of each increment (window outer): one per wake, ring or increment."""
    if kind == "wake":
        return np.zeros(n_w * n_r, dtype=np.int64)
    if kind == "ring":
        return np.tile(np.arange(n_r), n_w)
    return np.arange(n_w * n_r)


def prepare_count_data(cube: xr.Dataset, spec: ModelSpec, match_on=(), *,
                       weighted: bool = True, tcm: bool = False,
                       delete_sutva: bool = False) -> CountData:
    """The matched wakes and their increment counts.

    One matching on the largest cell (:func:`bayes_wake.mwa.analysis.wake_weights`), so that
    every increment refers to one population of matched treated wakes; with the ``mwa``
    convention only wakes complete in the longest window (R drops the others).

    Parameters
    ----------
    cube
        The wake cube.
    spec
        The model spec (matching, covariates, frailty).
    match_on, weighted, tcm
        As for the OLS table.
    delete_sutva
        Drop the wakes with an earlier same- or other-type anchor in the pre-period of the
        largest cell (the strictest of the OLS table's per-cell rule).
    """
    from bayes_wake.bayes.model import _period_counts, _standardised, covariate_names

    match_on = list(match_on)
    names = covariate_names(spec, match_on)
    missing = [n for n in names if n not in cube.coords]
    if missing:
        raise SettingsError(f"covariate(s) {missing} are not in the wake cube")
    keep = np.ones(cube.sizes["event"], bool)
    if cube.attrs.get("convention", "mwa") == "mwa":
        keep &= cube["complete"].all("window").to_numpy()
    if delete_sutva:
        overlap = (cube["same_type"] + cube["other_type"]).sel(period="pre")
        keep &= overlap.isel(window=-1, radius=-1).to_numpy() == 0
    weight = np.ones(cube.sizes["event"])
    if spec.matching != "none":
        if not match_on:
            raise SettingsError("matching: weights needs match columns (match_on)")
        weight = wake_weights(cube, MWASettings(match_on=tuple(match_on), weighted=weighted,
                                                tcm=tcm))
    event = np.flatnonzero(keep & (weight > 0))
    pre, post = (a[event].reshape(len(event), -1) for a in _period_counts(cube,
                                                                          increments=True))
    n_w, n_r = cube.sizes["window"], cube.sizes["radius"]
    treated = cube["treated"].to_numpy().astype(np.int64)[event]
    if treated.sum() < 2 or (1 - treated).sum() < 2:
        raise SettingsError("the count model needs at least 2 matched treated and 2 matched "
                            "control wakes")
    return CountData(
        windows=cube["window"].to_numpy(), radii=cube["radius"].to_numpy(),
        pre=pre.astype(float), post=post.astype(float), treated=treated,
        weight=weight[event], covariates=_standardised(cube, names)[event],
        covariate_names=tuple(names), group=_frailty_groups(spec.frailty, n_w, n_r),
        event=event,
        attrs={"t_unit": cube.attrs.get("t_unit", "days"),
               "convention": cube.attrs.get("convention", ""),
               "match_on": json.dumps(match_on), "tcm": int(tcm), "frailty": spec.frailty,
               "wakes": len(event)})


def wake_loglik(baseline, trend, effect, shift, alpha, data: CountData, *, module=np):
    """Log-likelihood of each wake's counts (all its increments, pre and post), the frailty
    integrated out (negative multinomial per frailty group); Poisson when ``alpha`` is None.

    Parameters
    ----------
    baseline, trend, effect
        ``a``, ``d`` and ``tau`` per increment, shape (..., increments) (log scale).
    shift
        ``x b`` per wake, shape (..., wakes) (log scale).
    alpha
        Frailty shape (1 / overdispersion), shape (...) , or None.
    data
        The counts.
    module
        ``numpy`` or ``pytensor.tensor``.

    Returns
    -------
    Log-likelihood per wake, shape (..., wakes) (the counts' ``log y!`` included).
    """
    g = data.membership
    linear = (module.dot(baseline, (data.pre + data.post).T)
              + module.dot(trend, data.post.T) + module.dot(effect, data.post.T) * data.treated
              + shift * (data.pre + data.post).sum(axis=1))
    pre_sum = module.dot(module.exp(baseline), g)
    post0 = module.dot(module.exp(baseline + trend), g)
    post1 = module.dot(module.exp(baseline + trend + effect), g)
    t = data.treated[:, None]
    means = module.exp(shift)[..., :, None] * (pre_sum[..., None, :] + t * post1[..., None, :]
                                               + (1 - t) * post0[..., None, :])
    constant = -(gammaln(data.pre + 1) + gammaln(data.post + 1)).sum(axis=1)
    if alpha is None:
        return linear - means.sum(axis=-1) + constant
    a = alpha[..., None, None]
    n = data.group_totals
    gamma_ln = pt.gammaln if module is pt else gammaln
    groups = (gamma_ln(a + n) - gamma_ln(a) + a * module.log(a)
              - (a + n) * module.log(a + means))
    return linear + groups.sum(axis=-1) + constant


def _smooth_effect(prior: FieldPrior, n_w: int, n_r: int):
    """Increment log rate ratios with the Gaussian-process prior of the count-scale surface
    (:func:`~bayes_wake.bayes.did_surface.increment_kernel`, its common mean sd ``mean_sd``
    and amplitudes half-normal with sd ``scale_sd``, all log rate ratios), non-centred."""
    theta = field_hyperpriors("smooth", prior.scale_sd, prior.scale_sd, 0)
    k = increment_kernel(n_w, n_r, {**theta, "level": prior.mean_sd}, module=pt)
    z = pm.Normal("effect_z", 0.0, 1.0, dims="increment")
    root = pt.linalg.cholesky(k + 1e-6 * pt.eye(n_w * n_r))
    return prior.mean_mu + pt.dot(root, z)


def _adaptive_effect(prior: FieldPrior, n_w: int, n_r: int):
    """Increment log rate ratios with the locally adaptive field of the count-scale surface
    (:func:`~bayes_wake.bayes.did_surface.adaptive_precision`, unit 1 log rate ratio),
    non-centred through the Cholesky factor of its precision."""
    theta = field_hyperpriors("adaptive", prior.scale_sd, prior.scale_sd,
                              len(grid_edges(n_w, n_r)))
    precision = adaptive_precision(n_w, n_r, theta, 1.0, prior.mean_sd, module=pt)
    z = pm.Normal("effect_z", 0.0, 1.0, dims="increment")
    root = pt.linalg.cholesky(precision)
    return prior.mean_mu + pt.linalg.solve_triangular(root.T, z, lower=False)


def _increment_effect(prior: FieldPrior, n_w: int, n_r: int):
    """The treatment's log rate ratio per increment, pooled by the spec's ``effect``."""
    if prior.pooling == "smooth":
        tau = _smooth_effect(prior, n_w, n_r)
    elif prior.pooling == "adaptive":
        tau = _adaptive_effect(prior, n_w, n_r)
    else:
        tau = prior.mean_mu + prior.scale_sd * pm.Normal("effect_z", 0.0, 1.0,
                                                         dims="increment")
    return pm.Deterministic("increment_effect", tau, dims="increment")


def build_count_model(data: CountData, spec: ModelSpec) -> pm.Model:
    """The PyMC model of the wake counts (module docstring), weighted by the CEM weights.

    Returns
    -------
    pymc.Model
        Free variables ``baseline``, ``trend`` (dims ``increment``), the effect prior's,
        ``covariate_coef`` (dims ``covariate``) and, for the negative binomial,
        ``frailty_shape`` (alpha); ``increment_effect`` is deterministic.
    """
    n_w, n_r = len(data.windows), len(data.radii)
    coords = {"increment": np.arange(data.n_cells), "covariate": list(data.covariate_names)}
    with pm.Model(coords=coords) as model:
        baseline = pm.Normal("baseline", *BASELINE_PRIOR, dims="increment")
        trend = pm.Normal("trend", 0.0, TREND_SD, dims="increment")
        effect = _increment_effect(spec.effect, n_w, n_r)
        shift = pt.zeros(len(data.treated))
        if data.covariates.shape[1]:
            coef = pm.Normal("covariate_coef", 0.0, spec.covariate_sd, dims="covariate")
            shift = pt.dot(data.covariates, coef)
        alpha = None
        if spec.likelihood == "negative_binomial":
            alpha = pm.LogNormal("frailty_shape", 0.0, 2.0)
        loglik = wake_loglik(baseline, trend, effect, shift, alpha, data, module=pt)
        pm.Potential("weighted_loglik", pt.sum(data.weight * loglik))
    return model


def _draws(posterior: xr.Dataset, data: CountData) -> dict[str, np.ndarray | None]:
    """The model's draws stacked over chains: ``baseline``, ``trend``, ``effect`` (samples,
    increments), ``shift`` (samples, wakes) and ``alpha`` (samples,) or None."""
    stacked = posterior.stack(sample=("chain", "draw"))

    def take(name, dim):
        return stacked[name].transpose("sample", dim).to_numpy()

    shift = np.zeros((stacked.sizes["sample"], len(data.treated)))
    if "covariate_coef" in stacked:
        shift = take("covariate_coef", "covariate") @ data.covariates.T
    alpha = stacked["frailty_shape"].to_numpy() if "frailty_shape" in stacked else None
    return {"baseline": take("baseline", "increment"), "trend": take("trend", "increment"),
            "effect": take("increment_effect", "increment"), "shift": shift, "alpha": alpha}


def treated_means(posterior: xr.Dataset, data: CountData) -> tuple[np.ndarray, np.ndarray]:
    """G-computation over the matched treated wakes, per draw and increment.

    Returns
    -------
    fitted, counterfactual
        The CEM-weighted mean over the matched treated wakes of the expected post count
        with the treatment and without it (the same wake, frailty at its posterior mean given
        the wake's counts), shape (samples, windows, radii), events per wake.
    """
    d = _draws(posterior, data)
    t = data.treated == 1
    w = data.weight[t] / data.weight[t].sum()
    g = data.membership
    rate = np.exp(d["shift"][:, t])  # (samples, treated)
    post1 = np.exp(d["baseline"] + d["trend"] + d["effect"])
    if d["alpha"] is None:
        frailty_rate = rate[:, :, None] * np.ones(g.shape[1])  # no frailty: E[f] = 1
    else:
        per_group = np.exp(d["baseline"]) @ g + post1 @ g  # (samples, groups)
        a = d["alpha"][:, None, None]
        frailty = (a + data.group_totals[t][None]) / (a + rate[:, :, None] * per_group[:, None])
        frailty_rate = frailty * rate[:, :, None]
    scale = np.einsum("stg,t->sg", frailty_rate, w) @ g.T  # (samples, increments)
    shape = (-1, len(data.windows), len(data.radii))
    return (scale * post1).reshape(shape), (scale * np.exp(d["baseline"] + d["trend"])
                                            ).reshape(shape)


def pointwise_loglik(posterior: xr.Dataset, data: CountData, chunk: int = 500) -> np.ndarray:
    """CEM-weighted log-likelihood of every matched wake per draw, shape (samples, wakes):
    the units of PSIS-LOO (a wake's whole count vector left out at once)."""
    d = _draws(posterior, data)
    out = []
    for start in range(0, len(d["baseline"]), chunk):
        part = slice(start, start + chunk)
        alpha = None if d["alpha"] is None else d["alpha"][part]
        out.append(wake_loglik(d["baseline"][part], d["trend"][part], d["effect"][part],
                               d["shift"][part], alpha, data))
    return np.concatenate(out) * data.weight[None, :]


def replicate_counts(posterior: xr.Dataset, data: CountData, n_draws: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replicated post counts of the cumulative cells, per posterior draw and wake.

    Mixed replication: each replicate draws fresh frailties from Gamma(alpha, alpha) (new
    wakes with the same covariates and treatment), so the check tests the frailty
    distribution, not only the wakes' own fitted rates.

    Returns
    -------
    replicated, observed
        Shapes (n_draws, wakes, windows, radii) and (wakes, windows, radii), events.
    """
    d = _draws(posterior, data)
    pick = rng.choice(len(d["baseline"]), size=min(n_draws, len(d["baseline"])), replace=False)
    n, n_w, n_r = len(data.treated), len(data.windows), len(data.radii)
    eta = (d["baseline"][pick, None, :] + d["trend"][pick, None, :] + d["shift"][pick, :, None]
           + data.treated[None, :, None] * d["effect"][pick, None, :])
    mean = np.exp(eta)
    if d["alpha"] is not None:
        a = d["alpha"][pick, None, None]
        frailty = rng.gamma(a, 1.0 / a, size=(len(pick), n, data.group.max() + 1))
        mean = mean * frailty[:, :, data.group]
    shape = (-1, n, n_w, n_r)
    replicated = rng.poisson(mean).reshape(shape).cumsum(axis=2).cumsum(axis=3)
    observed = data.post.reshape(n, n_w, n_r).cumsum(axis=1).cumsum(axis=2)
    return replicated, observed


def fit_counts(cube: xr.Dataset, spec: ModelSpec, *, match_on=(), weighted: bool = True,
               tcm: bool = False, delete_sutva: bool = False, formula: str = "lag",
               progressbar: bool = True, log=None):
    """Fit the count model and report its count-scale surface as every fit does.

    Cells where the OLS table of the same settings is NA stay NA. The posterior keeps the
    increments' ``baseline``, ``trend``, ``increment_effect`` (log rate ratio), the
    covariate coefficients and ``frailty_shape``; ``additive_effect`` (events per matched
    treated wake), ``rate_ratio`` and ``effect`` (its log) are per cumulative cell.

    Returns
    -------
    bayes_wake.bayes.fit.BayesResult
    """
    from bayes_wake.bayes.fit import _diagnostics, _result, effect_surface_table, sample_model
    from bayes_wake.io.tables import counted

    data = prepare_count_data(cube, spec, match_on, weighted=weighted, tcm=tcm,
                              delete_sutva=delete_sutva)
    (log or (lambda _line: None))(
        f"model {spec.name}: {counted(len(data.treated), 'matched wake')} "
        f"({int(data.treated.sum())} treated) x {data.n_cells} increments, frailty per "
        f"{spec.frailty}; sampling {counted(spec.sampler.chains, 'chain')} with "
        f"{spec.sampler.backend}")
    model = build_count_model(data, spec)
    idata, compile_s, sample_s = sample_model(model, spec, progressbar=progressbar)
    posterior = idata.posterior.to_dataset()
    grid = _surface_draws(posterior, data, _ols_cells(cube, match_on, weighted, tcm,
                                                      delete_sutva, formula, spec))
    names = [*HYPERPARAMETERS[spec.effect.pooling], "additive_effect"]
    names += ["frailty_shape"] if "frailty_shape" in posterior else []
    surface = effect_surface_table(grid)
    diagnostics = _diagnostics(idata, grid, names, compile_s, sample_s)
    result = _result(grid, idata, surface, diagnostics, spec,
                     data_hash=_count_hash(data), model_attrs=data.attrs)
    result.count_data = data
    return result


def _ols_cells(cube, match_on, weighted, tcm, delete_sutva, formula, spec) -> np.ndarray:
    """Flat indices of the cells the OLS table of these settings estimates."""
    from bayes_wake.bayes.did_surface import table_cells

    settings = MWASettings(match_on=tuple(match_on), weighted=weighted, tcm=tcm,
                           delete_sutva=delete_sutva, matching=spec.matching != "none",
                           formula=formula)
    return table_cells(cube, settings)


def _surface_draws(posterior: xr.Dataset, data: CountData, defined: np.ndarray) -> xr.Dataset:
    """The posterior with the cumulative cells' additive effect, rate ratio and log rate
    ratio (NaN outside ``defined``) on dims chain x draw x window x radius."""
    fitted, counterfactual = treated_means(posterior, data)
    fitted = fitted.cumsum(axis=1).cumsum(axis=2)
    counterfactual = counterfactual.cumsum(axis=1).cumsum(axis=2)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    shape = (n_chain, n_draw, len(data.windows), len(data.radii))
    undefined = ~np.isin(np.arange(data.n_cells), defined).reshape(shape[2:])
    additive = (fitted - counterfactual).reshape(shape)
    ratio = (fitted / counterfactual).reshape(shape)
    additive[..., undefined] = np.nan
    ratio[..., undefined] = np.nan
    dims = ("chain", "draw", "window", "radius")
    grid = posterior.assign_coords(window=data.windows, radius=data.radii).assign(
        additive_effect=(dims, additive), rate_ratio=(dims, ratio), effect=(dims, np.log(ratio)))
    grid["additive_effect"].attrs.update(
        long_name="extra expected post-period events per matched treated wake, relative to "
                  "the same wakes untreated (g-computation of the count model)",
        units="events per wake")
    grid["rate_ratio"].attrs["long_name"] = ("treated wakes' expected post count over the "
                                             "same without treatment")
    grid["effect"].attrs["long_name"] = "log of rate_ratio"
    return grid


def _count_hash(data: CountData) -> str:
    import hashlib

    digest = hashlib.sha256()
    for array in (data.pre, data.post, data.treated, data.weight, data.covariates):
        digest.update(np.ascontiguousarray(array, dtype=float).tobytes())
    return digest.hexdigest()
