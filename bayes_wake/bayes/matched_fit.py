"""The Bayesian surface fitted and written beside the OLS table it reanalyses.

One path for every fit that reanalyses an OLS table: the model is fitted with the analysis's
match columns, weights, TCM, SUTVA rule and formula (whether it matches at all is the spec's
``matching``) (:func:`fit_matched`: the commands ``fit``, ``demo`` and ``sauter``, and the
sensitivity, recovery and calibration checks), and its files are written with the
side-by-side figure ``comparison.png`` (:func:`write_beside`). A count model's posterior
predictive check (:func:`check_counts`) and the comparison of two fits (:func:`compare_models`)
are computed apart from the writers, which write them (:func:`write_predictive_check`,
:func:`write_model_comparison`) and compute them only when not given.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_wake.bayes.did_surface import CLEAR_T, PULL_SE
from bayes_wake.bayes.fit import BayesResult, fit_surface
from bayes_wake.bayes.spec import ModelSpec
from bayes_wake.core.windows import GridRegion
from bayes_wake.errors import ConvergenceWarning, SettingsError
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import MWAResult, MWASettings

__all__ = ["fit_matched", "write_beside", "shrinkage_warning", "check_counts",
           "write_predictive_check", "loo_table", "compare_models", "write_model_comparison",
           "count_model_summary", "grid_average_text", "lead_surface_text",
           "write_lead_surface"]

# How the posterior has a value in a cell where the OLS table is NA, by the effect's pooling.
_FILLED_BY = {
    "adaptive": "no OLS estimate: pooled from neighbouring windows (the model's adaptive field)",
    "smooth": "no OLS estimate: pooled from neighbouring windows (the model's smoothing)",
    "hierarchical": "no OLS estimate: pooled across all windows (hierarchical prior)",
    "none": "no OLS estimate: this model's prior and wakes alone (no pooling)",
}


def fit_matched(cube, spec: ModelSpec, settings: MWASettings, *, progressbar: bool = False,
                log: Callable[[str], None] | None = None,
                period: str = "post") -> BayesResult:
    """Fit ``spec`` to the cube with the settings of a matched wake analysis: the fit of
    every command and check (:func:`~bayes_wake.bayes.fit.fit_surface`, whose parameters
    these are, the progress bar off by default).

    Returns
    -------
    BayesResult
        Convergence is the caller's to report (``result.diagnostics``): the sampler's
        :class:`~bayes_wake.errors.ConvergenceWarning` is not raised again here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_surface(cube, spec, settings, progressbar=progressbar, log=log,
                           period=period)


def write_beside(fit: BayesResult, ols: MWAResult, folder: str | Path, *,
                 label: str | None = None, placebo: bool = False,
                 check: tuple[pd.DataFrame, str] | None = None,
                 region: GridRegion | None = None) -> str | None:
    """Write the fit's files and ``comparison.png`` (OLS left, posterior mean right), and for
    a model of the wake counts its predictive check (:func:`write_predictive_check`).

    The posterior's cells where the OLS table is NA are outlined, and the legend says how the
    model fills them (its effect's pooling).

    Parameters
    ----------
    fit, ols
        The posterior and the OLS table it reanalyses.
    folder
        The (staging) output folder.
    label
        A name for the figure (an outcome), drawn as its title and before any warning.
    placebo
        The treatment placements are simulated: the figure says it is a placebo.
    check
        The fit's predictive check (:func:`check_counts`) when already computed.
    region
        A region of the grid whose average effect ``grid_summary.csv`` adds
        (:meth:`~bayes_wake.bayes.fit.BayesResult.write_outputs`).

    Returns
    -------
    str or None
        The fit's warning (not converged), as written into the folder.
    """
    from bayes_wake.plotting import plot_surfaces_side_by_side, save_figure

    warning = fit.write_outputs(folder, region)
    shown = _figure_warning(warning, label, placebo)
    ci = round(100 * fit.surface.attrs["ci_prob"])
    alpha = ols.settings.alpha
    fig, _ = plot_surfaces_side_by_side(
        ols.surface, fit.surface, left_value="estimate", right_value="mean",
        left_title=f"OLS (matched wake analysis)\nhatched: p > {alpha:g}",
        right_title=f"Bayesian posterior mean ({fit.spec.name})\nhatched: {ci}% interval "
                    "includes 0",
        t_unit=ols.cube_attrs.get("t_unit", "days"), alpha=alpha, warning=shown,
        filled_label=_FILLED_BY[fit.spec.effect.pooling])
    if shown is None and label:
        fig.suptitle(label, fontsize=12, fontweight="bold")
    save_figure(fig, Path(folder) / "comparison.png")
    write_predictive_check(fit, folder, check=check)
    return warning


