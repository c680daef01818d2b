"""Reading grid files as cities hand them over: formats, encodings, field names, coordinate systems, refusals."""

from __future__ import annotations

import io
import json
import zipfile

import geopandas as gpd
import pyogrio
import pytest
import shapely
from pyproj import Geod
from rich.console import Console
from rich.progress import Progress
from shapely.geometry import box

from geo.gcj02 import transform_geometry, wgs84_to_gcj02
from geo.reader import ReadError, read_boundary, read_grid_layer

GEOD = Geod(ellps="WGS84")
NAMES = ["红梅第一网格", "红梅第二网格", "茶山第一网格"]
CODES = ["320402001001", "320402001002", "320402002001"]
COMMUNITIES = [("320402001", "红梅社区"), ("320402001", "红梅社区"), ("320402002", "茶山社区")]


def squares(x0=119.95, y0=31.78, size=0.005):
    return [box(x0 + i * size, y0, x0 + (i + 1) * size, y0 + size) for i in range(3)]


def pinyin_frame(crs="EPSG:4326", geometry=None):
    """Field names as Chinese GIS offices abbreviate them (拼音首字母), values in Chinese."""
    return gpd.GeoDataFrame(
        {
            "WGBM": CODES,
            "WGMC": NAMES,
            "SQBM": [c for c, _ in COMMUNITIES],
            "SQMC": [n for _, n in COMMUNITIES],
            "JDBM": ["320402001"] * 3,
            "JDMC": ["红梅街道"] * 3,
        },
        geometry=geometry or squares(),
        crs=crs,
    )


def write_gbk_shapefile(path, frame=None):
    pyogrio.write_dataframe(frame if frame is not None else pinyin_frame(), path, encoding="GBK")
    return path


def metres(a, b):
    return GEOD.inv(a.x, a.y, b.x, b.y)[2]


# ---------------------------------------------------------------------------------------------
# Shapefiles and encodings


def test_gbk_shapefile_with_cpg_reads_chinese_text_and_finds_the_pinyin_fields(tmp_path):
    path = write_gbk_shapefile(tmp_path / "grids.shp")
    assert (tmp_path / "grids.cpg").read_text().strip().upper() == "GBK"

    layer = read_grid_layer(path)

    frame = layer.frame
    assert frame["name"].tolist() == NAMES
    assert frame["code"].tolist() == CODES
    assert frame["parent_name"].tolist() == [n for _, n in COMMUNITIES]
    assert frame["street_name"].tolist() == ["红梅街道"] * 3
    assert layer.field_map == {
        "code": "WGBM",
        "name": "WGMC",
        "parent_code": "SQBM",
        "parent_name": "SQMC",
        "street_code": "JDBM",
        "street_name": "JDMC",
    }
    assert frame["level"].isna().all()
    assert frame.crs.to_epsg() == 4326
    assert layer.findings == []


def test_chinese_field_names_are_recognised(tmp_path):
    frame = gpd.GeoDataFrame(
        {"网格编码": CODES, "网格名称": NAMES, "所属社区编码": ["320402001"] * 3, "所属社区": ["红梅社区"] * 3},
        geometry=squares(),
        crs="EPSG:4326",
    )
    geopackage = tmp_path / "网格.gpkg"
    pyogrio.write_dataframe(frame, geopackage)
    layer = read_grid_layer(geopackage)
    assert layer.field_map == {
        "code": "网格编码",
        "name": "网格名称",
        "parent_code": "所属社区编码",
        "parent_name": "所属社区",
    }
    assert layer.frame["name"].tolist() == NAMES

    # A .dbf keeps 10 bytes of a field name: in GBK "所属社区编码" arrives as "所属社区编".
    with pytest.warns(RuntimeWarning):  # GDAL reports the cut (in GBK, which pyogrio cannot print)
        shapefile = write_gbk_shapefile(tmp_path / "网格.shp", frame)
    layer = read_grid_layer(shapefile)
    assert layer.field_map["parent_code"] == "所属社区编"
    assert layer.frame["parent_code"].tolist() == ["320402001"] * 3


def test_gbk_shapefile_without_cpg_is_refused_with_the_fix_then_reads_with_encoding(tmp_path):
    path = write_gbk_shapefile(tmp_path / "grids.shp")
    (tmp_path / "grids.cpg").unlink()

    with pytest.raises(ReadError) as caught:
        read_grid_layer(path)
    message = str(caught.value)
    assert "grids.shp" in message and "--encoding gbk" in message and "no .cpg" in message
    assert caught.value.code == "read.encoding"
    assert "--encoding gbk" in caught.value.message_zh

    for encoding in ("gbk", "GB18030", "cp936"):
        assert read_grid_layer(path, encoding=encoding).frame["name"].tolist() == NAMES


