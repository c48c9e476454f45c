"""Weighted least squares as R's ``lm`` + ``summary.lm`` report it, with the robust errors the
field uses.

Written by hand (statsmodels is the test oracle) because the MWA table must follow R's rules to
the letter: a coefficient is aliased when the QR decomposition finds its column linearly
dependent on the earlier ones (tolerance 1e-7), and R's adjusted R-squared is weighted.

Standard errors (:class:`VCovSpec`): ``classical`` (R's ``summary.lm``; it assumes
independent, homoskedastic wakes, which clustered count data are not, so its p-values are too
small), ``HC1`` and ``HC3`` (heteroskedasticity-robust), ``CR1:COLUMN`` (cluster-robust by an
event column, Stata's small-sample factor, t with G - 1 df) and ``conley:KM[:DAYS]``
(Conley's spatial HAC: scores of wakes whose anchors lie within KM km, and optionally DAYS
days, of each other are correlated; uniform kernel, normal p-values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse, stats

from bayes_wake.errors import SettingsError

__all__ = ["OLSFit", "weighted_ols", "VCov", "VCovSpec", "parse_vcov", "conley_kernel",
           "coefficient_influence"]

VCov = Literal["classical", "HC1", "HC3"]
_QR_TOL = 1e-7  # lm's default tol
_KINDS = ("classical", "HC1", "HC3", "CR1", "conley")


@dataclass(frozen=True)
class VCovSpec:
    """A choice of standard errors.

    Attributes
    ----------
    kind
        ``classical``, ``HC1``, ``HC3``, ``CR1`` or ``conley``.
    column
        ``CR1``: the event column whose values are the clusters.
    km, days
        ``conley``: the distance cutoff (km) and the optional time cutoff (days).
    """

    kind: str = "classical"
    column: str | None = None
    km: float | None = None
    days: float | None = None

    def __str__(self) -> str:
        if self.kind == "CR1":
            return f"CR1:{self.column}"
        if self.kind == "conley":
            return f"conley:{self.km:g}" + (f":{self.days:g}" if self.days is not None else "")
        return self.kind

    @property
    def label(self) -> str:
        """Words for tables and reports."""
        if self.kind == "CR1":
            return f"cluster-robust by {self.column}"
        if self.kind == "conley":
            return f"Conley spatial HAC, {self.km:g} km" + (
                f" and {self.days:g} days" if self.days is not None else "")
        return {"classical": "classical (R's lm)"}.get(self.kind, self.kind)


def parse_vcov(text: "str | VCovSpec") -> VCovSpec:
    """Parse ``classical``, ``HC1``, ``HC3``, ``CR1:COLUMN`` or ``conley:KM[:DAYS]``.

    Raises
    ------
    SettingsError
        For anything else, saying what is accepted.
    """
    if isinstance(text, VCovSpec):
        return text
    parts = str(text).strip().split(":")
    kind = {k.lower(): k for k in _KINDS}.get(parts[0].lower())
    usage = ("use classical, HC1, HC3, CR1:COLUMN (cluster by an event column) or "
             "conley:KM[:DAYS] (spatial HAC with a cutoff in km, optionally days)")
    if kind is None:
        raise SettingsError(f"unknown standard errors {text!r}; {usage}")
    if kind == "CR1":
        if len(parts) != 2 or not parts[1]:
            raise SettingsError(f"{text!r}: CR1 needs the cluster column, e.g. CR1:site_id")
        return VCovSpec("CR1", column=parts[1])
    if kind == "conley":
        try:
            cut = [float(p) for p in parts[1:]]
        except ValueError:
            cut = []
        if len(cut) not in (1, 2) or not all(np.isfinite(c) and c > 0 for c in cut):
            raise SettingsError(f"{text!r}: conley needs a cutoff in km > 0 and optionally "
                                "days > 0, e.g. conley:25 or conley:25:180")
        return VCovSpec("conley", km=cut[0], days=cut[1] if len(cut) == 2 else None)
    if len(parts) != 1:
        raise SettingsError(f"unknown standard errors {text!r}; {usage}")
    return VCovSpec(kind)


def conley_kernel(lat, lon, km: float, days: float | None = None,
                  time_days=None) -> sparse.csr_matrix:
    """The uniform Conley kernel between anchors: 1 where two anchors lie within ``km``
    (great-circle, mean Earth radius 6371.0088 km) and, if ``days`` is given, within ``days``
    of each other in time; 0 elsewhere. The diagonal is 1.

    Parameters
    ----------
    lat, lon
        Anchor coordinates, degrees.
    km
        Distance cutoff, km.
    days, time_days
        Optional time cutoff (days) and the anchors' times (days on any origin).

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape (n, n), symmetric, 0/1.
    """
    from scipy.spatial import cKDTree

    lat, lon = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    xyz = np.column_stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    chord = 2 * np.sin(km / 6371.0088 / 2)
    pairs = cKDTree(xyz).query_pairs(chord * (1 + 1e-12), output_type="ndarray")
    if days is not None and len(pairs):
        t = np.asarray(time_days, float)
        pairs = pairs[np.abs(t[pairs[:, 0]] - t[pairs[:, 1]]) <= days]
    n = len(lat)
    rows = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(n)])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(n)])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def coefficient_influence(y, x, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and each row's influence on them (weighted least squares).

    ``coef - true coef`` is, to first order, the sum of the rows' influences
    ``(X'WX)^-1 x_i w_i e_i``; robust covariances are sums of their products.

    Returns
    -------
    coef : numpy.ndarray
        Shape (p,).
    influence : numpy.ndarray
        Shape (n, p); rows with weight 0 have influence 0.
    """
    y, x = np.asarray(y, float), np.asarray(x, float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, float)
    xtwx = (x * w[:, None]).T @ x
    coef = np.linalg.solve(xtwx, (x * w[:, None]).T @ y)
    scores = x * (w * (y - x @ coef))[:, None]
    return coef, np.linalg.solve(xtwx, scores.T).T


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
    vcov: "VCov | VCovSpec | str" = "classical",
    clusters: np.ndarray | None = None,
    kernel: sparse.spmatrix | None = None,
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
        ``classical`` (R's ``summary.lm``), heteroskedasticity-robust ``HC1`` or ``HC3``,
        ``CR1`` (needs ``clusters``) or ``conley`` (needs ``kernel``); a string or a
        :class:`VCovSpec`.
    clusters
        Cluster label of each row (``CR1``).
    kernel
        Conley kernel between the rows, shape (n, n) (:func:`conley_kernel`).

    Returns
    -------
    OLSFit
        Coefficients, standard errors, two-sided t-test p-values (df = n - p) and R's
        adjusted R-squared.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    spec = parse_vcov(vcov)
    keep = w > 0
    y, x, w = y[keep], x[keep], w[keep]
    if spec.kind == "CR1":
        if clusters is None:
            raise SettingsError("CR1 standard errors need the cluster of every row")
        clusters = np.asarray(clusters)[keep]
    if spec.kind == "conley":
        if kernel is None:
            raise SettingsError("Conley standard errors need the kernel between rows")
        kernel = sparse.csr_matrix(kernel)[keep][:, keep]
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
        cov, df_test = _covariance(spec, xw, resid * sw, r_inv, bread, rss, df, clusters,
                                   kernel)
        se = np.sqrt(np.diag(cov))
        t = coef / se
        if df_test is None:
            pvalue = 2 * stats.norm.sf(np.abs(t))
        else:
            pvalue = 2 * stats.t.sf(np.abs(t), df_test) if df_test > 0 else nan
        intercept = bool(np.all(x[:, 0] == 1))
        if intercept:
            mean_fit = np.sum(w * fitted) / np.sum(w)
            mss = float(np.sum(w * (fitted - mean_fit) ** 2))
        else:
            mss = float(np.sum(w * fitted**2))
        r2 = mss / (mss + rss) if mss + rss > 0 else np.nan
        adj = 1 - (1 - r2) * ((n - int(intercept)) / df) if df > 0 else np.nan
    return OLSFit(coef, se, np.asarray(pvalue, dtype=float), float(adj), n, df, aliased=False)


def _covariance(spec: VCovSpec, xw, e, r_inv, bread, rss, df, clusters, kernel):
    """The coefficients' covariance and the df of the t test (None: normal).

    ``xw`` and ``e`` are the design and residuals of the weighted (transformed) problem, so a
    row's score is ``xw_i e_i``.
    """
    n, p = xw.shape
    if spec.kind == "classical":
        return bread * (rss / df if df > 0 else np.nan), df
    scores = xw * e[:, None]
    if spec.kind in ("HC1", "HC3"):
        if spec.kind == "HC1":
            factor = np.full(n, n / df if df > 0 else np.nan)
        else:
            leverage = np.sum((xw @ r_inv) ** 2, axis=1)
            factor = 1 / (1 - leverage) ** 2
        meat = (scores * factor[:, None]).T @ scores
        return bread @ meat @ bread, df
    if spec.kind == "CR1":
        _, group = np.unique(clusters, return_inverse=True)
        g = int(group.max()) + 1 if n else 0
        summed = np.zeros((g, p))
        np.add.at(summed, group.ravel(), scores)
        factor = g / (g - 1) * (n - 1) / (n - p) if g > 1 and n > p else np.nan
        return factor * (bread @ (summed.T @ summed) @ bread), g - 1
    meat = scores.T @ (kernel @ scores)
    return bread @ meat @ bread, None
