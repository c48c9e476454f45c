"""The hierarchical wake model in PyMC: post counts per wake and cell, effects pooled over the grid.

For each wake (treatment or control anchor) and each (window, radius) cell::

    post ~ NegativeBinomial(mu, alpha)        (or Poisson, or Normal for checks)
    log mu = a[cell] + b[cell] * log1p(pre) + tau[cell] * treated + x @ gamma (+ stratum)

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

from bayes_wake.bayes.spec import FieldPrior, ModelSpec
from bayes_wake.core.matching import cem_coarsen, coarsened_exact_match
from bayes_wake.errors import SettingsError

__all__ = ["ModelData", "prepare_model_data", "build_model", "grid_field_basis"]


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
    names: list[str] = []
    for name in spec.covariates:
        names.extend(match_on if name == "match" else [name])
    names = list(dict.fromkeys(names))
    missing = [n for n in names if n not in cube.coords]
    if missing:
        raise SettingsError(f"covariate(s) {missing} are not in the wake cube")
    if spec.matching == "weights" and not match_on:
        raise SettingsError("matching: weights needs match columns (--match)")
    windows = cube["window"].to_numpy()
    radii = cube["radius"].to_numpy()
    x_event = np.column_stack([cube[n].to_numpy().astype(float) for n in names]) if names \
        else np.zeros((cube.sizes["event"], 0))
    sd = x_event.std(axis=0)
    x_event = (x_event - x_event.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    treated_event = cube["treated"].to_numpy().astype(np.int64)
    pre_all = cube["dependent"].sel(period="pre").transpose("event", "window", "radius")
    post_all = cube["dependent"].sel(period="post").transpose("event", "window", "radius")
    pre_all, post_all = pre_all.to_numpy(), post_all.to_numpy()
    increments = spec.nested == "increments"
    if increments:  # disjoint rings x intervals: every event in exactly one increment
        pre_all, post_all = _increments(pre_all), _increments(post_all)
    trend_all = cube["trend"].transpose("event", "window", "radius").to_numpy()
    so_pre = cube["same_type"].sel(period="pre").transpose("event", "window", "radius").to_numpy()
    mo_pre = cube["other_type"].sel(period="pre").transpose("event", "window", "radius").to_numpy()
    complete = cube["complete"].transpose("event", "window").to_numpy()
    drop_incomplete = cube.attrs.get("convention") == "mwa"

    stratum_event = np.zeros(cube.sizes["event"], dtype=np.int64)
    if spec.matching == "strata":
        if not match_on:
            raise SettingsError("matching: strata needs match columns (--match)")
        codes = np.column_stack([cem_coarsen(cube[n].to_numpy().astype(float))
                                 for n in match_on])
        _, stratum_event = np.unique(np.where(np.isnan(codes), np.inf, codes), axis=0,
                                     return_inverse=True)
        stratum_event = stratum_event.ravel()

    wake_weight = None
    if increments and spec.matching == "weights":
        # one matching for all increments, on the largest cell, so their sum refers to one
        # population of matched treated wakes
        match_vars = [cube[n].to_numpy().astype(float) for n in match_on]
        match_vars.append(trend_all[:, -1, -1])
        if tcm:
            match_vars += [so_pre[:, -1, -1], mo_pre[:, -1, -1]]
        cem = coarsened_exact_match(np.column_stack(match_vars), treated_event)
        wake_weight = np.where(cem.matched, cem.weight, 0.0)

    blocks = []
    n_terms = 0
    for i in range(len(windows)):
        for j in range(len(radii)):
            keep = complete[:, i] if drop_incomplete else np.ones(len(treated_event), bool)
            if delete_sutva:
                keep = keep & (so_pre[:, i, j] == 0) & (mo_pre[:, i, j] == 0)
            idx = np.flatnonzero(keep)
            weight = np.ones(len(idx))
            treated_counts = treated_event[idx].astype(float)
            if wake_weight is not None:
                idx = idx[wake_weight[idx] > 0]
                weight = wake_weight[idx]
                treated_counts = treated_event[idx].astype(float)
            elif spec.matching == "weights":
                match_vars = [cube[n].to_numpy()[idx].astype(float) for n in match_on]
                match_vars.append(trend_all[idx, i, j])
                if tcm:
                    match_vars += [so_pre[idx, i, j], mo_pre[idx, i, j]]
                cem = coarsened_exact_match(np.column_stack(match_vars), treated_event[idx])
                idx, weight = idx[cem.matched], cem.weight[cem.matched]
                treated_counts = treated_event[idx].astype(float)
            n_terms += len(idx)
            cell = np.full(len(idx), i * len(radii) + j)
            blocks.append(np.column_stack([
                cell, pre_all[idx, i, j], post_all[idx, i, j], treated_event[idx], weight,
                stratum_event[idx], treated_counts, x_event[idx]]))
    table = np.concatenate(blocks) if blocks else np.zeros((0, 7 + len(names)))
    # identical rows collapse: the likelihood of a row counted m times is m x its likelihood
    key_cols = [0, 1, 2, 3, 4, 5, *range(7, table.shape[1])]
    unique, inverse, multiplicity = np.unique(table[:, key_cols], axis=0, return_inverse=True,
                                              return_counts=True)
    treated_rows = np.bincount(inverse.ravel(), weights=table[:, 6], minlength=len(unique))
    weight = unique[:, 4] * multiplicity
    temper = 1.0
    if spec.nested == "temper" and len(unique):
        # the information is in the events, and the largest cell holds (nearly) every event
        # of the smaller ones: count them once overall
        events = weight * (unique[:, 1] + unique[:, 2])
        per_cell = np.bincount(unique[:, 0].astype(np.int64), weights=events)
        temper = float(per_cell.max() / per_cell.sum()) if per_cell.sum() > 0 else 1.0
    return ModelData(
        windows=windows, radii=radii,
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
    lap = np.zeros((n, n))
    for i in range(n_windows):
        for j in range(n_radii):
            a = i * n_radii + j
            for di, dj in ((1, 0), (0, 1)):
                if i + di < n_windows and j + dj < n_radii:
                    b = (i + di) * n_radii + (j + dj)
                    lap[a, b] = lap[b, a] = -1
    np.fill_diagonal(lap, -lap.sum(axis=1))
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
    count = spec.likelihood != "gaussian"
    paired = spec.pre_count == "paired"
    pre = np.log1p(data.pre) if spec.pre_count == "log1p" else data.pre
    with pm.Model(coords=coords) as model:
        if paired:  # log odds of a wake's event falling after rather than before its anchor
            intercept = _grid_field("intercept", spec.intercept, data)
        else:  # baseline counts grow with window length (~T) and area (~S^2)
            intercept = _grid_field("intercept", spec.intercept, data,
                                    trend=(1.0, 2.0, 1.0) if count else None)
        effect = _grid_field("effect", spec.effect, data,
                             trend=(0.0, 0.0, spec.effect.mean_sd) if count else None)
        pm.Deterministic("effect_grid", effect.reshape((n_w, n_r)), dims=("window", "radius"))
        cell = data.cell
        eta = intercept[cell] + effect[cell] * data.treated
        if not paired:
            slope = _grid_field("slope", spec.slope, data)
            eta = eta + slope[cell] * pre
        if data.covariates.shape[1]:
            gamma = pm.Normal("covariate_coef", 0.0, spec.covariate_sd, dims="covariate")
            eta = eta + pt.dot(data.covariates, gamma)
        if spec.matching == "strata" and data.n_strata > 1:
            model.add_coord("stratum", np.arange(data.n_strata))
            strata_sd = pm.HalfNormal("stratum_sd", 0.5)
            strata_raw = pm.Normal("stratum_raw", 0.0, 1.0, dims="stratum")
            eta = eta + strata_sd * strata_raw[data.stratum]
        if predictive:
            _predictive_outcome(spec, data, eta, cell)
        else:
            pm.Potential("weighted_loglik", _weighted_loglik(spec, data, eta, cell))
    return model


def _dispersion(spec: ModelSpec, cell: np.ndarray):
    """Negative-binomial dispersion alpha (variance = mu + mu^2 / alpha), pooled or per cell."""
    if spec.dispersion == "per_cell":
        log_alpha_mean = pm.Normal("log_dispersion_mean", 0.0, 1.0)
        log_alpha_sd = pm.HalfNormal("log_dispersion_sd", 0.5)
        log_alpha_raw = pm.Normal("log_dispersion_raw", 0.0, 1.0, dims="cell")
        alpha = pm.Deterministic("dispersion",
                                 pt.exp(log_alpha_mean + log_alpha_sd * log_alpha_raw),
                                 dims="cell")
        return alpha, alpha[cell]
    alpha = pm.Gamma("dispersion", 2.0, 2.0)
    return alpha, alpha


def _weighted_loglik(spec: ModelSpec, data: ModelData, eta, cell):
    """Sum over unique rows of weight x log-likelihood, written for speed.

    For the negative binomial with log mean ``eta`` and dispersion ``a``::

        log p(y) = lgamma(y + a) - lgamma(a) - lgamma(y + 1)
                   + a log a - (a + y) log(a + exp(eta)) + y eta

    The lgamma terms depend on the row only through (y, a): with a pooled dispersion they are
    summed once per distinct count value instead of once per row.
    """
    y, w = data.post, data.weight
    if spec.pre_count == "paired":
        return _paired_loglik(spec, data, eta)
    if spec.likelihood == "gaussian":
        sigma = pm.HalfNormal("sigma", 10.0, dims="cell")[cell]
        return pt.sum(w * pm.logp(pm.Normal.dist(mu=eta, sigma=sigma), y))
    if spec.likelihood == "poisson":
        return pt.sum(w * (y * eta - pt.exp(eta))) - float(np.sum(w * _lgamma1(y)))
    alpha, alpha_row = _dispersion(spec, cell)
    log1p_term = pt.sum(w * (alpha_row + y) * pt.logaddexp(pt.log(alpha_row), eta))
    linear = float(np.sum(w * y)) and pt.sum(w * y * eta)
    if spec.dispersion == "pooled":
        values, inverse = np.unique(y, return_inverse=True)
        weight_by_value = np.bincount(inverse.ravel(), weights=w)
        lgammas = pt.sum(weight_by_value * (pt.gammaln(values + alpha) - pt.gammaln(alpha)))
        a_log_a = float(w.sum()) * alpha * pt.log(alpha)
    else:
        lgammas = pt.sum(w * (pt.gammaln(y + alpha_row) - pt.gammaln(alpha_row)))
        a_log_a = pt.sum(w * alpha_row * pt.log(alpha_row))
    return lgammas + a_log_a - log1p_term + linear - float(np.sum(w * _lgamma1(y)))


def _paired_loglik(spec: ModelSpec, data: ModelData, eta):
    """Conditional likelihood of the post count given the wake's total n = pre + post.

    With pre ~ Poisson(f * r_pre) and post ~ Poisson(f * r_post) for a wake frailty f (any
    distribution, gamma giving negative-binomial margins), post | n ~ Binomial(n, p) with
    logit p = eta, whatever f is: the wake's baseline cancels. ``negative_binomial`` adds
    burstiness beyond the shared frailty as a beta-binomial with learned concentration.
    Wakes with n = 0 carry no information and are left out.
    """
    from scipy.special import gammaln

    n = data.pre + data.post
    use = n > 0
    k, n, w = data.post[use], n[use], data.weight[use]
    eta = eta[np.flatnonzero(use)]
    log_choose = float(np.sum(w * (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))))
    if spec.likelihood == "poisson":
        return log_choose + pt.sum(w * (k * eta - n * pt.softplus(eta)))
    concentration = pm.Gamma("concentration", 2.0, 0.1)  # beta-binomial a + b
    p = pt.sigmoid(eta)
    a, b = p * concentration, (1 - p) * concentration
    return log_choose + pt.sum(w * (pt.gammaln(k + a) + pt.gammaln(n - k + b)
                                    - pt.gammaln(n + concentration)
                                    - pt.gammaln(a) - pt.gammaln(b)
                                    + pt.gammaln(concentration)))


def _lgamma1(y: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(np.asarray(y, dtype=float) + 1)


def _predictive_outcome(spec: ModelSpec, data: ModelData, eta, cell) -> None:
    """The outcome as an unobserved random variable per unique row (predictive draws)."""
    if spec.pre_count == "paired":
        n = (data.pre + data.post).astype(np.int64)
        if spec.likelihood == "poisson":
            pm.Binomial("post", n=n, p=pt.sigmoid(eta), dims="row")
        else:
            concentration = pm.Gamma("concentration", 2.0, 0.1)
            p = pt.sigmoid(eta)
            pm.BetaBinomial("post", n=n, alpha=p * concentration,
                            beta=(1 - p) * concentration, dims="row")
    elif spec.likelihood == "gaussian":
        sigma = pm.HalfNormal("sigma", 10.0, dims="cell")[cell]
        pm.Normal("post", mu=eta, sigma=sigma, dims="row")
    elif spec.likelihood == "poisson":
        pm.Poisson("post", mu=pt.exp(eta), dims="row")
    else:
        _, alpha_row = _dispersion(spec, cell)
        pm.NegativeBinomial("post", mu=pt.exp(eta), alpha=alpha_row, dims="row")
