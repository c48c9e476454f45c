"""The count-scale surface model's data: the OLS table's estimates, robust joint covariance."""

from __future__ import annotations

import numpy as np
import pytest

from bayes_wake.bayes.did_surface import grid_kernel, prepare_surface_data
from bayes_wake.core.regression import weighted_ols
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import MWASettings, matched_cells, matched_wake_analysis


@pytest.fixture(scope="module")
def cube(mwa_example_events):
    from bayes_wake.wakes import count_wakes

    return count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])


SETTINGS = MWASettings(match_on=("match1", "match2"), weighted=True, tcm=True)


def test_the_estimates_are_the_ols_table(cube):
    data = prepare_surface_data(cube, SETTINGS)
    ols = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                  tcm=True))
    both = np.isfinite(data.estimate)
    np.testing.assert_allclose(data.estimate[both], ols.surface["estimate"].to_numpy()[both],
                               rtol=1e-10)
    assert both.sum() >= 5
    assert np.isfinite(ols.surface["estimate"].to_numpy()[both]).all()


def test_the_covariance_diagonal_is_each_cells_cr1(cube):
    """With each wake its own cluster, the diagonal is the per-cell CR1 variance with the
    small-sample factor G/(G - 1) of all the cube's G anchors (N differs between cells)."""
    data = prepare_surface_data(cube, SETTINGS, errors="wake")
    n_r = len(data.radii)
    cells = {c.index[0] * n_r + c.index[1]: c for c in matched_cells(cube, SETTINGS)}
    for k, c in enumerate(data.defined):
        cell = cells[c]
        fit = weighted_ols(cell.y, cell.design, cell.weights, vcov="CR1:id",
                           clusters=np.arange(len(cell.y)))
        n = int((cell.weights > 0).sum())
        raw = fit.std_error[-1] ** 2 / ((n / (n - 1)) * (n - 1) / (n - 3))
        g = data.n_clusters
        expected = raw * g / (g - 1)
        assert data.covariance[k, k] == pytest.approx(expected, rel=1e-8)


def test_nested_cells_are_positively_correlated(cube):
    data = prepare_surface_data(cube, SETTINGS)
    sd = np.sqrt(np.diag(data.covariance))
    corr = data.covariance / np.outer(sd, sd)
    # neighbouring radii at the largest window share most events
    n_r = len(data.radii)
    pos = {c: k for k, c in enumerate(data.defined)}
    a, b = 4 * n_r + 3, 4 * n_r + 4
    if a in pos and b in pos:
        assert corr[pos[a], pos[b]] > 0.5
    assert np.all(np.linalg.eigvalsh(data.covariance) > 0)


def test_location_clusters_pool_anchors_at_one_place(cube):
    moved = cube.assign_coords(lat=cube["lat"] * 0 + 1.0, lon=cube["lon"] * 0 + 1.0)
    one = prepare_surface_data(moved, SETTINGS, errors="location")
    assert one.n_clusters == 1


def _theta(**values):
    from bayes_wake.bayes.did_surface import HYPERPARAMETERS

    return {n: values.get(n, 0.0 if not n.startswith("length") else 0.5)
            for n in (*HYPERPARAMETERS["smooth"], "level", "proportional")}


