"""Where the simulated events sit: the study box, scattering around centres, the gazetteer
that geocodes events and projects to places, and the covariates at a point.

Like the real data, events and projects are geocoded to places (town centroids and villages),
so many share exact coordinates. Geometry follows the package's ``exact`` convention:
great-circle distances on a sphere with the mean Earth radius (:mod:`bayes_wake.core.geo`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import spatial

from bayes_wake.core.geo import (
    EARTH_RADIUS_KM,
    destination,
    great_circle_km,
    unit_vectors,
)
from bayes_wake.simulate.effects import _rayleigh_km
from bayes_wake.simulate.mali import (
    _BOX_MARGIN_DEG,
    _DENSITY_LOG_SD,
    _HOTSPOTS,
    _N_VILLAGES_NEAR_HOTSPOTS,
    _N_VILLAGES_NEAR_TOWNS,
    _OTHER_TOWNS,
    _PROJECT_TOWNS,
    _RURAL_DENSITY,
    _TOWN_SPREAD_KM,
    _VILLAGE_SCATTER_KM,
    BASES,
    MALI_BOUNDS,
    NIGER_RIVER,
)

__all__ = ["COVARIATES"]

COVARIATES = ("dist_base_km", "dist_river_km", "pop_density")
"""The covariate columns of a simulated event table."""


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
    """Whether each point lies in MALI_BOUNDS shrunk by _BOX_MARGIN_DEG on every side."""
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
        distance = _rayleigh_km(rng, scale_km, todo.size)
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
    distance = _rayleigh_km(rng, scatter_km, int(away.sum()))
    bearing = rng.uniform(0.0, 2.0 * np.pi, int(away.sum()))
    moved = destination(lon[away], lat[away], bearing, distance)
    lon[away], lat[away] = places.snap(*moved) if snap else moved
    return lon, lat


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
