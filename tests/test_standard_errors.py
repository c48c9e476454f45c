"""Robust standard errors: CR1 and HC2 (CR2 with one row per cluster) against statsmodels,
Conley against a brute-force pair sum, CR2 and conley-bm against dense matrix formulas (R's
own numbers are in test_r_vcov_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from synthetic import write_one_treated_wake

from bayes_wake.mwa.analysis import MWASettings
from bayes_wake.core.regression import conley_kernel, near_clusters, parse_vcov, weighted_ols
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


@pytest.mark.parametrize("text, canonical", [
    ("CR2:near=5,60", "CR2:near=5,60"), ("cr2:near=5km,60d", "CR2:near=5,60"),
    ("CR1:near= 2.5 km , 0.5 days", "CR1:near=2.5,0.5"), ("CR2-IVW:near=5,60", "CR2-ivw:near=5,60")])
def test_near_clusters_parse_to_one_canonical_text(text, canonical):
    spec = parse_vcov(text)
    assert str(spec) == canonical and parse_vcov(canonical) == spec
    assert spec.near and spec.clustered and spec.column is None
    assert "anchors linked within" in spec.label and "km and" in spec.label


@pytest.mark.parametrize("text", ["CR2:near=5", "CR2:near=5,", "CR2:near=,60", "CR2:near=-5,60",
                                  "CR2:near=5,0", "CR2:near=a,b", "CR2:near=5,60,7"])
def test_bad_near_clusters_are_refused_with_an_example(text):
    with pytest.raises(SettingsError, match="near=5,60"):
        parse_vcov(text)


def _brute_components(lat, lon, days, km, cut_days):
    """Connected components by explicit loops over all pairs and a flood fill, numbered in
    order of each component's first anchor."""
    n = len(lat)
    linked = [[j for j in range(n) if j != i
               and _haversine_km(lat[i], lon[i], lat[j], lon[j]) <= km
               and abs(days[i] - days[j]) <= cut_days] for i in range(n)]
    label = [-1] * n
    current = 0
    for start in range(n):
        if label[start] >= 0:
            continue
        stack = [start]
        label[start] = current
        while stack:
            i = stack.pop()
            for j in linked[i]:
                if label[j] < 0:
                    label[j] = current
                    stack.append(j)
        current += 1
    return np.array(label)


@pytest.mark.parametrize("seed, km, cut_days", [(0, 5.0, 60.0), (1, 12.0, 20.0), (2, 0.5, 365.0),
                                                (3, 8.0, 150.0)])
def test_near_clusters_are_the_brute_force_components(seed, km, cut_days):
    rng = np.random.default_rng(seed)
    towns = np.column_stack([14 + rng.uniform(0, 0.6, 8), -3 + rng.uniform(0, 0.6, 8)])
    at = rng.integers(0, 8, 150)
    lat = towns[at, 0] + rng.normal(0, 0.02, 150) * (rng.random(150) < 0.7)
    lon = towns[at, 1] + rng.normal(0, 0.02, 150) * (rng.random(150) < 0.7)
    days = rng.uniform(0, 1000, 150).round()
    labels = near_clusters(lat, lon, km, cut_days, days)
    expected = _brute_components(lat, lon, days, km, cut_days)
    np.testing.assert_array_equal(labels, expected)
    assert 1 < labels.max() + 1 < 150  # the cases link some anchors, not all


def test_near_clusters_link_by_chains_and_at_exactly_the_cutoffs():
    step = np.degrees(5 / 6371.0088)  # 5 km along the equator
    lon = np.array([0.0, step, 2 * step, 10 * step, 0.0])
    lat = np.zeros(5)
    days = np.array([0.0, 60.0, 120.0, 0.0, 61.0])
    # 0-1-2 a chain at exactly 5 km and 60 days (0 and 2 are 10 km and 120 days apart);
    # 3 too far; 4 at 0's place but 61 days later, and within 5 km and 60 days of 1
    np.testing.assert_array_equal(near_clusters(lat, lon, 5.0, 60.0, days), [0, 0, 0, 1, 0])
    np.testing.assert_array_equal(near_clusters(lat, lon, 4.99, 60.0, days), [0, 1, 2, 3, 4])


