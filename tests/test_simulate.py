"""Tests of the simulator: determinism, the event-table contract, realism, and the planted truth."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bayes_wake.core.geo import EARTH_RADIUS_KM, destination, great_circle_km
from bayes_wake.errors import SettingsError
from bayes_wake.simulate import (
    BASES,
    MALI_BOUNDS,
    NIGER_RIVER,
    PlantedEffect,
    simulate_study,
)

PAPER_WINDOWS = [10, 20, 30, 40, 50, 60]
PAPER_RADII = [3.0, 6.0, 9.0, 12.0, 15.0]
NS_PER_DAY = 86_400 * 10**9


@pytest.fixture(scope="module")
def study():
    return simulate_study(seed=3)


@pytest.fixture(scope="module")
def big_study():
    """Many treatments and a strong effect, for Monte-Carlo checks of the truth."""
    return simulate_study(
        seed=11,
        n_treatment=20_000,
        n_control=0,
        n_dependent=32_000,
        effect=PlantedEffect(rate=1.5),
    )


def haversine_km(lon1, lat1, lon2, lat2):
    """An independent great-circle distance (haversine form) as the test oracle."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


def _ns(times: pd.Series) -> np.ndarray:
    return pd.DatetimeIndex(times).as_unit("ns").asi8


# --- determinism --------------------------------------------------------------------------


def test_same_seed_same_output():
    a, b = simulate_study(seed=5), simulate_study(seed=5)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.offspring, b.offspring)
    assert a.events.attrs == b.events.attrs
    assert a.settings == b.settings


def test_different_seed_differs():
    a, b = simulate_study(seed=5), simulate_study(seed=6)
    assert not np.array_equal(a.events["lon"].to_numpy(), b.events["lon"].to_numpy())
    assert not np.array_equal(_ns(a.events["time"]), _ns(b.events["time"]))


def test_changing_the_effect_keeps_the_projects():
    with_effect, null = simulate_study(seed=2), simulate_study(seed=2, effect=0)
    projects = with_effect.events["role"] != "dependent"
    pd.testing.assert_frame_equal(
        with_effect.events.loc[projects, ["role", "time", "lon", "lat"]],
        null.events.loc[projects, ["role", "time", "lon", "lat"]],
    )


# --- the event-table contract -------------------------------------------------------------


def test_role_counts_as_requested():
    s = simulate_study(seed=1, n_treatment=50, n_control=120, n_dependent=300)
    counts = s.events["role"].value_counts()
    assert counts.to_dict() == {"treatment": 50, "control": 120, "dependent": 300}
    assert s.settings["n_baseline"] + s.settings["n_spawned_observed"] == 300


def test_columns_and_dtypes(study):
    e = study.events
    assert list(e.columns) == [
        "event_id", "role", "time", "lon", "lat", "dist_base_km", "dist_river_km", "pop_density",
    ]
    assert e["event_id"].dtype == np.int64
    np.testing.assert_array_equal(e["event_id"], np.arange(1, len(e) + 1))
    assert pd.api.types.is_string_dtype(e["role"])
    assert set(e["role"]) == {"treatment", "control", "dependent"}
    assert str(e["time"].dtype) == "datetime64[ns, UTC]"
    for column in ("lon", "lat", *e.attrs["covariates"]):
        assert e[column].dtype == np.float64, column
    assert not e.isna().any().any()
    assert e.attrs["source"] == "simulated (seed=3)"
    assert e.attrs["covariates"] == ["dist_base_km", "dist_river_km", "pop_density"]
    json.dumps(study.settings)  # provenance must be writable as it is


def test_rows_in_input_order_blocks_sorted_by_time(study):
    e = study.events
    roles = e["role"].to_numpy()
    n_t, n_c = (roles == "treatment").sum(), (roles == "control").sum()
    assert (roles[:n_t] == "treatment").all() and (roles[n_t : n_t + n_c] == "control").all()
    for role in ("treatment", "control", "dependent"):
        assert e.loc[e["role"] == role, "time"].is_monotonic_increasing


def test_times_inside_record_and_of_the_right_precision(study):
    e = study.events
    start, end = pd.Timestamp("2017-01-01", tz="UTC"), pd.Timestamp("2021-01-01", tz="UTC")
    assert (e["time"] >= start).all() and (e["time"] < end).all()
    midnight = _ns(e["time"]) % NS_PER_DAY == 0
    projects = (e["role"] != "dependent").to_numpy()
    assert midnight[projects].all()  # project start dates
    dependent_midnight = midnight[~projects]
    assert 0.5 < dependent_midnight.mean() < 0.95  # ACLED-like dates, some times of day
    assert (_ns(e["time"]) % 10**9 == 0).all()  # whole seconds


