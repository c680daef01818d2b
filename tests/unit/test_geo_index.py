"""GridIndex: a point goes to the grid covering it (smallest code on shared edges), else to a grid
within the tolerance ("near", with its distance), else nowhere ("unplaced")."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape

from geo.gcj02 import gcj02_to_wgs84, transform_geometry
from geo.index import INSIDE, NEAR, UNPLACED, GridIndex, Location, metres_per_degree
from geo.synthetic import split_polygon

GEOD = Geod(ellps="WGS84")
DATA = Path(__file__).resolve().parents[2] / "backend/demo/data/changzhou"

# Steps of 1/512 degree (~190 m east, ~215 m north here) are exact in binary: points on edges are
# exactly on them, so shared edges and vertices really are shared.
STEP = 1.0 / 512
LON0, LAT0 = 119.9375, 31.75


def lattice(i: float, j: float) -> tuple[float, float]:
    return LON0 + i * STEP, LAT0 + j * STEP


def cell_box(i0: float, j0: float, i1: float, j1: float) -> Polygon:
    return box(*lattice(i0, j0), *lattice(i1, j1))


def brute_force(codes: list[str], geoms, lon: float, lat: float, tolerance_m: float):
    """(code, flag, distance) by definition: covering grids, smallest code; else nearest within tolerance."""
    geoms = np.asarray(geoms, dtype=object)
    covering = [code for code, covers in zip(codes, shapely.covers(geoms, Point(lon, lat)), strict=True) if covers]
    if covering:
        return min(covering), INSIDE, 0.0
    east, north = (float(v) for v in metres_per_degree(lat))
    local = shapely.transform(geoms, lambda xy: (xy - [lon, lat]) * [east, north])
    distances = shapely.distance(local, Point(0.0, 0.0))
    best = distances.min()
    if best > tolerance_m:
        return None, UNPLACED, math.inf
    ties = [code for code, d in zip(codes, distances, strict=True) if d <= best * (1 + 1e-9)]
    return min(ties), NEAR, float(best)


def _district(code: str):
    return transform_geometry(shape(json.loads((DATA / f"{code}.geojson").read_text())), gcj02_to_wgs84)


@pytest.fixture(scope="module")
def tianning():
    """200 grids over part of Tianning district (real boundary, so a real outer edge to be near)."""
    district = _district("320402")
    streets = split_polygon(district, 4, seed=3)
    geoms = [g for s, street in enumerate(streets[:2]) for g in split_polygon(street, 100, seed=s)]
    codes = [f"320402{i:04d}" for i in range(len(geoms))]
    return codes, geoms


# -- inside, near, unplaced -----------------------------------------------------------------------

SQUARE = cell_box(0, 0, 4, 4)  # ~760 m x 860 m


def _east_of_square(metres: float) -> tuple[float, float]:
    """A point ``metres`` (geodesic) due east of the square's east edge, at its middle."""
    lon, lat = lattice(4, 2)
    lon2, lat2, _ = GEOD.fwd(lon, lat, 90.0, metres)
    return lon2, lat2


@pytest.mark.parametrize(
    ("start", "azimuth", "metres"),
    [
        ((4, 2), 90.0, 30.0),  # east of the east edge
        ((2, 4), 0.0, 45.0),  # north of the north edge
        ((0, 2), 270.0, 12.5),  # west of the west edge
        ((4, 4), 45.0, 40.0),  # off the north-east corner
    ],
)
def test_a_point_just_outside_is_near_its_grid_with_the_geodesic_distance(start, azimuth, metres):
    index = GridIndex.build(["g1"], [SQUARE], tolerance_m=50)
    lon, lat, _ = GEOD.fwd(*lattice(*start), azimuth, metres)
    found = index.locate(lon, lat)
    assert found.code == "g1"
    assert found.flag == "near"
    assert found.distance_m == pytest.approx(metres, rel=0.01)


def test_inside_is_distance_zero_and_far_is_unplaced():
    index = GridIndex.build(["g1"], [SQUARE], tolerance_m=50)
    assert index.locate(*lattice(1.3, 2.7)) == Location("g1", "inside", 0.0)
    assert index.locate(*lattice(4, 1)) == Location("g1", "inside", 0.0)  # on the edge: covered
    far = index.locate(*_east_of_square(80))
    assert far.code is None
    assert far.flag == "unplaced"
    assert far.distance_m == math.inf


