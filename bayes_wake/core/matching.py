"""Coarsened exact matching of wakes, its weights, and the balance diagnostics of R's ``cem``.

R's ``mwa`` calls ``cem::cem`` with its automatic coarsening in every (window, radius) cell
and reports ``cem::imbalance`` before and after matching. This module reproduces both for one
cell; :mod:`bayes_wake.mwa.analysis` loops over the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayes_wake.core.rcompat import (
    nclass_scott,
    nclass_sturges,
    r_cut_right,
    r_pretty,
    r_seq_length_out,
)

__all__ = ["CellMatch", "coarsened_exact_match", "l1_imbalance", "cem_coarsen"]


@dataclass(frozen=True)
class CellMatch:
    """The matching of the wakes of one (window, radius) cell.

    Attributes
    ----------
    stratum
        Stratum number of each wake (0-based; equal numbers share all coarsened values).
    matched
        True for wakes in a stratum holding at least one treated and one control wake.
    weight
        CEM weight: 1 for matched treated wakes, ``(nT_s / nC_s) * (M_C / M_T)`` for matched
        control wakes in stratum s, 0 for unmatched wakes.
    """

    stratum: np.ndarray
    matched: np.ndarray
    weight: np.ndarray

    @property
    def n_matched(self) -> int:
        """Number of matched wakes."""
        return int(self.matched.sum())


def cem_coarsen(x: np.ndarray) -> np.ndarray:
    """Coarsen one variable as ``cem``'s automatic rule does (Sturges' number of breaks).

    ``ceiling(log2(n) + 1)`` break points evenly spaced from min to max, duplicates removed,
    right-closed bins with the lowest value included; a constant variable keeps its value.
    """
    x = np.asarray(x, dtype=float)
    finite = x[~np.isnan(x)]
    if finite.size == 0:
        return x.copy()
    breaks = np.unique(r_seq_length_out(finite.min(), finite.max(), nclass_sturges(len(x))))
    if breaks.size > 1:
        return r_cut_right(x, breaks)
    return x.copy()


def _cells(codes: np.ndarray) -> np.ndarray:
    """Number the unique rows of a code matrix (NaN is a value of its own, as R's paste).

    Each column is first made a dense integer code, then the columns are combined into one
    mixed-radix integer key: far faster than ``np.unique(axis=0)`` on float rows.
    """
    n, p = codes.shape
    if p == 0:
        return np.zeros(n, dtype=np.int64)
    key = np.zeros(n, dtype=np.int64)
    for j in range(p):
        column = np.where(np.isnan(codes[:, j]), np.inf, codes[:, j])
        _, dense = np.unique(column, return_inverse=True)
        levels = int(dense.max()) + 1 if n else 1
        key = key * levels + dense.ravel()
        if j < p - 1 and key.max(initial=0) > 2**40:  # keep the key small: renumber
            _, key = np.unique(key, return_inverse=True)
    _, stratum = np.unique(key, return_inverse=True)
    return stratum.ravel().astype(np.int64)


def coarsened_exact_match(covariates: np.ndarray, treated: np.ndarray) -> CellMatch:
    """Coarsened exact matching with ``cem``'s automatic coarsening.

    Parameters
    ----------
    covariates
        Matching variables, shape (wakes, variables).
    treated
        1 for treatment wakes, 0 for control wakes.

    Returns
    -------
    CellMatch
        Strata, matched flags and weights.
    """
    covariates = np.asarray(covariates, dtype=float).reshape(len(treated), -1)
    treated = np.asarray(treated).astype(bool)
    codes = np.column_stack([cem_coarsen(covariates[:, j]) for j in range(covariates.shape[1])]
                            ) if covariates.shape[1] else np.zeros((len(treated), 0))
    stratum = _cells(codes)
    n_strata = int(stratum.max()) + 1 if len(stratum) else 0
    n_t = np.bincount(stratum, weights=treated, minlength=n_strata)
    n_c = np.bincount(stratum, weights=~treated, minlength=n_strata)
    matched = ((n_t > 0) & (n_c > 0))[stratum]
    weight = np.zeros(len(treated))
    m_t = int((matched & treated).sum())
    m_c = int((matched & ~treated).sum())
    if m_t and m_c:
        control_w = (n_t / np.where(n_c > 0, n_c, 1)) * (m_c / m_t)
        weight = np.where(matched & ~treated, control_w[stratum], 0.0)
        weight[matched & treated] = 1.0
    return CellMatch(stratum=stratum, matched=matched, weight=weight)


def l1_imbalance(covariates: np.ndarray, treated: np.ndarray) -> tuple[float, float]:
    """Multivariate imbalance L1 and local common support, as ``cem::imbalance`` computes them.

    Cells come from Scott-rule break points per variable
    (``pretty(range(x), n = nclass.scott(x), min.n = 1)``).

    Parameters
    ----------
    covariates
        Variables, shape (wakes, variables).
    treated
        1 for treatment wakes, 0 for control wakes.

    Returns
    -------
    tuple of float
        ``L1`` = 1/2 * sum over cells of |treated share - control share|, in [0, 1]; and the
        common support, 100 * cells holding both groups / occupied cells. NaN for no wakes.
    """
    treated = np.asarray(treated).astype(bool)
    if len(treated) == 0:  # e.g. a cell where matching kept no wake
        return float("nan"), float("nan")
    covariates = np.asarray(covariates, dtype=float).reshape(len(treated), -1)
    codes = []
    for j in range(covariates.shape[1]):
        x = covariates[:, j]
        finite = x[~np.isnan(x)]
        breaks = np.unique(r_pretty(finite.min(), finite.max(), nclass_scott(x), 1))
        codes.append(r_cut_right(x, breaks) if breaks.size > 1 else x)
    cell = _cells(np.column_stack(codes) if codes else np.zeros((len(treated), 0)))
    n_cells = int(cell.max()) + 1
    n_t = np.bincount(cell, weights=treated, minlength=n_cells)
    n_c = np.bincount(cell, weights=~treated, minlength=n_cells)
    groups = [n for n in (n_t, n_c) if n.sum() > 0]
    shares = [n / n.sum() for n in groups]
    if len(shares) == 2:
        l1 = float(np.abs(shares[0] - shares[1]).sum() / 2)
    else:
        l1 = 0.0
    occupied = (n_t + n_c) > 0
    # cem multiplies the group counts of a cell; with one group present that is its count.
    both = ((n_t > 0) & (n_c > 0)) if len(groups) == 2 else occupied
    support = 100.0 * float(both.sum()) / float(occupied.sum())
    return l1, support