def test_the_kernel_is_a_valid_covariance():
    windows, radii = [10, 20, 30], [3.0, 6.0]
    k = grid_kernel(windows, radii, _theta(amplitude=2.0, length_radius=0.4))
    assert k.shape == (6, 6) and np.isclose(k[0, 0], 4.0)
    # a common increment mean alone: each cell's sd is level x the increments it holds
    flat = grid_kernel(windows, radii, _theta(level=1.0))
    np.testing.assert_allclose(np.sqrt(np.diag(flat)), [1, 2, 2, 4, 3, 6])
    # a main effect of lag alone: every ring of an interval gets the same increment, so the
    # cells of one window are perfectly correlated and their sd grows with the rings held
    lag = grid_kernel(windows, radii, _theta(amplitude_window=1.0))
    corr = lag / np.sqrt(np.outer(np.diag(lag), np.diag(lag)))
    np.testing.assert_allclose(corr[0, 1], 1.0)
    np.testing.assert_allclose(np.sqrt(lag[1, 1] / lag[0, 0]), 2.0)
    # the proportional direction is exactly proportional^2 b b'
    b = np.arange(1.0, 7.0)
    np.testing.assert_allclose(grid_kernel(windows, radii, _theta(proportional=0.5), b),
                               0.25 * np.outer(b, b))
    full = grid_kernel(windows, radii, _theta(level=0.3, amplitude_window=0.5,
                                              amplitude_radius=0.7, amplitude=1.0,
                                              proportional=0.2), b)
    assert np.all(np.linalg.eigvalsh(full) > -1e-10)


def test_classical_joint_errors_reproduce_the_ols_tables_errors(cube):
    """The diagonal is R's variance; projecting the joint matrix onto the positive
    semi-definite cone can only raise it (by little)."""
    data = prepare_surface_data(cube, SETTINGS, errors="classical")
    ols = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                  tcm=True))
    se = ols.surface["std_error"].to_numpy().ravel()[data.defined]
    assert np.all(data.std_error >= se * (1 - 1e-9))
    np.testing.assert_allclose(data.std_error, se, rtol=0.1)


def test_the_discrepancy_moves_the_surface_between_the_smooth_fit_and_the_estimates(cube):
    """Draws are the exact Gaussian conditional of truth = smooth + detail, detail ~
    N(0, d^2 V): with no smooth variation (amplitudes 0, so only the common mean and the
    baseline direction), a huge discrepancy returns the OLS estimates themselves with their
    own noise shrunk by d^2 / (1 + d^2), and d = 0 a surface in the span of the two
    fixed directions."""
    from bayes_wake.bayes.did_surface import (
        HYPERPARAMETERS,
        PROPORTIONAL_SD,
        draw_surface,
        prior_covariance,
        scale_reference,
    )

    data = prepare_surface_data(cube, SETTINGS, errors="wake")
    hyper = {n: np.full((1, 4000), 0.5 if n.startswith("length") else 0.0)
             for n in HYPERPARAMETERS["smooth"]}
    d = data.defined
    y = data.estimate.ravel()[d]
    loose = draw_surface(data, hyper, seed=1, discrepancy=100.0).reshape(-1, data.n_cells)
    np.testing.assert_allclose(loose.mean(axis=0)[d], y,
                               atol=4 * data.std_error.max() / np.sqrt(4000))
    np.testing.assert_allclose(loose.std(axis=0)[d], data.std_error, rtol=0.08)
    tight = draw_surface(data, hyper, seed=1).reshape(-1, data.n_cells).mean(axis=0)
    n_w, n_r = len(data.windows), len(data.radii)
    count = np.outer(np.arange(1, n_w + 1), np.arange(1, n_r + 1)).ravel()
    span = np.column_stack([count, data.baseline.ravel()])
    coef = np.linalg.lstsq(span, tight, rcond=None)[0]
    np.testing.assert_allclose(span @ coef, tight, atol=1e-8 * max(1, abs(tight).max()))
    # the two fixed directions: a common increment mean with sd mean_sd x the prior unit, and
    # the baseline with sd PROPORTIONAL_SD
    theta = {n: v[0, 0] for n, v in hyper.items()}
    b = data.baseline.ravel()
    k = prior_covariance(data, theta, "smooth", mean_sd=2.5)
    expected = grid_kernel(data.windows, data.radii, {
        **theta, "level": 2.5 * scale_reference(data), "proportional": PROPORTIONAL_SD}, b)
    np.testing.assert_allclose(k, expected, rtol=1e-12)