def test_the_tolerance_decides_near_or_unplaced():
    point = _east_of_square(80)
    assert GridIndex.build(["g1"], [SQUARE], tolerance_m=50).locate(*point).flag == "unplaced"
    wide = GridIndex.build(["g1"], [SQUARE], tolerance_m=100).locate(*point)
    assert (wide.code, wide.flag) == ("g1", "near")
    assert wide.distance_m == pytest.approx(80, rel=0.01)
    assert GridIndex.build(["g1"], [SQUARE], tolerance_m=0).locate(*_east_of_square(1)).flag == "unplaced"


def test_near_goes_to_the_nearest_grid_not_the_smallest_code():
    west, east = cell_box(0, 0, 2, 2), cell_box(3, 0, 5, 2)  # a ~190 m gap between them
    index = GridIndex.build(["a", "b"], [west, east], tolerance_m=150)
    lon, lat, _ = GEOD.fwd(*lattice(3, 1), 270.0, 40.0)  # 40 m from b, ~150 m from a
    found = index.locate(lon, lat)
    assert (found.code, found.flag) == ("b", "near")
    assert found.distance_m == pytest.approx(40, rel=0.01)


def test_a_point_in_a_hole_is_near_the_ring_around_it():
    ring = Polygon(
        [lattice(0, 0), lattice(6, 0), lattice(6, 6), lattice(0, 6)],
        holes=[[lattice(2, 2), lattice(4, 2), lattice(4, 4), lattice(2, 4)]],
    )
    index = GridIndex.build(["ring"], [ring], tolerance_m=50)
    lon, lat, _ = GEOD.fwd(*lattice(2, 3), 90.0, 20.0)
    found = index.locate(lon, lat)
    assert (found.code, found.flag) == ("ring", "near")
    assert found.distance_m == pytest.approx(20, rel=0.01)
    assert index.locate(*lattice(3, 3)).flag == "unplaced"  # the hole's centre is ~190 m from the ring


def test_metres_per_degree_matches_the_geodesic():
    east, north = metres_per_degree(31.75)
    assert float(east) == pytest.approx(GEOD.inv(120.0, 31.75, 120.001, 31.75)[2] * 1000, rel=1e-4)
    assert float(north) == pytest.approx(GEOD.inv(120.0, 31.7495, 120.0, 31.7505)[2] * 1000, rel=1e-4)


# -- shared edges and vertices --------------------------------------------------------------------

# Four squares meeting at lattice (2, 2), and two triangles splitting the square to their east along a
# diagonal (not axis-aligned): shared edges both straight and slanted.
QUAD = {
    "320402001": cell_box(0, 0, 2, 2),
    "320402002": cell_box(2, 0, 4, 2),
    "320402003": cell_box(0, 2, 2, 4),
    "320402004": cell_box(2, 2, 4, 4),
    "320402006": Polygon([lattice(4, 0), lattice(6, 0), lattice(6, 2)]),
    "320402005": Polygon([lattice(4, 0), lattice(6, 2), lattice(4, 2)]),
}
SHARED = {
    lattice(2, 1): "320402001",  # edge 001|002
    lattice(1, 2): "320402001",  # edge 001|003
    lattice(3, 2): "320402002",  # edge 002|004
    lattice(2, 3): "320402003",  # edge 003|004
    lattice(2, 2): "320402001",  # vertex of all four
    lattice(4, 1): "320402002",  # edge 002|005
    lattice(4, 2): "320402002",  # vertex of 002, 004, 005
    lattice(5, 1): "320402005",  # on the diagonal 005|006
    lattice(4.5, 0.5): "320402005",  # on the diagonal too
    lattice(6, 2): "320402005",  # vertex of 005 and 006
    lattice(4, 0): "320402002",  # vertex of 002, 005, 006
}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cell_m", [None, 15.0, 400.0])
def test_shared_edges_and_vertices_go_to_the_smallest_code_whatever_the_build_order(seed, cell_m):
    items = list(QUAD.items())
    random.Random(seed).shuffle(items)
    codes, geoms = [c for c, _ in items], [g for _, g in items]
    index = GridIndex.build(codes, geoms, cell_m=cell_m)
    lons = np.array([p[0] for p in SHARED])
    lats = np.array([p[1] for p in SHARED])
    many = index.locate_many(lons, lats)
    for k, (point, expected) in enumerate(SHARED.items()):
        assert brute_force(codes, geoms, *point, 50)[0] == expected  # the fixture means what it says
        assert index.locate(*point) == Location(expected, "inside", 0.0)
        assert many.codes[k] == expected
        assert index.codes[many.index[k]] == expected