def test_hc3_and_cr2_are_na_with_a_reason_at_a_wake_of_leverage_one():
    y, x, w, groups = _data(9, n=40)
    x[:, 2] = 0.0
    x[7, 2] = 1.0  # the one treated row: leverage 1
    w[7] = 1.0
    for vcov, clusters, why in (("HC3", None, "leverage 1 (HC3"),
                                ("CR2:site", np.arange(40), "CR2 undefined"),
                                ("CR2-ivw:site", np.arange(40), "CR2 undefined")):
        fit = weighted_ols(y, x, w, vcov=vcov, clusters=clusters)
        assert np.isnan(fit.std_error).all() and np.isnan(fit.pvalue).all()
        assert why in fit.se_note and fit.estimated and not fit.defined
        np.testing.assert_allclose(fit.coef, weighted_ols(y, x, w).coef)
    for vcov in ("HC1", "CR1:site"):  # R reports these
        fit = weighted_ols(y, x, w, vcov=vcov, clusters=np.arange(40))
        assert fit.defined and not fit.se_note


def test_cr2_is_na_when_one_cluster_holds_all_treated_rows_and_with_one_cluster():
    y, x, w, groups = _data(10, n=60)
    x[:, 2] = (groups == 3).astype(float)
    fit = weighted_ols(y, x, w, vcov="CR2:site", clusters=groups)
    assert not fit.defined and "I - H_gg is singular" in fit.se_note
    assert weighted_ols(y, x, w, vcov="CR1:site", clusters=groups).defined
    one = weighted_ols(y, x, w, vcov="CR1:site", clusters=np.zeros(60))
    assert "single cluster" in one.se_note and one.estimated


def test_a_cell_with_one_treated_wake_keeps_its_estimate_and_says_why_hc3_and_cr2_are_na(
        tmp_path):
    from bayes_wake.io.events import read_events
    from bayes_wake.mwa.analysis import matched_wake_analysis
    from bayes_wake.wakes import count_wakes

    write_one_treated_wake(tmp_path / "one.csv")
    cube = count_wakes(read_events(tmp_path / "one.csv"), [10], [20.0])
    classical = matched_wake_analysis(cube, MWASettings(matching=False))
    assert np.isfinite(classical.estimates["pvalue"]).all()  # R's lm reports the cell
    for vcov, why in (("HC3", "a wake with leverage 1 (HC3 undefined)"),
                      ("CR2:location", "CR2 undefined")):
        result = matched_wake_analysis(cube, MWASettings(matching=False, vcov=vcov))
        row = result.estimates.iloc[0]
        assert np.isnan(row["pvalue"]) and np.isnan(row["intercept.pval"])
        assert row["estimate"] == pytest.approx(classical.estimates["estimate"].iloc[0])
        assert np.isnan(result.surface["std_error"].item())
        assert why in result.surface["na_reason"].item()


def _brute_conley(y, x, w, lat, lon, days, km, cut_days):
    """Conley's variance and its Bell-McCaffrey version per coefficient, from the formulas
    with explicit loops over all pairs: V_k = sum_ij q_i K_ij q_j e_i e_j with q = W X M c_k,
    scaled by q'q / tr(Q Sigma), df tr(Q Sigma)^2 / tr(Q Sigma Q Sigma), Sigma = (I - H)(I -
    H)', H = X M X'W (wakes independent with equal variance)."""
    keep = w > 0
    xk, yk, wk = x[keep], y[keep], w[keep]
    la, lo, t = lat[keep], lon[keep], days[keep]
    n, p = xk.shape
    m = np.linalg.inv(xk.T @ (xk * wk[:, None]))
    e = yk - xk @ (m @ xk.T @ (wk * yk))
    kernel = np.zeros((n, n))
    hat = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            near = _haversine_km(la[i], lo[i], la[j], lo[j]) <= km
            kernel[i, j] = float(near and (cut_days is None or abs(t[i] - t[j]) <= cut_days))
            hat[i, j] = xk[i] @ m @ xk[j] * wk[j]
    sigma = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            sigma[i, j] = sum(((i == k) - hat[i, k]) * ((j == k) - hat[j, k]) for k in range(n))
    plain, small, dof = np.empty(p), np.empty(p), np.empty(p)
    for c in range(p):
        q = [wk[i] * (m @ xk[i])[c] for i in range(n)]
        big_q = [[q[i] * kernel[i, j] * q[j] for j in range(n)] for i in range(n)]
        plain[c] = sum(big_q[i][j] * e[i] * e[j] for i in range(n) for j in range(n))
        qs = [[sum(big_q[i][k] * sigma[k, j] for k in range(n)) for j in range(n)]
              for i in range(n)]
        trace = sum(qs[i][i] for i in range(n))
        trace2 = sum(qs[i][j] * qs[j][i] for i in range(n) for j in range(n))
        small[c] = plain[c] * sum(v * v for v in q) / trace
        dof[c] = trace**2 / trace2
    return np.sqrt(plain), np.sqrt(small), dof


