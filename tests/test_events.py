"""Tests of bayes_wake.io.events: reading, validating and summarising event files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayes_wake.errors import DuplicateRowsWarning, EventDataError, SettingsError
from bayes_wake.io.events import read_events, summarise_events

# A small table in R's mwa layout. The covariates and coordinates are %.17g texts whose
# doubles a sloppy parser gets wrong in the last bit; times mix the accepted formats (all
# without a UTC offset: a file that mixes times with and without one is an error).
SMALL_CSV = """\
"type","lon","lat","timestamp","match1","match2"
"dependent",0.51959714852273498,0.335288085509092,"1994-12-24 00:00:00",1.18150381660089,0.99097009368887301
"treatment",-0.79973203443035001,-0.80431085661303603,"1994-12-25",0.87101707588881305,1.0117162649220299
"control",-0.73973203443034996,-0.86431085661303597,"1994-12-25T06:30:00",1.1071287912316601,0.99102205532884202
"treatment",12.5,45.25,"1994-12-25T23:00:00",0.1,0.2
"control",-179.99999999999997,-89.999999999999986,"1994-12-27 12:00:00",0.30000000000000004,3
"dependent",179.5,89.5,"1994-12-28 00:00:00",,
"""
SMALL_TYPES = ["dependent", "treatment", "control", "treatment", "control", "dependent"]
SMALL_TIMES = pd.to_datetime(
    [
        "1994-12-24 00:00:00",
        "1994-12-25 00:00:00",
        "1994-12-25 06:30:00",
        "1994-12-25 23:00:00",
        "1994-12-27 12:00:00",
        "1994-12-28 00:00:00",
    ],
    utc=True,
).as_unit("ns")


def write(tmp_path: Path, text: str, name: str = "events.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def small_columns() -> dict[str, list]:
    """The small table as plain Python values, parsed from its text by float()."""
    rows = list(csv.DictReader(SMALL_CSV.splitlines()))
    out: dict[str, list] = {name: [] for name in rows[0]}
    for row in rows:
        for name, text in row.items():
            if name in ("type", "timestamp"):
                out[name].append(text)
            else:
                out[name].append(float(text) if text else np.nan)
    return out


def without_source(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out.attrs = {}
    return out


# ---------------------------------------------------------------------------------------------
# the real example
# ---------------------------------------------------------------------------------------------


def test_mwa_example(shared_data: Path) -> None:
    path = shared_data / "mwa_example" / "mwa_data.csv"
    events = read_events(path)

    assert len(events) == 394
    assert events["role"].value_counts().to_dict() == {
        "dependent": 319,
        "control": 50,
        "treatment": 25,
    }
    assert list(events.columns) == ["event_id", "role", "time", "lon", "lat", "match1", "match2"]
    assert events["event_id"].tolist() == list(range(1, 395))
    assert events["event_id"].dtype == np.int64
    assert str(events["time"].dt.tz) == "UTC"
    assert events["time"].iloc[0] == pd.Timestamp("1901-10-02", tz="UTC")
    assert events.attrs == {"source": str(path), "covariates": ["match1", "match2"],
                            "duplicate_rows": (), "duplicates_dropped": False}

    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for name in ("lon", "lat", "match1", "match2"):
        expected = np.array([float(row[name]) for row in rows])
        # bit-exact: compare the bytes, not the values
        assert events[name].to_numpy().tobytes() == expected.tobytes(), name
    assert events["role"].tolist() == [row["type"] for row in rows]


# ---------------------------------------------------------------------------------------------
# one table, four formats
# ---------------------------------------------------------------------------------------------


def test_small_csv(tmp_path: Path) -> None:
    events = read_events(write(tmp_path, SMALL_CSV))
    plain = small_columns()

    assert events["role"].tolist() == SMALL_TYPES
    assert events["role"].dtype == "str"
    pd.testing.assert_series_equal(
        events["time"], pd.Series(SMALL_TIMES, name="time"), check_freq=False
    )
    for name in ("lon", "lat", "match1", "match2"):
        assert events[name].dtype == np.float64
        assert events[name].to_numpy().tobytes() == np.array(plain[name]).tobytes(), name
    # covariates may be missing for dependent events
    assert np.isnan(events.loc[5, "match1"])


def geo_frame(crs: str | int = 4326):
    gpd = pytest.importorskip("geopandas")
    plain = small_columns()
    frame = pd.DataFrame(
        {
            "type": plain["type"],
            "timestamp": plain["timestamp"],
            "match1": plain["match1"],
            "match2": plain["match2"],
        }
    )
    geometry = gpd.points_from_xy(plain["lon"], plain["lat"], crs=4326)
    return gpd.GeoDataFrame(frame, geometry=geometry).to_crs(crs)


def test_formats_give_the_same_table(tmp_path: Path) -> None:
    from_csv = read_events(write(tmp_path, SMALL_CSV))
    plain = small_columns()

    parquet = tmp_path / "events.parquet"
    pd.DataFrame(plain).to_parquet(parquet)

    gpkg = tmp_path / "events.gpkg"
    geo_frame().to_file(gpkg, engine="pyogrio")

    # GDAL's GeoJSON writer rounds coordinates to 15 digits, so write the file by hand: json
    # writes the shortest text that round-trips.
    geojson = tmp_path / "events.geojson"
    features = []
    for i in range(len(plain["type"])):
        properties = {
            "type": plain["type"][i],
            "timestamp": plain["timestamp"][i],
            "match1": None if np.isnan(plain["match1"][i]) else plain["match1"][i],
            "match2": None if np.isnan(plain["match2"][i]) else plain["match2"][i],
        }
        point = {"type": "Point", "coordinates": [plain["lon"][i], plain["lat"][i]]}
        features.append({"type": "Feature", "properties": properties, "geometry": point})
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

    for path in (parquet, gpkg, geojson):
        other = read_events(path)
        assert other.attrs["source"] == str(path)
        pd.testing.assert_frame_equal(without_source(other), without_source(from_csv))
        for name in ("lon", "lat", "match1", "match2"):
            assert other[name].to_numpy().tobytes() == from_csv[name].to_numpy().tobytes()


def test_in_memory_frames(tmp_path: Path) -> None:
    from_csv = without_source(read_events(write(tmp_path, SMALL_CSV)))
    plain = pd.DataFrame(small_columns())

    events = read_events(plain)
    assert events.attrs["source"] == "<DataFrame>"
    pd.testing.assert_frame_equal(without_source(events), from_csv)
    pd.testing.assert_frame_equal(without_source(read_events(geo_frame())), from_csv)
    # datetime columns, naive read as UTC and aware converted
    naive = plain.assign(timestamp=SMALL_TIMES.tz_localize(None))
    pd.testing.assert_frame_equal(without_source(read_events(naive)), from_csv)
    aware = plain.assign(timestamp=SMALL_TIMES.tz_convert("America/Chicago"))
    pd.testing.assert_frame_equal(without_source(read_events(aware)), from_csv)
    # the caller's frame is left alone
    assert list(plain.columns) == ["type", "lon", "lat", "timestamp", "match1", "match2"]


def test_other_crs_is_reprojected(tmp_path: Path) -> None:
    path = tmp_path / "mercator.gpkg"
    geo_frame(3857).to_file(path, engine="pyogrio")
    events = read_events(path)
    plain = small_columns()
    # not the poles: Web Mercator cannot hold them
    np.testing.assert_allclose(events["lon"][:4], plain["lon"][:4], atol=1e-9)
    np.testing.assert_allclose(events["lat"][:4], plain["lat"][:4], atol=1e-9)


def test_non_point_geometry_names_rows(tmp_path: Path) -> None:
    shapely = pytest.importorskip("shapely")
    frame = geo_frame()
    frame.loc[[1, 4], "geometry"] = shapely.LineString([(0, 0), (1, 1)])
    path = tmp_path / "lines.gpkg"
    frame.to_file(path, engine="pyogrio")
    with pytest.raises(EventDataError, match="not a Point geometry") as info:
        read_events(path)
    assert info.value.rows == [2, 5]
    assert info.value.path == str(path)
    assert "LineString" in str(info.value)


def test_geopackage_with_two_layers_needs_a_layer(tmp_path: Path) -> None:
    path = tmp_path / "two.gpkg"
    geo_frame().to_file(path, layer="a", engine="pyogrio")
    geo_frame().iloc[:3].to_file(path, layer="b", engine="pyogrio")
    with pytest.raises(EventDataError, match="layer="):
        read_events(path)
    assert len(read_events(path, layer="a")) == 6
    with pytest.raises(EventDataError, match="no layer 'c'"):
        read_events(path, layer="c")


# ---------------------------------------------------------------------------------------------
# layouts and roles
# ---------------------------------------------------------------------------------------------

MAPPED_CSV = """\
id,kind,date,x,y,income,note_code
10,T,2020-03-01T10:00:00Z,7.1,50.2,1000,3
11,C,2020-03-01T11:00:00Z,7.2,50.3,1100,4
12,D,2020-03-02T00:00:00Z,7.3,50.4,,5
13,X,2020-03-03T00:00:00Z,7.4,50.5,900,
"""
MAPPING = {"time": "date", "lon": "x", "lat": "y", "id": "id"}
ROLES = {"treatment": ("kind", "T"), "control": ("kind", "C"), "dependent": ("kind", "D")}


def test_column_mapping_and_other_role(tmp_path: Path) -> None:
    events = read_events(write(tmp_path, MAPPED_CSV), columns=MAPPING, roles=ROLES)
    assert list(events.columns) == [
        "event_id",
        "role",
        "time",
        "lon",
        "lat",
        "income",
        "note_code",
    ]
    assert events["event_id"].tolist() == [10, 11, 12, 13]
    assert events["role"].tolist() == ["treatment", "control", "dependent", "other"]
    assert events["time"].iloc[0] == pd.Timestamp("2020-03-01 10:00", tz="UTC")
    assert events["lon"].tolist() == [7.1, 7.2, 7.3, 7.4]
    assert events.attrs["covariates"] == ["income", "note_code"]


def test_explicit_covariates(tmp_path: Path) -> None:
    path = write(tmp_path, MAPPED_CSV)
    events = read_events(path, columns=MAPPING, roles=ROLES, covariates=["income"])
    assert events.attrs["covariates"] == ["income"]
    assert "note_code" not in events.columns
    with pytest.raises(EventDataError, match="missing column 'wealth'") as info:
        read_events(path, columns=MAPPING, roles=ROLES, covariates=["income", "wealth"])
    assert info.value.column == "wealth"
    assert "id, kind, date, x, y, income, note_code" in str(info.value)


def test_label_columns_become_codes_in_order_of_first_appearance(tmp_path: Path) -> None:
    lines = SMALL_CSV.strip().splitlines()
    zones = ["", "Gao", "Mopti", " Gao", "Kidal", "NA"]  # the dependent events have none
    text = "\n".join([lines[0] + ',"zone"'] + [f"{line},{z}" for line, z in
                                                zip(lines[1:], zones, strict=True)])
    events = read_events(write(tmp_path, text), covariates=["match1"], labels=["zone"])
    np.testing.assert_array_equal(events["zone"], [np.nan, 0, 1, 0, 2, np.nan])
    assert events.attrs["covariates"] == ["match1", "zone"]
    text = text.replace("0.87101707588881305,1.0117162649220299,Gao",
                        "0.87101707588881305,1.0117162649220299,")
    with pytest.raises(EventDataError, match="missing group label") as info:
        read_events(write(tmp_path, text, "gap.csv"), covariates=["match1"], labels=["zone"])
    assert info.value.column == "zone" and "row 2" in str(info.value)


def test_kept_columns_come_as_the_file_holds_them_beside_their_codes(tmp_path: Path) -> None:
    lines = SMALL_CSV.strip().splitlines()
    zones = ["", "Gao", "Mopti", " Gao", "Kidal", "NA"]
    rows = [f"{line},{z}" for line, z in zip(lines[1:], zones, strict=True)]
    path = write(tmp_path, "\n".join([lines[0] + ',"zone"', *rows, rows[2]]))  # row 7 repeats 3
    with pytest.warns(DuplicateRowsWarning):
        events = read_events(path, covariates=["match1"], labels=["zone"],
                             keep={"zone names": "zone"}, drop_duplicates=True)
    assert events["zone names"].tolist()[1:5] == ["Gao", "Mopti", " Gao", "Kidal"]
    np.testing.assert_array_equal(events["zone"], [np.nan, 0, 1, 0, 2, np.nan])
    assert events.attrs["covariates"] == ["match1", "zone"]  # not a covariate
    with pytest.raises(EventDataError, match="no column 'zoen'; did you mean 'zone'"):
        read_events(path, covariates=["match1"], keep={"zone names": "zoen"})
    with pytest.raises(SettingsError, match="'match1' is already a column"):
        read_events(path, covariates=["match1"], keep={"match1": "zone"})


def test_numeric_selectors_match_as_text(tmp_path: Path) -> None:
    text = "timestamp,lon,lat,group\n2020-01-01,1,1,1\n2020-01-02,2,2,0\n2020-01-03,3,3,2\n"
    roles = {"treatment": ("group", 1), "control": ("group", "0"), "dependent": ("group", 2.0)}
    events = read_events(write(tmp_path, text), roles=roles)
    assert events["role"].tolist() == ["treatment", "control", "dependent"]
    # and against an integer column in memory
    frame = pd.read_csv(write(tmp_path, text, "again.csv"))
    assert frame["group"].dtype == np.int64
    assert read_events(frame, roles=roles)["role"].tolist() == ["treatment", "control", "dependent"]


def test_non_numeric_ids_become_source_id(tmp_path: Path) -> None:
    text = MAPPED_CSV.replace("\n10,", "\nev-a,").replace("\n11,", "\nev-b,")
    events = read_events(write(tmp_path, text), columns=MAPPING, roles=ROLES)
    assert events["event_id"].tolist() == [1, 2, 3, 4]
    assert events["source_id"].tolist() == ["ev-a", "ev-b", "12", "13"]
    assert list(events.columns)[-1] == "source_id"


def test_two_selectors_matching_one_row(tmp_path: Path) -> None:
    roles = {**ROLES, "dependent": ("income", "1100")}
    with pytest.raises(EventDataError, match="more than one role selector") as info:
        read_events(write(tmp_path, MAPPED_CSV), columns=MAPPING, roles=roles)
    assert info.value.rows == [2]
    assert "control ('kind' = 'C') and dependent ('income' = '1100')" in str(info.value)


def test_bad_settings() -> None:
    frame = pd.DataFrame(small_columns())
    with pytest.raises(SettingsError, match="unknown key 'timestamp'"):
        read_events(frame, columns={"timestamp": "date"})
    with pytest.raises(SettingsError, match="no selector for 'dependent'"):
        read_events(frame, roles={"treatment": ("type", "a"), "control": ("type", "b")})
    with pytest.raises(SettingsError, match="area latitudes"):
        read_events(frame, area=(0, 10, 1, 5))
    with pytest.raises(SettingsError, match="source must be"):
        read_events(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# validation errors: file, rows and column in the message
# ---------------------------------------------------------------------------------------------


def small_with(old: str, new: str) -> str:
    assert old in SMALL_CSV
    return SMALL_CSV.replace(old, new, 1)


def raises(path: Path, match: str, **kwargs) -> EventDataError:
    with pytest.raises(EventDataError, match=match) as info:
        read_events(path, **kwargs)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    return info.value


def test_unknown_role(tmp_path: Path) -> None:
    path = write(tmp_path, small_with('"control",-0.7397', '"treatmnet",-0.7397'))
    error = raises(path, "unknown role 'treatmnet'")
    assert error.rows == [3]
    assert error.column == "type"
    assert "did you mean 'treatment'" in str(error)
    assert "row 3, column 'type'" in str(error)


def test_missing_columns_lists_what_is_there(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_CSV.replace('"timestamp"', '"date"'))
    error = raises(path, "missing column 'timestamp'")
    assert error.column == "timestamp"
    assert "type, lon, lat, date, match1, match2" in str(error)
    assert "columns={'time': '<your column>'}" in str(error)

    # no hint to map a column the user mapped already
    error = raises(path, "missing column 'when'", columns={"time": "when"})
    assert "columns=" not in str(error)


@pytest.mark.parametrize(
    ("old", "new", "match", "rows"),
    [
        ('"1994-12-25T06:30:00"', '"1994-13-25"', "cannot parse timestamp '1994-13-25'", [3]),
        ('"1994-12-25T06:30:00"', '""', "missing timestamp", [3]),
        ('"1994-12-25T06:30:00"', '"25/12/1994"', "expected 'YYYY-MM-DD hh:mm:ss'", [3]),
    ],
)
def test_bad_timestamps(tmp_path: Path, old: str, new: str, match: str, rows: list[int]) -> None:
    error = raises(write(tmp_path, small_with(old, new)), match)
    assert error.rows == rows
    assert error.column == "timestamp"


def test_dates_given_only_to_the_year_or_month_are_refused(tmp_path: Path) -> None:
    """``1994`` and ``1994-12`` were read as 1 January and the 1st: events moved up to a
    year, and significant windows vanished without a word."""
    text = small_with('"1994-12-25T06:30:00"', '"1994"')
    text = text.replace('"1994-12-27 12:00:00"', '"1994-12"').replace(
        '"1994-12-28 00:00:00"', '"1994 / 12"')
    error = raises(write(tmp_path, text), "3 of 6 dates are given 1 to the year only and 2 "
                                          "to the month only")
    assert error.rows == [3, 5, 6] and error.column == "timestamp"
    assert "'1994', '1994-12'" in str(error)
    # a full date, with or without a time, is no coarse date
    assert len(read_events(write(tmp_path, SMALL_CSV, "fine.csv"))) == 6


def test_bad_coordinates(tmp_path: Path) -> None:
    def row_4(lon_lat: str) -> Path:
        return write(tmp_path, small_with(",12.5,45.25,", lon_lat))

    error = raises(row_4(",12.5,195.25,"), r"latitude not in \[-90, 90\]: 195.25")
    assert (error.rows, error.column) == ([4], "lat")
    assert "swapped" not in str(error)

    error = raises(row_4(",181,45.25,"), r"longitude not in \[-180, 180\]: 181")
    assert (error.rows, error.column) == ([4], "lon")

    error = raises(row_4(",,45.25,"), "missing longitude")
    assert (error.rows, error.column) == ([4], "lon")

    error = raises(row_4(",12.5,north,"), "latitude is not a number: 'north'")
    assert (error.rows, error.column) == ([4], "lat")

    # latitude 100 is impossible, but as a longitude it is fine
    error = raises(row_4(",45.25,100,"), "latitude and longitude may be swapped")
    assert error.rows == [4]

    error = raises(row_4(",1250000.0,5600000.0,"), "look projected")
    assert error.rows == [4]


def test_area_and_swapped_coordinates(tmp_path: Path) -> None:
    text = (
        "type,lon,lat,timestamp\n"
        "treatment,7.0,50.0,2020-01-01\n"
        "control,50.5,7.5,2020-01-02\n"  # swapped
        "dependent,7.2,50.2,2020-01-03\n"
        "dependent,51.0,7.0,2020-01-04\n"  # swapped
    )
    path = write(tmp_path, text)
    error = raises(path, "2 events outside the area", area=(5.0, 45.0, 10.0, 55.0))
    assert error.rows == [2, 4]
    assert "latitude and longitude look swapped" in str(error)

    # a point that is simply elsewhere is not called swapped
    error = raises(path, "2 events outside the area", area=(5.0, 45.0, 10.0, 50.6))
    assert error.rows == [2, 4]
    assert "look swapped in rows 2;" not in str(error)
    assert str(error).endswith("latitude and longitude look swapped in rows 2")

    assert len(read_events(path, area=(-10.0, 0.0, 60.0, 60.0))) == 4
    # across the antimeridian
    assert len(read_events(path, area=(170.0, 0.0, 60.0, 60.0))) == 4


def test_duplicate_ids(tmp_path: Path) -> None:
    text = MAPPED_CSV.replace("\n13,", "\n11,")
    error = raises(write(tmp_path, text), "duplicate event id 11", columns=MAPPING, roles=ROLES)
    assert (error.rows, error.column) == ([2, 4], "id")


def test_no_treatment_events(tmp_path: Path) -> None:
    text = SMALL_CSV.replace('"treatment"', '"control"')
    error = raises(write(tmp_path, text), "no treatment events: no row has 'type' = 'treatment'")
    assert error.column == "type"
    assert "values in 'type': 'control', 'dependent'" in str(error)

    roles = {**ROLES, "control": ("kind", "c")}
    error = raises(
        write(tmp_path, MAPPED_CSV, "mapped.csv"),
        "no control events: no row has 'kind' = 'c'",
        columns=MAPPING,
        roles=roles,
    )
    assert "did you mean 'C'?" in str(error)
    assert error.column == "kind"

    # no dependent events only warns: every wake counts zero, but the table is readable
    roles = {**ROLES, "dependent": ("kind", "dependent")}
    with pytest.warns(UserWarning, match="no dependent events: no row has 'kind' = 'dependent'"):
        events = read_events(write(tmp_path, MAPPED_CSV, "m.csv"), columns=MAPPING, roles=roles)
    assert events["role"].tolist() == ["treatment", "control", "other", "other"]


def test_covariate_errors(tmp_path: Path) -> None:
    def row_4(covariates: str) -> Path:
        return write(tmp_path, small_with(",0.1,0.2", covariates))

    error = raises(row_4(",0.1,high"), "covariate is not a number: 'high'")
    assert (error.rows, error.column) == ([4], "match2")

    # missing is fine for the dependent row 6 (see test_small_csv), not for treatment row 4
    error = raises(row_4(",,0.2"), "missing covariate value for treatment or control events")
    assert (error.rows, error.column) == ([4], "match1")

    error = raises(row_4(",Inf,0.2"), "covariate is infinite")
    assert (error.rows, error.column) == ([4], "match1")


def test_r_row_names_column(tmp_path: Path) -> None:
    lines = SMALL_CSV.splitlines()
    text = "\n".join(['"",' + lines[0]] + [f'"{i}",{line}' for i, line in enumerate(lines[1:], 1)])
    path = write(tmp_path, text + "\n")
    raises(path, "column 1 has no name")
    events = read_events(path, covariates=["match1", "match2"])
    assert events.attrs["covariates"] == ["match1", "match2"]


def test_semicolon_separated(tmp_path: Path) -> None:
    text = (
        "type;lon;lat;timestamp\n"
        "treatment;1;2;2020-01-01\ncontrol;1;2;2020-01-02\ndependent;1;2;2020-01-03\n"
    )
    events = read_events(write(tmp_path, text))
    assert events["role"].tolist() == ["treatment", "control", "dependent"]


def test_trailing_delimiters_are_harmless(tmp_path: Path) -> None:
    text = (
        "type,lon,lat,timestamp\n"
        "treatment,1,2,2020-01-01,\ncontrol,3,4,2020-01-02,\ndependent,5,6,2020-01-03,\n"
    )
    events = read_events(write(tmp_path, text))
    assert events["lon"].tolist() == [1.0, 3.0, 5.0]
    assert events.attrs["covariates"] == []


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("empty.csv", "", "the file is empty"),
        ("header.csv", '"type","lon","lat","timestamp"\n', "no events"),
        ("events.xlsx", "x", r"unknown file type '\.xlsx'; supported: \.csv\.gz, \.csv, \.parquet"),
        ("broken.parquet", "not parquet at all", "cannot read as Parquet"),
        ("broken.geojson", "{not json", "cannot read as GeoPackage/GeoJSON"),
        ("ragged.csv", "type,lon,lat,timestamp\na,1,2,3\nb,1,2,3,4\n",
         "cannot read the event file as CSV"),
        ("wide.csv", "type,lon,lat,timestamp\na,1,2,3,4,5\n", "more fields than the header"),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    raises(write(tmp_path, content, name), match)


def test_file_not_found(tmp_path: Path) -> None:
    raises(tmp_path / "nowhere.csv", "file not found")


# ---------------------------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------------------------


def test_summarise_events(tmp_path: Path) -> None:
    summary = summarise_events(read_events(write(tmp_path, SMALL_CSV)))
    assert summary["role"].tolist() == ["treatment", "control", "dependent", "all"]
    assert summary["events"].tolist() == [2, 2, 2, 6]
    assert summary.loc[3, "first"] == pd.Timestamp("1994-12-24", tz="UTC")
    assert summary.loc[3, "span_days"] == 4.0
    assert summary.loc[1, "span_days"] == pytest.approx(2.2291666666666665)

    mapped = read_events(write(tmp_path, MAPPED_CSV, "m.csv"), columns=MAPPING, roles=ROLES)
    assert summarise_events(mapped)["role"].tolist()[-2:] == ["other", "all"]


# ---------------------------------------------------------------------------------------------
# no silent damage: duplicate rows, mixed time zones, non-finite coordinates, encodings
# ---------------------------------------------------------------------------------------------


def test_exact_duplicate_rows_are_reported_kept_and_dropped_on_request(tmp_path: Path) -> None:
    lines = SMALL_CSV.splitlines()
    # rows 7 and 8 repeat rows 2 and 4 exactly; row 9 differs from row 2 in one digit
    text = "\n".join([*lines, lines[2], lines[4], lines[2].replace("0.87101", "0.87102")]) + "\n"
    path = write(tmp_path, text)
    with pytest.warns(DuplicateRowsWarning) as record:
        events = read_events(path)
    message = str(record[0].message)
    assert str(path) in message and "2 exact duplicate rows (rows 7, 8 repeat" in message
    assert message.endswith("drop them with drop_duplicates=True")  # the Python argument
    assert len(events) == 9
    assert events.attrs["duplicate_rows"] == (7, 8)
    assert events.attrs["duplicates_dropped"] is False

    with pytest.warns(DuplicateRowsWarning, match="dropped"):
        dropped = read_events(path, drop_duplicates=True)
    assert len(dropped) == 7
    assert dropped["event_id"].tolist() == list(range(1, 8))
    assert dropped.attrs["duplicates_dropped"] is True
    pd.testing.assert_frame_equal(without_source(dropped.iloc[:6]),
                                  without_source(read_events(write(tmp_path, SMALL_CSV, "s.csv"))))


def test_duplicate_rows_with_an_id_column_are_dropped_only_on_request(tmp_path: Path) -> None:
    lines = MAPPED_CSV.splitlines()
    path = write(tmp_path, "\n".join([*lines, lines[2]]) + "\n")
    error = raises(path, "duplicate event id 11", columns=MAPPING, roles=ROLES)
    assert error.rows == [2, 5] and "drop them with drop_duplicates=True)" in str(error)
    assert "--drop-duplicates" not in str(error)
    with pytest.warns(DuplicateRowsWarning, match="row 5 repeats"):
        events = read_events(path, columns=MAPPING, roles=ROLES, drop_duplicates=True)
    assert events["event_id"].tolist() == [10, 11, 12, 13]


def test_timestamps_with_and_without_an_offset_do_not_mix(tmp_path: Path) -> None:
    path = write(tmp_path, small_with('"1994-12-25T23:00:00"', '"1994-12-26T01:00:00+02:00"'))
    error = raises(path, "mixes timestamps with a UTC offset")
    assert (error.rows, error.column) == ([4], "timestamp")
    assert "'1994-12-26T01:00:00+02:00'" in str(error) and "without one (5" in str(error)

    # a date-only value is a time without an offset too; the rarer kind is named
    text = SMALL_CSV
    for old in ('"1994-12-24 00:00:00"', '"1994-12-25T06:30:00"', '"1994-12-25T23:00:00"',
                '"1994-12-27 12:00:00"', '"1994-12-28 00:00:00"'):
        text = text.replace(old, old[:-1] + 'Z"')
    error = raises(write(tmp_path, text, "mostly.csv"), "mixes timestamps")
    assert error.rows == [2]

    # every time with an offset (or R's " UTC") is fine and converted to UTC
    text = text.replace('"1994-12-25"', '"1994-12-25 00:00:00 UTC"').replace(
        '"1994-12-25T23:00:00Z"', '"1994-12-26T01:00:00+02:00"')
    events = read_events(write(tmp_path, text, "zoned.csv"))
    assert (events["time"] == SMALL_TIMES).all()


def test_an_infinite_coordinate_is_named_non_finite(tmp_path: Path) -> None:
    error = raises(write(tmp_path, small_with(",12.5,45.25,", ",12.5,inf,")),
                   "non-finite coordinate: latitude inf")
    assert (error.rows, error.column) == ([4], "lat")
    assert "projected" not in str(error)
    error = raises(write(tmp_path, small_with(",12.5,45.25,", ",-Infinity,45.25,"), "b.csv"),
                   "non-finite coordinate: longitude -inf")
    assert (error.rows, error.column) == ([4], "lon")


def test_a_covariate_name_with_a_slash_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, SMALL_CSV.replace('"match1"', '"m/x"'))
    error = raises(path, "covariate name 'm/x' contains '/'")
    assert error.column == "m/x"
    raises(path, "contains '/'", covariates=["m/x"])
    assert read_events(path, covariates=["match2"]).attrs["covariates"] == ["match2"]


def test_a_latin1_file_is_named_at_its_true_byte_row_and_column(tmp_path: Path) -> None:
    lines = SMALL_CSV.splitlines()
    body = [lines[0]] + [lines[1 + i % 6] for i in range(3000)]  # longer than pandas' buffer
    body[2500] = body[2500].replace('"treatment"', '"traitement-é"')  # data row 2500
    data = ("\n".join(body) + "\n").encode("latin-1")
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    with pytest.warns(UserWarning) as caught:
        events = read_events(path, roles={"treatment": ("type", "traitement-é"),
                                          "control": ("type", "control"),
                                          "dependent": ("type", "dependent")})
    assert str(caught[0].message) == (
        f"{path}, row 2500, column 'type': not UTF-8 (invalid continuation byte at byte "
        f"{data.index(b'\xe9')}, line 2501); read as Windows-1252")
    assert (events["role"] == "treatment").sum() == 1  # the Windows-1252 text, decoded


def test_a_file_neither_utf8_nor_windows1252_is_refused_where_it_breaks(tmp_path: Path) -> None:
    lines = SMALL_CSV.splitlines()
    lines[3] = lines[3].replace('"control"', '"contr\u0081"')  # 0x81: undefined in cp1252
    path = tmp_path / "bad.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8").replace(b"\xc2\x81", b"\x81"))
    error = raises(path, "neither UTF-8 nor Windows-1252 text")
    assert (error.rows, error.column) == ([3], "type")


# ---------------------------------------------------------------------------------------------
# delimiters, encodings and names that used to mislead the reader
# ---------------------------------------------------------------------------------------------


def test_a_semicolon_file_whose_text_holds_commas_reads(tmp_path: Path) -> None:
    """The delimiter comes from the header line: 'aid, other' split a comma-read row."""
    text = ("type;lon;lat;timestamp;note\n"
            'treatment;1;2;2020-01-01;"aid, other"\ncontrol;1;2;2020-01-02;aid, again\n'
            "dependent;1;2;2020-01-03;plain\n")
    events = read_events(write(tmp_path, text), covariates=[])
    assert events["role"].tolist() == ["treatment", "control", "dependent"]


def test_a_semicolon_file_with_decimal_commas_reads_them_as_points(tmp_path: Path) -> None:
    text = ("type;lon;lat;timestamp;size;note\n"
            "treatment;-0,5;12,25;2020-01-01;3;a, b\ncontrol;1;2,5e-1;2020-01-02;4,5;c\n"
            "dependent;1,75;2;2020-01-03;;d\n")
    with pytest.warns(UserWarning, match=r"decimal commas; read them as decimal points in 3 "
                                         r"columns: 'lon', 'lat', 'size'"):
        events = read_events(write(tmp_path, text), covariates=["size"])
    assert events["lon"].tolist() == [-0.5, 1.0, 1.75]
    assert events["lat"].tolist() == [12.25, 0.25, 2.0]
    assert events["size"].tolist()[:2] == [3.0, 4.5]


def test_a_windows1252_file_with_cr_line_ends_reads_with_the_byte_named(tmp_path: Path) -> None:
    """Naming the first non-UTF-8 byte split lines at LF only: a _csv.Error traceback."""
    lines = SMALL_CSV.splitlines()
    lines[3] = lines[3].replace('"control"', '"contrôle"')
    path = tmp_path / "mac.csv"
    path.write_bytes(("\r".join(lines) + "\r").encode("cp1252"))
    with pytest.warns(UserWarning, match=r"row 3, column 'type': not UTF-8 .* line 4\); read "
                                         r"as Windows-1252"):
        error = raises(path, "unknown role 'contrôle'")
    assert error.rows == [3]


@pytest.mark.parametrize("content", [b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(1, 255)),
                                     "type,lon\n".encode("utf-16-le")],
                         ids=["binary", "utf16_without_bom"])
def test_binary_and_unmarked_utf16_files_are_refused_in_one_line(tmp_path: Path,
                                                                content: bytes) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(content)
    error = raises(path, "it holds NUL bytes, so it is no text file .* UTF-16")
    assert "\n" not in str(error)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_utf16_and_utf32_files_with_a_byte_order_mark_read(tmp_path: Path,
                                                           encoding: str) -> None:
    path = tmp_path / "wide.csv"
    path.write_text(SMALL_CSV, encoding=encoding)
    events = read_events(path)
    assert events["time"].tolist() == SMALL_TIMES.tolist()
    assert events.attrs["covariates"] == ["match1", "match2"]


def test_a_column_named_twice_is_refused_naming_it(tmp_path: Path) -> None:
    """Two 'lat' columns used the first silently; two 'match1' made a phantom 'match1.1'."""
    text = SMALL_CSV.replace('"match2"', '"lat"', 1)
    error = raises(write(tmp_path, text), r"names a column more than once: 'lat' \(columns 3, "
                                          r"6\)")
    assert "\n" not in str(error)
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(EventDataError, match="'a' \\(columns 1, 3\\)"):
        read_events(frame)
