"""The demo grid map: a believable Changzhou hierarchy whose grids tile the real districts.

The map is written and read back as the importer will see it, so these tests check the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from backend.demo.map import COLUMNS, LAYER_NAME, MAP_VERSION, cached_demo_map, write_demo_map
from backend.demo.places import DISTRICTS, read_boundary

URBAN = {district.code for district in DISTRICTS if district.urban}
# Metric areas: UTM zone 50N covers Changzhou.
METRIC = "EPSG:32650"


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo_map") / "demo.gpkg"
    assert write_demo_map(path) == path
    return path


@pytest.fixture(scope="module")
def frame(demo_map: Path) -> gpd.GeoDataFrame:
    return gpd.read_file(demo_map, layer=LAYER_NAME, engine="pyogrio")


def test_the_file_is_a_wgs84_grid_layer_with_the_attribute_columns_importers_sniff(frame):
    assert frame.crs.to_epsg() == 4326
    assert set(COLUMNS) <= set(frame.columns)
    assert frame[list(COLUMNS)].notna().all().all()
    assert set(frame.geom_type) <= {"Polygon", "MultiPolygon"}
    assert frame.geometry.is_valid.all()


def test_about_13000_grids_in_a_city_district_street_community_hierarchy(frame):
    assert 12_500 <= len(frame) <= 13_500
    assert frame["wgbm"].is_unique
    for row in frame.itertuples():
        assert re.fullmatch(r"\d{12}-\d{2}", row.wgbm)
        assert row.wgbm.startswith(row.sqbm + "-")
        assert re.fullmatch(r"\d{9}", row.jdbm) and row.sqbm[:9] == row.jdbm
    districts = frame["jdbm"].str[:6]
    assert set(districts) == {district.code for district in DISTRICTS}
    streets_per_district = frame.groupby(districts)["jdbm"].nunique()
    assert streets_per_district.between(8, 25).all()
    communities_per_street = frame.groupby("jdbm")["sqbm"].nunique()
    assert communities_per_street.between(6, 20).all()
    assert frame.groupby("sqbm").size().min() >= 3


def test_names_are_consistent_and_read_like_changzhou_places(frame):
    communities = frame.drop_duplicates("sqbm")
    assert frame.groupby("sqbm")["sqmc"].nunique().max() == 1
    assert frame.groupby("jdbm")["jdmc"].nunique().max() == 1
    assert communities["sqmc"].is_unique  # addresses name the community: two of a name would confuse
    assert communities["sqmc"].str.fullmatch(r"\w{2,5}(社区|村)").all()
    assert frame["jdmc"].str.fullmatch(r"\w{1,4}(街道|镇)").all()
    # Villages only in towns, and every town keeps a residential community at its seat.
    villages = communities[communities["sqmc"].str.endswith("村")]
    assert villages["jdmc"].str.endswith("镇").all()
    assert len(villages) > 200
    towns = communities[communities["jdmc"].str.endswith("镇")]
    assert (towns.groupby("jdbm")["sqmc"].apply(lambda names: (~names.str.endswith("村")).sum()) >= 1).all()
    assert (frame["wgmc"] == frame["sqmc"] + "第" + frame["wgbm"].str[-2:].str.lstrip("0") + "网格").all()


def test_no_two_grids_overlap_by_a_square_metre(frame):
    # Intersect where edges are straight (as stored), then measure: projecting first bends a long
    # edge and a neighbour's vertex on it differently, and invents slivers (the validator does the same).
    grids = frame.geometry.to_numpy()
    left, right = shapely.STRtree(grids).query(grids, predicate="intersects")
    pairs = left < right
    overlaps = gpd.GeoSeries(shapely.intersection(grids[left[pairs]], grids[right[pairs]]), crs=frame.crs)
    assert overlaps.to_crs(METRIC).area.max() < 1.0


def test_grids_cover_each_real_district_exactly(frame):
    for district in DISTRICTS:
        boundary = read_boundary(district.code)
        grids = frame[frame["jdbm"].str[:6] == district.code].geometry
        union = shapely.union_all(grids.to_numpy())
        assert shapely.symmetric_difference(union, boundary).area < 1e-6 * boundary.area, district.code


def test_communities_are_one_piece_each_or_nearly(frame):
    """A community's grids join up (a real community is a place, not scattered fragments)."""
    pieces = frame.dissolve("sqbm").geometry.apply(lambda geom: len(shapely.get_parts(geom)))
    assert (pieces == 1).mean() > 0.95


def test_urban_grids_are_smaller_than_rural_ones(frame):
    area_km2 = frame.to_crs(METRIC).area / 1e6
    urban = frame["jdbm"].str[:6].isin(URBAN)
    assert np.median(area_km2[urban]) * 2 < np.median(area_km2[~urban])
    # A grid holds a few hundred households: a few hundred metres across in town, a km or so outside.
    assert 0.02 < np.median(area_km2[urban]) < 0.3
    assert 0.1 < np.median(area_km2[~urban]) < 2.0


def test_a_cached_map_is_reused_not_rebuilt(tmp_path: Path):
    path = tmp_path / f"changzhou-demo-grids-v{MAP_VERSION}-7.gpkg"
    path.write_bytes(b"already here")
    assert cached_demo_map(tmp_path, seed=7) == path
    assert path.read_bytes() == b"already here"


def test_the_file_holds_one_layer_and_no_leftovers(demo_map):
    path = demo_map
    assert [str(name) for name, _ in pyogrio.list_layers(path)] == [LAYER_NAME]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file is gone
