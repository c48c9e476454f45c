"""Drawing a simulated Mali-like study: `simulate_study`.

`simulate_study` draws a study shaped like Sauter (2022): peacekeeping Quick Impact Projects
(treatments) and ordinary aid projects (controls) clustered around towns of central and
northern Mali, QIPs nearer to the MINUSMA bases than aid projects, and outcome events
(dependent) from a clustered, slowly growing baseline process with hotspots in Mopti, Ségou,
Timbuktu, Gao and Ménaka, 2017-2020. On top of the baseline, each treatment spawns a Poisson
number of extra dependent events after it and near it. The spawned events carry the role
``dependent`` like all others, so no analysis can tell them apart; only the simulator's
`SimulatedStudy.offspring` table knows their parents.

Offspring are placed with the direct formula on the sphere of the ``exact`` convention, so
their great-circle distance from the parent is the drawn distance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayes_wake.core.geo import EARTH_RADIUS_KM, destination
from bayes_wake.errors import SettingsError
from bayes_wake.simulate.effects import (
    PlantedEffect,
    _as_effect,
    _rayleigh_km,
    spawn_offspring,
)
from bayes_wake.simulate.mali import (
    _CONTROL_CENTROID_SHARE,
    _CONTROL_SCATTER_KM,
    _EPISODE_DELAY_DAYS,
    _EPISODE_MEAN_SIZE,
    _EPISODE_SCATTER_KM,
    _EVENT_PLACE_SHARE,
    _EVENT_TOWN_SHARE,
    _HOTSPOT_SCATTER_KM,
    _HOTSPOTS,
    _PROJECT_TOWNS,
    _TREATMENT_CENTROID_SHARE,
    _TREATMENT_SCATTER_KM,
    _TREND_END_TO_START,
    BASES,
    MALI_BOUNDS,
    NIGER_RIVER,
)
from bayes_wake.simulate.places import (
    COVARIATES,
    _covariates,
    _Gazetteer,
    _in_box,
    _place_projects,
    _scatter_around,
)
from bayes_wake.simulate.study import SimulatedStudy

__all__ = ["simulate_study"]

_SECONDS_PER_DAY = 86_400


def simulate_study(
    seed: int = 0,
    *,
    n_treatment: int = 400,
    n_control: int = 1500,
    n_dependent: int = 1100,
    start: str | pd.Timestamp = "2017-01-01",
    end: str | pd.Timestamp = "2020-12-31",
    effect: PlantedEffect | float | None = PlantedEffect(),  # noqa: B008 (frozen)
    dated_share: float = 0.75,
    project_sites: str = "places",
) -> SimulatedStudy:
    """Simulate a Mali-like matched wake study with a known, planted treatment effect.

    Parameters
    ----------
    seed
        Seed of `numpy.random.default_rng`; the same seed gives the same study. The projects,
        the baseline violence and the spawned events come from separate streams of the seed,
        so changing `effect` leaves the projects where they were.
    n_treatment
        Number of treatment events (QIPs), placed at their start dates (midnight UTC).
    n_control
        Number of control events (aid projects), placed at their start dates (midnight UTC).
    n_dependent
        Number of dependent events (attacks) in the table: the baseline events plus the
        events spawned by treatments inside the record. Must exceed the number spawned.
    start, end
        First and last day of the record (inclusive), UTC; a time of day is ignored.
    effect
        The planted effect: a `PlantedEffect`, a number (the rate, with the default
        kernels), or ``None``/0 for a null study.
    dated_share
        Share of dependent events whose time is reported as a date only (midnight UTC), as in
        ACLED; the others carry a time of day to the second. In [0, 1].
    project_sites
        ``places`` (default, as real project data): projects are geocoded to town centroids
        and villages, so several treatments share a point and each catches the others'
        spawned events (a SUTVA violation both estimators inherit). ``scattered``: projects
        keep their exact scattered points, the design in which the planted truth is exactly
        what a wake DiD estimates; recovery tests use it.

    Returns
    -------
    SimulatedStudy
        The event table, the offspring table, the effect and the settings. Its
        `SimulatedStudy.true_effect` gives the truth on any grid.

    Raises
    ------
    SettingsError
        Bad counts, dates or effect parameters, or more spawned events than `n_dependent`.

    Examples
    --------
    >>> study = simulate_study(seed=1)
    >>> study.events["role"].value_counts()["treatment"]
    np.int64(400)
    >>> round(study.truth.sel(window=60, radius=15.0).item(), 3)
    0.275
    """
    effect = _as_effect(effect)
    seed, n_treatment, n_control, n_dependent = _check_counts(
        seed=seed, n_treatment=n_treatment, n_control=n_control, n_dependent=n_dependent)
    dated_share, scattered = _check_options(dated_share, project_sites)
    first_day, end_exclusive = _record_span(start, end)

    rng_places, rng_treatment, rng_control, rng_baseline, rng_spawn, rng_covariate, rng_order = (
        np.random.default_rng(seed).spawn(7)
    )
    first_s = first_day.value // 1_000_000_000
    last_s = end_exclusive.value // 1_000_000_000
    places = _Gazetteer.draw(rng_places)
    span = (first_s, last_s)
    treatment = _projects(rng_treatment, places, 4, _TREATMENT_CENTROID_SHARE,
                          _TREATMENT_SCATTER_KM, n_treatment, span, scattered)
    control = _projects(rng_control, places, 5, _CONTROL_CENTROID_SHARE, _CONTROL_SCATTER_KM,
                        n_control, span, scattered)
    spawn = _offspring(rng_spawn, effect, treatment, dated_share)
    observed = spawn["time_s"] < last_s
    n_observed = int(observed.sum())
    n_baseline = _baseline_count(n_dependent, n_observed)
    baseline = _baseline_violence(rng_baseline, places, n_baseline, first_s, last_s,
                                  dated_share)
    dependent, order = _hide_offspring(rng_order, baseline, spawn, observed)
    events = _event_table(treatment, control, dependent, rng_covariate, seed)
    offspring = _offspring_table(spawn, observed, order, events["event_id"].to_numpy(),
                                 n_before=n_treatment + n_control)
    settings = {
        "simulator": "bayes_wake.simulate.simulate_study",
        "seed": seed,
        "n_treatment": n_treatment,
        "n_control": n_control,
        "n_dependent": n_dependent,
        "n_baseline": n_baseline,
        "n_spawned": int(observed.size),
        "n_spawned_observed": n_observed,
        "start": first_day.isoformat(),
        "end": (end_exclusive - pd.Timedelta(days=1)).isoformat(),
        "effect": effect.to_dict(),
        "dated_share": dated_share,
        "project_sites": project_sites,
        **_geography(),
    }
    return SimulatedStudy(events=events, offspring=offspring, effect=effect, settings=settings)


def _check_options(dated_share, project_sites: str) -> tuple[float, bool]:
    """`dated_share` as a float in [0, 1], and whether the project sites are scattered; or a
    :class:`SettingsError`."""
    if not (isinstance(dated_share, (int, float, np.number)) and 0.0 <= dated_share <= 1.0):
        raise SettingsError(f"dated_share must lie in [0, 1], got {dated_share!r}")
    if project_sites not in ("places", "scattered"):
        raise SettingsError(f"project_sites must be 'places' or 'scattered', got "
                            f"{project_sites!r}")
    return float(dated_share), project_sites == "scattered"


def _baseline_count(n_dependent: int, n_observed: int) -> int:
    """The baseline events the table needs beside the `n_observed` offspring inside the
    record; a :class:`SettingsError` when the offspring alone are too many."""
    n_baseline = n_dependent - n_observed
    if n_baseline < 0:
        raise SettingsError(
            f"the treatments spawned {n_observed} dependent events inside the record, more "
            f"than n_dependent={n_dependent}; raise n_dependent or lower the effect rate"
        )
    return n_baseline


def _geography() -> dict:
    """The simulated Mali's sphere, box, bases and river, for the study's settings."""
    return {
        "earth_radius_km": EARTH_RADIUS_KM,
        "bounds": list(MALI_BOUNDS),
        "bases": {name: list(xy) for name, xy in BASES.items()},
        "river": [list(xy) for xy in NIGER_RIVER],
    }


def _check_counts(**counts) -> tuple[int, ...]:
    """The counts as ints, or a :class:`SettingsError` naming the first bad one."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise SettingsError(f"{name} must be an integer >= 0, got {value!r}")
    return tuple(int(v) for v in counts.values())


