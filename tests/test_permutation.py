"""Randomisation inference: batched refits equal weighted_ols, permutations keep the strata,
and a null study gives an unremarkable family-wise p-value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayes_wake.matching import coarsened_exact_match
from bayes_wake.mwa import MWASettings, _cube_columns, matched_wake_analysis
from bayes_wake.permutation import (
    CellDesign,
    DateShiftSettings,
    GridDesign,
    _batched_wls,
    date_shift_chunk,
    date_shift_range,
    grid_design,
    label_permutation_chunk,
    permuted_labels,
    randomisation_test,
    shift_treatment_dates,
)
from bayes_wake.regression import weighted_ols
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
    result = matched_wake_analysis(cube, match_on=match_on, **options)
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
    assert (moved >= events["time"].min()).all()
    assert (moved < events["time"].min() + pd.Timedelta(days=period)).all()
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