def test_the_draws_carry_the_correlated_noise_the_working_likelihood_ignores(cube):
    """Brute force: truths drawn from the prior, estimates = truth + noise with the joint
    robust covariance V (nested cells' errors correlated). The posterior mean is the
    working-independence smoother (each cell's own variance); its error over many such
    worlds has the covariance of the draws around their mean, and ignoring V's
    correlations (diag V alone) would understate it."""
    from bayes_wake.bayes.did_surface import (
        HYPERPARAMETERS,
        draw_surface,
        prior_covariance,
        scale_reference,
    )

    data = prepare_surface_data(cube, SETTINGS, errors="wake")
    ref = scale_reference(data)
    # strong pooling (small, long-range amplitudes): each cell borrows from its neighbours
    theta = {"amplitude_window": ref / 10, "amplitude_radius": ref / 10,
             "amplitude": ref / 10, "length_window": 2.0, "length_radius": 2.0}
    hyper = {n: np.full((1, 4000), theta[n]) for n in HYPERPARAMETERS["smooth"]}
    draws = draw_surface(data, hyper, seed=3, mean_sd=1.0).reshape(-1, data.n_cells)
    d, v = data.defined, data.covariance
    k = prior_covariance(data, theta, "smooth", mean_sd=1.0)
    gain = k[:, d] @ np.linalg.inv(k[np.ix_(d, d)] + np.diag(np.diag(v)))
    np.testing.assert_allclose(draws.mean(axis=0), gain @ data.estimate.ravel()[d],
                               atol=5 * np.sqrt(np.diag(k)).max() / np.sqrt(4000))
    rng = np.random.default_rng(4)
    truth = rng.multivariate_normal(np.zeros(data.n_cells), k, 20000, method="eigh")
    noise = rng.multivariate_normal(np.zeros(len(d)), v, 20000, method="eigh")
    miss = truth - (truth[:, d] + noise) @ gain.T
    spread = np.cov(draws, rowvar=False)
    np.testing.assert_allclose(np.sqrt(np.diag(spread)), miss.std(axis=0), rtol=0.06)
    # the sandwich term matters here: without it the cells' sd would be too small
    naive = k - gain @ k[d, :]
    assert np.mean(np.sqrt(np.clip(np.diag(naive), 0, None)) / miss.std(axis=0)) < 0.9


def test_the_adaptive_field_pools_flat_stretches_and_frees_a_jump():
    """Tiny jump scales tie all increments to one level (every pair correlated ~1); one large
    local scale frees exactly that jump (the two increments it separates decouple), and the
    precision is a valid, proper Markov random field on the grid's edges."""
    from bayes_wake.bayes.did_surface import adaptive_precision, grid_edges

    n_w, n_r = 3, 2
    edges = grid_edges(n_w, n_r)
    assert edges.shape == ((n_w - 1) * n_r + n_w * (n_r - 1), n_w * n_r)
    assert np.all(edges.sum(axis=1) == 0) and np.all(np.abs(edges).sum(axis=1) == 2)
    tied = {"jump_scale": 1e-3, "jump_local": np.ones(len(edges)), "jump_slab": 1.0}
    q = adaptive_precision(n_w, n_r, tied, ref=1.0, level_sd=3.0)
    assert np.all(np.linalg.eigvalsh(q) > 0)
    cov = np.linalg.inv(q)
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert corr.min() > 0.999
    # free the jump between interval 0 and 1 in ring 0 (edge 0) and every jump leaving
    # increment 0: it decouples from the rest
    leaving = np.flatnonzero(edges[:, 0] != 0)
    free = dict(tied, jump_local=np.where(np.isin(np.arange(len(edges)), leaving), 1e4, 1.0))
    cov = np.linalg.inv(adaptive_precision(n_w, n_r, free, ref=1.0, level_sd=3.0))
    corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert abs(corr[0, 1]) < 0.2 and corr[1:, 1:].min() > 0.999
    # the slab caps a free jump's scale at SLAB_SCALE x ref
    from bayes_wake.bayes.did_surface import SLAB_SCALE

    assert np.sqrt(cov[0, 0]) < 2 * SLAB_SCALE


