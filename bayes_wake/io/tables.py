"""Reading tabular inputs, once for every file: the file loader (:func:`load_table`), the CSV
reader (:func:`read_csv_text`), the missing-value rule (:func:`missing_mask`) and the number
parser (:func:`number_cells`, :func:`parse_numbers`); :func:`read_table` for the study
adapters (ACLED, projects, point layers).

Shared by :mod:`bayes_wake.io.events`, :mod:`bayes_wake.io.covariates` and the Sauter study's
readers (:mod:`bayes_wake.studies.sauter.acled`, :mod:`bayes_wake.studies.sauter.projects`):
CSV files are read as text, so that each bad cell can be named by file, 1-based data row (the
header is not counted) and column in an :class:`~bayes_wake.errors.EventDataError`.
"""

from __future__ import annotations

import os
import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayes_wake.errors import EventDataError, SettingsError

#: Each file suffix a reader may accept, and the format it holds.
_FORMATS = {".csv": "CSV", ".csv.gz": "CSV", ".tsv": "CSV", ".txt": "CSV", ".parquet": "Parquet",
            ".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GeoPackage",
            ".shp": "Shapefile"}
_VECTOR_FORMATS = ("GeoPackage", "GeoJSON", "Shapefile")
#: Suffixes :func:`read_table` reads.
TABLE_SUFFIXES = tuple(_FORMATS)

_DATE_FORMATS = ("%d %B %Y", "%d-%B-%Y", "%d %b %Y", "%d-%b-%Y", "%B %d, %Y", "%d/%m/%Y")
DATE_FORMATS_TEXT = ("ISO 8601 ('2020-12-31'), '31 December 2020', '31-December-2020', "
                     "'31 Dec 2020' or '31/12/2020' (day first)")
#: Cell texts that mean "missing" (compared stripped and lower-cased), for every reader.
MISSING_TEXT = frozenset({"", "na", "nan", "null", "none", "n/a", "<na>"})
#: A decimal number as text, matched stripped and lower-cased: what :func:`number_cells`
#: converts. Python's float() also takes "1_000" and non-ASCII digits, pandas' to_numeric
#: "+0e 5": text no CSV writer produces for a number.
NUMBER_PATTERN = r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|inf|infinity)"


def header_key(name: str) -> str:
    """A column name reduced for matching: ASCII, lower case, runs of non-letters as ``_``."""
    text = unicodedata.normalize("NFKD", str(name))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


@dataclass
class LoadedTable:
    """A table read into memory by :func:`load_table`, before any validation.

    Attributes
    ----------
    frame : pandas.DataFrame
        The attribute columns (text from a CSV, the file's types otherwise), a fresh
        ``RangeIndex``, column names as text, the geometry column dropped.
    label : str
        The path as given, for messages (``"<DataFrame>"`` for data in memory).
    geometry : geopandas.GeoSeries or None
        The geometry, aligned with ``frame``.
    geometry_column : str or None
        The geometry's column name in the file.
    """

    frame: pd.DataFrame
    label: str
    geometry: Any = None
    geometry_column: str | None = None


def load_table(path: str | os.PathLike, what: str, *,
               suffixes: Sequence[str] = TABLE_SUFFIXES, missing: str = "empty",
               layer: str | None = None) -> LoadedTable:
    """Check a file and read it, each column of its own type and the geometry apart.

    The one file loader of every input: :func:`read_table` and
    :func:`bayes_wake.io.events.read_events` call it.

    Parameters
    ----------
    path
        The file: CSV (read by :func:`read_csv_text`, every column as text), Parquet
        (GeoParquet keeps its geometry) or a vector file (GeoPackage, GeoJSON, Shapefile; its
        date-times as the text in the file).
    what
        What the file holds, for messages (``"event file"``, ``"ACLED file"``).
    suffixes
        The file suffixes the caller reads, in the order the messages list them; a subset of
        :data:`TABLE_SUFFIXES`.
    missing
        Which CSV cells are missing, as :func:`read_csv_text` takes it.
    layer
        The layer of a vector file; needed when the file has more than one.

    Returns
    -------
    LoadedTable
        The table, which may have no rows.

    Raises
    ------
    EventDataError
        Missing, empty, unreadable or unknown file; a vector file with several layers and no
        ``layer``, or without that layer.
    SettingsError
        ``layer`` for a file that is not a vector file.
    """
    label, kind = _file_format(path, what, suffixes)
    # the vector formats the caller reads, for messages: "GeoPackage/GeoJSON"
    vector = "/".join(dict.fromkeys(_FORMATS[s] for s in suffixes
                                    if _FORMATS[s] in _VECTOR_FORMATS))
    if layer is not None and kind not in _VECTOR_FORMATS:
        raise SettingsError(f"layer={layer!r} applies to {vector} files only")
    if os.path.getsize(label) == 0:
        raise EventDataError("the file is empty", path=label)
    if kind == "CSV":
        frame = read_csv_text(Path(label), label, f"the {what}", missing=missing)
    elif kind == "Parquet":
        frame = _read_parquet(Path(label), label)
    else:
        frame = _read_vector(Path(label), label, layer, vector)
    return table_from_frame(frame, label)


