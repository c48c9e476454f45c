"""Simulated Mali-like studies with a planted treatment effect.

`simulate_study` draws a study shaped like Sauter (2022): peacekeeping Quick Impact Projects
(treatments) and ordinary aid projects (controls) clustered around towns of central and
northern Mali, QIPs nearer to the MINUSMA bases than aid projects, and outcome events
(dependent) from a clustered, slowly growing baseline process with hotspots in Mopti, Ségou,
Timbuktu, Gao and Ménaka, 2017-2020. On top of the baseline, each treatment spawns a Poisson
number of extra dependent events after it and near it. The spawned events carry the role
``dependent`` like all others, so no analysis can tell them apart; only the simulator's
`SimulatedStudy.offspring` table knows their parents.

Because the spawning kernels are known in closed form, the planted effect on every
(window, radius) cell of a wake grid is known exactly: `SimulatedStudy.true_effect` gives the
expected number of extra dependent events in the post period of a treated wake, the quantity
that the OLS difference-in-differences coefficient of matched wake analysis estimates. This
is the truth against which the estimators are checked (recovery, bias, interval coverage).

Like the real data, events and projects are geocoded to places (town centroids and villages),
so many share exact coordinates. Treatments at the same town therefore sit in each other's
wakes: a treated wake also catches the offspring of its neighbours (a SUTVA violation, as
in the paper). The truth counts a treatment's own offspring only; see
`SimulatedStudy.true_effect`.

Geometry follows the package's ``exact`` convention: great-circle distances on a sphere with
the mean Earth radius (6371.0088 km). Offspring are placed with the direct formula on the same
sphere, so their great-circle distance from the parent is the drawn distance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import spatial, special

from bayes_wake.core.geo import (
    EARTH_RADIUS_KM,
    destination,
    great_circle_km,
    km_per_radian,
    unit_vectors,
)
from bayes_wake.core.windows import expand_windows, units_per_day
from bayes_wake.errors import SettingsError
from bayes_wake.options import (
    PAPER_RADII,
    PAPER_WINDOWS,
    Convention,
    TimeUnit,
    check_choice,
)

__all__ = [
    "BASES",
    "COVARIATES",
    "MALI_BOUNDS",
    "NIGER_RIVER",
    "NULL_EFFECT",
    "PlantedEffect",
    "SimulatedStudy",
    "simulate_study",
]


MALI_BOUNDS = (-12.0, 4.5, 10.0, 25.0)
"""Rough bounding box of Mali as (lon_min, lon_max, lat_min, lat_max), WGS84 degrees."""

# Baseline events and projects are drawn this far inside MALI_BOUNDS, so that offspring,
# which are never moved or rejected (that would bias the planted truth), stay inside the
# box too: at the default 5 km Rayleigh scale, leaving it needs a ~55 km jump (p ~ 1e-26).
_BOX_MARGIN_DEG = 0.5

BASES: dict[str, tuple[float, float]] = {
    # (lon, lat) as Geo-PKO v2.3 codes the six bases named by Sauter (2022); see
    # ../shared/data/geopko_minusma. "Mopti" is the Mopti/Sévaré camp by Sévaré airport.
    "Bamako": (-8.0, 12.65),
    "Gao": (-0.04472, 16.27167),
    "Kidal": (1.40778, 18.44111),
    "Menaka": (2.4022, 15.9182),
    "Mopti": (-4.09344, 14.52742),
    "Timbuktu": (-3.00742, 16.77348),
}
"""The six major MINUSMA bases of the paper, name -> (lon, lat) in WGS84 degrees."""

NIGER_RIVER: tuple[tuple[float, float], ...] = (
    # A coarse Niger: Bamako, Ségou, the inner delta past Mopti and Lake Débo, the Timbuktu
    # bend, Gao, Ansongo, to the Niger border. Good enough for a covariate with a shape.
    (-8.00, 12.63),
    (-7.56, 12.86),
    (-6.27, 13.45),
    (-5.36, 13.96),
    (-5.00, 14.15),
    (-4.20, 14.50),
    (-4.20, 15.28),
    (-4.00, 15.93),
    (-3.40, 16.27),
    (-3.05, 16.67),
    (-1.93, 16.88),
    (-0.35, 16.95),
    (-0.04, 16.27),
    (0.50, 15.66),
    (0.85, 14.95),
)
"""Vertices (lon, lat) of the simulated river polyline, WGS84 degrees, joined by great circles."""

# Towns of the paper's study area (regions Ségou, Mopti, Tombouctou, Gao, Kidal, Ménaka):
# name, lon, lat, population in thousands (rounded census-era figures), QIP weight, aid weight.
# QIPs go where the mission is (the base towns and its smaller camps); aid follows people.
# The weights were tuned so that the mean distance to the nearest base comes out near the
# paper's Table 2 (aid projects 95 km, QIPs 59 km).
_PROJECT_TOWNS: tuple[tuple[str, float, float, float, float, float], ...] = (
    ("Ségou", -6.27, 13.45, 130.0, 0.5, 5.0),
    ("San", -4.90, 13.30, 66.0, 0.5, 5.0),
    ("Niono", -5.99, 14.25, 35.0, 0.5, 4.0),
    ("Macina", -5.36, 13.96, 12.0, 0.5, 2.0),
    ("Mopti", -4.19, 14.49, 120.0, 7.0, 10.0),
    ("Djenné", -4.55, 13.91, 33.0, 1.0, 3.0),
    ("Bandiagara", -3.61, 14.35, 17.0, 2.0, 4.0),
    ("Bankass", -3.52, 14.08, 12.0, 1.0, 3.0),
    ("Koro", -3.08, 14.07, 15.0, 1.0, 4.0),
    ("Douentza", -2.95, 15.00, 25.0, 3.0, 4.0),
    ("Tenenkou", -4.92, 14.46, 12.0, 0.5, 2.0),
    ("Youwarou", -4.26, 15.37, 8.0, 0.5, 1.0),
    ("Timbuktu", -3.00, 16.77, 55.0, 7.0, 6.0),
    ("Goundam", -3.67, 16.42, 15.0, 2.0, 2.0),
    ("Niafunké", -4.00, 15.93, 10.0, 1.0, 2.0),
    ("Diré", -3.40, 16.27, 22.0, 1.0, 2.0),
    ("Gourma-Rharous", -1.93, 16.88, 8.0, 1.0, 1.5),
    ("Gao", -0.04, 16.27, 87.0, 7.0, 7.0),
    ("Ansongo", 0.50, 15.66, 30.0, 2.0, 3.0),
    ("Bourem", -0.35, 16.95, 27.0, 1.5, 2.0),
    ("Ménaka", 2.40, 15.92, 20.0, 3.75, 2.0),
    ("Kidal", 1.41, 18.44, 26.0, 4.5, 2.0),
    ("Tessalit", 1.01, 20.20, 6.0, 1.0, 0.5),
    ("Aguelhok", 0.86, 19.46, 6.0, 1.0, 0.5),
)

# Large towns outside the study area: they hold no projects but shape population density.
_OTHER_TOWNS: tuple[tuple[str, float, float, float], ...] = (
    ("Bamako", -8.00, 12.64, 2500.0),
    ("Sikasso", -5.67, 11.32, 225.0),
    ("Koutiala", -5.46, 12.39, 140.0),
    ("Kayes", -11.43, 14.45, 127.0),
)

# Violence hotspots: lon, lat, weight. Weights follow the 2017-2020 ACLED "violence against
# civilians" counts by cercle (Koro, Douentza, Bandiagara and Bankass lead; the Gao-Ansongo-
# Ménaka belt next; a little everywhere else).
_HOTSPOTS: tuple[tuple[float, float, float], ...] = (
    (-3.08, 14.07, 370.0),  # Koro
    (-2.95, 15.00, 276.0),  # Douentza
    (-3.61, 14.35, 202.0),  # Bandiagara
    (-3.52, 14.08, 184.0),  # Bankass
    (0.50, 15.66, 176.0),  # Ansongo
    (-0.04, 16.27, 150.0),  # Gao
    (-4.19, 14.49, 100.0),  # Mopti
    (-5.99, 14.25, 94.0),  # Niono
    (2.40, 15.92, 90.0),  # Ménaka
    (-4.92, 14.46, 86.0),  # Tenenkou
    (-4.55, 13.91, 72.0),  # Djenné
    (-1.93, 16.88, 72.0),  # Gourma-Rharous
    (-3.00, 16.77, 52.0),  # Timbuktu
    (-5.36, 13.96, 52.0),  # Macina
    (1.41, 18.44, 36.0),  # Kidal
    (-4.00, 15.93, 28.0),  # Niafunké
    (-8.00, 12.64, 26.0),  # Bamako
    (-7.45, 13.55, 26.0),  # Banamba (Koulikoro)
    (3.03, 15.42, 24.0),  # Anderamboukane
    (-4.26, 15.37, 24.0),  # Youwarou
    (-3.67, 16.42, 22.0),  # Goundam
    (-0.35, 16.95, 22.0),  # Bourem
    (-5.67, 11.32, 16.0),  # Sikasso
)

# Events and projects are geocoded to places, as ACLED and project databases geocode them:
# the 2017-2020 ACLED "violence against civilians" events of Mali sit on about 290 distinct
# points, and Gao, Ménaka and Timbuktu alone hold a tenth of them. A gazetteer of named towns
# plus villages drawn around the hotspots and the project towns stands in for the real one.
# This is what makes wake counts lumpy (a wake on a town centroid catches every event
# reported "in" the town, its neighbour at 5 km none), as in the paper, where the 3 km and
# 6 km estimates coincide.
_N_VILLAGES_NEAR_HOTSPOTS = 250
_N_VILLAGES_NEAR_TOWNS = 150
_VILLAGE_SCATTER_KM = 35.0

# Projects: the share geocoded to their town's centroid, and the Rayleigh scale (km) of the
# others around the town before they are snapped to the nearest place. QIPs sit in and next
# to the town or camp, aid projects reach out into the villages.
_TREATMENT_CENTROID_SHARE = 0.5
_TREATMENT_SCATTER_KM = 15.0
_CONTROL_CENTROID_SHARE = 0.4
_CONTROL_SCATTER_KM = 30.0

# Baseline events: the share reported at the nearest named town ("near Koro", ACLED's
# geo_precision 2) and the share at the nearest place of any kind (precision 1); the rest
# keep their exact point.
_EVENT_TOWN_SHARE = 0.35
_EVENT_PLACE_SHARE = 0.55

# Baseline violence: episodes (a raid, a string of reprisals) fall near a hotspot and emit a
# few events close in space and time. This clustering is what makes wake counts
# overdispersed, as in the real data.
_HOTSPOT_SCATTER_KM = 25.0  # Rayleigh scale of an episode around its hotspot
_EPISODE_SCATTER_KM = 4.0  # Rayleigh scale of an event around its episode
_EPISODE_MEAN_SIZE = 2.5  # events per episode (1 + Poisson)
_EPISODE_DELAY_DAYS = 6.0  # mean delay (exponential) of an event after its episode starts
_TREND_END_TO_START = 3.0  # intensity at the end / at the start (ACLED VAC: 260 -> 876)

# Population density, persons per km^2: a rural floor plus a Gaussian bump per town holding
# its population, times log-normal noise.
_RURAL_DENSITY = 4.0
_TOWN_SPREAD_KM = 15.0
_DENSITY_LOG_SD = 0.5

_SECONDS_PER_DAY = 86_400

COVARIATES = ("dist_base_km", "dist_river_km", "pop_density")
"""The covariate columns of a simulated event table."""

DelayKernel = Literal["gamma", "uniform"]
DistanceKernel = Literal["rayleigh", "halfnormal"]

_PAPER_WINDOWS = expand_windows(*PAPER_WINDOWS, temporal=True)
_PAPER_RADII = expand_windows(*PAPER_RADII)


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
            Random generator.
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
            Random generator.
        size
            Number of draws.

        Returns
        -------
        numpy.ndarray
            Distances >= 0, km.
        """
        sigma = self.distance_scale_km
        if self.distance_kernel == "rayleigh":
            return sigma * np.sqrt(-2.0 * np.log1p(-rng.random(size)))
        return np.abs(rng.normal(0.0, sigma, size))

    def to_dict(self) -> dict[str, float | str]:
        """The effect's parameters as a plain dict (for provenance and JSON)."""
        return asdict(self)


