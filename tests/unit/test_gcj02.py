"""WGS84 <-> GCJ-02: published reference points, the inverse's 1 cm promise, and the China box."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import Polygon

from geo.gcj02 import (
    CHINA_MAX_LAT,
    CHINA_MAX_LON,
    CHINA_MIN_LAT,
    CHINA_MIN_LON,
    gcj02_to_wgs84,
    transform_geometry,
    wgs84_to_gcj02,
)

GEOD = Geod(ellps="WGS84")

# (wgs lon, wgs lat, gcj lon, gcj lat) as published with googollee/eviltransform's tests.
REFERENCE = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


def metres(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), REFERENCE)
def test_forward_matches_published_reference_points(wgs_lon, wgs_lat, gcj_lon, gcj_lat):
    lon, lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert lon == pytest.approx(gcj_lon, abs=1e-8)
    assert lat == pytest.approx(gcj_lat, abs=1e-8)


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), REFERENCE)
def test_inverse_recovers_reference_points_to_a_centimetre(wgs_lon, wgs_lat, gcj_lon, gcj_lat):
    lon, lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres(lon, lat, wgs_lon, wgs_lat) < 0.01


def test_changzhou_centre_moves_a_few_hundred_metres_east_south_east():
    gcj_lon, gcj_lat = wgs84_to_gcj02(119.974, 31.811)
    azimuth, _, distance = GEOD.inv(119.974, 31.811, gcj_lon, gcj_lat)
    # Enough to put a household in the neighbouring grid if the datum is mixed up.
    assert 400 < distance < 600
    assert 90 < azimuth % 360 < 135


def _random_points_in_china(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Keep a margin from the rough box: right at its edge a point and its image straddle it.
    rng = np.random.default_rng(seed)
    lon = rng.uniform(CHINA_MIN_LON + 0.1, CHINA_MAX_LON - 0.1, n)
    lat = rng.uniform(CHINA_MIN_LAT + 0.1, CHINA_MAX_LAT - 0.1, n)
    return lon, lat


def test_forward_of_inverse_is_within_a_centimetre_everywhere_in_china():
    gcj_lon, gcj_lat = _random_points_in_china(20_000, seed=1)
    wgs_lon, wgs_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    again_lon, again_lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert np.max(metres(again_lon, again_lat, gcj_lon, gcj_lat)) < 0.01


def test_round_trip_from_wgs84_is_within_a_centimetre_everywhere_in_china():
    wgs_lon, wgs_lat = _random_points_in_china(20_000, seed=2)
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(wgs_lon, wgs_lat))
    error = metres(back_lon, back_lat, wgs_lon, wgs_lat)
    assert np.max(error) < 0.01
    # ...and the transform did move every point, by the familiar hundreds of metres.
    shift = metres(*wgs84_to_gcj02(wgs_lon, wgs_lat), wgs_lon, wgs_lat)
    assert np.min(shift) > 10
    assert np.max(shift) < 1500


@pytest.mark.parametrize(
    ("lon", "lat"),
    [(2.35, 48.86), (-74.0, 40.7), (139.69, 35.69), (72.0, 30.0), (137.9, 40.0), (100.0, 0.5), (100.0, 56.0)],
    ids=["paris", "new-york", "tokyo", "west-of-box", "east-of-box", "south-of-box", "north-of-box"],
)
def test_outside_china_both_directions_are_the_identity(lon, lat):
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_arrays_give_the_same_answers_as_scalars_and_mix_inside_and_outside():
    lon = np.array([119.974, 121.5272106, 2.35, 116.377817])
    lat = np.array([31.811, 31.1774276, 48.86, 39.911954])
    for fn in (wgs84_to_gcj02, gcj02_to_wgs84):
        out_lon, out_lat = fn(lon, lat)
        assert isinstance(out_lon, np.ndarray)
        assert out_lon.shape == lon.shape
        for i in range(len(lon)):
            one_lon, one_lat = fn(float(lon[i]), float(lat[i]))
            assert isinstance(one_lon, float)
            assert (one_lon, one_lat) == (out_lon[i], out_lat[i])


def test_scalars_broadcast_against_arrays_and_lists_work():
    lon, lat = wgs84_to_gcj02([119.9, 120.0], 31.8)
    assert lon.shape == lat.shape == (2,)
    assert lat[0] != lat[1]


def test_transform_geometry_moves_every_vertex_and_keeps_the_shape_type():
    square = Polygon(
        [(119.9, 31.7), (120.0, 31.7), (120.0, 31.8), (119.9, 31.8)],
        holes=[[(119.94, 31.74), (119.96, 31.74), (119.96, 31.76), (119.94, 31.76)]],
    )
    moved = transform_geometry(square, wgs84_to_gcj02)
    assert moved.geom_type == "Polygon"
    assert len(moved.interiors) == 1
    expected = np.column_stack(wgs84_to_gcj02(*shapely.get_coordinates(square).T))
    assert np.array_equal(shapely.get_coordinates(moved), expected)
    back = transform_geometry(moved, gcj02_to_wgs84)
    assert shapely.hausdorff_distance(back, square) < 1e-9  # degrees: ~0.1 mm