def test_the_unpooled_surface_returns_the_ols_estimates(cube):
    """pooling: none is each cell's own estimate with the joint robust covariance: its mean is
    the OLS table's estimate in every cell (to rounding) and NA exactly where the table is."""
    from bayes_wake.bayes.matched_fit import fit_matched
    from bayes_wake.bayes.spec import load_spec

    ols = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                  tcm=True))
    fit = fit_matched(cube, load_spec("unpooled_did"), ols.settings)
    mean, table = fit.surface["mean"].to_numpy(), ols.surface["estimate"].to_numpy()
    assert np.array_equal(np.isnan(mean), np.isnan(table))
    np.testing.assert_allclose(mean[np.isfinite(table)], table[np.isfinite(table)],
                               rtol=1e-12, atol=1e-12)
    # its 90% interval is the estimate +- 1.645 robust standard errors
    data = prepare_surface_data(cube, SETTINGS, errors="wake")
    half = (fit.surface["ci_upper"] - fit.surface["ci_lower"]).to_numpy().ravel()[data.defined]
    np.testing.assert_allclose(half / 2, 1.6449 * data.std_error, rtol=0.1)
    assert not fit.surface["pulled_to_zero"].any()
    np.testing.assert_allclose(fit.surface["shift_se"].to_numpy()[np.isfinite(table)], 0,
                               atol=1e-9)


def test_a_pooling_the_surface_model_does_not_have_is_refused():
    from bayes_wake.bayes.spec import load_spec, parse_spec
    from bayes_wake.errors import ModelSpecError

    spec = load_spec("smooth_did").model_dump()
    spec["effect"]["pooling"] = "hierarchical"
    with pytest.raises(ModelSpecError, match="takes effect pooling adaptive or smooth or none"):
        parse_spec(spec)


def test_the_shrinkage_flag_marks_a_clear_estimate_pulled_toward_zero(cube):
    """A posterior mean 0.6 standard errors nearer 0 than a clear estimate is flagged; the same
    move away from 0, or on an unclear estimate, is not."""
    from bayes_wake.bayes.did_surface import shrinkage

    data = prepare_surface_data(cube, SETTINGS, errors="wake")
    se = np.full(data.n_cells, np.nan)
    se[data.defined] = data.std_error
    se = se.reshape(data.estimate.shape)
    t = data.estimate / se
    clear = np.abs(t) > 3
    assert clear.any() and (np.isfinite(t) & ~clear).any()
    toward = shrinkage(data, data.estimate - 0.6 * np.sign(data.estimate) * se)
    away = shrinkage(data, data.estimate + 0.6 * np.sign(data.estimate) * se)
    np.testing.assert_allclose(np.abs(toward["shift_se"][np.isfinite(t)]), 0.6)
    assert np.array_equal(toward["pulled_to_zero"], clear)
    assert not away["pulled_to_zero"].any()
    assert not shrinkage(data, data.estimate - 0.4 * np.sign(data.estimate) * se)[
        "pulled_to_zero"].any()


def test_the_shrinkage_warning_names_the_pulled_cells_with_both_values():
    """The sentence names each pulled cell with its estimate and posterior mean, and there is
    none when no cell is pulled (the surface is the fit's own table)."""
    from types import SimpleNamespace

    import xarray as xr

    from bayes_wake.bayes.matched_fit import shrinkage_warning

    cells = ("window", "radius")
    surface = xr.Dataset({"mean": (cells, [[0.1, 0.3]]), "ols_estimate": (cells, [[0.1, 0.5]]),
                          "shift_se": (cells, [[0.0, -2.0]]),
                          "pulled_to_zero": (cells, [[0, 1]])},
                         coords={"window": [30], "radius": [3.0, 6.0]},
                         attrs={"t_unit": "days"})
    text = shrinkage_warning(SimpleNamespace(surface=surface))
    assert "pooling moved 1 clear estimate" in text and "30 days x 6 km (0.500 -> 0.300)" in text
    surface["pulled_to_zero"][:] = 0
    assert shrinkage_warning(SimpleNamespace(surface=surface)) is None


