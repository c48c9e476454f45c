"""Project files as treatment and control events: QIPs, aid projects, or a simulated placement.

Sauter (2022) takes MINUSMA's Quick Impact Projects (QIPs, from the UN Peace and Security Data
Hub) as treatments and other aid projects (IATI d-portal with the OECD CRS) as controls; each
project is one event at its **start date** and **point location**. :func:`read_projects` reads
either kind from a CSV (or Parquet, or a vector file of points), finding the columns by their
usual names (:data:`QIP_COLUMNS`, :data:`AID_COLUMNS`) unless a mapping is given, and keeps the
budget and the activity type as attributes (the paper's Table 1).

A project with several locations is one event per location: either one row per location, or
an IATI-style ``point`` column holding ``"lat lon"`` positions separated by ``;`` or ``|``.

When a user has no QIP or no aid file, the study places projects by simulation
(:func:`bayes_wake.simulate.placements.simulate_project_placement`, in the same columns with
``simulated = True``), and every output of the Sauter workflow says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.tables import (
    check_coordinates,
    find_column,
    missing_mask,
    parse_dates,
    parse_numbers,
    read_table,
    study_period,
)

__all__ = [
    "AID_COLUMNS",
    "PROJECT_COLUMNS",
    "QIP_COLUMNS",
    "read_projects",
]

_LON = ("longitude", "lon", "lng", "long", "x", "location_longitude")
_LAT = ("latitude", "lat", "y", "location_latitude")

#: Column names tried, in order, for a QIP file (UN Peace and Security Data Hub and the like).
QIP_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("project_id", "qip_id", "project_code", "project_number", "reference", "code",
           "id"),
    "start": ("start_date", "project_start_date", "actual_start_date", "date_start",
              "startdate", "start", "planned_start_date", "approval_date", "date"),
    "lon": _LON,
    "lat": _LAT,
    "point": ("location_point_pos", "point_pos", "pos", "point", "coordinates"),
    "budget": ("budget_usd", "budget", "amount_usd", "amount", "funding", "total_budget",
               "approved_budget", "cost", "value_usd", "value"),
    "activity_type": ("activity_type", "type_of_activity", "activity", "project_type",
                      "category", "sector", "type"),
    "title": ("title", "project_title", "project_name", "name", "description"),
}
#: Column names tried, in order, for an aid file (IATI datastore / d-portal exports, OECD CRS).
AID_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("iati_identifier", "iati_id", "aid", "activity_identifier", "identifier",
           "project_id", "crs_id", "id"),
    "start": ("activity_date_start_actual", "actual_start_date", "start_actual", "day_start",
              "activity_date_start_planned", "planned_start_date", "start_planned",
              "start_date", "start", "date"),
    "lon": _LON,
    "lat": _LAT,
    "point": ("location_point_pos", "location_pos", "point_pos", "pos", "point",
              "coordinates"),
    "budget": ("budget_value_usd", "budget_value", "budget_usd", "budget", "commitment_usd",
               "commitment", "total_commitment", "usd_commitment", "value_usd", "value",
               "amount"),
    "activity_type": ("sector_narrative", "sector_name", "sector", "sector_code",
                      "activity_type", "purpose_name", "aid_type", "category", "type"),
    "title": ("title_narrative", "title", "project_title", "project_name", "name"),
}
#: The keys of a column mapping: our names for what a project file holds.
PROJECT_COLUMNS: tuple[str, ...] = tuple(QIP_COLUMNS)

_KINDS = {"qip": ("QIP file", QIP_COLUMNS), "aid": ("aid file", AID_COLUMNS)}
_OUTPUT = ["project_id", "kind", "time", "lon", "lat", "budget", "activity_type", "title",
           "simulated", "file_row"]


def read_projects(
    path: str | os.PathLike,
    *,
    kind: str = "qip",
    columns: Mapping[str, str] | None = None,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    keep: Sequence[str] = (),
) -> pd.DataFrame:
    """Read a file of projects (QIPs or aid projects) into one row per project location.

    Parameters
    ----------
    path
        CSV (comma, semicolon or tab), Parquet, or a vector file of points.
    kind
        ``"qip"`` (treatments) or ``"aid"`` (controls): picks the default column names
        (:data:`QIP_COLUMNS`, :data:`AID_COLUMNS`) and the words of messages.
    columns
        Our names mapped to the file's columns, overriding the defaults: ``id``, ``start``
        (start date; the event time), ``lon`` and ``lat`` (WGS84 degrees) or ``point`` (IATI's
        ``"lat lon"`` text, several separated by ``;`` or ``|``), ``budget`` (a number,
        currency marks and thousands separators allowed), ``activity_type``, ``title``.
        Only the start date and a location are required.
    start, end
        First and last day of the study period (inclusive); projects starting outside are
        dropped and counted.
    keep
        More columns of the file to carry along unchanged (e.g. covariates such as
        ``pop_density``).

    Returns
    -------
    pandas.DataFrame
        One row per project location, in file order, with columns ``project_id`` (str; the
        id column, else ``"<kind>-<row>"``), ``kind`` (``qip``/``aid``), ``time``
        (``datetime64[ns, UTC]``, midnight of the start date), ``lon``, ``lat`` (float64,
        WGS84 degrees), ``budget`` (float64, the file's currency; US$ in the QIP data),
        ``activity_type``, ``title`` (str), ``simulated`` (bool, False) and ``file_row``
        (int64, 1-based data row), then the ``keep`` columns. ``attrs``: ``source``,
        ``kind``, ``columns`` (the mapping used), ``rows_read`` and ``dropped`` (a list of
        ``{"step", "reason", "events"}`` records: no location, no start date, outside the
        period).

    Raises
    ------
    EventDataError
        Unreadable file; no start-date or location column; a bad date, coordinate, budget or
        point text (naming file, rows and column).
    SettingsError
        Unknown ``kind`` or mapping key.
    """
    if kind not in _KINDS:
        raise SettingsError(f"kind must be 'qip' or 'aid', got {kind!r}")
    what, defaults = _KINDS[kind]
    raw = read_table(path, what)
    label = raw.attrs["source"]
    mapping = _resolve_columns(raw, defaults, columns, label, what)
    _check_mapping(raw, mapping, defaults, keep, label, what)
    frame = _one_row_per_location(raw, mapping, kind, keep, label)
    frame, dropped = _drop_unusable(frame, kind, start, end)
    frame.attrs.update({"source": label, "kind": kind, "columns": mapping, "rows_read": len(raw),
                        "dropped": dropped})
    return frame


def _check_mapping(raw: pd.DataFrame, mapping: dict, defaults: Mapping[str, tuple[str, ...]],
                   keep: Sequence[str], label: str, what: str) -> None:
    """A start-date column, a location (lon and lat, or points) and the columns to keep."""
    if mapping.get("start") is None:
        raise EventDataError(f"no start-date column in the {what}; name it with "
                             f"columns={{'start': ...}} (tried: {', '.join(defaults['start'])})",
                             path=label)
    if mapping.get("point") is None and (mapping.get("lon") is None or mapping.get("lat") is None):
        raise EventDataError(f"no location columns in the {what}: need longitude and latitude "
                             "(or an IATI 'lat lon' point column); name them with columns="
                             "{'lon': ..., 'lat': ...}", path=label)
    for name in keep:
        if name not in raw.columns:
            raise SettingsError(f"column {name!r} to keep is not in {label} (columns: "
                                f"{', '.join(raw.columns)})")


def _one_row_per_location(raw: pd.DataFrame, mapping: dict, kind: str, keep: Sequence[str],
                          label: str) -> pd.DataFrame:
    """The projects in our columns, a project with several locations repeated per location
    (a project without one kept once, with NaN coordinates)."""
    n = len(raw)
    rows = np.arange(1, n + 1, dtype=np.int64)
    time = parse_dates(raw[mapping["start"]], name=mapping["start"], path=label)
    lon_lists, lat_lists = _locations(raw, mapping, label)
    budget = _budgets(raw, mapping, label)

    def text(key: str) -> pd.Series:
        name = mapping.get(key)
        if name is None:
            return pd.Series(pd.array([None] * n, dtype="str"))
        values = raw[name].astype("str").str.strip()
        return values.where(~missing_mask(values), None)

    ids = text("id")
    ids = ids.where(ids.notna(), pd.Series([f"{kind}-{r}" for r in rows], dtype="str"))
    repeat = np.maximum(np.array([len(v) for v in lon_lists]), 1)
    frame = pd.DataFrame({
        "project_id": np.repeat(ids.to_numpy(dtype=object), repeat),
        "kind": kind,
        "time": np.repeat(time.to_numpy(), repeat),
        "lon": np.concatenate([v if v else [np.nan] for v in lon_lists]),
        "lat": np.concatenate([v if v else [np.nan] for v in lat_lists]),
        "budget": np.repeat(budget, repeat),
        "activity_type": np.repeat(text("activity_type").to_numpy(dtype=object), repeat),
        "title": np.repeat(text("title").to_numpy(dtype=object), repeat),
        "simulated": False,
        "file_row": np.repeat(rows, repeat),
    })
    for name in keep:
        frame[name] = np.repeat(raw[name].to_numpy(dtype=object), repeat)
    frame["time"] = pd.to_datetime(frame["time"], utc=True).dt.as_unit("ns")
    for column in ("project_id", "kind", "activity_type", "title"):
        frame[column] = frame[column].astype("str")
    return frame


def _locations(raw: pd.DataFrame, mapping: dict, label: str) -> tuple[list[list[float]],
                                                                      list[list[float]]]:
    """Per file row, the longitudes and latitudes of its locations (IATI points when the file
    has no lon and lat columns)."""
    if mapping.get("point") is not None and (mapping.get("lon") is None
                                             or mapping.get("lat") is None):
        return _points(raw[mapping["point"]], mapping["point"], label)
    lon = parse_numbers(raw[mapping["lon"]], name=mapping["lon"], path=label, what="longitude")
    lat = parse_numbers(raw[mapping["lat"]], name=mapping["lat"], path=label, what="latitude")
    check_coordinates(lon, lat, lon_name=mapping["lon"], lat_name=mapping["lat"], path=label)
    return ([[x] if np.isfinite(x) else [] for x in lon],
            [[y] if np.isfinite(y) else [] for y in lat])


def _budgets(raw: pd.DataFrame, mapping: dict, label: str) -> np.ndarray:
    """The budget per file row (NaN without a budget column); negative budgets refused."""
    budget = (parse_numbers(raw[mapping["budget"]], name=mapping["budget"], path=label,
                            what="budget", money=True)
              if mapping.get("budget") else np.full(len(raw), np.nan))
    if np.any(budget < 0):
        bad = np.flatnonzero(budget < 0) + 1
        raise EventDataError("negative budget", path=label, rows=list(bad),
                             column=mapping["budget"])
    return budget


def _drop_unusable(frame: pd.DataFrame, kind: str, start, end) -> tuple[pd.DataFrame,
                                                                        list[dict]]:
    """The projects with a location and a start date inside the study period, and the drop
    records."""
    step = "QIPs" if kind == "qip" else "aid projects"
    dropped = []
    no_place = (frame["lon"].isna() | frame["lat"].isna()).to_numpy()
    dropped.append({"step": step, "reason": "no location (not geocoded)",
                    "events": int(no_place.sum())})
    no_date = frame["time"].isna().to_numpy() & ~no_place
    dropped.append({"step": step, "reason": "no start date", "events": int(no_date.sum())})
    frame = frame[~no_place & ~no_date]
    first_day, last_day = study_period(start, end)
    if first_day is not None:
        before = (frame["time"] < first_day).to_numpy()
        dropped.append({"step": step, "reason": f"started before the study period "
                                                f"({first_day.date()})",
                        "events": int(before.sum())})
        frame = frame[~before]
    if last_day is not None:
        after = (frame["time"] > last_day).to_numpy()
        dropped.append({"step": step, "reason": f"started after the study period "
                                                f"({last_day.date()})",
                        "events": int(after.sum())})
        frame = frame[~after]
    return frame.reset_index(drop=True), dropped


def _resolve_columns(raw: pd.DataFrame, defaults: Mapping[str, tuple[str, ...]],
                     columns: Mapping[str, str] | None, label: str,
                     what: str) -> dict[str, str | None]:
    columns = dict(columns or {})
    unknown = [key for key in columns if key not in defaults]
    if unknown:
        raise SettingsError(f"unknown key {unknown[0]!r} in the column mapping of the {what}; "
                            f"the keys are {', '.join(defaults)}")
    mapping: dict[str, str | None] = {}
    for key, candidates in defaults.items():
        if key in columns:
            name = columns[key]
            if name not in raw.columns:
                found = find_column(raw, [name])
                if found is None:
                    raise EventDataError(f"no column {name!r} (mapped to {key!r}) in the "
                                         f"{what} (columns: {', '.join(raw.columns)})",
                                         path=label, column=name)
                name = found
            mapping[key] = name
        else:
            mapping[key] = find_column(raw, candidates)
    if "lon" in columns or "lat" in columns:
        mapping["point"] = columns.get("point")
    return mapping


_NUMBER = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_POS_RE = re.compile(rf"^\s*({_NUMBER})\s*[,\s]\s*({_NUMBER})\s*$")


def _points(column: pd.Series, name: str, path: str) -> tuple[list[list[float]],
                                                               list[list[float]]]:
    """IATI positions: ``"lat lon"`` (GML pos order), several separated by ``;`` or ``|``."""
    lons: list[list[float]] = []
    lats: list[list[float]] = []
    missing = missing_mask(column)
    bad_rows = []
    for i, (value, absent) in enumerate(zip(column.tolist(), missing, strict=True)):
        if absent:
            lons.append([])
            lats.append([])
            continue
        row_lon, row_lat = [], []
        for part in re.split(r"[;|]", str(value)):
            if not part.strip():
                continue
            match = _POS_RE.match(part)
            if match is None:
                bad_rows.append(i)
                break
            lat, lon = float(match.group(1)), float(match.group(2))
            if abs(lat) > 90 or abs(lon) > 180:
                bad_rows.append(i)
                break
            row_lat.append(lat)
            row_lon.append(lon)
        lons.append(row_lon)
        lats.append(row_lat)
    if bad_rows:
        shown = ", ".join(repr(column.iloc[i]) for i in bad_rows[:3])
        raise EventDataError(f"cannot read the point {shown}: expected 'lat lon' in WGS84 "
                             "degrees (IATI's pos order), several separated by ';'",
                             path=path, rows=[i + 1 for i in bad_rows], column=name)
    return lons, lats
