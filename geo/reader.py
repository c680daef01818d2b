"""Read a city's grid file into a ``GridLayer``: standard columns, WGS84, and what was assumed.

Formats (by extension): GeoJSON (``.geojson``/``.json``: a FeatureCollection, a Feature, or a bare
geometry object), GeoPackage (``.gpkg``: choose the layer when there are several), Shapefile
(``.shp``, or a ``.zip`` holding one; its ``.cpg`` names the attribute encoding, ``encoding=``
does for GBK/GB18030 files without one) and FlatGeobuf (``.fgb``). pyogrio (GDAL) reads them all.

Attributes are mapped to ``code, name, parent_code, parent_name, street_code, street_name, level``
by option or by sniffing common names (``wgbm``, ``网格编码``, ``sqbm``, ...; see ``FIELD_CANDIDATES``).
Many cities hand over only the grid layer, with community and street as attributes: those columns
let the importer create the missing communities and streets.

Coordinates: the caller's ``crs`` wins over the file's (GCJ-02 files are nearly always labelled
EPSG:4326); with neither, WGS84 is assumed and a ``crs.assumed`` finding says so.

Every refusal is a ``ReadError`` naming the file and the problem, in English and Chinese.
"""

from __future__ import annotations

import io
import json
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError, GeometryError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from geo.crs import CrsError, CrsSpec, geometries_to_wgs84, parse_crs
from geo.validate import LAYER_FEATURE, STANDARD_COLUMNS, Finding, StepProgress

if TYPE_CHECKING:
    from rich.progress import Progress

FORMATS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".shp": "Shapefile",
    ".zip": "zipped Shapefile",
    ".fgb": "FlatGeobuf",
}
_JSON_SUFFIXES = (".geojson", ".json")

# Names that cities' files use, in order of preference; matched case-insensitively.
FIELD_CANDIDATES: dict[str, tuple[str, ...]] = {
    "code": ("code", "grid_code", "wgbm", "网格编码", "网格代码", "bm"),
    "name": ("name", "grid_name", "wgmc", "网格名称", "mc"),
    "parent_code": ("parent_code", "community_code", "sqbm", "社区编码", "所属社区编码", "cjbm"),
    "parent_name": ("parent_name", "community_name", "sqmc", "社区名称", "所属社区"),
    "street_code": ("street_code", "jdbm", "街道编码"),
    "street_name": ("street_name", "jdmc", "街道名称", "乡镇街道"),
    "level": ("level", "jb", "层级"),
}
_DBF_NAME_LENGTH = 10  # Shapefile field names are cut to 10 bytes: "parent_code" arrives as "parent_cod"
_MOJIBAKE_SAMPLE = 500
_CJK = re.compile(r"[\u3400-\u9fff]")
_LATIN1_HIGH = re.compile(r"[\u0080-\u00ff]")


