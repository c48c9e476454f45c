"""One result type for every sensitivity check: a verdict sentence, its table, its figures.

Every check of this stage returns a :class:`CheckResult`: the robust standard errors and the
multiplicity corrections (:mod:`bayes_wake.checks.standard_errors`), each randomisation test
(:meth:`bayes_wake.checks.randomisation.RandomisationTest.check_result`), each Bayesian check
(:func:`bayes_wake.checks.bayesian.summarise_checks`) and the placebo-placement calibration
(:func:`bayes_wake.checks.calibration.calibration_check`). A report or a command line prints
them all the same way, in one loop; the richer objects behind them (the null draws, the
adjusted p-values, the fits) stay available beside it. Imports: pandas only, so every check
module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["CheckResult"]


@dataclass(frozen=True, eq=False)
class CheckResult:
    """What one sensitivity check found: a sentence, the table behind it, figures.

    Attributes
    ----------
    name : str
        Short key of the check (``standard_errors``, ``multiplicity``, ``labels``,
        ``date_shift``, ``surface``, ``prior``, ..., ``calibration``).
    title : str
        A heading for the check.
    table : pandas.DataFrame
        The short table behind the sentence (may be empty); counts of windows,
        probabilities and p-values in [0, 1], effects in events per wake.
    sentence : str
        The verdict in one plain sentence.
    figures : dict of str to matplotlib.figure.Figure or path
        Caption -> figure (a matplotlib figure, or the path of a PNG file), in report
        order, shown after the tables.
    cells : pandas.DataFrame or None
        Optional per-cell table: one row per (window, radius) cell, ``t_window`` in the time
        unit, ``spat_window`` in km, or per placebo placement and cell.
    caption : str or None
        The caption of ``table`` in a report.
    tables : dict of str to pandas.DataFrame
        Caption -> a further table shown in a report after ``table`` (e.g. a per-cell grid).
    notes : tuple of str
        How the check was made and judged, shown after the figures.
    digits : int
        Decimals of the non-whole numbers in its report tables.
    counts : array-like of bool or None
        Which cells of ``table`` hold counts stored as floats, for a report
        (:meth:`bayes_wake.io.html.HtmlReport.table`: broadcast to rows x columns); None
        takes the float columns of whole numbers as counts.
    """

    name: str
    title: str
    table: pd.DataFrame = field(repr=False)
    sentence: str
    figures: dict[str, Any] = field(default_factory=dict, repr=False)
    cells: pd.DataFrame | None = field(default=None, repr=False)
    caption: str | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    notes: tuple[str, ...] = ()
    digits: int = 3
    counts: Any = field(default=None, repr=False)