def _file_format(path: str | os.PathLike, what: str, suffixes: Sequence[str]) -> tuple[str, str]:
    """The path as text and the format its suffix names, once the file is found."""
    label = os.fspath(path)
    path = Path(label)
    if not path.exists():
        raise EventDataError(f"{what} not found", path=label)
    if path.is_dir():
        raise EventDataError(f"is a directory, not the {what}", path=label)
    lower = path.name.lower()
    suffix = next((s for s in suffixes if lower.endswith(s)), None)
    if suffix is None:
        hint = ("; save the spreadsheet as CSV (UTF-8) and pass that"
                if lower.endswith((".xlsx", ".xls")) else "")
        raise EventDataError(f"unknown file type {path.suffix or '(no suffix)'!r}; supported: "
                             f"{', '.join(suffixes)}{hint}", path=label)
    return label, _FORMATS[suffix]


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    try:
        import pyarrow.parquet as pq

        if b"geo" in (pq.read_schema(path).metadata or {}):
            import geopandas as gpd

            return gpd.read_parquet(path)
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many kinds for a damaged file
        raise EventDataError(f"cannot read as Parquet: {one_line(exc)}", path=label) from None


def _read_vector(path: Path, label: str, layer: str | None, names: str) -> pd.DataFrame:
    import geopandas as gpd
    import pyogrio

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio.errors.DataSourceError and friends
        raise EventDataError(f"cannot read as {names}: {one_line(exc)}", path=label) from None
    if layer is None and len(layers) > 1:
        raise EventDataError(f"the file has {len(layers)} layers ({', '.join(map(repr, layers))}"
                             "); choose one with layer=, or save that layer as its own file",
                             path=label)
    if layer is not None and layer not in layers:
        raise EventDataError(f"no layer {layer!r}; the file has {', '.join(map(repr, layers))}",
                             path=label)
    try:
        # Date-times as the text in the file, so they take the same parser as CSV text (GDAL
        # would otherwise guess time zones).
        return gpd.read_file(path, layer=layer, engine="pyogrio", datetime_as_string=True)
    except Exception as exc:
        raise EventDataError(f"cannot read as {names}: {one_line(exc)}", path=label) from None


def table_from_frame(frame: pd.DataFrame, label: str) -> LoadedTable:
    """A frame (or GeoDataFrame) as a :class:`LoadedTable`: geometry apart, a fresh
    ``RangeIndex``, column names as text (each once: a name given twice is an
    :class:`~bayes_wake.errors.EventDataError`)."""
    geometry = None
    geometry_column = None
    geo_name = getattr(frame, "_geometry_column_name", None)
    if geo_name is not None and geo_name in frame.columns:
        geometry = frame.geometry.reset_index(drop=True)
        geometry_column = str(geo_name)
        frame = pd.DataFrame(frame.drop(columns=[geo_name]))
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    _check_unique_names(list(frame.columns), label)  # Parquet and frames in memory too
    return LoadedTable(frame=frame, label=label, geometry=geometry,
                       geometry_column=geometry_column)


def read_table(path: str | os.PathLike, what: str) -> pd.DataFrame:
    """Read a CSV, Parquet or vector file into a frame of text columns.

    Parameters
    ----------
    path
        The file. CSV (comma, semicolon or tab separated, UTF-8 with or without a byte-order
        mark, else Windows-1252; only empty cells are missing), Parquet, or a vector file
        (GeoJSON, GeoPackage, Shapefile, GeoParquet) of points, whose x and y become the
        columns ``longitude`` and ``latitude`` (WGS84 degrees) unless the file has such
        columns. Read by :func:`load_table`.
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
        Missing, empty, unreadable or unknown file; a file of more than one layer.
    """
    table = load_table(path, what)
    if len(table.frame) == 0:
        raise EventDataError(f"the {what} has no data rows", path=table.label)
    frame = _with_points(_as_text(table.frame), table.geometry, table.label, what)
    frame.attrs["source"] = table.label
    return frame


