"""Check a grid layer before anything is written: one ``Finding`` per problem, naming the feature.

``validate_grid_layer`` takes what ``geo.reader.read_grid_layer`` returns (or a GeoDataFrame with the
same columns, in WGS84) and runs these checks, all vectorised with shapely 2 arrays:

========================  ========  ====================================================================
check                     severity  what
========================  ========  ====================================================================
``coords.nan``            error     a vertex is NaN
``coords.out_of_range``   error     a vertex is not a longitude/latitude (projected metres, swapped axes)
``geometry.empty``        error     no geometry, an empty one, under 1 m², or nothing left after repair
``geometry.not_polygon``  error     a point or line where a polygon belongs
``geometry.invalid``      error     self-intersection and the like (GEOS's reason and location)
``geometry.fixed``        warning   with ``fix=True``: make_valid applied; area and type before/after
``code.missing``          error     no grid code
``code.duplicate``        error     the same code on several features (their source indexes)
``grid.overlap``          error     two grids share more than ``overlap_tolerance_m2`` (pairs, m²)
``community.gap``         warning   a hole in the union of a community's grids, or (with ``parents``)
                                    part of the community no grid covers, above ``gap_tolerance_m2``
``grid.outside_parent``   error     with ``parents``: under 90 % of a grid lies in its community
``parent.missing``        error     no community code, or (with ``known_parent_codes``) a code that
                                    neither exists nor can be created (no community name in the file)
``parent.name_conflict``  warning   one community code with several names
``datum.suspect_gcj02``   warning   with ``reference_boundary``: the layer fits the city boundary far
                                    better after a GCJ-02 → WGS84 shift: GCJ-02 declared as WGS84
========================  ========  ====================================================================

Topology (overlaps, unions, containment) is computed on the coordinates as stored, where edges are
straight; only the results are densified and projected to an equal-area CRS (``metric_crs_for``) for
their area in m². Projecting first would bend shared edges differently in neighbours with different
vertices and invent overlaps.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from geo.crs import CrsSpec, geometries_to_wgs84, metric_crs_for, project_wgs84, transform_geometries
from geo.gcj02 import gcj02_to_wgs84, in_china

if TYPE_CHECKING:
    from rich.progress import Progress

    from geo.reader import GridLayer

Severity = Literal["error", "warning"]
GeometryArray = npt.NDArray[np.object_]
BoolArray = npt.NDArray[np.bool_]

STANDARD_COLUMNS = ("code", "name", "parent_code", "parent_name", "street_code", "street_name", "level")
LAYER_FEATURE = "(layer)"
OUTSIDE_PARENT_MIN_SHARE = 0.9
# The datum check warns when the GCJ-02 → WGS84 shift at least halves the area outside the boundary,
# and that area is not noise: at least this share of the layer's area.
DATUM_MIN_OUTSIDE_SHARE = 0.002
DATUM_MIN_IMPROVEMENT = 2.0
# A grid smaller than this is a digitising accident, not a grid.
MIN_GRID_AREA_M2 = 1.0
# Longest edge (degrees, about 10 m) when measuring areas: see ``_areas_m2``.
DENSIFY_DEGREES = 1e-4
# Precision grid (degrees, about 0.1 mm) for overlays GEOS cannot do exactly.
OVERLAY_GRID_DEGREES = 1e-9
# Lists in messages are cut after this many items (details keep everything).
_LIST_IN_MESSAGE = 5

_POLYGON_TYPES = (3, 6)  # shapely type ids: Polygon, MultiPolygon
_TYPE_NAMES = {
    -1: "missing",
    0: "Point",
    1: "LineString",
    2: "LinearRing",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}
_REASONS_ZH = {
    "self-intersection": "自相交",
    "ring self-intersection": "环自相交",
    "too few points": "点数过少",
    "hole lies outside shell": "内环位于外环之外",
    "holes are nested": "内环相互嵌套",
    "interior is disconnected": "内部不连通",
    "nested shells": "外环相互嵌套",
    "duplicate rings": "环重复",
    "invalid coordinate": "坐标无效",
    "ring is not closed": "环未闭合",
}


@dataclass(frozen=True)
class Finding:
    """One problem in a layer. ``feature`` is the grid code, ``#<source_index>``, a community code,
    or ``(layer)``; ``check`` is a stable code (``grid.overlap``); ``detail`` is JSON-safe."""

    severity: Severity
    check: str
    feature: str
    message: str
    message_zh: str
    detail: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "check": self.check,
            "feature": self.feature,
            "message": self.message,
            "message_zh": self.message_zh,
            "detail": dict(self.detail),
        }


def findings_to_json(findings: Sequence[Finding]) -> dict[str, Any]:
    """Counts (total and per check) and every finding, ready for ``json.dumps``."""
    by_check: dict[str, int] = {}
    for finding in findings:
        by_check[finding.check] = by_check.get(finding.check, 0) + 1
    errors = sum(1 for finding in findings if finding.is_error)
    return {
        "ok": errors == 0,
        "errors": errors,
        "warnings": len(findings) - errors,
        "by_check": dict(sorted(by_check.items())),
        "findings": [finding.to_json() for finding in findings],
    }


@dataclass
class ValidationResult:
    """``frame`` is the layer in WGS84, repaired where ``fix=True`` could; ``findings`` lists errors first."""

    frame: gpd.GeoDataFrame
    findings: list[Finding]

    @property
    def has_errors(self) -> bool:
        return any(finding.is_error for finding in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.is_error]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if not finding.is_error]

    def to_json(self) -> dict[str, Any]:
        return {"features": len(self.frame), **findings_to_json(self.findings)}


class StepProgress:
    """One rich progress task for a multi-step job; does nothing without a ``Progress``."""

    def __init__(self, progress: Progress | None, title: str, steps: int) -> None:
        self._progress = progress
        self._title = title
        self._task = progress.add_task(title, total=steps) if progress is not None else None
        self._started = False

    def step(self, description: str) -> None:
        if self._progress is None or self._task is None:
            return
        self._progress.update(
            self._task, description=f"{self._title}: {description}", advance=1 if self._started else 0
        )
        self._started = True

    def done(self) -> None:
        if self._progress is not None and self._task is not None:
            total = self._progress.tasks[self._task].total or 0
            self._progress.update(self._task, description=self._title, completed=total)


# ---------------------------------------------------------------------------------------------
# Formatting


def _m2(value: float) -> str:
    return f"{value:,.1f} m²"


def _km2_or_m2(value: float) -> str:
    return f"{value / 1e6:,.2f} km²" if value >= 1e5 else _m2(value)


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_LIST_IN_MESSAGE])
    return shown + (f" and {len(items) - _LIST_IN_MESSAGE} more" if len(items) > _LIST_IN_MESSAGE else "")


def _listing_zh(items: Sequence[str]) -> str:
    shown = "、".join(items[:_LIST_IN_MESSAGE])
    return shown + (f" 等 {len(items)} 个" if len(items) > _LIST_IN_MESSAGE else "")


def _point(geom: BaseGeometry) -> list[float]:
    """A point on ``geom`` (WGS84), rounded for people: where to look on a map."""
    where = shapely.point_on_surface(geom)
    return [round(float(where.x), 6), round(float(where.y), 6)]


def _where(point: Sequence[float]) -> str:
    return f"({point[0]:.6f}, {point[1]:.6f})"


# ---------------------------------------------------------------------------------------------
# The layer as arrays


@dataclass
class _Layer:
    frame: gpd.GeoDataFrame
    geoms: GeometryArray  # WGS84, as read (or fixed)
    labels: list[str]  # what a finding calls each feature
    source_index: list[int]
    findings: list[Finding]
    source_crs: CrsSpec | None


def _text_column(frame: pd.DataFrame, name: str) -> list[str | None]:
    if name not in frame.columns:
        return [None] * len(frame)
    values: list[str | None] = []
    for value in frame[name].tolist():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            values.append(None)
        else:
            text = str(value).strip()
            values.append(text or None)
    return values


def _prepare(layer: GridLayer | gpd.GeoDataFrame) -> _Layer:
    source_crs: CrsSpec | None
    if isinstance(layer, gpd.GeoDataFrame):
        frame, source_crs = layer.copy(), None
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.set_geometry(
                geometries_to_wgs84(frame.geometry, CrsSpec.from_pyproj(frame.crs)).values, crs="EPSG:4326"
            )
    else:
        frame, source_crs = layer.frame.copy(), layer.source_crs
    for column in STANDARD_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    if "source_index" not in frame.columns:
        frame["source_index"] = range(len(frame))
    source_index = [int(value) for value in frame["source_index"].tolist()]
    codes = _text_column(frame, "code")
    counts = pd.Series(codes, dtype=object).value_counts()
    repeated = set(counts[counts > 1].index)
    # A repeated code alone would not say which feature is meant: add its index.
    labels = [
        f"#{index}" if code is None else f"{code} (#{index})" if code in repeated else code
        for code, index in zip(codes, source_index, strict=True)
    ]
    geoms = np.asarray(frame.geometry.values, dtype=object)
    return _Layer(frame, geoms, labels, source_index, [], source_crs)


# ---------------------------------------------------------------------------------------------
# Checks on single features


def _per_geometry(flags: BoolArray, index: npt.NDArray[np.intp], n: int) -> tuple[BoolArray, dict[int, int]]:
    """Which geometries have a flagged vertex, and the first flagged vertex of each."""
    hit = np.zeros(n, dtype=bool)
    first: dict[int, int] = {}
    if flags.any():
        rows, positions = np.unique(index[flags], return_index=True)
        hit[rows] = True
        flagged = np.flatnonzero(flags)
        first = {int(row): int(flagged[pos]) for row, pos in zip(rows, positions, strict=True)}
    return hit, first


def _check_coordinates(layer: _Layer) -> BoolArray:
    """NaN and out-of-range vertices; returns which features have them (unusable for geometry checks)."""
    n = len(layer.geoms)
    coords, index = shapely.get_coordinates(layer.geoms, return_index=True)
    x, y = coords[:, 0], coords[:, 1]
    nan_hit, _ = _per_geometry(np.isnan(x) | np.isnan(y), index, n)
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(x) & ~np.isnan(y) & ((np.abs(x) > 180) | (np.abs(y) > 90))
    out_hit, first_out = _per_geometry(out, index, n)
    for row in np.flatnonzero(nan_hit).tolist():
        label = layer.labels[row]
        layer.findings.append(
            Finding(
                "error",
                "coords.nan",
                label,
                f"Grid {label} has coordinates that are not numbers (NaN): its shape cannot be used",
                f"网格 {label} 含有非数值（NaN）坐标，无法使用其边界",
                {"source_index": layer.source_index[row]},
            )
        )
    for row in np.flatnonzero(out_hit & ~nan_hit).tolist():
        label = layer.labels[row]
        px, py = float(x[first_out[row]]), float(y[first_out[row]])
        hint, hint_zh = _range_hint(px, py)
        layer.findings.append(
            Finding(
                "error",
                "coords.out_of_range",
                label,
                f"Grid {label} has a point outside the longitude/latitude range: ({px:.6g}, {py:.6g}){hint}",
                f"网格 {label} 有坐标超出经纬度范围：({px:.6g}, {py:.6g}){hint_zh}",
                {"source_index": layer.source_index[row], "point": [_finite(px), _finite(py)]},
            )
        )
    return nan_hit | out_hit


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _range_hint(x: float, y: float) -> tuple[str, str]:
    if not (np.isfinite(x) and np.isfinite(y)):
        return (
            "; it could not be converted to WGS84: is the coordinate system right?",
            "；无法转换为 WGS84，请检查坐标系是否正确",
        )
    if abs(x) > 1000 or abs(y) > 1000:
        return (
            "; these look like projected metres: give the file's coordinate system, e.g. --crs EPSG:4549",
            "；看起来是投影坐标（米），请指定文件的坐标系，例如 --crs EPSG:4549",
        )
    if abs(x) <= 90 and abs(y) <= 180:
        return "; latitude and longitude look swapped", "；经度和纬度似乎颠倒了"
    return "", ""


def _check_geometry_types(layer: _Layer, usable: BoolArray) -> BoolArray:
    """Missing, empty and non-polygon geometries; returns the features still usable."""
    type_ids = shapely.get_type_id(layer.geoms)
    empty = shapely.is_missing(layer.geoms) | shapely.is_empty(layer.geoms)
    for row in np.flatnonzero(empty).tolist():
        label = layer.labels[row]
        layer.findings.append(
            Finding(
                "error",
                "geometry.empty",
                label,
                f"Grid {label} has no geometry (empty or unreadable)",
                f"网格 {label} 没有几何图形（为空或无法读取）",
                {"source_index": layer.source_index[row]},
            )
        )
    # A GeometryCollection may hold polygons: make_valid can keep them (fix=True) or the validity check reports.
    wrong = ~empty & ~np.isin(type_ids, [*_POLYGON_TYPES, 7])
    wrong |= ~empty & (type_ids == 7) & ~_has_area(layer.geoms)
    for row in np.flatnonzero(wrong).tolist():
        label = layer.labels[row]
        kind = _TYPE_NAMES.get(int(type_ids[row]), "unknown")
        layer.findings.append(
            Finding(
                "error",
                "geometry.not_polygon",
                label,
                f"Grid {label} is a {kind}, not a polygon",
                f"网格 {label} 的几何类型是 {kind}，不是面",
                {"source_index": layer.source_index[row], "type": kind},
            )
        )
    return np.asarray(usable & ~empty & ~wrong, dtype=bool)


def _has_area(geoms: GeometryArray) -> BoolArray:
    with np.errstate(invalid="ignore"):
        return np.asarray(shapely.area(geoms) > 0, dtype=bool)


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The areal part of ``geom`` as a Polygon or MultiPolygon; None if it has none."""
    parts = [p for p in shapely.get_parts(shapely.get_parts(geom)) if shapely.get_type_id(p) == 3 and p.area > 0]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else shapely.multipolygons(parts)


