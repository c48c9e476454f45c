"""Covariates: metric distances to points, lines and polygons, raster samples, columns."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
from shapely.geometry import LineString, Point, Polygon
from synthetic import write_bases

from bayes_wake.errors import EventDataError, SettingsError
from bayes_wake.io.covariates import (
    add_covariates,
    distance_error_bound,
    distance_to_layer,
    load_layer,
    sample_raster,
)

GEOD = pyproj.Geod(ellps="WGS84")


def geodesic_km(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2] / 1000.0


def test_distance_to_points_matches_the_geodesic_within_the_stated_bound():
    rng = np.random.default_rng(0)
    lon = rng.uniform(-12, 4, 400)
    lat = rng.uniform(10, 25, 400)
    bases = gpd.GeoDataFrame(geometry=[Point(-8.0, 12.65), Point(-0.045, 16.27),
                                       Point(1.41, 18.44), Point(-4.09, 14.53)], crs=4326)
    got, bound = distance_to_layer(lon, lat, bases, return_bound=True)
    truth = np.min([geodesic_km(lon, lat, np.full(400, p.x), np.full(400, p.y))
                    for p in bases.geometry], axis=0)
    relative = (got - truth) / truth
    assert 0 < bound < 0.006
    assert bound <= distance_error_bound(lon, lat, got)  # the a-priori bound is looser
    assert relative.max() <= bound + 1e-9
    assert relative.min() > -1e-6  # the projection only stretches distances
    assert np.abs(relative).max() < 0.004


def test_distance_to_a_line_is_to_the_line_not_to_its_vertices():
    # a meridian segment (a geodesic) with vertices only at its ends, 1,100 km apart
    river = gpd.GeoSeries([LineString([(0.0, 10.0), (0.0, 20.0)])], crs=4326)
    lon = np.array([1.0, 0.5, -0.2, 0.0])
    lat = np.array([15.0, 12.0, 19.0, 21.0])
    got = distance_to_layer(lon, lat, river)
    # the foot of the perpendicular on a meridian is (nearly) at the same latitude
    expected = np.array([geodesic_km(x, y, 0.0, y) for x, y in zip(lon[:3], lat[:3],
                                                                   strict=True)]
                        + [geodesic_km(0.0, 21.0, 0.0, 20.0)])
    np.testing.assert_allclose(got, expected, rtol=2e-3)
    nearest_vertex = geodesic_km(1.0, 15.0, 0.0, 10.0)
    assert got[0] < nearest_vertex / 5


def test_points_inside_a_polygon_are_at_zero_and_outside_at_the_edge():
    lake = gpd.GeoDataFrame(geometry=[Polygon([(-4, 15), (-3, 15), (-3, 16), (-4, 16)])],
                            crs=4326)
    got = distance_to_layer(np.array([-3.5, -2.5, np.nan]), np.array([15.5, 15.5, 15.0]), lake)
    assert got[0] == 0.0
    np.testing.assert_allclose(got[1], geodesic_km(-2.5, 15.5, -3.0, 15.5), rtol=2e-3)
    assert np.isnan(got[2])


def test_layers_in_a_projected_crs_are_handled():
    line = gpd.GeoSeries([LineString([(0.0, 10.0), (0.0, 20.0)])], crs=4326).to_crs(32631)
    got = distance_to_layer(np.array([1.0]), np.array([15.0]), line)
    np.testing.assert_allclose(got, [geodesic_km(1.0, 15.0, 0.0, 15.0)], rtol=2e-3)


def test_point_layers_load_from_csv_with_names(tmp_path):
    bases = load_layer(write_bases(tmp_path / "bases.csv"))
    assert len(bases) == 6 and bases.crs.to_epsg() == 4326
    assert bases["name"].tolist()[:2] == ["Alpha", "Bravo"]
    assert bases.geometry.iloc[0].x == -4.1 and bases.geometry.iloc[0].y == 14.4
    bad = tmp_path / "bad.csv"
    bad.write_text("name,lat\nx,1\n")
    with pytest.raises(EventDataError, match="longitude and latitude"):
        load_layer(bad)
    bad.write_text("name,lat,lon\nx,1,\n")
    with pytest.raises(EventDataError, match="missing coordinates") as info:
        load_layer(bad)
    assert info.value.rows == [1]


def test_layers_can_be_filtered_by_attribute(tmp_path):
    path = tmp_path / "rivers.geojson"
    gpd.GeoDataFrame({"level": [1, 7]}, geometry=[LineString([(0, 10), (0, 20)]),
                                                  LineString([(2, 10), (2, 20)])],
                     crs=4326).to_file(path)
    major = load_layer(path, where="level <= 3")
    assert len(major) == 1 and major.attrs["where"] == "level <= 3"
    with pytest.raises(EventDataError, match="no features"):
        load_layer(path, where="level > 10")
    with pytest.raises(EventDataError, match="cannot select"):
        load_layer(path, where="depth > 1")


def write_raster(path: Path, crs: str, transform, data: np.ndarray, nodata=-1.0) -> Path:
    import rasterio

    with rasterio.open(path, "w", driver="GTiff", height=data.shape[0], width=data.shape[1],
                       count=1, dtype="float32", crs=crs, transform=transform,
                       nodata=nodata) as dst:
        dst.write(data.astype("float32"), 1)
    return path


def test_raster_values_are_sampled_under_the_points(tmp_path):
    from rasterio.transform import from_origin

    data = np.arange(12, dtype=float).reshape(3, 4)  # rows from the north
    data[2, 3] = -1.0  # nodata
    path = write_raster(tmp_path / "pop.tif", "EPSG:4326", from_origin(-4.0, 16.0, 1.0, 1.0),
                        data)
    lon = np.array([-3.5, -0.5, -3.5, -0.5, 5.0, np.nan])
    lat = np.array([15.5, 15.5, 13.5, 13.5, 15.0, 15.0])
    got = sample_raster(path, lon, lat)
    np.testing.assert_array_equal(got[:3], [0.0, 3.0, 8.0])
    assert np.isnan(got[3:]).all()  # nodata, outside, NaN coordinate
    with pytest.raises(EventDataError, match="no band 2"):
        sample_raster(path, lon, lat, band=2)


def test_projected_rasters_are_sampled_in_their_crs(tmp_path):
    from rasterio.transform import from_origin

    x, y = pyproj.Transformer.from_crs(4326, 32630, always_xy=True).transform(-3.0, 15.0)
    data = np.array([[1.0, 2.0], [3.0, 4.0]])
    path = write_raster(tmp_path / "utm.tif", "EPSG:32630",
                        from_origin(x - 1000, y + 1000, 1000, 1000), data)
    got = sample_raster(path, np.array([-3.0]), np.array([15.0]))
    assert got[0] == 4.0  # the point is the raster's centre corner, the south-east cell


def test_add_covariates_from_layers_rasters_and_columns(tmp_path):
    from rasterio.transform import from_origin

    raster = write_raster(tmp_path / "lights.tif", "EPSG:4326",
                          from_origin(-5.0, 17.0, 1.0, 1.0), np.full((4, 4), 7.0))
    bases = load_layer(write_bases(tmp_path / "bases.csv"))
    events = pd.DataFrame({"lon": [-4.1, -3.0], "lat": [14.4, 15.0], "density": ["2.5", "1"]})
    events.attrs["covariates"] = []
    out = add_covariates(events, layers={"dist_base_km": bases},
                         rasters={"night_lights": raster}, columns=["density"])
    assert out.attrs["covariates"] == ["dist_base_km", "night_lights", "density"]
    assert out["dist_base_km"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert out["night_lights"].tolist() == [7.0, 7.0]
    assert out["density"].tolist() == [2.5, 1.0]
    assert "overstated by at most" in out.attrs["covariate_notes"]["dist_base_km"]
    assert "density" not in events.attrs["covariates"]  # the input is not changed
    with pytest.raises(SettingsError, match="given twice"):
        add_covariates(out, layers={"dist_base_km": bases})
    with pytest.raises(SettingsError, match="core column"):
        add_covariates(events, layers={"lon": bases})
    with pytest.raises(SettingsError, match="'pop' is not in the table"):
        add_covariates(events, columns=["pop"])
    bad = events.assign(density=["2.5", "many"])
    with pytest.raises(EventDataError, match="covariate is not a number: 'many'"):
        add_covariates(bad, columns=["density"])


def test_pooled_layers_take_the_nearest_of_all(tmp_path):
    river = gpd.GeoDataFrame(geometry=[LineString([(0, 10), (0, 20)])], crs=4326)
    lake = gpd.GeoDataFrame(geometry=[Polygon([(3, 14), (4, 14), (4, 16), (3, 16)])], crs=4326)
    events = pd.DataFrame({"lon": [0.5, 3.5], "lat": [15.0, 15.0]})
    out = add_covariates(events, layers={"dist_water_km": [river, lake]})
    assert out["dist_water_km"].iloc[1] == 0.0
    np.testing.assert_allclose(out["dist_water_km"].iloc[0],
                               geodesic_km(0.5, 15.0, 0.0, 15.0), rtol=2e-3)


def test_real_bases_and_rivers(shared_data: Path):
    bases = load_layer(shared_data / "geopko_minusma" / "minusma_bases_sauter2022_from_geopko.csv")
    assert sorted(bases["name"]) == ["Bamako", "Gao", "Kidal", "Menaka", "Mopti", "Timbuktu"]
    rivers = load_layer(shared_data / "gshhg_wdbii_mali" / "mali_bbox_rivers_wdbii_full.geojson",
                        where="level <= 3")
    # Mopti/Sévaré camp lies ~10 km from the Bani/Niger confluence at Mopti
    d = distance_to_layer(np.array([-4.09344]), np.array([14.52742]), rivers)
    assert 3 < d[0] < 20
    gao = distance_to_layer(np.array([-0.04472]), np.array([16.27167]), bases)
    assert gao[0] == pytest.approx(0.0, abs=1e-6)
