"""Multiplicity over the window grid: Holm and Benjamini-Hochberg adjusted p-values.

The paper reads significance window by window: 30 overlapping (window, radius) cells, each
tested at p <= .05 with no correction. This module adjusts the p-values of an MWA estimates
table for the number of windows tested and counts how many significant windows survive.

The adjustments follow R's ``p.adjust`` exactly (``"holm"`` and ``"BH"``), including its rule
for missing values: a window whose p-value is NA (R's NA rule for an aliased or undefined fit)
is left out of the family, and its adjusted p-value is NA. Written by hand rather than taken
from statsmodels so the NA rule is R's; statsmodels' ``multipletests`` is the test oracle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_wake.errors import SettingsError
from bayes_wake.io.tables import counted

__all__ = [
    "METHODS",
    "MultiplicitySummary",
    "adjust_pvalues",
    "benjamini_hochberg",
    "holm",
    "summarise_multiplicity",
]

#: Adjustment methods: column suffix -> plain name.
METHODS = {"holm": "Holm", "bh": "Benjamini-Hochberg"}


def _as_pvalues(pvalues) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float).ravel()
    bad = np.isfinite(p) & ((p < 0) | (p > 1))
    if bad.any():
        raise SettingsError(f"p-values must lie in [0, 1], got {p[bad][0]!r}")
    return p


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error rate), as R's ``p.adjust``.

    Parameters
    ----------
    pvalues
        P-values, any shape; NaN (R's NA) is left out of the family and stays NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, same length (flattened), in [0, 1].
    """
    p = _as_pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = len(defined)
    if m == 0:
        return out
    order = np.argsort(p[defined], kind="stable")
    ranked = p[defined][order] * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked))
    out[defined[order]] = adjusted
    return out


def benjamini_hochberg(pvalues) -> np.ndarray:
    """Benjamini-Hochberg step-up adjusted p-values (false discovery rate), as R's
    ``p.adjust(method = "BH")``.

    Parameters
    ----------
    pvalues
        P-values, any shape; NaN (R's NA) is left out of the family and stays NaN.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (q-values), same length (flattened), in [0, 1].
    """
    p = _as_pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    m = len(defined)
    if m == 0:
        return out
    order = np.argsort(p[defined], kind="stable")[::-1]  # largest first
    ranked = p[defined][order] * m / (m - np.arange(m))
    adjusted = np.minimum(1.0, np.minimum.accumulate(ranked))
    out[defined[order]] = adjusted
    return out


def adjust_pvalues(estimates: pd.DataFrame, *, alpha: float = 0.05) -> pd.DataFrame:
    """Add Holm and Benjamini-Hochberg adjusted p-values to an MWA estimates table.

    Parameters
    ----------
    estimates
        R's estimates table (:attr:`bayes_wake.mwa.analysis.MWAResult.estimates`): one row per
        (``t_window``, ``spat_window``) with ``estimate`` and ``pvalue``.
    alpha
        Significance level.

    Returns
    -------
    pandas.DataFrame
        ``t_window``, ``spat_window``, ``estimate``, ``pvalue``, ``p_holm``, ``p_bh`` and the
        flags ``significant``, ``survives_holm``, ``survives_bh`` (False where the p-value is
        NA), in the table's row order.
    """
    if not 0 < alpha < 1:
        raise SettingsError(f"alpha must be in (0, 1), got {alpha}")
    missing = [c for c in ("t_window", "spat_window", "estimate", "pvalue")
               if c not in estimates.columns]
    if missing:
        raise SettingsError(f"the estimates table has no column(s) {missing}")
    p = estimates["pvalue"].to_numpy(dtype=float)
    table = estimates[["t_window", "spat_window", "estimate", "pvalue"]].copy()
    table["p_holm"] = holm(p)
    table["p_bh"] = benjamini_hochberg(p)
    with np.errstate(invalid="ignore"):
        table["significant"] = p <= alpha
        table["survives_holm"] = table["p_holm"].to_numpy() <= alpha
        table["survives_bh"] = table["p_bh"].to_numpy() <= alpha
    return table.reset_index(drop=True)


@dataclass(frozen=True)
class MultiplicitySummary:
    """How many significant windows survive each adjustment.

    Attributes
    ----------
    table
        The per-window table of :func:`adjust_pvalues`.
    alpha
        Significance level.
    n_windows, n_defined
        Windows in the grid, and windows with a p-value (the family size).
    n_significant, n_holm, n_bh
        Windows with unadjusted p <= alpha, and those surviving Holm and Benjamini-Hochberg.
    """

    table: pd.DataFrame
    alpha: float
    n_windows: int
    n_defined: int
    n_significant: int
    n_holm: int
    n_bh: int

    def summary(self) -> pd.DataFrame:
        """A short table: one row per method with the number of surviving windows."""
        return pd.DataFrame({
            "method": ["unadjusted", "Holm (family-wise error)",
                       "Benjamini-Hochberg (false discovery rate)"],
            "windows_significant": [self.n_significant, self.n_holm, self.n_bh],
            "windows_tested": [self.n_defined] * 3,
        })

    def sentence(self) -> str:
        """The verdict in one plain sentence."""
        level = _level(self.alpha)
        na = (f" ({self.n_windows - self.n_defined} of {counted(self.n_windows, 'window')} "
              "have no estimate)" if self.n_defined < self.n_windows else "")
        if self.n_significant == 0:
            return (f"No window is significant at p <= {level}{na}, so there is nothing for a "
                    "multiplicity correction to remove.")
        return (f"Of {counted(self.n_significant, 'window')} significant at p <= {level}, "
                f"{self.n_holm} survive{'s' if self.n_holm == 1 else ''} Holm's correction and "
                f"{self.n_bh} the Benjamini-Hochberg correction over the "
                f"{counted(self.n_defined, 'window')} tested{na}.")


def summarise_multiplicity(estimates: pd.DataFrame, *, alpha: float = 0.05
                           ) -> MultiplicitySummary:
    """Adjust an MWA estimates table and count the surviving significant windows.

    Parameters
    ----------
    estimates
        R's estimates table.
    alpha
        Significance level.

    Returns
    -------
    MultiplicitySummary
    """
    table = adjust_pvalues(estimates, alpha=alpha)
    return MultiplicitySummary(
        table=table, alpha=alpha, n_windows=len(table),
        n_defined=int(table["pvalue"].notna().sum()),
        n_significant=int(table["significant"].sum()),
        n_holm=int(table["survives_holm"].sum()), n_bh=int(table["survives_bh"].sum()))


def _level(alpha: float) -> str:
    """R-style level: 0.05 -> '.05'."""
    text = f"{alpha:g}"
    return text[1:] if text.startswith("0.") else text