def _reason(geom: BaseGeometry) -> tuple[str, str, list[float] | None]:
    """GEOS's reason, in English and Chinese, and where (``Self-intersection[119.9 31.7]``)."""
    if geom.geom_type == "GeometryCollection":
        return "a GeometryCollection, not a polygon", "几何集合，不是面", None
    raw = str(shapely.is_valid_reason(geom))
    match = re.match(r"^(.*?)\[([-\d.eE+]+) ([-\d.eE+]+)\]$", raw)
    text, where = (
        (match.group(1), [round(float(match.group(2)), 6), round(float(match.group(3)), 6)]) if match else (raw, None)
    )
    text_zh = _REASONS_ZH.get(text.strip().lower(), text)
    return text, text_zh, where


def _check_validity(
    layer: _Layer, usable: BoolArray, *, fix: bool, metric: pyproj.CRS
) -> tuple[GeometryArray, BoolArray]:
    """Invalid polygons: reported, or repaired with make_valid (``fix``).

    Returns the geometries to use for topology (repaired in both modes, so one bad grid does not
    break the overlap check), and the features still usable.
    """
    work = layer.geoms.copy()
    valid = np.ones(len(work), dtype=bool)
    rows = np.flatnonzero(usable)
    valid[rows] = shapely.is_valid(work[rows]) & (shapely.get_type_id(work[rows]) != 7)
    invalid_rows = np.flatnonzero(usable & ~valid)
    if not len(invalid_rows):
        return work, usable
    repaired = [_polygonal(g) for g in shapely.make_valid(work[invalid_rows])]
    usable = usable.copy()
    for row, geom in zip(invalid_rows, repaired, strict=True):
        label = layer.labels[row]
        original = layer.geoms[row]
        reason, reason_zh, where = _reason(original)
        detail: dict[str, Any] = {"source_index": layer.source_index[row], "reason": reason, "at": where}
        at = f" at {_where(where)}" if where else ""
        at_zh = f"，位置 {_where(where)}" if where else ""
        if geom is None:
            usable[row] = False
        else:
            work[row] = geom
        if not fix:
            remedy = "it has no area to keep: redraw it" if geom is None else "--fix repairs it with make_valid"
            remedy_zh = "没有可保留的面积，请重新绘制" if geom is None else "可用 --fix 自动修复"
            layer.findings.append(
                Finding(
                    "error",
                    "geometry.invalid",
                    label,
                    f"Grid {label} is not a valid polygon: {reason}{at} ({remedy})",
                    f"网格 {label} 的边界无效：{reason_zh}{at_zh}（{remedy_zh}）",
                    detail,
                )
            )
            continue
        if geom is None:
            layer.findings.append(
                Finding(
                    "error",
                    "geometry.empty",
                    label,
                    f"Grid {label} is not a valid polygon ({reason}{at}) and has no area left once repaired",
                    f"网格 {label} 的边界无效（{reason_zh}{at_zh}），修复后没有面积",
                    detail,
                )
            )
            continue
        layer.geoms[row] = geom
        layer.findings.append(_fixed_finding(label, original, geom, reason, reason_zh, detail, metric))
    return work, usable


