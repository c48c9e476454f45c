"""The matched wake analysis against R's reference output and statsmodels."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from bayes_wake.core.matching import coarsened_exact_match, l1_imbalance
from bayes_wake.core.regression import weighted_ols
from bayes_wake.errors import SettingsError
from bayes_wake.mwa.analysis import EXTRA_ESTIMATE_COLUMNS, MWASettings, matched_wake_analysis
from bayes_wake.wakes import count_wakes

TABLES = {"estimates": "estimates", "matching": "matching", "SUTVA": "sutva", "wakes": "wakes"}


@pytest.fixture(scope="module")
def example_result(mwa_example_events):
    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])
    return matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], weighted=True,
                                                   tcm=True))


@pytest.mark.parametrize("name", list(TABLES))
def test_documented_example_equals_r(example_result, mwa_reference, name):
    reference = pd.read_csv(mwa_reference / f"{name}.csv")
    mine = getattr(example_result, TABLES[name])
    # R's columns in R's order, then ours (the estimates' standard error and interval)
    extra = list(EXTRA_ESTIMATE_COLUMNS) if name == "estimates" else []
    assert list(mine.columns) == [*reference.columns, *extra]
    assert len(mine) == len(reference)
    for column in reference.columns:
        want = reference[column].to_numpy(dtype=float)
        got = mine[column].to_numpy(dtype=float)
        if name in ("estimates",):
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12, equal_nan=True,
                                       err_msg=column)
        else:  # counts exactly; L1, support and shares to R's rounding
            np.testing.assert_array_equal(got, want, err_msg=column)


def test_written_csv_reads_back_as_r_wrote_it(example_result, mwa_reference, tmp_path):
    example_result.to_csv(tmp_path)
    for name in TABLES:
        back = pd.read_csv(tmp_path / f"{name}.csv")
        reference = pd.read_csv(mwa_reference / f"{name}.csv")
        assert list(back.columns[:reference.shape[1]]) == list(reference.columns)
        pd.testing.assert_frame_equal(back[reference.columns], reference, check_dtype=False,
                                      rtol=1e-8)
    # NA is an empty cell
    first = (tmp_path / "estimates.csv").read_text().splitlines()[1]
    assert first == "2,2,,,,,,,,"


def test_significant_windows_are_the_published_ones(example_result):
    significant = example_result.significant()
    cells = set(zip(significant["t_window"], significant["spat_window"], strict=True))
    assert cells == {(8, 8), (8, 10), (10, 8), (10, 10)}
    assert np.all(np.abs(significant["estimate"] - 1) < 0.12)


def _counted_with_peak(events, windows, t_unit):
    """The wake cube of R's grid of radii and the peak of memory traced while counting."""
    tracemalloc.start()
    try:
        cube = count_wakes(events, windows, [2, 4, 6, 8, 10], t_unit=t_unit, chunk_size=8)
        return cube, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_windows_in_seconds_give_the_days_tables_in_the_days_memory(mwa_example_events,
                                                                     example_result):
    """2..10 days written in seconds: R's tables bit for bit, and no array with a slot per
    second of the longest window (such a histogram of the pre-trend took 7.7 GB)."""
    _, days_peak = _counted_with_peak(mwa_example_events, [2, 4, 6, 8, 10], "days")
    seconds = [86_400 * d for d in (2, 4, 6, 8, 10)]
    cube, seconds_peak = _counted_with_peak(mwa_example_events, seconds, "secs")
    assert seconds_peak < 10 * days_peak
    result = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"],
                                                     weighted=True, tcm=True))
    for name, attribute in TABLES.items():
        in_days = getattr(result, attribute).assign(
            t_window=lambda t: t["t_window"] // 86_400)
        pd.testing.assert_frame_equal(in_days, getattr(example_result, attribute),
                                      check_exact=True, obj=name)


def test_every_na_cell_says_why_and_the_reason_holds(example_result, mwa_example_events):
    """R's example: no NA cell lacks treated wakes with events before matching (t = 2,
    s = 8 holds 26 pre and 27 post events in them); matching leaves wakes that all hold the
    same counts, or none, so the regression has nothing to fit."""
    from bayes_wake.mwa.analysis import MWASettings, matched_cells

    reasons = example_result.surface["na_reason"]
    na = example_result.surface["estimate"].isnull()
    assert ((reasons != "") == na).all() and int(na.sum()) == 19
    assert reasons.sel(window=2, radius=8.0) == "equal counts in matched wakes"
    assert reasons.sel(window=8, radius=6.0) == "no pre events in matched wakes"
    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])
    settings = MWASettings(match_on=("match1", "match2"), weighted=True, tcm=True)
    for cell in matched_cells(cube, settings, balance=False):
        why = str(reasons.sel(window=cell.window, radius=cell.radius).item())
        counts = (cell.pre, cell.y)  # the lag formula: y is the post-period count
        if why == "no events in matched wakes":
            assert not any(c.any() for c in counts)
        elif why == "equal counts in matched wakes":
            assert all(np.ptp(c) == 0 for c in counts) and cell.pre.any()
        elif why.startswith(("no pre events", "equal pre counts")):
            assert np.ptp(cell.pre) == 0 and np.ptp(cell.y) > 0
        elif why == "no post events in matched wakes":
            assert not cell.y.any() and np.ptp(cell.pre) > 0
        else:
            assert why == "", why