def test_coordinates_inside_the_box(study):
    lon_min, lon_max, lat_min, lat_max = MALI_BOUNDS
    e = study.events
    assert e["lon"].between(lon_min, lon_max).all()
    assert e["lat"].between(lat_min, lat_max).all()


def test_dependents_are_hidden_among_the_baseline(study):
    e = study.events
    dependent_rows = np.flatnonzero(e["role"].to_numpy() == "dependent")
    offspring_rows = study.offspring["event_id"].dropna().to_numpy(dtype=np.int64) - 1
    assert np.isin(offspring_rows, dependent_rows).all()
    # Not bunched at the end of the block: spread like the block itself.
    position = np.searchsorted(dependent_rows, offspring_rows) / dependent_rows.size
    assert 0.3 < position.mean() < 0.7


# --- realism ------------------------------------------------------------------------------


def test_treatments_closer_to_bases_than_controls():
    means = [
        simulate_study(seed=seed).events.groupby("role")["dist_base_km"].mean()
        for seed in range(3)
    ]
    for m in means:
        assert m["treatment"] < 0.8 * m["control"]
    overall = pd.concat(means, axis=1).mean(axis=1)
    # The paper's Table 2: QIPs 59 km, aid projects 95 km from the nearest UN base.
    assert 40 < overall["treatment"] < 80
    assert 75 < overall["control"] < 120


def test_distance_to_base_matches_brute_force(study):
    e = study.events
    xy = np.array(list(BASES.values()))
    brute = haversine_km(
        e["lon"].to_numpy()[:, None], e["lat"].to_numpy()[:, None], xy[:, 0], xy[:, 1]
    ).min(axis=1)
    np.testing.assert_allclose(e["dist_base_km"], brute, rtol=0, atol=1e-6)


def _densified_river(points_per_arc: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """Points along each great-circle arc of the river (spherical interpolation)."""
    v = np.asarray(NIGER_RIVER)
    phi, lam = np.radians(v[:, 1]), np.radians(v[:, 0])
    xyz = np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)
    f = np.linspace(0.0, 1.0, points_per_arc)[:, None]
    pieces = []
    for a, b in zip(xyz[:-1], xyz[1:], strict=True):
        omega = math.acos(np.clip(a @ b, -1, 1))
        pieces.append((np.sin((1 - f) * omega) * a + np.sin(f * omega) * b) / math.sin(omega))
    p = np.concatenate(pieces)
    return np.degrees(np.arctan2(p[:, 1], p[:, 0])), np.degrees(np.arcsin(p[:, 2]))


def test_distance_to_river_matches_brute_force(study):
    e = study.events.iloc[::20]
    river_lon, river_lat = _densified_river()
    brute = haversine_km(
        e["lon"].to_numpy()[:, None], e["lat"].to_numpy()[:, None], river_lon, river_lat
    ).min(axis=1)
    computed = e["dist_river_km"].to_numpy()
    # The exact distance can never exceed the distance to a point of the river, and the
    # densified river is at most ~0.04 km from every point of the real one.
    assert (computed <= brute + 1e-6).all()
    assert (brute - computed < 0.1).all()


def test_population_density_is_higher_near_towns(study):
    e = study.events
    assert (e["pop_density"] > 0).all()
    near_gao = haversine_km(e["lon"], e["lat"], -0.04, 16.27) < 5
    far = e["dist_base_km"] > 150
    assert e.loc[near_gao, "pop_density"].median() > 3 * e.loc[far, "pop_density"].median()


# --- the planted effect -------------------------------------------------------------------


def test_true_effect_dims_and_coords(study):
    truth = study.true_effect(PAPER_WINDOWS, PAPER_RADII)
    assert truth.dims == ("window", "radius")
    np.testing.assert_array_equal(truth["window"], PAPER_WINDOWS)
    np.testing.assert_array_equal(truth["radius"], PAPER_RADII)
    assert truth["window"].attrs["units"] == "days"
    assert truth["radius"].attrs["units"] == "km"
    assert (truth > 0).all()
    assert truth.identical(study.truth)


@pytest.mark.parametrize("effect", [0, 0.0, None, PlantedEffect(rate=0.0)])
def test_null_study(effect):
    s = simulate_study(seed=4, effect=effect, n_dependent=500)
    assert (s.true_effect(PAPER_WINDOWS, PAPER_RADII) == 0).all()
    assert len(s.offspring) == 0
    assert (s.events["role"] == "dependent").sum() == 500


