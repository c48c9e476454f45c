"""Weighted least squares as R's ``lm`` + ``summary.lm`` report it, with the robust errors the
field uses.

Written by hand (statsmodels is the test oracle) because the MWA table must follow R's rules to
the letter: a coefficient is aliased when the QR decomposition finds its column linearly
dependent on the earlier ones (tolerance 1e-7), and R's adjusted R-squared is weighted.

Standard errors (:class:`VCovSpec`): ``classical`` (R's ``summary.lm``; it assumes
independent, homoskedastic wakes, which clustered count data are not, so its p-values are too
small), ``HC1`` and ``HC3`` (heteroskedasticity-robust), ``CR1:COLUMN`` (cluster-robust by an
event column, Stata's small-sample factor, t with G - 1 df), ``conley:KM[:DAYS]``
(Conley's spatial HAC: scores of wakes whose anchors lie within KM km, and optionally DAYS
days, of each other are correlated; uniform kernel, normal p-values), and their small-sample
versions ``CR2:COLUMN`` and ``conley-bm:KM[:DAYS]``.

CR1 and Conley are what Stata and ``conleyreg`` report, and on MWA data they are too small:
a few busy wakes carry most of the residual variance and the residuals of a cluster that
holds both treated and control wakes cancel. The Bell-McCaffrey versions fix both halves of
that: the variance is made unbiased when the errors are independent and homoskedastic (CR2's
cluster-wise ``(I - H_gg)^(-1/2)`` residual adjustment; for Conley a scaling by
``q'q / tr(QM)``), and the t test takes Satterthwaite degrees of freedom
``tr(QM)^2 / tr(QMQM)`` of the variance as a quadratic form ``e'Qe`` in the residuals
(Bell & McCaffrey 2002; Imbens & Kolesar 2016; Pustejovsky & Tipton 2018, R's clubSandwich).
Those df are often a few tens where CR1 claims hundreds of clusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import sparse, special

from bayes_wake.core.geo import EARTH_RADIUS_KM, unit_vectors
from bayes_wake.errors import SettingsError

__all__ = ["OLSFit", "weighted_ols", "VCov", "VCovSpec", "parse_vcov", "conley_kernel",
           "coefficient_influence"]

VCov = Literal["classical", "HC1", "HC3"]
_QR_TOL = 1e-7  # lm's default tol
_KINDS = ("classical", "HC1", "HC3", "CR1", "CR2", "conley", "conley-bm")
_CLUSTERED = ("CR1", "CR2")
_SPATIAL = ("conley", "conley-bm")
_PINV_TOL = 1e-10  # eigenvalues of I - H_gg below this are treated as 0 (pseudo-inverse)


@dataclass(frozen=True)
class VCovSpec:
    """A choice of standard errors.

    Attributes
    ----------
    kind
        ``classical``, ``HC1``, ``HC3``, ``CR1``, ``CR2``, ``conley`` or ``conley-bm``.
    column
        ``CR1``, ``CR2``: the event column whose values are the clusters.
    km, days
        ``conley``, ``conley-bm``: the distance cutoff (km) and the optional time cutoff
        (days).
    """

    kind: str = "classical"
    column: str | None = None
    km: float | None = None
    days: float | None = None

    def __str__(self) -> str:
        if self.kind in _CLUSTERED:
            return f"{self.kind}:{self.column}"
        if self.kind in _SPATIAL:
            return f"{self.kind}:{self.km:g}" + (
                f":{self.days:g}" if self.days is not None else "")
        return self.kind

    @property
    def clustered(self) -> bool:
        """True for the cluster-robust kinds (they need the cluster of every row)."""
        return self.kind in _CLUSTERED

    @property
    def spatial(self) -> bool:
        """True for the Conley kinds (they need the kernel between rows)."""
        return self.kind in _SPATIAL

    @property
    def label(self) -> str:
        """Words for tables and reports."""
        small = ", Bell-McCaffrey" if self.kind in ("CR2", "conley-bm") else ""
        if self.kind in _CLUSTERED:
            return f"cluster-robust by {self.column} ({self.kind})"
        if self.kind in _SPATIAL:
            return f"Conley spatial HAC, {self.km:g} km" + (
                f" and {self.days:g} day{'' if self.days == 1 else 's'}"
                if self.days is not None else "") + small
        return {"classical": "classical (R's lm)"}.get(self.kind, self.kind)


def parse_vcov(text: "str | VCovSpec") -> VCovSpec:
    """Parse ``classical``, ``HC1``, ``HC3``, ``CR1:COLUMN``, ``CR2:COLUMN``,
    ``conley:KM[:DAYS]`` or ``conley-bm:KM[:DAYS]``.

    Raises
    ------
    SettingsError
        For anything else, saying what is accepted.
    """
    if isinstance(text, VCovSpec):
        return text
    parts = str(text).strip().split(":")
    kind = {k.lower(): k for k in _KINDS}.get(parts[0].lower())
    usage = ("use classical, HC1, HC3, CR1:COLUMN or CR2:COLUMN (cluster by an event "
             "column) or conley:KM[:DAYS] or conley-bm:KM[:DAYS] (spatial HAC with a cutoff "
             "in km, optionally days)")
    if kind is None:
        raise SettingsError(f"unknown standard errors {text!r}; {usage}")
    if kind in _CLUSTERED:
        if len(parts) != 2 or not parts[1]:
            raise SettingsError(f"{text!r}: {kind} needs the cluster column, e.g. "
                                f"{kind}:site_id")
        return VCovSpec(kind, column=parts[1])
    if kind in _SPATIAL:
        try:
            cut = [float(p) for p in parts[1:]]
        except ValueError:
            cut = []
        if len(cut) not in (1, 2) or not all(np.isfinite(c) and c > 0 for c in cut):
            raise SettingsError(f"{text!r}: {kind} needs a cutoff in km > 0 and optionally "
                                f"days > 0, e.g. {kind}:25 or {kind}:25:180")
        return VCovSpec(kind, km=cut[0], days=cut[1] if len(cut) == 2 else None)
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

    xyz = unit_vectors(np.asarray(lon, float), np.asarray(lat, float))
    chord = 2 * np.sin(km / EARTH_RADIUS_KM / 2)
    pairs = cKDTree(xyz).query_pairs(chord * (1 + 1e-12), output_type="ndarray")
    if days is not None and len(pairs):
        t = np.asarray(time_days, float)
        pairs = pairs[np.abs(t[pairs[:, 0]] - t[pairs[:, 1]]) <= days]
    n = len(xyz)
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
        ``CR1`` or ``CR2`` (need ``clusters``), ``conley`` or ``conley-bm`` (need
        ``kernel``); a string or a :class:`VCovSpec`.
    clusters
        Cluster label of each row (``CR1``, ``CR2``).
    kernel
        Conley kernel between the rows, shape (n, n) (:func:`conley_kernel`).

    Returns
    -------
    OLSFit
        Coefficients, standard errors, two-sided p-values (t with n - p df; G - 1 for CR1,
        Satterthwaite df for CR2 and conley-bm; normal for conley) and R's adjusted
        R-squared.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    spec = parse_vcov(vcov)
    keep = w > 0
    y, x, w = y[keep], x[keep], w[keep]
    if spec.kind in _CLUSTERED:
        if clusters is None:
            raise SettingsError(f"{spec.kind} standard errors need the cluster of every row")
        clusters = np.asarray(clusters)[keep]
    if spec.kind in _SPATIAL:
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
            pvalue = 2 * special.ndtr(-np.abs(t))  # scipy.special: 0.6 s less to import
        else:
            pvalue = 2 * special.stdtr(df_test, -np.abs(t))  # NaN where df <= 0
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
    """The coefficients' covariance and the df of the t test (None: normal; an array: one
    per coefficient).

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
    if spec.kind in _CLUSTERED:
        _, group = np.unique(clusters, return_inverse=True)
        group = group.ravel()
        g = int(group.max()) + 1 if n else 0
        if spec.kind == "CR2":
            return _cr2(xw, e, r_inv, bread, group, g)
        summed = np.zeros((g, p))
        np.add.at(summed, group, scores)
        factor = g / (g - 1) * (n - 1) / (n - p) if g > 1 and n > p else np.nan
        return factor * (bread @ (summed.T @ summed) @ bread), g - 1
    kernel = sparse.csr_matrix(kernel)
    cov = bread @ (scores.T @ (kernel @ scores)) @ bread
    if spec.kind == "conley":
        return cov, None
    influence = xw @ bread  # column k: the rows' weights q in coefficient k
    scale, dof = np.empty(p), np.empty(p)
    for k in range(p):
        q = sparse.diags(influence[:, k])
        trace_qm, dof[k] = _satterthwaite(q @ kernel @ q, xw, bread)
        scale[k] = influence[:, k] @ influence[:, k] / trace_qm
    root = np.sqrt(scale)
    return cov * np.outer(root, root), dof


