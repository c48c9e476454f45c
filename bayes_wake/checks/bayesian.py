"""Bayesian sensitivity checks of the effect surface.

One reference fit of the Bayesian wake model (:func:`bayes_wake.bayes.fit.fit_surface`) and refits
that each change one thing, every one summarised by the posterior probability that the
effect is positive over a region of the grid the user names (``t >= 20 and s <= 9``):

========================  ===============================================================
check                     what changes
========================  ===============================================================
``surface``               nothing: per-cell P(effect > 0) and P(positive over the region)
``prior``                 power-scaling of the top-level priors (Kallioinen et al. 2024,
                          ArviZ's ``psense``), by importance weighting: no refit
``prior_refit``           refits with the effect prior half and twice as wide
``likelihood``            Poisson instead of negative binomial (or the other way round)
``matching``              no matching (all wakes, no CEM weights)
``sutva``                 wakes with earlier overlapping anchors left out (or kept)
``regions``               leave one region out: its anchors' wakes are dropped
========================  ===============================================================

Each fit is an independent task (:func:`fit_variant`) that returns a JSON-ready summary, so
the fits fan out over Dask like the permutation chunks.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.result import CheckResult
from bayes_wake.core.windows import GridRegion
from bayes_wake.errors import BayesWakeError, SettingsError
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import MWASettings

__all__ = [
    "CHECKS",
    "DEFAULT_CHECKS",
    "BayesCheck",
    "FitVariant",
    "fit_variant",
    "plan_fits",
    "power_scaling",
    "resolve_checks",
    "summarise_checks",
]

CHECKS = ("surface", "prior", "prior_refit", "likelihood", "matching", "sutva", "regions")
#: Run by default: one reference fit (with power-scaling) and three refits; ``regions`` is
#: added when a region column is given.
DEFAULT_CHECKS = ("surface", "prior", "likelihood", "matching", "sutva")
#: Power-scaling exponents of the prior reported in the table (1 is the fitted prior).
PRIOR_POWERS = (0.5, 2.0)
#: Pareto k above which an importance-weighted estimate is not to be trusted.
KHAT_LIMIT = 0.7
#: A cell counts as clearly positive when P(effect > 0) reaches this.
CLEAR = 0.95
#: Version of what a fit task returns; part of the fits' task keys (2: fits take the
#: analysis's weights and formula, as the OLS table they are shown beside).
RESULT_FORMAT = 2


# --------------------------------------------------------------------------------------------
# which fits
# --------------------------------------------------------------------------------------------


def resolve_checks(text: str | Sequence[str] | None, *, has_regions: bool) -> tuple[str, ...]:
    """The Bayesian checks to run, from ``all``, ``none``, ``default`` or a comma list.

    ``default`` (also None) is :data:`DEFAULT_CHECKS`, plus ``regions`` when a region column
    is given; ``all`` is every check (``regions`` only with a region column).

    Raises
    ------
    SettingsError
        An unknown check (the nearest name is suggested), or ``regions`` without a region
        column.
    """
    if text is None:
        text = "default"
    names = [p.strip() for p in (text.split(",") if isinstance(text, str) else text)
             if p.strip()]
    if names == ["none"]:
        return ()
    if names in (["default"], []):
        chosen = list(DEFAULT_CHECKS) + (["regions"] if has_regions else [])
    elif names == ["all"]:
        chosen = [c for c in CHECKS if c != "regions" or has_regions]
    else:
        chosen = []
        for name in names:
            if name not in CHECKS:
                close = difflib.get_close_matches(name, [*CHECKS, "all", "none", "default"],
                                                  n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise SettingsError(f"bayes_checks: unknown check {name!r}{hint} "
                                    f"(checks: {', '.join(CHECKS)}, or all, none, default)")
            chosen.append(name)
        if "regions" in chosen and not has_regions:
            raise SettingsError("bayes_checks regions (leave one region out) needs "
                                "region_column naming each event's region")
    return tuple(c for c in CHECKS if c in chosen)


@dataclass(frozen=True)
class FitVariant:
    """One Bayesian fit of the checks.

    Attributes
    ----------
    name
        Unique name (``reference``, ``likelihood``, ``without_region:Gao``, ...).
    check
        The check it belongs to (``surface`` for the reference fit).
    label
        In words, for tables (``Poisson likelihood``).
    spec
        The model spec as a dict (validated again on the worker).
    delete_sutva
        Drop wakes with earlier overlapping anchors.
    drop_region
        Leave this region's anchors out.
    power_scaling
        Also compute the power-scaling prior sensitivity (reference fit only).
    """

    name: str
    check: str
    label: str
    spec: dict
    delete_sutva: bool = False
    drop_region: str | None = None
    power_scaling: bool = False

    def to_dict(self) -> dict:
        """JSON-ready form (for task keys)."""
        return {"name": self.name, "check": self.check, "spec": self.spec,
                "delete_sutva": self.delete_sutva, "drop_region": self.drop_region,
                "power_scaling": self.power_scaling}


def plan_fits(checks: Sequence[str], spec, *, match_on: Sequence[str], delete_sutva: bool,
              regions: Sequence[str] = ()) -> tuple[list[FitVariant], dict[str, str]]:
    """The fits the checks need.

    Parameters
    ----------
    checks
        From :func:`resolve_checks`.
    spec
        The reference :class:`~bayes_wake.bayes.spec.ModelSpec`.
    match_on
        The matching columns (empty: the reference fit is unmatched).
    delete_sutva
        Whether the reference analysis drops overlapping wakes.
    regions
        The regions to leave out one at a time.

    Returns
    -------
    tuple
        The fit variants, and the checks skipped with the reason.
    """
    from bayes_wake.bayes.spec import parse_spec

    skipped: dict[str, str] = {}
    if not checks:
        return [], skipped
    base = spec.model_dump(mode="json")
    if not match_on and base["matching"] != "none":
        base["matching"] = "none"
        base["name"] = f"{spec.name} (unmatched)"
    parse_spec(base, spec.name)
    fits = [FitVariant("reference", "surface", f"reference ({base['name']})", base,
                       delete_sutva=delete_sutva, power_scaling="prior" in checks)]

    def variant(name: str, check: str, label: str, **changes) -> FitVariant:
        data = {**base, **changes.pop("spec", {})}
        parse_spec(data, f"{check} variant of {spec.name}")
        return FitVariant(name, check, label, data,
                          delete_sutva=changes.get("delete_sutva", delete_sutva),
                          drop_region=changes.get("drop_region"))

    if "prior_refit" in checks:
        for factor, words in ((0.5, "half"), (2.0, "twice")):
            effect = dict(base["effect"])
            effect["mean_sd"] = effect["mean_sd"] * factor
            effect["scale_sd"] = effect["scale_sd"] * factor
            fits.append(variant(f"prior_x{factor:g}", "prior_refit",
                                f"with the effect prior {words} as wide",
                                spec={"effect": effect, "name": f"{base['name']}, effect prior "
                                      f"x{factor:g}"}))
    if "likelihood" in checks:
        if base["likelihood"] == "robust_normal":
            skipped["likelihood"] = ("the reference model (count-scale DiD) has no count "
                                     "likelihood to swap; its errors are cluster-robust")
        else:
            other = "poisson" if base["likelihood"] == "negative_binomial" else \
                "negative_binomial"
            words = "Poisson" if other == "poisson" else "negative-binomial"
            fits.append(variant("likelihood", "likelihood", f"with a {words} likelihood",
                                spec={"likelihood": other,
                                      "name": f"{base['name']}, {other} likelihood"}))
    if "matching" in checks:
        if not match_on:
            skipped["matching"] = "no matching columns were given (--match), so there is no " \
                                  "matched fit to compare"
        else:
            fits.append(variant("matching", "matching", "without matching",
                                spec={"matching": "none",
                                      "name": f"{base['name']}, unmatched"}))
    if "sutva" in checks:
        label = ("with the overlapping wakes kept" if delete_sutva
                 else "without wakes that overlap earlier anchors (SUTVA)")
        fits.append(variant("sutva", "sutva", label, delete_sutva=not delete_sutva))
    if "regions" in checks:
        for region in regions:
            fits.append(variant(f"without_region:{region}", "regions", f"without {region}",
                                drop_region=str(region)))
    return fits, skipped


# --------------------------------------------------------------------------------------------
# one fit (a task)
# --------------------------------------------------------------------------------------------


def fit_variant(cube: xr.Dataset, variant: dict, mwa: MWASettings,
                region_of_event: np.ndarray | None, grid_region: dict,
                ci: float = 0.9) -> dict:
    """Fit one variant and summarise it (a task; runs on a Dask worker).

    Parameters
    ----------
    cube
        The wake cube.
    variant
        :meth:`FitVariant.to_dict`.
    mwa
        The settings of the matched wake analysis the fits reanalyse (match columns, weights,
        TCM, SUTVA rule, formula); a variant may change the SUTVA rule.
    region_of_event
        Region label per anchor on the cube's ``event`` dim (for ``drop_region``).
    grid_region
        :meth:`GridRegion.to_dict`.
    ci
        Level of the posterior intervals (equal-tailed).

    Returns
    -------
    dict
        JSON-ready: ``cells`` (per cell: window, radius, mean, ci_lower, ci_upper, ci_prob,
        prob_positive), ``region`` (``all_positive``, ``mean_positive``, ``mean_effect``,
        cells), ``diagnostics``, ``wakes`` and, if asked, ``power_scaling``; or ``error``
        when the variant cannot be fitted on these data (no treated wakes left, ...).
    """

    import arviz as az

    try:
        with az.rc_context({"stats.ci_prob": ci, "stats.ci_kind": "eti"}):
            return _fit_variant(cube, variant, mwa, region_of_event, grid_region)
    except BayesWakeError as exc:  # bad data for this variant: report it, keep the others
        return {"name": variant["name"], "error": str(exc).splitlines()[0]}


def _fit_variant(cube, variant, mwa: MWASettings, region_of_event, grid_region) -> dict:
    from bayes_wake.bayes.matched_fit import fit_matched
    from bayes_wake.bayes.spec import parse_spec

    spec = parse_spec(variant["spec"], variant["name"])
    if variant.get("drop_region") is not None:
        if region_of_event is None:
            raise SettingsError("leave-one-region-out needs the region of every event")
        keep = np.asarray(region_of_event).astype(str) != str(variant["drop_region"])
        cube = cube.isel(event=np.flatnonzero(keep))
        if not (cube["treated"] == 1).any() or not (cube["treated"] == 0).any():
            raise SettingsError(f"without region {variant['drop_region']!r} there are no "
                                "treatment or no control events left")
    settings = replace(mwa, delete_sutva=bool(variant.get("delete_sutva")))
    fit = fit_matched(cube, spec, settings)
    region = GridRegion.from_dict(grid_region)
    surface = fit.surface
    windows, radii = surface["window"].to_numpy(), surface["radius"].to_numpy()
    effect = fit.idata.posterior["additive_effect"]
    summary = _region_probabilities(effect, region.mask(windows, radii))
    cells = fit.table()[["t_window", "spat_window", "mean", "ci_lower", "ci_upper",
                         "ci_prob", "prob_positive"]]
    d = fit.diagnostics
    out = {
        "name": variant["name"], "spec_name": spec.name,
        "cells": {k: cells[k].tolist() for k in cells.columns},
        "region": summary,
        "diagnostics": {"converged": d.converged, "max_r_hat": d.max_r_hat,
                        "min_ess_bulk": d.min_ess_bulk, "divergences": d.divergences,
                        "problems": d.problems(), "seconds": d.compile_seconds
                        + d.sample_seconds},
        "wakes": {"treatment": int((cube["treated"] == 1).sum()),
                  "control": int((cube["treated"] == 0).sum())},
        "ci_prob": float(surface.attrs.get("ci_prob", float("nan"))),
    }
    if variant.get("power_scaling"):
        try:
            out["power_scaling"] = power_scaling(fit, cube, spec, settings, region)
        except Exception as exc:  # noqa: BLE001 - reported, never fatal: the others stand
            out["power_scaling"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _region_probabilities(effect: xr.DataArray, mask: np.ndarray) -> dict:
    """P(effect > 0 in every cell of the region), P(region mean > 0), the posterior mean of
    the region mean; cells without an estimate (NA effect, counted under the key
    ``cells_without_events`` of stored task results) are left out and counted."""
    defined = effect.notnull().all(("chain", "draw")).to_numpy()
    use = mask & defined
    values = effect.to_numpy()[..., use]  # (chain, draw, cells)
    if values.shape[-1] == 0:
        return {"all_positive": None, "mean_positive": None, "mean_effect": None,
                "cells": 0, "cells_without_events": int((mask & ~defined).sum())}
    return {"all_positive": float((values > 0).all(axis=-1).mean()),
            "mean_positive": float((values.mean(axis=-1) > 0).mean()),
            "mean_effect": float(values.mean()),
            "cells": int(use.sum()), "cells_without_events": int((mask & ~defined).sum())}


#: The dims of a posterior's draws.
_SAMPLE_DIMS = ("chain", "draw")


def power_scaling(fit, cube: xr.Dataset, spec, mwa: MWASettings, region: GridRegion) -> dict:
    """Power-scaling sensitivity of the additive effect surface to the top-level priors.

    The log prior of the top-level parameters (means, scales, mixing weights, dispersion; not
    the standard-normal latent fields of the non-centred parameterisation, as Kallioinen et
    al. advise for hierarchical models) and the log likelihood are evaluated on every draw;
    ArviZ's ``psense`` then gives each cell's prior and likelihood sensitivity (above 0.05:
    sensitive), and Pareto-smoothed importance weights give the region probability under the
    prior raised to the powers :data:`PRIOR_POWERS`, without refitting.

    Returns
    -------
    dict
        ``cells`` (window, radius, prior, likelihood sensitivity), ``powers`` (alpha, region
        probability, Pareto k), ``priors`` (the parameters scaled).
    """
    from arviz_stats import psense

    from bayes_wake.bayes.fit import build_for_cube

    model = build_for_cube(cube, spec, mwa)
    posterior = fit.idata.posterior.to_dataset()
    values = _model_draws(model, posterior)
    prior_total, top = _top_level_log_prior(model, xr.Dataset(values))
    effect = posterior["additive_effect"]
    tree = xr.DataTree.from_dict({
        "posterior": xr.Dataset({"additive_effect": effect}),
        "log_prior": xr.Dataset({"prior": prior_total}),
        "log_likelihood": xr.Dataset({"wakes": _draw_log_likelihood(model, values,
                                                                    posterior)})})
    prior_sense = psense(tree, var_names=["additive_effect"], group="prior")["additive_effect"]
    like_sense = psense(tree, var_names=["additive_effect"], group="likelihood")[
        "additive_effect"]
    mask = region.mask(effect["window"].to_numpy(), effect["radius"].to_numpy())
    defined = effect.notnull().all(_SAMPLE_DIMS).to_numpy()
    inside = effect.to_numpy()[..., mask & defined]
    all_positive = (inside > 0).all(axis=-1) if inside.shape[-1] else None
    return {"cells": _sensitivity_cells(effect, prior_sense, like_sense),
            "powers": _powered_priors(prior_total, all_positive), "priors": top,
            "all_positive": None if all_positive is None else float(all_positive.mean())}


def _model_draws(model, posterior: xr.Dataset) -> dict[str, xr.DataArray]:
    """The posterior draws of the model's free variables, per-cell ones back on the model's
    ``cell`` dim (window outer, radius inner)."""
    values = {}
    for rv in model.free_RVs:
        var = posterior[rv.name]
        if "window" in var.dims and "radius" in var.dims:  # back to the model's cell dim
            var = var.stack(cell=("window", "radius")).drop_vars(["cell", "window", "radius"])
            var = var.transpose(*_SAMPLE_DIMS, "cell", ...)
        values[rv.name] = var
    return values


def _top_level_log_prior(model, draws: xr.Dataset) -> tuple[xr.DataArray, list[str]]:
    """Per draw, the log prior of the top-level parameters (not the latent fields
    ``*_iid``, ``*_gmrf``, ``*_raw``), and their names."""
    from pymc.stats import compute_log_prior

    log_prior = compute_log_prior(xr.DataTree.from_dict({"posterior": draws}), model=model,
                                  extend_inferencedata=False, progressbar=False)
    top = [name for name in log_prior.data_vars
           if not name.endswith(("_iid", "_gmrf", "_raw"))]
    total = sum(log_prior[n].sum([d for d in log_prior[n].dims if d not in _SAMPLE_DIMS])
                for n in top)
    return total, top


def _draw_log_likelihood(model, values: dict[str, xr.DataArray],
                         posterior: xr.Dataset) -> xr.DataArray:
    """The model's log likelihood (the sum of its potentials) at every draw."""
    from pymc.model.transform.conditioning import remove_value_transforms

    plain = remove_value_transforms(model)
    loglik_graph = plain.replace_rvs_by_values([sum(plain.potentials)])[0]
    loglik_fn = plain.compile_fn(loglik_graph, inputs=plain.value_vars,
                                 on_unused_input="ignore", point_fn=True)
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    flat = {k: v.to_numpy().reshape((n_chain * n_draw,) + v.shape[2:]) for k, v in
            values.items()}
    loglik = np.array([loglik_fn({k: flat[k][i] for k in flat})
                       for i in range(n_chain * n_draw)]).reshape(n_chain, n_draw)
    return xr.DataArray(loglik, dims=_SAMPLE_DIMS, coords={d: posterior[d] for d in
                                                             _SAMPLE_DIMS})


