"""Robust standard errors: CR1 and HC2 (CR2 with one row per cluster) against statsmodels,
Conley against a brute-force pair sum, CR2 and conley-bm against dense matrix formulas (R's
own numbers are in test_r_vcov_parity.py)."""

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


def _dense_model(y, x, w, theta=None):
    """The weighted fit as dense matrices on the rows with positive weight: design, weights,
    residuals, M = (X'WX)^-1 and the residuals' covariance Sigma = (I - H) Theta (I - H)',
    H = X M X'W, when Var(y) = Theta (identity unless ``theta``)."""
    keep = w > 0
    xk, wk, yk = x[keep], w[keep], y[keep]
    m = np.linalg.inv(xk.T @ (xk * wk[:, None]))
    hat = xk @ m @ xk.T @ np.diag(wk)
    e = yk - hat @ yk
    big_theta = np.diag(np.ones(len(yk)) if theta is None else theta[keep])
    i_h = np.eye(len(yk)) - hat
    return xk, wk, e, m, i_h @ big_theta @ i_h.T, big_theta, keep


def _power(matrix, power):
    values, vectors = np.linalg.eigh(matrix)
    return vectors @ np.diag(values**power) @ vectors.T


def _dense_cr2(y, x, w, groups, theta=None):
    """Pustejovsky & Tipton's CR2 and Satterthwaite df, written from the paper with dense
    matrices: A_g = T^(1/2) (T^(1/2) Sigma_gg T^(1/2))^(-1/2) T^(1/2), T = Theta_gg."""
    xk, wk, e, m, sigma, big_theta, keep = _dense_model(y, x, w, theta)
    g = groups[keep]
    meat, columns = np.zeros((3, 3)), {k: [] for k in range(3)}
    for c in np.unique(g):
        at = np.flatnonzero(g == c)
        root = _power(big_theta[np.ix_(at, at)], 0.5)
        adjust = root @ _power(root @ sigma[np.ix_(at, at)] @ root, -0.5) @ root
        score = xk[at].T @ np.diag(wk[at]) @ adjust @ e[at]
        meat += np.outer(score, score)
        for k in range(3):
            column = np.zeros(len(e))
            column[at] = adjust @ np.diag(wk[at]) @ xk[at] @ m[:, k]
            columns[k].append(column)
    dof = []
    for k in range(3):
        f = np.column_stack(columns[k])
        p_mat = f.T @ sigma @ f
        dof.append(np.trace(p_mat) ** 2 / np.sum(p_mat**2))
    return m @ meat @ m, np.array(dof), columns, sigma


def test_cr2_with_one_row_per_cluster_and_unit_weights_is_statsmodels_hc2():
    y, x, _, _ = _data(4)
    w = np.ones(len(y))
    fit = weighted_ols(y, x, w, vcov="CR2:row", clusters=np.arange(len(y)))
    ref = sm.OLS(y, x).fit(cov_type="HC2")
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-10)


def test_cr2_ivw_with_one_row_per_cluster_is_statsmodels_hc2_of_the_weighted_fit():
    y, x, w, _ = _data(4)
    fit = weighted_ols(y, x, w, vcov="CR2-ivw:row", clusters=np.arange(len(y)))
    keep = w > 0
    ref = sm.WLS(y[keep], x[keep], weights=w[keep]).fit(cov_type="HC2")
    np.testing.assert_allclose(fit.std_error, ref.bse, rtol=1e-10)