class ReadError(ValueError):
    """A grid file GridAid cannot read as given. ``code`` is stable (``read.corrupt``); ``path`` is the file."""

    def __init__(self, message: str, message_zh: str, *, path: Path | str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh
        self.path = str(path)
        self.code = code


@dataclass
class GridLayer:
    """A grid file read and converted: ``frame`` is in EPSG:4326 with the standard columns
    (None where the file has no such field) and ``source_index`` (the feature's id in the file).

    ``field_map`` maps standard column → the file's field; ``findings`` are the reader's warnings.
    """

    frame: gpd.GeoDataFrame
    source_crs: CrsSpec
    field_map: dict[str, str]
    findings: list[Finding] = field(default_factory=list)
    path: str = ""
    layer: str | None = None
    source_fields: list[str] = field(default_factory=list)


@dataclass
class _Raw:
    frame: gpd.GeoDataFrame
    file_crs: CrsSpec | None
    layer: str | None


# ---------------------------------------------------------------------------------------------
# Public API


def read_grid_layer(
    path: str | Path,
    *,
    layer: str | None = None,
    crs: str | int | CrsSpec | None = None,
    encoding: str | None = None,
    code_field: str | None = None,
    name_field: str | None = None,
    parent_field: str | None = None,
    level_field: str | None = None,
    parent_name_field: str | None = None,
    street_code_field: str | None = None,
    street_name_field: str | None = None,
    progress: Progress | None = None,
) -> GridLayer:
    """Read a grid (or street, community, district) layer; see the module docstring."""
    path = Path(path)
    steps = StepProgress(progress, f"Reading {path.name}", 3)
    steps.step("reading")
    requested = _parse_requested_crs(crs, path)
    raw = _read(path, layer=layer, encoding=encoding)
    steps.step("mapping fields")
    options = {
        "code": code_field,
        "name": name_field,
        "parent_code": parent_field,
        "parent_name": parent_name_field,
        "street_code": street_code_field,
        "street_name": street_name_field,
        "level": level_field,
    }
    columns = [str(c) for c in raw.frame.columns if c != raw.frame.geometry.name]
    field_map = _map_fields(columns, options, path)
    steps.step("converting to WGS84")
    source_crs, findings = _choose_crs(requested, raw.file_crs, path)
    geometry = geometries_to_wgs84(raw.frame.geometry, source_crs)
    # Object columns: missing values stay None (pandas would turn text columns into NaN-holding "str").
    data: dict[str, Any] = {
        column: pd.Series(
            _standard_values(raw.frame[field_map[column]]) if column in field_map else [None] * len(raw.frame),
            dtype=object,
        )
        for column in STANDARD_COLUMNS
    }
    data["source_index"] = pd.Series(_source_index(raw.frame), dtype="int64")
    frame = gpd.GeoDataFrame(data, geometry=np.asarray(geometry.values, dtype=object), crs="EPSG:4326")
    steps.done()
    return GridLayer(
        frame=frame,
        source_crs=source_crs,
        field_map=field_map,
        findings=findings,
        path=str(path),
        layer=raw.layer,
        source_fields=columns,
    )


def read_boundary(
    path: str | Path,
    *,
    crs: str | int | CrsSpec | None = None,
    layer: str | None = None,
    encoding: str | None = None,
) -> BaseGeometry:
    """A single (Multi)Polygon in WGS84: the union of every polygon in the file (e.g. a city boundary)."""
    path = Path(path)
    requested = _parse_requested_crs(crs, path)
    raw = _read(path, layer=layer, encoding=encoding)
    source_crs, _ = _choose_crs(requested, raw.file_crs, path)
    geoms = np.asarray(geometries_to_wgs84(raw.frame.geometry, source_crs).values, dtype=object)
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    parts = [
        part
        for geom in shapely.make_valid(geoms)
        for part in shapely.get_parts(shapely.get_parts(geom))
        if part.geom_type == "Polygon" and part.area > 0
    ]
    if not parts:
        raise ReadError(
            f"{path.name} holds no polygon: a boundary file needs one",
            f"{path.name} 中没有面，边界文件至少需要一个面",
            path=path,
            code="read.no_polygon",
        )
    union = shapely.union_all(parts)
    return union


# ---------------------------------------------------------------------------------------------
# Reading the file


def _parse_requested_crs(crs: str | int | CrsSpec | None, path: Path) -> CrsSpec | None:
    if crs is None:
        return None
    try:
        return parse_crs(crs)
    except CrsError as exc:
        raise ReadError(
            f"Cannot read {path.name}: {exc}", f"无法读取 {path.name}：坐标系无效（{exc}）", path=path, code="read.crs"
        ) from exc


def _read(path: Path, *, layer: str | None, encoding: str | None) -> _Raw:
    suffix = path.suffix.lower()
    if not path.exists():
        raise ReadError(f"{path} does not exist", f"文件 {path} 不存在", path=path, code="read.not_found")
    if path.is_dir():
        raise ReadError(
            f"{path} is a folder: give the .shp, .gpkg, .geojson or .fgb file itself",
            f"{path} 是文件夹，请指定 .shp、.gpkg、.geojson 或 .fgb 文件本身",
            path=path,
            code="read.unsupported_format",
        )
    if suffix not in FORMATS:
        supported = ", ".join(sorted(FORMATS))
        raise ReadError(
            f"{path.name}: the {suffix or 'missing'} extension is not a supported format (supported: {supported})",
            f"{path.name}：不支持 {suffix or '无扩展名'} 格式（支持：{supported}）",
            path=path,
            code="read.unsupported_format",
        )
    if path.stat().st_size == 0:
        raise ReadError(
            f"{path.name} is empty (0 bytes)", f"{path.name} 是空文件（0 字节）", path=path, code="read.empty_file"
        )
    if suffix in _JSON_SUFFIXES:
        raw = _read_json(path, encoding)
    else:
        chosen = _choose_layer(path, layer)
        raw = _Raw(*_read_with_pyogrio(path, chosen, encoding or _cpg_encoding(path)), layer=chosen)
    if len(raw.frame) == 0:
        where = f" (layer '{raw.layer}')" if raw.layer else ""
        raise ReadError(
            f"{path.name}{where} has no features",
            f"{path.name}{where} 中没有任何要素",
            path=path,
            code="read.empty_layer",
        )
    if encoding is None and _cpg_encoding(path) is None:
        _refuse_mojibake(raw.frame, path)
    return raw


def _corrupt(path: Path, exc: BaseException) -> ReadError:
    kind = FORMATS.get(path.suffix.lower(), "supported")
    detail = str(exc).split("; It might help")[0].strip()
    return ReadError(
        f"{path.name} cannot be read: it is damaged or not a {kind} file ({detail})",
        f"无法读取 {path.name}：文件已损坏或不是 {kind} 文件（{detail}）",
        path=path,
        code="read.corrupt",
    )


def _encoding_error(path: Path, encoding: str | None, exc: UnicodeDecodeError) -> ReadError:
    suggestion = "utf-8" if encoding and encoding.lower().replace("-", "") in {"gbk", "gb18030", "cp936"} else "gbk"
    if encoding is None and path.suffix.lower() in _JSON_SUFFIXES:
        problem = "are not UTF-8, as GeoJSON must be"
        problem_zh = "不是 GeoJSON 要求的 UTF-8 编码"
    elif encoding is None:
        problem = "do not decode with the encoding the file declares (its .cpg, or UTF-8)"
        problem_zh = "无法按文件声明的编码（.cpg 或 UTF-8）解码"
    else:
        problem = f"are not valid {encoding}"
        problem_zh = f"不是有效的 {encoding} 编码"
    return ReadError(
        f"The attributes of {path.name} {problem} ({exc.reason} at byte {exc.start}): try --encoding {suggestion}",
        f"{path.name} 的属性{problem_zh}：请尝试 --encoding {suggestion}",
        path=path,
        code="read.encoding",
    )


def _cpg_encoding(path: Path) -> str | None:
    """The codec an ArcGIS-style .cpg ("ANSI 936") names, which GDAL does not understand by itself."""
    cpg = path.with_suffix(".cpg")
    if path.suffix.lower() != ".shp" or not cpg.exists():
        return None
    match = re.fullmatch(r"\s*ANSI\s*(\d{3,5})\s*", cpg.read_text(encoding="ascii", errors="replace"), re.IGNORECASE)
    return f"cp{match.group(1)}" if match else None


def _choose_layer(path: Path, layer: str | None) -> str | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except DataSourceError as exc:
        raise _corrupt(path, exc) from exc
    if not layers:
        raise _corrupt(path, ValueError("no layers"))
    if layer is None:
        if len(layers) > 1:
            raise ReadError(
                f"{path.name} has {len(layers)} layers: choose one with --layer ({', '.join(layers)})",
                f"{path.name} 包含 {len(layers)} 个图层，请用 --layer 选择其一（{'、'.join(layers)}）",
                path=path,
                code="read.layer_required",
            )
        return layers[0]
    if layer not in layers:
        raise ReadError(
            f"{path.name} has no layer '{layer}' (layers: {', '.join(layers)})",
            f"{path.name} 中没有图层 '{layer}'（现有图层：{'、'.join(layers)}）",
            path=path,
            code="read.layer_not_found",
        )
    return layer


def _read_with_pyogrio(
    source: Path | io.BytesIO, layer: str | None, encoding: str | None, path: Path | None = None
) -> tuple[gpd.GeoDataFrame, CrsSpec | None]:
    named = path or (source if isinstance(source, Path) else Path("input"))
    try:
        with warnings.catch_warnings():
            # NaN coordinates and odd rings make shapely warn; validation reports them properly.
            warnings.simplefilter("ignore")
            frame = pyogrio.read_dataframe(
                source, layer=layer, encoding=encoding, fid_as_index=True, on_invalid="ignore"
            )
    except UnicodeDecodeError as exc:
        raise _encoding_error(named, encoding, exc) from exc
    except LookupError as exc:
        if encoding is not None and "codec" in str(exc).lower():
            raise ReadError(
                f"Unknown encoding {encoding!r} for {named.name}: use e.g. gbk, gb18030 or utf-8",
                f"未知编码 {encoding!r}：请使用 gbk、gb18030 或 utf-8 等",
                path=named,
                code="read.encoding",
            ) from exc
        raise _corrupt(named, exc) from exc
    except (DataSourceError, DataLayerError, FieldError, GeometryError, ValueError, IndexError, RuntimeError) as exc:
        raise _corrupt(named, exc) from exc
    return frame, _file_crs(frame.crs, named)


def _file_crs(crs: Any, path: Path) -> CrsSpec | None:
    if crs is None:
        return None
    try:
        return CrsSpec.from_pyproj(crs)
    except CrsError as exc:
        raise ReadError(
            f"{path.name} declares a coordinate system PROJ does not understand: give it with --crs ({exc})",
            f"{path.name} 声明的坐标系无法识别，请用 --crs 指定",
            path=path,
            code="read.crs",
        ) from exc


def _read_json(path: Path, encoding: str | None) -> _Raw:
    """GeoJSON through pyogrio; a bare geometry or Feature GDAL will not take goes through json+shapely."""
    data = path.read_bytes()
    if encoding is not None:
        try:
            data = data.decode(encoding).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise _encoding_error(path, encoding, exc) from exc
        except LookupError as exc:
            raise ReadError(
                f"Unknown encoding {encoding!r} for {path.name}: use e.g. gbk, gb18030 or utf-8",
                f"未知编码 {encoding!r}：请使用 gbk、gb18030 或 utf-8 等",
                path=path,
                code="read.encoding",
            ) from exc
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _encoding_error(path, None, exc) from exc
    try:
        frame, crs = _read_with_pyogrio(io.BytesIO(data), None, None, path=path)
    except ReadError as first:
        return _Raw(*_json_fallback(path, data, first), layer=None)
    if len(frame) == 1 and list(frame.columns) == [frame.geometry.name]:
        # GDAL drops the "properties" some bare geometry objects carry (Amap's district files do).
        with_properties = _json_fallback(path, data, None)
        if len(with_properties[0].columns) > 1:
            return _Raw(*with_properties, layer=None)
    return _Raw(frame, crs, layer=None)


_GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
    "GeometryCollection",
}