@pytest.mark.parametrize("km, cut_days", [(20.0, None), (15.0, 120.0)])
def test_conley_and_conley_bm_equal_the_brute_force_formulas(km, cut_days):
    y, x, w, _ = _data(12, n=32)
    rng = np.random.default_rng(13)
    lat, lon = 14 + rng.uniform(0, 0.4, 32), -3 + rng.uniform(0, 0.4, 32)
    days = rng.uniform(0, 400, 32)
    kernel = conley_kernel(lat, lon, km, cut_days, days)
    text = f"{km:g}" + ("" if cut_days is None else f":{cut_days:g}")
    plain = weighted_ols(y, x, w, vcov=f"conley:{text}", kernel=kernel)
    small = weighted_ols(y, x, w, vcov=f"conley-bm:{text}", kernel=kernel)
    se_plain, se_small, dof = _brute_conley(y, x, w, lat, lon, days, km, cut_days)
    np.testing.assert_allclose(plain.std_error, se_plain, rtol=1e-9)
    np.testing.assert_allclose(small.std_error, se_small, rtol=1e-9)
    np.testing.assert_allclose(small.df_test, dof, rtol=1e-9)
    np.testing.assert_allclose(small.pvalue, 2 * stats.t.sf(abs(small.coef / se_small), dof),
                               rtol=1e-8)
    np.testing.assert_allclose(plain.pvalue, 2 * stats.norm.sf(abs(plain.coef / se_plain)),
                               rtol=1e-8)
    assert np.all(plain.df_test == np.inf)


def _cr0(y, x, w, groups):
    """The cluster-robust sandwich without a small-sample factor, from its formula."""
    keep = w > 0
    xk, yk, wk, g = x[keep], y[keep], w[keep], groups[keep]
    m = np.linalg.inv(xk.T @ (xk * wk[:, None]))
    e = yk - xk @ (m @ xk.T @ (wk * yk))
    meat = np.zeros((x.shape[1],) * 2)
    for c in np.unique(g):
        s = (xk[g == c] * (wk[g == c] * e[g == c])[:, None]).sum(axis=0)
        meat += np.outer(s, s)
    return np.sqrt(np.diag(m @ meat @ m)), np.sqrt(np.diag(m @ (
        (xk * (wk * e)[:, None]).T @ (xk * (wk * e)[:, None])) @ m))


def test_conley_with_a_cutoff_beyond_the_study_area_is_the_one_cluster_sandwich():
    """One cluster: the scores sum to zero, so the sandwich is 0; conley-bm has nothing to
    scale and, like CR2 with one cluster, is NA with the reason."""
    y, x, w, _ = _data(14, n=50)
    rng = np.random.default_rng(15)
    lat, lon = 14 + rng.uniform(0, 0.5, 50), -3 + rng.uniform(0, 0.5, 50)
    kernel = conley_kernel(lat, lon, 500.0)
    assert kernel.nnz == 50 * 50
    one, hc0 = _cr0(y, x, w, np.zeros(50))
    plain = weighted_ols(y, x, w, vcov="conley:500", kernel=kernel)
    np.testing.assert_allclose(plain.std_error, one, atol=1e-7 * hc0.max())
    assert np.all(plain.std_error < 1e-6 * hc0)
    small = weighted_ols(y, x, w, vcov="conley-bm:500", kernel=kernel)
    assert np.isnan(small.std_error).all() and "conley-bm undefined" in small.se_note
    assert small.estimated
    assert "single cluster" in weighted_ols(y, x, w, vcov="CR2:all",
                                            clusters=np.zeros(50)).se_note