def _check_area(layer: _Layer, work: GeometryArray, usable: BoolArray, metric: pyproj.CRS) -> BoolArray:
    """Valid polygons that have (almost) no area: slivers and collapsed rings."""
    rows = np.flatnonzero(usable)
    areas = _areas_m2(work[rows], metric, densify=False)
    tiny = areas < MIN_GRID_AREA_M2
    if not tiny.any():
        return usable
    usable = usable.copy()
    for row, area in zip(rows[tiny].tolist(), areas[tiny].tolist(), strict=True):
        usable[row] = False
        label = layer.labels[row]
        layer.findings.append(
            Finding(
                "error",
                "geometry.empty",
                label,
                f"Grid {label} has almost no area ({_m2(area)}): it is a sliver or a collapsed shape",
                f"网格 {label} 几乎没有面积（{_m2(area)}），是碎片或退化的图形",
                {"source_index": layer.source_index[row], "area_m2": round(area, 3)},
            )
        )
    return usable


def _fixed_finding(
    label: str,
    original: BaseGeometry,
    fixed: BaseGeometry,
    reason: str,
    reason_zh: str,
    detail: dict[str, Any],
    metric: pyproj.CRS,
) -> Finding:
    before, after = (float(a) for a in _areas_m2([original, fixed], metric))
    type_before, type_after = original.geom_type, fixed.geom_type
    change = f"{type_before} → {type_after}" if type_before != type_after else type_after
    detail = {
        **detail,
        "area_before_m2": round(before, 2),
        "area_after_m2": round(after, 2),
        "type_before": type_before,
        "type_after": type_after,
        "parts_after": len(shapely.get_parts(fixed)),
    }
    return Finding(
        "warning",
        "geometry.fixed",
        label,
        f"Grid {label} was repaired ({reason}): {change}, area {_m2(before)} → {_m2(after)}",
        f"网格 {label} 已修复（{reason_zh}）：{change}，面积 {_m2(before)} → {_m2(after)}",
        detail,
    )


