"""Reading tabular inputs: the one CSV reader (:func:`read_csv_text`) of every file, and
:func:`read_table` for the study adapters (ACLED, projects, point layers).

Helpers shared by :mod:`bayes_wake.io.events`, :mod:`bayes_wake.io.acled`,
:mod:`bayes_wake.io.projects` and :mod:`bayes_wake.io.covariates`: every file is read as
text, so that each bad cell can be named by file, 1-based data row (the header is not
counted) and column in an
:class:`~bayes_wake.errors.EventDataError`.
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from bayes_wake.errors import EventDataError, SettingsError

#: Suffixes :func:`read_table` reads.
TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".txt", ".parquet", ".geojson", ".json", ".gpkg",
                  ".shp")

_DATE_FORMATS = ("%d %B %Y", "%d-%B-%Y", "%d %b %Y", "%d-%b-%Y", "%B %d, %Y", "%d/%m/%Y")
DATE_FORMATS_TEXT = ("ISO 8601 ('2020-12-31'), '31 December 2020', '31-December-2020', "
                     "'31 Dec 2020' or '31/12/2020' (day first)")
#: Cell texts that mean "missing" (compared stripped and lower-cased), for every reader.
MISSING_TEXT = frozenset({"", "na", "nan", "null", "none", "n/a", "<na>"})


def header_key(name: str) -> str:
    """A column name reduced for matching: ASCII, lower case, runs of non-letters as ``_``."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def read_table(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """Read a CSV, Parquet or vector file into a frame of text columns.

    Parameters
    ----------
    path
        The file. CSV (comma, semicolon or tab separated, UTF-8 with or without a byte-order
        mark, else Windows-1252), Parquet, or a vector file (GeoJSON, GeoPackage, Shapefile)
        of points, whose x and y become the columns ``longitude`` and ``latitude`` (WGS84
        degrees) unless the file has such columns.
    what
        What the file holds, for messages (``"ACLED file"``, ``"QIP file"``).

    Returns
    -------
    pandas.DataFrame
        Every column as text (``str`` dtype, missing cells NaN), a fresh ``RangeIndex``;
        ``attrs["source"]`` is the path.

    Raises
    ------
    EventDataError
        Missing, empty, unreadable or unknown file.
    """
    label = os.fspath(path)
    path = Path(label)
    if not path.exists():
        raise EventDataError(f"{what} not found", path=label)
    if path.is_dir():
        raise EventDataError(f"is a directory, not a {what}", path=label)
    if path.stat().st_size == 0:
        raise EventDataError(f"the {what} is empty", path=label)
    lower = path.name.lower()
    if lower.endswith((".xlsx", ".xls")):
        raise EventDataError(f"the {what} is a spreadsheet; save it as CSV (UTF-8) and "
                             "pass that", path=label)
    if not lower.endswith(TABLE_SUFFIXES):
        raise EventDataError(f"unknown file type {path.suffix or '(no suffix)'!r} for the "
                             f"{what}; supported: {', '.join(TABLE_SUFFIXES)}", path=label)
    if lower.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises many kinds for a damaged file
            raise EventDataError(f"cannot read the {what} as Parquet: {one_line(exc)}",
                                 path=label) from None
        frame = _as_text(frame)
    elif lower.endswith((".geojson", ".json", ".gpkg", ".shp")):
        frame = _read_vector_points(path, label, what)
    else:
        frame = _read_csv(path, label, what)
    if len(frame) == 0:
        raise EventDataError(f"the {what} has no data rows", path=label)
    frame = frame.reset_index(drop=True)
    frame.attrs["source"] = label
    return frame


def _read_csv(path: Path, label: str, what: str) -> pd.DataFrame:
    return read_csv_text(path, label, f"the {what}", missing="empty")


def read_csv_text(path: Path, label: str, what: str, *, missing: str = "empty",
                  stacklevel: int = 5) -> pd.DataFrame:
    """Read a CSV file as text columns: the one CSV reader of every input.

    Comma, semicolon or tab separated (a one-column header holding ``;`` or a tab switches);
    UTF-8 with or without a byte-order mark, else Windows-1252 with a warning that names the
    first byte that is not UTF-8 (offset, line, row and column); rows with more fields than
    the header are an error (unless the extra fields are empty: a delimiter at each line's
    end).

    Parameters
    ----------
    path, label
        The file and its name for messages.
    what
        What the file is, for messages (``"the QIP file"``).
    missing
        ``empty``: only empty cells are missing; ``pandas``: also pandas' NA spellings (R's
        ``NA``, ``NaN``, ``NULL``, ...), as R's ``read.csv`` reads them.
    stacklevel
        Of the encoding warning.

    Returns
    -------
    pandas.DataFrame
        Every column as text.

    Raises
    ------
    EventDataError
        Empty, ragged or unreadable file; text that is neither UTF-8 nor Windows-1252.
    """
    options = ({"keep_default_na": False, "na_values": [""]} if missing == "empty" else {})
    try:
        return _csv_frame(path, label, what, "utf-8-sig", options)
    except UnicodeDecodeError as exc:
        bad = _first_non_utf8(path, exc)
    try:
        frame = _csv_frame(path, label, what, "cp1252", options)
    except UnicodeDecodeError:
        raise EventDataError(f"cannot read {what}: neither UTF-8 nor Windows-1252 text "
                             f"({bad['text']}); save it as UTF-8", path=label,
                             rows=bad["rows"], column=bad["column"]) from None
    where = (f", row {bad['rows'][0]}" if bad["rows"] else "") + (
        f", column {bad['column']!r}" if bad["column"] is not None else "")
    warnings.warn(f"{label}{where}: not UTF-8 ({bad['text']}); read as Windows-1252",
                  UserWarning, stacklevel=stacklevel)
    return frame


def _csv_frame(path: Path, label: str, what: str, encoding: str, options: dict) -> pd.DataFrame:
    try:
        frame = _csv_sep(path, label, what, encoding, ",", options)
        if frame.shape[1] == 1:  # a one-column table is almost always another separator
            header = str(frame.columns[0])
            for sep in (";", "\t"):
                if sep in header:
                    return _csv_sep(path, label, what, encoding, sep, options)
        return frame
    except pd.errors.EmptyDataError:
        raise EventDataError(f"{what} is empty", path=label) from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        if isinstance(exc, (EventDataError, UnicodeDecodeError)):
            raise
        raise EventDataError(f"cannot read {what} as CSV: {one_line(exc)}",
                             path=label) from None


def _csv_sep(path: Path, label: str, what: str, encoding: str, sep: str,
             options: dict) -> pd.DataFrame:
    # Every column is read as text: numbers are then parsed by Python's correctly rounded
    # float(), so R's %.17g output comes back bit-exact, and a bad cell can be named by row.
    frame = pd.read_csv(path, dtype=str, encoding=encoding, sep=sep, **options)
    if isinstance(frame.index, pd.RangeIndex):
        return frame
    # Rows with more fields than the header: pandas silently takes the first fields as an
    # index and shifts every column. Harmless only if the extra fields are empty.
    extra = frame.iloc[:, -frame.index.nlevels:].notna().any(axis=1).to_numpy()
    if extra.any():
        raise EventDataError(f"more fields than the header's {frame.shape[1]} columns",
                             path=label, rows=[int(k) + 1 for k in np.flatnonzero(extra)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        return pd.read_csv(path, dtype=str, encoding=encoding, sep=sep, index_col=False,
                           **options)


def _first_non_utf8(path: Path, exc: UnicodeDecodeError) -> dict:
    """Where the first byte that is not UTF-8 sits: its offset in the file (pandas reports it
    within one of its buffers), its line, and the data row and column it falls in."""
    import codecs
    import csv
    import gzip
    import io

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, reason, parts = exc.start, exc.reason, []
    with opener(path, "rb") as handle:
        consumed = 0
        while True:
            chunk = handle.read(1 << 20)
            carried = len(decoder.getstate()[0])  # bytes of a character split by the chunk
            try:
                parts.append(decoder.decode(chunk, final=not chunk))
            except UnicodeDecodeError as error:
                offset, reason = consumed - carried + error.start, error.reason
                parts.append(error.object[: error.start].decode("utf-8"))
                break
            if not chunk:  # pragma: no cover - pandas found a bad byte, so there is one
                break
            consumed += len(chunk)
    before = "".join(parts)
    line = before.count("\n") + 1
    first = before.split("\n", 1)[0]
    sep = next((c for c in (";", "\t") if "," not in first and c in first), ",")
    rows, column = None, None
    records = list(csv.reader(io.StringIO(before), delimiter=sep))
    if before.endswith(("\n", "\r")) or not records:
        records.append([""])  # the bad byte starts a new record
    if len(records) > 1:
        rows = [len(records) - 1]
        header = records[0]
        field = len(records[-1]) - 1
        column = header[field] if field < len(header) else None
    where = "in the header" if rows is None else f"line {line}"
    return {"text": f"{reason} at byte {offset}, {where}", "rows": rows, "column": column}


def _read_vector_points(path: Path, label: str, what: str) -> pd.DataFrame:
    import geopandas as gpd

    try:
        layer = gpd.read_file(path)
    except Exception as exc:  # pyogrio's DataSourceError and friends
        raise EventDataError(f"cannot read the {what} as a vector file: {one_line(exc)}",
                             path=label) from None
    geometry = layer.geometry
    frame = _as_text(pd.DataFrame(layer.drop(columns=layer.geometry.name)))
    keys = {header_key(c) for c in frame.columns}
    if geometry is None or ({"longitude", "lon"} & keys and {"latitude", "lat"} & keys):
        return frame
    if layer.crs is not None and not layer.crs.equals("EPSG:4326"):
        geometry = geometry.to_crs(4326)
    not_point = ~(geometry.geom_type.isin(["Point"]) | geometry.isna())
    if not_point.any():
        raise EventDataError(f"the {what} must hold points; found "
                             f"{', '.join(sorted(set(geometry.geom_type[not_point])))}",
                             path=label, rows=list(np.flatnonzero(not_point.to_numpy()) + 1))
    frame["longitude"] = pd.array([None if g is None else repr(g.x) for g in geometry],
                                  dtype="str")
    frame["latitude"] = pd.array([None if g is None else repr(g.y) for g in geometry],
                                 dtype="str")
    return frame


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    out = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column.dtype):
            text = column.dt.strftime("%Y-%m-%dT%H:%M:%S")
        elif pd.api.types.is_float_dtype(column.dtype):
            text = column.map(lambda v: None if pd.isna(v) else repr(float(v)))
        else:
            text = column.map(lambda v: None if v is None or (isinstance(v, float) and
                                                               np.isnan(v)) else str(v))
        out[str(name)] = pd.array(text, dtype="str")
    return pd.DataFrame(out)


def find_column(frame: pd.DataFrame, candidates: Iterable[str]) -> str | None:
    """The first column of ``frame`` whose :func:`header_key` is among ``candidates``."""
    keys = {header_key(c): c for c in reversed(list(frame.columns))}
    for candidate in candidates:
        hit = keys.get(header_key(candidate))
        if hit is not None:
            return hit
    return None


def missing_mask(column: pd.Series) -> np.ndarray:
    """Cells that are missing: NaN or text that spells a missing value."""
    text = column.astype("str")
    return (column.isna() | text.str.strip().str.lower().isin(MISSING_TEXT)).to_numpy(dtype=bool)


def parse_numbers(column: pd.Series, *, name: str, path: str | None, what: str,
                  money: bool = False) -> np.ndarray:
    """Parse a text column as float64; NaN where missing.

    With ``money``, currency marks (``$``, ``US$``, ``USD``), spaces and thousands separators
    (``1,604,488``) are removed first.

    Raises
    ------
    EventDataError
        A cell holds text that is not a number (naming the rows and the column).
    """
    missing = missing_mask(column)
    text = column.astype("str").str.strip()
    if money:
        text = text.str.replace(r"(?i)US\$|USD|\$|\s|,", "", regex=True)
    values = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & ~missing
    if bad.any():
        shown = ", ".join(repr(v) for v in dict.fromkeys(column[bad].tolist()[:3]))
        raise EventDataError(f"{what} is not a number: {shown}", path=path,
                             rows=list(np.flatnonzero(bad) + 1), column=name)
    return values


def parse_dates(column: pd.Series, *, name: str, path: str | None) -> pd.Series:
    """Parse a column of dates (a time of day, if any, is dropped) to midnight UTC.

    Accepts ISO 8601 and the day-first spellings of ACLED's exports (see
    :data:`DATE_FORMATS_TEXT`). Missing cells give NaT.

    Raises
    ------
    EventDataError
        A cell holds text that is no date in those formats (naming the rows and the column).
    """
    missing = missing_mask(column)
    text = column.astype("str").str.strip().where(~missing, None)
    parsed = pd.Series(pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True))
    for fmt in _DATE_FORMATS:
        todo = parsed.isna().to_numpy() & ~missing
        if not todo.any():
            break
        parsed[todo] = pd.to_datetime(text[todo], format=fmt, errors="coerce", utc=True)
    bad = parsed.isna().to_numpy() & ~missing
    if bad.any():
        shown = ", ".join(repr(v) for v in dict.fromkeys(column[bad].tolist()[:3]))
        raise EventDataError(f"cannot parse the date {shown} (expected {DATE_FORMATS_TEXT})",
                             path=path, rows=list(np.flatnonzero(bad) + 1), column=name)
    return parsed.dt.floor("D").dt.as_unit("ns").reset_index(drop=True)


def check_coordinates(lon: np.ndarray, lat: np.ndarray, *, lon_name: str | None,
                      lat_name: str | None, path: str | None) -> None:
    """Raise for infinite coordinates or ones outside [-180, 180] x [-90, 90] (NaN is
    allowed: missing), naming the rows and the column, with a hint when the values look
    projected or swapped. The one coordinate check of every reader."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)

    def fail(problem: str, rows: np.ndarray, column: str | None) -> EventDataError:
        return EventDataError(problem, path=path, rows=[int(k) + 1 for k in np.flatnonzero(rows)],
                              column=column)

    for values, column, what in ((lat, lat_name, "latitude"), (lon, lon_name, "longitude")):
        infinite = np.isinf(values)
        if infinite.any():
            raise fail(f"non-finite coordinate: {what} {show_values(values[infinite])}",
                       infinite, column)
    for values, column, what, limit in ((lat, lat_name, "latitude", 90),
                                        (lon, lon_name, "longitude", 180)):
        bad = np.abs(values) > limit
        if bad.any():
            raise fail(f"{what} not in [-{limit}, {limit}]: {show_values(values[bad])}"
                       f"{_swap_or_projected(lon, lat, bad)}", bad, column)


