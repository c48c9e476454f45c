"""Covariates of events: distances to map features, raster values at the points, or columns.

The matching covariates of Sauter (2022) are distances (to the nearest MINUSMA base, river or
lake, major road) and raster values (population density, night lights). Whatever a user has is
used, nothing is required: :func:`add_covariates` takes any number of vector layers (points,
lines, polygons) and rasters, or columns already in the table.

How distances are measured
--------------------------
Points and features are projected to an azimuthal equidistant (AEQD) projection on the WGS84
ellipsoid centred on the middle of the points' bounding box, and the planar (shapely) distance
to the nearest part of the nearest feature is taken, so a point beside a long river segment is
as near as the segment, not as its nearest vertex; a point inside a polygon is at 0 km. The
AEQD keeps distances from its centre exact and stretches those across the radius by the factor
``(rho/R) / sin(rho/R)`` at angular distance ``rho/R`` from the centre, so every distance is
overstated by at most ``(rho_max/R)^2 / 6``: 0.2% for points within 700 km of the centre (the
study area of the paper), 0.4% within 1,000 km (all of Mali). :func:`distance_error_bound`
gives a bound for given points before measuring, ``distance_to_layer(...,
return_bound=True)`` the tight one after; it is recorded with the covariates. (A single UTM zone
would err by up to 1% across Mali, and the great-circle distance to the nearest *vertex* of a
line overstates distances to coarsely digitised rivers by up to half a segment.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_wake.core.geo import EARTH_RADIUS_KM
from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.tables import (
    check_coordinates,
    counted,
    find_column,
    parse_numbers,
    read_table,
    to_wgs84,
)

__all__ = [
    "add_covariates",
    "distance_error_bound",
    "distance_to_layer",
    "load_layer",
    "sample_raster",
]

_SEGMENT_DEG = 0.02  # longest segment (degrees) of a feature before it is projected
_VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".shp", ".fgb", ".parquet")
_CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt")
_LON = ("longitude", "lon", "lng", "long", "x")
_LAT = ("latitude", "lat", "y")
_NAME = ("name", "base", "location", "site", "label")


#: The geometry types of each kind of feature :func:`load_layer` can require.
_GEOMETRY_KINDS = {"points": ("Point", "MultiPoint"),
                   "lines": ("LineString", "MultiLineString", "LinearRing"),
                   "polygons": ("Polygon", "MultiPolygon")}


def load_layer(path: str | os.PathLike, *, where: str | None = None, layer: str | None = None,
               kinds: Sequence[str] = (), what: str = "layer"):
    """Read a map layer: a vector file of any geometry, or a CSV of points.

    Parameters
    ----------
    path
        GeoJSON, GeoPackage, Shapefile, FlatGeobuf or GeoParquet (any CRS; none means
        WGS84), or a CSV with longitude and latitude columns (``longitude``/``lon``/``lng``,
        ``latitude``/``lat``; WGS84 degrees), e.g. the MINUSMA bases file.
    where
        A pandas query on the layer's attributes that selects features, e.g. ``"level <= 3"``
        for the major rivers of the GSHHG/WDBII file.
    layer
        The layer of a multi-layer file.
    kinds
        The kinds of feature the layer must hold, among ``points``, ``lines`` and
        ``polygons`` (rivers are lines or polygons: a file of points is not water); empty
        for any.
    what
        What the layer is, for messages (``"rivers layer"``).

    Returns
    -------
    geopandas.GeoDataFrame
        The features in EPSG:4326 (empty and missing geometries dropped, invalid ones made
        valid), with the file's attributes; ``name`` holds a label when the file has one.
        ``attrs["source"]`` is the path.

    Raises
    ------
    EventDataError
        Missing or unreadable file, a CSV without coordinate columns or with bad
        coordinates, a ``where`` that fails, no features left, or features of another kind
        than ``kinds``.
    """
    label = os.fspath(path)
    if not os.path.exists(label):
        raise EventDataError("layer file not found", path=label)
    frame = _read_layer_file(label, layer)
    if where:
        try:
            frame = frame.query(where)
        except Exception as exc:
            raise EventDataError(f"cannot select features with {where!r}: {exc} (attributes: "
                                 f"{', '.join(c for c in frame.columns if c != 'geometry')})",
                                 path=label) from None
    keep = frame.geometry.notna() & ~frame.geometry.is_empty
    frame = frame[keep.to_numpy()].copy()
    if len(frame) == 0:
        raise EventDataError("no features in the layer" + (f" where {where}" if where else ""),
                             path=label)
    allowed = {t for kind in kinds for t in _GEOMETRY_KINDS[kind]}
    found = set(frame.geom_type)
    if allowed and not found <= allowed:
        raise EventDataError(f"the {what} must hold {' or '.join(kinds)}; this file holds "
                             f"{', '.join(sorted(found - allowed))} features", path=label)
    frame = frame.set_geometry(frame.geometry.make_valid())
    name_col = find_column(pd.DataFrame(columns=[c for c in frame.columns
                                                 if c != frame.geometry.name]), _NAME)
    if name_col is not None and "name" not in frame.columns:
        frame["name"] = frame[name_col].astype("str")
    frame = frame.reset_index(drop=True)
    frame.attrs["source"] = label
    if where:
        frame.attrs["where"] = where
    return frame


def _read_layer_file(label: str, layer: str | None):
    """All the features of a layer file (a CSV of points or a vector file), in EPSG:4326."""
    import geopandas as gpd

    lower = label.lower()
    if lower.endswith(_CSV_SUFFIXES):
        return _read_point_csv(label)
    if not lower.endswith(_VECTOR_SUFFIXES):
        raise EventDataError(f"unknown layer file type; use one of "
                             f"{', '.join(_VECTOR_SUFFIXES + _CSV_SUFFIXES)}", path=label)
    try:
        frame = (gpd.read_parquet(label) if lower.endswith(".parquet")
                 else gpd.read_file(label, layer=layer))
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EventDataError(f"cannot read the layer: {first}", path=label) from None
    return to_wgs84(frame)


def _read_point_csv(label: str):
    """A CSV of points as a GeoDataFrame in EPSG:4326; its numeric columns as numbers."""
    import geopandas as gpd

    table = read_table(label, "point layer")
    lon_col, lat_col = find_column(table, _LON), find_column(table, _LAT)
    if lon_col is None or lat_col is None:
        raise EventDataError("a CSV layer needs longitude and latitude columns (columns: "
                             f"{', '.join(table.columns)})", path=label)
    lon = parse_numbers(table[lon_col], name=lon_col, path=label, what="longitude")
    lat = parse_numbers(table[lat_col], name=lat_col, path=label, what="latitude")
    bad = np.isnan(lon) | np.isnan(lat)
    if bad.any():
        raise EventDataError("missing coordinates", path=label,
                             rows=list(np.flatnonzero(bad) + 1), column=lon_col)
    check_coordinates(lon, lat, lon_name=lon_col, lat_name=lat_col, path=label)
    frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    for column in table.columns:
        if column != lon_col and column != lat_col:
            converted = pd.to_numeric(table[column], errors="coerce")
            if converted.notna().sum() == table[column].notna().sum():
                frame[column] = converted
    return frame


def _aeqd(lon: np.ndarray, lat: np.ndarray) -> tuple[str, float, float]:
    lon0 = float((np.nanmin(lon) + np.nanmax(lon)) / 2)
    lat0 = float((np.nanmin(lat) + np.nanmax(lat)) / 2)
    crs = f"+proj=aeqd +lat_0={lat0:.6f} +lon_0={lon0:.6f} +datum=WGS84 +units=m +no_defs"
    return crs, lon0, lat0


def distance_error_bound(lon: np.ndarray, lat: np.ndarray,
                         reach_km: float | np.ndarray = 0.0) -> float:
    """Upper bound on the relative overstatement of :func:`distance_to_layer`'s distances.

    Parameters
    ----------
    lon, lat
        The query points, WGS84 degrees.
    reach_km
        How far from each point its nearest feature lies, km (a number, or one per point,
        e.g. the distances themselves): the path to it stays within that reach.

    Returns
    -------
    float
        ``(rho/R) / sin(rho/R) - 1``, about ``(rho/R)^2 / 6``, with ``rho`` the largest
        distance from the projection's centre of a point plus its reach: e.g. 0.002 for
        0.2%.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.size == 0:
        return 0.0
    _, lon0, lat0 = _aeqd(lon, lat)
    phi1, phi2 = np.radians(lat0), np.radians(lat)
    dlam = np.radians(lon - lon0)
    cos_angle = np.clip(np.sin(phi1) * np.sin(phi2)
                        + np.cos(phi1) * np.cos(phi2) * np.cos(dlam), -1, 1)
    reach = np.broadcast_to(np.nan_to_num(np.asarray(reach_km, dtype=float)), lon.shape)
    angle = float(np.nanmax(np.arccos(cos_angle) + reach / EARTH_RADIUS_KM))
    return angle / math.sin(angle) - 1.0 if angle > 0 else 0.0