def test_arcgis_style_cpg_is_honoured(tmp_path):
    path = write_gbk_shapefile(tmp_path / "grids.shp")
    (tmp_path / "grids.cpg").write_text("ANSI 936")
    assert read_grid_layer(path).frame["name"].tolist() == NAMES


def test_a_cpg_that_lies_is_refused_with_a_suggestion(tmp_path):
    path = write_gbk_shapefile(tmp_path / "grids.shp")
    (tmp_path / "grids.cpg").write_text("UTF-8")
    with pytest.raises(ReadError, match=r"grids\.shp.*--encoding gbk"):
        read_grid_layer(path)
    # The caller's encoding wins over the .cpg.
    assert read_grid_layer(path, encoding="gbk").frame["name"].tolist() == NAMES


def test_zipped_shapefile_is_read(tmp_path):
    write_gbk_shapefile(tmp_path / "grids.shp")
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in tmp_path.glob("grids.*"):
            if part.suffix != ".zip":
                zipped.write(part, part.name)
    assert read_grid_layer(archive).frame["name"].tolist() == NAMES


def test_reading_reports_progress(tmp_path):
    path = write_gbk_shapefile(tmp_path / "grids.shp")
    with Progress(console=Console(file=io.StringIO())) as progress:
        read_grid_layer(path, progress=progress)
    [task] = progress.tasks
    assert task.completed == task.total and "grids.shp" in task.description


def test_numeric_codes_become_text_without_a_decimal_point(tmp_path):
    frame = gpd.GeoDataFrame(
        {"wgbm": [320402001001, 320402001002, 320402002001], "sqbm": [320402001.0, None, 320402002.0]},
        geometry=squares(),
        crs="EPSG:4326",
    )
    path = tmp_path / "numeric.gpkg"
    pyogrio.write_dataframe(frame, path)
    layer = read_grid_layer(path)
    assert layer.frame["code"].tolist() == CODES
    assert layer.frame["parent_code"].tolist() == ["320402001", None, "320402002"]


# ---------------------------------------------------------------------------------------------
# GeoPackage, FlatGeobuf, GeoJSON


def test_geopackage_with_two_layers_needs_a_choice(tmp_path):
    path = tmp_path / "city.gpkg"
    pyogrio.write_dataframe(pinyin_frame(), path, layer="grids")
    communities = gpd.GeoDataFrame(
        {"sqbm": ["320402001"], "sqmc": ["红梅社区"]}, geometry=[box(119.95, 31.78, 119.97, 31.79)], crs="EPSG:4326"
    )
    pyogrio.write_dataframe(communities, path, layer="communities")

    with pytest.raises(ReadError) as caught:
        read_grid_layer(path)
    assert "city.gpkg" in str(caught.value) and "grids" in str(caught.value) and "communities" in str(caught.value)
    assert "--layer" in str(caught.value)

    layer = read_grid_layer(path, layer="grids")
    assert layer.frame["code"].tolist() == CODES
    assert layer.layer == "grids"
    # GeoPackage feature ids start at 1: the number QGIS shows in the fid column.
    assert layer.frame["source_index"].tolist() == [1, 2, 3]

    community_layer = read_grid_layer(path, layer="communities", code_field="sqbm", name_field="sqmc")
    assert community_layer.frame["code"].tolist() == ["320402001"]
    assert community_layer.frame["name"].tolist() == ["红梅社区"]

    with pytest.raises(ReadError, match=r"no layer 'streets'.*grids.*communities"):
        read_grid_layer(path, layer="streets")


def test_flatgeobuf_is_read(tmp_path):
    path = tmp_path / "grids.fgb"
    pyogrio.write_dataframe(pinyin_frame(), path)
    layer = read_grid_layer(path)
    by_code = dict(zip(layer.frame["code"], layer.frame["name"], strict=True))
    assert by_code == dict(zip(CODES, NAMES, strict=True))


def test_geojson_feature_collection_with_standard_names(tmp_path):
    features = [
        {
            "type": "Feature",
            "properties": {
                "Code": code,
                "Name": name,
                "parent_code": parent,
                "parent_name": parent_name,
                "street_code": "320402001",
                "street_name": "红梅街道",
                "level": "grid",
            },
            "geometry": shapely.geometry.mapping(geom),
        }
        for code, name, (parent, parent_name), geom in zip(CODES, NAMES, COMMUNITIES, squares(), strict=True)
    ]
    path = tmp_path / "grids.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))

    layer = read_grid_layer(path)

    assert set(layer.field_map) == {"code", "name", "parent_code", "parent_name", "street_code", "street_name", "level"}
    frame = layer.frame
    assert list(frame.columns[:8]) == [
        "code",
        "name",
        "parent_code",
        "parent_name",
        "street_code",
        "street_name",
        "level",
        "source_index",
    ]
    assert frame["name"].tolist() == NAMES and frame["level"].tolist() == ["grid"] * 3
    assert frame.geometry.iloc[0].equals(squares()[0])
    # RFC 7946 says GeoJSON is WGS84: nothing was assumed.
    assert layer.source_crs.name == "WGS84" and layer.findings == []