def _powered_priors(prior_total: xr.DataArray, all_positive) -> list[dict]:
    """Per power of :data:`PRIOR_POWERS`, the region probability under the powered prior
    (Pareto-smoothed importance weights) and the Pareto k."""
    powers = []
    for alpha in PRIOR_POWERS:
        log_weights, khat = ((alpha - 1.0) * prior_total).azstats.psislw(dim=list(_SAMPLE_DIMS))
        weights = np.exp(log_weights.to_numpy() - float(log_weights.max()))
        weights /= weights.sum()
        powers.append({"alpha": alpha,
                       "all_positive": None if all_positive is None
                       else float((weights * all_positive).sum()),
                       "pareto_k": float(khat)})
    return powers


def _sensitivity_cells(effect: xr.DataArray, prior_sense, like_sense) -> list[dict]:
    """One row per cell: its prior and likelihood sensitivity."""
    cells = []
    for i, window in enumerate(effect["window"].to_numpy()):
        for j, radius in enumerate(effect["radius"].to_numpy()):
            cells.append({"t_window": float(window), "spat_window": float(radius),
                          "prior_sensitivity": float(prior_sense[i, j]),
                          "likelihood_sensitivity": float(like_sense[i, j])})
    return cells


# --------------------------------------------------------------------------------------------
# summaries
# --------------------------------------------------------------------------------------------