def _check_codes(layer: _Layer) -> None:
    codes = pd.Series(_text_column(layer.frame, "code"), dtype=object)
    for row in np.flatnonzero(codes.isna().to_numpy()).tolist():
        index = layer.source_index[row]
        layer.findings.append(
            Finding(
                "error",
                "code.missing",
                layer.labels[row],
                f"Feature #{index} has no grid code",
                f"第 #{index} 个要素没有网格编码",
                {"source_index": index},
            )
        )
    duplicated = codes[codes.notna() & codes.duplicated(keep=False)]
    for code, rows in duplicated.groupby(duplicated, sort=True).groups.items():
        indexes = [layer.source_index[int(row)] for row in rows]
        shown = [f"#{i}" for i in indexes]
        layer.findings.append(
            Finding(
                "error",
                "code.duplicate",
                str(code),
                f"Grid code {code} is used by {len(indexes)} features: {_listing(shown)}",
                f"网格编码 {code} 被 {len(indexes)} 个要素重复使用：{_listing_zh(shown)}",
                {"source_indexes": indexes},
            )
        )


# ---------------------------------------------------------------------------------------------
# Checks between features


def _overlay(fn: Any, a: Any, b: Any) -> Any:
    """``fn(a, b)`` (intersection, difference), vectorised; pairs GEOS cannot overlay exactly
    (robustness failures on nearly-coincident edges) are retried on a 0.1 mm precision grid."""
    try:
        return fn(a, b)
    except shapely.errors.GEOSException:
        if not isinstance(a, np.ndarray):
            return fn(a, b, grid_size=OVERLAY_GRID_DEGREES)
        b_items = b if isinstance(b, np.ndarray) else [b] * len(a)
        return np.asarray([_overlay(fn, x, y) for x, y in zip(a, b_items, strict=True)], dtype=object)


