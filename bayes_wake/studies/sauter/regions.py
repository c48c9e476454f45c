"""The study area: admin-1 regions from a boundary file, names normalised, events assigned.

Sauter (2022) keeps the regions "affected by violence": Ségou, Mopti, Tombouctou (Timbuktu),
Gao and Kidal, plus Ménaka, which became a region of its own in 2016 (ACLED 2017-2020 codes it
separately, the OCHA COD 2015 boundaries still hold it inside Gao). Region names arrive in
French or English, with or without accents (``Ségou``/``Segou``, ``Tombouctou``/``Timbuktu``,
``Koulikoro``/``Koulikouro``); :func:`normalise_region_name` maps them all to one spelling,
ACLED's (ASCII French). Events are assigned to the region polygon that contains them; points a
little outside every polygon (border towns, coarse boundaries) are given the nearest region
when they lie within ``snap_km`` of it. A :class:`StudyArea` (the boundaries and the regions
kept) is the area a simulated project placement fills.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.tables import header_key, to_wgs84

__all__ = [
    "MALI_REGIONS",
    "STUDY_REGIONS",
    "StudyArea",
    "assign_regions",
    "filter_to_regions",
    "load_regions",
    "normalise_region_name",
]

#: Mali's admin-1 regions (2016 and later), as ACLED spells them.
MALI_REGIONS: tuple[str, ...] = ("Bamako", "Gao", "Kayes", "Kidal", "Koulikoro", "Menaka",
                                 "Mopti", "Segou", "Sikasso", "Taoudenit", "Tombouctou")
#: The study regions of Sauter (2022), Ménaka included (split from Gao in 2016).
STUDY_REGIONS: tuple[str, ...] = ("Segou", "Mopti", "Tombouctou", "Gao", "Kidal", "Menaka")

# header_key spellings -> canonical name (English, French, common misspellings)
_ALIASES: dict[str, str] = {
    "bamako": "Bamako", "district_de_bamako": "Bamako", "bamako_district": "Bamako",
    "gao": "Gao",
    "kayes": "Kayes",
    "kidal": "Kidal",
    "koulikoro": "Koulikoro", "koulikouro": "Koulikoro",
    "menaka": "Menaka", "minaka": "Menaka",
    "mopti": "Mopti",
    "segou": "Segou", "segu": "Segou",
    "sikasso": "Sikasso",
    "taoudenit": "Taoudenit", "taoudeni": "Taoudenit", "taoudenni": "Taoudenit",
    "tombouctou": "Tombouctou", "timbuktu": "Tombouctou", "tomboctou": "Tombouctou",
    "timbuctoo": "Tombouctou", "tumbutu": "Tombouctou",
}
_PREFIXES = ("region_de_", "region_du_", "region_d_", "region_of_", "region_")
_SUFFIXES = ("_region",)
# A metric CRS for distances to the boundaries: azimuthal equidistant on the centre of Mali
# (distances from any point within ~1,000 km of the centre are within 0.4% of the geodesic).
_MALI_AEQD = "+proj=aeqd +lat_0=17 +lon_0=-4 +datum=WGS84 +units=m +no_defs"


def normalise_region_name(name: str) -> str:
    """Mali's admin-1 name in one spelling, whatever language, case or accents.

    Parameters
    ----------
    name
        A region name, e.g. ``"Ségou"``, ``"TIMBUKTU"``, ``"Région de Mopti"``,
        ``"Koulikouro"``.

    Returns
    -------
    str
        The canonical (ACLED) spelling, e.g. ``"Segou"``, ``"Tombouctou"``, ``"Mopti"``,
        ``"Koulikoro"``; a name that is not a Malian region comes back in ASCII, title case.

    Examples
    --------
    >>> normalise_region_name("Ménaka"), normalise_region_name("Timbuktu")
    ('Menaka', 'Tombouctou')
    """
    key = header_key(name)
    for prefix in _PREFIXES:
        if key.startswith(prefix) and key[len(prefix):] in _ALIASES:
            key = key[len(prefix):]
    for suffix in _SUFFIXES:
        if key.endswith(suffix) and key[: -len(suffix)] in _ALIASES:
            key = key[: -len(suffix)]
    if key in _ALIASES:
        return _ALIASES[key]
    return " ".join(part.capitalize() for part in key.split("_")) if key else str(name)


def load_regions(
    path: str | os.PathLike,
    *,
    name_column: str | None = None,
    merge_menaka: bool = False,
    layer: str | None = None,
):
    """Read admin-1 polygons and normalise their names.

    Parameters
    ----------
    path
        A vector file of polygons (GeoJSON, GeoPackage, Shapefile), in any CRS.
    name_column
        The column holding the region names. By default, the text column whose values
        are most often Malian region names (e.g. ``admin1Name``, ``admin1_2017``, ``ADM1_FR``).
    merge_menaka
        Merge a Ménaka polygon into Gao (Gao as it was before 2016). A file without Ménaka is
        used as it is: Ménaka then lies inside Gao.
    layer
        The layer of a multi-layer file.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per region, sorted by name, EPSG:4326, with columns ``region`` (canonical
        name), ``name_in_file`` (the file's spellings, joined by ``;``) and ``geometry``.
        ``attrs``: ``source``, ``name_column``, ``has_menaka`` (bool).

    Raises
    ------
    EventDataError
        Missing or unreadable file, no polygons, no column of region names, or a named
        column that does not exist.
    """
    import geopandas as gpd

    label = os.fspath(path)
    if not os.path.exists(label):
        raise EventDataError("boundary file not found", path=label)
    try:
        frame = gpd.read_file(label, layer=layer)
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EventDataError(f"cannot read the boundary file: {first}", path=label) from None
    if len(frame) == 0:
        raise EventDataError("the boundary file has no features", path=label)
    if not isinstance(frame, gpd.GeoDataFrame):  # e.g. a CSV: a table, no shapes
        raise EventDataError("the boundary file must hold polygons, and this one holds no "
                             "geometry (a table, such as a CSV of points?); give the regions "
                             "as a GeoJSON, GeoPackage or Shapefile", path=label)
    kinds = set(frame.geom_type.dropna())
    if not kinds or not kinds <= {"Polygon", "MultiPolygon"}:
        raise EventDataError(f"the boundary file must hold polygons, found "
                             f"{', '.join(sorted(kinds)) or 'no geometry'}", path=label)
    frame = to_wgs84(frame)
    column = _name_column(frame, name_column, label)
    names = frame[column].astype("str")
    if names.isna().any():
        rows = list(np.flatnonzero(names.isna().to_numpy()) + 1)
        raise EventDataError("region without a name", path=label, rows=rows, column=column)
    frame = gpd.GeoDataFrame({"region": [normalise_region_name(n) for n in names],
                              "name_in_file": names.to_numpy()},
                             geometry=frame.geometry.make_valid().to_numpy(), crs=4326)
    has_menaka = bool((frame["region"] == "Menaka").any())
    if merge_menaka and has_menaka:
        frame.loc[frame["region"] == "Menaka", "region"] = "Gao"
    regions = frame.dissolve(by="region", aggfunc={"name_in_file": lambda s: ";".join(
        dict.fromkeys(s))}, as_index=False)
    regions = regions[["region", "name_in_file", "geometry"]].sort_values("region")
    regions = regions.reset_index(drop=True)
    regions.attrs.update({"source": label, "name_column": column,
                          "has_menaka": has_menaka and not merge_menaka})
    return regions


def _name_column(frame, name_column: str | None, label: str) -> str:
    if name_column is not None:
        if name_column not in frame.columns:
            raise EventDataError(f"no column {name_column!r} in the boundary file (columns: "
                                 f"{', '.join(c for c in frame.columns if c != 'geometry')})",
                                 path=label, column=name_column)
        return name_column
    best, best_hits = None, 0
    for column in frame.columns:
        if column == frame.geometry.name:
            continue
        values = frame[column]
        if not (pd.api.types.is_string_dtype(values) or values.dtype == object):
            continue
        hits = sum(normalise_region_name(v) in MALI_REGIONS for v in values.dropna()
                   if isinstance(v, str))
        if hits > best_hits:
            best, best_hits = column, hits
    if best is None:
        raise EventDataError("no column of Malian admin-1 names in the boundary file; pass "
                             "name_column=", path=label)
    return best


def assign_regions(
    lon: np.ndarray,
    lat: np.ndarray,
    regions,
    *,
    snap_km: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The region of each point.

    Parameters
    ----------
    lon, lat
        WGS84 degrees.
    regions
        From :func:`load_regions`.
    snap_km
        A point inside no polygon gets the nearest region if it lies within this distance
        (km, measured in an azimuthal equidistant projection centred on Mali); 0 switches
        snapping off.

    Returns
    -------
    names : numpy.ndarray
        Canonical region names (object array), ``None`` for points in no region.
    snapped : numpy.ndarray
        Boolean: the point lay outside every polygon and was given the nearest region.
    """
    import shapely

    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    points = shapely.points(lon, lat)
    geoms = regions.geometry.to_numpy()
    names = np.full(len(lon), None, dtype=object)
    tree = shapely.STRtree(geoms)
    point_idx, region_idx = tree.query(points, predicate="intersects")
    # a point on a shared border intersects two regions: the first one (by name) wins
    order = np.lexsort((region_idx, point_idx))
    point_idx, region_idx = point_idx[order], region_idx[order]
    first = np.unique(point_idx, return_index=True)[1]
    names[point_idx[first]] = regions["region"].to_numpy()[region_idx[first]]
    snapped = np.zeros(len(lon), dtype=bool)
    outside = np.flatnonzero(pd.isna(names))
    if snap_km > 0 and outside.size:
        metric = regions.to_crs(_MALI_AEQD)
        import geopandas as gpd

        far = gpd.GeoSeries(points[outside], crs=4326).to_crs(_MALI_AEQD).to_numpy()
        near_tree = shapely.STRtree(metric.geometry.to_numpy())
        (src, dst), dist = near_tree.query_nearest(far, return_distance=True, all_matches=False)
        close = dist <= snap_km * 1000.0
        names[outside[src[close]]] = metric["region"].to_numpy()[dst[close]]
        snapped[outside[src[close]]] = True
    return names, snapped


def filter_to_regions(
    frame: pd.DataFrame,
    regions,
    keep: Sequence[str] = STUDY_REGIONS,
    *,
    snap_km: float = 10.0,
    step: str = "events",
) -> tuple[pd.DataFrame, list[dict]]:
    """Keep the rows of a table (columns ``lon``, ``lat``) that lie in the chosen regions.

    Parameters
    ----------
    frame
        Any table with ``lon``/``lat`` in WGS84 degrees.
    regions
        From :func:`load_regions`.
    keep
        Region names in any spelling (see :func:`normalise_region_name`). ``Menaka`` asked
        of a boundary file without Ménaka (or with ``merge_menaka``) is satisfied by Gao,
        which then holds it.
    snap_km
        See :func:`assign_regions`.
    step
        Name of the table in the drop records (``"ACLED"``, ``"QIPs"``).

    Returns
    -------
    kept : pandas.DataFrame
        The rows inside the chosen regions, in their order, with a new column ``region``.
        ``attrs`` are kept.
    dropped : list of dict
        ``{"step", "reason", "events"}`` records: rows in other regions, rows outside every
        region, and rows given the nearest region by snapping (kept; counted for the record).

    Raises
    ------
    SettingsError
        ``keep`` names a region that is not in the boundary file.
    """
    wanted = resolve_regions(keep, regions)
    names, snapped = assign_regions(frame["lon"].to_numpy(), frame["lat"].to_numpy(), regions,
                                    snap_km=snap_km)
    inside_any = ~pd.isna(names)
    inside = np.isin(names.astype(str), list(wanted)) & inside_any
    kept = frame[inside].copy()
    kept["region"] = pd.array(names[inside].astype(str), dtype="str")
    kept.attrs = dict(frame.attrs)
    dropped = [
        {"step": step, "reason": "in another admin-1 region (outside the study area)",
         "events": int((inside_any & ~inside).sum())},
        {"step": step, "reason": f"outside every region of the boundary file (more than "
                                 f"{snap_km:g} km away)", "events": int((~inside_any).sum())},
    ]
    if snapped.any():
        dropped.append({"step": step, "reason": f"not dropped: just outside the boundaries, "
                                                f"given the nearest region (within {snap_km:g} "
                                                "km)", "events": int((snapped & inside).sum())})
    return kept.reset_index(drop=True), dropped


def resolve_regions(keep: Sequence[str], regions) -> tuple[str, ...]:
    """Canonical names of the requested regions as they exist in ``regions``.

    ``Menaka`` asked of a file without it resolves to ``Gao`` (which then holds it).

    Raises
    ------
    SettingsError
        A requested region is not in the file (and is not Ménaka with Gao present).
    """
    if isinstance(keep, str):
        keep = [part for part in keep.split(",") if part.strip()]
    present = set(regions["region"])
    out: list[str] = []
    for name in keep:
        canonical = normalise_region_name(name)
        if canonical in present:
            out.append(canonical)
        elif canonical == "Menaka" and "Gao" in present:
            out.append("Gao")
        else:
            raise SettingsError(f"region {name!r} is not in the boundary file "
                                f"{regions.attrs.get('source', '')} (its regions: "
                                f"{', '.join(sorted(present))})")
    if not out:
        raise SettingsError("no study regions given")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class StudyArea:
    """The study regions of a boundary file: the :class:`~bayes_wake.simulate.placements.Area`
    a simulated project placement fills.

    Attributes
    ----------
    boundary
        Admin-1 regions (:func:`load_regions`).
    names
        The regions kept, any spelling (:func:`resolve_regions`).
    """

    boundary: object
    names: tuple[str, ...] = STUDY_REGIONS

    def inside(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``frame`` inside the regions (no snapping), with their ``region``."""
        kept, _ = filter_to_regions(frame, self.boundary, self.names, snap_km=0.0,
                                    step="simulated")
        return kept