def _swap_or_projected(lon: np.ndarray, lat: np.ndarray, bad: np.ndarray) -> str:
    if (np.abs(lon[bad]) > 360).all() or (np.abs(lat[bad]) > 360).all():
        return "; the coordinates look projected (metres?), not WGS84 degrees"
    swapped = (np.abs(lon[bad]) <= 90) & (np.abs(lat[bad]) <= 180)
    if swapped.all():
        # weaker evidence than the area check: a typo looks the same
        return "; latitude and longitude may be swapped"
    return ""


def show_values(values: np.ndarray, limit: int = 3) -> str:
    """The distinct values of a bad selection, the first ``limit`` of them, for messages."""
    items = [v for v in values.tolist()]
    unique = list(dict.fromkeys(repr(v) if isinstance(v, str) else f"{v}" for v in items))
    shown = ", ".join(unique[:limit])
    return shown + (f" and {len(unique) - limit} more" if len(unique) > limit else "")


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the right number, thousands separated: ``counted(1, "fit")``
    is ``"1 fit"``, ``counted(2_000, "task")`` is ``"2,000 tasks"``."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (whitespace runs joined), for error messages."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def study_period(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """First and last day (UTC midnight) of a study period; ``None`` leaves a side open.

    Raises
    ------
    SettingsError
        If a date cannot be read or the end is before the start.
    """
    out = []
    for name, value in (("start", start), ("end", end)):
        if value is None:
            out.append(None)
            continue
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError):
            raise SettingsError(f"{name} must be a date like 2017-01-01, got {value!r}") from None
        stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
        out.append(stamp.floor("D"))
    if out[0] is not None and out[1] is not None and out[1] < out[0]:
        raise SettingsError(f"end {out[1].date()} is before start {out[0].date()}")
    return out[0], out[1]
