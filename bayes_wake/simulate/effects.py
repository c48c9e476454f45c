"""The planted treatment effect: the offspring kernels of a treatment, in closed form.

:class:`PlantedEffect` says how many extra dependent events each treatment spawns, how long
after it (the delay kernel) and how far from it (the distance kernel); it draws from the
kernels and gives their CDFs, from which :class:`bayes_wake.simulate.SimulatedStudy` computes
the truth exactly. :data:`NULL_EFFECT` plants nothing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import special

from bayes_wake.errors import SettingsError
from bayes_wake.options import check_choice

__all__ = ["NULL_EFFECT", "DelayKernel", "DistanceKernel", "PlantedEffect"]

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
