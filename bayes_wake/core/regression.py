"""Weighted least squares as R's ``lm`` + ``summary.lm`` report it, with the robust errors the
field uses.

Written by hand (statsmodels is the test oracle) because the MWA table must follow R's rules to
the letter: a coefficient is aliased when the QR decomposition finds its column linearly
dependent on the earlier ones (tolerance 1e-7), and R's adjusted R-squared is weighted.

Standard errors (:class:`VCov`: one grammar for the OLS table and the models), each the R
call of the fit ``lm(y ~ ..., weights = w)`` that it equals (``tests/test_r_vcov_parity.py``
holds R's outputs):

- ``classical``: ``summary(fit)``; it assumes independent, homoskedastic wakes, which clustered
  count data are not, so its p-values are too small;
- ``HC1``, ``HC3``: ``sandwich::vcovHC(fit, type = "HC1" | "HC3")``, t on n - p df (HC3 is NA
  when a wake has leverage 1, where R gives NaN);
- ``CR1:CLUSTERS``: ``sandwich::vcovCL(fit, cluster = ~c, type = "HC1")`` (Stata's factor),
  t on G - 1 df (``clubSandwich::coef_test(fit, vcov = "CR1S", cluster = c, test =
  "naive-t")``);
- ``CR2:CLUSTERS``: ``clubSandwich::coef_test(fit, vcov = "CR2", cluster = c, test =
  "Satterthwaite")``: Bell-McCaffrey bias-reduced errors with Satterthwaite df; the working
  model is clubSandwich's default for a weighted fit, wakes independent with equal variance
  (the weights are weights, not inverse variances);
- ``CR2-ivw:CLUSTERS``: the same with ``vcovCR(..., inverse_var = TRUE)``: the working model
  says a wake's variance is proportional to 1 / weight, right for precision weights, not for
  CEM's weights;
- ``conley:KM[:DAYS]``: Conley's spatial HAC (scores of wakes whose anchors lie within KM km,
  and optionally DAYS days, of each other are correlated; uniform kernel, normal p-values), as
  Stata and ``conleyreg``;
- ``conley-bm:KM[:DAYS]``: the same kernel, scaled per coefficient to be unbiased under CR2's
  working model, with Satterthwaite df under that model.

``CLUSTERS`` is ``wake`` (each anchor its own cluster), ``location`` (anchors at identical
coordinates), ``near=KM,DAYS`` (the connected components of the graph that links anchors within
KM km and DAYS days of each other, single linkage, :func:`near_clusters`) or else an event
column; :func:`cluster_ids` turns any of them into cluster ids. ``wake`` and ``location`` alone
are short for ``CR1:wake`` and ``CR1:location`` (the model specs' ``errors: wake``).

CR1 and Conley are what Stata and ``conleyreg`` report, and on MWA data they are too small:
a few busy wakes carry most of the residual variance and the residuals of a cluster that
holds both treated and control wakes cancel. The Bell-McCaffrey versions fix both halves of
that: the variance is made unbiased when the errors follow the working model (CR2's
cluster-wise ``G_g^(-1/2)`` residual adjustment, ``G_g`` the working covariance of cluster
g's residuals; for Conley a scaling by ``q'q / tr(Q Sigma)``), and the t test takes
Satterthwaite degrees of freedom ``tr(Q Sigma)^2 / tr(Q Sigma Q Sigma)`` of the variance as a
quadratic form ``e'Qe`` in the residuals, ``Sigma`` their working covariance (Bell & McCaffrey
2002; Imbens & Kolesar 2016; Pustejovsky & Tipton 2018, R's clubSandwich). Those df are often
a few tens where CR1 claims hundreds of clusters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import sparse, special

from bayes_wake.core.geo import EARTH_RADIUS_KM, unit_vectors
from bayes_wake.errors import SettingsError

__all__ = ["OLSFit", "weighted_ols", "LabelledFits", "batched_treatment_ols", "VCov",
           "parse_vcov", "conley_kernel", "near_clusters", "cluster_ids", "coefficient_influence"]

_QR_TOL = 1e-7  # lm's default tol
_KINDS = ("classical", "HC1", "HC3", "CR1", "CR2", "CR2-ivw", "conley", "conley-bm")
_CLUSTERED = ("CR1", "CR2", "CR2-ivw")
_SPATIAL = ("conley", "conley-bm")
_BM = ("CR2", "CR2-ivw", "conley-bm")
#: Clusters that are not an event column: each anchor its own (``wake``), anchors at identical
#: coordinates (``location``); alone, each is short for CR1 by it
_ANCHOR_CLUSTERS = ("wake", "location")
#: clubSandwich's tolerance: eigenvalues of a cluster's working residual covariance at or below
#: it are zero (there R takes a pseudo-inverse; here the cluster makes CR2 undefined, NA)
_EIGEN_TOL = 1e-12
#: R's lm.influence sets a hat value above 1 - 10 eps to 1, and HC3 is then NaN
_LEVERAGE_ONE = 1 - 10 * np.finfo(float).eps
_NEAR = re.compile(r"near=\s*([^,]+?)\s*(?:km)?\s*,\s*([^,]+?)\s*(?:d|days?)?\s*",
                   re.IGNORECASE)


@dataclass(frozen=True)
class VCov:
    """A choice of standard errors (:func:`parse_vcov` reads one; ``str()`` is its canonical
    text).

    Attributes
    ----------
    kind
        ``classical``, ``HC1``, ``HC3``, ``CR1``, ``CR2``, ``CR2-ivw``, ``conley`` or
        ``conley-bm``.
    column
        ``CR1``, ``CR2``, ``CR2-ivw``: ``wake``, ``location`` or the event column whose values
        are the clusters; None for clusters of nearby anchors (``near=KM,DAYS``, then ``km``
        and ``days`` are set).
    km, days
        ``conley``, ``conley-bm``: the distance cutoff (km) and the optional time cutoff
        (days); clusters ``near=KM,DAYS``: anchors within both of each other are linked.
    """

    kind: str = "classical"
    column: str | None = None
    km: float | None = None
    days: float | None = None

    def __str__(self) -> str:
        if self.near:
            return f"{self.kind}:near={self.km:g},{self.days:g}"
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
    def near(self) -> bool:
        """True for clusters of anchors linked within ``km`` and ``days`` (``near=KM,DAYS``)."""
        return self.kind in _CLUSTERED and self.column is None

    @property
    def event_columns(self) -> tuple[str, ...]:
        """The event column the clusters are read from, which the event table must keep (none
        for ``wake``, ``location``, ``near=KM,DAYS`` and the kinds without clusters)."""
        if self.clustered and not self.near and self.column not in _ANCHOR_CLUSTERS:
            return (self.column,)
        return ()

    @property
    def spatial(self) -> bool:
        """True for the Conley kinds (they need the kernel between rows)."""
        return self.kind in _SPATIAL

    @property
    def label(self) -> str:
        """Words for tables and reports."""
        if self.clustered:
            what = (f"anchors linked within {_km_days(self.km, self.days)}" if self.near
                    else self.column)
            kind = ("CR2 with weights as inverse variances" if self.kind == "CR2-ivw"
                    else self.kind)
            return f"cluster-robust by {what} ({kind})"
        if self.kind in _SPATIAL:
            small = ", Bell-McCaffrey" if self.kind == "conley-bm" else ""
            return f"Conley spatial HAC, {_km_days(self.km, self.days)}{small}"
        return {"classical": "classical (R's lm)"}.get(self.kind, self.kind)


def _km_days(km: float, days: float | None) -> str:
    """``5 km and 60 days`` (or ``5 km`` without a time cutoff)."""
    if days is None:
        return f"{km:g} km"
    return f"{km:g} km and {days:g} day{'' if days == 1 else 's'}"


_USAGE = ("use classical, HC1, HC3, CR1:CLUSTERS, CR2:CLUSTERS or CR2-ivw:CLUSTERS "
          "(cluster-robust; CLUSTERS is wake, location, an event column or near=KM,DAYS: "
          "anchors linked within KM km and DAYS days) or conley:KM[:DAYS] or "
          "conley-bm:KM[:DAYS] (spatial HAC with a cutoff in km, optionally days)")


def parse_vcov(text: "str | VCov") -> VCov:
    """Parse ``classical``, ``HC1``, ``HC3``, ``CR1:CLUSTERS``, ``CR2:CLUSTERS``,
    ``CR2-ivw:CLUSTERS``, ``conley:KM[:DAYS]`` or ``conley-bm:KM[:DAYS]`` (the grammar of the
    module's docstring); a :class:`VCov` is returned as it is.

    ``CLUSTERS`` is ``wake``, ``location``, an event column (e.g. ``CR2:site``) or
    ``near=KM,DAYS`` (e.g. ``CR2:near=5,60`` or ``CR2:near=5km,60d``): anchors within KM km
    and DAYS days of each other are linked, and the clusters are the connected components
    (:func:`near_clusters`). ``wake`` and ``location`` alone are ``CR1:wake`` and
    ``CR1:location``. ``str()`` of the result is the canonical text, which parses back to the
    same choice.

    Raises
    ------
    SettingsError
        For anything else, saying what is accepted.
    """
    if isinstance(text, VCov):
        return text
    parts = str(text).strip().split(":")
    if len(parts) == 1 and parts[0] in _ANCHOR_CLUSTERS:
        return VCov("CR1", column=parts[0])
    kind = {k.lower(): k for k in _KINDS}.get(parts[0].lower())
    if kind is None:
        raise SettingsError(f"unknown standard errors {text!r}; {_USAGE}")
    if kind in _CLUSTERED:
        if len(parts) != 2 or not parts[1].strip():
            raise SettingsError(f"{text!r}: {kind} needs the clusters, an event column or "
                                f"near=KM,DAYS, e.g. {kind}:site_id or {kind}:near=5,60")
        if not parts[1].strip().lower().startswith("near="):
            return VCov(kind, column=parts[1].strip())
        match = _NEAR.fullmatch(parts[1].strip())
        cut = _positive_numbers(match.groups() if match else ())
        if len(cut) != 2:
            raise SettingsError(f"{text!r}: near= needs a distance in km > 0 and a time in "
                                f"days > 0, e.g. {kind}:near=5,60 or {kind}:near=5km,60d")
        return VCov(kind, km=cut[0], days=cut[1])
    if kind in _SPATIAL:
        cut = _positive_numbers(parts[1:])
        if len(cut) not in (1, 2):
            raise SettingsError(f"{text!r}: {kind} needs a cutoff in km > 0 and optionally "
                                f"days > 0, e.g. {kind}:25 or {kind}:25:180")
        return VCov(kind, km=cut[0], days=cut[1] if len(cut) == 2 else None)
    if len(parts) != 1:
        raise SettingsError(f"unknown standard errors {text!r}; {_USAGE}")
    return VCov(kind)


def _positive_numbers(texts) -> list[float]:
    """The texts as finite numbers > 0; an empty list if any is not one."""
    try:
        values = [float(t) for t in texts]
    except ValueError:
        return []
    return values if all(np.isfinite(v) and v > 0 for v in values) else []


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


def near_clusters(lat, lon, km: float, days: float, time_days) -> np.ndarray:
    """Clusters of anchors that share events: the connected components of the graph linking
    every two anchors within ``km`` km (great-circle, as :func:`conley_kernel`) and ``days``
    days of each other (single linkage: a chain of close anchors is one cluster, however long).

    Parameters
    ----------
    lat, lon
        Anchor coordinates, degrees.
    km, days
        The link's distance (km) and time (days) cutoffs, both inclusive.
    time_days
        The anchors' times, days on any origin.

    Returns
    -------
    numpy.ndarray
        Shape (n,), int64 labels from 0, numbered in order of each cluster's first anchor.
    """
    from scipy.sparse.csgraph import connected_components

    graph = conley_kernel(lat, lon, km, days, time_days)
    return connected_components(graph, directed=False)[1].astype(np.int64)


def cluster_ids(vcov: "VCov | str", *, lon, lat, time_days=None, values=None) -> np.ndarray:
    """The cluster of every anchor under a cluster-robust choice (:attr:`VCov.clustered`).

    Parameters
    ----------
    vcov
        The choice; its clusters say how anchors are grouped: ``wake`` (each its own),
        ``location`` (identical coordinates), ``near=KM,DAYS`` (:func:`near_clusters`) or an
        event column (equal values).
    lon, lat
        Anchor coordinates, degrees.
    time_days
        The anchors' times, days on any origin (``near=KM,DAYS`` only).
    values
        The event column's value per anchor (an event column only).

    Returns
    -------
    numpy.ndarray
        Shape (n,), integer cluster ids from 0.
    """
    vcov = parse_vcov(vcov)
    if not vcov.clustered:
        raise SettingsError(f"{vcov} has no clusters")
    if vcov.near:
        return near_clusters(lat, lon, vcov.km, vcov.days, time_days)
    if vcov.column == "wake":
        return np.arange(len(np.asarray(lon)))
    if vcov.column == "location":
        values = np.column_stack([np.asarray(lat), np.asarray(lon)])
        return np.unique(values, axis=0, return_inverse=True)[1].ravel()
    if values is None:
        raise SettingsError(f"{vcov} needs the values of event column {vcov.column!r}")
    return np.unique(np.asarray(values), return_inverse=True)[1].ravel()


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
    df_test
        Per column, the degrees of freedom of the t test behind ``pvalue`` (n - p, G - 1 for
        CR1, Satterthwaite for the Bell-McCaffrey kinds; inf for a normal test).
    se_note
        Why the standard errors of this choice are NA although the coefficients are estimated
        (e.g. a wake with leverage 1 for HC3), in a few words; empty otherwise.
    """

    coef: np.ndarray
    std_error: np.ndarray
    pvalue: np.ndarray
    adj_r_squared: float
    n: int
    df_resid: int
    aliased: bool
    df_test: np.ndarray | None = None
    se_note: str = ""

    @property
    def defined(self) -> bool:
        """True when R would report the last coefficient (no aliasing, finite p-value)."""
        return (not self.aliased) and bool(np.isfinite(self.pvalue[-1]))

    @property
    def estimated(self) -> bool:
        """True when the coefficients are reported: :attr:`defined`, or NA standard errors
        of this choice alone (:attr:`se_note`), where R still reports the estimate."""
        return self.defined or bool(self.se_note)


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
    vcov: "VCov | str" = "classical",
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
        ``CR1``, ``CR2`` or ``CR2-ivw`` (need ``clusters``), ``conley`` or ``conley-bm``
        (need ``kernel``); a string or a :class:`VCov` (the module's docstring gives the
        R call each equals).
    clusters
        Cluster label of each row (``CR1``, ``CR2``, ``CR2-ivw``).
    kernel
        Conley kernel between the rows, shape (n, n) (:func:`conley_kernel`).

    Returns
    -------
    OLSFit
        Coefficients, standard errors, two-sided p-values (t with n - p df; G - 1 for CR1,
        Satterthwaite df for CR2, CR2-ivw and conley-bm; normal for conley) and R's adjusted
        R-squared. Standard errors that this choice cannot give (HC3 with a wake of leverage
        1, CR2 with a cluster whose working residual covariance is singular, a single
        cluster, conley-bm with no residual variance in its kernel) are NaN, with the reason
        in ``se_note`` while the fit itself is defined.
    """
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=float)
    vcov = parse_vcov(vcov)
    keep = w > 0
    y, x, w = y[keep], x[keep], w[keep]
    if vcov.kind in _CLUSTERED:
        if clusters is None:
            raise SettingsError(f"{vcov.kind} standard errors need the cluster of every row")
        clusters = np.asarray(clusters)[keep]
    if vcov.kind in _SPATIAL:
        if kernel is None:
            raise SettingsError("Conley standard errors need the kernel between rows")
        kernel = sparse.csr_matrix(kernel)[keep][:, keep]
    n, p = x.shape
    nan = np.full(p, np.nan)
    if n == 0 or _aliased(x * np.sqrt(w)[:, None]):
        return OLSFit(nan, nan, nan, float("nan"), n, n - p, aliased=n > 0, df_test=nan)
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
        cov, df_test, note = _covariance(vcov, x, w, resid, r_inv, bread, rss, df, clusters,
                                         kernel)
        if note:
            cov = np.full((p, p), np.nan)
            # the note only where R's own fit is defined (else the cell is NA for R's reasons)
            note = note if rss > 0 and df > 0 else ""
        se = np.sqrt(np.diag(cov))
        t = coef / se
        pvalue = np.where(np.isinf(df_test), 2 * special.ndtr(-np.abs(t)),  # scipy.special:
                          2 * special.stdtr(df_test, -np.abs(t)))  # 0.6 s less to import
        intercept = bool(np.all(x[:, 0] == 1))
        if intercept:
            mean_fit = np.sum(w * fitted) / np.sum(w)
            mss = float(np.sum(w * (fitted - mean_fit) ** 2))
        else:
            mss = float(np.sum(w * fitted**2))
        r2 = mss / (mss + rss) if mss + rss > 0 else np.nan
        adj = 1 - (1 - r2) * ((n - int(intercept)) / df) if df > 0 else np.nan
    return OLSFit(coef, se, np.asarray(pvalue, dtype=float), float(adj), n, df, aliased=False,
                  df_test=np.asarray(df_test, dtype=float), se_note=note)


def _covariance(vcov: VCov, x, w, e, r_inv, bread, rss, df, clusters, kernel):
    """The coefficients' covariance, the df of each coefficient's t test (inf: normal) and why
    the covariance is undefined ("" when it is defined).

    ``x``, ``w`` and ``e`` are the design, weights and residuals of the weighted fit, so a
    row's score is ``x_i w_i e_i``; ``r_inv`` is the inverse of the R factor of
    ``sqrt(w) x`` and ``bread`` ``(X'WX)^-1``.
    """
    n, p = x.shape
    dfs = np.full(p, float(df))
    if vcov.kind == "classical":
        return bread * (rss / df if df > 0 else np.nan), dfs, ""
    scores = x * (w * e)[:, None]
    if vcov.kind in ("HC1", "HC3"):
        if vcov.kind == "HC1":
            factor = np.full(n, n / df if df > 0 else np.nan)
        else:
            leverage = np.sum(((x * np.sqrt(w)[:, None]) @ r_inv) ** 2, axis=1)
            if np.any(leverage >= _LEVERAGE_ONE):
                return None, dfs, "a wake with leverage 1 (HC3 undefined)"
            factor = 1 / (1 - leverage) ** 2
        meat = (scores * factor[:, None]).T @ scores
        return bread @ meat @ bread, dfs, ""
    if vcov.kind in _CLUSTERED:
        _, group = np.unique(clusters, return_inverse=True)
        group = group.ravel()
        g = int(group.max()) + 1 if n else 0
        if g < 2:
            return None, dfs, "a single cluster (cluster-robust errors undefined)"
        if vcov.kind in _BM:
            return _cr2(x, w, e, bread, group, g, inverse_var=vcov.kind == "CR2-ivw")
        summed = np.zeros((g, p))
        np.add.at(summed, group, scores)
        factor = g / (g - 1) * (n - 1) / (n - p) if n > p else np.nan
        return factor * (bread @ (summed.T @ summed) @ bread), np.full(p, g - 1.0), ""
    kernel = sparse.csr_matrix(kernel)
    cov = bread @ (scores.T @ (kernel @ scores)) @ bread
    if vcov.kind == "conley":
        return cov, np.full(p, np.inf), ""
    # Bell-McCaffrey under CR2's working model: independent wakes of equal variance
    theta = np.ones(n)
    b, z, s = _working_model(x, w, bread, theta)
    scale, dof = np.empty(p), np.empty(p)
    for k in range(p):
        q = sparse.diags(b[:, k]) @ kernel @ sparse.diags(b[:, k])
        qz = np.asarray(q @ z)
        trace_qs, dof[k] = _satterthwaite(q.diagonal().sum(), q.multiply(q).sum(), z.T @ qz,
                                          qz.T @ qz, s)
        if not trace_qs > _EIGEN_TOL * (b[:, k] @ b[:, k]):
            return None, dfs, "no residual variance within the Conley kernel (conley-bm " \
                              "undefined)"
        scale[k] = b[:, k] @ b[:, k] / trace_qs
    root = np.sqrt(scale)
    return cov * np.outer(root, root), dof, ""


def _working_model(x, w, bread, theta):
    """The working covariance of the residuals ``e = (I - H) y`` when ``Var(y) = Theta``
    (diagonal ``theta``), ``H = X B'`` with ``B = W X (X'WX)^-1``, as ``Theta + Z S Z'``.

    Returns
    -------
    b : numpy.ndarray
        ``B``, shape (n, p): column k holds the rows' weights in coefficient k.
    z, s : numpy.ndarray
        ``Z = [X, Theta B]`` (n, 2p) and ``S = [[B'Theta B, -I], [-I, 0]]`` (2p, 2p).
    """
    p = x.shape[1]
    b = (x * w[:, None]) @ bread
    z = np.hstack([x, theta[:, None] * b])
    eye = np.eye(p)
    s = np.block([[b.T @ (theta[:, None] * b), -eye], [-eye, np.zeros((p, p))]])
    return b, z, s


def _cr2(x, w, e, bread, group, g, *, inverse_var: bool):
    """Bell-McCaffrey CR2 as clubSandwich's ``vcovCR(type = "CR2")``: covariance with
    cluster-wise adjusted residuals ``A_g e_g``, ``A_g = T^(1/2) G_g^(-1/2) T^(1/2)``, ``G_g =
    T^(1/2) Sigma_gg T^(1/2)``, ``T = Theta_gg`` and ``Sigma`` the residuals' covariance under
    the working model ``Var(y) = Theta`` (identity, or ``1 / weight`` with ``inverse_var``),
    and the Satterthwaite df of each coefficient (Pustejovsky & Tipton 2018)."""
    n, p = x.shape
    theta = w.mean() / w if inverse_var else np.ones(n)  # clubSandwich scales w to mean 1
    b, z, s = _working_model(x, w, bread, theta)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(g + 1))
    summed = np.zeros((g, p))
    adjusted = np.empty((n, p))  # A_g B_g: the rows' weights in the adjusted variance
    for c in range(g):
        rows = order[bounds[c]:bounds[c + 1]]
        adjust = _adjustment(theta[rows], z[rows], s)
        if adjust is None:
            return None, np.full(p, np.nan), (
                "a cluster whose I - H_gg is singular: it alone identifies a coefficient, "
                "e.g. it holds all treated wakes (CR2 undefined)")
        summed[c] = (x[rows] * w[rows, None]).T @ adjust(e[rows])
        adjusted[rows] = adjust(b[rows])
    dof = np.empty(p)
    for k in range(p):
        # Q = F F', F (n, g) holding each cluster's adjusted weights in its own column
        fz = np.zeros((g, z.shape[1]))
        np.add.at(fz, group, adjusted[:, k, None] * z)
        d = np.bincount(group, adjusted[:, k] ** 2 * theta, minlength=g)  # F'Theta F, diagonal
        dof[k] = _satterthwaite(d.sum(), (d**2).sum(), fz.T @ fz, fz.T @ (d[:, None] * fz),
                                s)[1]
    return bread @ (summed.T @ summed) @ bread, dof, ""


def _adjustment(theta, z, s):
    """CR2's ``A_g`` of one cluster as a function applied to vectors or matrices, or None
    when ``G_g`` is singular (an eigenvalue at or below clubSandwich's 1e-12).

    ``G_g = T Sigma_gg T`` with ``T = Theta_gg^(1/2)`` and ``Sigma_gg = Theta_gg + Z_g S
    Z_g'``. With ``Theta_gg = c I`` that is ``c^2 I + c Z_g S Z_g'``, a rank-2p change of a
    multiple of the identity, whose inverse root takes only a (2p, 2p) eigenproblem; otherwise
    the dense eigenproblem."""
    if np.ptp(theta) == 0:
        c = theta[0]
        basis, upper = np.linalg.qr(z)
        values, vectors = np.linalg.eigh(upper @ s @ upper.T)
        shown = c * c + c * values  # eigenvalues of G_g on the basis's span; c^2 elsewhere
        if shown.min(initial=c * c) <= _EIGEN_TOL:
            return None
        u = basis @ vectors
        middle = c / np.sqrt(shown) - 1  # A_g = c G_g^(-1/2) = I + U (c / sqrt(shown) - 1) U'
        return lambda v: v + u @ (middle[:, None] * (u.T @ v)) if v.ndim == 2 \
            else v + u @ (middle * (u.T @ v))
    root = np.sqrt(theta)
    g_mat = root[:, None] * (np.diag(theta) + z @ s @ z.T) * root[None, :]
    values, vectors = np.linalg.eigh(g_mat)
    if values.min() <= _EIGEN_TOL:
        return None
    adjust = root[:, None] * ((vectors / np.sqrt(values)) @ vectors.T) * root[None, :]
    return lambda v: adjust @ v


def _satterthwaite(trace_q, trace_qq, zqz, zqqz, s) -> tuple[float, float]:
    """``tr(Q Sigma)`` and the Satterthwaite df ``tr(Q Sigma)^2 / tr(Q Sigma Q Sigma)`` of a
    variance estimate ``e'Qe`` in the residuals, whose working covariance is ``Sigma = Theta +
    Z S Z'`` (:func:`_working_model`), under normal errors (Bell & McCaffrey 2002).

    ``Q`` enters through ``tr(Q Theta)``, ``tr(Q Theta Q Theta)``, ``Z'QZ`` and ``Z'Q Theta
    QZ``, all small, so no (n, n) product is formed.
    """
    szqz = s @ zqz
    trace_qs = trace_q + np.trace(szqz)
    trace_qsqs = trace_qq + 2 * np.trace(s @ zqqz) + np.trace(szqz @ szqz)
    return float(trace_qs), float(trace_qs**2 / trace_qsqs) if trace_qsqs > 0 else np.nan


# -------------------------------------------------------------------------------------------
# one regression, many treatment labels: the randomisation checks' batched refits
# -------------------------------------------------------------------------------------------

#: Pivot / lm's tolerance band in which the exact QR fit (:func:`weighted_ols`) decides.
_BORDERLINE = (1e-2, 1e2)


@dataclass(frozen=True)
class LabelledFits:
    """The treatment coefficient of :func:`batched_treatment_ols`, one entry per label row.

    Attributes
    ----------
    estimate, std_error, t, pvalue
        NaN where R reports NA.
    perfect
        R's "essentially perfect fit" (decided by the exact refits only).
    """

    estimate: np.ndarray
    std_error: np.ndarray
    t: np.ndarray
    pvalue: np.ndarray
    perfect: np.ndarray


def batched_treatment_ols(y: np.ndarray, fixed: list[np.ndarray], labels: np.ndarray,
                          control_weight: np.ndarray,
                          vcov: "str | VCov" = "classical") -> LabelledFits:
    """Weighted OLS of ``y`` on ``[fixed columns, treated]`` for every row of `labels` at once.

    A treated wake weighs 1 and a control wake its `control_weight` ``c``, so
    ``w = c + L (1 - c)`` and every entry of the normal equations is a constant plus
    ``labels @ (column)``: one matrix product gives them for all rows. R's aliasing rule
    (sequential pivots against lm's tolerance, as in :func:`weighted_ols`) makes a row NA;
    rows near the tolerance, and near-perfect classical fits, are refitted with
    :func:`weighted_ols` itself.

    Parameters
    ----------
    y
        The outcome, shape (n,).
    fixed
        The columns before the treatment column, each shape (n,).
    labels
        Treatment labels, bool, shape (rows, n).
    control_weight
        Each wake's weight when it is a control, shape (n,).
    vcov
        ``classical``, ``HC1`` or ``HC3`` (text or :class:`VCov`).

    Returns
    -------
    LabelledFits
        Estimate, standard error, t and p-value of the treatment coefficient, each of shape
        (rows,), and the flags of essentially perfect fits.
    """
    vcov = parse_vcov(vcov)
    n_perm, n = labels.shape
    nan = np.full(n_perm, np.nan)
    perfect = np.zeros(n_perm, dtype=bool)
    if n == 0:
        return LabelledFits(nan, nan.copy(), nan.copy(), nan.copy(), perfect)
    lab = labels.astype(float)
    gram, rhs, yy = _label_normal_equations(y, fixed, lab, control_weight)
    ratio_min = _pivot_ratios(gram)
    tol2 = _QR_TOL ** 2  # the pivots are squared norms
    aliased = ratio_min < tol2
    borderline = (ratio_min > tol2 * _BORDERLINE[0]) & (ratio_min < tol2 * _BORDERLINE[1])
    out = LabelledFits(nan.copy(), nan.copy(), nan.copy(), nan.copy(), perfect)
    fit = np.flatnonzero(~aliased & ~borderline)
    refit = list(np.flatnonzero(borderline))
    df = n - gram.shape[1]
    if len(fit) and df > 0:
        refit += _solve_rows(out, fit, (gram, rhs, yy), (y, fixed, lab, control_weight),
                             vcov.kind)
    for r in refit:  # let the exact QR fit decide, as R would
        _refit_row(out, r, y, np.column_stack([*fixed, lab[r]]),
                   control_weight + lab[r] * (1 - control_weight), vcov)
    return out


def _label_normal_equations(y, fixed, lab, c):
    """The normal equations of every label row: Gram matrices (rows, k, k), right-hand
    sides (rows, k) and the weighted sums of squares of ``y`` (rows,)."""
    k = len(fixed) + 1
    pairs = [(i, j) for i in range(k - 1) for j in range(i, k - 1)]
    # columns f with  sum(w f) = c @ f + labels @ ((1 - c) f)  and  sum(L g) = labels @ g
    weighted_cols = [fixed[i] * fixed[j] for i, j in pairs] + [f * y for f in fixed] + [y * y]
    label_cols = [*fixed, y]
    base = np.array([c @ f for f in weighted_cols])
    columns = np.column_stack([(1 - c) * f for f in weighted_cols] + label_cols)
    sums = lab @ columns
    n_w = len(weighted_cols)
    wsum = base[None, :] + sums[:, :n_w]
    lsum = sums[:, n_w:]
    gram = np.empty((lab.shape[0], k, k))
    for m, (i, j) in enumerate(pairs):
        gram[:, i, j] = gram[:, j, i] = wsum[:, m]
    for i in range(k - 1):
        gram[:, i, k - 1] = gram[:, k - 1, i] = lsum[:, i]
    gram[:, k - 1, k - 1] = lsum[:, 0]  # sum(w L L) = sum(L): treated weigh 1, L^2 = L
    rhs = np.concatenate([wsum[:, len(pairs):len(pairs) + k - 1], lsum[:, -1:]], axis=1)
    return gram, rhs, wsum[:, -1]


def _pivot_ratios(gram: np.ndarray) -> np.ndarray:
    """R's aliasing rule, per row: the smallest sequential pivot (squared residual norm of
    each weighted column on the earlier ones) relative to the column's squared norm."""
    n_perm, k = gram.shape[:2]
    diag = np.diagonal(gram, axis1=1, axis2=2)
    ratio = np.full((n_perm, k), np.inf)
    ratio[:, 0] = np.where(diag[:, 0] > 0, np.inf, 0.0)
    with np.errstate(all="ignore"):
        for j in range(1, k):
            lead, col = gram[:, :j, :j], gram[:, :j, j]
            ok = np.abs(np.linalg.det(lead)) > 0
            solved = np.zeros((n_perm, j))
            if ok.any():
                solved[ok] = np.linalg.solve(lead[ok], col[ok][..., None])[..., 0]
            pivot = diag[:, j] - np.einsum("pi,pi->p", col, solved)
            ratio[:, j] = np.where(diag[:, j] > 0, pivot / np.where(diag[:, j] > 0, diag[:, j],
                                                                     1.0), 0.0)
    return ratio.min(axis=1)


def _solve_rows(out: LabelledFits, fit, normal, data, vcov: str) -> list:
    """Fill `out` at the rows `fit` from their normal equations; returns the rows whose
    classical fit is too near perfect to trust (for the exact refit)."""
    gram, rhs, yy = normal
    y, fixed, lab, c = data
    n, k = lab.shape[1], gram.shape[1]
    df = n - k
    g = gram[fit]
    coef = np.linalg.solve(g, rhs[fit][..., None])[..., 0]
    bread = np.linalg.inv(g)
    refit = []
    with np.errstate(divide="ignore", invalid="ignore"):
        if vcov == "classical":
            rss = yy[fit] - np.einsum("pi,pi->p", coef, rhs[fit])
            # a near-perfect fit loses digits to cancellation: let the QR fit decide
            refit = list(fit[rss <= 1e-8 * np.abs(yy[fit])])
            var = bread[:, -1, -1] * rss / df
        else:
            w = c[None, :] + lab[fit] * (1 - c)[None, :]
            x = np.stack([np.broadcast_to(f, (len(fit), n)) for f in fixed] + [lab[fit]],
                         axis=2)
            var = _robust_variance(vcov, x, w, y[None, :] - np.einsum("pni,pi->pn", x, coef),
                                   bread, df)
        std = np.sqrt(var)
        tval = coef[:, -1] / std
        pval = 2 * special.stdtr(df, -np.abs(tval))
    defined = np.isfinite(pval)
    for name, values in (("estimate", coef[:, -1]), ("std_error", std), ("t", tval),
                         ("pvalue", pval)):
        getattr(out, name)[fit] = np.where(defined, values, np.nan)
    return refit


def _robust_variance(vcov: str, x, w, resid, bread, df) -> np.ndarray:
    """HC1 or HC3 variance of the last coefficient, per row (x: rows, n, k)."""
    n = x.shape[1]
    if vcov == "HC1":
        q = (w * resid) ** 2 * (n / df)
    else:  # HC3: leverage of the weighted design
        lev = w * np.einsum("pni,pij,pnj->pn", x, bread, x)
        q = (w * resid / (1 - lev)) ** 2
    meat = np.einsum("pni,pn,pnj->pij", x, q, x)
    return np.einsum("pi,pij,pj->p", bread[:, -1, :], meat, bread[:, -1, :])


def _refit_row(out: LabelledFits, r: int, y, x_r, w_r, vcov: str) -> None:
    """Fill row `r` of `out` from the exact QR fit (:func:`weighted_ols`)."""
    res = weighted_ols(y, x_r, w_r, vcov=vcov)
    out.estimate[r] = out.std_error[r] = out.t[r] = out.pvalue[r] = np.nan
    if not res.defined:
        return
    out.estimate[r], out.std_error[r] = res.coef[-1], res.std_error[-1]
    out.pvalue[r] = res.pvalue[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        out.t[r] = res.coef[-1] / res.std_error[-1]
    # R's summary.lm: "essentially perfect fit: summary may be unreliable"
    fitted = x_r @ res.coef
    resvar = float(np.sum(w_r * (y - fitted) ** 2)) / res.df_resid
    out.perfect[r] = resvar < (fitted.mean() ** 2 + fitted.var(ddof=1)) * 1e-30
