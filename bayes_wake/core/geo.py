"""The distance constants of the two counting conventions, defined once."""

from __future__ import annotations

__all__ = ["EARTH_RADIUS_KM", "KM_PER_DEGREE_MWA"]

#: IUGG mean Earth radius (km): the sphere of the ``exact`` convention, of Conley kernels and
#: of distances to covariate layers.
EARTH_RADIUS_KM = 6371.0088
#: R's mwa turns degrees of central angle into km with this factor (a known quirk).
KM_PER_DEGREE_MWA = 111.111