def _json_fallback(path: Path, data: bytes, first: ReadError | None) -> tuple[gpd.GeoDataFrame, CrsSpec | None]:
    try:
        document = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ReadError(
            f"{path.name} is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            f"{path.name} 不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}）",
            path=path,
            code="read.corrupt",
        ) from exc
    kind = document.get("type") if isinstance(document, dict) else None
    if kind in _GEOMETRY_TYPES:
        features = [{"type": "Feature", "properties": document.get("properties") or {}, "geometry": document}]
    elif kind == "Feature":
        features = [document]
    elif kind == "FeatureCollection":
        features = document.get("features") or []
    else:
        raise first or _corrupt(path, ValueError(f"not a GeoJSON object (type {kind!r})"))
    try:
        frame = _frame_from_features(features)
    except (KeyError, TypeError, ValueError, AttributeError, shapely.errors.GEOSException) as exc:
        raise _corrupt(path, exc) from exc
    return frame, _json_crs(document, path)


def _frame_from_features(features: Sequence[Any]) -> gpd.GeoDataFrame:
    geometries = [shape(f["geometry"]) if f.get("geometry") else None for f in features]
    records = [dict(f.get("properties") or {}) for f in features]
    return gpd.GeoDataFrame(pd.DataFrame.from_records(records, index=range(len(records))), geometry=geometries)


