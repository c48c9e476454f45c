"""One real, small MCMC fit in the fast suite: the default model on R's example.

The fit (a few seconds; nutpie's compilation most of it) is shared by the session. Every
summary is recomputed from the posterior draws, and the command line fits the same model as
the Python API.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bayes_wake.mwa.analysis import MWASettings
from bayes_wake.errors import SettingsError
from bayes_wake.options import DEFAULT_SPEC

GRID = dict(windows=[2, 6, 10], radii=[2, 6, 10])
ARGS = ["--t-window", "2", "10", "4", "--spat-window", "2", "10", "4", "--match",
        "match1,match2", "--weighted", "--tcm", "--draws", "200", "--tune", "200",
        "--chains", "2", "--seed", "7"]


@pytest.fixture(scope="session")
def small_fit(mwa_example_events):
    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.mwa.analysis import matched_wake_analysis
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, GRID["windows"], GRID["radii"])
    spec = load_spec(DEFAULT_SPEC).with_sampler(draws=200, tune=200, chains=2, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_surface(cube, spec, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                  tcm=True), progressbar=False)
    ols = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                  tcm=True))
    return fit, ols


def test_the_table_is_the_posterior_draws_summarised(small_fit):
    import arviz as az

    fit, _ = small_fit
    draws = fit.idata.posterior["additive_effect"].to_numpy()  # chain, draw, window, radius
    flat = draws.reshape(-1, *draws.shape[2:])
    table = fit.surface
    np.testing.assert_allclose(table["mean"].to_numpy(), flat.mean(axis=0), rtol=1e-12)
    defined = np.isfinite(flat).all(axis=0)
    np.testing.assert_allclose(table["prob_positive"].to_numpy()[defined],
                               (flat > 0).mean(axis=0)[defined])
    prob = az.rcParams["stats.ci_prob"]
    if az.rcParams["stats.ci_kind"] == "eti":
        lo = np.quantile(flat, (1 - prob) / 2, axis=0)
        np.testing.assert_allclose(table["ci_lower"].to_numpy()[defined], lo[defined],
                                   rtol=1e-6, atol=1e-9)
    assert (table["ci_lower"] <= table["mean"]).where(table["mean"].notnull(), True).all()


def test_cells_are_na_exactly_where_the_ols_table_is(small_fit):
    fit, ols = small_fit
    na_bayes = fit.surface["mean"].isnull().to_numpy()
    na_ols = ols.surface["estimate"].isnull().to_numpy()
    assert np.all(na_ols <= na_bayes)  # every OLS NA is NA here (perfect fits are too)
    assert (~na_bayes).sum() >= 2


def test_the_posterior_mean_stays_near_the_ols_estimates(small_fit):
    fit, ols = small_fit
    both = fit.surface["mean"].notnull() & ols.surface["estimate"].notnull()
    gap = np.abs(fit.surface["mean"] - ols.surface["estimate"]).where(both)
    assert float((gap / ols.surface["std_error"]).max()) < 3


def test_prob_positive_over_a_region_recomputed_and_guarded(small_fit):
    fit, _ = small_fit
    draws = fit.idata.posterior["additive_effect"]
    defined = draws.notnull().all(("chain", "draw"))
    expected = float((draws > 0).where(defined, True).all(("window", "radius")).mean())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert fit.prob_positive() == pytest.approx(expected)
    with pytest.warns(UserWarning, match="NA cell"):
        fit.prob_positive()
    nowhere = (draws["window"] > 100) & (draws["radius"] > 100)
    with pytest.raises(SettingsError, match="no cell with an estimate"):
        fit.prob_positive(nowhere)


def test_the_command_line_fits_the_same_surface(small_fit, mwa_example_csv, tmp_path):
    from bayes_wake.cli import main

    fit, _ = small_fit
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["fit", "--data", str(mwa_example_csv), *ARGS,
                                       "--out", str(out), "--allow-unconverged"]
                                if "--allow-unconverged" in _fit_help() else
                                ["fit", "--data", str(mwa_example_csv), *ARGS, "--out",
                                 str(out)])
    assert result.exit_code in (0, 3), result.output
    assert "s [km]" in result.output  # a unit, not rich markup
    table = pd.read_csv(out / "effect_surface.csv")
    api = fit.table()
    np.testing.assert_allclose(table["mean"].to_numpy(), api["mean"].to_numpy(), rtol=1e-10,
                               equal_nan=True)
    grid = pd.read_csv(out / "grid_summary.csv")
    np.testing.assert_allclose(grid["mean"], fit.grid_summary()["mean"], rtol=1e-10)
    assert "Average effect over the grid's" in " ".join(result.output.split())


def test_the_grid_summary_averages_the_cells_of_each_draw(small_fit):
    """fit had no grid-level result: the average effect over the grid's cells, with its
    interval, is one row of grid_summary.csv."""
    fit, _ = small_fit
    draws = fit.idata.posterior["additive_effect"].to_numpy()
    flat = draws.reshape(-1, *draws.shape[2:])
    defined = np.isfinite(flat).all(axis=0)
    average = flat[:, defined].mean(axis=1)
    row = fit.grid_summary().iloc[0]
    prob = fit.surface.attrs["ci_prob"]
    assert row["cells"] == defined.sum() and row["ci_prob"] == prob
    assert row["mean"] == pytest.approx(average.mean())
    assert row["ci_lower"] == pytest.approx(np.quantile(average, (1 - prob) / 2))
    assert row["ci_upper"] == pytest.approx(np.quantile(average, (1 + prob) / 2))
    assert row["prob_positive"] == pytest.approx((average > 0).mean())
    far = fit.grid_summary(lambda w, r: (w >= 6) & (r >= 6)).iloc[0]
    assert far["region"] == "region" and far["cells"] <= 4


def test_the_rate_ratio_is_a_median_over_its_defined_draws_or_na():
    """rate_ratio_mean averaged only the defined draws, and a few near-zero counterfactuals
    made it 6.45 (maximum 28,784): now the median, its interval and the share of draws that
    define it, NA below 95%."""
    import xarray as xr

    from bayes_wake.bayes.fit import effect_surface_table

    rng = np.random.default_rng(0)
    ratio = np.exp(rng.normal(0, 0.1, (2, 500, 1, 3)))
    ratio[0, :3, 0, 0] = 28_784.0  # a heavy tail: the median ignores it
    ratio[:, :50, 0, 1] = np.nan  # 10% undefined: NA
    dims = ("chain", "draw", "window", "radius")
    posterior = xr.Dataset({"additive_effect": (dims, rng.normal(0, 1, ratio.shape)),
                            "rate_ratio": (dims, ratio)},
                           coords={"window": [2], "radius": [2.0, 4.0, 6.0]})
    table = effect_surface_table(posterior).isel(window=0)
    assert table["rate_ratio_median"][0] == pytest.approx(1.0, abs=0.02)
    assert np.isnan(table["rate_ratio_median"][1]) and np.isnan(table["rate_ratio_ci_lower"][1])
    np.testing.assert_allclose(table["rate_ratio_defined"], [1.0, 0.9, 1.0])
    assert table["rate_ratio_ci_upper"][2] == pytest.approx(
        np.quantile(ratio[..., 0, 2], (1 + table.attrs["ci_prob"]) / 2))


def _fit_help() -> str:
    from bayes_wake.cli import main

    return CliRunner().invoke(main, ["fit", "--help"]).output


def test_the_comparison_figure_names_the_interval_it_hatches(small_fit, tmp_path, monkeypatch):
    """The right panel's title names the posterior interval that decides its hatching (the
    title once named an 89% interval while the 90% one was drawn)."""
    import bayes_wake.plotting as plotting
    from bayes_wake.bayes.matched_fit import write_beside
    from bayes_wake.plotting import HATCH_GID

    saved = {}
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path: saved.setdefault("fig", fig))
    fit, ols = small_fit
    write_beside(fit, ols, tmp_path)
    right = saved["fig"].axes[1]
    ci = round(100 * fit.surface.attrs["ci_prob"])
    assert f"{ci}% interval includes 0" in right.get_title()
    assert "89%" not in right.get_title() or ci == 89
    hatched = [c for c in right.collections if c.get_gid() == HATCH_GID]
    includes = int(((fit.surface["ci_lower"] <= 0) & (fit.surface["ci_upper"] >= 0)).sum())
    assert includes > 0 and len(hatched[0].get_paths()) == includes


def test_the_comparison_figure_marks_posterior_cells_without_an_ols_estimate(
        small_fit, tmp_path, monkeypatch):
    """Cells the posterior fills where OLS is NA (smooth_nb fills them) are outlined, and the
    legend says how the model fills them: by its effect's pooling."""
    from dataclasses import replace

    import bayes_wake.plotting as plotting
    from bayes_wake.bayes.matched_fit import write_beside
    from bayes_wake.plotting import FILLED_GID

    fit, ols = small_fit
    na = ols.surface["estimate"].isnull()
    assert 0 < int(na.sum()) < na.size
    surface = fit.surface.assign(mean=fit.surface["mean"].fillna(0.05),
                                 ci_lower=fit.surface["ci_lower"].fillna(-0.1),
                                 ci_upper=fit.surface["ci_upper"].fillna(0.2))
    saved = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, path: saved.append(fig))
    for pooling, says in (("smooth", "neighbouring windows"), ("hierarchical", "all windows")):
        spec = fit.spec.model_copy(
            update={"effect": fit.spec.effect.model_copy(update={"pooling": pooling})})
        (tmp_path / pooling).mkdir()
        write_beside(replace(fit, surface=surface, spec=spec), ols, tmp_path / pooling)
        right = saved[-1].axes[1]
        (outlines,) = [c for c in right.collections if c.get_gid() == FILLED_GID]
        assert len(outlines.get_paths()) == int(na.sum())
        legend = " ".join(t.get_text() for t in right.get_legend().get_texts())
        assert says in legend.replace("\n", " ")
        assert not [c for c in saved[-1].axes[0].collections if c.get_gid() == FILLED_GID]


