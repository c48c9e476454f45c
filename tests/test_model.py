"""Model specs, model building and the hand-written likelihoods (no MCMC here)."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytest
from scipy import stats

from bayes_wake.bayes.model import _increments, build_model, grid_field_basis, prepare_model_data
from bayes_wake.bayes.spec import MODELS_DIR, list_specs, load_spec, parse_spec
from bayes_wake.errors import ModelSpecError
from bayes_wake.simulate import simulate_study
from bayes_wake.wakes import count_wakes

WINDOWS, RADII = [10, 20, 30], [3.0, 6.0, 9.0]


@pytest.fixture(scope="module")
def small_cube():
    study = simulate_study(5, n_treatment=80, n_control=300, n_dependent=400)
    return count_wakes(study.events, WINDOWS, RADII), list(study.events.attrs["covariates"])


def test_shipped_specs_are_the_promised_ones():
    assert {"smooth_nb", "unpooled_nb", "poisson", "lagged_nb"} <= set(list_specs())
    assert load_spec("smooth_nb").name == "smooth_nb"


def test_the_gaussian_flat_prior_spec_is_gone_and_its_likelihood_refused(tmp_path):
    """gaussian_ols, the flat-prior twin of OLS, did not converge on R's example (R-hat 2.663,
    ESS 2, 323 divergences) and gave values where OLS gives none: it is no longer shipped,
    and a spec asking for a gaussian likelihood is refused, naming the ones there are."""
    assert "gaussian_ols" not in list_specs()
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nlikelihood: gaussian\npre_count: identity\n"
                    "nested: independent\n")
    with pytest.raises(ModelSpecError, match="negative_binomial"):
        load_spec(path)


def test_a_folder_named_like_a_spec_does_not_hide_the_shipped_one(tmp_path, monkeypatch):
    """``fit --out smooth_did`` makes a folder named like the default spec; the next run's
    ``load_spec("smooth_did")`` must still find the shipped file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "smooth_did").mkdir()
    assert load_spec("smooth_did").name == "smooth_did"


@pytest.mark.parametrize("name", list_specs())
def test_every_spec_builds_and_draws_from_its_prior_predictive(name, small_cube):
    cube, covariates = small_cube
    spec = load_spec(name)
    data = prepare_model_data(cube, spec, covariates)
    assert data.n_rows > 0 and np.all(data.weight > 0)
    build_model(data, spec)  # the sampling version builds
    with build_model(data, spec, predictive=True):
        prior = pm.sample_prior_predictive(draws=20, random_seed=1)
    post = prior.prior["post"]  # unobserved in the predictive twin: drawn with the prior
    assert post.sizes["row"] == data.n_rows
    assert np.isfinite(post.to_numpy()).all()
    assert "effect" in prior.prior and prior.prior["effect"].sizes["cell"] == 9


def test_unknown_keys_are_rejected_with_the_nearest_valid_key():
    base = load_spec("smooth_nb").model_dump()
    with pytest.raises(ModelSpecError, match="unknown key 'efect'; did you mean 'effect'"):
        parse_spec({**base, "efect": {}}, "spec.yaml")
    bad_nested = {**base, "effect": {**base["effect"], "polling": "smooth"}}
    with pytest.raises(ModelSpecError, match="did you mean 'pooling'"):
        parse_spec(bad_nested)
    with pytest.raises(ModelSpecError, match="likelihood"):
        parse_spec({**base, "likelihood": "zip"})
    with pytest.raises(ModelSpecError, match="increments needs pre_count: paired"):
        parse_spec({**base, "pre_count": "log1p"})
    with pytest.raises(ModelSpecError, match="no model spec"):
        load_spec("no_such_model")


def test_spec_files_are_valid_yaml_with_a_name_matching_the_file():
    for path in MODELS_DIR.glob("*.yaml"):
        assert load_spec(path).name == path.stem


def test_grid_field_basis_is_the_sum_to_zero_icar():
    basis, scaling = grid_field_basis(3, 4)
    assert basis.shape == (12, 11)
    np.testing.assert_allclose(basis.sum(axis=0), 0, atol=1e-10)  # sum-to-zero built in
    covariance = basis @ basis.T  # generalised inverse of the grid Laplacian
    lap = np.linalg.pinv(covariance)
    off = lap - np.diag(np.diag(lap))
    assert np.allclose(off[np.abs(off) > 1e-6], -1)  # neighbours only, weight 1
    assert scaling > 0


