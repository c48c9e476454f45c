"""The count model of the wakes (``nb_did``): its likelihood, its g-computation, its checks."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from bayes_wake.bayes.count_model import CountData, wake_loglik
from bayes_wake.bayes.spec import load_spec, parse_spec
from bayes_wake.errors import ModelSpecError


def _data(pre, post, treated, group, covariates=None) -> CountData:
    pre, post = np.atleast_2d(pre).astype(float), np.atleast_2d(post).astype(float)
    n = len(pre)
    return CountData(windows=np.array([10, 20]), radii=np.array([3.0, 6.0]), pre=pre,
                     post=post, treated=np.asarray(treated), weight=np.ones(n),
                     covariates=np.zeros((n, 0)) if covariates is None else covariates,
                     covariate_names=(), group=np.asarray(group), event=np.arange(n))


def _integrated(pre, post, mean_pre, mean_post, alpha) -> float:
    """log of the integral over a Gamma(alpha, alpha) frailty of the Poisson counts."""
    def integrand(f):
        return (np.prod(stats.poisson.pmf(pre, f * mean_pre))
                * np.prod(stats.poisson.pmf(post, f * mean_post))
                * stats.gamma.pdf(f, alpha, scale=1 / alpha))
    return float(np.log(integrate.quad(integrand, 0, np.inf, limit=200)[0]))


@pytest.mark.parametrize("group", [[0, 0, 0, 0], [0, 1, 0, 1]])
def test_the_wake_likelihood_integrates_the_gamma_frailty_exactly(group):
    baseline = np.log([0.2, 0.5, 0.1, 0.3])
    trend, effect = np.array([0.1, -0.2, 0.3, 0.0]), np.array([0.5, 0.5, -0.4, 1.0])
    pre, post = np.array([1, 0, 2, 0]), np.array([0, 3, 1, 1])
    alpha = np.array(0.7)
    data = _data(pre, post, [1], group)
    got = wake_loglik(baseline, trend, effect, np.zeros(1), alpha, data)[0]
    mean_pre, mean_post = np.exp(baseline), np.exp(baseline + trend + effect)
    g = np.asarray(group)
    want = sum(_integrated(pre[g == k], post[g == k], mean_pre[g == k], mean_post[g == k],
                           0.7) for k in np.unique(g))
    assert got == pytest.approx(want, rel=1e-6)
    poisson = wake_loglik(baseline, trend, effect, np.zeros(1), None, data)[0]
    want_poisson = (stats.poisson.logpmf(pre, mean_pre).sum()
                    + stats.poisson.logpmf(post, mean_post).sum())
    assert poisson == pytest.approx(want_poisson, rel=1e-9)


def test_the_pytensor_likelihood_equals_the_numpy_one():
    rng = np.random.default_rng(0)
    data = _data(rng.poisson(0.4, (7, 4)), rng.poisson(0.6, (7, 4)),
                 [1, 0, 1, 0, 0, 1, 0], [0, 0, 1, 1], covariates=rng.normal(size=(7, 1)))
    baseline, trend, effect = rng.normal(-1, 0.3, 4), rng.normal(0, 0.3, 4), rng.normal(0, 0.3,
                                                                                        4)
    shift = data.covariates[:, 0] * 0.4
    want = wake_loglik(baseline, trend, effect, shift, np.array(1.3), data)
    variables = [pt.dvector() for _ in range(4)] + [pt.dscalar()]
    graph = wake_loglik(*variables, data, module=pt)
    got = pytensor.function(variables, graph)(baseline, trend, effect, shift, 1.3)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_the_count_model_spec_is_the_count_estimand_on_increments():
    spec = load_spec("nb_did")
    assert spec.counts_model and spec.estimand == "count_did" and spec.frailty == "wake"
    assert load_spec("poisson_did").likelihood == "poisson"
    assert not load_spec("smooth_did").counts_model
    with pytest.raises(ModelSpecError, match="increments"):
        parse_spec({**spec.model_dump(mode="json"), "nested": "temper"})
    with pytest.raises(ModelSpecError, match="discrepancy"):
        parse_spec({**spec.model_dump(mode="json"), "discrepancy": 0.5})