@pytest.mark.parametrize(
    "effect",
    [
        PlantedEffect(),
        PlantedEffect(delay_kernel="uniform", delay_max_days=60, distance_kernel="halfnormal"),
        PlantedEffect(delay_shape=0.5, delay_scale_days=3.0, distance_scale_km=1.0),
    ],
)
@pytest.mark.parametrize("t_unit", ["days", "hours", "minutes"])
def test_true_effect_monotone_and_bounded(effect, t_unit):
    s = simulate_study(seed=0, n_treatment=5, n_control=5, n_dependent=50, effect=effect)
    truth = s.true_effect(np.arange(1, 200), np.linspace(0.5, 30, 40), t_unit=t_unit)
    assert (truth.diff("window") >= 0).all()
    assert (truth.diff("radius") >= 0).all()
    assert (truth >= 0).all() and (truth <= effect.rate).all()


def test_true_effect_closed_form_for_a_uniform_delay():
    # Uniform delays on (0, 60]: P(1 <= floor(delay) <= T) = min(T, 59) / 60, whatever
    # the date-only share, since parents sit at midnight.
    effect = PlantedEffect(rate=2.0, delay_kernel="uniform", delay_max_days=60)
    s = simulate_study(seed=0, n_treatment=5, n_control=5, n_dependent=50, effect=effect)
    windows, radii = np.array([1, 10, 59, 60, 90]), np.array([2.0, 5.0, 10.0])
    expected = (
        2.0
        * (np.minimum(windows, 59) / 60)[:, None]
        * (1 - np.exp(-(radii**2) / (2 * 5.0**2)))[None, :]
    )
    np.testing.assert_allclose(s.true_effect(windows, radii), expected, rtol=1e-12)
    # R's mwa: 111.111 km per degree of central angle, so each radius reaches further.
    mwa = s.true_effect(windows, radii, convention="mwa")
    assert (mwa > s.true_effect(windows, radii)).all()


def test_offspring_match_the_event_table(study):
    e = study.events.set_index("event_id")
    o = study.offspring
    assert (e.loc[o["parent_id"], "role"] == "treatment").all()  # controls spawn nothing
    seen = o[o["observed"]]
    assert seen["event_id"].is_unique
    child = e.loc[seen["event_id"].to_numpy(dtype=np.int64)]
    parent = e.loc[seen["parent_id"]]
    distance = haversine_km(
        *(frame[c].to_numpy() for frame in (parent, child) for c in ("lon", "lat"))
    )
    np.testing.assert_allclose(distance, seen["distance_km"], rtol=0, atol=1e-6)
    days = (_ns(child["time"]) - _ns(parent["time"])) // NS_PER_DAY
    np.testing.assert_array_equal(days, np.floor(seen["delay_days"]))
    # Censored offspring fell after the record's end.
    lost = o[~o["observed"]]
    assert lost["event_id"].isna().all()
    last = pd.Timestamp(study.settings["end"]) + pd.Timedelta(days=1)
    parent_time = e.loc[lost["parent_id"], "time"].reset_index(drop=True)
    assert (parent_time + pd.to_timedelta(lost["delay_days"].to_numpy(), unit="D") >= last).all()


def _own_offspring_counts(study, windows, radii, unit_ns, distance):
    """Per eligible treatment, the own offspring counted in each (window, radius) cell.

    Counted from the event table as a wake counter would: floor((t_k - t_w) / unit) in
    1..T and distance <= S. Eligible: the treatment's longest post window fits the record.
    """
    e = study.events.set_index("event_id")
    o = study.offspring[study.offspring["observed"]]
    treatments = e[e["role"] == "treatment"]
    end_ns = _ns(pd.Series([pd.Timestamp(study.settings["end"])])).item() + NS_PER_DAY
    longest_ns = (max(windows) + 1) * unit_ns
    eligible = treatments.index[_ns(treatments["time"]) + longest_ns <= end_ns]
    o = o[o["parent_id"].isin(eligible)]
    child = e.loc[o["event_id"].to_numpy(dtype=np.int64)]
    parent = e.loc[o["parent_id"]]
    dd = (_ns(child["time"]) - _ns(parent["time"])) // unit_ns
    d = distance(parent["lon"].to_numpy(), parent["lat"].to_numpy(),
                 child["lon"].to_numpy(), child["lat"].to_numpy())
    counts = np.array(
        [[((dd >= 1) & (dd <= t) & (d <= s)).sum() for s in radii] for t in windows], dtype=float
    )
    return counts, len(eligible)