def distance_to_layer(lon: np.ndarray, lat: np.ndarray, layer, *,
                      return_bound: bool = False) -> np.ndarray | tuple[np.ndarray, float]:
    """Distance from each point to the nearest feature of a layer, km.

    Parameters
    ----------
    lon, lat
        WGS84 degrees (arrays of one length). NaN coordinates give NaN.
    layer
        A GeoDataFrame or GeoSeries (any CRS; none means WGS84) of points, lines or
        polygons, or a path for :func:`load_layer`. Segments are taken as straight in
        longitude/latitude (GeoJSON's convention) and densified to 0.02 degrees before they
        are projected.
    return_bound
        Also return the bound on the relative error of these distances.

    Returns
    -------
    distance : numpy.ndarray
        float64 km: to the nearest point of the nearest feature (0 inside a polygon),
        measured in an azimuthal equidistant projection centred on the points; see the
        module notes for the accuracy (within 0.4% over Mali).
    bound : float
        Only with ``return_bound``: the largest relative overstatement possible for these
        distances, ``k - 1`` with ``k = a / sin(a)`` the projection's largest scale along the
        paths, ``a`` the angular distance from the centre of the farther end (a point or its
        nearest feature point; the projection keeps it exactly).
    """
    import geopandas as gpd
    import shapely

    if isinstance(layer, str | os.PathLike):
        layer = load_layer(layer)
    geometry = layer.geometry if isinstance(layer, gpd.GeoDataFrame) else gpd.GeoSeries(layer)
    geometry = to_wgs84(geometry)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    out = np.full(lon.shape, np.nan)
    ok = np.isfinite(lon) & np.isfinite(lat)
    if not ok.any():
        return (out, 0.0) if return_bound else out
    geometry = geometry[geometry.notna() & ~geometry.is_empty]
    if len(geometry) == 0:
        raise SettingsError("the layer has no features to measure distances to")
    crs, _, _ = _aeqd(lon[ok], lat[ok])
    # Densify first: a long segment, straight in longitude/latitude, is a curve in the
    # projection; projected vertices every ~2 km keep the chord within metres of it.
    features = gpd.GeoSeries(shapely.segmentize(geometry.to_numpy(), _SEGMENT_DEG),
                             crs=4326).to_crs(crs).to_numpy()
    points = gpd.GeoSeries(shapely.points(lon[ok], lat[ok]), crs=4326).to_crs(crs).to_numpy()
    tree = shapely.STRtree(features)
    (source, target), distance = tree.query_nearest(points, return_distance=True,
                                                    all_matches=False)
    values = np.full(ok.sum(), np.nan)
    values[source] = distance / 1000.0
    out[ok] = values
    if not return_bound:
        return out
    # The AEQD keeps distances from its centre, so the projected radius of a point and of its
    # nearest feature point is their true distance from the centre.
    ends = shapely.get_coordinates(shapely.shortest_line(points[source], features[target]))
    radius_km = np.hypot(ends[:, 0], ends[:, 1]).max() / 1000.0
    angle = radius_km / EARTH_RADIUS_KM
    return out, (angle / math.sin(angle) - 1.0 if angle > 0 else 0.0)