#: The former name of a Bayesian check's result: every check now returns a
#: :class:`~bayes_wake.checks.result.CheckResult`.
BayesCheck = CheckResult


def _grid_table(cells: pd.DataFrame, value: str) -> pd.DataFrame:
    """One column of a per-cell table as a window x radius grid, for a report.

    Parameters
    ----------
    cells
        One row per cell: ``t_window`` (time unit), ``spat_window`` (km) and ``value``.
    value
        The column to spread.

    Returns
    -------
    pandas.DataFrame
        A ``window`` column (``t = 10``) and one column per radius (``s = 3 km``).
    """
    wide = cells.pivot(index="t_window", columns="spat_window", values=value)
    wide.columns = [f"s = {c:g} km" for c in wide.columns]
    wide.index = [f"t = {i:g}" for i in wide.index]
    return wide.reset_index(names="window")


def _p(value) -> str:
    """A probability to 2 decimals, or 3 where rounding would cross the :data:`CLEAR`
    threshold (0.946 is "0.946", not "0.95", beside "reaches 0.95 in k cases")."""
    if value is None or np.isnan(value):
        return "NA"
    text = f"{value:.2f}"
    return text if (float(text) >= CLEAR) == (value >= CLEAR) else f"{value:.3f}"


def _caveat(result: dict) -> str:
    if "error" in result:
        return f" (could not be fitted: {result['error']})"
    d = result["diagnostics"]
    return "" if d["converged"] else f" (caution: did not converge: {'; '.join(d['problems'])})"


