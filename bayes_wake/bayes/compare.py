"""The Bayesian surface fitted and written beside the OLS table it reanalyses.

One path for every fit that reanalyses an OLS table: the model is fitted with the analysis's
match columns, weights, TCM, SUTVA rule and formula (whether it matches at all is the spec's
``matching``) (:func:`fit_matched`: the commands ``fit``, ``demo`` and ``sauter``, and the
sensitivity, recovery and calibration checks), and its files are written with the
side-by-side figure ``comparison.png`` (:func:`write_beside`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

from bayes_wake.bayes.did_surface import CLEAR_T, PULL_SE
from bayes_wake.bayes.fit import BayesResult, fit_surface
from bayes_wake.bayes.spec import ModelSpec
from bayes_wake.errors import ConvergenceWarning
from bayes_wake.mwa.analysis import MWAResult, MWASettings

__all__ = ["fit_matched", "write_beside", "shrinkage_warning", "grid_average_text"]

# How the posterior has a value in a cell where the OLS table is NA, by the effect's pooling.
_FILLED_BY = {
    "adaptive": "no OLS estimate: pooled from neighbouring windows (the model's adaptive field)",
    "smooth": "no OLS estimate: pooled from neighbouring windows (the model's smoothing)",
    "hierarchical": "no OLS estimate: pooled across all windows (hierarchical prior)",
    "none": "no OLS estimate: this model's prior and wakes alone (no pooling)",
}


def fit_matched(cube, spec: ModelSpec, settings: MWASettings, *, progressbar: bool = False,
                log: Callable[[str], None] | None = None) -> BayesResult:
    """Fit ``spec`` to the cube with the settings of a matched wake analysis.

    Parameters
    ----------
    cube
        The wake cube.
    spec
        The model spec.
    settings
        The analysis's match columns, weights, TCM, SUTVA rule, formula and ``spillover``
        (the exposure terms: the surface is then the direct effect).
    progressbar, log
        As in :func:`~bayes_wake.bayes.fit.fit_surface`.

    Returns
    -------
    BayesResult
        Convergence is the caller's to report (``result.diagnostics``): the sampler's
        :class:`~bayes_wake.errors.ConvergenceWarning` is not raised again here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_surface(cube, spec, match_on=settings.match_on, weighted=settings.weighted,
                           tcm=settings.tcm, delete_sutva=settings.delete_sutva,
                           formula=settings.formula, spillover=settings.spillover,
                           progressbar=progressbar, log=log)


def write_beside(fit: BayesResult, ols: MWAResult, folder: str | Path, *,
                 label: str | None = None, placebo: bool = False) -> str | None:
    """Write the fit's files and ``comparison.png`` (OLS left, posterior mean right).

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

    Returns
    -------
    str or None
        The fit's warning (not converged), as written into the folder.
    """
    from bayes_wake.plotting import plot_surfaces_side_by_side, save_figure

    warning = fit.write_outputs(folder)
    shown = warning
    if placebo:
        shown = "SIMULATED PROJECTS, a placebo, not a finding" + (f" | {warning}" if warning
                                                                   else "")
    if shown and label:
        shown = f"{label}: {shown}"
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
    return warning


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


def grid_average_text(fit: BayesResult) -> str:
    """The grid-level summary (:meth:`BayesResult.grid_summary`, ``grid_summary.csv``) as a
    clause: the average effect over the grid's cells with an estimate, its interval at the
    fit's level and P(average > 0); "" when no cell has an estimate."""
    row = fit.grid_summary().iloc[0]
    if not row["cells"]:
        return ""
    return (f"average effect over the grid's {row['cells']} cells with an estimate: "
            f"{row['mean']:.3f} extra events per treated wake, "
            f"{round(100 * row['ci_prob'])}% interval [{row['ci_lower']:.3f}, "
            f"{row['ci_upper']:.3f}], P(average > 0) = {row['prob_positive']:.2f}")
