"""Robust standard errors: CR1 and HC2 (CR2 with one row per cluster) against statsmodels,
Conley against a brute-force pair sum, CR2 and conley-bm against dense matrix formulas."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from bayes_wake.core.regression import conley_kernel, parse_vcov, weighted_ols
from bayes_wake.errors import SettingsError


def _data(seed=0, n=120):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 15, n)
    shock = rng.normal(0, 1, 15)[groups]
    x = np.column_stack([np.ones(n), rng.poisson(2, n), rng.integers(0, 2, n)])
    y = x @ [0.5, 0.3, 0.2] + shock + rng.normal(0, 1, n)
    w = rng.choice([0.0, 0.5, 1.0, 2.0], n)
    return y, x, w, groups


def test_cr1_equals_statsmodels_with_weights_and_dropped_rows():
    y, x, w, groups = _data()
    fit = weighted_ols(y, x, w, vcov="CR1:site", clusters=groups)
    keep = w > 0
    ref = sm.WLS(y[keep], x[keep], weights=w[keep]).fit(
        cov_type="cluster", cov_kwds={"groups": groups[keep]}, use_t=True)
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-10)
    np.testing.assert_allclose(fit.pvalue, ref.pvalues, rtol=1e-8)


def test_hc1_equals_statsmodels():
    y, x, w, _ = _data(1)
    fit = weighted_ols(y, x, w, vcov="HC1")
    keep = w > 0
    ref = sm.WLS(y[keep], x[keep], weights=w[keep]).fit(cov_type="HC1")
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-10)


def _haversine_km(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * np.arcsin(np.sqrt(a))


def test_conley_equals_a_brute_force_sum_over_pairs():
    y, x, w, _ = _data(2, n=60)
    rng = np.random.default_rng(3)
    lat, lon = 14 + rng.uniform(0, 0.5, 60), -3 + rng.uniform(0, 0.5, 60)
    days = rng.uniform(0, 400, 60)
    fit = weighted_ols(y, x, w, vcov="conley:20:100",
                       kernel=conley_kernel(lat, lon, 20, 100, days))
    keep = w > 0
    xk, yk, wk = x[keep], y[keep], w[keep]
    bread = np.linalg.inv(xk.T @ (xk * wk[:, None]))
    e = yk - xk @ (bread @ xk.T @ (wk * yk))
    scores = xk * (wk * e)[:, None]
    meat = np.zeros((3, 3))
    la, lo, t = lat[keep], lon[keep], days[keep]
    for i in range(len(yk)):
        for j in range(len(yk)):
            if _haversine_km(la[i], lo[i], la[j], lo[j]) <= 20 and abs(t[i] - t[j]) <= 100:
                meat += np.outer(scores[i], scores[j])
    se = np.sqrt(np.diag(bread @ meat @ bread))
    np.testing.assert_allclose(fit.std_error, se, rtol=1e-10)
    # a cutoff that holds no pair is HC0; one that holds every pair puts all scores together
    assert weighted_ols(y, x, w, vcov="conley:20:100",
                        kernel=conley_kernel(lat, lon, 20, 100, days)).std_error[2] != \
        pytest.approx(weighted_ols(y, x, w, vcov="conley:0.001",
                                   kernel=conley_kernel(lat, lon, 0.001)).std_error[2])


def test_the_kernel_counts_a_pair_at_exactly_the_cutoff():
    lat = np.array([0.0, 0.0])
    lon = np.array([0.0, np.degrees(10 / 6371.0088)])  # 10 km apart on the equator
    assert conley_kernel(lat, lon, 10.0).toarray().sum() == 4
    assert conley_kernel(lat, lon, 9.99).toarray().sum() == 2


def _dense_parts(y, x, w):
    """The weighted problem as dense matrices: design, residuals, (X'WX)^-1, M = I - H."""
    keep = w > 0
    sw = np.sqrt(w[keep])
    a, yw = x[keep] * sw[:, None], y[keep] * sw
    bread = np.linalg.inv(a.T @ a)
    m = np.eye(len(yw)) - a @ bread @ a.T
    return a, m @ yw, bread, m, keep


def _inverse_root(matrix):
    values, vectors = np.linalg.eigh(matrix)
    root = np.where(values > 1e-10, np.abs(values) ** -0.5, 0.0)
    return vectors @ np.diag(root) @ vectors.T


def test_cr2_with_one_row_per_cluster_is_statsmodels_hc2():
    y, x, w, _ = _data(4)
    fit = weighted_ols(y, x, w, vcov="CR2:row", clusters=np.arange(len(y)))
    keep = w > 0
    ref = sm.WLS(y[keep], x[keep], weights=w[keep]).fit(cov_type="HC2")
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-10)


