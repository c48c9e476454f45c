"""Robust standard errors: CR1 against statsmodels, Conley against a brute-force pair sum."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from bayes_wake.errors import SettingsError
from bayes_wake.regression import conley_kernel, parse_vcov, weighted_ols


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


@pytest.mark.parametrize("text", ["CR2:x", "CR1", "conley", "conley:-3", "conley:a", "HC9"])
def test_bad_choices_are_refused_with_the_accepted_forms(text):
    with pytest.raises(SettingsError, match="CR1|conley|classical"):
        parse_vcov(text)


def test_choices_round_trip():
    for text in ("classical", "HC1", "HC3", "CR1:admin2", "conley:25", "conley:25:180"):
        assert str(parse_vcov(text)) == text
    assert str(parse_vcov("hc1")) == "HC1"
