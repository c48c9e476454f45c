"""Geometry on the sphere: the distance constants of the two counting conventions and the
great-circle helpers built on them, defined once (NumPy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["EARTH_RADIUS_KM", "KM_PER_DEGREE_MWA", "km_per_radian", "destination",
           "great_circle_km", "central_angle_deg", "unit_vectors"]

#: IUGG mean Earth radius (km): the sphere of the ``exact`` convention, of Conley kernels and
#: of distances to covariate layers.
EARTH_RADIUS_KM = 6371.0088
#: R's mwa turns degrees of central angle into km with this factor (a known quirk).
KM_PER_DEGREE_MWA = 111.111


def km_per_radian(convention: str = "exact") -> float:
    """Kilometres per radian of central angle: R's ``111.111 km`` per degree under ``mwa``,
    the mean Earth radius under ``exact``."""
    return KM_PER_DEGREE_MWA * 180 / np.pi if convention == "mwa" else EARTH_RADIUS_KM


def destination(lon, lat, bearing, distance_km, convention: str = "exact"):
    """The direct problem on the sphere: go ``distance_km`` from (lon, lat) along ``bearing``.

    Parameters
    ----------
    lon, lat
        Start, degrees (broadcastable arrays).
    bearing
        Radians clockwise from north.
    distance_km
        Distance, km, measured as the wake counter of ``convention`` measures it.
    convention
        ``exact`` (mean-radius sphere) or ``mwa`` (R's 111.111 km per degree).

    Returns
    -------
    tuple of numpy.ndarray
        (lon, lat) of the end points, degrees; lon in [-180, 180).
    """
    phi1, lam1 = np.radians(lat), np.radians(lon)
    delta = np.asarray(distance_km, dtype=float) / km_per_radian(convention)
    sin_phi2 = np.sin(phi1) * np.cos(delta) + np.cos(phi1) * np.sin(delta) * np.cos(bearing)
    phi2 = np.arcsin(np.clip(sin_phi2, -1.0, 1.0))
    lam2 = lam1 + np.arctan2(np.sin(bearing) * np.sin(delta) * np.cos(phi1),
                             np.cos(delta) - np.sin(phi1) * sin_phi2)
    return (np.degrees(lam2) + 180.0) % 360.0 - 180.0, np.degrees(phi2)


def great_circle_km(lon1, lat1, lon2, lat2, convention: str = "exact") -> np.ndarray:
    """Great-circle distance, km, by the atan2 form (exact at all angles).

    Arguments broadcast; degrees in; ``convention`` as in :func:`destination`. The wake
    counter measures with :func:`central_angle_deg` instead (R's expression, bit for bit).
    """
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dlam = np.radians(np.asarray(lon2) - np.asarray(lon1))
    y = np.hypot(np.cos(phi2) * np.sin(dlam),
                 np.cos(phi1) * np.sin(phi2) - np.sin(phi1) * np.cos(phi2) * np.cos(dlam))
    x = np.sin(phi1) * np.sin(phi2) + np.cos(phi1) * np.cos(phi2) * np.cos(dlam)
    return km_per_radian(convention) * np.arctan2(y, x)


def central_angle_deg(lon_a, lat_a, lon_b, lat_b) -> np.ndarray:
    """Great-circle central angle in degrees, by the atan2 (Vincenty) form R's mwa uses.

    The wake counter's distances (:func:`bayes_wake.wakes.count_wakes`) come from this
    angle; its floating-point expression is R's, operation for operation, and differs from
    :func:`great_circle_km`'s in the last bits, which decide R parity at a radius' edge:
    keep it as it is.

    Parameters
    ----------
    lon_a, lat_a, lon_b, lat_b
        Coordinates in degrees (broadcastable arrays).

    Returns
    -------
    numpy.ndarray
        Central angle between a and b, in degrees.
    """
    a = np.radians(lat_a)
    b = np.radians(lat_b)
    dlon = np.radians(lon_a) - np.radians(lon_b)
    cos_b = np.cos(b)
    y = np.sqrt((cos_b * np.sin(dlon)) ** 2
                + (np.cos(a) * np.sin(b) - np.sin(a) * cos_b * np.cos(dlon)) ** 2)
    x = np.sin(a) * np.sin(b) + np.cos(a) * cos_b * np.cos(dlon)
    return np.degrees(np.arctan2(y, x))


def unit_vectors(lon, lat) -> np.ndarray:
    """Points as unit vectors in 3-D (last axis x, y, z); degrees in."""
    phi, lam = np.radians(lat), np.radians(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)],
                    axis=-1)
