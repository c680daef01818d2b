"""Validating a grid layer: each kind of bad input gets a finding that names the feature and the problem."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely
from pyproj import Geod
from rich.console import Console
from rich.progress import Progress
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo.gcj02 import transform_geometry, wgs84_to_gcj02
from geo.reader import read_boundary, read_grid_layer
from geo.report import render_report, report_json
from geo.synthetic import split_polygon
from geo.validate import validate_grid_layer

GEOD = Geod(ellps="WGS84")
CHANGZHOU = Path(__file__).resolve().parents[2] / "backend" / "demo" / "data" / "changzhou"
# Gauss-Krüger metres (EPSG:4549) near 119.95°E 31.78°N, in Changzhou: shapes are drawn in metres.
X0, Y0 = 495_000.0, 3_517_000.0


def gk_box(x, y, w, h):
    return box(X0 + x, Y0 + y, X0 + x + w, Y0 + y + h)


def frame(rows, crs="EPSG:4549"):
    """rows: (code, community code, community name, geometry); in metres, converted by geopandas."""
    data = gpd.GeoDataFrame(
        {
            "code": [r[0] for r in rows],
            "name": [f"网格{r[0]}" if r[0] else None for r in rows],
            "parent_code": [r[1] for r in rows],
            "parent_name": [r[2] for r in rows],
        },
        geometry=[r[3] for r in rows],
        crs=crs,
    )
    return data.to_crs("EPSG:4326") if crs == "EPSG:4549" else data


def to_wgs(geom):
    return gpd.GeoSeries([geom], crs="EPSG:4549").to_crs("EPSG:4326").iloc[0]


def geodesic_area(geom):
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def only(result, check):
    found = [f for f in result.findings if f.check == check]
    assert len(found) == 1, [f.message for f in result.findings]
    return found[0]


def checks(result):
    return sorted(f.check for f in result.findings)


def tiles(n=3):
    """An n x n block of 100 m grids in community C1 (named), codes G00, G01, ..."""
    return [(f"G{i}{j}", "C1", "红梅社区", gk_box(100 * i, 100 * j, 100, 100)) for i in range(n) for j in range(n)]


# ---------------------------------------------------------------------------------------------
# A clean layer


def test_a_clean_tiling_has_no_findings():
    community = to_wgs(gk_box(0, 0, 2000, 1500))
    parts = split_polygon(community, 30, seed=7)
    clean = gpd.GeoDataFrame(
        {
            "code": [f"320402001{i:03d}" for i in range(30)],
            "parent_code": ["320402001"] * 30,
            "parent_name": ["红梅社区"] * 30,
        },
        geometry=parts,
        crs="EPSG:4326",
    )
    result = validate_grid_layer(clean, parents={"320402001": community}, known_parent_codes=["320402001"])
    assert result.findings == []
    assert not result.has_errors
    assert result.to_json()["ok"] is True and result.to_json()["features"] == 30


# ---------------------------------------------------------------------------------------------
# Geometry


def test_self_intersecting_polygon_is_an_error_naming_the_grid_and_where():
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100), (X0, Y0)])
    result = validate_grid_layer(frame([("G1", "C1", "红梅社区", bowtie)]))
    finding = only(result, "geometry.invalid")
    assert finding.severity == "error" and finding.feature == "G1"
    assert "Grid G1 is not a valid polygon: Self-intersection at (" in finding.message
    assert "--fix" in finding.message
    assert "自相交" in finding.message_zh
    assert result.has_errors


def test_fix_repairs_a_bowtie_and_reports_what_changed():
    bowtie = Polygon([(X0, Y0), (X0 + 100, Y0 + 100), (X0 + 100, Y0), (X0, Y0 + 100), (X0, Y0)])
    result = validate_grid_layer(frame([("G1", "C1", "红梅社区", bowtie)]), fix=True)
    finding = only(result, "geometry.fixed")
    assert finding.severity == "warning"
    assert "Grid G1 was repaired" in finding.message and "Polygon → MultiPolygon" in finding.message
    assert finding.detail["type_before"] == "Polygon" and finding.detail["type_after"] == "MultiPolygon"
    # Two triangles of 100 m x 50 m each.
    assert finding.detail["area_after_m2"] == pytest.approx(5000.0, rel=0.01)
    repaired = result.frame.geometry.iloc[0]
    assert isinstance(repaired, MultiPolygon) and repaired.is_valid
    assert not result.has_errors


def test_polygon_without_area_cannot_be_repaired():
    flat = frame(
        [("G1", "C1", "红梅社区", Polygon([(119.95, 31.78), (119.96, 31.78), (119.97, 31.78)]))], crs="EPSG:4326"
    )
    reported = only(validate_grid_layer(flat), "geometry.invalid")
    assert reported.message.startswith("Grid G1 is not a valid polygon") and "redraw it" in reported.message
    fixed = only(validate_grid_layer(flat, fix=True), "geometry.empty")
    assert "has no area left once repaired" in fixed.message and fixed.severity == "error"


def test_sliver_is_reported():
    # Collinear in metres, a hair off once in degrees: valid, but no grid.
    sliver = Polygon([(X0, Y0), (X0 + 100, Y0), (X0 + 200, Y0), (X0, Y0)])
    finding = only(validate_grid_layer(frame([("G1", "C1", "红梅社区", sliver)])), "geometry.empty")
    assert finding.message.startswith("Grid G1 has almost no area (0.0 m²)")


def test_empty_and_non_polygon_geometries():
    rows = [
        ("G1", "C1", "红梅社区", Polygon()),
        ("G2", "C1", "红梅社区", Point(X0, Y0)),
        ("G3", "C1", "红梅社区", None),
    ]
    result = validate_grid_layer(frame(rows))
    empty = [f for f in result.findings if f.check == "geometry.empty"]
    assert {f.feature for f in empty} == {"G1", "G3"}
    assert "Grid G1 has no geometry" in next(f.message for f in empty if f.feature == "G1")
    assert only(result, "geometry.not_polygon").message == "Grid G2 is a Point, not a polygon"


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_nan_coordinates_from_a_file_are_an_error_and_the_rest_is_still_checked(tmp_path):
    good = [shapely.geometry.mapping(to_wgs(gk_box(100 * i, 0, 100, 100))) for i in range(3)]
    broken = {
        "type": "Polygon",
        "coordinates": [[[119.95, 31.78], [math.nan, 31.78], [119.951, 31.781], [119.95, 31.78]]],
    }
    features = [
        {"type": "Feature", "properties": {"code": code, "parent_code": "C1", "parent_name": "红梅社区"}, "geometry": g}
        for code, g in [("G1", good[0]), ("G2", broken), ("G3", good[1]), ("G3", good[2])]
    ]
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))  # writes NaN, as some tools do

    result = validate_grid_layer(read_grid_layer(path))

    nan = only(result, "coords.nan")
    assert nan.feature == "G2" and "Grid G2 has coordinates that are not numbers (NaN)" in nan.message
    assert only(result, "code.duplicate").feature == "G3"
    assert checks(result) == ["code.duplicate", "coords.nan"]


def test_projected_coordinates_without_a_prj_are_out_of_range_with_a_hint(tmp_path):
    projected = frame(tiles(1), crs=None)
    path = tmp_path / "grids.gpkg"
    with pytest.warns(UserWarning, match="crs"):
        pyogrio.write_dataframe(projected, path)

    layer = read_grid_layer(path)
    result = validate_grid_layer(layer)

    finding = only(result, "coords.out_of_range")
    assert finding.feature == "G00"
    assert "outside the longitude/latitude range" in finding.message and "--crs EPSG:4549" in finding.message
    # The reader said what it assumed; validation does not repeat it.
    assert [f.check for f in layer.findings] == ["crs.assumed"]
    assert checks(result) == ["coords.out_of_range"]


def test_swapped_latitude_and_longitude_are_pointed_out():
    swapped = shapely.transform(to_wgs(gk_box(0, 0, 100, 100)), lambda c: c[:, ::-1])
    result = validate_grid_layer(frame([("G1", "C1", "红梅社区", swapped)], crs="EPSG:4326"))
    assert "latitude and longitude look swapped" in only(result, "coords.out_of_range").message


# ---------------------------------------------------------------------------------------------
# Codes and parents


def test_duplicate_codes_list_the_source_indexes():
    rows = tiles(2)
    rows[2] = ("G00", *rows[2][1:])
    rows[3] = ("G11", rows[3][1], rows[3][2], gk_box(0, 0, 100, 100))  # on top of the first G00
    result = validate_grid_layer(frame(rows))
    finding = only(result, "code.duplicate")
    assert finding.feature == "G00"
    assert finding.message == "Grid code G00 is used by 2 features: #0, #2"
    assert finding.detail["source_indexes"] == [0, 2]
    # Elsewhere a repeated code is told apart by its index.
    assert only(result, "grid.overlap").message.startswith("Grids G00 (#0) and G11 overlap by 10,0")


def test_missing_code_names_the_feature_by_position():
    rows = tiles(2)
    rows[1] = (None, *rows[1][1:])
    finding = only(validate_grid_layer(frame(rows)), "code.missing")
    assert (finding.feature, finding.message) == ("#1", "Feature #1 has no grid code")


def test_parent_must_exist_or_be_creatable_from_the_files_attributes():
    rows = [
        ("G1", "C1", "红梅社区", gk_box(0, 0, 100, 100)),  # exists
        ("G2", "C8", "茶山社区", gk_box(100, 0, 100, 100)),  # new, but named: can be created
        ("G3", "C9", None, gk_box(200, 0, 100, 100)),  # new and nameless
        ("G4", None, None, gk_box(300, 0, 100, 100)),  # no community at all
    ]
    result = validate_grid_layer(frame(rows), known_parent_codes={"C1"})
    missing = {f.feature: f for f in result.findings if f.check == "parent.missing"}
    assert set(missing) == {"C9", "G4"}
    assert "Community C9 (of 1 grid: G3) does not exist and cannot be created" in missing["C9"].message
    assert missing["G4"].message.startswith("Grid G4 has no community code")

    # Without the list of existing communities only the missing code can be judged.
    unknown = validate_grid_layer(frame(rows))
    assert [f.feature for f in unknown.findings if f.check == "parent.missing"] == ["G4"]


def test_one_community_code_with_two_names_is_a_warning():
    rows = [("G1", "C1", "红梅社区", gk_box(0, 0, 100, 100)), ("G2", "C1", "红梅新村", gk_box(100, 0, 100, 100))]
    finding = only(validate_grid_layer(frame(rows)), "parent.name_conflict")
    assert finding.severity == "warning" and "红梅新村" in finding.message and "红梅社区" in finding.message


# ---------------------------------------------------------------------------------------------
# Between grids


def test_overlap_is_reported_as_a_pair_with_its_area_in_square_metres():
    rows = [("A1", "C1", "红梅社区", gk_box(0, 0, 100, 100)), ("A2", "C1", "红梅社区", gk_box(70, 20, 100, 100))]
    layer = frame(rows)
    expected = geodesic_area(layer.geometry.iloc[0].intersection(layer.geometry.iloc[1]))  # ≈ 30 m x 80 m

    finding = only(validate_grid_layer(layer), "grid.overlap")

    assert finding.severity == "error" and finding.feature == "A1"
    assert finding.detail["other"] == "A2"
    assert finding.detail["area_m2"] == pytest.approx(expected, rel=0.01)
    assert finding.detail["area_m2"] == pytest.approx(2400, rel=0.01)
    assert finding.message.startswith("Grids A1 and A2 overlap by 2,4")
    assert "m²" in finding.message


def test_overlap_below_the_tolerance_is_not_reported():
    rows = [("A1", "C1", "红梅社区", gk_box(0, 0, 100, 100)), ("A2", "C1", "红梅社区", gk_box(99.9, 0, 100, 100))]
    result = validate_grid_layer(frame(rows), overlap_tolerance_m2=20)
    assert "grid.overlap" not in checks(result)
    assert "grid.overlap" in checks(validate_grid_layer(frame(rows), overlap_tolerance_m2=5))


def test_layer_in_a_projected_crs_is_checked_in_wgs84():
    rows = [("A1", "C1", "红梅社区", gk_box(0, 0, 100, 100)), ("A2", "C1", "红梅社区", gk_box(50, 0, 100, 100))]
    projected = frame(rows, crs=None).set_crs("EPSG:4549")
    result = validate_grid_layer(projected)
    assert only(result, "grid.overlap").detail["area_m2"] == pytest.approx(5000, rel=0.01)
    assert result.frame.crs.to_epsg() == 4326


def test_hole_between_a_communitys_grids_is_a_gap_with_its_area():
    ring = [row for row in tiles(3) if row[0] != "G11"]  # the centre grid is missing
    layer = frame(ring)
    hole = to_wgs(gk_box(100, 100, 100, 100))

    finding = only(validate_grid_layer(layer), "community.gap")

    assert finding.severity == "warning" and finding.feature == "C1"
    assert finding.detail["area_m2"] == pytest.approx(geodesic_area(hole), rel=0.01)
    assert finding.message.startswith("Community C1 has a gap of 10,0")
    assert "community.gap" not in checks(validate_grid_layer(layer, gap_tolerance_m2=20_000))


def test_part_of_the_community_covered_by_no_grid_is_a_gap_when_the_community_is_known():
    community = to_wgs(gk_box(0, 0, 300, 300))
    partial = frame([row for row in tiles(3) if row[0] != "G22"])  # a corner is missing: no hole in the union
    assert "community.gap" not in checks(validate_grid_layer(partial))
    finding = only(validate_grid_layer(partial, parents={"C1": community}), "community.gap")
    assert finding.detail["area_m2"] == pytest.approx(10_000, rel=0.01)


def test_grid_outside_its_parent():
    community = to_wgs(gk_box(0, 0, 200, 200))
    rows = [
        ("G1", "C1", "红梅社区", gk_box(0, 0, 100, 100)),  # inside
        ("G2", "C1", "红梅社区", gk_box(150, 0, 100, 100)),  # half out
        ("G3", "C1", "红梅社区", gk_box(500, 0, 100, 100)),  # far away
        ("G4", "C1", "红梅社区", gk_box(100, 100, 105, 100)),  # 95 % inside: digitising noise
    ]
    # C2 exists but has no drawn boundary: its grid cannot be checked, and is not "missing".
    rows.append(("G5", "C2", None, gk_box(900, 0, 100, 100)))
    result = validate_grid_layer(frame(rows), parents={"C1": community, "C2": None})
    assert "parent.missing" not in checks(result)
    outside = {f.feature: f for f in result.findings if f.check == "grid.outside_parent"}
    assert set(outside) == {"G2", "G3"}
    assert outside["G2"].message == "Grid G2 lies only 50.0% inside its community C1"
    assert outside["G2"].detail["share_inside"] == pytest.approx(0.5, abs=0.005)
    assert outside["G3"].message == "Grid G3 lies entirely outside its community C1"


# ---------------------------------------------------------------------------------------------
# Datum


@pytest.fixture(scope="module")
def changzhou():
    """The real city boundary (in WGS84) and 40 grids tiling Xinbei district, which reaches the city's edge."""
    city = read_boundary(CHANGZHOU / "320400.geojson", crs="gcj02")
    xinbei = read_boundary(CHANGZHOU / "320411.geojson", crs="gcj02")
    return city, split_polygon(xinbei, 40, seed=3)