NULL_EFFECT = PlantedEffect(rate=0.0)
"""A planted effect of zero: a null study."""


@dataclass(frozen=True, eq=False)
class SimulatedStudy:
    """A simulated study: the event table, the planted truth, and how it was made.

    Attributes
    ----------
    events
        The event table (the contract of `bayes_wake.io.events.read_events`): columns
        ``event_id`` (int64, 1..n), ``role`` (``treatment``, ``control``, ``dependent``),
        ``time`` (datetime64[ns, UTC]), ``lon``, ``lat`` (WGS84 degrees) and the covariates
        ``dist_base_km`` (km to the nearest MINUSMA base), ``dist_river_km`` (km to the river)
        and ``pop_density`` (persons per km^2), all float64. Rows are in input order:
        treatments, controls, dependents, each block sorted by time. ``attrs["source"]`` and
        ``attrs["covariates"]`` are set.
    offspring
        One row per event spawned by a treatment, including those censored because they fell
        after the record's end: ``event_id`` (Int64, the row's id in `events`, missing when
        censored), ``parent_id`` (int64, the treatment's ``event_id``), ``delay_days`` and
        ``distance_km`` (the drawn delay, days, and great-circle distance, km), ``dated``
        (bool, the time was reported as a date only) and ``observed`` (bool, inside the
        record). Real data have no such table; it exists to check the truth.
    effect
        The planted effect.
    settings
        Every setting used, for provenance (JSON-serialisable).
    """

    events: pd.DataFrame
    offspring: pd.DataFrame
    effect: PlantedEffect
    settings: dict = field(repr=False)

    @property
    def truth(self) -> xr.DataArray:
        """The true effect on the paper's grid (windows 10..60 days by 10, radii 3..15 km by 3)."""
        return self.true_effect(_PAPER_WINDOWS, _PAPER_RADII)

    def true_effect(
        self,
        windows: Sequence[int] | np.ndarray,
        radii: Sequence[float] | np.ndarray,
        *,
        t_unit: TimeUnit = "days",
        convention: Convention = "exact",
    ) -> xr.DataArray:
        """The planted additive treatment effect on a (window, radius) grid.

        The expected number of extra dependent events in the post period of a treated wake:
        ``rate * P(1 <= floor(delay / unit) <= window) * P(distance <= radius)``, with the
        post period of the wake counter (whole units after the treatment, the day of the
        treatment itself excluded). This is the quantity that the OLS difference-in-differences
        coefficient of matched wake analysis estimates, for wakes whose post period lies
        inside the record (spawned events after the record's end are censored), and up to
        spill-over: a wake also catches the offspring of other treatments nearby, in its post
        and in its pre period, and so do control wakes near treatments. This truth counts a
        treatment's own offspring only. With projects geocoded to shared town centroids the
        spill-over is not small (at 60 days and 15 km a treated wake holds about two thirds
        as many offspring of other treatments as of its own), but it falls on pre and post
        periods alike and the pre count of the regression absorbs most of it.

        Parameters
        ----------
        windows
            Temporal windows, whole `t_unit` (integers >= 1).
        radii
            Spatial windows, km (> 0).
        t_unit
            The unit of `windows`: ``"days"``, ``"hours"``, ``"minutes"`` or ``"seconds"``.
            Events reported as a date only (the study's ``dated_share``) sit at midnight, which
            the sub-day truth takes into account exactly.
        convention
            ``"exact"``: distances on the sphere of radius 6371.0088 km (as drawn).
            ``"mwa"``: R's mwa measures 111.111 km per degree of central angle, so its
            distances are 0.08% shorter and each radius reaches a little further (the
            rounding of coordinates to 7 significant digits is ignored: under a metre).

        Returns
        -------
        xarray.DataArray
            ``true_effect`` with dims ``window`` x ``radius``, events per treated wake.
        """
        return _true_effect(
            self.effect,
            windows,
            radii,
            t_unit=t_unit,
            convention=convention,
            dated_share=float(self.settings["dated_share"]),
        )