def _figure_warning(warning: str | None, label: str | None, placebo: bool) -> str | None:
    """The banner of a figure: the placebo notice and ``warning``, after ``label``."""
    shown = warning
    if placebo:
        shown = "SIMULATED PROJECTS, a placebo, not a finding" + (f" | {warning}" if warning
                                                                   else "")
    if shown and label:
        shown = f"{label}: {shown}"
    return shown


def check_counts(fit: BayesResult) -> tuple[pd.DataFrame, str] | None:
    """The posterior predictive check of a model of the wake counts
    (:func:`bayes_wake.bayes.ppc.predictive_check`, seeded by the spec's sampler seed): its
    table and one-line verdict; None for a model that is not of the counts."""
    from bayes_wake.bayes.ppc import predictive_check

    if fit.count_data is None:
        return None
    return predictive_check(fit, seed=fit.spec.sampler.seed)


def write_predictive_check(fit: BayesResult, folder: str | Path, *,
                           check: tuple[pd.DataFrame, str] | None = None) -> str | None:
    """Write ``ppc.csv`` and ``ppc.png`` (:mod:`bayes_wake.bayes.ppc`) for a model of the
    wake counts and keep its one-line verdict in ``fit.surface.attrs["ppc_verdict"]``.

    Parameters
    ----------
    fit
        The fit.
    folder
        The (staging) output folder.
    check
        Its check (:func:`check_counts`) when already computed; else computed here.

    Returns
    -------
    str or None
        The verdict; None for a model that is not of the counts (nothing written).
    """
    from bayes_wake.io.artefacts import write_table
    from bayes_wake.plotting import plot_predictive_check, save_figure

    if check is None:
        check = check_counts(fit)
    if check is None:
        return None
    table, verdict = check
    write_table(table, Path(folder) / "ppc.csv")
    unit = fit.surface.attrs.get("t_unit", "days")
    save_figure(plot_predictive_check(table, title=verdict, t_unit=unit),
                Path(folder) / "ppc.png")
    fit.surface.attrs["ppc_verdict"] = verdict
    return verdict


def _loo(fit: BayesResult):
    """PSIS-LOO of a count model, a wake's whole count vector (CEM-weighted) left out."""
    import arviz as az
    import numpy as np
    import xarray as xr

    from bayes_wake.bayes.count_model import pointwise_loglik

    posterior = fit.idata.posterior.to_dataset()
    loglik = pointwise_loglik(posterior, fit.count_data)
    shape = (posterior.sizes["chain"], posterior.sizes["draw"], loglik.shape[1])
    tree = xr.DataTree.from_dict({
        "posterior": posterior[["baseline"]],
        "log_likelihood": xr.Dataset({"counts": (("chain", "draw", "wake"),
                                                 loglik.reshape(shape))})})
    return tree, az.loo(tree, pointwise=True), np.asarray(fit.count_data.event)