def _assert_within_sampling_error(counts, n, truth):
    mean = counts / n
    # Each eligible treatment's count in a cell is Poisson(truth), independently.
    se = np.sqrt(truth / n)
    z = (mean - truth) / se
    assert np.all(np.abs(z) < 4.5), np.round(z, 2)


def test_truth_matches_monte_carlo_in_days(big_study):
    counts, n = _own_offspring_counts(
        big_study, PAPER_WINDOWS, PAPER_RADII, NS_PER_DAY, haversine_km
    )
    assert n > 19_000
    truth = big_study.true_effect(PAPER_WINDOWS, PAPER_RADII).to_numpy()
    _assert_within_sampling_error(counts, n, truth)


def test_truth_matches_monte_carlo_in_hours(big_study):
    windows = [6, 12, 24, 30, 47, 48, 240, 1000]
    counts, n = _own_offspring_counts(
        big_study, windows, PAPER_RADII, NS_PER_DAY // 24, haversine_km
    )
    truth = big_study.true_effect(windows, PAPER_RADII, t_unit="hours").to_numpy()
    _assert_within_sampling_error(counts, n, truth)


def test_truth_matches_monte_carlo_with_the_mwa_distance(big_study):
    def mwa_km(lon1, lat1, lon2, lat2):
        return haversine_km(lon1, lat1, lon2, lat2) / EARTH_RADIUS_KM * 180 / math.pi * 111.111

    counts, n = _own_offspring_counts(big_study, [30], [3.0, 6.0], NS_PER_DAY, mwa_km)
    truth = big_study.true_effect([30], [3.0, 6.0], convention="mwa").to_numpy()
    _assert_within_sampling_error(counts, n, truth)


def test_spawned_draws_follow_the_kernels(big_study):
    # The drawn delays and distances themselves (all offspring, censored or not).
    o = big_study.offspring
    effect = big_study.effect
    n_parents = big_study.settings["n_treatment"]
    assert abs(len(o) / n_parents - effect.rate) < 4.5 * math.sqrt(effect.rate / n_parents)
    for q in (5.0, 20.0, 45.0, 89.0):
        p = effect.delay_cdf(q)
        assert abs((o["delay_days"] <= q).mean() - p) < 4.5 * math.sqrt(p * (1 - p) / len(o))
    for r in (2.0, 5.0, 10.0):
        p = effect.distance_cdf(r)
        assert abs((o["distance_km"] <= r).mean() - p) < 4.5 * math.sqrt(p * (1 - p) / len(o))
    assert (o["delay_days"] > 0).all() and (o["delay_days"] <= effect.delay_max_days).all()


# --- geometry -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    lon=st.floats(-180, 180),
    lat=st.floats(-89.9, 89.9),
    bearing=st.floats(0, 2 * math.pi),
    distance=st.floats(0, 2_000),
)
def test_destination_lies_at_the_drawn_distance(lon, lat, bearing, distance):
    lon2, lat2 = destination(np.array([lon]), np.array([lat]), np.array([bearing]),
                              np.array([distance]))
    assert -180 <= lon2[0] < 180 and -90 <= lat2[0] <= 90
    back = great_circle_km(np.array([lon]), np.array([lat]), lon2, lat2)[0]
    assert back == pytest.approx(distance, abs=1e-6)


# --- bad settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_treatment": -1},
        {"n_control": 1.5},
        {"n_dependent": 10},  # fewer than the events the treatments spawn
        {"start": "2020-01-01", "end": "2019-01-01"},
        {"start": "not a date"},
        {"dated_share": 1.5},
        {"effect": "big"},
        {"effect": -1.0},
    ],
)
def test_bad_settings_raise(kwargs):
    with pytest.raises(SettingsError):
        simulate_study(seed=0, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delay_kernel": "lognormal"},
        {"distance_kernel": "box"},
        {"delay_max_days": 0},
        {"distance_scale_km": float("nan")},
    ],
)
def test_bad_effect_raises(kwargs):
    with pytest.raises(SettingsError):
        PlantedEffect(**kwargs)


@pytest.mark.parametrize(
    ("windows", "radii", "kwargs"),
    [
        ([0, 10], [3.0], {}),
        ([10.5], [3.0], {}),
        ([10], [0.0], {}),
        ([10], ["far"], {}),
        ([], [3.0], {}),
        ([10], [3.0], {"t_unit": "weeks"}),
        ([10], [3.0], {"convention": "planar"}),
    ],
)
def test_bad_grid_raises(study, windows, radii, kwargs):
    with pytest.raises(SettingsError):
        study.true_effect(windows, radii, **kwargs)