def read_csv_text(path: Path, label: str, what: str, *, missing: str = "empty",
                  stacklevel: int = 5) -> pd.DataFrame:
    """Read a CSV file as text columns: the one CSV reader of every input.

    Comma, semicolon or tab separated: the delimiter is the one that splits the header line
    into the most fields (a comma on a tie), so a semicolon file whose text holds commas
    reads; in a semicolon file, a column whose numbers all have a decimal comma (``12,5``)
    is read with decimal points, with a warning naming the columns. UTF-8 with or without a
    byte-order mark, UTF-16 or UTF-32 with one, else Windows-1252 with a warning that names
    the first byte that is not UTF-8 (offset, line, row and column); line ends LF, CRLF or
    CR. Rows with more fields than the header are an error (unless the extra fields are
    empty: a delimiter at each line's end), and so are a header that names a column twice
    and a file that holds NUL bytes without a UTF-16 or UTF-32 byte-order mark (binary).

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
        Empty, ragged, binary or unreadable file; text that is neither UTF-8 nor
        Windows-1252; a column name given twice.
    """
    options = ({"keep_default_na": False, "na_values": [""]} if missing == "empty" else {})
    head = _head_bytes(path)
    wide = _wide_encoding(head)
    if wide is not None:
        return _csv_frame(path, label, what, wide, options, head, stacklevel)
    if b"\x00" in head:
        raise EventDataError(
            f"cannot read {what}: it holds NUL bytes, so it is no text file (a binary file, or "
            "UTF-16 or UTF-32 text without a byte-order mark); save it as UTF-8 CSV",
            path=label)
    try:
        return _csv_frame(path, label, what, "utf-8-sig", options, head, stacklevel)
    except UnicodeDecodeError as exc:
        bad = _first_non_utf8(path, exc, _header_delimiter(head, "utf-8")[0])
    try:
        frame = _csv_frame(path, label, what, "cp1252", options, head, stacklevel)
    except UnicodeDecodeError:
        raise EventDataError(f"cannot read {what}: neither UTF-8 nor Windows-1252 text "
                             f"({bad['text']}); save it as UTF-8", path=label,
                             rows=bad["rows"], column=bad["column"]) from None
    where = (f", row {bad['rows'][0]}" if bad["rows"] else "") + (
        f", column {bad['column']!r}" if bad["column"] is not None else "")
    warnings.warn(f"{label}{where}: not UTF-8 ({bad['text']}); read as Windows-1252",
                  UserWarning, stacklevel=stacklevel)
    return frame


def _head_bytes(path: Path, size: int = 1 << 16) -> bytes:
    """The first ``size`` bytes of a file (decompressed for ``.gz``)."""
    import gzip

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            return handle.read(size)
    except (OSError, EOFError):  # not gzip after all: pandas' reader will say so
        return b""


def _wide_encoding(head: bytes) -> str | None:
    """``utf-32`` or ``utf-16`` for a file that starts with their byte-order mark."""
    import codecs

    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _header_delimiter(head: bytes, encoding: str) -> tuple[str, list[str]]:
    """The delimiter that splits the header line into the most fields (comma, semicolon,
    tab; the first of them on a tie) and the header's names split by it."""
    import csv

    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    best: tuple[str, list[str]] = (",", [line])
    for sep in (",", ";", "\t"):
        try:
            names = next(csv.reader([line], delimiter=sep), [])
        except csv.Error:
            continue
        if len(names) > len(best[1]):
            best = (sep, names)
    return best


def _check_unique_names(names: Sequence[str], label: str) -> None:
    """Refuse a header that names a column twice: pandas would rename the second one
    (``lat.1``) and every reader take the first without a word."""
    positions: dict[str, list[int]] = {}
    for k, name in enumerate(names, 1):
        positions.setdefault(name.strip(), []).append(k)
    twice = {name: at for name, at in positions.items() if len(at) > 1 and name}
    if twice:
        shown = "; ".join(f"{name!r} (columns {', '.join(map(str, at))})"
                          for name, at in twice.items())
        raise EventDataError(f"the header names a column more than once: {shown}; rename "
                             "them so each column has its own name", path=label)