def simulate_study(
    seed: int = 0,
    *,
    n_treatment: int = 400,
    n_control: int = 1500,
    n_dependent: int = 1100,
    start: str | pd.Timestamp = "2017-01-01",
    end: str | pd.Timestamp = "2020-12-31",
    effect: PlantedEffect | float | None = PlantedEffect(),
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
    if not (isinstance(dated_share, (int, float, np.number)) and 0.0 <= dated_share <= 1.0):
        raise SettingsError(f"dated_share must lie in [0, 1], got {dated_share!r}")
    dated_share = float(dated_share)
    if project_sites not in ("places", "scattered"):
        raise SettingsError(f"project_sites must be 'places' or 'scattered', got "
                            f"{project_sites!r}")
    scattered = project_sites == "scattered"
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
    n_baseline = n_dependent - n_observed
    if n_baseline < 0:
        raise SettingsError(
            f"the treatments spawned {n_observed} dependent events inside the record, more "
            f"than n_dependent={n_dependent}; raise n_dependent or lower the effect rate"
        )
    baseline = _baseline_violence(rng_baseline, places, n_baseline, first_s, last_s,
                                  dated_share)
    # Hide the offspring among the baseline: shuffle, then sort stably by time, so neither
    # the position in the table nor the order among same-time events gives them away.
    dependent = [np.concatenate([b, c[observed]])
                 for b, c in zip(baseline, (spawn["lon"], spawn["lat"], spawn["time_s"]))]
    shuffle = rng_order.permutation(dependent[2].size)
    order = shuffle[np.argsort(dependent[2][shuffle], kind="stable")]
    dependent = [v[order] for v in dependent]

    events = _event_table(treatment, control, dependent, rng_covariate, seed)
    # Row of each observed offspring in the dependent block: invert the shuffle-and-sort.
    child_row = np.full(observed.size, -1, dtype=np.int64)
    position = np.empty(order.size, dtype=np.int64)
    position[order] = np.arange(order.size)
    child_row[observed] = n_treatment + n_control + position[n_baseline:]
    child_event_id = pd.array(child_row + 1, dtype="Int64")
    child_event_id[~observed] = pd.NA
    offspring = pd.DataFrame(
        {
            "event_id": child_event_id,
            "parent_id": events["event_id"].to_numpy()[spawn["parent"]],
            "delay_days": spawn["delay_days"],
            "distance_km": spawn["distance_km"],
            "dated": spawn["dated"],
            "observed": observed,
        }
    )
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
        "earth_radius_km": EARTH_RADIUS_KM,
        "bounds": list(MALI_BOUNDS),
        "bases": {name: list(xy) for name, xy in BASES.items()},
        "river": [list(xy) for xy in NIGER_RIVER],
    }
    return SimulatedStudy(events=events, offspring=offspring, effect=effect, settings=settings)


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
    n_children = rng.poisson(effect.rate, t_lon.size)
    parent = np.repeat(np.arange(t_lon.size), n_children)
    delay_days = effect.sample_delays(rng, parent.size)
    distance_km = effect.sample_distances(rng, parent.size)
    bearing = rng.uniform(0.0, 2.0 * np.pi, parent.size)
    dated = rng.random(parent.size) < dated_share
    lon, lat = destination(t_lon[parent], t_lat[parent], bearing, distance_km)
    # Whole seconds, rounded down: floor(floor(x) / n) = floor(x / n) for whole n, so the
    # wake counter's floor((t_k - t_w) / unit) is unchanged for every unit from seconds to
    # days. A date-only report drops the time of day; the parent sits at midnight, so the
    # offset in whole days is unchanged too.
    offset_s = np.floor(delay_days * _SECONDS_PER_DAY).astype(np.int64)
    offset_s[dated] = offset_s[dated] // _SECONDS_PER_DAY * _SECONDS_PER_DAY
    return {"parent": parent, "delay_days": delay_days, "distance_km": distance_km,
            "dated": dated, "lon": lon, "lat": lat, "time_s": t_s[parent] + offset_s}


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