def _union(geoms: GeometryArray) -> BaseGeometry:
    try:
        return shapely.union_all(geoms)
    except shapely.errors.GEOSException:
        return shapely.union_all(geoms, grid_size=OVERLAY_GRID_DEGREES)


def _areas_m2(
    geoms: Sequence[Any] | GeometryArray, metric: pyproj.CRS, *, densify: bool = True
) -> npt.NDArray[np.float64]:
    """Areas in m² in the equal-area ``metric`` CRS.

    Densified first: an edge straight in degrees is slightly curved in the projection, so a sliver
    bounded by one long edge on one side and many short ones on the other would otherwise gain
    tens of m² it does not have.
    """
    if not len(geoms):
        return np.zeros(0)
    array = np.asarray(list(geoms), dtype=object)
    if densify:
        array = shapely.segmentize(array, DENSIFY_DEGREES)
    return np.asarray(shapely.area(project_wgs84(array, metric)), dtype=float)


def _check_overlaps(
    layer: _Layer, work: GeometryArray, usable: BoolArray, metric: pyproj.CRS, tolerance: float
) -> None:
    rows = np.flatnonzero(usable)
    geoms = work[rows]
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    # Neighbours touch along edges; only pairs whose interiors meet can overlap.
    inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[inner], right[inner]
    overlaps = _overlay(shapely.intersection, geoms[left], geoms[right])
    areas = _areas_m2(overlaps, metric)
    for a, b, overlap, area in zip(left, right, overlaps, areas, strict=True):
        if area <= tolerance:
            continue
        row_a, row_b = int(rows[a]), int(rows[b])
        label_a, label_b = layer.labels[row_a], layer.labels[row_b]
        point = _point(overlap)
        layer.findings.append(
            Finding(
                "error",
                "grid.overlap",
                label_a,
                f"Grids {label_a} and {label_b} overlap by {_m2(area)} near {_where(point)}",
                f"网格 {label_a} 与网格 {label_b} 重叠 {_m2(area)}，位于 {_where(point)} 附近",
                {
                    "other": label_b,
                    "area_m2": round(float(area), 2),
                    "at": point,
                    "source_indexes": [layer.source_index[row_a], layer.source_index[row_b]],
                },
            )
        )