#: A number with a decimal comma, as a semicolon-separated file writes it.
_DECIMAL_COMMA = re.compile(r"\s*[+-]?[0-9]*,[0-9]+(?:[eE][+-]?[0-9]+)?\s*")
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def _decimal_commas(frame: pd.DataFrame, label: str, stacklevel: int) -> pd.DataFrame:
    """Columns of a semicolon-separated file whose numbers have decimal commas, with decimal
    points: every cell that is not missing is such a number or an integer, and one at
    least has a comma. A warning names them."""
    changed = []
    for name in frame.columns:
        cells = [v for v in frame[name].tolist() if isinstance(v, str)
                 and v.strip().lower() not in MISSING_TEXT]
        if not any(_DECIMAL_COMMA.fullmatch(v) for v in cells):
            continue
        if all(_DECIMAL_COMMA.fullmatch(v) or _INTEGER.fullmatch(v) for v in cells):
            frame[name] = frame[name].str.replace(",", ".", regex=False)
            changed.append(str(name))
    if changed:
        warnings.warn(f"{label}: semicolon-separated with decimal commas; read them as decimal "
                      f"points in {counted(len(changed), 'column')}: "
                      f"{', '.join(repr(c) for c in changed)}", UserWarning,
                      stacklevel=stacklevel + 1)
    return frame


def _csv_frame(path: Path, label: str, what: str, encoding: str, options: dict, head: bytes,
               stacklevel: int) -> pd.DataFrame:
    import csv

    sep, names = _header_delimiter(head, encoding)
    _check_unique_names(names, label)
    try:
        frame = _csv_sep(path, label, what, encoding, sep, options)
        return _decimal_commas(frame, label, stacklevel) if sep == ";" else frame
    except pd.errors.EmptyDataError:
        raise EventDataError(f"{what} is empty", path=label) from None
    except (pd.errors.ParserError, ValueError, OSError, csv.Error) as exc:
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


def _first_non_utf8(path: Path, exc: UnicodeDecodeError, sep: str) -> dict:
    """Where the first byte that is not UTF-8 sits: its offset in the file (pandas reports it
    within one of its buffers), its line, and the data row and column it falls in (fields
    split at ``sep``; line ends LF, CRLF or CR)."""
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
    line = len(re.findall(r"\r\n|\r|\n", before)) + 1
    rows, column = None, None
    try:
        records = list(csv.reader(io.StringIO(before.replace("\x00", ""), newline=""),
                                  delimiter=sep))
    except csv.Error:  # no row to name: the byte and its line still are
        return {"text": f"{reason} at byte {offset}, line {line}", "rows": None, "column": None}
    if before.endswith(("\n", "\r")) or not records:
        records.append([""])  # the bad byte starts a new record
    if len(records) > 1:
        rows = [len(records) - 1]
        header = records[0]
        field = len(records[-1]) - 1
        column = header[field] if field < len(header) else None
    where = "in the header" if rows is None else f"line {line}"
    return {"text": f"{reason} at byte {offset}, {where}", "rows": rows, "column": column}


def to_wgs84(geo: Any) -> Any:
    """A GeoSeries or GeoDataFrame in WGS84 longitude/latitude: one without a CRS is taken
    as such (GeoJSON's only CRS), any other is reprojected (not one that is WGS84 with
    another axis order, such as OGC:CRS84)."""
    import pyproj

    if geo.crs is None:
        return geo.set_crs(4326)
    if pyproj.CRS(geo.crs).equals(pyproj.CRS.from_epsg(4326), ignore_axis_order=True):
        return geo
    return geo.to_crs(4326)


def _with_points(frame: pd.DataFrame, geometry: Any, label: str, what: str) -> pd.DataFrame:
    """The frame with the points' x and y as text columns ``longitude`` and ``latitude``
    (WGS84), unless it has no geometry or already has such columns."""
    keys = {header_key(c) for c in frame.columns}
    if geometry is None or ({"longitude", "lon"} & keys and {"latitude", "lat"} & keys):
        return frame
    geometry = to_wgs84(geometry)
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
        if column.dtype == "str":  # text already (a CSV)
            text = column
        elif pd.api.types.is_datetime64_any_dtype(column.dtype):
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
    """Cells that are missing: NaN/None/NaT, or text that spells a missing value
    (:data:`MISSING_TEXT`). The one missing-value rule of every reader."""
    absent = column.isna().to_numpy(dtype=bool)
    dtype = column.dtype
    if (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_datetime64_any_dtype(dtype)):
        return absent  # their text never spells a missing value
    spelled = column.astype("str").str.strip().str.lower().isin(MISSING_TEXT)
    return absent | spelled.to_numpy(dtype=bool)