def _as_effect(effect: PlantedEffect | float | None) -> PlantedEffect:
    if effect is None:
        return NULL_EFFECT
    if isinstance(effect, PlantedEffect):
        return effect
    if isinstance(effect, (int, float, np.integer, np.floating)) and not isinstance(effect, bool):
        return PlantedEffect(rate=float(effect))
    raise SettingsError(
        f"effect must be a PlantedEffect, a rate (number) or None, got {type(effect).__name__}"
    )


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


def _distance_to_polyline_km(
    lon: np.ndarray, lat: np.ndarray, vertices: Sequence[tuple[float, float]]
) -> np.ndarray:
    """Great-circle distance from points to a polyline of great-circle arcs, km.

    For each arc A-B: if the foot of the perpendicular from P onto the great circle through A
    and B falls on the arc, the distance is the cross-track distance; otherwise it is the
    distance to the nearer end. Minimum over arcs. Arcs shorter than half the globe assumed.
    """
    vertices = np.asarray(vertices, dtype=float)
    p = unit_vectors(np.asarray(lon, float), np.asarray(lat, float))[:, None, :]  # (n, 1, 3)
    a = unit_vectors(vertices[:-1, 0], vertices[:-1, 1])[None]  # (1, m, 3)
    b = unit_vectors(vertices[1:, 0], vertices[1:, 1])[None]
    normal = np.cross(a, b)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    sin_cross = (p * normal).sum(axis=-1)  # (n, m): sine of the cross-track angle
    foot = p - sin_cross[..., None] * normal
    # The foot is on the arc when it lies on the A side of B and on the B side of A, both
    # measured along the circle's normal.
    on_arc = ((np.cross(a, foot) * normal).sum(axis=-1) >= 0) & (
        (np.cross(foot, b) * normal).sum(axis=-1) >= 0
    )
    cross_km = EARTH_RADIUS_KM * np.abs(np.arcsin(np.clip(sin_cross, -1.0, 1.0)))
    lon_col, lat_col = np.asarray(lon, float)[:, None], np.asarray(lat, float)[:, None]
    end_km = np.minimum(
        great_circle_km(lon_col, lat_col, vertices[None, :-1, 0], vertices[None, :-1, 1]),
        great_circle_km(lon_col, lat_col, vertices[None, 1:, 0], vertices[None, 1:, 1]),
    )
    return np.where(on_arc, cross_km, end_km).min(axis=1)


