"""A simulated study and its truth: the planted effect on any wake grid, in closed form.

Because the spawning kernels of :class:`~bayes_wake.simulate.PlantedEffect` are known, the
planted effect on every (window, radius) cell of a wake grid is known exactly:
`SimulatedStudy.true_effect` gives the expected number of extra dependent events in the post
period of a treated wake, the quantity that the OLS difference-in-differences coefficient of
matched wake analysis estimates. This is the truth against which the estimators are checked
(recovery, bias, interval coverage). It counts a treatment's own offspring only: with projects
geocoded to shared places, a treated wake also catches the offspring of its neighbours (a
SUTVA violation, as in the paper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayes_wake.core.geo import km_per_radian
from bayes_wake.core.windows import expand_windows, units_per_day
from bayes_wake.errors import SettingsError
from bayes_wake.options import (
    PAPER_RADII,
    PAPER_WINDOWS,
    Convention,
    TimeUnit,
    check_choice,
)
from bayes_wake.simulate.effects import PlantedEffect

__all__ = ["SimulatedStudy"]

_PAPER_WINDOWS = expand_windows(*PAPER_WINDOWS, temporal=True)
_PAPER_RADII = expand_windows(*PAPER_RADII)


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


def _true_effect(
    effect: PlantedEffect,
    windows: Sequence[int] | np.ndarray,
    radii: Sequence[float] | np.ndarray,
    *,
    t_unit: str = "days",
    convention: str = "exact",
    dated_share: float = 0.0,
) -> xr.DataArray:
    """The planted truth per cell (:meth:`SimulatedStudy.true_effect`)."""
    k = units_per_day(t_unit)
    check_choice("convention", convention, Convention)
    window, radius = _checked_grid(windows, radii)
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


def _checked_grid(windows, radii) -> tuple[np.ndarray, np.ndarray]:
    """The windows as int64 (whole numbers >= 1) and the radii as floats (> 0 km), both
    one-dimensional and not empty; or a :class:`SettingsError`."""
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
    return window.astype(np.int64), radius