def loo_table(fits: dict[str, BayesResult]) -> tuple[pd.DataFrame, str]:
    """PSIS-LOO of count models fitted to the same wakes, compared (ArviZ's ``compare``),
    with their Pareto-k diagnostics.

    Parameters
    ----------
    fits
        Name to fit; every fit a model of the wake counts (``fit.count_data`` set) on the
        same matched wakes, so the likelihoods are of the same data.

    Returns
    -------
    table, sentence
        One row per model: ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``, ``dse``,
        ``weight``, ``pareto_k_max``, ``pareto_k_bad`` (wakes with k > 0.7); and one line
        naming the preferred model.
    """
    import arviz as az

    trees, rows = {}, {}
    events = None
    for name, fit in fits.items():
        if fit.count_data is None:
            raise SettingsError(f"{name} is not a model of the wake counts: its likelihood "
                                "is not comparable by LOO")
        trees[name], loo, event = _loo(fit)
        if events is not None and not np.array_equal(events, event):
            raise SettingsError("LOO compares models of the same wakes; these differ")
        events = event
        k = np.asarray(loo.pareto_k)
        rows[name] = {"pareto_k_max": float(np.nanmax(k)), "pareto_k_bad": int((k > 0.7).sum()),
                      "wakes": len(k)}
    compared = az.compare(trees).reset_index().rename(columns={"index": "model"})
    extra = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model").reset_index()
    table = compared.merge(extra, on="model")
    table = table.rename(columns={"elpd": "elpd_loo", "p": "p_loo"})
    best = table.iloc[0]
    runner = table.iloc[1] if len(table) > 1 else None
    sentence = f"PSIS-LOO prefers {best['model']}" + (
        f" over {runner['model']} by {-runner['elpd_diff']:.1f} (se {runner['dse']:.1f})"
        if runner is not None else "")
    bad = int(table["pareto_k_bad"].sum())
    sentence += (f"; {bad} wake(s) with Pareto k > 0.7 (LOO unreliable for them)" if bad
                 else "; every Pareto k <= 0.7")
    return table, sentence


def compare_models(fit: BayesResult, other: BayesResult,
                   ols: MWAResult) -> tuple[pd.DataFrame, str]:
    """Two fits of the same OLS table compared: per model its surface's mean RMSE distance to
    the OLS table and whether it converged and, for two models of the wake counts, PSIS-LOO
    with Pareto k (:func:`loo_table`).

    Returns
    -------
    table, sentence
        The ``model_comparison.csv`` table and one line: LOO's preference, or why LOO was
        not computed.
    """
    estimate = ols.surface["estimate"].transpose("window", "radius").to_numpy()
    rows = [{"model": f.spec.name, "estimand": f.spec.estimand,
             "rms_distance_to_ols": float(np.sqrt(np.nanmean(
                 (f.surface["mean"].transpose("window", "radius").to_numpy() - estimate) ** 2))),
             "converged": int(f.diagnostics.converged)} for f in (fit, other)]
    table = pd.DataFrame(rows)
    if fit.count_data is None or other.count_data is None:
        others = ", ".join(f.spec.name for f in (fit, other) if f.count_data is None)
        sentence = (f"LOO: not computed ({others} is not a model of the wake counts: the "
                    "likelihoods are of different data)")
    else:
        loo, sentence = loo_table({fit.spec.name: fit, other.spec.name: other})
        table = table.merge(loo, on="model")
    return table, sentence