def _all_positive(result: dict) -> float | None:
    return None if "error" in result else result["region"]["all_positive"]


def _variant_row(variant: FitVariant, result: dict) -> dict:
    if "error" in result:
        return {"fit": variant.label, "P(positive in every region cell)": None,
                "converged": f"failed: {result['error']}"}
    region, d = result["region"], result["diagnostics"]
    probs = np.asarray([np.nan if p is None else p for p in result["cells"]["prob_positive"]])
    return {"fit": variant.label, "P(positive in every region cell)": region["all_positive"],
            "P(region mean > 0)": region["mean_positive"],
            "region mean effect": region["mean_effect"],
            f"cells with P(>0) >= {CLEAR}": int((probs >= CLEAR).sum()),
            "treatment wakes": result["wakes"]["treatment"],
            "control wakes": result["wakes"]["control"],
            "converged": "yes" if d["converged"] else "NO", "max R-hat": d["max_r_hat"]}


def _variant_counts(table: pd.DataFrame) -> list[list[bool]]:
    """The count columns of a table of :func:`_variant_row` rows (cells and wakes; a failed
    fit leaves them NA, so they may be floats), for a report: probabilities are not."""
    return [[c.startswith("cells with") or c.endswith(" wakes") for c in table.columns]]


#: The refits compared with the reference fit, in report order: check and title.
_COMPARISONS = (("prior_refit", "Alternative effect priors (refits)"),
                ("likelihood", "Poisson vs negative binomial"),
                ("matching", "With and without matching"),
                ("sutva", "Overlapping wakes (SUTVA)"),
                ("regions", "Leave one region out"))