@pytest.mark.parametrize("options, where, reason", [
    ({"delete_sutva": True}, (40, 60.0), "no treated wakes after delete-SUTVA"),
    ({"delete_sutva": True}, (2, 60.0), "too few matched wakes"),  # 1 treated, 1 control
    ({"delete_sutva": True}, (10, 60.0), "no matched treated wakes"),  # nor controls
    ({"formula": "diff"}, (2, 8.0), "equal counts in matched wakes"),
    ({"matching": False}, (2, 2.0), "no post events in matched wakes"),
])
def test_na_reasons_of_other_settings(mwa_example_events, options, where, reason):
    cube = count_wakes(mwa_example_events, [2, 10, 40], [2, 8, 60])
    result = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"], tcm=True,
                                                     **options))
    assert result.surface["na_reason"].sel(window=where[0], radius=where[1]) == reason


def test_ols_equals_statsmodels_wls_with_robust_errors():
    rng = np.random.default_rng(1)
    n = 200
    pre = rng.poisson(1.5, n)
    treated = rng.integers(0, 2, n)
    post = rng.poisson(1 + 0.5 * pre + 0.4 * treated)
    weights = rng.uniform(0.2, 2.0, n)
    x = np.column_stack([np.ones(n), pre, treated])
    for vcov, cov_type in (("classical", "nonrobust"), ("HC1", "HC1"), ("HC3", "HC3")):
        mine = weighted_ols(post, x, weights, vcov=vcov)
        ref = sm.WLS(post, x, weights=weights).fit(cov_type=cov_type, use_t=True)
        np.testing.assert_allclose(mine.coef, ref.params, rtol=1e-10)
        np.testing.assert_allclose(mine.std_error, ref.bse, rtol=1e-8)
        np.testing.assert_allclose(mine.pvalue, ref.pvalues, rtol=1e-6)
    np.testing.assert_allclose(weighted_ols(post, x, weights).adj_r_squared,
                               sm.WLS(post, x, weights=weights).fit().rsquared_adj, rtol=1e-10)


def test_aliased_or_undefined_fits_are_flagged():
    x = np.column_stack([np.ones(6), np.zeros(6), [0, 0, 0, 1, 1, 1]])  # constant pre count
    assert weighted_ols(np.arange(6.0), x).aliased
    all_zero = weighted_ols(np.zeros(6), np.column_stack([np.ones(6), np.arange(6),
                                                          [0, 1, 0, 1, 0, 1]]))
    assert not all_zero.defined


