"""Reading and validating event files into the event table.

The event table is the one input of the wake counter (see ``docs/ARCHITECTURE.md``): one row
per event in input order, with columns ``event_id``, ``role``, ``time`` (UTC), ``lon``, ``lat``
(WGS84 degrees) and one float64 column per covariate. Every problem in a file is raised as an
:class:`~bayes_wake.errors.EventDataError` that names the file, the 1-based data rows (the header
is not counted) and the column, so a user can fix the file without reading a traceback.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bayes_wake.errors import (
    DuplicateRowsWarning,
    EventDataError,
    NoDependentEventsWarning,
    SettingsError,
)
from bayes_wake.io.tables import (
    NUMBER_PATTERN,
    LoadedTable,
    check_coordinates,
    coarse_dates,
    load_table,
    missing_mask,
    number_cells,
    one_line,
    parse_numbers,
    show_values,
    table_from_frame,
    to_wgs84,
)

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_ROLES",
    "ROLES",
    "SUPPORTED_SUFFIXES",
    "duplicate_rows_message",
    "read_events",
    "summarise_events",
]

#: The roles a selector can assign; rows matching none of them get the role ``"other"``.
ROLES: tuple[str, ...] = ("treatment", "control", "dependent")
OTHER = "other"

#: Our column names mapped to the file's column names in R's ``mwa`` layout.
DEFAULT_COLUMNS: Mapping[str, str] = {
    "time": "timestamp",
    "lon": "lon",
    "lat": "lat",
    "type": "type",
}

#: R's ``treatment = c("type", "treatment")`` and its siblings.
DEFAULT_ROLES: Mapping[str, tuple[str, str]] = {
    "treatment": ("type", "treatment"),
    "control": ("type", "control"),
    "dependent": ("type", "dependent"),
}

#: File suffixes :func:`read_events` knows how to read.
SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv.gz", ".csv", ".parquet", ".gpkg", ".geojson",
                                       ".json")

_MAPPABLE = ("time", "lon", "lat", "id", "type")
_OUTPUT_COLUMNS = ("event_id", "role", "time", "lon", "lat", "source_id")
_IN_MEMORY = "<DataFrame>"

_INTEGER_RE = r"[+-]?\d+"
_UNNAMED_RE = re.compile(r"^Unnamed: \d+(?:_level_\d+)?$")

_NS_MIN = pd.Timestamp.min.tz_localize("UTC")
_NS_MAX = pd.Timestamp.max.tz_localize("UTC")
_TIME_FORMATS = "'YYYY-MM-DD hh:mm:ss', 'YYYY-MM-DD' or ISO 8601"
# A time zone at the end of a timestamp: an offset or Z after the clock time, or a zone name
# (R's format(x, usetz = TRUE) writes "2020-01-01 UTC" or "2020-01-01 10:00:00 UTC").
_ZONE_RE = (
    r"(?:\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)|\s(?:UTC|GMT))$"
)


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def read_events(
    source: str | os.PathLike[str] | pd.DataFrame,
    *,
    columns: Mapping[str, str] | None = None,
    roles: Mapping[str, tuple[str, Any]] | None = None,
    covariates: Sequence[str] | None = None,
    area: tuple[float, float, float, float] | None = None,
    layer: str | None = None,
    drop_duplicates: bool = False,
    labels: Sequence[str] = (),
    keep: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read an event file and validate it into the event table.

    Parameters
    ----------
    source
        Path to a CSV (``.csv``, ``.csv.gz``), Parquet (``.parquet``), GeoPackage (``.gpkg``) or
        GeoJSON (``.geojson``, ``.json``) file, or an in-memory ``pandas.DataFrame`` /
        ``geopandas.GeoDataFrame`` (then errors name the source ``"<DataFrame>"`` and rows are
        1-based positions in the frame, not index labels). CSV is read by
        :func:`bayes_wake.io.tables.read_csv_text`, as every CSV input: comma, semicolon or
        tab separated, UTF-8 (with or without a byte-order mark), else Windows-1252 with a
        warning naming the first byte that is not UTF-8.
    columns
        Our column names mapped to the file's: keys among ``"time"``, ``"lon"``, ``"lat"``,
        ``"id"`` and ``"type"``. Unmapped keys keep R's ``mwa`` layout: ``time`` is
        ``"timestamp"``, ``lon`` is ``"lon"``, ``lat`` is ``"lat"``, ``type`` is ``"type"``
        (the column the default role selectors look at), and there is no id column. For
        GeoPackage, GeoJSON and GeoDataFrame sources the coordinates come from the Point
        geometry unless ``lon`` or ``lat`` is mapped; geometry in another CRS is reprojected to
        EPSG:4326, and geometry without a CRS is taken as WGS84 longitude/latitude.
    roles
        Role selectors, R's ``treatment = c("type", "treatment")``: a mapping from each of
        ``"treatment"``, ``"control"`` and ``"dependent"`` to a ``(column, value)`` pair, the
        column named as in the file. Values
        are compared as text, and numerically when both sides are numbers, so ``("kind", 1)``
        matches an integer column. Rows matching no selector get the role ``"other"`` and are
        kept (in R they still bound the record). With the default selectors
        (:data:`DEFAULT_ROLES`, on the ``type`` column) every row must be one of the three
        roles, so a typo such as ``treatmnet`` is an error rather than a silent ``other``.
    covariates
        The covariate (matching) columns. By default, every column that is not the time,
        coordinates, id, type, a role selector's column or the geometry. Covariates must be
        numeric; they may be missing for dependent and other events, but not for treatment or
        control events, which are matched on them.
    area
        ``(lon_min, lat_min, lon_max, lat_max)`` in WGS84 degrees; events outside it are an
        error. ``lon_min > lon_max`` means an area across the antimeridian.
    layer
        The layer of a GeoPackage with more than one layer.
    drop_duplicates
        Exact duplicate rows (every column, and the geometry, equal to an earlier row's) are
        always reported with a :class:`~bayes_wake.errors.DuplicateRowsWarning` naming them.
        They are kept by default, as ACLED-like data can hold distinct events with the same
        place and date; True drops every repeat and keeps the first occurrence.
    labels
        Columns of group labels (text or numbers, e.g. admin2 names or site ids) that
        cluster-robust standard errors group on: each becomes a float64 column of codes
        0, 1, ... in order of first appearance, listed with the covariates so that the wake
        cube carries it. Required for treatment and control events. A label column that is
        also a covariate stays the covariate.
    keep
        Columns carried into the table as the file holds them (object values, not validated,
        not covariates, so the wake cube ignores them), e.g. the region names of a
        leave-one-region-out check: our name mapped to the file's column. Our names must
        differ from the table's other columns (a file's column can be both a label and
        kept, under two names).

    Returns
    -------
    pandas.DataFrame
        The event table in input order with a fresh ``RangeIndex`` and columns

        - ``event_id`` (int64): the id column's values when an ``id`` column is mapped and
          integer-like, else 1..n in file order;
        - ``role`` (str): ``treatment``, ``control``, ``dependent`` or ``other``;
        - ``time`` (``datetime64[ns, UTC]``): text without an offset is read as UTC;
        - ``lon``, ``lat`` (float64, WGS84 degrees): values from a CSV come back bit-exact;
        - one float64 column per covariate, in file order (or the order of ``covariates``),
          then one per label column not among them (codes);
        - one object column per ``keep`` entry, under our name;
        - ``source_id`` (str), last, only when the mapped id column is not integer-like.

        ``attrs["source"]`` is the path as given (or ``"<DataFrame>"``),
        ``attrs["covariates"]`` the list of covariate names, ``attrs["duplicate_rows"]`` the
        1-based data rows that repeat an earlier row exactly (a tuple, empty when there are
        none) and ``attrs["duplicates_dropped"]`` whether they were dropped. Event ids made
        from row order (no id column) count the rows that are kept.

    Raises
    ------
    EventDataError
        The file is missing, empty, of an unknown type or unreadable, or its content is not a
        valid event table (missing columns, unknown roles, bad or missing times, dates given
        only to the year or the month, times with and without a UTC offset in one column,
        non-finite coordinates, bad or missing covariates or a covariate name with ``/``,
        duplicate ids, events outside ``area``, no treatment or no control events, a kept
        column not in the file).
    SettingsError
        ``columns``, ``roles``, ``covariates`` or ``area`` themselves are malformed, or a
        name of ``keep`` is taken by another column of the table.
    """
    names = _resolve_columns(columns)
    selectors, default_roles = _resolve_roles(roles, names)
    box = _resolve_area(area)
    covariates = _check_covariate_names(covariates)
    loaded = _load(source, layer)
    frame, label = loaded.frame, loaded.label
    repeats = _duplicate_rows(loaded)

    def fail(problem: str, rows: Any = None, column: str | None = None) -> EventDataError:
        return EventDataError(problem, path=label, rows=_row_numbers(rows), column=column)

    user_mapped = set(columns or {})
    use_geometry = loaded.geometry is not None and not ({"lon", "lat"} & user_mapped)
    _check_required(frame, names, user_mapped, default_roles, selectors, use_geometry,
                    [*(covariates or ()), *labels], fail)
    cov_names = _choose_covariates(frame, names, selectors, use_geometry, covariates, fail)
    label_names = [str(c) for c in dict.fromkeys(labels) if c not in cov_names]

    role = _assign_roles(frame, selectors, default_roles, fail)
    time = _parse_time(frame[names["time"]], names["time"], fail)
    lon, lat = _coordinates(loaded, names, use_geometry, fail)
    if box is not None:
        _check_area(lon, lat, box, fail)
    kept_rows = ~repeats if drop_duplicates else np.ones(len(frame), dtype=bool)
    event_id, source_id = _event_ids(frame, names.get("id"), kept_rows, repeats, fail)
    out = pd.DataFrame({"event_id": event_id, "role": pd.array(role, dtype="str"),
                        "time": time, "lon": lon, "lat": lat})
    needs_values = np.isin(role, ("treatment", "control"))
    for name in cov_names:
        if name in out.columns:
            # a covariate that is the lon or lat column itself: already there, validated
            continue
        out[name] = _covariate(frame[name], name, label, needs_values, fail)
    for name in label_names:
        out[name] = _label_codes(frame[name], name, needs_values, fail)
    for ours, theirs in (keep or {}).items():
        out[ours] = _kept_column(frame, ours, theirs, [*out.columns, "source_id"], fail)
    if source_id is not None:
        out["source_id"] = pd.array(source_id, dtype="str")
    rows = tuple(_row_numbers(repeats) or ())
    if rows:
        warnings.warn(duplicate_rows_message(label, rows, drop_duplicates),
                      DuplicateRowsWarning, stacklevel=2)
    if drop_duplicates and rows:
        out = out[kept_rows].reset_index(drop=True)
    out.attrs.update(source=label, covariates=[*cov_names, *label_names], duplicate_rows=rows,
                     duplicates_dropped=bool(drop_duplicates and rows))
    return out


