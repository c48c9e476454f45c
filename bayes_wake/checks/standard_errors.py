"""Checks of the observed per-window estimates themselves, without resampling.

:func:`standard_error_check`: how many of the windows significant with classical (R's)
standard errors stay significant with robust ones (heteroskedasticity-consistent,
cluster-robust, Conley; counted by :func:`robust_survival`, as in the Sauter report).
:func:`multiplicity_check`: how many survive Holm's and Benjamini-Hochberg's corrections over
the window grid
(:mod:`bayes_wake.mwa.multiplicity`), with the Westfall-Young p-values of the label
permutations beside them and the estimate surface hatched where Holm's correction removes a
window. Both return a :class:`~bayes_wake.checks.result.CheckResult`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.checks.result import CheckResult
from bayes_wake.io.tables import counted
from bayes_wake.mwa.analysis import ROBUST_ERRORS, MWASettings, standard_error_table
from bayes_wake.mwa.multiplicity import MultiplicitySummary

__all__ = ["multiplicity_check", "robust_survival", "standard_error_check"]

#: Captions of the multiplicity check's per-window table and estimate surface.
_WINDOWS_CAPTION = ("Per window: unadjusted, Holm, Benjamini-Hochberg and (from the label "
                    "permutations) Westfall-Young max-T adjusted p-values")
_SURFACE_CAPTION = ("Matched wake analysis estimate per window (events per wake); cells that "
                    "do not survive Holm's correction are hatched.")


def standard_error_check(cube: xr.Dataset, mwa: MWASettings,
                         choices: Sequence[str] = ROBUST_ERRORS) -> CheckResult:
    """How many classical significant windows stay significant with robust standard errors.

    Parameters
    ----------
    cube
        The wake cube.
    mwa
        The matched wake analysis settings (``vcov`` is ignored; ``alpha`` is the level).
    choices
        The robust standard-error choices (:func:`bayes_wake.core.regression.parse_vcov`).

    Returns
    -------
    CheckResult
        ``standard_errors``: per choice (``classical`` first) the windows significant at
        ``alpha`` with classical errors and with that choice too; its cells are the
        per-window estimates (events per wake) with every choice's standard error and
        p-value.
    """
    cells = standard_error_table(cube, mwa, ("classical", *choices))
    classical = cells["pvalue_classical"] <= mwa.alpha
    surviving = list(robust_survival(cells, mwa.alpha, choices).values())
    table = pd.DataFrame({"standard_errors": ["classical", *choices],
                          "windows_significant": [int(classical.sum()), *surviving]})
    parts = [f"{n} with {c}" for c, n in zip(choices, surviving, strict=True)]
    sentence = (f"Of {counted(int(classical.sum()), 'window')} significant at p <= "
                f"{mwa.alpha:g} with "
                f"classical (R's) standard errors, which assume independent wakes and overstate "
                f"the evidence on clustered count data, " + ", ".join(parts)
                + " stay significant.")
    return CheckResult("standard_errors", "Robust standard errors", table, sentence,
                       cells=cells)


def robust_survival(cells: pd.DataFrame, alpha: float,
                    choices: Sequence[str] = ROBUST_ERRORS) -> dict[str, int]:
    """Does a classical significant window survive robust errors: per robust choice, how many
    windows significant at ``alpha`` with classical (R's) standard errors stay significant
    with that choice too (a window significant only with the robust choice is not counted).

    Parameters
    ----------
    cells
        Per window, ``pvalue_classical`` and ``pvalue_<choice>`` for each choice
        (:func:`bayes_wake.mwa.analysis.standard_error_table` with ``classical`` among them).
    alpha
        The significance level.
    choices
        The robust standard-error choices.

    Returns
    -------
    dict
        Choice -> number of surviving windows, in the order of ``choices``.
    """
    classical = cells["pvalue_classical"] <= alpha
    return {c: int((classical & (cells[f"pvalue_{c}"] <= alpha)).sum()) for c in choices}


def multiplicity_check(multiplicity: MultiplicitySummary, surface: xr.Dataset, *,
                       t_unit: str = "days", westfall_young: np.ndarray | None = None
                       ) -> CheckResult:
    """How many significant windows survive the multiplicity corrections over the grid.

    Parameters
    ----------
    multiplicity
        The Holm and Benjamini-Hochberg summary of the estimates table.
    surface
        The matched wake analysis surface (``estimate`` in events per wake over ``window``,
        in ``t_unit``, and ``radius``, km), in the row order of the estimates table.
    t_unit
        The unit of the temporal windows.
    westfall_young
        Westfall-Young max-T adjusted p-value per cell, shape (windows, radii), from the
        label permutations; None leaves the column out.

    Returns
    -------
    CheckResult
        ``multiplicity``: the survivors per method as its table, the per-window p-values as
        its cells (also shown in a report) and the estimate surface hatched where a window
        does not survive Holm's correction.
    """
    from bayes_wake.plotting import SurfaceStyle, plot_effect_surface

    cells = multiplicity.table.copy()
    if westfall_young is not None:
        cells["p_westfall_young"] = np.asarray(westfall_young).ravel()
    holm = xr.DataArray(
        multiplicity.table["survives_holm"].to_numpy().reshape(
            surface.sizes["window"], surface.sizes["radius"]),
        dims=("window", "radius"),
        coords={"window": surface["window"], "radius": surface["radius"]})
    figure, _ = plot_effect_surface(surface, value="estimate", significant=holm, t_unit=t_unit,
                                    alpha=multiplicity.alpha,
                                    title="OLS estimates; hatched: not significant after Holm",
                                    style=SurfaceStyle(hatch_label="does not survive Holm"))
    return CheckResult("multiplicity", "Multiplicity over the window grid",
                       multiplicity.summary(), multiplicity.sentence(),
                       figures={_SURFACE_CAPTION: figure}, cells=cells,
                       tables={_WINDOWS_CAPTION: cells}, digits=4)
