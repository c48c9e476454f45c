"""ACLED exports as outcome events: both layouts, validated, with named outcome definitions.

ACLED (Armed Conflict Location & Event Data) ships events in two layouts:

- **dyadic** (the usual file and the API): one row per event, with ``actor1``, ``inter1``,
  ``actor2``, ``inter2``;
- **monadic** (the Data Export Tool's default): one row per actor, so an event with two actors
  appears twice and the file has no ``actor2``/``inter2`` columns. :func:`read_acled` rebuilds
  one row per event: the event's first row gives ``actor1``/``assoc_actor_1``/``inter1``, its
  second row ``actor2``/``assoc_actor_2``/``inter2`` (single-actor events get no actor2 and
  ``inter2 = 0``), the rest comes from the first row. ACLED's ``interaction`` code
  (``10 * min + max`` of the two inter codes) is checked against the result.

Outcomes are named, documented filters (:data:`OUTCOMES`), each overridable
(:meth:`Outcome.replace`, :func:`parse_outcome`). ACLED's terms forbid republishing its rows:
nothing here writes them anywhere.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.tables import (
    check_coordinates,
    counted,
    find_column,
    header_key,
    missing_mask,
    parse_dates,
    parse_numbers,
    read_table,
    study_period,
)

__all__ = [
    "INTER_CODES",
    "NSAG_CODES",
    "OUTCOMES",
    "Outcome",
    "parse_outcome",
    "read_acled",
]

#: ACLED's actor-type ("inter") codes. Exports before 2024 write the number, later ones the name.
INTER_CODES: dict[int, str] = {
    0: "none (no second actor)",
    1: "State forces",
    2: "Rebel group",
    3: "Political militia",
    4: "Identity militia",
    5: "Rioters",
    6: "Protesters",
    7: "Civilians",
    8: "External/Other forces",
}
#: The non-state armed groups of Sauter (2022): rebels, political and identity militias.
NSAG_CODES: tuple[int, ...] = (2, 3, 4)

_INTER_BY_NAME = {header_key(name): code for code, name in INTER_CODES.items() if code}
_INTER_BY_NAME.update({header_key("Rebel groups"): 2, header_key("Political militias"): 3,
                       header_key("Identity militias"): 4, header_key("Communal militia"): 4,
                       header_key("External forces"): 8, header_key("Other forces"): 8,
                       header_key("State forces"): 1, header_key("None"): 0})

# Our names -> the spellings ACLED has used for them (matched by header_key).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "event_id_cnty": ("event_id_cnty", "event_id", "data_id"),
    "event_date": ("event_date", "date"),
    "latitude": ("latitude", "lat"),
    "longitude": ("longitude", "lon", "lng"),
    "event_type": ("event_type",),
    "sub_event_type": ("sub_event_type",),
    "actor1": ("actor1",),
    "assoc_actor_1": ("assoc_actor_1",),
    "inter1": ("inter1",),
    "actor2": ("actor2",),
    "assoc_actor_2": ("assoc_actor_2",),
    "inter2": ("inter2",),
    "interaction": ("interaction",),
    "country": ("country",),
    "admin1": ("admin1",),
    "admin2": ("admin2",),
    "location": ("location",),
    "geo_precision": ("geo_precision",),
    "time_precision": ("time_precision",),
    "fatalities": ("fatalities",),
}
_REQUIRED = ("event_id_cnty", "event_date", "latitude", "longitude", "event_type", "inter1")
# Columns the two rows of one event in a monadic file must agree on.
_SAME_FOR_BOTH_ACTORS = ("event_date", "latitude", "longitude", "event_type")


@dataclass(frozen=True)
class Outcome:
    """A named outcome: which ACLED events count as dependent events.

    An event is selected when its event type is one of ``event_types`` (any, if ``None``),
    its sub-event type one of ``sub_event_types`` (any, if ``None``), and, when
    ``inter_codes`` is given, at least one of its two actors (``inter1`` or ``inter2``) has
    one of those actor-type codes (:data:`INTER_CODES`). Text is compared ignoring case,
    accents and punctuation.

    Attributes
    ----------
    name
        Short identifier, used for output folders and options (``vac``).
    label
        Plain-words title for reports.
    description
        The rule in words, with its source.
    event_types, sub_event_types
        ACLED ``event_type`` / ``sub_event_type`` values to keep, or ``None`` for any.
    inter_codes
        ACLED actor-type codes of which either actor must have one, or ``None`` for any.
    """

    name: str
    label: str
    description: str = ""
    event_types: tuple[str, ...] | None = None
    sub_event_types: tuple[str, ...] | None = None
    inter_codes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not self.name or header_key(self.name) != self.name.lower().replace("-", "_"):
            raise SettingsError(f"outcome name {self.name!r}: use letters, digits and _ only")
        for field in ("event_types", "sub_event_types", "inter_codes"):
            value = getattr(self, field)
            if value is not None and len(value) == 0:
                raise SettingsError(f"outcome {self.name!r}: {field} is empty; use None for "
                                    "'any'")
        if self.inter_codes is not None:
            unknown = [c for c in self.inter_codes if c not in INTER_CODES]
            if unknown:
                raise SettingsError(f"outcome {self.name!r}: unknown inter code(s) {unknown}; "
                                    f"ACLED's codes are {sorted(INTER_CODES)}")

    def replace(self, **changes) -> Outcome:
        """A copy with some fields changed (e.g. ``inter_codes=(2, 3)``)."""
        return dataclasses.replace(self, **changes)

    def rule(self) -> str:
        """The filter in words."""
        parts = []
        if self.event_types is not None:
            parts.append("event_type in {" + ", ".join(self.event_types) + "}")
        if self.sub_event_types is not None:
            parts.append("sub_event_type in {" + ", ".join(self.sub_event_types) + "}")
        if self.inter_codes is not None:
            codes = ", ".join(str(c) for c in self.inter_codes)
            parts.append(f"inter1 or inter2 in {{{codes}}}")
        return " and ".join(parts) if parts else "every event"

    def select(self, events: pd.DataFrame) -> np.ndarray:
        """Boolean mask of the events of a :func:`read_acled` table that this outcome keeps."""
        keep = np.ones(len(events), dtype=bool)
        if self.event_types is not None:
            keep &= _text_in(events["event_type"], self.event_types)
        if self.sub_event_types is not None:
            if "sub_event_type" not in events:
                raise EventDataError(f"outcome {self.name!r} filters on sub_event_type, which "
                                     "the ACLED file lacks", path=events.attrs.get("source"))
            keep &= _text_in(events["sub_event_type"], self.sub_event_types)
        if self.inter_codes is not None:
            codes = list(self.inter_codes)
            keep &= (events["inter1"].isin(codes) | events["inter2"].isin(codes)).to_numpy()
        return keep


#: The three outcomes of Sauter (2022), section 4 (see ``../shared/docs/PAPER.md``).
OUTCOMES: dict[str, Outcome] = {
    "vac": Outcome(
        name="vac",
        label="Violence against civilians",
        description=("All ACLED events of type 'Violence against civilians', whoever the "
                     "perpetrator (the paper's main outcome, Table 3)."),
        event_types=("Violence against civilians",),
    ),
    "battles_nsag": Outcome(
        name="battles_nsag",
        label="Battles involving a non-state armed group",
        description=("ACLED 'Battles' in which at least one side is a non-state armed group: "
                     "a rebel group (inter code 2), a political militia (3) or an identity "
                     "militia (4) (the paper's Table 4)."),
        event_types=("Battles",),
        inter_codes=NSAG_CODES,
    ),
    "nsag": Outcome(
        name="nsag",
        label="All non-state armed group activity",
        description=("Every ACLED event, of any type, with a non-state armed group (inter "
                     "code 2, 3 or 4) on either side (the paper's third model). The paper "
                     "does not give its exact rule; this is the usual operationalisation."),
        inter_codes=NSAG_CODES,
    ),
}


def parse_outcome(text: str) -> Outcome:
    """An outcome from its name, optionally with fields overridden.

    Parameters
    ----------
    text
        ``NAME`` (one of :data:`OUTCOMES`) or ``NAME:FIELD=VALUE;FIELD=VALUE``. Fields:
        ``event_types``, ``sub_event_types`` (comma-separated ACLED values, or ``any``),
        ``inter_codes`` (comma-separated codes 0-8, or ``any``), ``label``. A new name needs
        at least one filter field, e.g.
        ``explosions:event_types=Explosions/Remote violence;label=Explosions``.

    Returns
    -------
    Outcome

    Raises
    ------
    SettingsError
        Unknown field, bad value, or a new name without any filter.
    """
    name, _, rest = str(text).partition(":")
    name = name.strip()
    base = OUTCOMES.get(name)
    changes: dict = {}
    for item in filter(None, (part.strip() for part in rest.split(";"))):
        field, sep, value = item.partition("=")
        field, value = field.strip(), value.strip()
        if not sep:
            raise SettingsError(f"outcome {text!r}: expected FIELD=VALUE, got {item!r}")
        if field == "label":
            changes["label"] = value
        elif field in ("event_types", "sub_event_types"):
            changes[field] = None if value.lower() == "any" else tuple(
                v.strip() for v in value.split(",") if v.strip())
        elif field == "inter_codes":
            if value.lower() == "any":
                changes[field] = None
            else:
                try:
                    changes[field] = tuple(int(v) for v in value.split(",") if v.strip())
                except ValueError:
                    raise SettingsError(f"outcome {text!r}: inter_codes must be whole numbers "
                                        f"0-8, got {value!r}") from None
        else:
            raise SettingsError(f"outcome {text!r}: unknown field {field!r}; use event_types, "
                                "sub_event_types, inter_codes or label")
    if base is None:
        if not ({"event_types", "sub_event_types", "inter_codes"} & set(changes)):
            raise SettingsError(f"unknown outcome {name!r}; the named outcomes are "
                                f"{', '.join(OUTCOMES)}; a new one needs a filter, like "
                                f"'{name}:event_types=Battles'")
        base = Outcome(name=name, label=changes.get("label", name),
                       description="user-defined outcome")
    elif changes:
        changes.setdefault("description", base.description + " (overridden: "
                           + "; ".join(f"{k}={v}" for k, v in changes.items()) + ")")
    return base.replace(**changes) if changes else base


def read_acled(
    path: str | os.PathLike,
    *,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    layout: str = "auto",
) -> pd.DataFrame:
    """Read an ACLED export (monadic or dyadic) into one validated row per event.

    Parameters
    ----------
    path
        An ACLED CSV (or Parquet) export. Column names are matched ignoring case (older
        exports write ``EVENT_DATE``). Dates may be ISO (``2020-12-31``) or as the Export
        Tool writes them (``31 December 2020``). ``inter1``/``inter2`` may be ACLED's codes
        (1-8) or, as in exports since 2024, their names (``Rebel group``).
    start, end
        First and last day of the study period (inclusive, UTC dates). Events outside are
        dropped and counted. ``None``: no bound.
    layout
        ``"auto"`` (dyadic when the file has ``actor2``/``inter2`` columns, else monadic),
        ``"monadic"`` or ``"dyadic"``.

    Returns
    -------
    pandas.DataFrame
        One row per event, in the order of the event's first row in the file, with columns
        ``event_id_cnty`` (str), ``time`` (``datetime64[ns, UTC]``, midnight of the event
        date), ``lon``, ``lat`` (float64, WGS84 degrees), ``event_type``,
        ``sub_event_type``, ``actor1``, ``assoc_actor_1``, ``inter1`` (int64),
        ``actor2``, ``assoc_actor_2``, ``inter2`` (int64, 0 for no second actor),
        ``admin1``, ``admin2``, ``location`` (str), ``fatalities`` (float64),
        ``geo_precision``, ``time_precision`` (float64; ACLED's 1-3) and ``file_row``
        (int64, the 1-based data row of the event's first row). Columns the file lacks are
        missing (NaN). ``attrs``: ``source`` (the path), ``layout`` (``monadic`` or
        ``dyadic``), ``rows_read``, ``events_read`` (ints) and ``dropped``, a list of
        ``{"step", "reason", "events"}`` records (events dropped for missing coordinates or
        for falling outside the period).

    Raises
    ------
    EventDataError
        The file is missing or unreadable, lacks a required column (``event_id_cnty``,
        ``event_date``, ``latitude``, ``longitude``, ``event_type``, ``inter1``), or holds a
        bad date, coordinate or inter code, or the two rows of one monadic event disagree.
        Messages name the file, the 1-based data rows and the column.
    SettingsError
        Bad ``layout``, ``start`` or ``end``.
    """
    if layout not in ("auto", "monadic", "dyadic"):
        raise SettingsError(f"layout must be 'auto', 'monadic' or 'dyadic', got {layout!r}")
    first_day, last_day = study_period(start, end)
    raw = read_table(path, "ACLED file")
    label = raw.attrs["source"]
    columns = _acled_columns(raw, label)
    layout = _layout(layout, columns, label)
    frame = _first_actor_rows(raw, columns, label)
    interaction = (_optional_numbers(_text(raw, columns, "interaction"),
                                     columns["interaction"], label)
                   if columns["interaction"] is not None else None)
    if layout == "dyadic":
        frame["actor2"] = _text(raw, columns, "actor2")
        frame["assoc_actor_2"] = _text(raw, columns, "assoc_actor_2")
        frame["inter2"] = _inter_codes(_text(raw, columns, "inter2"), columns["inter2"], label,
                                       missing_is_zero=True)
        frame = _dyadic_unique(frame, label, columns)
    else:
        frame = _rebuild_dyads(frame, label, columns)
    if interaction is not None:
        _check_interaction(frame, interaction, label, columns["interaction"])
    frame = frame[_EVENT_COLUMNS].reset_index(drop=True)
    events_read = len(frame)
    frame, dropped = _drop_outside(frame, first_day, last_day)
    frame.attrs.update({"source": label, "layout": layout, "rows_read": len(raw),
                        "events_read": events_read, "dropped": dropped})
    return frame


_EVENT_COLUMNS = ["event_id_cnty", "time", "lon", "lat", "event_type", "sub_event_type",
                  "actor1", "assoc_actor_1", "inter1", "actor2", "assoc_actor_2", "inter2",
                  "admin1", "admin2", "location", "fatalities", "geo_precision",
                  "time_precision", "file_row"]


def _acled_columns(raw: pd.DataFrame, label: str) -> dict[str, str | None]:
    """Our column names -> the file's (None where the file lacks one); the required ones
    checked."""
    columns = {ours: find_column(raw, names) for ours, names in _COLUMNS.items()}
    missing = [c for c in _REQUIRED if columns[c] is None]
    if missing:
        raise EventDataError(
            f"not an ACLED export: no column {', '.join(repr(c) for c in missing)} "
            f"(columns: {', '.join(map(str, raw.columns[:12]))}"
            f"{', ...' if raw.shape[1] > 12 else ''})", path=label)
    return columns


def _layout(layout: str, columns: dict, label: str) -> str:
    """``monadic`` or ``dyadic``: as asked, or (``auto``) dyadic when the file has inter2."""
    has_actor2 = columns["inter2"] is not None
    if layout == "auto":
        layout = "dyadic" if has_actor2 else "monadic"
    if layout == "dyadic" and not has_actor2:
        raise EventDataError("layout 'dyadic' needs an inter2 column; this looks like a "
                             "monadic export (one row per actor): use layout='monadic'",
                             path=label, column="inter2")
    return layout


def _text(raw: pd.DataFrame, columns: dict, ours: str) -> pd.Series:
    """A column of the file as text (all missing when the file lacks it)."""
    name = columns[ours]
    if name is None:
        return pd.Series(pd.array([None] * len(raw), dtype="str"))
    return raw[name].astype("str")


def _first_actor_rows(raw: pd.DataFrame, columns: dict, label: str) -> pd.DataFrame:
    """One validated row per file row: the event and its first actor (ids, dates,
    coordinates and inter codes checked)."""
    def col(ours: str) -> pd.Series:
        return _text(raw, columns, ours)

    ids = col("event_id_cnty")
    no_id = missing_mask(ids)
    if no_id.any():
        raise EventDataError("missing event id", path=label,
                             rows=list(np.flatnonzero(no_id) + 1),
                             column=columns["event_id_cnty"])
    inter1 = _inter_codes(col("inter1"), columns["inter1"], label)
    time = parse_dates(col("event_date"), name=columns["event_date"], path=label)
    no_date = time.isna().to_numpy()
    if no_date.any():
        raise EventDataError("missing event date", path=label,
                             rows=list(np.flatnonzero(no_date) + 1),
                             column=columns["event_date"])
    lon = parse_numbers(col("longitude"), name=columns["longitude"], path=label,
                        what="longitude")
    lat = parse_numbers(col("latitude"), name=columns["latitude"], path=label,
                        what="latitude")
    check_coordinates(lon, lat, lon_name=columns["longitude"], lat_name=columns["latitude"],
                      path=label)
    return pd.DataFrame({
        "event_id_cnty": ids.str.strip(),
        "time": time,
        "lon": lon,
        "lat": lat,
        "event_type": col("event_type").str.strip(),
        "sub_event_type": col("sub_event_type").str.strip(),
        "actor1": col("actor1"),
        "assoc_actor_1": col("assoc_actor_1"),
        "inter1": inter1,
        "admin1": col("admin1").str.strip(),
        "admin2": col("admin2").str.strip(),
        "location": col("location"),
        **{name: _optional_numbers(col(name), columns[name], label)
           for name in ("fatalities", "geo_precision", "time_precision")},
        "file_row": np.arange(1, len(raw) + 1, dtype=np.int64),
    })


def _drop_outside(frame: pd.DataFrame, first_day, last_day) -> tuple[pd.DataFrame, list[dict]]:
    """The events with coordinates inside the study period, and the drop records."""
    dropped = []
    no_xy = (frame["lon"].isna() | frame["lat"].isna()).to_numpy()
    dropped.append({"step": "ACLED", "reason": "missing coordinates",
                    "events": int(no_xy.sum())})
    frame = frame[~no_xy]
    for bound, outside, reason in (
        (first_day, lambda t, b: t < b, "before the study period"),
        (last_day, lambda t, b: t > b, "after the study period"),
    ):
        if bound is None:
            continue
        mask = outside(frame["time"], bound).to_numpy()
        dropped.append({"step": "ACLED", "reason": f"{reason} ({bound.date()})",
                        "events": int(mask.sum())})
        frame = frame[~mask]
    return frame.reset_index(drop=True), dropped


def _text_in(column: pd.Series, values: Sequence[str]) -> np.ndarray:
    wanted = {header_key(v) for v in values}
    return column.astype("str").map(lambda v: header_key(v) in wanted if isinstance(v, str)
                                    else False).to_numpy(dtype=bool)


def _inter_codes(column: pd.Series, name: str | None, path: str, *,
                 missing_is_zero: bool = False) -> np.ndarray:
    missing = missing_mask(column)
    text = column.astype("str").str.strip()
    numeric = pd.to_numeric(text.where(~missing, None), errors="coerce").to_numpy(
        dtype=float, na_value=np.nan)
    by_name = text.map(lambda v: _INTER_BY_NAME.get(header_key(v), -1) if isinstance(v, str)
                       else -1).to_numpy(dtype=np.int64)
    is_code = np.isin(numeric, list(INTER_CODES))
    codes = np.where(is_code, np.nan_to_num(numeric).astype(np.int64), by_name)
    bad = ~missing & (codes < 0)
    codes[missing] = 0
    if bad.any():
        shown = ", ".join(repr(v) for v in dict.fromkeys(column[bad].tolist()[:3]))
        raise EventDataError(f"unknown ACLED actor type {shown}; expected a code 0-8 or a name "
                             f"like 'Rebel group'", path=path, rows=list(np.flatnonzero(bad) + 1),
                             column=name)
    if missing.any() and not missing_is_zero:
        raise EventDataError("missing actor type (inter code)", path=path,
                             rows=list(np.flatnonzero(missing) + 1), column=name)
    return codes


def _optional_numbers(column: pd.Series, name: str | None, path: str) -> np.ndarray:
    if name is None:
        return np.full(len(column), np.nan)
    return parse_numbers(column, name=name, path=path, what=name)


def _dyadic_unique(frame: pd.DataFrame, path: str, columns: dict) -> pd.DataFrame:
    duplicated = frame["event_id_cnty"].duplicated(keep=False).to_numpy()
    if not duplicated.any():
        return frame
    core = ["event_id_cnty", "time", "lon", "lat", "event_type", "inter1", "inter2"]
    same = frame[duplicated].duplicated(subset=core, keep=False)
    if not same.all():
        rows = frame.loc[duplicated, "file_row"][~same.to_numpy()].tolist()
        raise EventDataError("one event id on rows that disagree (a dyadic file has one row "
                             "per event; is this a monadic export? use layout='monadic')",
                             path=path, rows=rows, column=columns["event_id_cnty"])
    return frame.drop_duplicates(subset="event_id_cnty", keep="first")


def _rebuild_dyads(frame: pd.DataFrame, path: str, columns: dict) -> pd.DataFrame:
    position = frame.groupby("event_id_cnty", sort=False).cumcount().to_numpy()
    extra = position >= 2
    if extra.any():
        raise EventDataError("more than two rows for one event; a monadic export has one row "
                             "per actor (actor1 and actor2)", path=path,
                             rows=frame.loc[extra, "file_row"].tolist(),
                             column=columns["event_id_cnty"])
    first = frame[position == 0].set_index("event_id_cnty", drop=False)
    second = frame[position == 1].set_index("event_id_cnty")
    paired = first.loc[second.index]
    for name in _SAME_FOR_BOTH_ACTORS:
        ours = {"event_date": "time", "latitude": "lat", "longitude": "lon"}.get(name, name)
        a, b = paired[ours].to_numpy(), second[ours].to_numpy()
        differs = ~((a == b) | (pd.isna(a) & pd.isna(b)))
        if differs.any():
            rows = second["file_row"].to_numpy()[differs].tolist()
            raise EventDataError(
                f"the two rows of a monadic event disagree on {columns[name]} (rows shown are "
                "the second row of each event)", path=path, rows=rows, column=columns[name])
    out = first.copy()
    out["actor2"] = pd.array([None] * len(out), dtype="str")
    out["assoc_actor_2"] = pd.array([None] * len(out), dtype="str")
    out["inter2"] = np.zeros(len(out), dtype=np.int64)
    out.loc[second.index, "actor2"] = second["actor1"]
    out.loc[second.index, "assoc_actor_2"] = second["assoc_actor_1"]
    out.loc[second.index, "inter2"] = second["inter1"].to_numpy()
    return out.reset_index(drop=True)


def _check_interaction(frame: pd.DataFrame, interaction: np.ndarray, path: str,
                       name: str) -> None:
    # interaction is per file row; take each event's first row
    stated = interaction[frame["file_row"].to_numpy() - 1]
    a, b = frame["inter1"].to_numpy(), frame["inter2"].to_numpy()
    expected = np.where(b == 0, 10 * a, 10 * np.minimum(a, b) + np.maximum(a, b))
    wrong = np.isfinite(stated) & (stated != expected)
    # ACLED codes a few events one-sided (e.g. 10*inter1 with an actor2): tolerate a small
    # share, but a wholesale mismatch means the rows were paired wrongly
    if wrong.mean() > 0.05:
        raise EventDataError(
            f"ACLED's interaction code disagrees with inter1/inter2 for {int(wrong.sum()):,} "
            f"of {counted(len(frame), 'event')}; the actor rows may be out of order or the "
            "layout wrong "
            "(layout='monadic' or 'dyadic')", path=path,
            rows=frame.loc[wrong, "file_row"].tolist(), column=name)
