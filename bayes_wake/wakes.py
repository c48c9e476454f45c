"""Count wakes: dependent, same-type and other-type events before and after each anchor event.

A *wake* is the spatio-temporal neighbourhood of a treatment or control event (its anchor):
the events within ``radius`` km and ``window`` time units before (``pre``) and after
(``post``) it. :func:`count_wakes` counts them for a whole grid of windows and radii at once
and returns the *wake cube*, an :class:`xarray.Dataset` with dims
``event x radius x window x period``.

Counting never looks at all pairs of events: a KD-tree on unit vectors finds the candidate
pairs within the largest radius, anchors are processed in time-sorted chunks so memory stays
bounded, and every pair is binned once into the smallest (radius, window) cell that holds it;
cumulative sums over the grid then give every cell's count.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from bayes_wake import __version__
from bayes_wake.core.geo import (
    EARTH_RADIUS_KM,
    KM_PER_DEGREE_MWA,
    central_angle_deg,
    km_per_radian,
    unit_vectors,
)
from bayes_wake.core.rcompat import format_digits7
from bayes_wake.core.windows import check_window_span, normalise_time_unit, unit_ns
from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.artefacts import write_netcdf
from bayes_wake.options import Convention, check_choice

__all__ = [
    "count_wakes",
    "save_cube",
    "load_cube",
]


_ANCHOR_ROLES = ("treatment", "control")
_TARGETS = ("dependent", "treatment", "control")
_RESERVED = {"event", "event_id", "source_id", "role", "treated", "time", "lon", "lat",
             "radius", "window", "period", "dependent", "same_type", "other_type", "trend",
             "complete"}


def _validate(events: pd.DataFrame, covariates: Sequence[str]) -> None:
    source = events.attrs.get("source")
    for column in ("role", "time", "lon", "lat"):
        if column not in events.columns:
            raise EventDataError(
                f"the event table has no column '{column}' (columns: {list(events.columns)})",
                path=source, column=column,
            )
    for column in covariates:
        if column not in events.columns:
            raise EventDataError(f"covariate '{column}' is not in the event table",
                                 path=source, column=column)
        if column in _RESERVED:
            raise EventDataError(f"covariate name '{column}' is reserved in the wake cube; "
                                 "rename it", path=source, column=column)
    roles = events["role"].astype(str)
    unknown = ~roles.isin([*_TARGETS, "other"])
    if unknown.any():
        rows = list(np.flatnonzero(unknown.to_numpy()) + 1)
        raise EventDataError(f"unknown role {roles[unknown].iloc[0]!r}", path=source,
                             rows=rows, column="role")
    for role in _ANCHOR_ROLES:
        if not (roles == role).any():
            raise EventDataError(f"there are no {role} events", path=source, column="role")
    bad = events["time"].isna().to_numpy() | events["lon"].isna().to_numpy() | events[
        "lat"].isna().to_numpy()
    if bad.any():
        raise EventDataError("missing time or coordinates", path=source,
                             rows=list(np.flatnonzero(bad) + 1))


def _elapsed(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    """``later - earlier`` in ns for times (int64 ns) with ``later >= earlier``, exact even
    where the difference passes int64's range (a record of more than 292 years): unsigned
    arithmetic wraps modulo 2**64, which holds every such difference."""
    return np.asarray(later, dtype=np.int64).view(np.uint64) - np.asarray(
        earlier, dtype=np.int64).view(np.uint64)


def _units_elapsed(later: np.ndarray, earlier: np.ndarray, ns_per_unit: int) -> np.ndarray:
    """Whole units from ``earlier`` to ``later`` (``later >= earlier``), as int64."""
    return (_elapsed(later, earlier) // np.uint64(ns_per_unit)).astype(np.int64)


def _time_ns(times: pd.Series) -> np.ndarray:
    t = pd.to_datetime(times, utc=True)
    return t.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64)


def count_wakes(
    events: pd.DataFrame,
    windows: Sequence[int] | np.ndarray,
    radii: Sequence[float] | np.ndarray,
    *,
    t_unit: str = "days",
    convention: Convention = "mwa",
    covariates: Sequence[str] | None = None,
    chunk_size: int = 4096,
    progress: Callable[[int, int], None] | None = None,
    leads: bool = False,
) -> xr.Dataset:
    """Count the wakes of every treatment and control event over a grid of windows and radii.

    Parameters
    ----------
    events
        The event table (see :func:`bayes_wake.io.events.read_events`): columns ``role``,
        ``time`` (UTC), ``lon``, ``lat`` (degrees) and covariates. Rows with role ``other``
        are not counted but, as in R, bound the record and take row numbers.
    windows
        Temporal window lengths, whole numbers of ``t_unit``.
    radii
        Spatial windows (radii) in km.
    t_unit
        ``days``, ``hours``, ``minutes`` or ``seconds``.
    convention
        ``mwa`` reproduces R's mwa 0.5.0 bit for bit (111.111 km per degree on coordinates
        rounded as R's ``format(x, digits = 7)`` rounds a column, which can keep more than 7
        significant digits; the integer-division trend; wakes that run off the
        record marked incomplete and later dropped). ``exact`` uses the great-circle distance
        on the mean Earth radius and a symmetric trend, and keeps edge wakes (flagged by
        ``complete == False``).
    covariates
        Covariate columns to carry as coordinates; defaults to ``events.attrs["covariates"]``
        or, failing that, every column that is not a core column.
    chunk_size
        Anchors per chunk; bounds memory for large studies.
    progress
        Called as ``progress(done, total)`` after each chunk of anchors.
    leads
        Also count the *lead* period of every wake, the ``window + 1`` units before its
        pre-period (``window + 1 <= floor((t_anchor - t) / unit) <= 2 window + 1``): the
        variable ``dependent_lead`` (event x radius x window) and ``lead_complete`` (event x
        window: the record starts before it), for the pre-trend placebo of
        :func:`bayes_wake.mwa.analysis.pretrend_table`.

    Returns
    -------
    xarray.Dataset
        The wake cube. Dims ``event`` (anchors, in time order), ``radius`` (km), ``window``
        (``t_unit``) and ``period`` (``pre``, ``post``). Variables ``dependent``,
        ``same_type``, ``other_type`` (int32 counts, dims event x radius x window x period),
        ``trend`` (float64, event x radius x window) and ``complete`` (bool, event x window).
        Coordinates on ``event``: ``event_id`` (R's eventID, the 1-based row after a stable
        sort by time over all rows), ``source_id``, ``role``, ``treated``, ``time``, ``lon``,
        ``lat`` and the covariates. Attributes record the unit, the convention and the
        distance rule.

    Notes
    -----
    Pre events are those with ``0 <= floor((t_anchor - t) / unit) <= window`` that come
    before the anchor in time order (so same-time events earlier in the input count), post
    events those with ``1 <= floor((t - t_anchor) / unit) <= window``: the definitions of R's
    WakeCounter.java.
    """
    check_choice("convention", convention, Convention)
    unit = normalise_time_unit(t_unit)
    windows, radii = _check_grid(windows, radii)
    check_window_span(windows, unit)
    covariates = _covariate_names(events, covariates)
    _validate(events, covariates)
    rows = _SortedRows.of(events, covariates, convention)
    anchors = np.flatnonzero(np.isin(rows.roles, _ANCHOR_ROLES))
    ns_per_unit = unit_ns(unit)
    n_a, n_r, n_w = len(anchors), len(radii), len(windows)
    counts = np.zeros((3, 2, n_a, n_r, n_w), dtype=np.int32)  # [class, period], per cell
    trend = np.zeros((n_a, n_r, n_w), dtype=float)
    for start in range(0, n_a, chunk_size):
        chunk = anchors[start:start + chunk_size]
        counts[:, :, start:start + len(chunk)], trend[start:start + len(chunk)] = \
            _count_chunk(rows, chunk, windows, radii, ns_per_unit, convention)
        if progress is not None:
            progress(min(start + len(chunk), n_a), n_a)
    counts = counts.cumsum(axis=3).cumsum(axis=4)  # over radius, then window
    cube = _cube(rows, anchors, counts, trend, windows, radii, unit, convention, covariates,
                 source=str(events.attrs.get("source", "")))
    return _with_leads(cube, rows, anchors, windows, radii, ns_per_unit, convention,
                       chunk_size) if leads else cube


def _with_leads(cube: xr.Dataset, rows: _SortedRows, anchors, windows, radii,
                ns_per_unit: int, convention: str, chunk_size: int) -> xr.Dataset:
    """The cube with ``dependent_lead`` and ``lead_complete`` (see :func:`count_wakes`)."""
    lead = np.zeros((len(anchors), len(radii), len(windows)))
    terms = [[(1.0, int(w) + 1, 2 * int(w) + 1)] for w in windows]
    for start in range(0, len(anchors), chunk_size):
        chunk = anchors[start:start + chunk_size]
        lead[start:start + len(chunk)] = _lead_chunk(rows, chunk, windows, radii, ns_per_unit,
                                                     convention, terms)
    first = rows.t_ns[0]
    covered = _units_elapsed(rows.t_ns[anchors], first, ns_per_unit)[:, None] > (
        2 * windows[None, :] + 1)
    cube["dependent_lead"] = (("event", "radius", "window"), lead.astype(np.int32),
                              {"long_name": "dependent events in the lead period: "
                                            "window + 1 <= floor((t_anchor - t)/unit) <= "
                                            "2 window + 1"})
    cube["lead_complete"] = (("event", "window"), covered,
                             {"long_name": "the record covers the lead period"})
    return cube


def _lead_chunk(rows: _SortedRows, chunk: np.ndarray, windows, radii, ns_per_unit: int,
                convention: str, terms: list) -> np.ndarray:
    """Dependent events of one chunk of anchors per lead period (anchors, radii, windows)."""
    t_max, m, n_r = int(windows[-1]), len(chunk), len(radii)
    chord = 2 * np.sin(min(radii[-1] / km_per_radian(convention), np.pi) / 2)
    chord = chord * (1 + 1e-9) + 1e-12
    lo = max(int(rows.t_ns[chunk[0]]) - (2 * t_max + 2) * ns_per_unit, int(rows.t_ns[0]))
    sl = slice(np.searchsorted(rows.target_times, np.int64(lo), "left"),
               np.searchsorted(rows.target_times, rows.t_ns[chunk[-1]], "right"))
    nearby = rows.targets[sl]
    nearby = nearby[rows.target_class[nearby] == 0]  # dependent events only
    a_local, k_local = _candidate_pairs(rows.xyz[chunk], rows.xyz[nearby], chord)
    a_idx, k_idx = chunk[a_local], nearby[k_local]
    before = k_idx < a_idx
    a_idx, k_idx, a_local = a_idx[before], k_idx[before], a_local[before]
    r_bin = np.searchsorted(radii, _distance_km(rows, a_idx, k_idx, convention), side="left")
    dd = _units_elapsed(rows.t_ns[a_idx], rows.t_ns[k_idx], ns_per_unit)
    ok = (r_bin < n_r) & (dd <= 2 * t_max + 1)
    edges = np.unique([e for window in terms for _, lo_, hi in window for e in (lo_, hi + 1)])
    edges = np.concatenate([[0], edges])
    dd, a_local, r_bin = dd[ok], a_local[ok], r_bin[ok]
    stretch = np.searchsorted(edges, dd, side="right") - 1
    n_s = len(edges) - 1
    inside = stretch < n_s
    hist = np.bincount((a_local[inside] * n_r + r_bin[inside]) * n_s + stretch[inside],
                       minlength=m * n_r * n_s).reshape(m, n_r, n_s).cumsum(axis=1)
    return _trend(hist, edges, terms)


def _check_grid(windows, radii) -> tuple[np.ndarray, np.ndarray]:
    """The grid as arrays, or a :class:`SettingsError` saying what is wrong with it."""
    windows = np.asarray(windows, dtype=np.int64).ravel()
    radii = np.asarray(radii, dtype=float).ravel()
    if windows.size == 0 or radii.size == 0:
        raise SettingsError("the window grid is empty")
    if np.any(np.diff(windows) <= 0) or np.any(np.diff(radii) <= 0):
        raise SettingsError("windows and radii must be strictly increasing")
    if windows[0] < 2:
        raise SettingsError("temporal windows must be at least 2 units long (the pre-trend "
                            f"compares two halves), got {windows[0]}")
    if radii[0] <= 0:
        raise SettingsError(f"radii must be positive, got {radii[0]:g}")
    return windows, radii


def _covariate_names(events: pd.DataFrame, covariates) -> list[str]:
    """The given covariates, else ``events.attrs["covariates"]``, else every non-core
    column."""
    if covariates is None:
        covariates = events.attrs.get("covariates")
    if covariates is None:
        covariates = [c for c in events.columns
                      if c not in {"event_id", "source_id", "role", "time", "lon", "lat",
                                   "geometry"}]
    return list(covariates)


@dataclass(frozen=True)
class _SortedRows:
    """Every row of the event table in R's order (a stable sort by time), with what the
    counter needs: times (ns), roles, coordinates (R's 7-digit text under ``mwa``), unit
    vectors, covariates and the caller's ids."""

    t_ns: np.ndarray
    roles: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    xyz: np.ndarray
    covariates: dict
    source_id: np.ndarray

    @classmethod
    def of(cls, events: pd.DataFrame, covariates: list[str], convention: str) -> _SortedRows:
        t_ns = _time_ns(events["time"])
        if convention == "mwa":
            t_ns = (t_ns // 1_000_000_000) * 1_000_000_000  # Java parses whole seconds
        order = np.argsort(t_ns, kind="stable")  # R orders by time, ties keep input order
        lon = events["lon"].to_numpy(dtype=float)[order]
        lat = events["lat"].to_numpy(dtype=float)[order]
        values = {c: pd.to_numeric(events[c]).to_numpy(dtype=float)[order] for c in covariates}
        if convention == "mwa":
            # R passes data to Java as text: each numeric column formatted with 7 digits.
            lon, lat = format_digits7(lon), format_digits7(lat)
            values = {c: format_digits7(v) for c, v in values.items()}
        source_id = events["event_id"].to_numpy()[order] if "event_id" in events.columns \
            else order + 1
        return cls(t_ns=t_ns[order], roles=events["role"].astype(str).to_numpy()[order],
                   lon=lon, lat=lat, xyz=unit_vectors(lon, lat), covariates=values,
                   source_id=source_id)

    @cached_property
    def targets(self) -> np.ndarray:
        """Rows that are counted in wakes (dependent, treatment, control), in time order."""
        return np.flatnonzero(np.isin(self.roles, _TARGETS))

    @cached_property
    def target_times(self) -> np.ndarray:
        """Times (ns) of :attr:`targets`, sorted."""
        return self.t_ns[self.targets]

    @cached_property
    def target_class(self) -> np.ndarray:
        """Per row, its index in ``_TARGETS`` (-1 for rows that are not counted)."""
        out = np.full(len(self.roles), -1, dtype=np.int64)
        for c, role in enumerate(_TARGETS):
            out[self.roles == role] = c
        return out


def _distance_km(rows: _SortedRows, a: np.ndarray, k: np.ndarray, convention: str):
    """Distances between rows ``a`` and ``k`` under the convention's rule (km)."""
    angle = central_angle_deg(rows.lon[a], rows.lat[a], rows.lon[k], rows.lat[k])
    if convention == "mwa":
        return angle * KM_PER_DEGREE_MWA
    return np.radians(angle) * EARTH_RADIUS_KM


def _count_chunk(rows: _SortedRows, chunk: np.ndarray, windows, radii, ns_per_unit: int,
                 convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-bin counts of one chunk of anchors (rows, in time order) and their pre-trends.

    Returns
    -------
    counts
        Shape (3 target classes, 2 periods, anchors, radii, windows): events whose distance
        and delay fall in each ring x interval bin (not yet cumulated).
    trend
        Shape (anchors, radii, windows): the pre-period trend of the dependent events.
    """
    n_r, n_w, t_max, m = len(radii), len(windows), int(windows[-1]), len(chunk)
    chord = 2 * np.sin(min(radii[-1] / km_per_radian(convention), np.pi) / 2)
    chord = chord * (1 + 1e-9) + 1e-12  # a margin: the exact test below decides
    # The rows a wake can reach, in Python integers (a long window plus a time passes int64)
    # and clipped to the record: a window longer than the record reaches all of it.
    reach_ns = (t_max + 1) * ns_per_unit
    first, last = int(rows.t_ns[0]), int(rows.t_ns[-1])
    lo = max(int(rows.t_ns[chunk[0]]) - reach_ns, first)
    hi = min(int(rows.t_ns[chunk[-1]]) + reach_ns, last)
    sl = slice(np.searchsorted(rows.target_times, np.int64(lo), "left"),
               np.searchsorted(rows.target_times, np.int64(hi), "right"))
    nearby = rows.targets[sl]
    a_local, k_local = _candidate_pairs(rows.xyz[chunk], rows.xyz[nearby], chord)
    a_idx, k_idx = chunk[a_local], nearby[k_local]
    keep = a_idx != k_idx
    a_idx, k_idx, a_local = a_idx[keep], k_idx[keep], a_local[keep]
    r_bin = np.searchsorted(radii, _distance_km(rows, a_idx, k_idx, convention),
                            side="left")  # smallest radius >= distance
    before = k_idx < a_idx  # earlier in time order
    t = rows.t_ns
    dd = np.where(before, _units_elapsed(t[a_idx], t[k_idx], ns_per_unit),
                  _units_elapsed(t[k_idx], t[a_idx], ns_per_unit))
    period = np.where(before, 0, 1)
    ok = (r_bin < n_r) & np.where(before, dd >= 0, dd >= 1) & (dd <= t_max)
    a_local, k_idx, r_bin, dd, period = a_local[ok], k_idx[ok], r_bin[ok], dd[ok], period[ok]
    w_bin = np.searchsorted(windows, dd, side="left")  # smallest window >= dd
    cls = rows.target_class[k_idx]
    flat = (((cls * 2 + period) * m + a_local) * n_r + r_bin) * n_w + w_bin
    counts = np.bincount(flat, minlength=3 * 2 * m * n_r * n_w).reshape(3, 2, m, n_r, n_w)
    # The pre-trend needs the dependent pre counts per stretch of delays between the edges
    # of its halves (a few per window, never one per time step: a window in seconds is long).
    terms = [_trend_terms(int(w), convention) for w in windows]
    edges = np.unique([e for window in terms for _, lo, hi in window for e in (lo, hi + 1)])
    n_s = len(edges) - 1
    pre_dep = (cls == 0) & (period == 0)
    stretch = np.searchsorted(edges, dd[pre_dep], side="right") - 1
    hist_flat = (a_local[pre_dep] * n_r + r_bin[pre_dep]) * n_s + stretch
    hist = np.bincount(hist_flat, minlength=m * n_r * n_s).reshape(
        m, n_r, n_s).cumsum(axis=1)  # cumulative over radius
    return counts, _trend(hist, edges, terms)


def _cube(rows: _SortedRows, anchors, counts, trend, windows, radii, unit: str,
          convention: str, covariates: list[str], source: str) -> xr.Dataset:
    """The wake cube from the cumulated counts (class, period, anchor, radius, window)."""
    treated = rows.roles[anchors] == "treatment"
    dep, treat, ctrl = counts
    same = np.where(treated[None, :, None, None], treat, ctrl)
    other = np.where(treated[None, :, None, None], ctrl, treat)
    t_first, t_last = rows.t_ns[0], rows.t_ns[-1]
    ns_per_unit = unit_ns(unit)
    anchor_t = rows.t_ns[anchors]
    complete = (_units_elapsed(anchor_t, t_first, ns_per_unit)[:, None] > windows[None, :]) & (
        _units_elapsed(t_last, anchor_t, ns_per_unit)[:, None] > windows[None, :])

    def by_period(arr: np.ndarray) -> np.ndarray:  # (2, a, r, w) -> (a, r, w, 2)
        return np.moveaxis(arr, 0, -1).astype(np.int32)

    coords: dict[str, tuple | np.ndarray] = {
        "event": ("event", (anchors + 1).astype(np.int64)),
        "radius": ("radius", radii, {"units": "km", "long_name": "spatial window (radius)"}),
        "window": ("window", windows, {"units": unit, "long_name": "temporal window"}),
        "period": ("period", np.array(["pre", "post"])),
        "source_id": ("event", np.asarray(rows.source_id[anchors])),
        "role": ("event", rows.roles[anchors].astype(str)),
        "treated": ("event", treated.astype(np.int8)),
        "time": ("event", anchor_t.astype("datetime64[ns]")),
        "lon": ("event", rows.lon[anchors], {"units": "degrees_east"}),
        "lat": ("event", rows.lat[anchors], {"units": "degrees_north"}),
    }
    for c in covariates:
        coords[c] = ("event", rows.covariates[c][anchors])
    dims4 = ("event", "radius", "window", "period")
    ds = xr.Dataset(
        {
            "dependent": (dims4, by_period(dep), {"long_name": "dependent events in the wake"}),
            "same_type": (dims4, by_period(same),
                          {"long_name": "anchor events of the wake's own role (R: SO)"}),
            "other_type": (dims4, by_period(other),
                           {"long_name": "anchor events of the other role (R: MO)"}),
            "trend": (("event", "radius", "window"), trend,
                      {"long_name": "pre-period trend of dependent events"}),
            "complete": (("event", "window"), complete,
                         {"long_name": "the record covers the whole wake"}),
        },
        coords=coords,
    )
    ds["event"].attrs["long_name"] = "R's eventID: 1-based row after a stable sort by time"
    ds.attrs.update(_cube_attrs(rows, unit, convention, covariates, source))
    return ds


def _cube_attrs(rows: _SortedRows, unit: str, convention: str, covariates: list[str],
                source: str) -> dict:
    """The cube's attributes: the unit, the convention's rules, the record and the source."""
    return {
        "title": "bayes_wake wake cube",
        "t_unit": unit,
        "convention": convention,
        "distance_rule": (
            f"atan2 great-circle central angle x {KM_PER_DEGREE_MWA} km per degree, on "
            "coordinates rounded as R's format(x, digits = 7) rounds a column (R mwa)"
            if convention == "mwa" else
            f"great-circle distance on a sphere of radius {EARTH_RADIUS_KM} km"),
        "counting": ("pre: 0 <= floor((t_anchor - t)/unit) <= window, earlier in time order; "
                     "post: 1 <= floor((t - t_anchor)/unit) <= window; distance <= radius"),
        "trend_rule": ("R mwa (integer division for odd windows)" if convention == "mwa"
                       else "symmetric: recent half minus older half of the pre window"),
        "incomplete_wakes": "dropped by estimators" if convention == "mwa" else "kept (edge)",
        "covariates": json.dumps(covariates),
        "record_start": str(np.datetime64(int(rows.t_ns[0]), "ns")),
        "record_end": str(np.datetime64(int(rows.t_ns[-1]), "ns")),
        "time_zone": "UTC",
        "n_dependent": int((rows.roles == "dependent").sum()),
        "n_other": int((rows.roles == "other").sum()),
        "source": source,
        "bayes_wake_version": __version__,
    }


def _candidate_pairs(anchor_xyz: np.ndarray, target_xyz: np.ndarray, chord: float):
    """Index pairs (anchor, target) whose chord distance is at most ``chord``."""
    if len(anchor_xyz) == 0 or len(target_xyz) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    tree_a = cKDTree(anchor_xyz)
    tree_t = cKDTree(target_xyz)
    pairs = tree_a.sparse_distance_matrix(tree_t, chord, output_type="ndarray")
    return pairs["i"].astype(np.int64), pairs["j"].astype(np.int64)


def _trend_terms(t: int, convention: str) -> list[tuple[float, int, int]]:
    """The pre-trend of window ``t`` as terms ``(weight, lo, hi)``: the trend is the sum of
    ``weight`` x the dependent pre events with delay ``lo <= dd <= hi`` (in ``t_unit``)."""
    if convention != "mwa":
        half = (t + 1) // 2  # equal halves of the t + 1 steps; a middle step is left out
        return [(1.0, 0, half - 1), (-1.0, t + 1 - half, t)]
    if t % 2 == 0:
        half = t // 2
        return [(1.0, 0, half - 1), (-1.0, half, t)]
    s = (t + 1) // 2
    q = s // (s - 1)  # Java integer division: 2 for t = 3, 1 for t >= 5
    # R: 0.5 * ((first half - q * second) + (q * first without its end - second from s - 1))
    return [(0.5, 0, s - 1), (-0.5 * q, s, t), (0.5 * q, 0, s - 2), (-0.5, s - 1, t)]


def _trend(hist: np.ndarray, edges: np.ndarray, terms: list) -> np.ndarray:
    """Pre-trend per window from dependent pre counts by stretch of delays
    (``hist[..., i]`` counts ``edges[i] <= dd < edges[i + 1]``) and each window's
    :func:`_trend_terms`."""
    prefix = np.concatenate([np.zeros(hist.shape[:-1] + (1,)), hist.cumsum(axis=-1)], axis=-1)

    def total(lo: int, hi: int) -> np.ndarray:  # dependent pre events with lo <= dd <= hi
        return prefix[..., np.searchsorted(edges, hi + 1)] - prefix[..., np.searchsorted(
            edges, lo)]

    out = np.zeros(hist.shape[:-1] + (len(terms),))
    for j, window in enumerate(terms):
        for weight, lo, hi in window:
            out[..., j] += weight * total(lo, hi)
    return out


def save_cube(cube: xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a wake cube to netCDF (HDF5) atomically.

    Parameters
    ----------
    cube
        The wake cube from :func:`count_wakes`.
    path
        Target file; a temporary file beside it is renamed into place only when complete.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return write_netcdf(cube, path)


def load_cube(path: str | os.PathLike) -> xr.Dataset:
    """Read a wake cube written by :func:`save_cube` (fully into memory)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