def _community_rows(layer: _Layer, usable: BoolArray) -> dict[str, npt.NDArray[np.intp]]:
    """Usable grids by community code."""
    codes = _text_column(layer.frame, "parent_code")
    groups: dict[str, list[int]] = {}
    for row in np.flatnonzero(usable).tolist():
        code = codes[row]
        if code is not None:
            groups.setdefault(code, []).append(row)
    return {code: np.asarray(rows, dtype=np.intp) for code, rows in sorted(groups.items())}


def _check_gaps(
    layer: _Layer,
    work: GeometryArray,
    communities: Mapping[str, npt.NDArray[np.intp]],
    parents: Mapping[str, BaseGeometry],
    metric: pyproj.CRS,
    tolerance: float,
) -> None:
    for community, rows in communities.items():
        union = _union(work[rows])
        parent = parents.get(community)
        if parent is not None and not parent.is_empty:
            # Holes in the union are part of what the grids leave uncovered of the community.
            gaps = [p for p in shapely.get_parts(_overlay(shapely.difference, parent, union)) if p.area > 0]
        else:
            gaps = [shapely.polygons(ring) for part in shapely.get_parts(union) for ring in part.interiors]
        for gap, area in zip(gaps, _areas_m2(gaps, metric), strict=True):
            if area <= tolerance:
                continue
            point = _point(gap)
            layer.findings.append(
                Finding(
                    "warning",
                    "community.gap",
                    community,
                    f"Community {community} has a gap of {_km2_or_m2(area)} that none of its grids covers, "
                    f"near {_where(point)}",
                    f"社区 {community} 有 {_km2_or_m2(area)} 的区域不属于任何网格，位于 {_where(point)} 附近",
                    {"area_m2": round(float(area), 2), "at": point, "grids": len(rows)},
                )
            )


def _check_outside_parent(
    layer: _Layer,
    work: GeometryArray,
    communities: Mapping[str, npt.NDArray[np.intp]],
    parents: Mapping[str, BaseGeometry],
    metric: pyproj.CRS,
) -> None:
    rows_list = [rows for code, rows in communities.items() if code in parents]
    if not rows_list:
        return
    rows = np.concatenate(rows_list)
    parent_codes = _text_column(layer.frame, "parent_code")
    prepared = {code: geom for code, geom in parents.items()}
    for geom in prepared.values():
        shapely.prepare(geom)
    aligned = np.asarray([prepared[str(parent_codes[row])] for row in rows], dtype=object)
    # The prepared geometry must be the predicate's first argument to be used.
    inside = shapely.contains(aligned, work[rows])
    check = rows[~inside]
    if not len(check):
        return
    grids, mothers = work[check], aligned[~inside]
    shares = _areas_m2(_overlay(shapely.intersection, grids, mothers), metric) / np.maximum(
        _areas_m2(grids, metric), 1e-9
    )
    for row, share in zip(check, shares, strict=True):
        if share >= OUTSIDE_PARENT_MIN_SHARE:
            continue
        label, parent = layer.labels[row], parent_codes[row]
        percent = 100.0 * float(share)
        where = "entirely outside" if share <= 0 else f"only {percent:.1f}% inside"
        where_zh = "完全不在" if share <= 0 else f"只有 {percent:.1f}% 位于"
        layer.findings.append(
            Finding(
                "error",
                "grid.outside_parent",
                label,
                f"Grid {label} lies {where} its community {parent}",
                f"网格 {label} {where_zh}所属社区 {parent} 内",
                {
                    "source_index": layer.source_index[row],
                    "parent_code": parent,
                    "share_inside": round(float(share), 4),
                },
            )
        )