def write_grids(path, geoms):
    features = [
        {
            "type": "Feature",
            "properties": {"wgbm": f"320411{i:03d}", "sqbm": "320411001", "sqmc": "三井社区"},
            "geometry": shapely.geometry.mapping(g),
        }
        for i, g in enumerate(geoms)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def test_gcj02_file_declared_as_wgs84_is_detected_against_the_city_boundary(tmp_path, changzhou):
    city, grids = changzhou
    amap = write_grids(tmp_path / "amap.geojson", [transform_geometry(g, wgs84_to_gcj02) for g in grids])

    result = validate_grid_layer(read_grid_layer(amap), reference_boundary=city)

    finding = only(result, "datum.suspect_gcj02")
    assert finding.severity == "warning"
    assert "looks like GCJ-02" in finding.message and "declared as WGS84" in finding.message
    assert "--crs gcj02" in finding.message and "GCJ-02" in finding.message_zh
    assert 300 < finding.detail["offset_m"] < 700
    assert finding.detail["outside_m2_after_shift"] < finding.detail["outside_m2_as_given"] / 10

    # Read as what it is, it fits.
    fixed = validate_grid_layer(read_grid_layer(amap, crs="gcj02"), reference_boundary=city)
    assert "datum.suspect_gcj02" not in checks(fixed)


def test_true_wgs84_file_is_not_suspected(tmp_path, changzhou):
    city, grids = changzhou
    result = validate_grid_layer(read_grid_layer(write_grids(tmp_path / "wgs.geojson", grids)), reference_boundary=city)
    assert result.findings == []


# ---------------------------------------------------------------------------------------------
# Output and speed


def test_json_and_table_reports_name_the_feature_and_the_problem():
    rows = [("A1", "C1", "红梅社区", gk_box(0, 0, 100, 100)), ("A2", "C1", "红梅社区", gk_box(50, 0, 100, 100))]
    result = validate_grid_layer(frame(rows))

    document = json.loads(json.dumps(result.to_json(), ensure_ascii=False))
    assert document["ok"] is False and document["errors"] == 1 and document["warnings"] == 0
    assert document["features"] == 2 and document["by_check"] == {"grid.overlap": 1}
    [finding] = document["findings"]
    assert finding["feature"] == "A1" and finding["check"] == "grid.overlap" and finding["detail"]["other"] == "A2"
    assert "重叠" in finding["message_zh"]
    assert report_json(result.findings)["findings"] == document["findings"]

    console = Console(record=True, width=200, file=io.StringIO())
    render_report(result.findings, console)
    text = console.export_text()
    assert "grid.overlap" in text and "Grids A1 and A2 overlap by" in text and "1 error, 0 warnings" in text

    console = Console(record=True, width=200, file=io.StringIO())
    render_report([], console)
    assert "No problems found" in console.export_text()


def test_progress_is_reported_to_a_rich_progress():
    with Progress(console=Console(file=io.StringIO())) as progress:
        validate_grid_layer(frame(tiles(2)), progress=progress)
    [task] = progress.tasks
    assert task.completed == task.total


def test_a_city_sized_layer_of_thirteen_thousand_clean_grids_has_no_findings():
    # A Changzhou-sized layer: 130 x 100 grids of ~250 m, 650 communities of 4 x 5 grids, every check on.
    step = 0.0025
    ix, iy = np.meshgrid(np.arange(130), np.arange(100), indexing="ij")
    ix, iy = ix.ravel(), iy.ravel()
    x0, y0 = 119.6 + ix * step, 31.5 + iy * step
    geoms = shapely.box(x0, y0, x0 + step, y0 + step)
    community = np.char.add("C", ((ix // 4) * 100 + iy // 5).astype(str))
    layer = gpd.GeoDataFrame(
        {"code": [f"G{i}" for i in range(len(geoms))], "parent_code": community, "parent_name": community},
        geometry=geoms,
        crs="EPSG:4326",
    )
    parents = {str(code): shapely.union_all(group.values) for code, group in layer.groupby("parent_code").geometry}
    boundary = box(119.59, 31.49, 119.61 + 130 * step, 31.51 + 100 * step)

    result = validate_grid_layer(layer, parents=parents, known_parent_codes=parents, reference_boundary=boundary)

    # How long it takes is measured in bench/ (the whole import), never asserted here.
    assert len(result.frame) == 13_000 and result.findings == []