def _covering_min_code(codes, geoms, lons, lats) -> np.ndarray:
    """The definition of rule (a), by STRtree + GEOS covers: smallest covering code per point, or None."""
    point, grid = shapely.STRtree(geoms).query(shapely.points(lons, lats), predicate="intersects")
    expected = np.full(len(lons), None, dtype=object)
    for p, g in zip(point, grid, strict=True):
        if expected[p] is None or codes[g] < expected[p]:
            expected[p] = codes[g]
    return expected


OVERLAPPING = [
    cell_box(0, 0, 8, 8),
    cell_box(2, 2, 3, 3),  # inside the first
    Polygon([lattice(5, 5), lattice(11, 5), lattice(11, 11)]),  # half in, half out
    cell_box(7, 1, 12, 2),  # sticks out of the first
    cell_box(8, 3, 10, 4),  # outside, touching the first
]


@pytest.mark.parametrize("cell_m", [None, 20.0, 70.0])
@pytest.mark.parametrize("seed", range(3))
def test_overlapping_grids_give_the_smallest_covering_code_everywhere(cell_m, seed):
    codes = ["c1", "c2", "c3", "c4", "c5"]
    random.Random(seed).shuffle(codes)
    index = GridIndex.build(codes, OVERLAPPING, cell_m=cell_m)
    rng = np.random.default_rng(seed)
    lons, lats = lattice(rng.uniform(-1, 13, 20_000), rng.uniform(-1, 12, 20_000))
    found = index.locate_many(lons, lats)
    expected = _covering_min_code(codes, OVERLAPPING, lons, lats)
    inside = found.flag == INSIDE
    assert (found.codes[inside] == expected[inside]).all()
    assert all(e is None for e in expected[~inside])
    for k in np.flatnonzero(~inside)[:200]:
        code, flag, distance = brute_force(codes, OVERLAPPING, lons[k], lats[k], 50)
        assert (found.codes[k], found.flag[k]) == (code, flag)
        assert found.distance_m[k] == pytest.approx(distance, rel=1e-9)


def test_an_edge_exactly_on_a_cell_line_still_goes_to_the_smallest_code():
    """The raster's cell lines are arbitrary; a shared edge may fall exactly on one."""
    frame = cell_box(0, 0, 8, 8).bounds
    first = GridIndex.build(["a", "b"], [cell_box(0, 0, 4, 8), cell_box(4, 0, 8, 8)], cell_m=50)
    r = first._raster  # the raster depends only on the layer's bounds, size and tolerance
    k = round(((frame[0] + frame[2]) / 2 - r.x0) / r.sx)
    x = r.x0 + k * r.sx
    west = box(frame[0], frame[1], x, frame[3])
    east = box(x, frame[1], frame[2], frame[3])
    index = GridIndex.build(["a", "b"], [west, east], cell_m=50)
    assert index._raster == r
    assert abs((x - r.x0) * r.inv_x - k) < 1e-9  # the edge is on a cell line, to rounding
    lats = np.linspace(frame[1] + 1e-6, frame[3] - 1e-6, 5001)
    lons = np.full_like(lats, x)
    assert set(index.locate_many(lons, lats).codes) == {"a"}
    assert {index.locate(x, lat).code for lat in lats[::10]} == {"a"}


# -- locate and locate_many agree, with the definition --------------------------------------------


def _points_on_and_around(geoms, n_random: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random points over the bbox and beyond, 2,000 grid vertices, 2,000 points along grid edges."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    pad = 0.002
    random_xy = np.column_stack(
        [rng.uniform(minx - pad, maxx + pad, n_random), rng.uniform(miny - pad, maxy + pad, n_random)]
    )
    vertices, ring = shapely.get_coordinates(shapely.get_rings(geoms), return_index=True)
    some_vertices = vertices[rng.choice(len(vertices), 2000)]
    starts = rng.choice(np.flatnonzero(ring[:-1] == ring[1:]), 2000)
    t = rng.uniform(0, 1, (2000, 1))
    on_edges = vertices[starts] + t * (vertices[starts + 1] - vertices[starts])
    xy = np.concatenate([random_xy, some_vertices, on_edges])
    return xy[:, 0], xy[:, 1]


def test_locate_and_locate_many_agree_with_each_other_and_the_definition(tianning):
    codes, geoms = tianning
    index = GridIndex.build(codes, geoms)
    lons, lats = _points_on_and_around(np.array(geoms, dtype=object), 6000, seed=11)
    assert len(lons) == 10_000
    many = index.locate_many(lons, lats)
    for k, (lon, lat) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
        one = index.locate(lon, lat)
        assert one == many.location(k)
        if k % 10 == 0 or one.flag != "inside" or k >= 6000:  # every edge point, a sample of the rest
            code, flag, distance = brute_force(codes, geoms, lon, lat, 50)
            assert (one.code, ["inside", "near", "unplaced"].index(one.flag)) == (code, flag)
            assert one.distance_m == pytest.approx(distance, rel=1e-6)
    assert {"inside", "near", "unplaced"} == {many.location(k).flag for k in range(len(lons))}


def test_the_real_layer_matches_a_plain_strtree_covers_query(tianning):
    codes, geoms = tianning
    index = GridIndex.build(codes, geoms)
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    lons, lats = rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000)
    found = index.locate_many(lons, lats)
    expected = _covering_min_code(codes, geoms, lons, lats)
    inside = found.flag == INSIDE
    assert inside.sum() > 40_000  # the two streets fill about half their bounding box
    assert (found.codes[inside] == expected[inside]).all()
    assert all(e is None for e in expected[~inside])


