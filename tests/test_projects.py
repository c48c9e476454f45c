"""Project files (QIPs, IATI aid projects) and the simulated placement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthetic import write_projects, write_regions

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.covariates import distance_to_layer
from bayes_wake.simulate.placements import simulate_project_placement
from bayes_wake.studies.sauter.projects import read_projects
from bayes_wake.studies.sauter.regions import StudyArea, load_regions
from bayes_wake.simulate import BASES


def test_qip_file_with_default_columns(tmp_path):
    path = write_projects(tmp_path / "qips.csv", 30, seed=1, kind="qip")
    raw = pd.read_csv(path, dtype=str)
    qips = read_projects(path, kind="qip")
    assert len(qips) == 30 and (qips["kind"] == "qip").all()
    assert qips.attrs["columns"]["start"] == "start_date"
    assert qips["project_id"].tolist() == raw["project_id"].tolist()
    assert qips["time"].iloc[0] == pd.Timestamp(raw["start_date"].iloc[0], tz="UTC")
    assert qips["lon"].iloc[3] == float(raw["longitude"].iloc[3])
    # "US$ 12,000" -> 12000.0
    assert qips["budget"].iloc[0] == float(raw["budget_usd"].iloc[0].replace("US$ ", "")
                                           .replace(",", ""))
    assert set(qips["activity_type"]) == {"Infrastructure & equipment", "Training/workshops",
                                          "Sport & cultural events"}
    assert not qips["simulated"].any()
    assert str(qips["time"].dtype) == "datetime64[ns, UTC]"


def test_iati_point_positions_are_lat_lon_and_may_hold_several_locations(tmp_path):
    path = write_projects(tmp_path / "aid.csv", 10, seed=2, kind="aid")
    frame = pd.read_csv(path, dtype=str)
    first = frame["location_point_pos"].iloc[0]
    frame.loc[0, "location_point_pos"] = f"{first}; 14.5 -4.2"
    frame.to_csv(path, index=False)
    aid = read_projects(path, kind="aid")
    assert len(aid) == 11
    lat, lon = (float(v) for v in first.split())
    assert (aid["lat"].iloc[0], aid["lon"].iloc[0]) == (lat, lon)
    assert (aid["lat"].iloc[1], aid["lon"].iloc[1]) == (14.5, -4.2)
    assert aid["project_id"].iloc[0] == aid["project_id"].iloc[1] == "XX-TEST-0000"
    assert aid["file_row"].tolist()[:3] == [1, 1, 2]
    assert aid.attrs["columns"]["start"] == "activity_date_start_actual"


def test_a_column_mapping_overrides_the_defaults(tmp_path):
    path = tmp_path / "custom.csv"
    path.write_text("Code,Début,X,Y,Montant,Type\n"
                    "A1,15 March 2018,-3.5,14.2,\"1,000\",Training\n"
                    "A2,2019-07-01,-3.6,14.3,500,Other\n", encoding="utf-8")
    with pytest.raises(EventDataError, match="no start-date column"):
        read_projects(path)
    qips = read_projects(path, columns={"id": "Code", "start": "Début", "lon": "X", "lat": "Y",
                                        "budget": "Montant", "activity_type": "Type"})
    assert qips["project_id"].tolist() == ["A1", "A2"]
    assert qips["time"].dt.strftime("%Y-%m-%d").tolist() == ["2018-03-15", "2019-07-01"]
    assert qips["budget"].tolist() == [1000.0, 500.0]
    with pytest.raises(SettingsError, match="unknown key 'date'"):
        read_projects(path, columns={"date": "Début"})
    with pytest.raises(EventDataError, match="no column 'Start'"):
        read_projects(path, columns={"start": "Start", "lon": "X", "lat": "Y"})


def test_projects_without_place_or_date_or_outside_the_period_are_counted(tmp_path):
    path = write_projects(tmp_path / "qips.csv", 12, seed=3)
    frame = pd.read_csv(path, dtype=str)
    frame.loc[0, "longitude"] = None
    frame.loc[1, "start_date"] = None
    frame.loc[2, "start_date"] = "2016-06-01"
    frame.loc[3, "start_date"] = "2021-02-01"
    frame.to_csv(path, index=False)
    qips = read_projects(path, start="2017-01-01", end="2020-12-31")
    reasons = {d["reason"].split(" (")[0]: d["events"] for d in qips.attrs["dropped"]}
    assert reasons == {"no location": 1, "no start date": 1,
                       "started before the study period": 1,
                       "started after the study period": 1}
    assert len(qips) == 8 and qips["file_row"].tolist()[0] == 5


@pytest.mark.parametrize("column, value, message", [
    ("start_date", "sometime in 2019", "cannot parse the date 'sometime in 2019'"),
    ("longitude", "west", "longitude is not a number: 'west'"),
    ("budget_usd", "a lot", "budget is not a number: 'a lot'"),
    ("latitude", "95", "latitude not in [-90, 90]"),
    # the event reader's rule, not "look projected" (one coordinate check for every reader)
    ("latitude", "inf", "non-finite coordinate: latitude inf"),
    ("longitude", "3600000", "the coordinates look projected"),
])
def test_bad_cells_name_the_file_row_and_column(tmp_path, column, value, message):
    path = write_projects(tmp_path / "qips.csv", 6, seed=4)
    frame = pd.read_csv(path, dtype=str)
    frame.loc[3, column] = value
    frame.to_csv(path, index=False)
    with pytest.raises(EventDataError) as info:
        read_projects(path)
    assert message in str(info.value)
    assert info.value.rows == [4] and info.value.column == column


def test_bad_iati_points_are_named(tmp_path):
    path = write_projects(tmp_path / "aid.csv", 4, seed=5, kind="aid")
    frame = pd.read_csv(path, dtype=str)
    frame.loc[2, "location_point_pos"] = "Mopti"
    frame.to_csv(path, index=False)
    with pytest.raises(EventDataError, match="cannot read the point 'Mopti'") as info:
        read_projects(path, kind="aid")
    assert info.value.rows == [3]


def test_simulated_placement_is_seeded_and_puts_qips_nearer_the_bases():
    first = simulate_project_placement(7, n_qips=200, n_aid=600)
    again = simulate_project_placement(7, n_qips=200, n_aid=600)
    other = simulate_project_placement(8, n_qips=200, n_aid=600)
    pd.testing.assert_frame_equal(first, again)
    assert not first[["lon", "lat"]].equals(other[["lon", "lat"]])
    assert first["kind"].value_counts().to_dict() == {"aid": 600, "qip": 200}
    assert first["simulated"].all() and first.attrs["seed"] == 7
    assert "simulated" in first.attrs["source"]
    bases = np.array(list(BASES.values()))
    import geopandas as gpd

    layer = gpd.GeoSeries(gpd.points_from_xy(bases[:, 0], bases[:, 1]), crs=4326)
    distance = distance_to_layer(first["lon"].to_numpy(), first["lat"].to_numpy(), layer)
    qip = distance[first["kind"].to_numpy() == "qip"].mean()
    aid = distance[first["kind"].to_numpy() == "aid"].mean()
    assert qip < 0.8 * aid  # the paper's Table 2: 59 km against 95 km
    for kind in ("qip", "aid"):
        times = first.loc[first["kind"] == kind, "time"]
        assert times.is_monotonic_increasing
        assert times.min() >= pd.Timestamp("2017-01-01", tz="UTC")
        assert times.max() <= pd.Timestamp("2020-12-31", tz="UTC")


def test_simulated_placement_fills_the_chosen_regions_exactly(tmp_path):
    regions = load_regions(write_regions(tmp_path / "r.geojson"))
    only_aid = simulate_project_placement(1, n_aid=150, kinds=("aid",),
                                          area=StudyArea(regions, ("Mopti",)))
    assert len(only_aid) == 150 and set(only_aid["kind"]) == {"aid"}
    assert ((only_aid["lon"] >= -4.8) & (only_aid["lon"] <= -1.5)).all()
    with pytest.raises(SettingsError, match="kinds"):
        simulate_project_placement(1, kinds=("roads",))


def test_projects_from_a_vector_file_of_points(tmp_path):
    import geopandas as gpd

    frame = pd.read_csv(write_projects(tmp_path / "q.csv", 5, seed=6), dtype=str)
    layer = gpd.GeoDataFrame(
        frame.drop(columns=["longitude", "latitude"]),
        geometry=gpd.points_from_xy(frame["longitude"].astype(float),
                                    frame["latitude"].astype(float)), crs=4326)
    layer.to_crs(32630).to_file(tmp_path / "qips.gpkg")  # any CRS: reprojected
    qips = read_projects(tmp_path / "qips.gpkg")
    np.testing.assert_allclose(qips["lon"], frame["longitude"].astype(float), atol=1e-9)
    np.testing.assert_allclose(qips["lat"], frame["latitude"].astype(float), atol=1e-9)
    assert qips["project_id"].tolist() == frame["project_id"].tolist()


@pytest.mark.parametrize("design", ["settlements", "clumped", "clumped_qips"])
def test_placement_designs_keep_the_counts_and_place_as_they_say(design):
    """settlements: QIPs drawn by the aid projects' process (their distances to the bases
    match); clumped: aid projects in programmes of 5 within 5 km and 60 days (each one's
    nearest other aid project is within 5 km far more often than with the bases design);
    clumped_qips: the same for QIPs in threes within 3 km."""
    from bayes_wake.core.geo import great_circle_km

    base = simulate_project_placement(3)
    frame = simulate_project_placement(3, design=design)
    assert frame["kind"].value_counts().to_dict() == {"aid": 1500, "qip": 364}
    assert frame.attrs["settings"]["design"] == design

    def near_share(rows, km):
        d = great_circle_km(rows["lon"].to_numpy()[:, None], rows["lat"].to_numpy()[:, None],
                            rows["lon"].to_numpy()[None], rows["lat"].to_numpy()[None])
        np.fill_diagonal(d, np.inf)
        return float((d.min(axis=1) <= km).mean())

    kind, km = {"clumped": ("aid", 5.0), "clumped_qips": ("qip", 3.0)}.get(design, (None, 0))
    if kind:
        rows = frame[frame["kind"] == kind]
        assert near_share(rows, km) > 0.95
        assert rows["time"].max() <= pd.Timestamp("2020-12-31", tz="UTC")
    else:  # the QIPs' and aid projects' dates and places come from one process
        qip, aid = frame[frame["kind"] == "qip"], frame[frame["kind"] == "aid"]
        assert abs(qip["lat"].mean() - aid["lat"].mean()) < 0.3
        b_qip, b_aid = base[base["kind"] == "qip"], base[base["kind"] == "aid"]
        assert abs(b_qip["lat"].mean() - b_aid["lat"].mean()) > abs(
            qip["lat"].mean() - aid["lat"].mean())


def test_an_unknown_placement_design_is_refused():
    with pytest.raises(SettingsError, match="placement design"):
        simulate_project_placement(0, design="random")