def _projects(rng, places, weight_column: int, centroid_share: float, scatter_km: float,
              n: int, span: tuple[int, int], scattered: bool):
    """Sites and start times (whole days, seconds since the epoch, sorted) of ``n`` projects
    of one role: ``weight_column`` of :data:`_PROJECT_TOWNS` weights the towns."""
    first_s, last_s = span
    lon, lat = _place_projects(
        rng, places, np.array([t[1:3] for t in _PROJECT_TOWNS]),
        np.array([t[weight_column] for t in _PROJECT_TOWNS]),
        0.0 if scattered else centroid_share, scatter_km, n, snap=not scattered)
    day = np.sort(rng.integers(0, (last_s - first_s) // _SECONDS_PER_DAY, n))
    return lon, lat, first_s + _SECONDS_PER_DAY * day


def _offspring(rng, effect: PlantedEffect, treatment, dated_share: float) -> dict:
    """The events each treatment spawns: parent (index), delay (days), distance (km),
    whether dated only, place and time (whole seconds)."""
    t_lon, t_lat, t_s = treatment
    spawned = spawn_offspring(rng, effect, t_lon, t_lat, np.full(t_lon.size, effect.rate))
    parent, delay_days = spawned.parent, spawned.delay_days
    dated = rng.random(parent.size) < dated_share
    # Whole seconds, rounded down: floor(floor(x) / n) = floor(x / n) for whole n, so the
    # wake counter's floor((t_k - t_w) / unit) is unchanged for every unit from seconds to
    # days. A date-only report drops the time of day; the parent sits at midnight, so the
    # offset in whole days is unchanged too.
    offset_s = np.floor(delay_days * _SECONDS_PER_DAY).astype(np.int64)
    offset_s[dated] = offset_s[dated] // _SECONDS_PER_DAY * _SECONDS_PER_DAY
    return {"parent": parent, "delay_days": delay_days, "distance_km": spawned.distance_km,
            "dated": dated, "lon": spawned.lon, "lat": spawned.lat,
            "time_s": t_s[parent] + offset_s}


def _hide_offspring(rng, baseline, spawn: dict, observed: np.ndarray):
    """The dependent block (lon, lat, seconds): the baseline events and the observed
    offspring, shuffled, then sorted stably by time, so neither the position in the table nor
    the order among same-time events gives the offspring away; and the order applied."""
    dependent = [np.concatenate([b, c[observed]])
                 for b, c in zip(baseline, (spawn["lon"], spawn["lat"], spawn["time_s"]))]
    shuffle = rng.permutation(dependent[2].size)
    order = shuffle[np.argsort(dependent[2][shuffle], kind="stable")]
    return [v[order] for v in dependent], order


def _offspring_table(spawn: dict, observed: np.ndarray, order: np.ndarray,
                     event_id: np.ndarray, n_before: int) -> pd.DataFrame:
    """One row per spawned event (the `SimulatedStudy.offspring` table); `order` is that of
    `_hide_offspring`, `n_before` the number of rows before the dependent block."""
    # Row of each observed offspring in the table: invert the shuffle-and-sort.
    n_baseline = order.size - int(observed.sum())
    child_row = np.full(observed.size, -1, dtype=np.int64)
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    child_row[observed] = n_before + position[n_baseline:]
    child_event_id = pd.array(child_row + 1, dtype="Int64")
    child_event_id[~observed] = pd.NA
    return pd.DataFrame(
        {
            "event_id": child_event_id,
            "parent_id": event_id[spawn["parent"]],
            "delay_days": spawn["delay_days"],
            "distance_km": spawn["distance_km"],
            "dated": spawn["dated"],
            "observed": observed,
        }
    )


def _event_table(treatment, control, dependent, rng_covariate, seed: int) -> pd.DataFrame:
    """The event table: treatments, controls, dependent events (each (lon, lat, seconds)),
    with the covariates at every event."""
    blocks = (treatment, control, dependent)
    role = np.repeat(np.array(["treatment", "control", "dependent"], dtype=object),
                     [b[0].size for b in blocks])
    lon, lat, seconds = (np.concatenate([b[k] for b in blocks]) for k in range(3))
    events = pd.DataFrame(
        {
            "event_id": np.arange(1, role.size + 1, dtype=np.int64),
            "role": pd.array(role, dtype="str"),
            "time": pd.to_datetime(seconds.astype(np.int64), unit="s",
                                   utc=True).as_unit("ns"),
            "lon": lon.astype(np.float64),
            "lat": lat.astype(np.float64),
        }
    )
    for name, values in _covariates(rng_covariate, lon, lat).items():
        events[name] = values
    events.attrs["source"] = f"simulated (seed={seed})"
    events.attrs["covariates"] = list(COVARIATES)
    return events


def _record_span(
    start: str | pd.Timestamp, end: str | pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First day (midnight UTC) and the midnight after the last day, nanosecond unit."""
    try:
        first, last = (pd.Timestamp(x) for x in (start, end))
    except (ValueError, TypeError) as err:
        raise SettingsError(f"start and end must be dates: {err}") from None
    first, last = (
        (t.tz_localize("UTC") if t.tz is None else t.tz_convert("UTC")).floor("D").as_unit("ns")
        for t in (first, last)
    )
    if last < first:
        raise SettingsError(f"end ({last.date()}) is before start ({first.date()})")
    return first, last + pd.Timedelta(days=1)


def _baseline_violence(
    rng: np.random.Generator,
    places: _Gazetteer,
    n: int,
    first_s: int,
    last_s: int,
    dated_share: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline outcome process: `n` events from clustered episodes, in whole seconds.

    Episodes start at times whose intensity grows linearly over the record (violence rose
    through 2017-2020) near a hotspot; each emits 1 + Poisson(mean size - 1) events at an
    exponential delay and a Rayleigh distance, then geocoded: to the nearest named town, to
    the nearest place, or left where they are. Events outside the record or the box are
    dropped and episodes are drawn until there are `n` events, kept in the order drawn.
    """
    hotspots = np.array([h[:2] for h in _HOTSPOTS])
    weights = np.array([h[2] for h in _HOTSPOTS])
    span_s = last_s - first_s
    g = _TREND_END_TO_START
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    have = 0
    while have < n:
        n_episodes = max(16, int(1.3 * (n - have) / _EPISODE_MEAN_SIZE))
        # Inverse CDF of a linear ramp from 1 to g over [0, 1].
        u = rng.random(n_episodes)
        fraction = (np.sqrt(1.0 + (g * g - 1.0) * u) - 1.0) / (g - 1.0) if g != 1 else u
        episode_s = first_s + fraction * span_s
        episode_lon, episode_lat = _scatter_around(
            rng, hotspots, weights, _HOTSPOT_SCATTER_KM, n_episodes
        )
        size = 1 + rng.poisson(_EPISODE_MEAN_SIZE - 1.0, n_episodes)
        member = np.repeat(np.arange(n_episodes), size)
        t = episode_s[member] + rng.exponential(_EPISODE_DELAY_DAYS * _SECONDS_PER_DAY, member.size)
        lon, lat = destination(
            episode_lon[member],
            episode_lat[member],
            rng.uniform(0.0, 2.0 * np.pi, member.size),
            _rayleigh_km(rng, _EPISODE_SCATTER_KM, member.size),
        )
        geocode = rng.random(member.size)
        to_town = geocode < _EVENT_TOWN_SHARE
        to_place = ~to_town & (geocode < _EVENT_TOWN_SHARE + _EVENT_PLACE_SHARE)
        lon[to_town], lat[to_town] = places.snap(lon[to_town], lat[to_town], named_only=True)
        lon[to_place], lat[to_place] = places.snap(lon[to_place], lat[to_place])
        seconds = np.floor(t).astype(np.int64)
        dated = rng.random(member.size) < dated_share
        seconds[dated] = (seconds[dated] - first_s) // _SECONDS_PER_DAY * _SECONDS_PER_DAY + first_s
        keep = (seconds < last_s) & _in_box(lon, lat)
        parts.append((lon[keep], lat[keep], seconds[keep]))
        have += int(keep.sum())
    lon, lat, seconds = (np.concatenate(x)[:n] for x in zip(*parts, strict=True)) if parts else (
        np.empty(0), np.empty(0), np.empty(0, np.int64)
    )
    return lon, lat, seconds