def number_cells(column: pd.Series, *, money: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse a column as float64 without raising: the one number parser of every reader.

    Text must match :data:`NUMBER_PATTERN` (stripped, any case) and is converted by Python's
    correctly rounded ``float()``, so every ``%.17g`` text comes back bit-exact; numeric and
    boolean columns are taken as they are.

    Parameters
    ----------
    column
        The cells.
    money
        Remove currency marks (``$``, ``US$``, ``USD``), spaces and thousands separators
        (``1,604,488``) first.

    Returns
    -------
    values, missing, bad : numpy.ndarray
        The values (NaN where missing or not a number), the :func:`missing_mask` and the mask
        of cells that hold something that is not a number.
    """
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.isnan(values), np.zeros(len(column), dtype=bool)
    missing = missing_mask(column)
    text = column.astype("str").str.strip().str.lower()
    if money:
        text = text.str.replace(r"us\$|usd|\$|\s|,", "", regex=True)
    ok = text.str.fullmatch(NUMBER_PATTERN).to_numpy(dtype=bool) & ~missing
    values = np.full(len(column), np.nan)
    values[ok] = np.asarray(text[ok].to_numpy(dtype=object), dtype=np.float64)
    return values, missing, ~ok & ~missing


def parse_numbers(column: pd.Series, *, name: str, path: str | None, what: str,
                  money: bool = False, required: bool = False) -> np.ndarray:
    """Parse a column as float64 (see :func:`number_cells`); NaN where missing.

    Parameters
    ----------
    column
        The cells.
    name, path
        The column and the file, for messages.
    what
        What the cells hold, for messages (``"longitude"``, ``"covariate"``).
    money
        As :func:`number_cells` takes it.
    required
        Missing cells are an error (raised before cells that are not numbers).

    Raises
    ------
    EventDataError
        A cell is missing (with ``required``) or holds text that is not a number, naming the
        rows and the column.
    """
    values, missing, bad = number_cells(column, money=money)
    if required and missing.any():
        raise EventDataError(f"missing {what}", path=path,
                             rows=[int(k) + 1 for k in np.flatnonzero(missing)], column=name)
    if bad.any():
        shown = show_values(column.to_numpy(dtype=object)[bad])
        raise EventDataError(f"{what} is not a number: {shown}", path=path,
                             rows=[int(k) + 1 for k in np.flatnonzero(bad)], column=name)
    return values


#: Text that names a year or a month, not a day: the ISO parser reads ``1994`` as 1 January
#: and ``1994-12`` (or ``1994/12``) as the 1st, silently moving every such event.
_COARSE_DATE_RE = re.compile(r"^\s*[+-]?(\d{4})(?:\s*[-/.]\s*(\d{1,2}))?\s*$")


def coarse_dates(column: pd.Series) -> tuple[str, np.ndarray] | None:
    """Dates given only to the year or the month (``1994``, ``1994-12``): the problem in
    words and the cells (a mask), or None.

    A wake counts whole days: read as 1 January or the 1st, such events would land up to a
    year from where they happened, with nothing to show for it; every date reader refuses
    them (the caller names the file, the column and the rows).
    """
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return None
    raw = column.to_numpy(dtype=object)
    matches = [_COARSE_DATE_RE.match(v) if isinstance(v, str) else None for v in raw]
    coarse = np.array([m is not None for m in matches], dtype=bool)
    if not coarse.any():
        return None
    months = sum(1 for m in matches if m is not None and m.group(2))
    years = int(coarse.sum()) - months
    what = " and ".join(part for part in (
        f"{years:,} to the year only" if years else "",
        f"{months:,} to the month only" if months else "") if part)
    return (f"{int(coarse.sum()):,} of {len(raw):,} dates are given {what} "
            f"(e.g. {show_values(raw[coarse])}), which would be read as 1 January or the 1st "
            "of the month; wakes count whole days, so give each event's day", coarse)


def parse_dates(column: pd.Series, *, name: str, path: str | None) -> pd.Series:
    """Parse a column of dates (a time of day, if any, is dropped) to midnight UTC.

    Accepts ISO 8601 and the day-first spellings of ACLED's exports (see
    :data:`DATE_FORMATS_TEXT`). Missing cells give NaT.

    Raises
    ------
    EventDataError
        A cell holds text that is no date in those formats, or a date given only to the year
        or the month (:func:`coarse_dates`), naming the rows and the column.
    """
    missing = missing_mask(column)
    if (coarse := coarse_dates(column)) is not None:
        raise EventDataError(coarse[0], path=path, rows=list(np.flatnonzero(coarse[1]) + 1),
                             column=name)
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