def _check_covariate_names(covariates: Sequence[str] | None) -> list[str] | None:
    """``covariates`` as a list of names (None stays None: every eligible column).

    Raises
    ------
    SettingsError
        For a single string or a name given twice.
    """
    if covariates is None:
        return None
    if isinstance(covariates, str):
        raise SettingsError(
            f"covariates must be a list of column names, not the string {covariates!r}"
        )
    covariates = [str(c) for c in covariates]
    if len(set(covariates)) != len(covariates):
        raise SettingsError(f"covariates names a column twice: {covariates}")
    return covariates


def _coordinates(loaded: LoadedTable, names: Mapping[str, str], use_geometry: bool,
                 fail: Any) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of every row, from the Point geometry or the mapped columns,
    checked to be finite and in range."""
    frame, label = loaded.frame, loaded.label
    if use_geometry:
        lon, lat = _geometry_coordinates(loaded, fail)
        lon_col = lat_col = loaded.geometry_column
    else:
        lon_col, lat_col = names["lon"], names["lat"]
        lon = parse_numbers(frame[lon_col], name=lon_col, path=label, what="longitude",
                            required=True)
        lat = parse_numbers(frame[lat_col], name=lat_col, path=label, what="latitude",
                            required=True)
    check_coordinates(lon, lat, lon_name=lon_col, lat_name=lat_col, path=label)
    return lon, lat


def duplicate_rows_message(label: str, rows: Sequence[int], dropped: bool) -> str:
    """The one-line report of exact duplicate rows (1-based data rows that repeat an earlier
    row), as :func:`read_events` warns it."""
    shown = ", ".join(str(r) for r in rows[:10])
    more = f" and {len(rows) - 10:,} more" if len(rows) > 10 else ""
    if len(rows) == 1:
        what = f"1 exact duplicate row (row {shown} repeats an earlier row)"
    else:
        what = f"{len(rows):,} exact duplicate rows (rows {shown}{more} repeat earlier rows)"
    if dropped:
        return f"{label}: {what}; dropped, the first occurrence of each kept"
    return (f"{label}: {what}; kept (distinct events can share place and date); drop them "
            "with drop_duplicates=True")


def summarise_events(events: pd.DataFrame) -> pd.DataFrame:
    """Count events by role, with the time span of each role.

    Parameters
    ----------
    events
        An event table from :func:`read_events`.

    Returns
    -------
    pandas.DataFrame
        One row per role (``treatment``, ``control``, ``dependent`` always; ``other`` only when
        present) and a last row ``all``, with columns ``role`` (str), ``events`` (int64, count),
        ``first`` and ``last`` (UTC times of the earliest and latest event; NaT when there are
        none) and ``span_days`` (float64, days from ``first`` to ``last``).
    """
    present = set(events["role"].unique())
    order = [*ROLES, *([OTHER] if OTHER in present else [])]
    rows = []
    for name in [*order, "all"]:
        times = events["time"] if name == "all" else events.loc[events["role"] == name, "time"]
        first, last = (times.min(), times.max()) if len(times) else (pd.NaT, pd.NaT)
        span = (last - first) / pd.Timedelta(days=1) if len(times) else np.nan
        rows.append((name, len(times), first, last, span))
    out = pd.DataFrame(rows, columns=["role", "events", "first", "last", "span_days"])
    out["role"] = out["role"].astype("str")
    out["events"] = out["events"].astype("int64")
    out["first"] = pd.to_datetime(out["first"], utc=True).dt.as_unit("ns")
    out["last"] = pd.to_datetime(out["last"], utc=True).dt.as_unit("ns")
    out["span_days"] = out["span_days"].astype("float64")
    return out


# ---------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------


def _resolve_columns(columns: Mapping[str, str] | None) -> dict[str, str]:
    names = dict(DEFAULT_COLUMNS)
    if columns is None:
        return names
    if not isinstance(columns, Mapping):
        raise SettingsError(f"columns must be a mapping like {{'time': 'date'}}, got {columns!r}")
    for key, value in columns.items():
        if key not in _MAPPABLE:
            raise SettingsError(
                f"unknown key {key!r} in columns; the keys are our names "
                f"{', '.join(repr(k) for k in _MAPPABLE)}, the values the file's column names"
            )
        if not isinstance(value, str) or not value:
            raise SettingsError(f"columns[{key!r}] must be a column name, got {value!r}")
        names[key] = value
    mapped = [names[k] for k in _MAPPABLE if k in names]
    twice = sorted({c for c in mapped if mapped.count(c) > 1})
    if twice:
        raise SettingsError(f"columns maps two of our names to the same column: {twice}")
    return names


def _resolve_roles(
    roles: Mapping[str, tuple[str, Any]] | None, names: Mapping[str, str]
) -> tuple[dict[str, tuple[str, Any]], bool]:
    if roles is None:
        type_column = names["type"]
        return {role: (type_column, value) for role, (_, value) in DEFAULT_ROLES.items()}, True
    if not isinstance(roles, Mapping):
        raise SettingsError(
            f"roles must be a mapping like {{'treatment': ('type', 'treatment')}}, got {roles!r}"
        )
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise SettingsError(
            f"unknown role {unknown[0]!r} in roles; the roles are {', '.join(map(repr, ROLES))}"
        )
    missing = [r for r in ROLES if r not in roles]
    if missing:
        raise SettingsError(
            f"roles has no selector for {', '.join(map(repr, missing))}; give a "
            f"(column, value) pair for each of {', '.join(map(repr, ROLES))}"
        )
    selectors: dict[str, tuple[str, Any]] = {}
    for role in ROLES:
        pair = roles[role]
        if isinstance(pair, str) or not isinstance(pair, Sequence) or len(pair) != 2:
            raise SettingsError(
                f"roles[{role!r}] must be a (column, value) pair like ('type', {role!r}), "
                f"got {pair!r}"
            )
        column, value = pair
        if not isinstance(column, str) or not column:
            raise SettingsError(f"roles[{role!r}] names no column: {pair!r}")
        if not isinstance(value, str | int | float | bool | np.generic):
            raise SettingsError(
                f"roles[{role!r}] must select a single text or number value, got {value!r}"
            )
        selectors[role] = (column, value)
    return selectors, False


def _resolve_area(
    area: tuple[float, float, float, float] | None,
) -> tuple[float, float, float, float] | None:
    if area is None:
        return None
    try:
        box = tuple(float(v) for v in area)
    except (TypeError, ValueError):
        raise SettingsError(
            f"area must be (lon_min, lat_min, lon_max, lat_max) in degrees, got {area!r}"
        ) from None
    if len(box) != 4 or not all(np.isfinite(box)):
        raise SettingsError(
            f"area must be four finite numbers (lon_min, lat_min, lon_max, lat_max), got {area!r}"
        )
    lon_min, lat_min, lon_max, lat_max = box
    if not (-180 <= lon_min <= 180 and -180 <= lon_max <= 180):
        raise SettingsError(f"area longitudes must lie in [-180, 180], got {area!r}")
    if not (-90 <= lat_min < lat_max <= 90):
        raise SettingsError(
            f"area latitudes must satisfy -90 <= lat_min < lat_max <= 90, got {area!r}"
        )
    if lon_min == lon_max:
        raise SettingsError(f"area has lon_min == lon_max, an empty area: {area!r}")
    return box  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------


def _load(source: Any, layer: str | None) -> LoadedTable:
    if isinstance(source, pd.DataFrame):
        loaded = table_from_frame(source, _IN_MEMORY)
    elif isinstance(source, str | os.PathLike):
        loaded = load_table(source, "event file", suffixes=SUPPORTED_SUFFIXES,
                            missing="pandas", layer=layer)
    else:
        raise SettingsError(
            f"source must be a file path or a pandas DataFrame, got {type(source).__name__}"
        )
    if len(loaded.frame) == 0:
        what = "the DataFrame has no rows" if loaded.label == _IN_MEMORY else "no data rows"
        raise EventDataError(f"no events ({what})", path=loaded.label)
    return loaded


# ---------------------------------------------------------------------------------------------
# structure
# ---------------------------------------------------------------------------------------------


def _duplicate_rows(loaded: LoadedTable) -> np.ndarray:
    """Rows equal in every column (and the geometry) to an earlier row, as a boolean mask."""
    frame = loaded.frame
    if loaded.geometry is not None:
        frame = frame.assign(**{"\0geometry": loaded.geometry.to_wkb().to_numpy()})
    try:
        return frame.duplicated(keep="first").to_numpy(dtype=bool)
    except TypeError:  # unhashable cells (lists in a Parquet column): compare their text
        return frame.astype(str).duplicated(keep="first").to_numpy(dtype=bool)


def _check_required(
    frame: pd.DataFrame,
    names: Mapping[str, str],
    user_mapped: set[str],
    default_roles: bool,
    selectors: Mapping[str, tuple[str, Any]],
    use_geometry: bool,
    covariates: Sequence[str] | None,
    fail: Any,
) -> None:
    wanted: list[tuple[str, str]] = [("time", names["time"])]
    if not use_geometry:
        wanted += [("lon", names["lon"]), ("lat", names["lat"])]
    if "id" in names:
        wanted.append(("id", names["id"]))
    if default_roles:
        wanted.append(("type", names["type"]))
    else:
        wanted += [(role, column) for role, (column, _) in selectors.items()]
    missing: list[str] = []
    hints: list[str] = []
    for ours, theirs in wanted:
        if theirs not in frame.columns and theirs not in missing:
            missing.append(theirs)
            if ours in _MAPPABLE and ours not in user_mapped:
                hints.append(f"'{ours}': '<your column>'")
    for name in covariates or ():
        if name not in frame.columns and name not in missing:
            missing.append(name)
    if not missing:
        return
    have = ", ".join(frame.columns) or "(none)"
    label = "column" if len(missing) == 1 else "columns"
    problem = f"missing {label} {', '.join(map(repr, missing))}; the file has columns: {have}"
    if hints:
        problem += f" (map yours with columns={{{', '.join(hints)}}})"
    raise fail(problem, column=missing[0] if len(missing) == 1 else None)


def _choose_covariates(
    frame: pd.DataFrame,
    names: Mapping[str, str],
    selectors: Mapping[str, tuple[str, Any]],
    use_geometry: bool,
    covariates: Sequence[str] | None,
    fail: Any,
) -> list[str]:
    if covariates is not None:
        chosen = list(covariates)
    else:
        reserved = {names[k] for k in _MAPPABLE if k in names}
        reserved |= {column for column, _ in selectors.values()}
        chosen = [c for c in frame.columns if c not in reserved]
        for position, name in enumerate(frame.columns, start=1):
            if name in chosen and _UNNAMED_RE.match(name):
                # R's write.csv writes row names as a first, unnamed column; taking it as a
                # covariate would match on row numbers.
                raise fail(
                    f"column {position} has no name (row names written by R's write.csv?); "
                    "write the file with row.names = FALSE, or choose the covariates with "
                    "covariates=",
                    column=name,
                )
    # A covariate may be the lon or lat column itself (R can match on them); any other name of
    # an output column would be overwritten.
    same_data = {
        "lon": names["lon"] == "lon" and not use_geometry,
        "lat": names["lat"] == "lat" and not use_geometry,
    }
    for name in chosen:
        if "/" in name:
            raise fail(
                f"covariate name {name!r} contains '/', which the wake cube (netCDF, cube.nc) "
                "cannot store; rename the column",
                column=name,
            )
        if name in _OUTPUT_COLUMNS and not same_data.get(name, False):
            raise fail(
                f"column {name!r} has the name of a column of the event table "
                f"({', '.join(_OUTPUT_COLUMNS)}); rename it, or leave it out with covariates=",
                column=name,
            )
    return chosen


# ---------------------------------------------------------------------------------------------
# roles
# ---------------------------------------------------------------------------------------------


def _assign_roles(
    frame: pd.DataFrame,
    selectors: Mapping[str, tuple[str, Any]],
    default_roles: bool,
    fail: Any,
) -> np.ndarray:
    """The role of every row: the one selector it matches, else ``other`` (an error with the
    default selectors); every role but ``dependent`` must have a row (a warning for it)."""
    masks = {
        role: _selector_mask(frame[column], value) for role, (column, value) in selectors.items()
    }
    _check_one_role_each(masks, selectors, fail)
    role = np.full(len(frame), OTHER, dtype=object)
    for name, mask in masks.items():
        role[mask] = name
    if default_roles and (role == OTHER).any():
        _refuse_unknown_types(frame, selectors["treatment"][0], role == OTHER, fail)
    for name in ROLES:
        if not (role == name).any():
            _no_events_of(name, frame, selectors, fail)
    return role


def _check_one_role_each(masks: Mapping[str, np.ndarray],
                         selectors: Mapping[str, tuple[str, Any]], fail: Any) -> None:
    """Refuse rows that match more than one role selector, naming the selectors."""
    hits = np.sum(np.vstack(list(masks.values())), axis=0)
    if (hits > 1).any():
        rows = np.flatnonzero(hits > 1)
        first = rows[0]
        both = [r for r, m in masks.items() if m[first]]
        described = " and ".join(f"{r} ({_describe(selectors[r])})" for r in both)
        columns = {selectors[r][0] for r in both}
        raise fail(
            f"matches more than one role selector: {described}",
            rows,
            column=next(iter(columns)) if len(columns) == 1 else None,
        )


def _refuse_unknown_types(frame: pd.DataFrame, column: str, unmatched: np.ndarray,
                          fail: Any) -> None:
    """Raise for the rows that the default selectors leave unmatched: an empty type, or the
    unknown types (the closest role suggested for a single one)."""
    values = frame[column].to_numpy(dtype=object)
    missing = unmatched & missing_mask(frame[column])
    if missing.any():
        raise fail("missing event type (empty cell)", missing, column=column)
    unknown = list(dict.fromkeys(str(v) for v in values[unmatched]))
    shown = ", ".join(repr(v) for v in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    guess = _closest(unknown[0], ROLES) if len(unknown) == 1 else None
    hint = f" (did you mean {guess!r}?)" if guess else ""
    label = "role" if len(unknown) == 1 else "roles"
    raise fail(
        f"unknown {label} {shown}{more}{hint}; the type must be 'treatment', 'control' or "
        "'dependent', or pass roles= to select roles by other values",
        unmatched,
        column=column,
    )


def _no_events_of(name: str, frame: pd.DataFrame, selectors: Mapping[str, tuple[str, Any]],
                  fail: Any) -> None:
    """No row has role ``name``: without treatment or control events there are no wakes to
    compare (raise); without dependent events every wake counts zero (warn). Most often the
    selector has a typo, so the message shows what the column holds."""
    column, value = selectors[name]
    present = [str(v) for v in frame[column].dropna().astype(str).value_counts().index]
    seen = ", ".join(repr(v) for v in present[:8]) or "none"
    guess = _closest(_value_text(value), present)
    hint = f"; did you mean {guess!r}?" if guess else ""
    problem = (
        f"no {name} events: no row has {_describe(selectors[name])} "
        f"(values in {column!r}: {seen}){hint}"
    )
    if name != "dependent":
        raise fail(problem, column=column)
    # a study may be read for a look at its anchors, but every wake will count zero
    warnings.warn(NoDependentEventsWarning(f"{fail(problem, column=column)}",
                                           present=tuple(present), guess=guess),
                  stacklevel=4)


def _closest(value: str, candidates: Sequence[str]) -> str | None:
    by_case = [c for c in candidates if c.casefold() == value.casefold()]
    if by_case:
        return by_case[0]
    close = difflib.get_close_matches(value, candidates, n=1)
    return close[0] if close else None


def _selector_mask(column: pd.Series, value: Any) -> np.ndarray:
    text = _texts(column)
    if isinstance(value, bool | np.bool_):
        lowered = np.array([t.lower() if isinstance(t, str) else None for t in text], dtype=object)
        return (lowered == str(bool(value)).lower()) | (lowered == str(int(value)))
    mask = text == _value_text(value)
    number = _as_number(value)
    if number is not None:
        # so ("kind", 1) also matches 1.0 or "1.0"
        values, _, _ = number_cells(column)
        mask |= values == number
    return np.asarray(mask, dtype=bool)


def _texts(column: pd.Series) -> np.ndarray:
    """The column as text (None where missing), numbers written as :func:`_value_text` does."""
    dtype = column.dtype
    if pd.api.types.is_float_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=object)
        return np.array([None if pd.isna(v) else _value_text(v) for v in values], dtype=object)
    texts = column.astype("str")
    return np.where(missing_mask(column), None, texts.to_numpy(dtype=object))


def _value_text(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str) and re.fullmatch(NUMBER_PATTERN, value.strip().lower()):
        return float(value)
    return None


def _describe(selector: tuple[str, Any]) -> str:
    column, value = selector
    return f"{column!r} = {value!r}"


# ---------------------------------------------------------------------------------------------
# values
# ---------------------------------------------------------------------------------------------


def _parse_time(column: pd.Series, name: str, fail: Any) -> pd.Series:
    dtype = column.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        parsed = pd.Series(pd.to_datetime(column, utc=True))
        missing = parsed.isna().to_numpy()
        bad = np.zeros(len(column), dtype=bool)
        zoned = None  # one time zone for the whole column
    elif pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        raise fail(
            f"the timestamps are numbers, not dates; expected text like {_TIME_FORMATS} "
            "or a datetime column",
            column=name,
        )
    else:
        missing = missing_mask(column)
        raw = column.to_numpy(dtype=object)
        if all(isinstance(v, str) for v in raw[~missing]):
            if (coarse := coarse_dates(column)) is not None:
                raise fail(coarse[0], coarse[1], column=name)
            # R's format(x, usetz = TRUE) writes "... UTC"; the ISO parser wants no zone name
            text = column.astype("str").str.strip()
            zoned = text.str.contains(_ZONE_RE, regex=True).to_numpy(dtype=bool)
            if text.str.endswith(("UTC", "GMT")).any():
                text = text.str.replace(r"\s+(?:UTC|GMT)$", "", regex=True)
            values = pd.Series(np.where(missing, None, text.to_numpy(dtype=object)), dtype=object)
        else:  # datetime or date objects, e.g. from an in-memory frame
            values = pd.Series(np.where(missing, None, raw), dtype=object)
            zoned = np.array([getattr(v, "tzinfo", None) is not None for v in raw])
        parsed = pd.Series(pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce"))
        bad = parsed.isna().to_numpy() & ~missing
    if missing.any():
        raise fail("missing timestamp", missing, column=name)
    if bad.any():
        shown = show_values(column.to_numpy(dtype=object)[bad])
        raise fail(f"cannot parse timestamp {shown} (expected {_TIME_FORMATS})", bad, column=name)
    if zoned is not None:
        _check_one_kind_of_time(column, zoned & ~missing, ~zoned & ~missing, name, fail)
    out_of_range = ((parsed < _NS_MIN) | (parsed > _NS_MAX)).to_numpy()
    if out_of_range.any():
        raise fail(
            f"timestamp outside {_NS_MIN.date()} to {_NS_MAX.date()}, the range of "
            "nanosecond times",
            out_of_range,
            column=name,
        )
    return parsed.dt.as_unit("ns").reset_index(drop=True)


def _check_one_kind_of_time(
    column: pd.Series, zoned: np.ndarray, naive: np.ndarray, name: str, fail: Any
) -> None:
    """Times with a UTC offset and times without one do not mix: text without an offset is
    read as UTC, so the two kinds would silently disagree by the offset."""
    if not (zoned.any() and naive.any()):
        return
    raw = column.to_numpy(dtype=object)

    def example(mask: np.ndarray) -> str:
        row = int(np.flatnonzero(mask)[0])
        return f"{int(mask.sum()):,}, e.g. row {row + 1}: {str(raw[row])!r}"

    fewer, kind = (zoned, "with") if zoned.sum() <= naive.sum() else (naive, "without")
    raise fail(
        f"mixes timestamps with a UTC offset ({example(zoned)}) and without one "
        f"({example(naive)}); text without an offset is read as UTC, so the two kinds "
        f"disagree by the offset: give every timestamp an offset, or none (the rows named "
        f"are the {int(fewer.sum()):,} {kind} an offset)",
        fewer,
        column=name,
    )


def _geometry_coordinates(loaded: LoadedTable, fail: Any) -> tuple[np.ndarray, np.ndarray]:
    geometry = loaded.geometry
    name = loaded.geometry_column
    missing = (geometry.isna() | geometry.is_empty).to_numpy()
    if missing.any():
        raise fail("missing or empty geometry", missing, column=name)
    kinds = geometry.geom_type.to_numpy(dtype=object)
    not_point = kinds != "Point"
    if not_point.any():
        found = ", ".join(dict.fromkeys(str(k) for k in kinds[not_point]))
        raise fail(
            f"not a Point geometry (found {found}); events must be points",
            not_point,
            column=name,
        )
    try:
        geometry = to_wgs84(geometry)
    except Exception as exc:
        raise fail(
            f"cannot reproject from {geometry.crs.to_string()} to EPSG:4326: {one_line(exc)}",
            column=name,
        ) from None
    return geometry.x.to_numpy(dtype=np.float64), geometry.y.to_numpy(dtype=np.float64)


def _check_area(
    lon: np.ndarray, lat: np.ndarray, box: tuple[float, float, float, float], fail: Any
) -> None:
    lon_min, lat_min, lon_max, lat_max = box

    def inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        if lon_min <= lon_max:
            in_lon = (x >= lon_min) & (x <= lon_max)
        else:  # across the antimeridian
            in_lon = (x >= lon_min) | (x <= lon_max)
        return in_lon & (y >= lat_min) & (y <= lat_max)

    outside = ~inside(lon, lat)
    if not outside.any():
        return
    where = f"lon [{lon_min:g}, {lon_max:g}], lat [{lat_min:g}, {lat_max:g}]"
    count = int(outside.sum())
    label = "event" if count == 1 else "events"
    problem = f"{count} {label} outside the area {where}"
    swapped = outside & inside(lat, lon)
    if swapped[outside].all():
        problem += "; latitude and longitude look swapped (exchanged, the events fall inside)"
    elif swapped.any():
        problem += (
            "; latitude and longitude look swapped in rows "
            f"{', '.join(str(r) for r in _row_numbers(swapped)[:10])}"
        )
    raise fail(problem, outside)


def _event_ids(
    frame: pd.DataFrame, id_column: str | None, keep: np.ndarray, repeats: np.ndarray,
    fail: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Ids of every row; ids from row order count only the rows in ``keep``, and only those
    rows must have distinct ids (dropped repeats share their original's)."""
    n = len(frame)
    order = np.zeros(n, dtype=np.int64)
    order[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int64)
    if id_column is None:
        return order, None
    column = frame[id_column]
    missing = missing_mask(column)
    if missing.any():
        raise fail("missing event id", missing, column=id_column)

    ids = _integer_ids(column)
    if ids is not None:
        keys: np.ndarray = ids
        source_id = None
    else:
        keys = _texts(column)
        source_id = keys
    duplicated = np.zeros(n, dtype=bool)
    duplicated[keep] = pd.Series(keys[keep]).duplicated(keep=False).to_numpy()
    if duplicated.any():
        values = list(dict.fromkeys(keys[duplicated].tolist()))
        label = "id" if len(values) == 1 else "ids"
        shown = show_values(np.array(values, dtype=object))
        hint = ""
        if (duplicated & repeats).any():
            hint = ("; some of these rows repeat earlier rows exactly (drop them with "
                    "drop_duplicates=True)")
        raise fail(f"duplicate event {label} {shown}{hint}", duplicated, column=id_column)
    if source_id is None:
        return ids, None  # type: ignore[return-value]
    return order, source_id