def summarise_checks(fits: Sequence[FitVariant], results: dict[str, dict], region: GridRegion,
                     skipped: dict[str, str] | None = None) -> list[CheckResult]:
    """One :class:`~bayes_wake.checks.result.CheckResult` per Bayesian check.

    Parameters
    ----------
    fits
        The fits of :func:`plan_fits`.
    results
        What :func:`fit_variant` returned, by variant name.
    region
        The region of the grid the probabilities are about.
    skipped
        The checks not run, with the reason.

    Returns
    -------
    list of CheckResult
        ``surface`` (with per-cell grids of P(effect > 0) and of the posterior mean effect,
        extra events per treated wake), ``prior`` (power-scaling), one per refit
        comparison, then one per skipped check; empty without a reference fit, and only
        ``surface`` when the reference fit failed.
    """
    by_check: dict[str, list[FitVariant]] = {}
    for variant in fits:
        by_check.setdefault(variant.check, []).append(variant)
    if "surface" not in by_check:
        return []
    reference = by_check["surface"][0]
    ref = results[reference.name]
    if "error" in ref:
        return [CheckResult("surface", "Posterior P(effect > 0)", pd.DataFrame(),
                            f"The reference Bayesian fit could not be run: {ref['error']}.")]
    where = region.describe()
    out = [_surface_check(reference, ref, where)]
    if reference.power_scaling:
        out.append(_prior_check(ref, where))
    for check, title in _COMPARISONS:
        if by_check.get(check):
            out.append(_comparison_check(check, title, by_check[check], reference, results,
                                         where))
    out += [CheckResult(check, f"{check}: not run", pd.DataFrame(),
                        f"The {check} check was not run: {reason}.")
            for check, reason in (skipped or {}).items()]
    return out