def test_cem_weights_follow_the_cem_formula():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 2))
    treated = (rng.uniform(size=300) < 0.3).astype(int)
    match = coarsened_exact_match(x, treated)
    t, m = treated.astype(bool), match.matched
    assert np.all(match.weight[m & t] == 1) and np.all(match.weight[~m] == 0)
    m_t, m_c = (m & t).sum(), (m & ~t).sum()
    for s in np.unique(match.stratum[m]):
        in_s = match.stratum == s
        expected = (in_s & t).sum() / (in_s & ~t).sum() * m_c / m_t
        np.testing.assert_allclose(match.weight[in_s & ~t], expected)
    # cem normalises control weights to sum to the number of matched controls
    np.testing.assert_allclose(match.weight[m & ~t].sum(), m_c)


def test_l1_is_zero_for_identical_groups_and_one_for_disjoint():
    x = np.repeat(np.arange(10.0), 2)[:, None]
    treated = np.tile([0, 1], 10)
    assert l1_imbalance(x, treated) == (0.0, 100.0)
    x2 = np.concatenate([np.zeros(5), np.full(5, 100.0)])[:, None]
    assert l1_imbalance(x2, np.repeat([0, 1], 5))[0] == 1.0
    # a cell where matching kept no wake (as some date-shift placebos do)
    assert np.isnan(l1_imbalance(np.zeros((0, 3)), np.zeros(0, bool))).all()


def test_options_change_what_they_should(mwa_example_events):
    cube = count_wakes(mwa_example_events, [3, 5], [4, 8])
    base = matched_wake_analysis(cube, MWASettings(match_on=["match1"]))
    unmatched = matched_wake_analysis(cube, MWASettings(match_on=["match1"], matching=False))
    assert (unmatched.matching["control_post"] == unmatched.matching["control_pre"]).all()
    diff = matched_wake_analysis(cube, MWASettings(match_on=["match1"], formula="diff",
                                                   delete_sutva=True))
    assert (diff.wakes["SO_pre"] == 0).all() and (diff.wakes["MO_pre"] == 0).all()
    assert "adj.r.squared" in diff.estimates
    att = matched_wake_analysis(cube, MWASettings(match_on=["match1"], estimation="att"))
    np.testing.assert_allclose(att.estimates["estimate"], base.estimates["estimate"],
                               equal_nan=True)
    assert "adj.r.squared" not in att.estimates
    with pytest.raises(SettingsError, match="match column"):
        matched_wake_analysis(cube, MWASettings(match_on=["nope"]))
    with pytest.raises(SettingsError, match="formula"):
        matched_wake_analysis(cube, MWASettings(match_on=["match1"], formula="log"))