def test_the_diagnostics_line_counts_in_the_singular():
    """One divergence reads "1 divergence", not "1 divergences"."""
    from bayes_wake.bayes.fit import Diagnostics

    one = Diagnostics(max_r_hat=1.001, min_ess_bulk=900.0, divergences=1,
                      compile_seconds=1.0, sample_seconds=2.0)
    assert "1 divergence -- NOT CONVERGED: 1 divergent transition" in one.summary()
    assert "divergences" not in one.summary()
    many = Diagnostics(1.001, 900.0, 1_200, 1.0, 2.0)
    assert "1,200 divergences" in many.summary()


def test_the_console_table_names_the_fits_own_interval(small_fit):
    from dataclasses import replace

    from rich.console import Console

    from bayes_wake.cli.common import _print_surface

    fit, ols = small_fit
    fitted = f"{100 * fit.surface.attrs['ci_prob']:g}% interval"  # ArviZ's default, e.g. 89%
    for prob, kind, name in ((fit.surface.attrs["ci_prob"], "eti", fitted),
                             (0.95, "eti", "95% interval"), (0.9, "hdi", "90% HDI")):
        console = Console(record=True, width=150)
        surface = fit.surface.assign_attrs(ci_prob=prob, ci_kind=kind)
        _print_surface(console, replace(fit, surface=surface), ols)
        header = console.export_text().splitlines()[2]
        assert name in header