def _surface_check(reference: FitVariant, ref: dict, where: str) -> CheckResult:
    """The reference fit: P(effect > 0) per cell and in every cell of the region."""
    cells = pd.DataFrame(ref["cells"])
    probs = cells["prob_positive"].to_numpy(dtype=float)
    n_cells, n_clear = int(np.isfinite(probs).sum()), int((probs >= CLEAR).sum())
    empty = ref["region"]["cells_without_events"]
    na = (f"; {counted(empty, 'cell')} of the region without an estimate (NA) "
          f"{'is' if empty == 1 else 'are'} left out" if empty else "")
    sentence = (f"The posterior probability that the effect is positive in every one of the "
                f"{counted(ref['region']['cells'], 'cell')} of {where} is "
                f"{_p(ref['region']['all_positive'])} (that their average effect is positive: "
                f"{_p(ref['region']['mean_positive'])}); {n_clear} of "
                f"{counted(n_cells, 'cell')} have "
                f"P(effect > 0) >= {CLEAR} ({ref['spec_name']}){na}{_caveat(ref)}.")
    grids = {"Posterior P(effect > 0) per cell": _grid_table(cells, "prob_positive"),
             "Posterior mean additive effect (extra events per treated wake)":
                 _grid_table(cells, "mean")}
    table = pd.DataFrame([_variant_row(reference, ref)])
    return CheckResult("surface", "Posterior P(effect > 0): per cell and over the region",
                       table, sentence, cells=cells, tables=grids,
                       counts=_variant_counts(table))