def _sturges_cem_weights(x: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """CEM as MWA_SPEC.md states it, written from the spec: Sturges breaks from min to max
    per variable (a constant keeps its value), right-closed bins with the lowest included,
    strata with both groups matched, controls weighted (nT_s / nC_s) (M_C / M_T)."""
    n = len(x)
    codes = []
    for column in x.T:
        if column.min() == column.max():
            codes.append(column)
            continue
        breaks = np.unique(np.linspace(column.min(), column.max(), int(np.ceil(np.log2(n) + 1))))
        codes.append(np.clip(np.searchsorted(breaks, column, side="left"), 1, None))
    keys = [tuple(row) for row in np.column_stack(codes)]
    weights = np.zeros(n)
    strata = {}
    for k, key in enumerate(keys):
        strata.setdefault(key, []).append(k)
    matched = [rows for rows in strata.values()
               if treated[rows].any() and (~treated[rows]).any()]
    m_t = sum(int(treated[rows].sum()) for rows in matched)
    m_c = sum(int((~treated[rows]).sum()) for rows in matched)
    for rows in matched:
        rows = np.array(rows)
        n_t, n_c = treated[rows].sum(), (~treated[rows]).sum()
        weights[rows[treated[rows]]] = 1.0
        weights[rows[~treated[rows]]] = n_t / n_c * m_c / m_t
    return weights


@pytest.mark.parametrize("formula", ["lag", "diff"])
@pytest.mark.parametrize("vcov", ["classical", "HC1", "HC3"])
@pytest.mark.parametrize("delete_sutva", [False, True])
@pytest.mark.parametrize("matched", [False, True])
def test_every_option_equals_statsmodels_on_the_wakes_it_selects(mwa_example_events, formula,
                                                                  vcov, delete_sutva, matched):
    """Each cell of the table against statsmodels, on the wakes selected from the cube by
    the spec's rules (delete-SUTVA: no same- or other-type event before; no matching: all
    wakes, weight 1; matching: the spec's CEM on match1, match2 and the pre-trend, written
    again here, with the CEM weights in a WLS)."""
    cube = count_wakes(mwa_example_events, [4, 8], [4.0, 8.0])
    result = matched_wake_analysis(cube, MWASettings(
        match_on=["match1", "match2"] if matched else [], weighted=matched, matching=matched,
        formula=formula, vcov=vcov, delete_sutva=delete_sutva))
    cov_type = {"classical": "nonrobust"}.get(vcov, vcov)
    checked = 0
    for w in cube["window"].to_numpy():
        for r in cube["radius"].to_numpy():
            cell = cube.sel(window=w, radius=r)
            keep = cell["complete"].to_numpy().copy()
            if delete_sutva:
                keep &= (cell["same_type"].sel(period="pre").to_numpy() == 0) & (
                    cell["other_type"].sel(period="pre").to_numpy() == 0)
            pre = cell["dependent"].sel(period="pre").to_numpy()[keep].astype(float)
            post = cell["dependent"].sel(period="post").to_numpy()[keep].astype(float)
            treated = cell["treated"].to_numpy()[keep].astype(bool)
            weights = np.ones(len(pre))
            if matched:
                x_match = np.column_stack([cell["match1"].to_numpy()[keep],
                                           cell["match2"].to_numpy()[keep],
                                           cell["trend"].to_numpy()[keep]])
                weights = _sturges_cem_weights(x_match, treated)
            use = weights > 0
            y = post - pre if formula == "diff" else post
            x = np.column_stack([np.ones(len(pre)), treated.astype(float)]) if formula == \
                "diff" else np.column_stack([np.ones(len(pre)), pre, treated.astype(float)])
            mine = result.surface.sel(window=w, radius=r)
            if not np.isfinite(float(mine["estimate"])):
                continue  # NA by R's rule (aliased or undefined); checked elsewhere
            ref = sm.WLS(y[use], x[use], weights=weights[use]).fit(cov_type=cov_type,
                                                                    use_t=True)
            np.testing.assert_allclose(float(mine["estimate"]), ref.params[-1], rtol=1e-9)
            np.testing.assert_allclose(float(mine["std_error"]), ref.bse[-1], rtol=1e-8)
            np.testing.assert_allclose(float(mine["pvalue"]), ref.pvalues[-1], rtol=1e-6)
            np.testing.assert_allclose([float(mine["ci_lower"]), float(mine["ci_upper"])],
                                       ref.conf_int(alpha=0.05)[-1], rtol=1e-8)
            checked += 1
    assert checked >= 1 and checked == int(np.isfinite(result.surface["estimate"]).sum())


@pytest.mark.parametrize("vcov", ["classical", "HC1", "CR1:location", "CR2:location",
                                  "conley:25", "conley-bm:25"])
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(mwa_example_events, vcov):
    """std_error, ci_lower and ci_upper follow R's columns; the interval is the test's own,
    whatever --vcov made the p-values."""
    cube = count_wakes(mwa_example_events, [2, 4, 6, 8, 10], [2, 4, 6, 8, 10])
    result = matched_wake_analysis(cube, MWASettings(match_on=["match1", "match2"],
                                                     weighted=True, tcm=True, vcov=vcov,
                                                     alpha=0.05))
    table = result.estimates
    assert list(table.columns[-3:]) == ["std_error", "ci_lower", "ci_upper"]
    estimated = table["pvalue"].notna()
    assert table.loc[estimated, list(EXTRA_ESTIMATE_COLUMNS)].notna().all().all()
    assert table.loc[~estimated, list(EXTRA_ESTIMATE_COLUMNS)].isna().all().all()
    rows = table[estimated]
    assert (rows["ci_lower"] < rows["estimate"]).all() and (rows["estimate"] < rows[
        "ci_upper"]).all()
    np.testing.assert_allclose(rows["ci_upper"] - rows["estimate"],
                               rows["estimate"] - rows["ci_lower"], rtol=1e-12)
    excludes = (rows["ci_lower"] > 0) | (rows["ci_upper"] < 0)
    assert (excludes == (rows["pvalue"] <= 0.05)).all()
    # at the boundary: the interval at level 1 - p just touches 0
    from bayes_wake.core.regression import parse_vcov
    from bayes_wake.mwa.analysis import coefficient_interval

    kind = vcov.split(":")[0]
    small = parse_vcov(kind + {"CR1": ":g", "CR2": ":g"}.get(kind, ":25" if "conley" in kind
                                                               else ""))
    fit = weighted_ols(np.array([0.0, 1, 0, 2, 1, 3, 2, 4]),
                       np.column_stack([np.ones(8), [0, 0, 0, 0, 1, 1, 1, 1]]), np.ones(8),
                       vcov=small, clusters=np.array([1, 1, 2, 2, 3, 3, 4, 4]),
                       kernel=np.eye(8))
    lower, _ = coefficient_interval(fit, 1 - fit.pvalue[-1])
    assert abs(lower) < 1e-7 * fit.std_error[-1]


def test_no_covariate_to_match_on_names_the_python_arguments():
    from bayes_wake.mwa.analysis import MWASettings

    with pytest.raises(SettingsError, match=r"in match_on .*\(matching=False\)"):
        MWASettings(match_on=())


def test_the_treated_overlap_share_is_what_the_wakes_table_says_and_warns_above_10pc():
    """Per cell, the share of treated wakes holding another treatment's anchor (before or
    after) equals the same share read off R's wakes table. Treatments geocoded to shared
    places (simulate_study's default) overlap more than scattered ones and raise the
    spillover warning; small wakes of scattered treatments hold no other treatment and do
    not."""
    from bayes_wake.mwa.analysis import SPILLOVER_SHARE, spillover_warning
    from bayes_wake.simulate import simulate_study

    largest = {}
    for sites, grid in (("places", ([10, 30, 60], [3.0, 9.0, 15.0])),
                        ("scattered", ([10, 30, 60], [3.0, 9.0, 15.0])),
                        ("scattered", ([10], [1.0]))):
        study = simulate_study(3, n_dependent=600, project_sites=sites)
        covariates = list(study.events.attrs["covariates"])
        cube = count_wakes(study.events, *grid)
        result = matched_wake_analysis(cube, MWASettings(match_on=covariates))
        wakes = result.wakes[result.wakes["treatment"] == 1]
        oracle = ((wakes["SO_pre"] > 0) | (wakes["SO_post"] > 0)).groupby(
            [wakes["t_window"], wakes["spat_window"]]).mean()
        share = result.surface["treated_overlap"].to_series()
        np.testing.assert_allclose(share.to_numpy(), oracle.to_numpy(), rtol=1e-12)
        warning = spillover_warning(result)
        if share.max() > SPILLOVER_SHARE:
            assert "spillover" in warning and f"up to {share.max():.0%}" in warning
        else:
            assert warning is None
        largest.setdefault(sites, share.max())
    assert largest["places"] > largest["scattered"] > SPILLOVER_SHARE
    assert share.max() <= SPILLOVER_SHARE and warning is None  # 10 days x 1 km, scattered
