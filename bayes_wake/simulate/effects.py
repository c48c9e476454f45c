"""Planted effects: the offspring kernels of an anchor, in closed form, and the planting.

:class:`PlantedEffect` says how many extra dependent events each treatment spawns, how long
after it (the delay kernel) and how far from it (the distance kernel); it draws from the
kernels and gives their CDFs, from which :class:`bayes_wake.simulate.SimulatedStudy` computes
the truth exactly. :data:`NULL_EFFECT` plants nothing. :class:`Scenario` is a recovery
battery's planted effect (uniform delay and distance bands, five forms), :func:`plant` puts
it into a real event table. Both spawn their events with :func:`spawn_offspring`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd
from scipy import special

from bayes_wake.core.geo import destination, great_circle_km
from bayes_wake.core.windows import unit_ns
from bayes_wake.errors import SettingsError
from bayes_wake.options import check_choice

__all__ = ["NULL_EFFECT", "DelayKernel", "DistanceKernel", "PlantedEffect", "Offspring",
           "spawn_offspring", "FORMS", "Scenario", "plant"]

DelayKernel = Literal["gamma", "uniform"]
DistanceKernel = Literal["rayleigh", "halfnormal"]


@dataclass(frozen=True)
class PlantedEffect:
    """The planted treatment effect: extra dependent events spawned by each treatment.

    Each treatment spawns ``Poisson(rate)`` offspring. An offspring's delay after its parent
    is drawn from the delay kernel, its distance from the distance kernel, its bearing
    uniformly; delays and distances are independent.

    Parameters
    ----------
    rate
        Expected number of offspring per treatment (lambda), events. 0 plants no effect.
    delay_kernel
        ``"gamma"``: a gamma distribution truncated to (0, `delay_max_days`];
        ``"uniform"``: uniform on (0, `delay_max_days`].
    delay_shape
        Shape of the gamma delay kernel (1 is exponential; 2 peaks at one scale), unitless.
    delay_scale_days
        Scale of the gamma delay kernel, days.
    delay_max_days
        Longest delay, days.
    distance_kernel
        ``"rayleigh"``: the distance of an isotropic 2-D normal displacement (Rayleigh);
        ``"halfnormal"``: the absolute value of a normal.
    distance_scale_km
        Scale (sigma) of the distance kernel, km. For the Rayleigh kernel the median distance
        is 1.177 sigma; for the half-normal 0.674 sigma.
    """

    rate: float = 0.3
    delay_kernel: DelayKernel = "gamma"
    delay_shape: float = 2.0
    delay_scale_days: float = 15.0
    delay_max_days: float = 90.0
    distance_kernel: DistanceKernel = "rayleigh"
    distance_scale_km: float = 5.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise SettingsError(f"effect rate must be a finite number >= 0, got {self.rate!r}")
        check_choice("delay_kernel", self.delay_kernel, DelayKernel)
        check_choice("distance_kernel", self.distance_kernel, DistanceKernel)
        for name in ("delay_shape", "delay_scale_days", "delay_max_days", "distance_scale_km"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SettingsError(f"{name} must be a finite number > 0, got {value!r}")

    def delay_cdf(self, days: np.ndarray | float) -> np.ndarray:
        """P(delay <= `days`) of the delay kernel.

        Parameters
        ----------
        days
            Delays after the parent treatment, days.

        Returns
        -------
        numpy.ndarray
            Probabilities in [0, 1], the shape of `days`.
        """
        days = np.clip(np.asarray(days, dtype=float), 0.0, self.delay_max_days)
        if self.delay_kernel == "uniform":
            return days / self.delay_max_days
        # Truncated gamma: the regularised lower incomplete gamma, renormalised at the cap.
        whole = special.gammainc(self.delay_shape, self.delay_max_days / self.delay_scale_days)
        return special.gammainc(self.delay_shape, days / self.delay_scale_days) / whole

    def distance_cdf(self, km: np.ndarray | float) -> np.ndarray:
        """P(distance <= `km`) of the distance kernel.

        Parameters
        ----------
        km
            Great-circle distances from the parent treatment, km.

        Returns
        -------
        numpy.ndarray
            Probabilities in [0, 1], the shape of `km`.
        """
        km = np.clip(np.asarray(km, dtype=float), 0.0, None)
        sigma = self.distance_scale_km
        if self.distance_kernel == "rayleigh":
            return -np.expm1(-0.5 * (km / sigma) ** 2)
        return special.erf(km / (sigma * math.sqrt(2.0)))

    def sample_delays(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw delays from the delay kernel by inversion.

        Parameters
        ----------
        rng
            Random generator; one uniform per draw.
        size
            Number of draws.

        Returns
        -------
        numpy.ndarray
            Delays in (0, `delay_max_days`], days (0 only with probability 2**-53).
        """
        u = rng.random(size)
        if self.delay_kernel == "uniform":
            # 1 - u lies in (0, 1], so the delay lies in (0, max].
            return (1.0 - u) * self.delay_max_days
        whole = special.gammainc(self.delay_shape, self.delay_max_days / self.delay_scale_days)
        delays = self.delay_scale_days * special.gammaincinv(self.delay_shape, u * whole)
        # gammaincinv can overshoot the cap by a rounding error; the kernel's support ends there.
        return np.minimum(delays, self.delay_max_days)

    def sample_distances(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw distances from the distance kernel.

        Parameters
        ----------
        rng
            Random generator; one uniform (Rayleigh, by inversion) or one normal (half-normal)
            per draw.
        size
            Number of draws.

        Returns
        -------
        numpy.ndarray
            Distances >= 0, km.
        """
        sigma = self.distance_scale_km
        if self.distance_kernel == "rayleigh":
            return _rayleigh_km(rng, sigma, size)
        return np.abs(rng.normal(0.0, sigma, size))

    def to_dict(self) -> dict[str, float | str]:
        """The effect's parameters as a plain dict (for provenance and JSON)."""
        return asdict(self)


NULL_EFFECT = PlantedEffect(rate=0.0)
"""A planted effect of zero: a null study."""


def _as_effect(effect: PlantedEffect | float | None) -> PlantedEffect:
    """A `PlantedEffect` from what `simulate_study` accepts: an effect, a rate, or None."""
    if effect is None:
        return NULL_EFFECT
    if isinstance(effect, PlantedEffect):
        return effect
    if isinstance(effect, (int, float, np.integer, np.floating)) and not isinstance(effect, bool):
        return PlantedEffect(rate=float(effect))
    raise SettingsError(
        f"effect must be a PlantedEffect, a rate (number) or None, got {type(effect).__name__}"
    )


def _rayleigh_km(rng: np.random.Generator, scale_km: float, size: int) -> np.ndarray:
    """Distances of an isotropic 2-D normal displacement of scale `scale_km` (the Rayleigh
    distribution), km, drawn by inversion: one uniform per draw."""
    return scale_km * np.sqrt(-2.0 * np.log1p(-rng.random(size)))


class Offspring(NamedTuple):
    """Events spawned around parent events (:func:`spawn_offspring`), one entry each."""

    parent: np.ndarray
    """Index of the parent among the parents given, int."""
    delay_days: np.ndarray
    """Delay after the parent, days."""
    distance_km: np.ndarray
    """Distance from the parent, km as the convention measures it."""
    lon: np.ndarray
    """Longitude, degrees."""
    lat: np.ndarray
    """Latitude, degrees."""


def spawn_offspring(rng: np.random.Generator, kernels, lon: np.ndarray, lat: np.ndarray,
                    mean: np.ndarray, *, convention: str = "exact") -> Offspring:
    """Spawn Poisson(`mean`) events around each parent, at kernel-drawn delays and distances.

    The planting shared by the simulator (:func:`bayes_wake.simulate.simulate_study`) and the
    recovery batteries (:func:`plant`). The draws, in this order: the counts, the delays, the
    distances, the bearings (uniform).

    Parameters
    ----------
    rng
        Random generator.
    kernels
        The delay and distance kernels: a :class:`PlantedEffect` or a :class:`Scenario`
        (anything with ``sample_delays`` and ``sample_distances``).
    lon, lat
        The parents' places, degrees.
    mean
        Expected number of offspring of each parent, events.
    convention
        The distance convention in which the drawn distances hold (``exact`` or ``mwa``).

    Returns
    -------
    Offspring
        The spawned events, grouped by parent in the parents' order.
    """
    parent = np.repeat(np.arange(len(lon)), rng.poisson(mean))
    delay_days = kernels.sample_delays(rng, parent.size)
    distance_km = kernels.sample_distances(rng, parent.size)
    bearing = rng.uniform(0.0, 2.0 * np.pi, parent.size)
    lon, lat = destination(lon[parent], lat[parent], bearing, distance_km, convention)
    return Offspring(parent, delay_days, distance_km, lon, lat)


# -------------------------------------------------------------------------------------------
# the recovery batteries' planted effects, into a real event table
# -------------------------------------------------------------------------------------------

#: The forms of a :class:`Scenario`.
FORMS = ("additive", "proportional", "controls", "thinning", "null")
_DAY_NS = unit_ns("days")


@dataclass(frozen=True)
class Scenario:
    """One planted effect of a recovery battery (:mod:`bayes_wake.checks.recovery`).

    Its kernels are uniform bands: delays uniform on ``delay`` (days after the anchor),
    distances uniform on ``distance`` (km), bearings uniform. It offers the kernel methods of
    :class:`PlantedEffect` (``sample_delays``, ``sample_distances``, ``delay_cdf``,
    ``distance_cdf``), so :func:`spawn_offspring` plants both.

    Attributes
    ----------
    name
        Unique label.
    form
        One of :data:`FORMS`: ``additive`` (each treatment spawns Poisson(``size``) extra
        outcome events), ``proportional`` (Poisson(``size`` x its local baseline)),
        ``controls`` (each control spawns Poisson(``size``)), ``thinning`` (each real
        outcome event inside a treatment's profile removed with probability ``size``) or
        ``null`` (nothing planted).
    size
        Events per treatment (``additive``), multiple of the local baseline
        (``proportional``), events per control (``controls``) or the share of events removed
        (``thinning``, in [0, 1]).
    delay
        (first, last) delay after the anchor, days.
    distance
        (nearest, farthest) distance from the anchor, km.
    placebo
        Re-draw the treatment and control placements over the candidate sites for each
        replicate (needs ``sites`` in :func:`bayes_wake.checks.recovery.run_recovery`).
    data
        Which study the scenario uses, when a battery has several (e.g. ``vac``).
    """

    name: str
    form: str = "additive"
    size: float = 0.3
    delay: tuple[float, float] = (20.0, 60.0)
    distance: tuple[float, float] = (2.0, 9.0)
    placebo: bool = False
    data: str = "default"

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise SettingsError("a scenario needs a name that is not empty")
        if self.form is None:  # YAML reads a bare `null` as None
            object.__setattr__(self, "form", "null")
        if self.form not in FORMS:
            raise SettingsError(f"scenario {self.name!r}: form must be one of {FORMS}")
        if not (np.isfinite(self.size) and self.size >= 0):
            raise SettingsError(f"scenario {self.name!r}: size must be >= 0")
        if self.form == "thinning" and self.size > 1:
            raise SettingsError(f"scenario {self.name!r}: thinning removes a share <= 1")
        (d0, d1), (r0, r1) = self.delay, self.distance
        if not (1 <= d0 < d1 and 0 <= r0 < r1):
            raise SettingsError(f"scenario {self.name!r}: need 1 <= delay[0] < delay[1] days "
                                "and 0 <= distance[0] < distance[1] km")
        object.__setattr__(self, "delay", (float(d0), float(d1)))
        object.__setattr__(self, "distance", (float(r0), float(r1)))

    def delay_cdf(self, days) -> np.ndarray:
        """P(delay < `days`) of the uniform delay band, in [0, 1]."""
        d0, d1 = self.delay
        return np.clip((np.minimum(days, d1) - d0) / (d1 - d0), 0, 1)

    def distance_cdf(self, km) -> np.ndarray:
        """P(distance <= `km`) of the uniform distance band, in [0, 1]."""
        r0, r1 = self.distance
        return np.clip((km - r0) / (r1 - r0), 0, 1)

    def sample_delays(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Delays uniform on the ``delay`` band, days."""
        return rng.uniform(*self.delay, size)

    def sample_distances(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Distances uniform on the ``distance`` band, km."""
        return rng.uniform(*self.distance, size)

    def share(self, windows, radii) -> np.ndarray:
        """Share of a planted event's (delay, distance) falling inside each cell, under the
        counting rule ``1 <= floor(delay) <= window`` and ``distance <= radius`` (the delay
        band starts at 1 day or later)."""
        in_time = self.delay_cdf(np.asarray(windows, float) + 1)
        in_space = self.distance_cdf(np.asarray(radii, float))
        return in_time[:, None] * in_space[None, :]


def _days(times: pd.Series) -> np.ndarray:
    """Times as days since the epoch (float)."""
    return pd.to_datetime(times, utc=True).dt.as_unit("ns").astype("int64").to_numpy() / _DAY_NS


def _local_baseline(anchors: pd.DataFrame, outcomes: pd.DataFrame, scenario: Scenario,
                    convention: str) -> np.ndarray:
    """Real outcome events within the profile's radius and delay *before* each anchor."""
    t_a, t_o = _days(anchors["time"]), _days(outcomes["time"])
    out = np.zeros(len(anchors))
    for k in range(len(anchors)):
        before = (t_a[k] - t_o >= 0) & (t_a[k] - t_o <= scenario.delay[1])
        if before.any():
            d = great_circle_km(anchors["lon"].iloc[k], anchors["lat"].iloc[k],
                                outcomes["lon"].to_numpy()[before],
                                outcomes["lat"].to_numpy()[before], convention)
            out[k] = np.sum(d <= scenario.distance[1])
    return out


def plant(events: pd.DataFrame, scenario: Scenario, rng: np.random.Generator, windows,
          radii, *, convention: str = "mwa") -> tuple[pd.DataFrame, np.ndarray]:
    """Plant a scenario's effect into the outcome (``dependent``) events.

    Parameters
    ----------
    events
        The event table (:func:`bayes_wake.io.events.read_events`).
    scenario
        What to plant.
    rng
        Random generator.
    windows, radii
        The grid (days, km), for the truth.
    convention
        The wake counter's distance convention (``mwa``: 111.111 km per degree).

    Returns
    -------
    events : pandas.DataFrame
        The table with planted rows added (or real outcome rows removed).
    effects : numpy.ndarray
        The true effect on each treated wake (rows in the order of the table's treatment
        rows) per cell, shape (treated, windows, radii), events per wake.
    """
    share = scenario.share(windows, radii)
    n_treated = int((events["role"] == "treatment").sum())
    if scenario.form == "null" or scenario.size == 0:
        return events, np.zeros((n_treated,) + share.shape)
    if scenario.form == "thinning":
        return _thin(events, scenario, rng, windows, radii, convention)
    parents = events[events["role"] == ("control" if scenario.form == "controls"
                                        else "treatment")]
    mean = np.full(len(parents), scenario.size)
    if scenario.form == "proportional":
        mean = scenario.size * _local_baseline(parents, events[events["role"] == "dependent"],
                                               scenario, convention)
    spawned = spawn_offspring(rng, scenario, parents["lon"].to_numpy(),
                              parents["lat"].to_numpy(), mean, convention=convention)
    out = _with_planted(events, parents, spawned)
    if scenario.form == "controls":
        return out, np.broadcast_to(-scenario.size * share, (n_treated,) + share.shape).copy()
    return out, mean[:, None, None] * share[None]


def _with_planted(events: pd.DataFrame, parents: pd.DataFrame,
                  spawned: Offspring) -> pd.DataFrame:
    """The event table with the spawned events appended as ``dependent`` rows (ids from
    10**9 on, the other columns copied from the first row)."""
    start_ns = pd.to_datetime(parents["time"], utc=True).dt.as_unit("ns").astype("int64")
    times = start_ns.to_numpy()[spawned.parent] + (spawned.delay_days * _DAY_NS).astype(np.int64)
    planted = pd.DataFrame({"role": "dependent", "lat": spawned.lat, "lon": spawned.lon,
                            "time": pd.to_datetime(times, utc=True).as_unit("ns")})
    for column in events.columns.difference(planted.columns):
        planted[column] = events[column].iloc[0] if column != "event_id" else \
            np.arange(len(spawned.parent)) + 10**9
    out = pd.concat([events, planted[events.columns]], ignore_index=True)
    out.attrs = dict(events.attrs)
    return out


def _thin(events, scenario, rng, windows, radii, convention):
    """Remove real outcome events inside treatments' profiles; the truth is realised."""
    dep = np.flatnonzero((events["role"] == "dependent").to_numpy())
    treated = events[events["role"] == "treatment"]
    t_o, t_a = _days(events["time"].iloc[dep]), _days(treated["time"])
    lat_o, lon_o = events["lat"].to_numpy()[dep], events["lon"].to_numpy()[dep]
    inside = np.zeros(len(dep), bool)
    pairs = []
    for k in range(len(treated)):
        lag = t_o - t_a[k]
        near = np.flatnonzero((lag >= scenario.delay[0]) & (lag <= scenario.delay[1]))
        if not len(near):
            continue
        d = great_circle_km(treated["lon"].iloc[k], treated["lat"].iloc[k], lon_o[near],
                            lat_o[near], convention)
        ring = (d >= scenario.distance[0]) & (d <= scenario.distance[1])
        hit = near[ring]
        inside[hit] = True
        pairs.append((k, hit, lag[hit], d[ring]))
    removed = inside & (rng.random(len(dep)) < scenario.size)
    effects = _removed_per_cell(pairs, removed, len(treated), windows, radii)
    out = events.drop(index=events.index[dep[removed]]).reset_index(drop=True)
    out.attrs = dict(events.attrs)
    return out, effects


def _removed_per_cell(pairs, removed, n_treated, windows, radii) -> np.ndarray:
    """Minus the removed events in each treated wake per cell, shape (treated, windows,
    radii): `pairs` holds (treatment, outcome rows, lags, distances) inside each profile."""
    effects = np.zeros((n_treated, len(windows), len(radii)))
    for k, hit, lag, d in pairs:
        gone = removed[hit]
        for i, w in enumerate(windows):
            for j, r in enumerate(radii):
                effects[k, i, j] -= np.sum(gone & (np.floor(lag) >= 1)
                                           & (np.floor(lag) <= w) & (d <= r))
    return effects