def _integer_ids(column: pd.Series) -> np.ndarray | None:
    """The ids as int64 if every id is a whole number that fits, else None."""
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if pd.api.types.is_integer_dtype(dtype):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(dtype):
        values = column.to_numpy(dtype=np.float64)
        if np.isfinite(values).all() and (values == np.round(values)).all() and (
            np.abs(values) < 2**63
        ).all():
            return values.astype(np.int64)
        return None
    texts = column.astype("str").str.strip()
    if not texts.str.fullmatch(_INTEGER_RE).all():
        return None
    as_int = [int(t) for t in texts]
    if any(not (-(2**63) <= v < 2**63) for v in as_int):
        return None
    return np.array(as_int, dtype=np.int64)


def _covariate(
    column: pd.Series, name: str, label: str, needs_values: np.ndarray, fail: Any
) -> np.ndarray:
    values = parse_numbers(column, name=name, path=label, what="covariate")
    missing = np.isnan(values)  # every cell that is there is a number
    infinite = np.isinf(values)
    if infinite.any():
        raise fail("covariate is infinite", infinite, column=name)
    gap = missing & needs_values
    if gap.any():
        raise fail(
            "missing covariate value for treatment or control events (matching needs it)",
            gap,
            column=name,
        )
    return values


def _label_codes(
    column: pd.Series, name: str, needs_values: np.ndarray, fail: Any
) -> np.ndarray:
    """Group labels as float codes 0, 1, ... in order of first appearance (NaN: missing)."""
    texts = column.astype("str").str.strip()
    missing = missing_mask(column)
    gap = missing & needs_values
    if gap.any():
        raise fail("missing group label for treatment or control events (cluster-robust "
                   "standard errors group on it)", gap, column=name)
    codes = pd.Series(np.where(missing, None, texts), dtype=object).factorize()[0]
    return np.where(codes < 0, np.nan, codes).astype(np.float64)


def _kept_column(frame: pd.DataFrame, ours: str, theirs: str, taken: Sequence[str],
                 fail: Any) -> np.ndarray:
    """A ``keep`` column as the file holds it (object values, row-aligned with the table)."""
    if ours in taken:
        raise SettingsError(f"keep: {ours!r} is already a column of the event table "
                            f"({', '.join(map(str, taken))}); keep it under another name")
    columns = [str(c) for c in frame.columns]
    if theirs not in columns:
        close = difflib.get_close_matches(theirs, columns, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise fail(f"{ours}: no column '{theirs}'{hint} (columns: {', '.join(columns)})")
    return frame[theirs].to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------
# messages
# ---------------------------------------------------------------------------------------------


def _row_numbers(rows: Any) -> list[int] | None:
    """1-based data-row numbers from a boolean mask or 0-based positions."""
    if rows is None:
        return None
    rows = np.asarray(rows)
    if rows.dtype == bool:
        rows = np.flatnonzero(rows)
    return [int(r) + 1 for r in rows]