def _check_parents(
    layer: _Layer,
    known: Collection[str] | None,
    *,
    require_parent: bool,
) -> None:
    parent_codes = _text_column(layer.frame, "parent_code")
    parent_names = _text_column(layer.frame, "parent_name")
    if require_parent:
        for row, code in enumerate(parent_codes):
            if code is None:
                label = layer.labels[row]
                layer.findings.append(
                    Finding(
                        "error",
                        "parent.missing",
                        label,
                        f"Grid {label} has no community code (map one with --parent-field)",
                        f"网格 {label} 没有所属社区编码（可用 --parent-field 指定字段）",
                        {"source_index": layer.source_index[row]},
                    )
                )
    names: dict[str, set[str]] = {}
    users: dict[str, list[str]] = {}
    for row, (code, name) in enumerate(zip(parent_codes, parent_names, strict=True)):
        if code is None:
            continue
        users.setdefault(code, []).append(layer.labels[row])
        if name is not None:
            names.setdefault(code, set()).add(name)
    for code, seen in sorted(names.items()):
        if len(seen) > 1:
            listed = sorted(seen)
            layer.findings.append(
                Finding(
                    "warning",
                    "parent.name_conflict",
                    code,
                    f"Community {code} has {len(listed)} different names in the file: {_listing(listed)}",
                    f"社区编码 {code} 在文件中对应 {len(listed)} 个不同名称：{_listing_zh(listed)}",
                    {"names": listed},
                )
            )
    if known is None:
        return
    known_set = {str(code) for code in known}
    for code, grids in sorted(users.items()):
        if code in known_set or code in names:
            continue
        layer.findings.append(
            Finding(
                "error",
                "parent.missing",
                code,
                f"Community {code} (of {len(grids)} grid{'s' if len(grids) != 1 else ''}: {_listing(grids)}) "
                "does not exist and cannot be "
                "created: the file gives no community name for it",
                f"社区 {code}（涉及 {len(grids)} 个网格：{_listing_zh(grids)}）不存在，"
                "且文件中没有该社区的名称，无法自动创建",
                {"grids": grids},
            )
        )


def _check_datum(
    layer: _Layer, work: GeometryArray, usable: BoolArray, boundary: BaseGeometry, metric: pyproj.CRS
) -> None:
    """Does a GCJ-02 → WGS84 shift make the layer fit the (true WGS84) city boundary markedly better?"""
    geoms = work[usable]
    if not len(geoms) or boundary.is_empty:
        return
    centre = shapely.centroid(shapely.box(*shapely.total_bounds(geoms)))
    if not bool(in_china(centre.x, centre.y)):
        return
    if not boundary.is_valid:
        boundary = shapely.make_valid(boundary)
    shapely.prepare(boundary)
    shifted = transform_geometries(geoms, gcj02_to_wgs84)
    total = float(_areas_m2(geoms, metric, densify=False).sum())
    outside_given = _area_outside(geoms, boundary, metric)
    outside_shifted = _area_outside(shifted, boundary, metric)
    if outside_given < DATUM_MIN_OUTSIDE_SHARE * total or outside_given < DATUM_MIN_IMPROVEMENT * outside_shifted:
        return
    wgs_lon, wgs_lat = gcj02_to_wgs84(centre.x, centre.y)
    offset_m = float(pyproj.Geod(ellps="WGS84").inv(centre.x, centre.y, wgs_lon, wgs_lat)[2])
    declared = layer.source_crs.name if layer.source_crs is not None else "WGS84"
    layer.findings.append(
        Finding(
            "warning",
            "datum.suspect_gcj02",
            LAYER_FEATURE,
            f"The layer looks like GCJ-02 (Amap/Tencent) coordinates declared as {declared}: "
            f"{_km2_or_m2(outside_given)} of it lies outside the city boundary as given, but only "
            f"{_km2_or_m2(outside_shifted)} after the GCJ-02 → WGS84 shift of about {offset_m:.0f} m. "
            "If the file comes from a Chinese web map, import it with --crs gcj02",
            f"该图层看起来是 GCJ-02（高德/腾讯）坐标，却被声明为 {declared}：按原坐标有 {_km2_or_m2(outside_given)} "
            f"落在城市边界之外，按 GCJ-02 → WGS84 偏移约 {offset_m:.0f} 米纠正后只有 {_km2_or_m2(outside_shifted)}。"
            "如果文件来自国内网络地图，请使用 --crs gcj02 导入",
            {
                "outside_m2_as_given": round(outside_given, 1),
                "outside_m2_after_shift": round(outside_shifted, 1),
                "layer_area_m2": round(total, 1),
                "offset_m": round(offset_m, 1),
                "declared_crs": declared,
            },
        )
    )