def test_bare_geometry_object_like_the_amap_district_files(tmp_path):
    # As backend/demo/data/changzhou/*.geojson: a MultiPolygon object with a stray "properties" member.
    district = shapely.MultiPolygon([box(119.9, 31.7, 120.0, 31.8), box(120.0, 31.75, 120.05, 31.8)])
    document = {**shapely.geometry.mapping(district), "properties": {"adcode": 320402}}
    path = tmp_path / "320402.geojson"
    path.write_text(json.dumps(document))

    boundary = read_boundary(path)
    assert boundary.area == pytest.approx(district.area)

    layer = read_grid_layer(path, code_field="adcode")
    assert layer.frame["code"].tolist() == ["320402"]

    # The same file declared as GCJ-02 comes back several hundred metres away, in WGS84.
    shifted = read_boundary(path, crs="gcj02")
    assert 300 < metres(shifted.centroid, boundary.centroid) < 700


def test_bare_geometry_collection_and_lone_feature(tmp_path):
    collection = tmp_path / "collection.json"
    collection.write_text(
        json.dumps({"type": "GeometryCollection", "geometries": [shapely.geometry.mapping(g) for g in squares()]})
    )
    assert read_boundary(collection).area == pytest.approx(sum(g.area for g in squares()))

    feature = tmp_path / "feature.geojson"
    feature.write_text(
        json.dumps(
            {"type": "Feature", "properties": {"wgbm": "A1"}, "geometry": shapely.geometry.mapping(squares()[0])}
        )
    )
    assert read_grid_layer(feature).frame["code"].tolist() == ["A1"]


def test_gbk_geojson_is_refused_without_encoding_and_read_with_it(tmp_path):
    features = [
        {"type": "Feature", "properties": {"网格编码": c, "网格名称": n}, "geometry": shapely.geometry.mapping(g)}
        for c, n, g in zip(CODES, NAMES, squares(), strict=True)
    ]
    path = tmp_path / "grids.geojson"
    path.write_bytes(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode("gbk"))

    with pytest.raises(ReadError, match=r"grids\.geojson.*--encoding gbk"):
        read_grid_layer(path)
    assert read_grid_layer(path, encoding="gbk").frame["name"].tolist() == NAMES


# ---------------------------------------------------------------------------------------------
# Fields


def test_field_options_are_case_insensitive_and_override_sniffing(tmp_path):
    path = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(pinyin_frame(), path)
    layer = read_grid_layer(path, code_field="wgmc", name_field="wgbm", parent_field="jdbm")
    assert layer.frame["code"].tolist() == NAMES
    assert layer.frame["name"].tolist() == CODES
    assert layer.field_map["parent_code"] == "JDBM"


def test_a_named_field_that_does_not_exist_is_refused_with_the_fields_listed(tmp_path):
    path = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(pinyin_frame(), path)
    with pytest.raises(ReadError) as caught:
        read_grid_layer(path, code_field="grid_id")
    assert "grid_id" in str(caught.value) and "WGBM, WGMC, SQBM" in str(caught.value)


def test_no_code_field_is_refused_with_the_fields_listed(tmp_path):
    frame = gpd.GeoDataFrame({"id_no": [1, 2, 3], "label": NAMES}, geometry=squares(), crs="EPSG:4326")
    path = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(frame, path)
    with pytest.raises(ReadError) as caught:
        read_grid_layer(path)
    message = str(caught.value)
    assert "grids.gpkg" in message and "grid code" in message and "id_no, label" in message
    assert "--code-field" in message
    assert caught.value.code == "read.no_code_field"


# ---------------------------------------------------------------------------------------------
# Coordinate systems


def test_gauss_kruger_shapefile_is_converted_using_its_prj(tmp_path):
    projected = pinyin_frame().to_crs("EPSG:4549")
    path = tmp_path / "grids.shp"
    pyogrio.write_dataframe(projected, path, encoding="GBK")

    layer = read_grid_layer(path)

    assert layer.source_crs.epsg == 4549
    for got, want in zip(layer.frame.geometry, squares(), strict=True):
        assert shapely.hausdorff_distance(got, want) < 1e-7
    assert layer.findings == []


