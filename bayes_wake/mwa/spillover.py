"""Exposure to neighbouring treatments: the exposure mapping of a wake DiD with spillovers.

Treatments that come in programmes (several QIPs in one town within weeks) put their own
effects into each other's wakes, so the treatment coefficient of the wake DiD is a
treatment's own (direct) effect plus the spillover of its neighbours (Aronow and Samii 2017;
Butts 2021, "Difference-in-differences estimation with spatial spillovers"). The exposure
mapping here counts, per wake and cell, the *other* treatment anchors whose own post-period
wake (where their effect is measured) reaches this wake's pre- or post-period:

For a cell (window ``T`` in units ``u``, radius ``S`` km), a wake anchored at ``(t_i, x_i)``
covers the space-time sets

- pre:  ``{(t, x): 0 <= floor((t_i - t) / u) <= T, d(x, x_i) <= S}``, times in
  ``(t_i - (T + 1) u, t_i]``;
- post: ``{(t, x): 1 <= floor((t - t_i) / u) <= T, d(x, x_i) <= S}``, times in
  ``[t_i + u, t_i + (T + 1) u)``

(the counting rules of :func:`bayes_wake.wakes.count_wakes`). Treatment ``j != i`` *reaches*
wake ``i``'s period when its post set intersects that period's set: the two discs meet,
``d(x_i, x_j) <= 2 S``, and the time intervals meet, which with ``D = t_i - t_j`` is

- ``exposure_pre``:  ``u <= D < 2 (T + 1) u`` (``j`` started before ``i``, its post-period
  runs into ``i``'s pre-period);
- ``exposure_post``: ``|D| < T u`` (the two post-periods share time).

Distances follow the cube's convention (R's 111.111 km per degree on its rounded coordinates
under ``mwa``, the great circle on the mean Earth radius under ``exact``).

Limits: a count treats every neighbour that reaches a wake alike, whether their discs share a
sliver or nearly all of their area, so the spillover coefficient is the *average* effect of
one reaching neighbour on this wake's count in this cell; and where every treated wake of a
cell has the same exposure (all QIPs in clumps of the same size, all within reach) the
exposure is collinear with treatment and the direct effect is not identified: that cell is
NA, with the reason.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy.spatial import cKDTree

from bayes_wake.core.geo import great_circle_km, km_per_radian, unit_vectors
from bayes_wake.core.windows import unit_ns

__all__ = ["spillover_exposure", "EXPOSURE_COLUMNS"]

#: Names of the exposure terms, in the order they enter a cell's regression (before the
#: treatment column): neighbours reaching the pre-period, then the post-period.
EXPOSURE_COLUMNS = ("exposure_pre", "exposure_post")


def _neighbour_pairs(cube: xr.Dataset, max_km: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (wake ``i``, other treatment ``j``) whose anchors lie within ``max_km``."""
    lon, lat = cube["lon"].to_numpy().astype(float), cube["lat"].to_numpy().astype(float)
    xyz = unit_vectors(lon, lat)
    treated = np.flatnonzero(cube["treated"].to_numpy() == 1)
    if not len(treated):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # chord of the central angle, with slack for the convention's km per radian
    chord = 2 * np.sin(min(np.pi, 1.01 * max_km / km_per_radian("mwa")) / 2) + 1e-12
    pairs = cKDTree(xyz).sparse_distance_matrix(cKDTree(xyz[treated]), chord,
                                                output_type="ndarray")
    i, j = pairs["i"].astype(np.int64), treated[pairs["j"]]
    return i[i != j], j[i != j]


def spillover_exposure(cube: xr.Dataset) -> xr.DataArray:
    """Per wake and cell, the number of other treatment anchors whose post-period wake
    reaches this wake's pre- and post-period (the module's definition).

    Parameters
    ----------
    cube
        The wake cube (:func:`bayes_wake.wakes.count_wakes`): anchors' ``time``, ``lon``,
        ``lat`` and ``treated``, the grid and the ``t_unit`` and ``convention`` attributes.

    Returns
    -------
    xarray.DataArray
        int32, dims ``event`` x ``window`` x ``radius`` x ``period`` (``pre``, ``post``):
        counts of neighbouring treatments (dimensionless).
    """
    windows = cube["window"].to_numpy().astype(np.int64)
    radii = cube["radius"].to_numpy().astype(float)
    out = np.zeros((cube.sizes["event"], len(windows), len(radii), 2), dtype=np.int32)
    i, j = _neighbour_pairs(cube, 2 * radii.max())
    if len(i):
        lon, lat = cube["lon"].to_numpy().astype(float), cube["lat"].to_numpy().astype(float)
        km = great_circle_km(lon[i], lat[i], lon[j], lat[j],
                             cube.attrs.get("convention", "exact"))
        t = cube["time"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        lag = (t[i] - t[j]).astype(float) / unit_ns(cube.attrs.get("t_unit", "days"))
        for a, window in enumerate(windows):
            reaches_pre = (lag >= 1) & (lag < 2 * (window + 1))
            reaches_post = np.abs(lag) < window
            for b, radius in enumerate(radii):
                near = km <= 2 * radius
                out[:, a, b, 0] = np.bincount(i[near & reaches_pre], minlength=out.shape[0])
                out[:, a, b, 1] = np.bincount(i[near & reaches_post], minlength=out.shape[0])
    return xr.DataArray(out, dims=("event", "window", "radius", "period"),
                        coords={"event": cube["event"], "window": cube["window"],
                                "radius": cube["radius"], "period": ["pre", "post"]},
                        name="exposure",
                        attrs={"long_name": "other treatments whose post-period wake reaches "
                                            "this wake's period (bayes_wake.mwa.spillover)"})