def test_increments_sum_back_to_the_cumulative_counts():
    rng = np.random.default_rng(0)
    cumulative = rng.poisson(1, (5, 3, 4)).cumsum(axis=1).cumsum(axis=2)
    inc = _increments(cumulative)
    np.testing.assert_array_equal(inc.cumsum(axis=1).cumsum(axis=2), cumulative)


def _evaluate(model, point, names):
    """The model's weighted log-likelihood and named variables at a point (value space)."""
    import pytensor

    outputs = model.replace_rvs_by_values([model.potentials[0], *(model[n] for n in names)])
    fn = pytensor.function(model.value_vars, outputs, on_unused_input="ignore")
    values = fn(*(point[v.name] for v in model.value_vars))
    return float(values[0]), values[1:]


@pytest.mark.parametrize("likelihood", ["negative_binomial", "poisson"])
def test_paired_likelihood_equals_scipy(small_cube, likelihood):
    cube, covariates = small_cube
    spec = parse_spec({**load_spec("smooth_nb").model_dump(), "likelihood": likelihood})
    data = prepare_model_data(cube, spec, covariates)
    model = build_model(data, spec)
    point = model.initial_point()
    rng = np.random.default_rng(1)
    point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in point.items()}
    got, (intercept, effect) = _evaluate(model, point, ["intercept", "effect"])
    p = 1 / (1 + np.exp(-(intercept[data.cell] + effect[data.cell] * data.treated)))
    n = (data.pre + data.post).astype(int)
    if likelihood == "poisson":
        terms = stats.binom.logpmf(data.post.astype(int), n, p)
    else:
        kappa = float(np.exp(point["concentration_log__"]))
        terms = stats.betabinom.logpmf(data.post.astype(int), n, p * kappa, (1 - p) * kappa)
    np.testing.assert_allclose(got, np.sum(data.weight * terms), rtol=1e-9)


def test_lagged_negative_binomial_likelihood_equals_scipy(small_cube):
    cube, covariates = small_cube
    spec = load_spec("lagged_nb")
    data = prepare_model_data(cube, spec, covariates)
    model = build_model(data, spec)
    point = model.initial_point()
    rng = np.random.default_rng(2)
    point = {k: v + rng.normal(0, 0.2, np.shape(v)) for k, v in point.items()}
    got, (a, b, tau, gamma) = _evaluate(model, point,
                                        ["intercept", "slope", "effect", "covariate_coef"])
    eta = (a[data.cell] + b[data.cell] * np.log1p(data.pre) + tau[data.cell] * data.treated
           + data.covariates @ gamma)
    alpha = float(np.exp(point["dispersion_log__"]))
    mu = np.exp(eta)
    terms = stats.nbinom.logpmf(data.post.astype(int), alpha, alpha / (alpha + mu))
    np.testing.assert_allclose(got, np.sum(data.weight * terms), rtol=1e-9)


def test_model_data_collapses_identical_rows_without_losing_weight(small_cube):
    cube, covariates = small_cube
    spec = parse_spec({**load_spec("smooth_nb").model_dump(), "matching": "none",
                       "nested": "independent"})
    data = prepare_model_data(cube, spec, covariates)
    complete = cube["complete"].to_numpy()
    expected_terms = int(complete.sum()) * len(RADII)
    assert data.n_wake_terms == expected_terms
    np.testing.assert_allclose(data.weight.sum(), expected_terms)
    assert data.n_rows < expected_terms / 3


def test_increments_cumulate_over_windows_and_radii():
    """A cumulative cell holds every increment of a shorter-or-equal interval and a
    nearer-or-equal ring (brute-force sums); NaN increments add nothing."""
    from bayes_wake.bayes.fit import _cumulate

    rng = np.random.default_rng(3)
    fitted = rng.random((2, 3, 4))
    counterfactual = rng.random((2, 3, 4))
    fitted[0, 1, 2] = np.nan
    events = rng.integers(0, 5, (3, 4)).astype(float)
    f, c, e = _cumulate(fitted, counterfactual, events)
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(f[:, i, j], np.nansum(fitted[:, :i + 1, :j + 1],
                                                             axis=(1, 2)))
            np.testing.assert_allclose(c[:, i, j], counterfactual[:, :i + 1, :j + 1].sum(
                axis=(1, 2)))
            assert e[i, j] == events[:i + 1, :j + 1].sum()