def test_the_console_says_why_each_na_cell_is_na(small_fit):
    """R's example: the treated wakes of t = 2, s = 6 hold events before matching; the matched
    wakes hold none. Each NA cell gives the OLS table's reason, not one guess for all."""
    from rich.console import Console

    from bayes_wake.cli.common import _MODEL_ONLY_NA, _print_surface

    fit, ols = small_fit
    console = Console(record=True, width=150)
    _print_surface(console, fit, ols)
    cells = [[c.strip() for c in line.split("│")[1:-1]]
             for line in console.export_text().splitlines() if line.startswith("│")]
    rows = {(t, s): why for t, s, mean, why, *_ in cells if mean == "NA"}
    assert len(rows) == int(fit.surface["mean"].isnull().sum()) >= 3
    assert rows[("2", "6")] == "(OLS: no events in matched wakes)"
    assert rows[("10", "6")] == "(OLS: no pre events in matched wakes)"
    assert rows[("6", "10")] == "(OLS: equal pre counts in matched wakes)"
    for (t, s), shown in rows.items():
        why = str(ols.surface["na_reason"].sel(window=int(t), radius=float(s)).item())
        assert shown == (f"(OLS: {why})" if why else _MODEL_ONLY_NA)


def test_the_rate_ratio_is_na_where_the_treated_wakes_hold_no_post_events(mwa_example_events):
    """Unmatched, the treated wakes of s = 2 km hold no post events at t = 6 and 10 while the
    OLS table estimates both cells: the additive effect is there, the ratio (0 whatever the
    effect) is NA, and no log of zero is taken."""
    from rich.console import Console

    from bayes_wake.bayes.fit import fit_surface
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.cli.common import _print_surface
    from bayes_wake.mwa.analysis import matched_wake_analysis
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, GRID["windows"], GRID["radii"])
    spec = load_spec("smooth_did").with_sampler(draws=100, tune=100, chains=2, seed=7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence of so short a run
        warnings.simplefilter("error", RuntimeWarning)  # divide by zero in log
        fit = fit_surface(cube, spec.model_copy(update={"matching": "none"}),
                          MWASettings(match_on=["match1", "match2"], tcm=True, weighted=True),
                          progressbar=False)
    posterior = fit.idata.posterior.sel(radius=2.0, window=[6, 10])
    treated_post = cube["dependent"].sel(period="post", radius=2.0, window=[6, 10]).where(
        cube["treated"] == 1).sum("event")
    assert (treated_post == 0).all()
    assert posterior["additive_effect"].notnull().all()
    assert posterior["rate_ratio"].isnull().all() and posterior["effect"].isnull().all()
    assert fit.surface["rate_ratio_median"].sel(radius=2.0, window=[6, 10]).isnull().all()
    assert (fit.surface["rate_ratio_defined"].sel(radius=2.0, window=[6, 10]) == 0).all()
    elsewhere = fit.idata.posterior["rate_ratio"].sel(radius=10.0)
    assert float((elsewhere > 0).mean()) > 0.9  # positive where the treated wakes hold events
    console = Console(record=True, width=150)
    _print_surface(console, fit, matched_wake_analysis(cube, MWASettings(matching=False,
                                                                         tcm=True)))
    printed = console.export_text()
    assert "nan" not in printed and printed.count(" - ") >= 2  # the NA ratios


def test_posterior_nc_names_the_count_scale_effect_effect(mwa_example_events, tmp_path):
    """posterior.nc's `effect` was the log rate ratio while the table's mean is the
    count-scale effect: on disk `effect` is now the count-scale effect and the log rate
    ratio is `log_rate_ratio` (unpooled_did: exact draws, no sampler)."""
    import xarray as xr

    from bayes_wake.bayes.fit import fit_surface, load_posterior
    from bayes_wake.bayes.spec import load_spec
    from bayes_wake.wakes import count_wakes

    cube = count_wakes(mwa_example_events, GRID["windows"], GRID["radii"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_surface(cube, load_spec("unpooled_did"),
                          MWASettings(match_on=["match1", "match2"], weighted=True),
                          progressbar=False)
    path = fit.to_netcdf(tmp_path / "posterior.nc")
    on_disk = xr.open_datatree(path, engine="h5netcdf")["posterior"].to_dataset()
    inside = fit.idata.posterior
    assert "additive_effect" not in on_disk
    np.testing.assert_array_equal(on_disk["effect"], inside["additive_effect"])
    np.testing.assert_array_equal(on_disk["log_rate_ratio"], inside["effect"])
    assert on_disk["effect"].attrs["units"] == "events per wake"
    assert set(load_posterior(path).posterior.data_vars) >= {"effect", "log_rate_ratio",
                                                             "rate_ratio"}
    assert "additive_effect" in fit.idata.posterior  # the object in memory is unchanged


@pytest.mark.parametrize("level", [None, 0.8])
def test_one_interval_level_chosen_with_ci_is_used_everywhere(mwa_example_csv, tmp_path,
                                                              level):
    """Outputs gave ArviZ's 89% while the docs and recovery used 90%: --ci (default 90%)
    sets the level of effect_surface.csv (ci_prob column), the console's header, the grid
    summary and the figure's legend (unpooled_did: exact draws, no sampler)."""
    from bayes_wake.cli import main
    from bayes_wake.cli.common import DEFAULT_CI

    out = tmp_path / "fit"
    result = CliRunner().invoke(main, [
        "fit", "--data", str(mwa_example_csv), *ARGS[:10], "--spec", "unpooled_did",
        *(["--ci", str(level)] if level else []), "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = level or DEFAULT_CI
    assert DEFAULT_CI == 0.90 and "[default: 0.9; 0<x<1]" in " ".join(
        CliRunner().invoke(main, ["fit", "--help"]).output.split())
    table = pd.read_csv(out / "effect_surface.csv")
    assert (table["ci_prob"] == expected).all()
    assert (pd.read_csv(out / "grid_summary.csv")["ci_prob"] == expected).all()
    said = " ".join(result.output.split())
    assert f"{100 * expected:g}% interval" in said and "89%" not in said
    draws = pytest.importorskip("arviz").from_netcdf(out / "posterior.nc").posterior["effect"]
    cell = table.dropna(subset=["mean"]).iloc[0]
    one = draws.sel(window=cell["t_window"], radius=cell["spat_window"]).to_numpy().ravel()
    assert cell["ci_lower"] == pytest.approx(np.quantile(one, (1 - expected) / 2), rel=1e-6)


def test_fit_averages_the_grid_region_a_user_names(mwa_example_csv, tmp_path):
    """`fit --grid-region "t>=10, s>=6"` adds the region's average effect as a second row of
    grid_summary.csv and a console line: per draw the mean over the region's cells with an
    estimate (here checked against the draws in posterior.nc); a region without cells of the
    grid is refused before any work (unpooled_did: exact draws, no sampler)."""
    from bayes_wake.cli import main

    out = tmp_path / "fit"
    args = ["fit", "--data", str(mwa_example_csv), *ARGS[:10], "--spec", "unpooled_did"]
    result = CliRunner().invoke(main, [*args, "--grid-region", "t>=10, s>=6", "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    grid = pd.read_csv(out / "grid_summary.csv")
    assert list(grid["region"]) == ["grid", "t >= 10 days and s >= 6 km"]
    draws = pytest.importorskip("arviz").from_netcdf(out / "posterior.nc").posterior["effect"]
    far = draws.sel(window=draws["window"] >= 10, radius=draws["radius"] >= 6)
    flat = far.to_numpy().reshape(-1, far.sizes["window"] * far.sizes["radius"])
    defined = np.isfinite(flat).all(axis=0)
    average = flat[:, defined].mean(axis=1)
    row = grid.iloc[1]
    assert row["cells"] == defined.sum() >= 1
    assert row["mean"] == pytest.approx(average.mean(), rel=1e-9)
    assert row["ci_upper"] == pytest.approx(np.quantile(average, (1 + row["ci_prob"]) / 2),
                                            rel=1e-9)
    assert grid.iloc[0]["cells"] > row["cells"]
    said = " ".join(result.output.split())
    assert "average effect over the t >= 10 days and s >= 6 km region's" in said.lower()
    refused = CliRunner().invoke(main, [*args, "--grid-region", "t>=100", "--out",
                                        str(tmp_path / "none")])
    assert refused.exit_code == 2 and "no cell of the grid" in refused.output
    assert not (tmp_path / "none").exists()


def test_the_lead_surface_of_the_unpooled_model_is_the_pretrend_table(mwa_example_csv,
                                                                      tmp_path):
    """`fit --lead-surface`: the same model fitted to the pre-trend placebo. Unpooled, its
    posterior mean is pretrend.csv's lead in every cell (exact antithetic draws, no
    sampler), written beside the effect with the figure and one console sentence; a model
    of the counts has no lead surface and is refused."""
    from bayes_wake.cli import main

    out = tmp_path / "lead"
    args = ["fit", "--data", str(mwa_example_csv), *ARGS[:10], "--lead-surface"]
    result = CliRunner().invoke(main, [*args, "--spec", "unpooled_did", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lead = pd.read_csv(out / "lead_surface.csv")
    table = pd.read_csv(out / "pretrend.csv")
    both = lead.merge(table, on=["t_window", "spat_window"]).dropna(subset=["lead_estimate"])
    # a cell whose leads are all 0 is a perfect fit, with no noise of its own: NA
    exact = both["lead_estimate"].abs() < 1e-12
    assert both.loc[exact, "mean"].isna().all() and (~exact).sum() >= 3
    np.testing.assert_allclose(both.loc[~exact, "mean"], both.loc[~exact, "lead_estimate"],
                               rtol=1e-9)
    effect = pd.read_csv(out / "effect_surface.csv")
    assert not np.allclose(effect["mean"].fillna(0), lead["mean"].fillna(0))
    assert (out / "pretrend_surface.png").stat().st_size > 0
    said = " ".join(result.output.split())
    assert "Pre-trend surface (unpooled_did, the same model one period earlier" in said
    assert "(unpooled_did, pre-trend placebo)" in said  # its sampler line
    refused = CliRunner().invoke(main, [*args, "--spec", "nb_did", "--out",
                                        str(tmp_path / "nb")])
    assert refused.exit_code == 2, refused.output
    assert "--lead-surface: the pre-trend surface is fitted by the count-scale" in \
        " ".join(refused.output.split())
    assert "sampler" not in refused.output and not (tmp_path / "nb").exists()  # before work