def test_missing_prj_assumes_wgs84_and_says_so(tmp_path):
    path = tmp_path / "grids.shp"
    with pytest.warns(UserWarning, match="crs"):
        write_gbk_shapefile(path, pinyin_frame(crs=None))
    assert not (tmp_path / "grids.prj").exists()

    layer = read_grid_layer(path)

    assert layer.source_crs.name == "WGS84"
    [finding] = layer.findings
    assert (finding.check, finding.severity) == ("crs.assumed", "warning")
    assert "grids.shp" in finding.message and "WGS84" in finding.message and "--crs" in finding.message


def test_the_callers_crs_wins_over_the_files(tmp_path):
    # Projected coordinates in a file with no .prj: the caller says what they are.
    path = tmp_path / "grids.shp"
    with pytest.warns(UserWarning, match="crs"):
        write_gbk_shapefile(path, pinyin_frame().to_crs("EPSG:4549").set_crs(None, allow_override=True))
    layer = read_grid_layer(path, crs="EPSG:4549")
    assert layer.findings == []
    assert shapely.hausdorff_distance(layer.frame.geometry.iloc[0], squares()[0]) < 1e-7

    # A GCJ-02 file labelled EPSG:4326, as Amap exports are.
    gcj = [transform_geometry(g, wgs84_to_gcj02) for g in squares()]
    labelled = tmp_path / "amap.gpkg"
    pyogrio.write_dataframe(pinyin_frame(geometry=gcj), labelled)
    converted = read_grid_layer(labelled, crs="gcj02")
    assert converted.source_crs.is_gcj02
    assert shapely.hausdorff_distance(converted.frame.geometry.iloc[0], squares()[0]) < 1e-7
    as_labelled = read_grid_layer(labelled)
    assert 300 < metres(as_labelled.frame.geometry.iloc[0].centroid, squares()[0].centroid) < 700


def test_an_unknown_crs_is_refused(tmp_path):
    path = tmp_path / "grids.gpkg"
    pyogrio.write_dataframe(pinyin_frame(), path)
    with pytest.raises(ReadError, match=r"grids\.gpkg.*Unknown coordinate system 'web mercator'"):
        read_grid_layer(path, crs="web mercator")


# ---------------------------------------------------------------------------------------------
# Refusals


def test_missing_file(tmp_path):
    with pytest.raises(ReadError, match=r"nowhere\.gpkg does not exist") as caught:
        read_grid_layer(tmp_path / "nowhere.gpkg")
    assert caught.value.code == "read.not_found"


@pytest.mark.parametrize("name", ["grids.geojson", "grids.gpkg", "grids.shp", "grids.fgb"])
def test_zero_byte_file(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(ReadError, match=rf"{name} is empty \(0 bytes\)"):
        read_grid_layer(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("grids.gpkg", b"this is not a GeoPackage" * 40),
        ("grids.shp", b"\x00\x00\x27\x0a" + b"\xff" * 96),
        ("grids.fgb", b"fgb\x03" + b"\x00" * 60),
    ],
)
def test_corrupt_file(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ReadError) as caught:
        read_grid_layer(path)
    assert name in str(caught.value) and "damaged" in str(caught.value)
    assert caught.value.code == "read.corrupt"


def test_truncated_geojson_names_the_position(tmp_path):
    path = tmp_path / "grids.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", "prope')
    with pytest.raises(ReadError, match=r"grids\.geojson is not valid JSON .*line 1"):
        read_grid_layer(path)


def test_layer_without_features(tmp_path):
    path = tmp_path / "grids.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}')
    with pytest.raises(ReadError, match=r"grids\.geojson has no features") as caught:
        read_grid_layer(path)
    assert caught.value.code == "read.empty_layer"


@pytest.mark.parametrize("name", ["grids.kml", "grids.dwg", "grids"])
def test_unsupported_extension(tmp_path, name):
    path = tmp_path / name
    path.write_text("x")
    with pytest.raises(ReadError, match=r"not a supported format \(supported: .*\.gpkg"):
        read_grid_layer(path)


def test_folder_is_refused(tmp_path):
    with pytest.raises(ReadError, match=r"is a folder"):
        read_grid_layer(tmp_path)


def test_boundary_file_without_polygons(tmp_path):
    path = tmp_path / "line.geojson"
    path.write_text(json.dumps({"type": "LineString", "coordinates": [[119.9, 31.7], [120.0, 31.8]]}))
    with pytest.raises(ReadError, match=r"line\.geojson holds no polygon"):
        read_boundary(path)