def _prior_check(ref: dict, where: str) -> CheckResult:
    """Power-scaling of the top-level priors on the reference fit (no refit)."""
    title = "Prior sensitivity (power-scaling)"
    ps = ref.get("power_scaling", {})
    if "error" in ps:
        return CheckResult("prior", title, pd.DataFrame(),
                           f"Power-scaling could not be computed: {ps['error']}.")
    ref_p = ref["region"]["all_positive"]
    cells = pd.DataFrame(ps["cells"])
    sensitive = int((cells["prior_sensitivity"] > 0.05).sum())
    judged = int(cells["prior_sensitivity"].notna().sum())  # cells with events
    powers = pd.DataFrame(ps["powers"])
    table = pd.DataFrame({"prior power": [1.0, *powers["alpha"]],
                          "P(positive in every region cell)": [ref_p, *powers["all_positive"]],
                          "Pareto k": [np.nan, *powers["pareto_k"]]})
    lo, hi = powers["all_positive"].min(), powers["all_positive"].max()
    moved = (f"stays at {_p(lo)}" if _p(lo) == _p(hi) == _p(ref_p)
             else f"is {_p(lo)} to {_p(hi)} ({_p(ref_p)} as fitted)")
    verdict = "barely moves" if sensitive == 0 else "moves"
    sentence = (f"Power-scaling the top-level priors {verdict} the effect surface: prior "
                f"sensitivity exceeds 0.05 in {sensitive} of {counted(judged, 'cell')} "
                f"(largest {float(cells['prior_sensitivity'].max()):.3f}), and P(positive in "
                f"every cell of {where}) {moved} with the prior raised to the power "
                f"{PRIOR_POWERS[0]:g} or {PRIOR_POWERS[-1]:g}")
    sentence += (" - but the importance weights are unreliable there (Pareto k > "
                 f"{KHAT_LIMIT}); refit with the prior scaled instead "
                 "(--bayes-checks prior_refit, or all)."
                 if (powers["pareto_k"] > KHAT_LIMIT).any() else ".")
    grid = {"Prior sensitivity per cell (power-scaling; > 0.05 sensitive)":
            _grid_table(cells, "prior_sensitivity")}
    return CheckResult("prior", title, table, sentence, cells=cells, tables=grid,
                       counts=False)  # powers, probabilities and Pareto k: no counts