def write_model_comparison(fit: BayesResult, other: BayesResult, ols: MWAResult,
                           folder: str | Path, *,
                           comparison: tuple[pd.DataFrame, str] | None = None,
                           label: str | None = None, placebo: bool = False) -> str:
    """Write ``compare_surfaces.png`` (this fit | the other) and ``model_comparison.csv``
    (:func:`compare_models`, computed here unless given as ``comparison``). ``label`` and
    ``placebo`` mark the figure as :func:`write_beside` marks its own; a fit that did not
    converge is named in its banner. Returns the comparison's line to print."""
    from bayes_wake.io.artefacts import write_table
    from bayes_wake.plotting import plot_surfaces_side_by_side, save_figure

    unconverged = [f.spec.name for f in (fit, other) if not f.diagnostics.converged]
    shown = _figure_warning(
        f"NOT CONVERGED: {', '.join(unconverged)}" if unconverged else None, label, placebo)
    fig, _ = plot_surfaces_side_by_side(
        fit.surface, other.surface, left_value="mean", right_value="mean",
        left_title=f"posterior mean ({fit.spec.name})",
        right_title=f"posterior mean ({other.spec.name})",
        t_unit=ols.cube_attrs.get("t_unit", "days"), alpha=ols.settings.alpha, warning=shown)
    if shown is None and label:
        fig.suptitle(label, fontsize=12, fontweight="bold")
    save_figure(fig, Path(folder) / "compare_surfaces.png")
    table, sentence = comparison if comparison is not None else compare_models(fit, other, ols)
    write_table(table, Path(folder) / "model_comparison.csv")
    return sentence


def lead_surface_text(lead: BayesResult, fit: BayesResult) -> tuple[str, bool]:
    """The pre-trend surface in one sentence, and whether it warns: in how many cells the
    lead's interval excludes 0 (a placement difference before any treatment) beside the
    effect's, a warning above :data:`~bayes_wake.mwa.analysis.PRETREND_SHARE` of the
    cells."""
    from bayes_wake.mwa.analysis import PRETREND_SHARE

    def clear(surface) -> tuple[int, int, pd.Series]:
        frame = surface[["ci_lower", "ci_upper"]].to_dataframe().dropna()
        hit = (frame["ci_lower"] > 0) | (frame["ci_upper"] < 0)
        return int(hit.sum()), len(frame), frame.loc[hit, "ci_lower"] > 0

    n, cells, positive = clear(lead.surface)
    k, _, _ = clear(fit.surface)
    ci = round(100 * lead.surface.attrs["ci_prob"])
    side = "" if not n else (" (all positive)" if positive.all() else
                             " (all negative)" if not positive.any() else "")
    text = (f"pre-trend surface ({lead.spec.name}, the same model one period earlier, lead vs "
            f"pre): its {ci}% interval excludes 0 in {n} of {counted(cells, 'cell')}{side}, "
            f"the effect's in {k}")
    warn = n > PRETREND_SHARE * cells
    if warn:
        text += (": treated and control places already differed before any treatment, and "
                 "the effect surface carries that difference (lead_surface.csv, "
                 "pretrend_surface.png)")
    else:
        text += " (lead_surface.csv, pretrend_surface.png)"
    return text, warn


def write_lead_surface(fit: BayesResult, lead: BayesResult, ols: MWAResult,
                       folder: str | Path, *, label: str | None = None,
                       placebo: bool = False) -> tuple[str, bool]:
    """Write ``lead_surface.csv`` (the pre-trend surface's table, as ``effect_surface.csv``)
    and ``pretrend_surface.png`` (the effect's posterior mean | the lead's, on one colour
    scale, each hatched where its interval includes 0); returns
    :func:`lead_surface_text`."""
    from bayes_wake.io.artefacts import write_table
    from bayes_wake.plotting import plot_surfaces_side_by_side, save_figure

    write_table(lead.table(), Path(folder) / "lead_surface.csv")
    unconverged = [name for name, f in (("effect", fit), ("lead", lead))
                   if not f.diagnostics.converged]
    shown = _figure_warning(f"NOT CONVERGED: {', '.join(unconverged)}" if unconverged
                            else None, label, placebo)
    ci = round(100 * lead.surface.attrs["ci_prob"])
    fig, _ = plot_surfaces_side_by_side(
        fit.surface, lead.surface, left_value="mean", right_value="mean",
        left_title=f"effect: posterior mean ({fit.spec.name})\nhatched: {ci}% interval "
                   "includes 0",
        right_title="pre-trend placebo (lead vs pre): posterior mean\nhatched: "
                    f"{ci}% interval includes 0; 0 where the places evolved alike",
        t_unit=ols.cube_attrs.get("t_unit", "days"), alpha=ols.settings.alpha, warning=shown,
        filled_label="the lead's regression is estimable where the effect's is NA")
    if shown is None and label:
        fig.suptitle(label, fontsize=12, fontweight="bold")
    save_figure(fig, Path(folder) / "pretrend_surface.png")
    return lead_surface_text(lead, fit)