def _cr2(xw, e, r_inv, bread, group, g):
    """Bell-McCaffrey CR2: covariance with cluster-wise ``(I - H_gg)^(-1/2)``-adjusted
    residuals, and the Satterthwaite df of each coefficient (Imbens & Kolesar 2016)."""
    n, p = xw.shape
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(g + 1))
    influence = xw @ bread
    summed = np.zeros((g, p))
    blocks = [[] for _ in range(p)]  # per coefficient: the adjusted influence of each row
    for c in range(g):
        rows = order[bounds[c]:bounds[c + 1]]
        u, sv, _ = np.linalg.svd(xw[rows] @ r_inv, full_matrices=False)  # H_gg = u sv^2 u'
        rest = 1 - sv**2
        power = np.where(rest > _PINV_TOL, np.abs(rest) ** -0.5, 0.0) - 1

        def adjust(v, u=u, power=power):
            return v + u @ (power * (u.T @ v))

        summed[c] = xw[rows].T @ adjust(e[rows])
        for k in range(p):
            blocks[k].append((rows, adjust(influence[rows, k])))
    dof = np.empty(p)
    for k in range(p):
        rows = np.concatenate([r for r, _ in blocks[k]])
        cols = np.concatenate([np.full(len(r), c) for c, (r, _) in enumerate(blocks[k])])
        factor = sparse.csr_matrix((np.concatenate([v for _, v in blocks[k]]), (rows, cols)),
                                   shape=(n, g))
        dof[k] = _satterthwaite(factor @ factor.T, xw, bread)[1]
    return bread @ (summed.T @ summed) @ bread, dof


def _satterthwaite(q, xw, bread) -> tuple[float, float]:
    """``tr(QM)`` and the Satterthwaite df ``tr(QM)^2 / tr(QMQM)`` of a variance estimate
    ``e'Qe`` in the residuals ``e = M y``, ``M = I - X(X'X)^-1 X'``, under independent
    homoskedastic errors (Bell & McCaffrey 2002). ``q`` is sparse and symmetric, (n, n)."""
    q = sparse.csr_matrix(q)
    qx = np.asarray(q @ xw)
    xqx = bread @ (xw.T @ qx)
    trace_qm = q.diagonal().sum() - np.trace(xqx)
    trace_qmqm = (q.multiply(q).sum() - 2 * np.trace(bread @ (qx.T @ qx))
                  + np.trace(xqx @ xqx))
    return float(trace_qm), float(trace_qm**2 / trace_qmqm) if trace_qmqm > 0 else np.nan
