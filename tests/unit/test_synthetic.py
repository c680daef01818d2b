"""Synthetic subdivisions: parts tile the polygon exactly, and the same seed gives the same parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from geo.synthetic import sample_points, split_polygon

DATA = Path(__file__).resolve().parents[2] / "backend/demo/data/changzhou"

# An L shape (non-convex: Voronoi cells get cut in two) and a district with a hole in it.
L_SHAPE = Polygon([(0, 0), (10, 0), (10, 2), (2, 2), (2, 10), (0, 10)])
WITH_HOLE = Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(4, 4), (6, 4), (6, 6), (4, 6)]])
TWO_ISLANDS = MultiPolygon([Polygon([(0, 0), (3, 0), (3, 3), (0, 3)]), Polygon([(5, 0), (9, 0), (9, 4), (5, 4)])])


def _district(code: str) -> Polygon | MultiPolygon:
    return shape(json.loads((DATA / f"{code}.geojson").read_text()))


def assert_tiles(parts, whole):
    assert all(part.is_valid and not part.is_empty and part.area > 0 for part in parts)
    assert all(isinstance(part, Polygon | MultiPolygon) for part in parts)
    tree = shapely.STRtree(parts)
    left, right = tree.query(parts, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(np.take(parts, left[pairs]), np.take(parts, right[pairs])))
    assert overlap.sum() < 1e-9
    union = shapely.union_all(parts)
    assert union.area == pytest.approx(whole.area, rel=1e-6)
    assert shapely.symmetric_difference(union, whole).area < 1e-6 * whole.area


@pytest.mark.parametrize("whole", [L_SHAPE, WITH_HOLE, TWO_ISLANDS], ids=["l-shape", "hole", "islands"])
@pytest.mark.parametrize("n", [1, 2, 5, 17])
def test_parts_tile_the_polygon(whole, n):
    parts = split_polygon(whole, n, seed=7)
    assert len(parts) == n
    assert_tiles(parts, whole)


@pytest.mark.parametrize("code", ["320402", "320412", "320481"])
def test_real_district_splits_into_streets_communities_and_grids_that_tile_it(code):
    district = _district(code)
    streets = split_polygon(district, 3, seed=1)
    assert_tiles(streets, district)
    for i, street in enumerate(streets):
        communities = split_polygon(street, 3, seed=10 + i)
        assert_tiles(communities, street)
        grids = [grid for j, part in enumerate(communities) for grid in split_polygon(part, 4, seed=j)]
        assert_tiles(grids, street)


def test_same_seed_gives_the_same_parts_and_another_seed_does_not():
    district = _district("320404")
    first = split_polygon(district, 6, seed=42)
    again = split_polygon(district, 6, seed=42)
    other = split_polygon(district, 6, seed=43)
    assert [part.wkb for part in first] == [part.wkb for part in again]
    assert [part.wkb for part in first] != [part.wkb for part in other]


def test_sampled_points_are_strictly_inside_and_reproducible():
    points = sample_points(L_SHAPE, 500, seed=3)
    assert points.shape == (500, 2)
    assert shapely.contains_xy(L_SHAPE, points[:, 0], points[:, 1]).all()
    assert np.array_equal(points, sample_points(L_SHAPE, 500, seed=3))
    # Uniform: the foot of the L (x >= 2, y < 2) is 16 of its 36 square units.
    in_foot = (points[:, 1] < 2) & (points[:, 0] >= 2)
    assert abs(in_foot.mean() - 16 / 36) < 0.07


def test_rejects_what_cannot_be_split():
    with pytest.raises(ValueError, match="at least 1"):
        split_polygon(L_SHAPE, 0, seed=1)
    with pytest.raises(ValueError, match="Polygon"):
        split_polygon(Polygon(), 3, seed=1)