def _comparison_check(check: str, title: str, variants: Sequence[FitVariant],
                      reference: FitVariant, results: dict[str, dict], where: str
                      ) -> CheckResult:
    """Refits that each change one thing, beside the reference fit."""
    ref = results[reference.name]
    table = pd.DataFrame([_variant_row(reference, ref)]
                         + [_variant_row(v, results[v.name]) for v in variants])
    if check == "regions":
        sentence = _regions_sentence(variants, results, where, ref["region"]["all_positive"])
    else:
        suffix = f", {ref['spec_name']}" if check == "likelihood" else ""
        reference_words = f"reference fit{suffix}: {_p(ref['region']['all_positive'])}"
        sentence = _refits_sentence(variants, results, where, reference_words)
    return CheckResult(check, title, table, sentence, counts=_variant_counts(table))


def _refits_sentence(variants: Sequence[FitVariant], results: dict[str, dict], where: str,
                     reference: str) -> str:
    """P(positive in every region cell) of each refit, then the reference fit's."""
    first, *rest = variants
    sentence = (f"{first.label[0].upper()}{first.label[1:]}, P(positive in every cell "
                f"of {where}) is {_p(_all_positive(results[first.name]))}"
                f"{_caveat(results[first.name])}")
    for v in rest:
        sentence += (f"; {v.label}, {_p(_all_positive(results[v.name]))}"
                     f"{_caveat(results[v.name])}")
    return sentence + f" ({reference})."


def _regions_sentence(variants: Sequence[FitVariant], results: dict[str, dict], where: str,
                      ref_p: float | None) -> str:
    """The range of P(positive in every region cell) over the regions left out."""
    probs = [(_all_positive(results[v.name]), v) for v in variants]
    defined = [(p, v) for p, v in probs if p is not None]
    if not defined:
        sentence = "Leaving out one region at a time leaves no region cell to judge."
    elif len(defined) == 1:
        only_p, only = defined[0]
        sentence = (f"{only.label[0].upper()}{only.label[1:]}, P(positive in every "
                    f"cell of {where}) is {_p(only_p)}, against {_p(ref_p)} with all "
                    "regions.")
    else:
        low, high = min(defined, key=lambda x: x[0]), max(defined, key=lambda x: x[0])
        holds = sum(p >= CLEAR for p, _ in defined)
        sentence = (f"Leaving out one region at a time, P(positive in every cell of "
                    f"{where}) ranges from {_p(low[0])} ({low[1].label}) to "
                    f"{_p(high[0])} ({high[1].label}), against {_p(ref_p)} with all "
                    f"regions; it reaches {CLEAR} in {holds} of "
                    f"{counted(len(variants), 'case')}.")
    bad = [f"{v.label}{_caveat(results[v.name])}" for v in variants
           if _caveat(results[v.name])]
    return sentence[:-1] + f"; {'; '.join(bad)}." if bad else sentence