def sample_raster(path: str | os.PathLike, lon: np.ndarray, lat: np.ndarray, *,
                  band: int = 1) -> np.ndarray:
    """The raster's value in the cell under each point.

    Parameters
    ----------
    path
        A raster rasterio can open (GeoTIFF, ...), in any CRS.
    lon, lat
        WGS84 degrees.
    band
        1-based band number.

    Returns
    -------
    numpy.ndarray
        float64 values, in the raster's unit (e.g. persons per km^2 for a population
        density raster); NaN for points outside the raster, on nodata cells, or with NaN
        coordinates.

    Raises
    ------
    EventDataError
        The raster is missing or unreadable, or has no such band.
    """
    import rasterio
    from rasterio.warp import transform

    label = os.fspath(path)
    if not os.path.exists(label):
        raise EventDataError("raster file not found", path=label)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    out = np.full(lon.shape, np.nan)
    try:
        dataset = rasterio.open(label)
    except Exception as exc:  # rasterio.errors.RasterioIOError
        raise EventDataError(f"cannot read the raster: {exc}", path=label) from None
    with dataset:
        if not 1 <= band <= dataset.count:
            raise EventDataError(f"the raster has {dataset.count} band(s), no band {band}",
                                 path=label)
        ok = np.flatnonzero(np.isfinite(lon) & np.isfinite(lat))
        if ok.size == 0:
            return out
        if dataset.crs is not None and dataset.crs.to_epsg() != 4326:
            xs, ys = transform("EPSG:4326", dataset.crs, lon[ok].tolist(), lat[ok].tolist())
        else:
            xs, ys = lon[ok], lat[ok]
        rows, cols = rasterio.transform.rowcol(dataset.transform, np.asarray(xs),
                                               np.asarray(ys), op=math.floor)
        rows, cols = np.asarray(rows), np.asarray(cols)
        inside = (rows >= 0) & (rows < dataset.height) & (cols >= 0) & (cols < dataset.width)
        if not inside.any():
            return out
        r0, r1 = rows[inside].min(), rows[inside].max() + 1
        c0, c1 = cols[inside].min(), cols[inside].max() + 1
        window = rasterio.windows.Window(c0, r0, c1 - c0, r1 - r0)
        data = dataset.read(band, window=window, masked=True)
        picked = data[rows[inside] - r0, cols[inside] - c0]
        values = np.ma.filled(picked.astype(float), np.nan)
        target = ok[inside]
        out[target] = values
    return out