def _area_outside(geoms: GeometryArray, boundary: BaseGeometry, metric: pyproj.CRS) -> float:
    inside = shapely.contains(boundary, geoms)
    edge = geoms[~inside]
    if not len(edge):
        return 0.0
    # Clip the (large) boundary to the edge grids' extent first: each difference then stays small.
    local = shapely.clip_by_rect(boundary, *shapely.total_bounds(edge))
    return float(_areas_m2(_overlay(shapely.difference, edge, local), metric).sum())


# ---------------------------------------------------------------------------------------------
# The whole validation


def validate_grid_layer(
    layer: GridLayer | gpd.GeoDataFrame,
    *,
    fix: bool = False,
    parents: Mapping[str, BaseGeometry] | None = None,
    known_parent_codes: Collection[str] | None = None,
    overlap_tolerance_m2: float = 1.0,
    gap_tolerance_m2: float = 1.0,
    reference_boundary: BaseGeometry | None = None,
    require_parent: bool = True,
    progress: Progress | None = None,
) -> ValidationResult:
    """Run every check on ``layer``; see the module docstring for what each one does.

    ``parents`` maps community code → community polygon (WGS84); ``known_parent_codes`` are the
    communities that already exist (None: existence is not checked). A community the file names
    with both code and name counts as creatable. ``require_parent=False`` for layers that need no
    parent (a district layer). The findings are this validation's only: the reader's own
    (``GridLayer.findings``, e.g. ``crs.assumed``) are for the caller to show alongside.
    """
    steps = StepProgress(progress, "Validating", 7)
    state = _prepare(layer)
    given_parents = dict(parents or {})
    # A known community without a drawn boundary still exists; it just cannot be checked spatially.
    parents = {str(code): geom for code, geom in given_parents.items() if geom is not None and not geom.is_empty}
    steps.step("coordinates")
    usable = ~_check_coordinates(state)
    usable = _check_geometry_types(state, usable)
    metric = metric_crs_for(state.geoms[usable])
    steps.step("geometry validity")
    work, usable = _check_validity(state, usable, fix=fix, metric=metric)
    usable = _check_area(state, work, usable, metric)
    steps.step("codes")
    _check_codes(state)
    known = None if known_parent_codes is None and not given_parents else {*(known_parent_codes or ()), *given_parents}
    _check_parents(state, known, require_parent=require_parent)
    steps.step("overlaps")
    _check_overlaps(state, work, usable, metric, overlap_tolerance_m2)
    communities = _community_rows(state, usable)
    steps.step("gaps in communities")
    _check_gaps(state, work, communities, parents, metric, gap_tolerance_m2)
    steps.step("grids outside their community")
    if parents:
        _check_outside_parent(state, work, communities, parents, metric)
    steps.step("datum")
    if reference_boundary is not None and not (state.source_crs is not None and state.source_crs.is_gcj02):
        _check_datum(state, work, usable, reference_boundary, metric)
    steps.done()
    frame = state.frame
    if fix:
        frame = frame.set_geometry(gpd.GeoSeries(state.geoms, index=frame.index, crs="EPSG:4326"))
    findings = sorted(state.findings, key=lambda f: not f.is_error)
    return ValidationResult(frame=frame, findings=findings)