# -- bad input --------------------------------------------------------------------------------------


def test_nan_infinite_and_out_of_range_points_are_unplaced_in_bulk():
    index = GridIndex.build(["g1"], [SQUARE])
    lon_in, lat_in = lattice(1, 1)
    lons = np.array([np.nan, lon_in, np.inf, -np.inf, 200.0, lon_in, lon_in, lon_in])
    lats = np.array([lat_in, np.nan, lat_in, lat_in, lat_in, 95.0, -np.inf, lat_in])
    found = index.locate_many(lons, lats)
    assert found.flag.tolist() == [UNPLACED] * 7 + [INSIDE]
    assert found.index.tolist() == [-1] * 7 + [0]
    assert found.codes.tolist() == [None] * 7 + ["g1"]
    assert np.isinf(found.distance_m[:7]).all()
    assert found.index.dtype == np.int32
    assert found.flag.dtype == np.int8
    assert found.distance_m.dtype == np.float64


def test_locate_refuses_nan_and_places_nothing_out_of_range():
    index = GridIndex.build(["g1"], [SQUARE])
    with pytest.raises(ValueError, match="NaN"):
        index.locate(math.nan, 31.75)
    with pytest.raises(ValueError, match="NaN"):
        index.locate(120.0, math.nan)
    assert index.locate(200.0, 31.75).flag == "unplaced"
    assert index.locate(math.inf, 31.75).flag == "unplaced"
    assert index.locate(120.0, -91.0).flag == "unplaced"


def test_empty_input_gives_empty_arrays():
    found = GridIndex.build(["g1"], [SQUARE]).locate_many(np.array([]), np.array([]))
    assert len(found) == 0
    assert found.codes.shape == (0,)


@pytest.mark.parametrize(
    ("codes", "geoms", "message"),
    [
        (["a", "a"], [cell_box(0, 0, 1, 1), cell_box(1, 0, 2, 1)], "unique"),
        (["a"], [Polygon([lattice(0, 0), lattice(1, 1), lattice(1, 0), lattice(0, 1)])], "valid"),
        (["a"], [Point(120, 31)], "valid"),
        (["a"], [box(500_000, 3_500_000, 501_000, 3_501_000)], "longitude/latitude"),
        (["a", "b"], [cell_box(0, 0, 1, 1)], "same length"),
    ],
)
def test_build_refuses_layers_it_cannot_answer_for(codes, geoms, message):
    with pytest.raises(ValueError, match=message):
        GridIndex.build(codes, geoms)


def test_a_layer_without_grids_places_nothing():
    index = GridIndex.build([], [], version=3)
    assert len(index) == 0
    assert index.locate(*lattice(1, 1)).flag == "unplaced"
    found = index.locate_many(np.array([120.0, np.nan]), np.array([31.0, 31.0]))
    assert found.flag.tolist() == [UNPLACED, UNPLACED]
    assert found.codes.tolist() == [None, None]


def test_codes_version_and_len_describe_the_layer_as_given():
    codes = list(QUAD)[::-1]
    index = GridIndex.build(codes, [QUAD[c] for c in codes], version=7)
    assert index.codes == tuple(codes)
    assert index.version == 7
    assert len(index) == len(codes)
    found = index.locate_many(*map(np.array, zip(lattice(1, 1), lattice(3, 3), strict=True)))
    assert [index.codes[i] for i in found.index] == ["320402001", "320402004"]


