"""The wake counter against brute-force oracles, with property tests on the edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from oracle import haversine_km, java_distance_km, walk_counts

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.wakes import count_wakes, load_cube, save_cube

UNIT_S = {"days": 86_400, "hours": 3_600}


def _events(seconds, lat, lon, roles, covariate=None):
    frame = pd.DataFrame({
        "event_id": np.arange(1, len(roles) + 1),
        "role": roles,
        "time": pd.Timestamp("2018-01-01", tz="UTC")
        + pd.to_timedelta(np.asarray(seconds, dtype=np.int64), unit="s"),
        "lon": lon,
        "lat": lat,
        "x": np.arange(len(roles), dtype=float) if covariate is None else covariate,
    })
    frame.attrs["covariates"] = ["x"]
    return frame


@st.composite
def small_studies(draw):
    n = draw(st.integers(6, 30))
    days = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    hours = draw(st.lists(st.sampled_from([0, 0, 0, 5, 23]), min_size=n, max_size=n))
    seconds = [d * 86_400 + h * 3_600 for d, h in zip(days, hours, strict=True)]
    # a 0.1-degree box (about 11 km) on a 0.001-degree lattice: many pairs, exact duplicates
    lat = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    lon = draw(st.lists(st.integers(0, 100), min_size=n, max_size=n))
    roles = draw(st.lists(st.sampled_from(["treatment", "control", "dependent", "dependent"]),
                          min_size=n, max_size=n))
    roles[0], roles[1] = "treatment", "control"
    perm = draw(st.permutations(range(n)))
    pick = lambda xs: [xs[i] for i in perm]  # noqa: E731  shuffle so anchors are anywhere
    return (pick(seconds), [v / 1000 + 14.0 for v in pick(lat)],
            [v / 1000 - 3.0 for v in pick(lon)], pick(roles))


def _sorted_frame(seconds, lat, lon, roles):
    order = np.argsort(np.asarray(seconds), kind="stable")
    return ([seconds[i] for i in order], [lat[i] for i in order], [lon[i] for i in order],
            [roles[i] for i in order])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study=small_studies(), unit=st.sampled_from(["days", "hours"]))
def test_mwa_counts_equal_the_literal_java_walk(study, unit):
    seconds, lat, lon, roles = study
    windows, radii = [2, 3, 5], [1.0, 2.5, 8.0]
    if unit == "hours":
        windows = [2, 7, 30]
    cube = count_wakes(_events(seconds, lat, lon, roles), windows, radii, t_unit=unit)
    s_sec, s_lat, s_lon, s_role = _sorted_frame(seconds, lat, lon, roles)
    oracle = walk_counts(s_sec, s_lat, s_lon, s_role, windows, radii, UNIT_S[unit])
    for event in cube["event"].to_numpy():
        w = int(event) - 1
        for T in windows:
            for S in radii:
                rec = oracle[(w, T, S)]
                cell = cube.sel(event=event, window=T, radius=S)
                assert bool(cell["complete"]) == rec["complete"]
                if not rec["complete"]:
                    continue  # R stops counting; the cube still counts but marks it
                got = {
                    "dep_pre": int(cell["dependent"].sel(period="pre")),
                    "dep_post": int(cell["dependent"].sel(period="post")),
                    "so_pre": int(cell["same_type"].sel(period="pre")),
                    "so_post": int(cell["same_type"].sel(period="post")),
                    "mo_pre": int(cell["other_type"].sel(period="pre")),
                    "mo_post": int(cell["other_type"].sel(period="post")),
                    "trend": float(cell["trend"]),
                }
                want = {k: rec[k] for k in got}
                assert got == want, (event, T, S)


@settings(max_examples=40, deadline=None)
@given(study=small_studies())
def test_exact_counts_equal_all_pairs(study):
    seconds, lat, lon, roles = study
    windows, radii = [2, 5], [1.5, 6.0]
    cube = count_wakes(_events(seconds, lat, lon, roles), windows, radii, convention="exact")
    s_sec, s_lat, s_lon, s_role = (np.asarray(v) for v in _sorted_frame(seconds, lat, lon, roles))
    for event in cube["event"].to_numpy():
        w = int(event) - 1
        idx = np.arange(len(s_sec))
        dist = haversine_km(s_lat[w], s_lon[w], s_lat, s_lon)
        dd_pre = (s_sec[w] - s_sec) // 86_400
        dd_post = (s_sec - s_sec[w]) // 86_400
        for T in windows:
            for S in radii:
                near = (dist <= S) & (idx != w)
                pre = near & (idx < w) & (dd_pre >= 0) & (dd_pre <= T)
                post = near & (idx > w) & (dd_post >= 1) & (dd_post <= T)
                dep = s_role == "dependent"
                cell = cube.sel(event=event, window=T, radius=S)
                assert int(cell["dependent"].sel(period="pre")) == (pre & dep).sum()
                assert int(cell["dependent"].sel(period="post")) == (post & dep).sum()
                own = s_role == s_role[w]
                assert int(cell["same_type"].sel(period="post")) == (post & own).sum()
                half = (T + 1) // 2
                recent = (pre & dep & (dd_pre <= half - 1)).sum()
                older = (pre & dep & (dd_pre >= T + 1 - half)).sum()
                assert float(cell["trend"]) == recent - older


def test_shuffling_rows_with_distinct_times_changes_nothing():
    rng = np.random.default_rng(3)
    n = 60
    seconds = rng.choice(np.arange(0, 40 * 86_400, 3_600), size=n, replace=False)
    lat = 14 + rng.uniform(0, 0.1, n)
    lon = -3 + rng.uniform(0, 0.1, n)
    roles = rng.choice(["treatment", "control", "dependent"], size=n)
    events = _events(seconds, lat, lon, roles)
    shuffled = events.sample(frac=1, random_state=1)
    shuffled.attrs = dict(events.attrs)
    a = count_wakes(events, [3, 6], [2.0, 5.0])
    b = count_wakes(shuffled, [3, 6], [2.0, 5.0])
    a = a.swap_dims(event="source_id").sortby("source_id")
    b = b.swap_dims(event="source_id").sortby("source_id")
    for name in ("dependent", "same_type", "other_type", "trend", "complete"):
        xr.testing.assert_equal(a[name].reset_coords(drop=True), b[name].reset_coords(drop=True))


def test_same_time_events_count_as_pre_only_when_earlier_in_the_file():
    # a treatment and a dependent event at the same time and place, plus sentinels
    seconds = [0, 50 * 86_400, 50 * 86_400, 50 * 86_400, 100 * 86_400]
    roles = ["dependent", "dependent", "treatment", "control", "dependent"]
    cube = count_wakes(_events(seconds, [14.0] * 5, [-3.0] * 5, roles), [2], [1.0])
    pre = cube["dependent"].sel(period="pre", window=2, radius=1.0)
    post = cube["dependent"].sel(period="post", window=2, radius=1.0)
    assert pre.to_numpy().tolist() == [1, 1]  # the dependent listed before both anchors
    assert post.to_numpy().tolist() == [0, 0]  # same day never counts as post
    # the control comes after the treatment in the file: the treatment is its pre overlap
    other_pre = cube["other_type"].sel(period="pre", window=2, radius=1.0).to_numpy()
    assert other_pre.tolist() == [0, 1]


def test_day_boundary_uses_whole_units_elapsed():
    # after an anchor at day 10: 1 d 23 h is dd = 1, 2 d and 2 d 23:59:59 are dd = 2, 3 d is 3
    day = 86_400
    seconds = [0, 10 * day, 11 * day + 23 * 3_600, 12 * day, 13 * day - 1, 13 * day, 40 * day,
               0]
    roles = ["dependent", "treatment", "dependent", "dependent", "dependent", "dependent",
             "dependent", "control"]
    cube = count_wakes(_events(seconds, [14.0] * 8, [-3.0] * 8, roles), [2, 3], [1.0])
    post = cube["dependent"].sel(period="post", radius=1.0).sel(event=3)
    assert post.to_numpy().tolist() == [3, 4]


def test_cube_round_trips_through_netcdf(tmp_path):
    rng = np.random.default_rng(0)
    n = 80
    events = _events(rng.integers(0, 60 * 86_400, n), 14 + rng.uniform(0, .2, n),
                     -3 + rng.uniform(0, .2, n),
                     rng.choice(["treatment", "control", "dependent"], size=n))
    cube = count_wakes(events, [2, 4], [3.0, 6.0])
    path = save_cube(cube, tmp_path / "cube.nc")
    back = load_cube(path)
    xr.testing.assert_identical(cube, back)
    assert back["time"].dtype == np.dtype("datetime64[ns]")
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_settings_and_data_fail_with_clear_errors():
    events = _events([0, 86_400, 2 * 86_400], [14.0] * 3, [-3.0] * 3,
                     ["treatment", "control", "dependent"])
    with pytest.raises(SettingsError, match="empty"):
        count_wakes(events, [], [1.0])
    with pytest.raises(SettingsError, match="at least 2"):
        count_wakes(events, [1, 2], [1.0])
    with pytest.raises(SettingsError, match="convention"):
        count_wakes(events, [2], [1.0], convention="haversine")
    no_control = events.assign(role=["treatment", "dependent", "dependent"])
    with pytest.raises(EventDataError, match="no control"):
        count_wakes(no_control, [2], [1.0])


def test_events_exactly_on_a_radius_or_a_window_are_inside_the_wake():
    """R counts distance <= radius and days <= window. The radii here are the oracle's own
    distances from the treatment to two dependent events, and one event lies exactly one
    window before, so a strict inequality anywhere changes a count."""
    # the last two events, far away, make the record cover every wake (R's "complete")
    lat = [14.0, 14.01, 14.0, 14.03, 14.0, 15.0, 16.0, 16.0]
    lon = [-3.0, -3.0, -2.98, -3.0, -3.0, -3.0, -3.0, -3.0]
    days = [10, 13, 8, 12, 5, 30, 0, 40]  # anchor on day 10; event 4 is 5 days (= window 5) before
    roles = ["treatment", "dependent", "dependent", "dependent", "dependent", "control",
             "dependent", "dependent"]
    near = java_distance_km(lat[0], lon[0], lat[1], lon[1])
    far = java_distance_km(lat[0], lon[0], lat[2], lon[2])
    assert near < far
    radii = [near, far]
    seconds = [d * 86_400 for d in days]
    cube = count_wakes(_events(seconds, lat, lon, roles), [3, 5], radii)
    s_sec, s_lat, s_lon, s_role = _sorted_frame(seconds, lat, lon, roles)
    oracle = walk_counts(s_sec, s_lat, s_lon, s_role, [3, 5], radii, 86_400)
    anchor = int(np.argsort(seconds, kind="stable").tolist().index(0))  # the cube's event
    assert cube["event"].to_numpy().tolist() == [anchor + 1, 7]  # is the time-order position
    for T in (3, 5):
        for S in radii:
            assert oracle[(anchor, T, S)]["complete"] and bool(
                cube.sel(event=anchor + 1, window=T, radius=S)["complete"])
            cell = cube.sel(event=anchor + 1, window=T, radius=S)["dependent"]
            assert [int(cell.sel(period=p)) for p in ("pre", "post")] == [
                oracle[(anchor, T, S)]["dep_pre"], oracle[(anchor, T, S)]["dep_post"]], (T, S)
    # by hand: the event on the inner radius 3 days after, the one on the outer radius
    # 2 days before; at window 5 also the one 5 days before (0 km)
    assert int(cube.sel(event=anchor + 1, window=3, radius=near, period="post")["dependent"]) == 1
    assert int(cube.sel(event=anchor + 1, window=3, radius=far, period="pre")["dependent"]) == 1
    assert int(cube.sel(event=anchor + 1, window=5, radius=near, period="pre")["dependent"]) == 1


def _span_events(times):
    """Anchors and outcomes at one place (0.001 degrees apart) at the given times."""
    roles = ["treatment", "control", "dependent", "dependent", "dependent", "control"]
    frame = pd.DataFrame({
        "event_id": np.arange(1, len(times) + 1), "role": roles[:len(times)],
        "time": pd.to_datetime(times, utc=True), "lon": 0.001 * np.arange(len(times)),
        "lat": np.zeros(len(times)), "x": np.zeros(len(times))})
    frame.attrs["covariates"] = ["x"]
    return frame


def test_windows_longer_than_the_record_count_every_event_exactly():
    """50,000 and 100,000 days in a 1901-2100 record: (t_max + 1) x ns per day plus a time
    passed int64, the candidate search wrapped around and every wake counted 0 events."""
    times = ["1901-10-02", "2050-01-01", "1950-01-01", "1994-12-24", "2100-01-01", "2000-06-01"]
    events = _span_events(times)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        cube = count_wakes(events, [50_000, 100_000], [5.0], convention="exact")
    alone = count_wakes(events, [50_000], [5.0], convention="exact")
    xr.testing.assert_equal(cube["dependent"].sel(window=[50_000]), alone["dependent"])
    # 100,000 days is longer than the record: every other event is in each wake
    whole = cube.sel(window=100_000, radius=5.0)
    assert (whole["dependent"].sum("period") == 3).all()
    t = pd.to_datetime(events["time"])
    for event in cube["event"].to_numpy():
        anchor = cube.sel(event=event)
        at = pd.Timestamp(anchor["time"].item(), tz="UTC")
        days = (t - at).dt.days.to_numpy()
        dep = (events["role"] == "dependent").to_numpy()
        pre = dep & (days <= 0) & (days >= -50_000)
        post = dep & (days >= 1) & (days <= 50_000)
        got = anchor["dependent"].sel(window=50_000, radius=5.0)
        assert int(got.sel(period="pre")) == pre.sum()
        assert int(got.sel(period="post")) == post.sum()


def test_a_record_longer_than_292_years_counts_and_flags_exactly():
    """Differences of times in ns pass int64 beyond 292 years (1700-2200)."""
    times = ["1700-01-01", "2199-12-25", "2199-12-28", "1700-01-03", "2200-01-01",
             "2000-01-01"]
    cube = count_wakes(_span_events(times), [2, 8], [5.0], convention="exact")
    late = cube.sel(event=cube["event"][cube["time"] > np.datetime64("2199-01-01")][0])
    # the control of 2199-12-25: outcomes 3 and 7 days later, in the 8-day wake only
    assert int(late["dependent"].sel(window=8, radius=5.0, period="post")) == 2
    assert int(late["dependent"].sel(window=2, radius=5.0, period="post")) == 0
    assert late["complete"].sel(window=8).item() is False  # the record ends 7 days later
    assert late["complete"].sel(window=2).item() is True
    first = cube.sel(event=1)  # the treatment of 1700-01-01 starts the record
    assert not first["complete"].any()
    assert int(first["dependent"].sel(window=2, radius=5.0, period="post")) == 1
    middle = cube.sel(event=cube["event"][cube["time"] == np.datetime64("2000-01-01")][0])
    assert middle["complete"].all()


@pytest.mark.parametrize("unit, longest", [("days", 106_752), ("hours", 2_562_048),
                                           ("seconds", 9_223_372_037)])
def test_a_window_longer_than_a_time_can_represent_is_refused(unit, longest):
    from bayes_wake.core.windows import expand_windows

    events = _span_events(["2000-01-01", "2000-01-02", "2000-01-03"])
    with pytest.raises(SettingsError, match="longer than a time can represent"):
        count_wakes(events, [2, longest], [5.0], t_unit=unit)
    with pytest.raises(SettingsError, match="--t-window: .*longer than a time can"):
        expand_windows(2, longest, longest - 2, name="--t-window", temporal=True, t_unit=unit)
    assert expand_windows(2, longest - 1, longest - 3, temporal=True, t_unit=unit)[-1] == \
        longest - 1
    with pytest.raises(SettingsError, match="longer than a time can represent"):
        expand_windows(2, 1e30, 1e30 - 2, temporal=True)  # never cast to int64 garbage
