"""Naming a coordinate system, and getting to WGS84 from each one a Chinese city may use."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Point, Polygon, box

from geo.crs import CrsError, geometries_to_wgs84, metric_crs_for, parse_crs, project_wgs84, to_wgs84
from geo.gcj02 import wgs84_to_gcj02

GRS80 = Geod(ellps="GRS80")
WGS84_GEOD = Geod(ellps="WGS84")
# (wgs lon, wgs lat, gcj lon, gcj lat), Shanghai, as published with googollee/eviltransform's tests.
SHANGHAI = (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597)


@pytest.mark.parametrize(
    ("spec", "name", "is_gcj02", "epsg"),
    [
        ("wgs84", "WGS84", False, 4326),
        ("WGS84", "WGS84", False, 4326),
        ("EPSG:4326", "WGS84", False, 4326),
        ("gcj02", "GCJ-02", True, None),
        ("GCJ-02", "GCJ-02", True, None),
        ("cgcs2000", "CGCS2000", False, 4490),
        ("CGCS2000", "CGCS2000", False, 4490),
        ("EPSG:4549", "EPSG:4549", False, 4549),
        ("epsg:4549", "EPSG:4549", False, 4549),
        ("4549", "EPSG:4549", False, 4549),
        (4549, "EPSG:4549", False, 4549),
    ],
)
def test_parse_crs_accepts_every_documented_spelling(spec, name, is_gcj02, epsg):
    parsed = parse_crs(spec)
    assert (parsed.name, parsed.is_gcj02, parsed.epsg) == (name, is_gcj02, epsg)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("mercator", "Unknown coordinate system 'mercator'"),
        ("EPSG:999999", "EPSG:999999"),
        ("bd09", "BD-09"),
        ("", "Unknown coordinate system ''"),
        (3.5, "3.5"),
    ],
)
def test_parse_crs_refuses_unknown_names_clearly(spec, says):
    with pytest.raises(CrsError) as caught:
        parse_crs(spec)
    assert says in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_unknown_name_error_lists_what_is_accepted():
    with pytest.raises(CrsError, match=r"wgs84, gcj02, cgcs2000 or an EPSG code"):
        parse_crs("utm")


def test_gauss_kruger_point_on_the_central_meridian_lands_at_the_right_latitude():
    # EPSG:4549 is CGCS2000 / 3-degree Gauss-Krüger, central meridian 120°E, false easting 500 km,
    # scale 1: a point at x = 500 km lies on 120°E, and its northing is the meridian arc length.
    lon, lat = to_wgs84(500_000.0, 3_500_000.0, "EPSG:4549")
    assert lon == pytest.approx(120.0, abs=1e-9)
    arc = GRS80.inv(120.0, 0.0, 120.0, lat)[2]
    assert arc == pytest.approx(3_500_000.0, abs=0.01)


def test_gcj02_goes_through_the_gcj02_inverse():
    wgs_lon, wgs_lat, gcj_lon, gcj_lat = SHANGHAI
    lon, lat = to_wgs84(gcj_lon, gcj_lat, "gcj02")
    assert WGS84_GEOD.inv(lon, lat, wgs_lon, wgs_lat)[2] < 0.01


def test_cgcs2000_geographic_is_within_centimetres_of_wgs84():
    lon, lat = to_wgs84([119.95, 120.1], [31.7, 31.8], "cgcs2000")
    assert np.allclose(lon, [119.95, 120.1], atol=1e-7)
    assert np.allclose(lat, [31.7, 31.8], atol=1e-7)


def test_to_wgs84_is_vectorised_keeps_nan_and_returns_floats_for_scalars():
    lon, lat = to_wgs84(np.array([500_000.0, np.nan, 510_000.0]), np.array([3_500_000.0, 3_500_000.0, np.nan]), 4549)
    assert lon.shape == (3,)
    assert np.isfinite(lon[0]) and np.isnan(lon[1]) and np.isnan(lat[2])
    scalar = to_wgs84(120.0, 31.0, "wgs84")
    assert scalar == (120.0, 31.0) and all(isinstance(v, float) for v in scalar)


def test_geometries_to_wgs84_converts_every_vertex_keeps_the_index_and_drops_z():
    square = Polygon(
        [(500_000, 3_500_000, 5), (501_000, 3_500_000, 5), (501_000, 3_501_000, 5), (500_000, 3_500_000, 5)]
    )
    series = gpd.GeoSeries([square, None, Point(500_000, 3_500_000)], index=[10, 11, 12])
    out = geometries_to_wgs84(series, "EPSG:4549")
    assert out.crs.to_epsg() == 4326
    assert list(out.index) == [10, 11, 12]
    assert out.iloc[1] is None
    assert not out.iloc[0].has_z
    assert out.iloc[2].x == pytest.approx(120.0, abs=1e-9)
    minx, miny, maxx, maxy = out.iloc[0].bounds
    assert minx == pytest.approx(120.0, abs=1e-9) and minx < maxx < 120.02 and 31.0 < miny < maxy < 31.7


def test_geometries_from_gcj02_move_by_the_gcj02_offset():
    wgs = box(119.95, 31.75, 119.96, 31.76)
    gcj = shapely.transform(wgs, lambda c: np.column_stack(wgs84_to_gcj02(c[:, 0], c[:, 1])))
    back = geometries_to_wgs84([gcj], "gcj02").iloc[0]
    assert shapely.hausdorff_distance(back, wgs) < 1e-7  # about a centimetre
    assert shapely.hausdorff_distance(gcj, wgs) > 0.003  # several hundred metres apart before


def test_metric_crs_measures_areas_like_the_ellipsoid():
    # A grid of about 1 km² in Changzhou and a district-sized polygon.
    for geom in (box(119.95, 31.75, 119.9606, 31.759), box(119.7, 31.5, 120.2, 31.9)):
        crs = metric_crs_for([geom])
        planar = shapely.area(project_wgs84([geom], crs))[0]
        geodesic = abs(WGS84_GEOD.geometry_area_perimeter(shapely.segmentize(geom, 0.001))[0])
        assert planar == pytest.approx(geodesic, rel=1e-3)
        assert crs.coordinate_operation.method_name == "Lambert Azimuthal Equal Area"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_metric_crs_is_centred_on_the_data_and_ignores_broken_geometries():
    broken = Polygon([(1, 1), (math.nan, 2), (3, 1), (1, 1)])
    crs = metric_crs_for([box(119.9, 31.7, 120.1, 31.9), broken, None])
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == pytest.approx(120.0)
    assert params["Latitude of natural origin"] == pytest.approx(31.8)
