"""Weighted least squares as R's ``lm`` + ``summary.lm`` report it, with optional robust errors.

Written by hand (statsmodels is the test oracle) because the MWA table must follow R's rules to
the letter: a coefficient is aliased when the QR decomposition finds its column linearly
dependent on the earlier ones (tolerance 1e-7), and R's adjusted R-squared is weighted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

__all__ = ["OLSFit", "weighted_ols", "VCov"]

VCov = Literal["classical", "HC1", "HC3"]
_QR_TOL = 1e-7  # lm's default tol


@dataclass(frozen=True)
class OLSFit:
    """One weighted least-squares fit.

    Attributes
    ----------
    coef, std_error, pvalue
        Per column of the design matrix (NaN when the fit is not defined).
    adj_r_squared
        R's weighted adjusted R-squared.
    n, df_resid
        Observations with positive weight and residual degrees of freedom.
    aliased
        True if a column is linearly dependent on the earlier ones (R drops it, and MWA then
        reports the whole cell as NA).
    """

    coef: np.ndarray
    std_error: np.ndarray
    pvalue: np.ndarray
    adj_r_squared: float
    n: int
    df_resid: int
    aliased: bool

    @property
    def defined(self) -> bool:
        """True when R would report the last coefficient (no aliasing, finite p-value)."""
        return (not self.aliased) and bool(np.isfinite(self.pvalue[-1]))


def _aliased(xw: np.ndarray) -> bool:
    """Sequential Gram-Schmidt check of column dependence, as LINPACK dqrdc2 with lm's tol."""
    basis: list[np.ndarray] = []
    for j in range(xw.shape[1]):
        col = xw[:, j].astype(float)
        norm0 = np.linalg.norm(col)
        resid = col.copy()
        for q in basis:
            resid -= q * (q @ resid)
        norm = np.linalg.norm(resid)
        if norm0 == 0 or norm < _QR_TOL * norm0:
            return True
        basis.append(resid / norm)
    return False


def weighted_ols(
    y: np.ndarray,
    x: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    vcov: VCov = "classical",
) -> OLSFit:
    """Fit ``y ~ x`` by weighted least squares (``x`` holds the intercept column if wanted).

    Parameters
    ----------
    y
        Outcome, shape (n,).
    x
        Design matrix, shape (n, p); the first column is the intercept for R's R-squared.
    weights
        Case weights (R's ``lm(weights = )``); rows with weight 0 are left out.
    vcov
        ``classical`` (R's ``summary.lm``), or heteroskedasticity-robust ``HC1`` or ``HC3``.

    Returns
    -------
    OLSFit
        Coefficients, standard errors, two-sided t-test p-values (df = n - p) and R's
        adjusted R-squared.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    keep = w > 0
    y, x, w = y[keep], x[keep], w[keep]
    n, p = x.shape
    nan = np.full(p, np.nan)
    if n == 0 or _aliased(x * np.sqrt(w)[:, None]):
        return OLSFit(nan, nan, nan, float("nan"), n, n - p, aliased=n > 0)
    sw = np.sqrt(w)
    xw, yw = x * sw[:, None], y * sw
    q, r = np.linalg.qr(xw)
    coef = np.linalg.solve(r, q.T @ yw)
    fitted = x @ coef
    resid = y - fitted
    rss = float(np.sum(w * resid**2))
    df = n - p
    r_inv = np.linalg.inv(r)
    bread = r_inv @ r_inv.T  # (X'WX)^-1
    with np.errstate(divide="ignore", invalid="ignore"):
        if vcov == "classical":
            cov = bread * (rss / df if df > 0 else np.nan)
        else:
            e = resid * sw  # residuals of the transformed (weighted) problem
            if vcov == "HC1":
                scale = e**2 * (n / df if df > 0 else np.nan)
            elif vcov == "HC3":
                leverage = np.sum((xw @ r_inv) ** 2, axis=1)
                scale = (e / (1 - leverage)) ** 2
            else:
                raise ValueError(f"unknown vcov {vcov!r}")
            meat = (xw * scale[:, None]).T @ xw
            cov = bread @ meat @ bread
        se = np.sqrt(np.diag(cov))
        t = coef / se
        pvalue = 2 * stats.t.sf(np.abs(t), df) if df > 0 else nan
        intercept = bool(np.all(x[:, 0] == 1))
        if intercept:
            mean_fit = np.sum(w * fitted) / np.sum(w)
            mss = float(np.sum(w * (fitted - mean_fit) ** 2))
        else:
            mss = float(np.sum(w * fitted**2))
        r2 = mss / (mss + rss) if mss + rss > 0 else np.nan
        adj = 1 - (1 - r2) * ((n - int(intercept)) / df) if df > 0 else np.nan
    return OLSFit(coef, se, np.asarray(pvalue, dtype=float), float(adj), n, df, aliased=False)