def test_cr2_equals_the_dense_bell_mccaffrey_formulas():
    y, x, w, groups = _data(5)
    fit = weighted_ols(y, x, w, vcov="CR2:site", clusters=groups)
    a, e, bread, m, keep = _dense_parts(y, x, w)
    g = groups[keep]
    meat = np.zeros((3, 3))
    roots = {c: _inverse_root(m[np.ix_(g == c, g == c)]) for c in np.unique(g)}
    for c, root in roots.items():
        score = a[g == c].T @ root @ e[g == c]
        meat += np.outer(score, score)
    cov = bread @ meat @ bread
    np.testing.assert_allclose(fit.std_error, np.sqrt(np.diag(cov)), rtol=1e-9)
    for k in range(3):  # Imbens & Kolesar's df: eigenvalues of G'G
        cols = [m[:, g == c] @ root @ a[g == c] @ bread[:, k] for c, root in roots.items()]
        lam = np.linalg.eigvalsh(np.column_stack(cols).T @ np.column_stack(cols))
        dof = lam.sum() ** 2 / (lam**2).sum()
        t = fit.coef[k] / fit.std_error[k]
        assert fit.pvalue[k] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-8)
        # CR2 is exactly unbiased under independent homoskedastic errors
        q = sum(np.outer(v, v) for v in cols)
        assert np.trace(q) == pytest.approx(bread[k, k], rel=1e-9)
    assert 2 < dof < len(np.unique(g)) - 1


def test_conley_bm_equals_the_dense_formulas():
    y, x, w, _ = _data(6, n=60)
    rng = np.random.default_rng(7)
    lat, lon = 14 + rng.uniform(0, 0.5, 60), -3 + rng.uniform(0, 0.5, 60)
    kernel = conley_kernel(lat, lon, 20)
    fit = weighted_ols(y, x, w, vcov="conley-bm:20", kernel=kernel)
    plain = weighted_ols(y, x, w, vcov="conley:20", kernel=kernel)
    a, e, bread, m, keep = _dense_parts(y, x, w)
    k_dense = kernel.toarray()[np.ix_(keep, keep)]
    for k in range(3):
        q = a @ bread[:, k]
        big_q = np.diag(q) @ k_dense @ np.diag(q)
        qm = big_q @ m
        variance = (e @ big_q @ e) * (q @ q) / np.trace(qm)
        dof = np.trace(qm) ** 2 / np.trace(qm @ qm)
        assert fit.std_error[k] == pytest.approx(np.sqrt(variance), rel=1e-9)
        assert plain.std_error[k] == pytest.approx(np.sqrt(e @ big_q @ e), rel=1e-9)
        t = fit.coef[k] / fit.std_error[k]
        assert fit.pvalue[k] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-8)


@pytest.mark.parametrize("text", ["CR3:x", "CR1", "CR2", "conley-bm", "conley", "conley:-3", "conley:a", "HC9"])
def test_bad_choices_are_refused_with_the_accepted_forms(text):
    with pytest.raises(SettingsError, match="CR1|CR2|conley|classical"):
        parse_vcov(text)


def test_choices_round_trip():
    for text in ("classical", "HC1", "HC3", "CR1:admin2", "CR2:admin2", "conley:25",
                 "conley:25:180", "conley-bm:25", "conley-bm:25:180"):
        assert str(parse_vcov(text)) == text
    assert str(parse_vcov("hc1")) == "HC1"
