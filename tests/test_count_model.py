"""The count model of the wakes (``nb_did``): its likelihood, its g-computation, its checks."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy import integrate, stats

from bayes_wake.mwa.analysis import MWASettings
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


def _simulated_counts(seed: int = 3, n: int = 500, alpha: float = 0.4):
    """Wakes on a 3 x 3 grid with gamma frailties (shape ``alpha``), a pre-to-post change of
    1.2 and the treatment doubling the treated wakes' post rate; returns the counts and the
    true count-scale ATT of the largest cell (events per treated wake, from the true
    frailties)."""
    rng = np.random.default_rng(seed)
    baseline = np.log(np.linspace(0.05, 0.4, 9))
    treated = (np.arange(n) < n // 3).astype(np.int64)
    frailty = rng.gamma(alpha, 1 / alpha, size=n)
    mean_pre = frailty[:, None] * np.exp(baseline)[None, :]
    mean_post = mean_pre * 1.2 * np.where(treated[:, None] == 1, 2.0, 1.0)
    data = CountData(windows=np.array([10, 20, 30]), radii=np.array([3.0, 6.0, 9.0]),
                     pre=rng.poisson(mean_pre).astype(float),
                     post=rng.poisson(mean_post).astype(float), treated=treated,
                     weight=np.ones(n), covariates=np.zeros((n, 0)), covariate_names=(),
                     group=np.zeros(9, dtype=np.int64), event=np.arange(n))
    truth = float((mean_pre[treated == 1] * 1.2).sum(axis=1).mean())
    return data, truth


def _sampled(data, name: str):
    from types import SimpleNamespace

    from bayes_wake.bayes.count_model import build_count_model
    from bayes_wake.bayes.fit import sample_model

    spec = load_spec(name).with_sampler(draws=300, tune=300, chains=2)
    idata, _, _ = sample_model(build_count_model(data, spec), spec, progressbar=False)
    return SimpleNamespace(idata=idata, count_data=data, spec=spec)


@pytest.mark.slow
def test_the_predictive_check_flags_poisson_on_overdispersed_counts_and_passes_nb():
    from bayes_wake.bayes.count_model import treated_means
    from bayes_wake.bayes.ppc import predictive_check

    data, truth = _simulated_counts()
    nb, poisson = _sampled(data, "nb_did"), _sampled(data, "poisson_did")
    nb_table, nb_verdict = predictive_check(nb, seed=1)
    poisson_table, poisson_verdict = predictive_check(poisson, seed=1)
    assert "MISFITS" in poisson_verdict and "variance/mean" in poisson_verdict
    assert poisson_table.query("statistic == 'dispersion'")["misfit"].mean() > 0.8
    assert "reproduces" in nb_verdict, nb_verdict
    assert nb_table["misfit"].mean() < 0.05
    # the overdispersion learned: the frailty shape near the true 0.4
    shape = float(nb.idata.posterior["frailty_shape"].mean())
    assert 0.25 < shape < 0.6
    # the count-scale ATT of the largest cell (g-computation) covers the truth
    fitted, counterfactual = treated_means(nb.idata.posterior.to_dataset(), data)
    att = (fitted - counterfactual).sum(axis=(1, 2))
    low, high = np.quantile(att, [0.05, 0.95])
    assert low < truth < high, (low, truth, high)
    assert abs(att.mean() - truth) < 0.25 * truth


@pytest.mark.slow
def test_fit_with_the_count_model_writes_its_check_and_compares_by_loo(mwa_example_csv,
                                                                       tmp_path):
    """`fit --spec nb_did --compare poisson_did` on R's example: the predictive check and the
    PSIS-LOO table are in the output folder, with a verdict on the console."""
    import pandas as pd
    from click.testing import CliRunner

    from bayes_wake.cli import main

    out = tmp_path / "fit"
    args = ["--t-window", "2", "10", "2", "--spat-window", "2", "10", "2",
            "--treatment", "type=treatment", "--control", "type=control",
            "--dependent", "type=dependent", "--match", "match1,match2", "--weighted", "--tcm"]
    result = CliRunner().invoke(main, ["fit", "--data", str(mwa_example_csv), *args,
                                       "--spec", "nb_did", "--compare", "poisson_did",
                                       "--draws", "200", "--tune", "200", "--chains", "2",
                                       "--allow-unconverged", "--out", str(out)])
    assert result.exit_code == 0, result.output[-3000:]
    text = " ".join(result.output.split())
    assert "Posterior predictive check: nb_did" in text and "PSIS-LOO prefers" in text
    ppc = pd.read_csv(out / "ppc.csv")
    assert set(ppc["statistic"]) == {"zero_share", "dispersion", "max_count"}
    assert len(ppc) == 3 * 25 and ppc["p_value"].dropna().between(0, 1).all()
    assert (out / "ppc.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(out / "model_comparison.csv")
    assert set(table["model"]) == {"nb_did", "poisson_did"}
    assert {"elpd_loo", "pareto_k_max", "pareto_k_bad"} <= set(table.columns)
    surface = pd.read_csv(out / "effect_surface.csv")
    assert surface["mean"].notna().sum() > 0


def test_g_computation_is_the_treated_wakes_excess_at_their_posterior_frailty():
    import xarray as xr

    from bayes_wake.bayes.count_model import treated_means

    data = _data([[1, 0, 2, 0], [0, 0, 0, 0], [3, 1, 0, 0]],
                 [[2, 1, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]], [1, 1, 0], [0, 0, 0, 0])
    data = CountData(**{**data.__dict__, "weight": np.array([1.0, 3.0, 1.0])})
    a, d, tau, alpha = np.log([0.2, 0.5, 0.1, 0.3]), np.full(4, 0.1), np.full(4, 0.7), 0.8
    posterior = xr.Dataset({
        "baseline": (("chain", "draw", "increment"), a[None, None]),
        "trend": (("chain", "draw", "increment"), d[None, None]),
        "increment_effect": (("chain", "draw", "increment"), tau[None, None]),
        "frailty_shape": (("chain", "draw"), np.array([[alpha]]))})
    fitted, counterfactual = treated_means(posterior, data)
    expected_total = np.exp(a).sum() + np.exp(a + d + tau).sum()
    want = np.zeros(4)
    for i, w in ((0, 0.25), (1, 0.75)):  # CEM weights over the two treated wakes
        frailty = (alpha + data.pre[i].sum() + data.post[i].sum()) / (alpha + expected_total)
        want += w * frailty * np.exp(a + d) * (np.exp(tau) - 1)
    np.testing.assert_allclose((fitted - counterfactual).ravel(), want, rtol=1e-12)


def test_the_verdict_names_the_statistic_and_direction_that_misfit():
    from bayes_wake.bayes.ppc import predictive_table, verdict

    rng = np.random.default_rng(2)
    overdispersed = rng.negative_binomial(0.3, 0.3 / (0.3 + 0.5), size=(800, 2, 2))
    poisson = rng.poisson(0.5, size=(200, 800, 2, 2))
    table = predictive_table(poisson, overdispersed, np.ones(800), [10, 20], [3.0, 6.0])
    line = verdict(table, "m")
    assert "MISFITS" in line and "a smaller share of wakes with no event" in line
    assert "a smaller variance/mean" in line
    same = rng.negative_binomial(0.3, 0.3 / (0.3 + 0.5), size=(200, 800, 2, 2))
    assert "reproduces" in verdict(predictive_table(same, overdispersed, np.ones(800),
                                                    [10, 20], [3.0, 6.0]), "m")


def test_the_count_data_are_the_matched_complete_wakes_and_drop_overlaps_on_request(
        mwa_example_events):
    from bayes_wake.bayes.count_model import prepare_count_data
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, windows=[2, 4, 6], radii=[2, 4])
    spec = load_spec("nb_did")
    data = prepare_count_data(cube, spec, ["match1", "match2"], tcm=True)
    post = cube["dependent"].sel(period="post").isel(window=-1, radius=-1).to_numpy()
    # the increments sum to the largest cell's count: every event once
    np.testing.assert_array_equal(data.post.sum(axis=1), post[data.event])
    assert cube["complete"].all("window").to_numpy()[data.event].all()
    loose = prepare_count_data(cube, spec, ["match1", "match2"])
    strict = prepare_count_data(cube, spec, ["match1", "match2"], delete_sutva=True)
    overlap = (cube["same_type"] + cube["other_type"]).sel(period="pre").isel(window=-1,
                                                                               radius=-1)
    assert (overlap.to_numpy()[strict.event] == 0).all()
    assert len(strict.event) < len(loose.event)


def test_the_count_model_refuses_spillover_rather_than_ignoring_it(mwa_example_events):
    """nb_did has no exposure terms: --spillover must be refused, naming the flag and the
    model that does take it, before any sampling."""
    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.errors import SettingsError
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, [2, 4], [2, 4])
    with pytest.raises(SettingsError, match="spillover=True.*smooth_did"):
        fit_surface(cube, load_spec("nb_did"), MWASettings(match_on=["match1", "match2"],
                                                           spillover=True, weighted=True))