def _json_crs(document: dict[str, Any], path: Path) -> CrsSpec | None:
    name = ((document.get("crs") or {}).get("properties") or {}).get("name")
    # RFC 7946: GeoJSON without a "crs" member is WGS84.
    return _file_crs(name, path) if name else parse_crs("wgs84")


# ---------------------------------------------------------------------------------------------
# Encodings


def _refuse_mojibake(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Text decoded with the wrong codec: U+FFFD, or Latin-1 letters that are really GBK/UTF-8 bytes."""
    texts = [str(c) for c in frame.columns]
    for column in frame.columns:
        if column == frame.geometry.name:
            continue
        texts.extend(str(v) for v in frame[column].head(_MOJIBAKE_SAMPLE) if isinstance(v, str))
    suggestion = _suggest_encoding(texts)
    if suggestion is None:
        return
    sample = next(t for t in texts if "\ufffd" in t or _LATIN1_HIGH.search(t))
    no_cpg = path.suffix.lower() == ".shp" and not path.with_suffix(".cpg").exists()
    why, why_zh = (
        ("the file does not say its encoding (no .cpg)", "文件未声明编码（缺少 .cpg）") if no_cpg else ("", "")
    )
    raise ReadError(
        f"The attributes of {path.name} do not decode to readable text (e.g. {sample!r}): "
        f"{why}try --encoding {suggestion}",
        f"{path.name} 的属性无法正确解码（如 {sample!r}）：{why_zh}请尝试 --encoding {suggestion}",
        path=path,
        code="read.encoding",
    )


def _suggest_encoding(texts: Iterable[str]) -> str | None:
    votes = {"gbk": 0, "utf-8": 0}
    for text in texts:
        if "\ufffd" in text:
            votes["gbk"] += 1
            continue
        if _CJK.search(text) or not _LATIN1_HIGH.search(text):
            continue
        try:
            raw = text.encode("latin-1")
        except UnicodeEncodeError:
            continue
        for encoding, vote in (("utf-8", "utf-8"), ("gb18030", "gbk")):
            try:
                if _CJK.search(raw.decode(encoding)):
                    votes[vote] += 1
                    break
            except UnicodeDecodeError:
                continue
    if not any(votes.values()):
        return None
    return max(votes, key=lambda k: votes[k])


# ---------------------------------------------------------------------------------------------
# CRS and fields


def _choose_crs(requested: CrsSpec | None, declared: CrsSpec | None, path: Path) -> tuple[CrsSpec, list[Finding]]:
    if requested is not None:
        return requested, []
    if declared is not None:
        return declared, []
    finding = Finding(
        "warning",
        "crs.assumed",
        LAYER_FEATURE,
        f"{path.name} does not say which coordinate system it uses: assumed WGS84 (give --crs if it is not)",
        f"{path.name} 未声明坐标系，按 WGS84 处理（如不是，请用 --crs 指定）",
        {"assumed": "WGS84"},
    )
    return parse_crs("wgs84"), [finding]


def _truncations(name: str) -> set[str]:
    """What a Shapefile makes of a long field name: cut to 10 bytes in the .dbf's encoding."""
    cuts = set()
    for encoding in ("gbk", "utf-8"):
        raw = name.encode(encoding)
        if len(raw) > _DBF_NAME_LENGTH:
            cuts.add(raw[:_DBF_NAME_LENGTH].decode(encoding, errors="ignore"))
    return cuts


def _candidates(column: str) -> list[str]:
    names = list(FIELD_CANDIDATES[column])
    others = {
        cut
        for key, values in FIELD_CANDIDATES.items()
        if key != column
        for name in values
        for cut in {name, *_truncations(name)}
    }
    for name in FIELD_CANDIDATES[column]:
        names.extend(sorted(cut for cut in _truncations(name) if cut and cut not in others and cut not in names))
    return names


def _map_fields(columns: list[str], options: dict[str, str | None], path: Path) -> dict[str, str]:
    by_key = {column.strip().casefold(): column for column in columns}
    mapping: dict[str, str] = {}
    for standard, option in options.items():
        if option is None:
            continue
        found = by_key.get(option.strip().casefold())
        if found is None:
            raise ReadError(
                f"{path.name} has no field '{option}' for the {standard.replace('_', ' ')} "
                f"(fields: {', '.join(columns) or 'none'})",
                f"{path.name} 中没有字段 '{option}'（现有字段：{'、'.join(columns) or '无'}）",
                path=path,
                code="read.field_not_found",
            )
        mapping[standard] = found
    used = set(mapping.values())
    for standard in FIELD_CANDIDATES:
        if standard in mapping:
            continue
        for candidate in _candidates(standard):
            found = by_key.get(candidate.casefold())
            if found is not None and found not in used:
                mapping[standard] = found
                used.add(found)
                break
    if "code" not in mapping:
        raise ReadError(
            f"{path.name} has no grid code field: give one with --code-field (fields: {', '.join(columns) or 'none'})",
            f"{path.name} 中找不到网格编码字段，请用 --code-field 指定（现有字段：{'、'.join(columns) or '无'}）",
            path=path,
            code="read.no_code_field",
        )
    return mapping


def _standard_values(values: pd.Series) -> list[str | None]:
    """Attribute values as trimmed text; codes stored as numbers lose their ``.0``; blanks are None."""
    out: list[str | None] = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            out.append(None)
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        out.append(text or None)
    return out


def _source_index(frame: gpd.GeoDataFrame) -> list[int]:
    """The feature id in the file (GeoPackage fid, Shapefile record number); its position otherwise."""
    index = frame.index
    if pd.api.types.is_integer_dtype(index.dtype) and index.is_unique:
        return [int(i) for i in index]
    return list(range(len(frame)))