def _in_box(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lon_min, lon_max, lat_min, lat_max = MALI_BOUNDS
    m = _BOX_MARGIN_DEG
    return (lon >= lon_min + m) & (lon <= lon_max - m) & (lat >= lat_min + m) & (lat <= lat_max - m)


def _scatter_around(
    rng: np.random.Generator,
    centres: np.ndarray,
    weights: np.ndarray,
    scale_km: float,
    size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Points around weighted centres, at Rayleigh distance `scale_km`, inside the box.

    Points that fall outside the (inner) box are drawn again, so the result stays in Mali.
    """
    lon = np.empty(size)
    lat = np.empty(size)
    todo = np.arange(size)
    probabilities = weights / weights.sum()
    while todo.size:
        k = rng.choice(len(centres), size=todo.size, p=probabilities)
        distance = scale_km * np.sqrt(-2.0 * np.log1p(-rng.random(todo.size)))
        bearing = rng.uniform(0.0, 2.0 * np.pi, todo.size)
        lon[todo], lat[todo] = destination(centres[k, 0], centres[k, 1], bearing, distance)
        todo = todo[~_in_box(lon[todo], lat[todo])]
    return lon, lat


@dataclass(frozen=True, eq=False)
class _Gazetteer:
    """Places to geocode to: the named towns first, then villages. Degrees."""

    lon: np.ndarray
    lat: np.ndarray
    n_named: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> _Gazetteer:
        named = np.unique(
            np.array(
                [t[1:3] for t in _PROJECT_TOWNS]
                + [h[:2] for h in _HOTSPOTS]
                + [t[1:3] for t in _OTHER_TOWNS]
            ),
            axis=0,
        )
        named = named[_in_box(named[:, 0], named[:, 1])]
        hotspot_lon, hotspot_lat = _scatter_around(
            rng,
            np.array([h[:2] for h in _HOTSPOTS]),
            np.array([h[2] for h in _HOTSPOTS]),
            _VILLAGE_SCATTER_KM,
            _N_VILLAGES_NEAR_HOTSPOTS,
        )
        town_lon, town_lat = _scatter_around(
            rng,
            np.array([t[1:3] for t in _PROJECT_TOWNS]),
            np.sqrt([t[3] for t in _PROJECT_TOWNS]),
            _VILLAGE_SCATTER_KM,
            _N_VILLAGES_NEAR_TOWNS,
        )
        return cls(
            lon=np.concatenate([named[:, 0], hotspot_lon, town_lon]),
            lat=np.concatenate([named[:, 1], hotspot_lat, town_lat]),
            n_named=len(named),
        )

    def snap(
        self, lon: np.ndarray, lat: np.ndarray, *, named_only: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """The nearest place (great-circle) to each point."""
        n = self.n_named if named_only else self.lon.size
        # Nearest in chord length on the unit sphere is nearest in great-circle distance.
        tree = spatial.cKDTree(unit_vectors(self.lon[:n], self.lat[:n]))
        _, index = tree.query(unit_vectors(np.asarray(lon, float), np.asarray(lat, float)))
        return self.lon[:n][index], self.lat[:n][index]


def _place_projects(
    rng: np.random.Generator,
    places: _Gazetteer,
    towns: np.ndarray,
    weights: np.ndarray,
    centroid_share: float,
    scatter_km: float,
    size: int,
    snap: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Projects at weighted towns: some at the centroid, the rest at a place nearby (or, with
    ``snap=False``, at their exact scattered point)."""
    k = rng.choice(len(towns), size=size, p=weights / weights.sum())
    lon, lat = towns[k, 0].copy(), towns[k, 1].copy()
    away = rng.random(size) >= centroid_share
    distance = scatter_km * np.sqrt(-2.0 * np.log1p(-rng.random(int(away.sum()))))
    bearing = rng.uniform(0.0, 2.0 * np.pi, int(away.sum()))
    moved = destination(lon[away], lat[away], bearing, distance)
    lon[away], lat[away] = places.snap(*moved) if snap else moved
    return lon, lat


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
            _EPISODE_SCATTER_KM * np.sqrt(-2.0 * np.log1p(-rng.random(member.size))),
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


def _covariates(
    rng: np.random.Generator, lon: np.ndarray, lat: np.ndarray
) -> dict[str, np.ndarray]:
    """The covariates of every row: distances to base and river, km; population density, /km^2."""
    base_xy = np.array(list(BASES.values()))
    dist_base = great_circle_km(
        lon[:, None], lat[:, None], base_xy[None, :, 0], base_xy[None, :, 1]
    ).min(axis=1)
    dist_river = _distance_to_polyline_km(lon, lat, NIGER_RIVER)
    towns = [(t[1], t[2], t[3]) for t in _PROJECT_TOWNS] + [t[1:] for t in _OTHER_TOWNS]
    town_xy = np.array([t[:2] for t in towns])
    people = 1_000.0 * np.array([t[2] for t in towns])
    d = great_circle_km(lon[:, None], lat[:, None], town_xy[None, :, 0], town_xy[None, :, 1])
    bump = people / (2.0 * np.pi * _TOWN_SPREAD_KM**2) * np.exp(-0.5 * (d / _TOWN_SPREAD_KM) ** 2)
    noise = np.exp(rng.normal(0.0, _DENSITY_LOG_SD, lon.size))
    density = (_RURAL_DENSITY + bump.sum(axis=1)) * noise
    return {
        "dist_base_km": dist_base.astype(np.float64),
        "dist_river_km": dist_river.astype(np.float64),
        "pop_density": density.astype(np.float64),
    }


def _true_effect(
    effect: PlantedEffect,
    windows: Sequence[int] | np.ndarray,
    radii: Sequence[float] | np.ndarray,
    *,
    t_unit: str = "days",
    convention: str = "exact",
    dated_share: float = 0.0,
) -> xr.DataArray:
    k = units_per_day(t_unit)
    check_choice("convention", convention, Convention)
    window = np.atleast_1d(np.asarray(windows))
    try:
        radius = np.atleast_1d(np.asarray(radii, dtype=float))
    except (TypeError, ValueError):
        raise SettingsError(f"radii must be numbers > 0 km, got {radii!r}") from None
    if window.ndim != 1 or radius.ndim != 1:
        raise SettingsError("windows and radii must be one-dimensional")
    if window.size == 0 or radius.size == 0:
        raise SettingsError("windows and radii must not be empty")
    as_float = window.astype(float) if window.dtype.kind in "iuf" else np.array([np.nan])
    whole = np.isfinite(as_float) & (as_float == np.round(as_float)) & (as_float >= 1)
    if not whole.all():
        raise SettingsError(f"windows must be whole numbers >= 1, got {window.tolist()}")
    if not np.all(np.isfinite(radius)) or np.any(radius <= 0):
        raise SettingsError(f"radii must be numbers > 0 km, got {radius.tolist()}")
    window = window.astype(np.int64)

    # An event with a time of day is counted when 1 <= floor(delay * k) <= T, that is
    # 1/k <= delay < (T + 1)/k (delays are continuous). A date-only event sits at the
    # midnight floor(delay) days after its parent, k * floor(delay) units, so it is counted
    # when 1 <= floor(delay) <= floor(T / k).
    timed = effect.delay_cdf((window + 1) / k) - effect.delay_cdf(1.0 / k)
    whole_days = window // k
    dated = np.where(
        whole_days >= 1, effect.delay_cdf(whole_days + 1.0) - effect.delay_cdf(1.0), 0.0
    )
    p_time = (1.0 - dated_share) * timed + dated_share * dated
    reach = radius * km_per_radian("exact") / km_per_radian(convention)
    p_space = effect.distance_cdf(reach)
    values = effect.rate * p_time[:, None] * p_space[None, :]
    return xr.DataArray(
        values,
        dims=("window", "radius"),
        coords={
            "window": ("window", window, {"units": t_unit}),
            "radius": ("radius", radius, {"units": "km"}),
        },
        name="true_effect",
        attrs={
            "long_name": "planted additive treatment effect",
            "units": "dependent events per treated wake",
            "description": (
                "expected extra dependent events in the post period of a treated wake "
                "(rate x P(1 <= floor(delay) <= window) x P(distance <= radius))"
            ),
            "t_unit": t_unit,
            "convention": convention,
            "effect": repr(effect),
        },
    )
