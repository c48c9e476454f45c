"""The study area: region names in any spelling, polygons, assignment, Ménaka and Gao."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic import REGION_BOXES, write_regions

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.studies.sauter.regions import (
    STUDY_REGIONS,
    assign_regions,
    filter_to_regions,
    load_regions,
    normalise_region_name,
    resolve_regions,
)


@pytest.mark.parametrize("name, canonical", [
    ("Ségou", "Segou"), ("SEGOU", "Segou"), ("segou", "Segou"),
    ("Tombouctou", "Tombouctou"), ("Timbuktu", "Tombouctou"), ("TIMBUKTU", "Tombouctou"),
    ("Région de Tombouctou", "Tombouctou"), ("Timbuktu Region", "Tombouctou"),
    ("Ménaka", "Menaka"), ("MENAKA", "Menaka"), ("Koulikouro", "Koulikoro"),
    ("Taoudénit", "Taoudenit"), ("Taoudeni", "Taoudenit"), ("Gao", "Gao"),
    ("  mopti ", "Mopti"), ("District de Bamako", "Bamako"),
])
def test_region_names_are_normalised(name, canonical):
    assert normalise_region_name(name) == canonical


def test_unknown_names_come_back_in_ascii_title_case():
    assert normalise_region_name("Île-de-France") == "Ile De France"


@pytest.fixture()
def boxes(tmp_path) -> Path:
    return write_regions(tmp_path / "regions.geojson")


def test_regions_load_with_the_name_column_found_and_names_normalised(boxes):
    regions = load_regions(boxes)
    assert regions.attrs["name_column"] == "ADM1_FR"
    assert regions["region"].tolist() == sorted(["Segou", "Mopti", "Tombouctou", "Gao",
                                                 "Menaka", "Kidal", "Kayes"])
    assert regions.attrs["has_menaka"] is True
    assert regions.crs.to_epsg() == 4326
    merged = load_regions(boxes, merge_menaka=True)
    assert "Menaka" not in set(merged["region"])
    assert merged.attrs["has_menaka"] is False
    gao = merged.loc[merged["region"] == "Gao"].iloc[0]
    assert gao["name_in_file"] == "Gao;Ménaka"


def test_points_are_assigned_by_polygon_and_snapped_only_when_near(boxes):
    regions = load_regions(boxes)
    lon = np.array([-6.0, -3.0, 2.0, 0.0, -10.0, 4.35, 6.0, np.nan])
    lat = np.array([13.0, 14.0, 16.0, 19.0, 14.0, 16.0, 16.0, 14.0])
    names, snapped = assign_regions(lon, lat, regions, snap_km=10.0)
    # 4.35 E lies ~5 km east of Ménaka's box: snapped; 6 E lies ~180 km away: outside
    assert names.tolist() == ["Segou", "Mopti", "Menaka", "Kidal", "Kayes", "Menaka", None,
                              None]
    assert snapped.tolist() == [False] * 5 + [True, False, False]
    names, snapped = assign_regions(lon, lat, regions, snap_km=0)
    assert names[5] is None and not snapped.any()


def test_filter_keeps_the_study_regions_and_counts_the_rest(boxes):
    regions = load_regions(boxes)
    frame = pd.DataFrame({"lon": [-6.0, -3.0, -10.0, 6.0, 4.35], "lat": [13.0, 14.0, 14.0,
                                                                        16.0, 16.0],
                          "id": list("abcde")})
    frame.attrs["source"] = "x"
    kept, dropped = filter_to_regions(frame, regions, ["Ségou", "Mopti", "Ménaka"],
                                      step="test")
    assert kept["id"].tolist() == ["a", "b", "e"]
    assert kept["region"].tolist() == ["Segou", "Mopti", "Menaka"]
    assert kept.attrs["source"] == "x"
    counts = {d["reason"].split(" (")[0]: d["events"] for d in dropped}
    assert counts["in another admin-1 region"] == 1
    assert counts["outside every region of the boundary file"] == 1
    assert next(d for d in dropped if d["reason"].startswith("not dropped"))["events"] == 1
    assert {d["step"] for d in dropped} == {"test"}


def test_menaka_resolves_to_gao_when_the_file_predates_the_split(tmp_path):
    old = [b for b in REGION_BOXES if b[0] != "Ménaka"]
    old = [("Gao", -1.5, 14.5, 4.3, 17.5) if b[0] == "Gao" else b for b in old]
    regions = load_regions(write_regions(tmp_path / "old.geojson", old, name_field="name"))
    assert regions.attrs["has_menaka"] is False
    assert resolve_regions(STUDY_REGIONS, regions) == ("Segou", "Mopti", "Tombouctou", "Gao",
                                                       "Kidal")
    with pytest.raises(SettingsError, match="'Sikasso' is not in the boundary file"):
        resolve_regions(["Mopti", "Sikasso"], regions)
    assert resolve_regions("Mopti,Timbuktu", regions) == ("Mopti", "Tombouctou")


def test_bad_boundary_files_say_what_is_wrong(tmp_path, boxes):
    with pytest.raises(EventDataError, match="not found"):
        load_regions(tmp_path / "nope.geojson")
    with pytest.raises(EventDataError, match="no column 'NAME_1'"):
        load_regions(boxes, name_column="NAME_1")
    points = tmp_path / "points.geojson"
    points.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                      '"properties": {"name": "Mopti"}, "geometry": {"type": "Point", '
                      '"coordinates": [-4, 14]}}]}')
    with pytest.raises(EventDataError, match="must hold polygons"):
        load_regions(points)


def test_real_boundaries_with_and_without_menaka(shared_data: Path):
    folder = shared_data / "ocha_cod_ab_mali_2015"
    derived = load_regions(folder / "mli_adm1_with_menaka_derived.geojson")
    original = load_regions(folder / "mli_adm1.geojson")
    assert derived.attrs["has_menaka"] and not original.attrs["has_menaka"]
    assert set(derived["region"]) - set(original["region"]) == {"Menaka"}
    assert "Koulikoro" in set(original["region"])  # the file's "Koulikouro", normalised
    # Ménaka town (Geo-PKO base) lies in Ménaka, or in Gao on the 2015 boundaries
    names, _ = assign_regions(np.array([2.4022]), np.array([15.9182]), derived)
    assert names.tolist() == ["Menaka"]
    names, _ = assign_regions(np.array([2.4022]), np.array([15.9182]), original)
    assert names.tolist() == ["Gao"]