def test_multipolygon_grids_are_found_in_every_part():
    parts = MultiPolygon([cell_box(0, 0, 1, 1), cell_box(3, 0, 4, 1)])
    index = GridIndex.build(["two-part", "other"], [parts, cell_box(1, 0, 3, 1)])
    assert index.locate(*lattice(0.5, 0.5)).code == "two-part"
    assert index.locate(*lattice(3.5, 0.5)).code == "two-part"
    assert index.locate(*lattice(2, 0.5)).code == "other"
    assert index.locate(*lattice(1, 0.5)).code == "other"  # shared edge: "other" < "two-part"


# -- property: the same answer as the definition, on small random layers ---------------------------

lattice_index = st.integers(min_value=0, max_value=8)


@st.composite
def grid_shapes(draw):
    i0, i1 = sorted(draw(st.lists(lattice_index, min_size=2, max_size=2, unique=True)))
    j0, j1 = sorted(draw(st.lists(lattice_index, min_size=2, max_size=2, unique=True)))
    kind = draw(st.sampled_from(["box", "triangle", "triangle2", "hole"]))
    if kind == "box":
        return cell_box(i0, j0, i1, j1)
    if kind == "triangle":
        return Polygon([lattice(i0, j0), lattice(i1, j0), lattice(i1, j1)])
    if kind == "triangle2":
        return Polygon([lattice(i0, j0), lattice(i1, j1), lattice(i0, j1)])
    if i1 - i0 < 3 or j1 - j0 < 3:
        return cell_box(i0, j0, i1, j1)
    hole = [lattice(i0 + 1, j0 + 1), lattice(i1 - 1, j0 + 1), lattice(i1 - 1, j1 - 1), lattice(i0 + 1, j1 - 1)]
    return Polygon([lattice(i0, j0), lattice(i1, j0), lattice(i1, j1), lattice(i0, j1)], holes=[hole])


half_lattice = st.integers(min_value=-4, max_value=20).map(lambda k: k / 2)
probe = st.one_of(
    st.tuples(half_lattice, half_lattice),  # vertices, edge points, centres: exact
    st.tuples(st.floats(-2, 10), st.floats(-2, 10)),  # anywhere around
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(grid_shapes(), min_size=1, max_size=6),
    probes=st.lists(probe, min_size=1, max_size=40),
    cell_m=st.sampled_from([None, 7.0, 60.0, 500.0, 5000.0]),
    tolerance_m=st.sampled_from([0.0, 50.0, 300.0]),
    seed=st.integers(0, 1000),
)
def test_locate_many_equals_a_brute_force_covers_loop(shapes, probes, cell_m, tolerance_m, seed):
    codes = [f"g{n:02d}" for n in range(len(shapes))]
    random.Random(seed).shuffle(codes)
    index = GridIndex.build(codes, shapes, cell_m=cell_m, tolerance_m=tolerance_m)
    lons = np.array([lattice(i, j)[0] for i, j in probes])
    lats = np.array([lattice(i, j)[1] for i, j in probes])
    found = index.locate_many(lons, lats)
    for k, (lon, lat) in enumerate(zip(lons.tolist(), lats.tolist(), strict=True)):
        code, flag, distance = brute_force(codes, shapes, lon, lat, tolerance_m)
        if flag != INSIDE and abs(distance - tolerance_m) < 1e-6 * max(1.0, tolerance_m):
            continue  # on the tolerance itself: either answer is right
        got = found.location(k)
        assert (got.code, ["inside", "near", "unplaced"].index(got.flag)) == (code, flag), (lon, lat)
        assert got.distance_m == pytest.approx(distance, rel=1e-9, abs=1e-9)
        assert index.locate(lon, lat) == got


# -- kept cells --------------------------------------------------------------------------------------


def test_an_index_built_from_kept_cells_answers_like_a_fresh_build(tianning):
    codes, geoms = tianning
    fresh = GridIndex.build(codes, geoms)
    kept = {name: array.copy() for name, array in fresh.cells().items()}
    again = GridIndex.build(codes, geoms, cells=kept)
    lons, lats = _points_on_and_around(np.array(geoms, dtype=object), 6000, seed=12)

    a, b = fresh.locate_many(lons, lats), again.locate_many(lons, lats)

    assert (a.codes == b.codes).all() and (a.flag == b.flag).all()
    assert np.array_equal(a.distance_m, b.distance_m)


def test_cells_of_another_layer_are_refused(tianning):
    codes, geoms = tianning
    other = GridIndex.build(codes[:20], geoms[:20], cell_m=500).cells()
    with pytest.raises(ValueError, match="cells"):
        GridIndex.build(codes, geoms, cells=other)
    with pytest.raises(ValueError, match="cells"):
        GridIndex.build(codes, geoms, cells={"raster": np.zeros(3)})