@pytest.mark.parametrize(("vcov", "expected"), [
    ("classical", "CR1:location"), ("CR1:location", "CR1:location"),
    ("CR2:near=5,60", "CR1:near=5,60"), ("CR2-ivw:site", "CR1:site"), ("HC1", "CR1:wake"),
    ("HC3", "CR1:wake"), ("conley-bm:25:30", "conley:25:30"), ("conley:10", "conley:10")])
def test_the_surface_errors_follow_vcov_and_rs_classical_default_leaves_the_specs(vcov,
                                                                                 expected):
    from bayes_wake.bayes.spec import surface_errors

    assert str(surface_errors("location", vcov)) == expected


def test_the_fitted_surface_takes_its_covariance_from_vcov(cube):
    """The surface's data come from ``--vcov`` (clusters of anchors within 5 km and 60
    days here), not from the spec's ``errors`` (each wake its own cluster)."""
    from dataclasses import replace

    from bayes_wake.bayes.fit import _surface_data
    from bayes_wake.bayes.spec import load_spec

    spec = load_spec("smooth_did").model_copy(update={"errors": "wake"})
    near = _surface_data(cube, spec, replace(SETTINGS, vcov="CR2:near=5,60"))
    expected = prepare_surface_data(cube, SETTINGS, errors="CR1:near=5,60")
    np.testing.assert_allclose(near.covariance, expected.covariance, rtol=1e-12)
    assert near.attrs["errors"] == "CR1:near=5,60"
    default = _surface_data(cube, spec, SETTINGS)
    assert default.attrs["errors"] == "CR1:wake"
    assert near.n_clusters < default.n_clusters
    assert not np.allclose(default.covariance, expected.covariance)


def test_the_lead_surface_data_are_the_pretrend_tables_estimates(mwa_example_events):
    """``period="lead"``: the cell estimates are pretrend.csv's leads (the table's regression
    one period earlier, on the wakes whose lead period the record covers), each with its
    own robust variance."""
    from bayes_wake.mwa.analysis import pretrend_table
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10], leads=True)
    lead = prepare_surface_data(cube, SETTINGS, errors="wake", period="lead")
    table = pretrend_table(cube, SETTINGS)
    expected = table["lead_estimate"].to_numpy().reshape(lead.estimate.shape)
    both = np.isfinite(expected)
    assert both.sum() >= 5 and lead.attrs["period"] == "lead"
    np.testing.assert_allclose(lead.estimate[both], expected[both], rtol=1e-10, atol=1e-12)
    effect = prepare_surface_data(cube, SETTINGS, errors="wake")
    assert "period" not in effect.attrs
    assert not np.allclose(lead.estimate[both], effect.estimate[both])
    # HC1 (pretrend.csv's errors) and each wake its own cluster differ only in the
    # small-sample factor, n / (n - p) against G / (G - 1) (cells whose leads are all 0,
    # a perfect fit with rounding-size errors, left out)
    fitted = np.abs(lead.estimate.ravel()[lead.defined]) > 1e-9
    ratio = (lead.std_error / table["lead_std_error"].to_numpy()[lead.defined])[fitted]
    assert fitted.sum() >= 5 and np.all((ratio > 0.9) & (ratio < 1.1)), ratio
    with pytest.raises(SettingsError, match="no lead counts"):
        prepare_surface_data(count_wakes(mwa_example_events, [2, 4], [2, 4]), SETTINGS,
                             period="lead")