def shrinkage_warning(fit: BayesResult) -> str | None:
    """One sentence naming the cells where pooling pulled a clear estimate toward 0, or None.

    Reads the surface's ``pulled_to_zero`` and ``shift_se`` columns (count-scale fits,
    :func:`bayes_wake.bayes.did_surface.shrinkage`); other models have none.
    """
    surface = fit.surface
    if "pulled_to_zero" not in surface:
        return None
    frame = surface[["pulled_to_zero", "shift_se", "ols_estimate", "mean"]].to_dataframe()
    pulled = frame[frame["pulled_to_zero"] == 1]
    if pulled.empty:
        return None
    unit = fit.surface.attrs.get("t_unit", "days")
    cells = ", ".join(f"{t:g} {unit} x {s:g} km ({row['ols_estimate']:.3f} -> "
                      f"{row['mean']:.3f})" for (t, s), row in pulled.head(4).iterrows())
    more = f" and {len(pulled) - 4} more" if len(pulled) > 4 else ""
    return (f"pooling moved {len(pulled)} clear estimate{'s' if len(pulled) > 1 else ''} "
            f"(|t| > {CLEAR_T:g}) more than {PULL_SE:g} standard errors toward 0: {cells}"
            f"{more}. Read those cells from the OLS table or the unpooled fit "
            "(fit --spec unpooled_did); shift_se in effect_surface.csv gives every cell.")


def grid_average_text(fit: BayesResult, region: GridRegion | None = None) -> str:
    """The grid-level summary (:meth:`BayesResult.grid_summary`, ``grid_summary.csv``) as a
    clause: the average effect over the grid's cells with an estimate (or ``region``'s), its
    interval at the fit's level and P(average > 0); "" when no cell has an estimate."""
    row = fit.grid_summary(region).iloc[0]
    if not row["cells"]:
        return ""
    where = "the grid's" if region is None else f"the {row['region']} region's"
    return (f"average effect over {where} {row['cells']} cells with an estimate: "
            f"{row['mean']:.3f} extra events per treated wake, "
            f"{round(100 * row['ci_prob'])}% interval [{row['ci_lower']:.3f}, "
            f"{row['ci_upper']:.3f}], P(average > 0) = {row['prob_positive']:.2f}")


def count_model_summary(fit: BayesResult) -> str | None:
    """One line for a model of the wake counts: its covariate coefficients on the wakes'
    baseline (log rate per standard deviation) and its overdispersion (1 / frailty shape),
    posterior means with the fit's default interval; None for other models."""
    import arviz as az

    if fit.count_data is None:
        return None
    posterior = fit.idata.posterior
    prob = az.rcParams["stats.ci_prob"]
    parts = []

    def summary(values) -> str:
        low, high = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2])
        return f"{values.mean():.2f} [{low:.2f}, {high:.2f}]"

    if "covariate_coef" in posterior:
        for name in posterior["covariate_coef"]["covariate"].to_numpy():
            values = posterior["covariate_coef"].sel(covariate=name).to_numpy().ravel()
            parts.append(f"{name} {summary(values)}")
    if "frailty_shape" in posterior:
        parts.append("overdispersion (1 / frailty shape) "
                     + summary(1 / posterior["frailty_shape"].to_numpy().ravel()))
    return (f"{fit.spec.name}, {100 * prob:g}% intervals: covariates on the log baseline rate "
            "per sd: " + "; ".join(parts)) if parts else None
