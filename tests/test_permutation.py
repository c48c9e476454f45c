"""Randomisation inference: batched refits equal weighted_ols, permutations keep the strata,
and a null study gives an unremarkable family-wise p-value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_wake.checks.randomisation import (
    CellDesign,
    DateShiftSettings,
    GridDesign,
    GridStatistics,
    _batched_wls,
    date_shift_chunk,
    date_shift_range,
    date_shift_span,
    draw_offsets,
    grid_design,
    label_permutation_chunk,
    permuted_labels,
    randomisation_test,
    shift_treatment_dates,
)
from bayes_wake.core.matching import coarsened_exact_match
from bayes_wake.core.regression import weighted_ols
from bayes_wake.mwa.analysis import MWASettings, _cube_columns, matched_wake_analysis
from bayes_wake.simulate import simulate_study
from bayes_wake.wakes import count_wakes

WINDOWS, RADII = [10, 20, 30, 40, 50, 60], [3.0, 6.0, 9.0, 12.0, 15.0]
COVARIATES = ("dist_base_km", "dist_river_km", "pop_density")


@pytest.fixture(scope="module")
def study_cube():
    events = simulate_study(0).events
    return events, count_wakes(events, WINDOWS, RADII)


SETTINGS = [
    {"weighted": True},
    {"weighted": False},
    {"weighted": True, "vcov": "HC1"},
    {"weighted": True, "vcov": "HC3"},
    {"weighted": True, "formula": "diff"},
    {"weighted": True, "tcm": True, "delete_sutva": True},
    {"matching": False},
]


@pytest.mark.parametrize("options", SETTINGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in
                                                                      o.items()))
def test_batched_fit_of_observed_labels_reproduces_the_mwa_table(study_cube, options):
    _, cube = study_cube
    match_on = COVARIATES if options.get("matching", True) else ()
    settings = MWASettings(match_on=match_on, **options)
    result = matched_wake_analysis(cube, MWASettings(match_on=match_on, **options))
    observed = grid_design(cube, settings).statistics()
    for ours, theirs in ((observed.estimate[0], result.surface["estimate"]),
                         (observed.pvalue[0], result.surface["pvalue"]),
                         (observed.std_error[0], result.surface["std_error"])):
        theirs = theirs.to_numpy()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-13)
    assert observed.n_significant[0] == int((result.estimates["pvalue"] <= 0.05).sum())


def test_batched_fit_equals_weighted_ols_for_permuted_labels(study_cube):
    _, cube = study_cube
    design = grid_design(cube, MWASettings(match_on=COVARIATES, weighted=True, vcov="HC3"))
    keys = np.random.default_rng(3).random((4, design.n_events))
    labels = permuted_labels(design, keys)
    stats = design.statistics(labels)
    for c in (0, 13, 29):
        cell = design.cells[c]
        for p in range(4):
            treated = labels[c][p]
            w = np.where(treated, 1.0, cell.control_weight[cell.stratum])
            x = np.column_stack([np.ones(cell.n), cell.pre, treated])
            fit = weighted_ols(cell.outcome, x, w, vcov="HC3")
            i, j = divmod(c, len(RADII))
            np.testing.assert_allclose(stats.estimate[p, i, j], fit.coef[-1], rtol=1e-9)
            np.testing.assert_allclose(stats.pvalue[p, i, j], fit.pvalue[-1], rtol=1e-8)


def test_permutations_keep_every_stratum_and_so_the_cem_weights(study_cube):
    _, cube = study_cube
    settings = MWASettings(match_on=COVARIATES, weighted=True)
    design = grid_design(cube, settings)
    labels = permuted_labels(design, np.random.default_rng(0).random((20, design.n_events)))
    moved = 0
    for cell, lab in zip(design.cells, labels, strict=True):
        expected = np.bincount(cell.stratum, weights=cell.treated)
        for row in lab:
            np.testing.assert_array_equal(np.bincount(cell.stratum, weights=row,
                                                      minlength=len(expected)), expected)
        moved += int((lab != cell.treated).sum())
    assert moved > 0
    # CEM on the permuted labels gives the same weight to every (stratum, label)
    columns, keep = _cube_columns(cube, COVARIATES)
    i, j = 2, 3
    rows = np.flatnonzero(keep[:, i, j])
    x = np.column_stack([columns[k][rows, i, j] for k in (*COVARIATES, "dependent_trend")])
    cell = design.cells[i * len(RADII) + j]
    treated = columns["treatment"][rows, i, j].astype(bool)
    position = {e: n for n, e in enumerate(rows)}
    for row in labels[i * len(RADII) + j][:5]:
        permuted = treated.copy()
        permuted[[position[e] for e in cell.event]] = row
        cem = coarsened_exact_match(x, permuted)
        in_fit = np.array([position[e] for e in cell.event])
        assert cem.matched[in_fit].all() and cem.matched.sum() == cell.n
        np.testing.assert_allclose(cem.weight[in_fit],
                                   np.where(row, 1.0, cell.control_weight[cell.stratum]))


def test_r_na_rule_an_aliased_or_undefined_cell_is_never_significant():
    settings = MWASettings(match_on=("x",), weighted=True)
    constant_pre = CellDesign(window=10, radius=3.0, event=np.arange(6),
                              outcome=np.array([0.0, 1, 2, 0, 3, 1]), pre=np.full(6, 2.0),
                              treated=np.array([1, 0, 1, 0, 1, 0], bool),
                              stratum=np.zeros(6, np.int64), control_weight=np.ones(1))
    assert weighted_ols(constant_pre.outcome, np.column_stack(
        [np.ones(6), constant_pre.pre, constant_pre.treated])).aliased
    too_few = CellDesign(window=10, radius=6.0, event=np.arange(3),
                         outcome=np.array([0.0, 1, 2]), pre=np.array([0.0, 1, 0]),
                         treated=np.array([1, 0, 0], bool), stratum=np.zeros(3, np.int64),
                         control_weight=np.ones(1))
    design = GridDesign(windows=np.array([10]), radii=np.array([3.0, 6.0]),
                        cells=(constant_pre, too_few), n_events=6, settings=settings)
    stats = design.statistics(permuted_labels(design, np.random.default_rng(1).random((8, 6))))
    assert np.isnan(stats.pvalue).all() and np.isnan(stats.t).all()
    assert (stats.n_significant == 0).all() and (stats.max_abs_t == 0).all()


def test_batched_fit_with_nothing_to_fit_is_na():
    cell = CellDesign(window=10, radius=3.0, event=np.zeros(0, np.int64), outcome=np.zeros(0),
                      pre=np.zeros(0), treated=np.zeros(0, bool),
                      stratum=np.zeros(0, np.int64), control_weight=np.ones(1))
    est, _, _, p, perfect = _batched_wls(cell, np.zeros((3, 0), bool), MWASettings(match_on=("x",)))
    assert np.isnan(est).all() and np.isnan(p).all() and not perfect.any()


def test_chunks_are_reproducible_and_independent(study_cube):
    _, cube = study_cube
    design = grid_design(cube, MWASettings(match_on=COVARIATES, weighted=True))
    a = label_permutation_chunk(design, 3, 20, seed=7)
    assert a == label_permutation_chunk(design, 3, 20, seed=7)
    assert a != label_permutation_chunk(design, 4, 20, seed=7)
    assert a != label_permutation_chunk(design, 3, 20, seed=8)


def test_null_study_gives_an_unremarkable_familywise_pvalue():
    events = simulate_study(3, effect=0).events
    cube = count_wakes(events, WINDOWS, RADII)
    design = grid_design(cube, MWASettings(match_on=COVARIATES, weighted=True))
    chunks = [label_permutation_chunk(design, c, 100, seed=1) for c in range(2)]
    test = randomisation_test("labels", design.statistics(), chunks)
    assert test.n_draws == 200
    assert test.pvalue_count() > 0.1 and test.pvalue_max_t() > 0.1
    adjusted = test.adjusted_pvalues()
    assert adjusted.shape == (len(WINDOWS), len(RADII)) and (adjusted > 0.05).all()
    assert "200 permutations of the treatment labels" in test.sentence()


def test_planted_effect_is_rare_under_the_permutation_null(study_cube):
    _, cube = study_cube
    design = grid_design(cube, MWASettings(match_on=COVARIATES, weighted=True))
    chunks = [label_permutation_chunk(design, c, 100, seed=1) for c in range(2)]
    test = randomisation_test("labels", design.statistics(), chunks)
    assert test.observed_count >= 15 and test.pvalue_count() < 0.05
    summary = test.summary()
    assert list(summary["statistic"]) == ["significant windows", "max |t|"]


def test_date_shift_moves_only_treatments_circularly(mwa_example_events):
    events = mwa_example_events
    lo, hi, period = date_shift_range(events, [10], "days")
    assert lo == 21 and hi == period - 21
    shifted = shift_treatment_dates(events, hi, "days")
    n = len(events)
    assert list(shifted["role"].iloc[n:]) == ["other", "other"]  # the record's bounds
    assert shifted["time"].iloc[n:].tolist() == [events["time"].min(), events["time"].max()]
    shifted_rows = shifted.iloc[:n]
    treated = (events["role"] == "treatment").to_numpy()
    pd.testing.assert_series_equal(shifted_rows.loc[~treated, "time"],
                                   events.loc[~treated, "time"])
    moved = shifted_rows.loc[treated, "time"]
    span = date_shift_span(events, "days")
    assert (moved >= span.start).all()
    assert (moved < span.start + pd.Timedelta(days=period)).all()
    assert (moved != events.loc[treated, "time"]).all()
    back = shift_treatment_dates(shifted, period - hi, "days")
    pd.testing.assert_series_equal(back["time"].iloc[:n], events["time"])


def test_a_zero_shift_reproduces_the_observed_grid(mwa_example_events):
    settings = MWASettings(match_on=("match1", "match2"), weighted=True)
    real = count_wakes(mwa_example_events, [2, 4, 6], [2.0, 4.0])
    placebo = count_wakes(shift_treatment_dates(mwa_example_events, 0, "days"), [2, 4, 6],
                          [2.0, 4.0], covariates=["match1", "match2"])
    a = grid_design(real, settings).statistics()
    b = grid_design(placebo, settings).statistics()
    np.testing.assert_array_equal(a.estimate, b.estimate)
    np.testing.assert_array_equal(a.pvalue, b.pvalue)


def test_date_shift_chunk_counts_matches_and_fits_again(mwa_example_events):
    settings = DateShiftSettings(windows=(2, 4, 6), radii=(2.0, 4.0), t_unit="days",
                                 convention="mwa",
                                 mwa=MWASettings(match_on=("match1", "match2"), weighted=True))
    result = date_shift_chunk(mwa_example_events, settings, 0, 3, seed=5)
    assert result == date_shift_chunk(mwa_example_events, settings, 0, 3, seed=5)
    assert len(result["offset"]) == len(result["n_significant"]) == 3
    lo, hi, _ = date_shift_range(mwa_example_events, [6], "days")
    assert all(lo <= o <= hi for o in result["offset"])


def test_too_short_a_record_for_date_shifts_is_refused(mwa_example_events):
    from bayes_wake.errors import SettingsError

    span = (mwa_example_events["time"].max() - mwa_example_events["time"].min()).days
    with pytest.raises(SettingsError, match="too short for date-shift"):
        date_shift_range(mwa_example_events, [span], "days")


def test_an_essentially_perfect_fit_counts_as_in_r_but_not_in_max_t():
    settings = MWASettings(match_on=("x",), weighted=True)
    treated = np.array([1, 0, 1, 0, 1, 0, 0, 1], bool)
    perfect = CellDesign(window=10, radius=3.0, event=np.arange(8),
                         outcome=2.0 * treated + np.arange(8.0), pre=np.arange(8.0),
                         treated=treated, stratum=np.zeros(8, np.int64),
                         control_weight=np.ones(1))
    noisy = CellDesign(window=10, radius=6.0, event=np.arange(8),
                       outcome=np.array([3.0, 0, 2, 1, 4, 0, 1, 2]), pre=np.arange(8.0) % 3,
                       treated=treated, stratum=np.zeros(8, np.int64),
                       control_weight=np.ones(1))
    design = GridDesign(windows=np.array([10]), radii=np.array([3.0, 6.0]),
                        cells=(perfect, noisy), n_events=8, settings=settings)
    observed = design.statistics()
    reference = weighted_ols(perfect.outcome, np.column_stack(
        [np.ones(8), perfect.pre, treated]))
    assert reference.defined and reference.pvalue[-1] < 1e-10  # R reports it, significant
    assert observed.perfect[0, 0, 0] and not observed.perfect[0, 0, 1]
    assert observed.significant[0, 0, 0] and observed.n_perfect[0] == 1
    assert observed.max_abs_t[0] == pytest.approx(abs(observed.t[0, 0, 1]))


# --------------------------------------------------------------------------------------------
# checks that guard themselves (issue 9, item 3)

EXAMPLE = DateShiftSettings(windows=(2, 4, 6, 8, 10), radii=(2.0, 4.0, 6.0, 8.0, 10.0),
                            t_unit="days", convention="mwa",
                            mwa=MWASettings(match_on=("match1", "match2"), weighted=True,
                                            tcm=True))


def _anchor_span(events):
    anchors = events.loc[events["role"].isin(["treatment", "control"]), "time"]
    return anchors.min(), anchors.max()


def test_date_shifts_stay_inside_the_events_span_on_r_example(mwa_example_events):
    events = mwa_example_events
    first, last = _anchor_span(events)
    # the outcome record's core (1% to 99%) is wider than the anchors': the anchors decide
    outcome = events.loc[events["role"] == "dependent", "time"].sort_values().tolist()
    assert outcome[0].year == 1901 and outcome[-1].year == 2100  # the sentinel rows
    assert outcome[int(0.01 * len(outcome))] <= first
    assert outcome[int(np.ceil(0.99 * (len(outcome) - 1)))] >= last
    span = date_shift_span(events, "days")
    assert (span.start, span.end) == (first, last) and span.period == (last - first).days + 1
    lo, hi, period = date_shift_range(events, EXAMPLE.windows, "days")
    assert (lo, hi, period) == (21, span.period - 21, span.period)
    offsets = np.concatenate([draw_offsets(events, EXAMPLE, c, 50, 7) for c in range(20)])
    assert lo <= offsets.min() and offsets.max() <= hi and len(np.unique(offsets)) > 10
    treated = (events["role"] == "treatment").to_numpy()
    for offset in np.unique(offsets):
        moved = shift_treatment_dates(events, int(offset), "days")["time"].iloc[:len(events)]
        assert moved[treated].between(first, last).all()


def test_date_shift_null_draws_differ_on_r_example(mwa_example_events):
    chunks = [date_shift_chunk(mwa_example_events, EXAMPLE, c, 10, 20220101) for c in range(3)]
    cube = count_wakes(mwa_example_events, list(EXAMPLE.windows), list(EXAMPLE.radii),
                       covariates=["match1", "match2"])
    test = randomisation_test("date_shift", grid_design(cube, EXAMPLE.mwa).statistics(), chunks)
    assert test.null[["n_significant", "max_abs_t"]].drop_duplicates().shape[0] > 5
    assert test.n_valid == 30 and test.informative
    assert "(30 valid draws of 30, from " in test.sentence()


def test_one_placebo_draw_equals_an_independent_count_and_fit(mwa_example_events):
    events = mwa_example_events
    result = date_shift_chunk(events, EXAMPLE, 2, 10, seed=11)
    draw = next(i for i, n in enumerate(result["n_perfect_fits"]) if n == 0)
    offset = result["offset"][draw]
    # shift by hand: circularly within the anchors' span, in whole days
    first, last = _anchor_span(events)
    period = pd.Timedelta(days=(last - first).days + 1)
    shifted = events.copy()
    treated = shifted["role"] == "treatment"
    since = shifted.loc[treated, "time"] - first + pd.Timedelta(days=offset)
    shifted.loc[treated, "time"] = first + since % period
    cube = count_wakes(shifted, list(EXAMPLE.windows), list(EXAMPLE.radii),
                       covariates=["match1", "match2"])
    table = matched_wake_analysis(cube, MWASettings(match_on=("match1", "match2"), weighted=True,
                                                    tcm=True)).surface
    p, estimate = table["pvalue"].to_numpy(), table["estimate"].to_numpy()
    t = np.abs(estimate / table["std_error"].to_numpy())
    assert result["n_significant"][draw] == int((p <= 0.05).sum())
    assert result["n_significant_positive"][draw] == int(((p <= 0.05) & (estimate > 0)).sum())
    assert result["n_defined"][draw] == int(np.isfinite(p).sum())
    assert result["max_abs_t"][draw] == pytest.approx(float(np.nanmax(t)), rel=1e-9)


def _observed(count=3, max_t=4.0, perfect=0):
    shape = (1, 2, 2)
    pvalue = np.full(shape, 0.5)
    pvalue.flat[:count] = 0.01
    t = np.full(shape, 1.0)
    t.flat[0] = max_t
    flags = np.zeros(shape, bool)
    flags.flat[1:1 + perfect] = True
    return GridStatistics(estimate=t.copy(), std_error=np.ones(shape), t=t, pvalue=pvalue,
                          alpha=0.05, perfect=flags)


def _chunk(count, max_t, perfect=0, defined=4):
    n = len(count)
    return {"chunk": 0, "n_significant": list(count), "n_significant_positive": list(count),
            "max_abs_t": list(max_t), "n_perfect_fits": [perfect] * n if np.isscalar(perfect)
            else list(perfect), "n_defined": [defined] * n if np.isscalar(defined)
            else list(defined)}


def _assert_not_informative(test, because):
    sentence = test.sentence()
    assert "the check is not informative, because" in sentence and because in sentence
    assert f"({test.n_valid:,} valid draws of {test.n_draws:,})" in sentence
    assert "p =" not in sentence
    assert np.isnan(test.pvalue_count()) and np.isnan(test.pvalue_max_t())
    assert np.isnan(test.adjusted_pvalues()).all()
    assert test.summary()["familywise_p"].isna().all()


def test_a_null_of_identical_draws_is_not_informative():
    # as on R's example before the span rule: 100 placebos, all 3 windows and max |t| 4.51
    # (equal up to rounding)
    same = _chunk([3] * 100, 4.51324043310889 + np.tile([0, 4e-14], 50), perfect=1)
    test = randomisation_test("date_shift", _observed(count=3, max_t=4.0), [same])
    _assert_not_informative(test, "all 100 valid draws are identical")


def test_too_few_valid_draws_are_not_informative():
    rng = np.random.default_rng(0)
    few = _chunk(rng.integers(0, 5, 10), rng.uniform(1, 4, 10))
    _assert_not_informative(randomisation_test("labels", _observed(), [few]),
                            "only 10 of 10 draws are valid")
    # 100 draws, but 85 without any estimable window
    none = _chunk(rng.integers(0, 5, 100), rng.uniform(1, 4, 100),
                  defined=[0] * 85 + [4] * 15)
    _assert_not_informative(randomisation_test("labels", _observed(), [none]),
                            "only 15 of 100 draws are valid")


def test_one_draw_is_one_draw_in_the_sentence():
    test = randomisation_test("labels", _observed(), [_chunk([2], [3.0])])
    sentence = test.sentence()
    assert "Under 1 permutation of the treatment labels" in sentence
    assert "only 1 of 1 draw is valid" in sentence and "(1 valid draw of 1)" in sentence
    assert "1 permutations" not in sentence and "draws of 1" not in sentence


def test_mostly_near_infinite_t_is_not_informative():
    rng = np.random.default_rng(1)
    max_t = np.where(np.arange(100) < 60, 1.2e15, rng.uniform(1, 4, 100))
    test = randomisation_test("date_shift", _observed(),
                              [_chunk(rng.integers(0, 5, 100), max_t)])
    _assert_not_informative(test, "60 of 100 draws have a near-infinite t")


def test_mostly_perfect_fits_make_only_the_count_not_informative():
    rng = np.random.default_rng(2)
    test = randomisation_test("date_shift", _observed(), [_chunk(
        rng.integers(0, 5, 100), rng.uniform(1, 5, 100), perfect=[1] * 70 + [0] * 30)])
    sentence = test.sentence()
    assert "the count of significant windows is not informative, because 70 of 100 valid " \
           "draws have an essentially perfect fit" in sentence
    assert "a max |t| of 4.00 or more occurs with probability" in sentence
    assert np.isnan(test.pvalue_count()) and 0 < test.pvalue_max_t() < 1
    observed_perfect = randomisation_test("labels", _observed(perfect=1), [_chunk(
        rng.integers(0, 5, 100), rng.uniform(1, 5, 100))])
    assert "the observed grid has 1 essentially perfect fit" in observed_perfect.sentence()


def test_verdicts_carry_the_valid_draws_and_p_values_use_only_them():
    rng = np.random.default_rng(3)
    max_t = rng.uniform(1, 5, 100)
    max_t[[4, 50]] = [np.inf, 3e16]  # near-perfect fits
    defined = np.full(100, 4)
    defined[7] = 0  # nothing estimable
    count = rng.integers(0, 5, 100)
    test = randomisation_test("labels", _observed(count=3, max_t=4.0),
                              [_chunk(count, np.nan_to_num(max_t, posinf=1e308),
                                      defined=defined)])
    assert test.n_valid == 97
    assert test.sentence().endswith("(97 valid draws of 100).")
    keep = np.ones(100, bool)
    keep[[4, 7, 50]] = False
    assert test.pvalue_count() == (1 + (count[keep] >= 3).sum()) / 98
    assert test.pvalue_max_t() == (1 + (max_t[keep] >= 4.0).sum()) / 98
    summary = test.summary()
    assert (summary["valid_draws"] == 97).all() and (summary["draws"] == 100).all()


def test_verdicts_of_the_study_carry_the_valid_draws(study_cube):
    _, cube = study_cube
    design = grid_design(cube, MWASettings(match_on=COVARIATES, weighted=True))
    chunks = [label_permutation_chunk(design, c, 50, seed=1) for c in range(2)]
    test = randomisation_test("labels", design.statistics(), chunks)
    assert test.sentence().endswith("(100 valid draws of 100).")


def test_ties_with_the_observed_statistic_count_as_at_least_as_extreme():
    # 30 valid draws; the observed grid has 3 significant windows and max |t| 4.0 in cell 0
    count = [3] * 5 + [2] * 10 + [5] * 2 + [0] * 13  # 5 ties, 2 above
    max_t = [4.0] * 4 + [3.0] * 6 + [6.0] + [1.0] * 19  # 4 ties, 1 above
    test = randomisation_test("labels", _observed(count=3, max_t=4.0),
                              [_chunk(count, max_t)])
    assert test.n_valid == 30
    assert test.pvalue_count() == (1 + 7) / 31
    assert test.pvalue_max_t() == (1 + 5) / 31
    adjusted = test.adjusted_pvalues().ravel()
    # cell 0 (|t| 4.0): 5 null maxima >= 4.0; the cells with |t| 1.0: every draw ties or beats
    assert adjusted[0] == (1 + 5) / 31
    assert list(adjusted[1:]) == [1.0, 1.0, 1.0]