@pytest.mark.parametrize("kind", ["CR2", "CR2-ivw"])
def test_cr2_equals_the_dense_pustejovsky_tipton_formulas(kind):
    y, x, w, groups = _data(5)
    fit = weighted_ols(y, x, w, vcov=f"{kind}:site", clusters=groups)
    theta = 1 / np.where(w > 0, w, 1) if kind == "CR2-ivw" else None
    cov, dof, columns, sigma = _dense_cr2(y, x, w, groups, theta)
    np.testing.assert_allclose(fit.std_error, np.sqrt(np.diag(cov)), rtol=1e-9)
    np.testing.assert_allclose(fit.df_test, dof, rtol=1e-9)
    t = fit.coef / fit.std_error
    np.testing.assert_allclose(fit.pvalue, 2 * stats.t.sf(abs(t), dof), rtol=1e-8)
    xk, wk, _, m, _, big_theta, _ = _dense_model(y, x, w, theta)
    truth = m @ xk.T @ np.diag(wk) @ big_theta @ np.diag(wk) @ xk @ m
    for k in range(3):  # exactly unbiased when the working model holds
        f = np.column_stack(columns[k])
        assert np.trace(f.T @ sigma @ f) == pytest.approx(truth[k, k], rel=1e-9)
    assert 2 < dof[-1] < len(np.unique(groups)) - 1


def test_cr2_with_weights_equal_within_clusters_is_the_transformed_regressions():
    """Where a cluster's weights are equal, both working models give the CR2 of the
    regression of sqrt(w) y on sqrt(w) x (clubSandwich on that unweighted fit)."""
    y, x, _, groups = _data(8)
    w = np.array([0.5, 1.0, 2.0])[groups % 3]
    sw = np.sqrt(w)
    ref = weighted_ols(y * sw, x * sw[:, None], vcov="CR2:site", clusters=groups)
    fit = weighted_ols(y, x, w, vcov="CR2-ivw:site", clusters=groups)
    np.testing.assert_allclose(fit.std_error, ref.std_error, rtol=1e-9)
    np.testing.assert_allclose(fit.df_test, ref.df_test, rtol=1e-9)
    assert not np.allclose(weighted_ols(y, x, w, vcov="CR2:site", clusters=groups).std_error,
                           ref.std_error, rtol=1e-3)


def test_conley_bm_equals_the_dense_formulas():
    y, x, w, _ = _data(6, n=60)
    rng = np.random.default_rng(7)
    lat, lon = 14 + rng.uniform(0, 0.5, 60), -3 + rng.uniform(0, 0.5, 60)
    kernel = conley_kernel(lat, lon, 20)
    fit = weighted_ols(y, x, w, vcov="conley-bm:20", kernel=kernel)
    plain = weighted_ols(y, x, w, vcov="conley:20", kernel=kernel)
    xk, wk, e, m, sigma, _, keep = _dense_model(y, x, w)
    k_dense = kernel.toarray()[np.ix_(keep, keep)]
    for k in range(3):
        q = wk * (xk @ m[:, k])
        big_q = np.diag(q) @ k_dense @ np.diag(q)
        qs = big_q @ sigma
        variance = (e @ big_q @ e) * (q @ q) / np.trace(qs)
        dof = np.trace(qs) ** 2 / np.trace(qs @ qs)
        assert fit.std_error[k] == pytest.approx(np.sqrt(variance), rel=1e-9)
        assert plain.std_error[k] == pytest.approx(np.sqrt(e @ big_q @ e), rel=1e-9)
        assert fit.df_test[k] == pytest.approx(dof, rel=1e-9)
        t = fit.coef[k] / fit.std_error[k]
        assert fit.pvalue[k] == pytest.approx(2 * stats.t.sf(abs(t), dof), rel=1e-8)


@pytest.mark.parametrize("text", ["CR3:x", "CR1", "CR2", "conley-bm", "conley", "conley:-3", "conley:a", "HC9"])
def test_bad_choices_are_refused_with_the_accepted_forms(text):
    with pytest.raises(SettingsError, match="CR1|CR2|conley|classical"):
        parse_vcov(text)


def test_choices_round_trip():
    for text in ("classical", "HC1", "HC3", "CR1:admin2", "CR2:admin2", "CR2-ivw:admin2",
                 "conley:25", "conley:25:180", "conley-bm:25", "conley-bm:25:180",
                 "CR1:near=5,60", "CR2:near=2.5,0.5", "CR2-ivw:near=5,60"):
        assert str(parse_vcov(text)) == text
    assert str(parse_vcov("hc1")) == "HC1"