def test_conley_over_towns_farther_apart_than_the_cutoff_is_the_cluster_sandwich_by_town():
    y, x, w, _ = _data(16, n=60)
    rng = np.random.default_rng(17)
    town = rng.integers(0, 6, 60)
    lat = 12 + 1.5 * town + rng.uniform(0, 0.05, 60)  # towns 160 km apart, 6 km across
    lon = -3 + rng.uniform(0, 0.05, 60)
    fit = weighted_ols(y, x, w, vcov="conley:25", kernel=conley_kernel(lat, lon, 25.0))
    np.testing.assert_allclose(fit.std_error, _cr0(y, x, w, town)[0], rtol=1e-10)
    cr1 = weighted_ols(y, x, w, vcov="CR1:town", clusters=town)
    n, g = int((w > 0).sum()), 6
    np.testing.assert_allclose(fit.std_error * np.sqrt(g / (g - 1) * (n - 1) / (n - 3)),
                               cr1.std_error, rtol=1e-10)


def test_vcov_inputs_clusters_the_cubes_anchors_near_each_other(mwa_example_events):
    from bayes_wake.mwa.analysis import vcov_inputs
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, [4], [4.0])
    clusters, kernel = vcov_inputs(cube, "CR2:near=20km,30d")
    days = (cube["time"].to_numpy() - np.datetime64("1970-01-01")) / np.timedelta64(1, "D")
    expected = _brute_components(cube["lat"].to_numpy(), cube["lon"].to_numpy(), days, 20.0,
                                 30.0)
    assert kernel is None and len(clusters) == cube.sizes["event"] == 75
    np.testing.assert_array_equal(clusters, expected)
    assert 10 < clusters.max() + 1 < 75


@pytest.mark.parametrize("text, canonical, columns", [
    ("wake", "CR1:wake", ()), ("location", "CR1:location", ()), ("CR2:location",
     "CR2:location", ()), ("CR1:site", "CR1:site", ("site",)), ("CR2:near=5,60",
     "CR2:near=5,60", ()), ("HC1", "HC1", ()), ("conley:25", "conley:25", ())])
def test_one_grammar_for_ols_and_models(text, canonical, columns):
    spec = parse_vcov(text)
    assert str(spec) == canonical and parse_vcov(spec) is spec
    assert parse_vcov(canonical) == spec
    assert spec.event_columns == columns


def test_cluster_ids_of_each_kind_of_clusters():
    from bayes_wake.core.regression import cluster_ids

    lon, lat = np.array([1.0, 1.0, 2.0, 1.0]), np.array([5.0, 5.0, 5.0, 6.0])
    days = np.array([0.0, 400.0, 0.0, 0.0])
    np.testing.assert_array_equal(cluster_ids("wake", lon=lon, lat=lat), [0, 1, 2, 3])
    np.testing.assert_array_equal(cluster_ids("CR2:location", lon=lon, lat=lat), [0, 0, 1, 2])
    np.testing.assert_array_equal(
        cluster_ids("CR1:site", lon=lon, lat=lat, values=["b", "a", "b", "c"]), [1, 0, 1, 2])
    np.testing.assert_array_equal(
        cluster_ids("CR2:near=1,30", lon=lon, lat=lat, time_days=days), [0, 1, 2, 3])


def test_a_cube_column_named_like_an_anchor_cluster_is_refused(mwa_example_csv):
    """`location` and `wake` are the grammar's clusters of anchors; a cube column of that name
    once won silently, so a cube that has one is refused, naming the column."""
    from bayes_wake.errors import SettingsError
    from bayes_wake.io.events import read_events
    from bayes_wake.mwa.analysis import vcov_inputs
    from bayes_wake.wakes import count_wakes

    events = read_events(mwa_example_csv).rename(columns={"match1": "location"})
    cube = count_wakes(events, [2, 4], [2.0, 4.0], covariates=["location"])
    with pytest.raises(SettingsError, match="event column 'location'"):
        vcov_inputs(cube, "CR2:location")
    clusters, _ = vcov_inputs(cube.drop_vars("location"), "CR2:location")
    assert clusters is not None and len(clusters) == cube.sizes["event"]