def add_covariates(
    events: pd.DataFrame,
    *,
    layers: Mapping[str, object] | None = None,
    rasters: Mapping[str, str | os.PathLike] | None = None,
    columns: Sequence[str] = (),
) -> pd.DataFrame:
    """Add covariate columns to a table of events.

    Parameters
    ----------
    events
        A table with ``lon``, ``lat`` (WGS84 degrees), e.g. the event table.
    layers
        Covariate name -> a layer (GeoDataFrame, or a path for :func:`load_layer`), or a
        list of layers whose features are pooled (rivers and lakes). The covariate is the
        distance in km to the nearest feature (:func:`distance_to_layer`). Names should say
        the unit, e.g. ``dist_base_km``.
    rasters
        Covariate name -> raster path; the covariate is the raster's value under each event
        (:func:`sample_raster`), in the raster's unit.
    columns
        Columns already in ``events`` to use as covariates as they are (numbers; text is
        parsed, e.g. from a project file).

    Returns
    -------
    pandas.DataFrame
        A copy of ``events`` with one float64 column per covariate. ``attrs["covariates"]``
        lists every covariate (earlier ones first); ``attrs["covariate_notes"]`` says for each
        how it was made (layer file, method, error bound).

    Raises
    ------
    SettingsError
        A covariate name is given twice or clashes with a core column, or a column is missing.
    EventDataError
        A column holds text that is not a number, or a layer or raster cannot be read.
    """
    import geopandas as gpd

    out = events.copy()
    out.attrs = dict(events.attrs)
    names = list(out.attrs.get("covariates", []))
    notes = dict(out.attrs.get("covariate_notes", {}))
    reserved = {"event_id", "role", "time", "lon", "lat", "source_id"}

    def claim(name: str) -> None:
        if name in reserved:
            raise SettingsError(f"covariate name {name!r} is a core column of the event table")
        if name in names:
            raise SettingsError(f"covariate {name!r} is given twice")
        names.append(name)

    lon = out["lon"].to_numpy(dtype=float)
    lat = out["lat"].to_numpy(dtype=float)
    for name, layer in (layers or {}).items():
        claim(name)
        parts = layer if isinstance(layer, list | tuple) else [layer]
        frames = [load_layer(p) if isinstance(p, str | os.PathLike) else p for p in parts]
        pooled = gpd.GeoDataFrame(geometry=pd.concat([to_wgs84(f.geometry) for f in frames],
                                                     ignore_index=True), crs=4326)
        out[name], bound = distance_to_layer(lon, lat, pooled, return_bound=True)
        sources = [f.attrs.get("source", "<GeoDataFrame>") + (f" where {f.attrs['where']}"
                                                             if f.attrs.get("where") else "")
                   for f in frames]
        notes[name] = (f"distance to the nearest of {counted(len(pooled), 'feature')} of "
                       f"{' + '.join(sources)}, km (azimuthal equidistant projection centred "
                       f"on the events; overstated by at most {100 * bound:.2f}%)")
    for name, path in (rasters or {}).items():
        claim(name)
        out[name] = sample_raster(path, lon, lat)
        notes[name] = f"value of the raster {os.fspath(path)} under each event"
    for name in columns:
        if name not in out.columns:
            raise SettingsError(f"covariate column {name!r} is not in the table (columns: "
                                f"{', '.join(map(str, out.columns))})")
        claim(name)
        column = out[name]
        if not pd.api.types.is_numeric_dtype(column):
            column = pd.Series(parse_numbers(column.astype("str"), name=name,
                                             path=out.attrs.get("source"), what="covariate"))
        out[name] = column.to_numpy(dtype=float)
        notes[name] = "taken as given in the input file"
    out.attrs["covariates"] = names
    out.attrs["covariate_notes"] = notes
    return out
