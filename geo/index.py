"""GridIndex: which grid (网格) holds a point, for one point or a million at once.

Built in memory from the current grid layer (WGS84 longitude/latitude, valid Polygons or MultiPolygons
with unique codes) and answered without touching a database.

Rules
-----
(a) **Covers, smallest code wins.** A point belongs to the grids that *cover* it, boundary included.
    If several do (a point on an edge or vertex shared by neighbours, or an overlap in a bad layer),
    the grid with the lexicographically smallest code wins. The answer does not depend on the order
    the grids were given in.
(b) **Near.** A point covered by no grid but within ``tolerance_m`` metres of one goes to the nearest
    grid with flag ``"near"`` and that distance (ties: smallest code again).
(c) **Unplaced.** Anything farther, and any NaN, infinite or out-of-range coordinate, gets code None
    and flag ``"unplaced"`` with distance ``inf``. ``locate_many`` never raises for bad input;
    ``locate`` raises ``ValueError`` for NaN.

Distances are metres on the local tangent plane at the point's latitude (an equirectangular
approximation on the WGS84 ellipsoid: the meridional and prime-vertical radii of curvature at that
latitude). Over the tens of metres a tolerance spans this agrees with the geodesic distance to well
under 0.1 %.

How it is fast
--------------
A uniform raster of cells (~50 m in a city layer) covers the layer's bounding box. At build time each
cell is classified once:

- *empty* cells, which no grid boundary enters, are wholly inside one set of grids or wholly outside
  all of them: the answer is stored and a point there costs one array lookup, no geometry test;
- cells crossed by exactly one boundary segment (a shared edge or an outer edge, no vertex in the
  cell) store that segment and the grid on each side: a point needs one orientation test, with
  Shewchuk's error bound; a point too close to the line to decide in floating point goes to GEOS;
- all other cells (vertices, several edges, overlaps) keep a short candidate list tested with GEOS
  (``intersects_xy`` on prepared geometries, which is "covers" for a point).

Every decision that is not certain in floating point falls through to an exact GEOS predicate, so the
result equals a brute-force ``covers`` loop, boundaries included. Uncovered points near a boundary
get exact distances to the candidates an STRtree ``dwithin`` query returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

Flag = Literal["inside", "near", "unplaced"]
INSIDE: Final = 0
NEAR: Final = 1
UNPLACED: Final = 2
FLAG_NAMES: Final[tuple[Flag, Flag, Flag]] = ("inside", "near", "unplaced")

IntArray = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
ObjectArray = npt.NDArray[np.object_]

# WGS84
_A = 6378137.0
_E2 = 6.69437999014e-3
_RAD = math.pi / 180.0

# A cell code below zero is not a grid: far from everything, or near (needs a distance), or a slot.
_FAR: Final = -1
_NEAR_ZONE: Final = -2
_FIRST_SLOT: Final = -3
_NO_GRID: Final = -1

# Shewchuk's orient2d error bound is (3 + 16 eps) eps; this is a little looser, to be safe.
_ORIENT_ERR: Final = 4.0e-16
# Margin (degrees, ~0.1 mm) for "certainly crosses / certainly misses a cell": far above rounding.
_MARGIN_DEG: Final = 1e-9
# Cells per grid when cell_m is not given, and the most cells we allocate (int32 each).
_CELLS_PER_GRID: Final = 256
_MAX_CELLS: Final = 1 << 23


@dataclass(frozen=True, slots=True)
class Location:
    """Where one point is: a grid code (or None), how it was placed, and how far it is from that grid."""

    code: str | None
    flag: Flag
    distance_m: float


@dataclass(frozen=True, slots=True, eq=False)
class LocateResult:
    """``locate_many``'s answer, one entry per point.

    ``index`` points into ``GridIndex.codes`` (the order the grids were given in), -1 if unplaced;
    ``flag`` is 0 inside, 1 near, 2 unplaced; ``distance_m`` is 0 inside and ``inf`` unplaced.
    """

    index: IntArray
    flag: npt.NDArray[np.int8]
    distance_m: FloatArray
    grid_codes: ObjectArray = field(repr=False)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def codes(self) -> ObjectArray:
        """The grid code of each point, None where unplaced (an object array)."""
        out = np.full(len(self.index), None, dtype=object)
        placed = self.index >= 0
        out[placed] = self.grid_codes[self.index[placed]]
        return out

    def location(self, i: int) -> Location:
        index = int(self.index[i])
        code = None if index < 0 else str(self.grid_codes[index])
        return Location(code, FLAG_NAMES[int(self.flag[i])], float(self.distance_m[i]))


def metres_per_degree(lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(east, north) metres per degree of longitude and latitude at ``lat`` on the WGS84 ellipsoid."""
    phi = np.radians(np.asarray(lat, dtype=np.float64))
    w = 1.0 - _E2 * np.sin(phi) ** 2
    north = _A * (1.0 - _E2) / (w * np.sqrt(w)) * _RAD
    east = _A / np.sqrt(w) * np.cos(phi) * _RAD
    return east, north


@dataclass(frozen=True, slots=True)
class _Raster:
    """The cell raster: cell (i, j) holds points with floor((lon - x0) * inv_x) == i, likewise j."""

    x0: float
    y0: float
    sx: float
    sy: float
    nx: int
    ny: int
    inv_x: float
    inv_y: float
    beyond_wgs84: bool  # the raster reaches past +-180 / +-90, so points need a range check too

    def col(self, lon: FloatArray) -> Int64Array:
        return np.floor((lon - self.x0) * self.inv_x).astype(np.int64)

    def row(self, lat: FloatArray) -> Int64Array:
        return np.floor((lat - self.y0) * self.inv_y).astype(np.int64)


@dataclass(frozen=True, slots=True)
class _Segments:
    """Directed ring segments of all grids (interior on the left), grouped by grid."""

    ax: FloatArray
    ay: FloatArray
    bx: FloatArray
    by: FloatArray
    grid: Int64Array
    start: Int64Array  # segments of grid g are start[g]:start[g + 1]


@dataclass(frozen=True, slots=True)
class _Edges:
    """Undirected segments (each shared edge once), with the smallest grid on each side."""

    ax: FloatArray
    ay: FloatArray
    bx: FloatArray
    by: FloatArray
    left: IntArray  # smallest grid with this edge and its interior on the left of a->b, or -1
    right: IntArray
    grids: IntArray  # every grid with this edge: grids[start[e]:start[e + 1]]
    start: Int64Array


@dataclass(frozen=True, slots=True)
class _Slots:
    """Cells that need work: one edge (orientation test) or a candidate list (GEOS)."""

    one_edge: BoolArray
    ax: FloatArray
    ay: FloatArray
    bx: FloatArray
    by: FloatArray
    left: IntArray
    right: IntArray
    start: Int64Array  # candidates of slot s are candidates[start[s]:start[s + 1]], ascending
    candidates: IntArray


class GridIndex:
    """Point-in-grid lookups over one version of the grid layer. Build with ``GridIndex.build``."""

    __slots__ = (
        "_cell_code",
        "_codes_in_order",
        "_geoms",
        "_grid_codes",
        "_order",
        "_order_or_none",
        "_raster",
        "_segments",
        "_slots",
        "_sorted_codes",
        "_tolerance_m",
        "_tree",
        "_version",
    )

    def __init__(
        self,
        *,
        sorted_codes: list[str],
        order: IntArray,
        geoms: ObjectArray,
        raster: _Raster,
        cell_code: IntArray,
        slots: _Slots,
        segments: _Segments,
        tree: shapely.STRtree,
        version: int,
        tolerance_m: float,
    ) -> None:
        self._sorted_codes = sorted_codes
        self._order = order
        self._order_or_none = np.append(order, np.int32(_NO_GRID)).astype(np.int32)
        self._geoms = geoms
        self._raster = raster
        self._cell_code = cell_code
        self._slots = slots
        self._segments = segments
        self._tree = tree
        self._grid_codes = np.empty(len(order), dtype=object)
        self._grid_codes[order] = sorted_codes
        self._codes_in_order: tuple[str, ...] = tuple(self._grid_codes)
        self._version = version
        self._tolerance_m = tolerance_m

    @classmethod
    def build(
        cls,
        codes: Sequence[str],
        geometries: Sequence[BaseGeometry] | ObjectArray,
        *,
        version: int = 0,
        tolerance_m: float = 50.0,
        cell_m: float | None = None,
        cells: Mapping[str, npt.NDArray[np.generic]] | None = None,
    ) -> GridIndex:
        """Index ``geometries`` under ``codes`` (unique strings, same order).

        Geometries are valid, non-empty Polygons or MultiPolygons in WGS84 longitude/latitude (run
        ``geo.validate`` with ``fix=True`` on a city's file first); anything else is a ``ValueError``.
        ``version`` is the grid layer's version, kept for the caller. ``tolerance_m`` is the reach of
        rule (b). ``cell_m`` overrides the raster's cell size in metres (default: about 256 cells per
        grid over the layer's bounding box, at most 8 million cells).

        ``cells``: the ``cells()`` of an index built before from the same codes, geometries,
        ``tolerance_m`` and ``cell_m`` (kept by the caller, e.g. in a file): classifying the raster
        is most of the build, and is skipped. Arrays that cannot be that raster are a ``ValueError``.
        """
        code_list = [str(code) for code in codes]
        geoms = np.asarray(geometries, dtype=object)
        _check_layer(code_list, geoms, tolerance_m)
        order = np.array(sorted(range(len(code_list)), key=code_list.__getitem__), dtype=np.int32)
        sorted_geoms = shapely.orient_polygons(geoms[order], exterior_cw=False)
        shapely.prepare(sorted_geoms)
        segments = _segments(sorted_geoms)
        tree = shapely.STRtree(sorted_geoms)
        if len(code_list):
            raster = _raster_for(sorted_geoms, tolerance_m, cell_m)
            if cells is not None:
                cell_code, slots = _from_cells(cells, raster, len(code_list))
            else:
                cell_code, slots = _classify_cells(tree, segments, raster, tolerance_m)
        else:  # no grids yet: one far cell, every point unplaced
            raster = _Raster(0.0, 0.0, 1.0, 1.0, 1, 1, inv_x=1.0, inv_y=1.0, beyond_wgs84=False)
            cell_code, slots = np.full(2, _FAR, dtype=np.int32), _no_slots()
        return cls(
            sorted_codes=[code_list[i] for i in order],
            order=order,
            geoms=sorted_geoms,
            raster=raster,
            cell_code=cell_code,
            slots=slots,
            segments=segments,
            tree=tree,
            version=version,
            tolerance_m=float(tolerance_m),
        )

    def cells(self) -> dict[str, npt.NDArray[np.generic]]:
        """The raster and how each cell was classified: what ``build(cells=…)`` takes back."""
        slots = {f"slot_{name}": getattr(self._slots, name) for name in _Slots.__slots__}
        return {"raster": _raster_array(self._raster), "cell_code": self._cell_code, **slots}

    @property
    def version(self) -> int:
        """The grid layer version this index was built from."""
        return self._version

    @property
    def tolerance_m(self) -> float:
        """How far outside every grid a point may be and still be placed "near" one."""
        return self._tolerance_m

    @property
    def codes(self) -> tuple[str, ...]:
        """Grid codes in the order they were given to ``build`` (what ``LocateResult.index`` points into)."""
        return self._codes_in_order

    def __len__(self) -> int:
        return len(self._sorted_codes)

    def __repr__(self) -> str:
        r = self._raster
        return (
            f"GridIndex({len(self)} grids, version={self.version}, tolerance_m={self.tolerance_m}, {r.nx}x{r.ny} cells)"
        )

    # -- one point --------------------------------------------------------------------------------

    def locate(self, lon: float, lat: float) -> Location:
        """The grid holding (lon, lat); ``ValueError`` if either is NaN."""
        if math.isnan(lon) or math.isnan(lat):
            raise ValueError("coordinates must not be NaN")
        r = self._raster
        fx = (lon - r.x0) * r.inv_x
        fy = (lat - r.y0) * r.inv_y
        if not (0.0 <= fx < r.nx and 0.0 <= fy < r.ny and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            return _UNPLACED
        code = int(self._cell_code[int(fy) * r.nx + int(fx)])
        if code >= 0:
            return Location(self._sorted_codes[code], "inside", 0.0)
        if code == _FAR:
            return _UNPLACED
        if code <= _FIRST_SLOT:
            grid = self._cover_one(_FIRST_SLOT - code, lon, lat)
            if grid >= 0:
                return Location(self._sorted_codes[grid], "inside", 0.0)
        grids, dists = self._nearest(np.array([lon]), np.array([lat]))
        if grids[0] < 0:
            return _UNPLACED
        return Location(self._sorted_codes[grids[0]], "near", float(dists[0]))

    def _cover_one(self, slot: int, lon: float, lat: float) -> int:
        s = self._slots
        if s.one_edge[slot]:
            ax, ay = float(s.ax[slot]), float(s.ay[slot])
            ex, ey = float(s.bx[slot]) - ax, float(s.by[slot]) - ay
            left, right = ex * (lat - ay), ey * (lon - ax)
            det = left - right
            if abs(det) > _ORIENT_ERR * (abs(left) + abs(right)):
                return int(s.left[slot]) if det > 0 else int(s.right[slot])
        for grid in s.candidates[s.start[slot] : s.start[slot + 1]]:
            if shapely.intersects_xy(self._geoms[grid], lon, lat):
                return int(grid)
        return _NO_GRID

    # -- many points ------------------------------------------------------------------------------

    def locate_many(self, lons: npt.ArrayLike, lats: npt.ArrayLike) -> LocateResult:
        """Vectorised ``locate``: NaN, infinite and out-of-range points come back unplaced."""
        lon = np.ascontiguousarray(lons, dtype=np.float64).ravel()
        lat = np.ascontiguousarray(lats, dtype=np.float64).ravel()
        if lon.shape != lat.shape:
            raise ValueError("lons and lats must have the same length")
        grid = self._cover_many(lon, lat)
        placed = grid >= 0
        flag = np.where(placed, INSIDE, UNPLACED).astype(np.int8)
        dist = np.where(placed, 0.0, np.inf)
        maybe_near = np.flatnonzero(grid == _NEAR_ZONE)
        if len(maybe_near):
            near_grid, near_dist = self._nearest(lon[maybe_near], lat[maybe_near])
            found = near_grid >= 0
            grid[maybe_near] = np.where(found, near_grid, _NO_GRID)
            flag[maybe_near[found]] = NEAR
            dist[maybe_near[found]] = near_dist[found]
        # _order_or_none[-1] is -1: unplaced stays -1 with one gather.
        index = self._order_or_none[grid]
        return LocateResult(index=index, flag=flag, distance_m=dist, grid_codes=self._grid_codes)

    def _cover_many(self, lon: FloatArray, lat: FloatArray) -> IntArray:
        """Per point: the smallest covering grid (sorted index), ``_FAR``, or ``_NEAR_ZONE`` (needs a distance)."""
        r = self._raster
        fx = lon - r.x0
        fx *= r.inv_x
        fy = lat - r.y0
        fy *= r.inv_y
        ok = fx >= 0  # NaN compares False, so NaN is not ok
        ok &= fx < r.nx
        ok &= fy >= 0
        ok &= fy < r.ny
        if r.beyond_wgs84:
            ok &= (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
        with np.errstate(invalid="ignore"):
            cell = fy.astype(np.int32)
            cell *= r.nx
            cell += fx.astype(np.int32)
        # The last entry of _cell_code is a far sentinel for points outside the raster.
        code = self._cell_code[np.where(ok, cell, len(self._cell_code) - 1)]
        work = np.flatnonzero(code <= _FIRST_SLOT)
        if len(work):
            code[work] = self._cover_slots(_FIRST_SLOT - code[work], lon[work], lat[work])
        return code

    def _cover_slots(self, slot: IntArray, lon: FloatArray, lat: FloatArray) -> IntArray:
        s = self._slots
        out = np.full(len(slot), _NEAR_ZONE, dtype=np.int32)
        one = s.one_edge[slot]
        ax, ay = s.ax[slot[one]], s.ay[slot[one]]
        left = (s.bx[slot[one]] - ax) * (lat[one] - ay)
        right = (s.by[slot[one]] - ay) * (lon[one] - ax)
        det = left - right
        certain = np.abs(det) > _ORIENT_ERR * (np.abs(left) + np.abs(right))
        side = np.where(det > 0, s.left[slot[one]], s.right[slot[one]])
        decided = np.zeros(len(slot), dtype=bool)
        decided[np.flatnonzero(one)[certain]] = True
        out[decided] = np.where(side[certain] >= 0, side[certain], _NEAR_ZONE)
        rest = np.flatnonzero(~decided)
        if len(rest):
            out[rest] = self._cover_geos(slot[rest], lon[rest], lat[rest])
        return out

    def _cover_geos(self, slot: IntArray, lon: FloatArray, lat: FloatArray) -> IntArray:
        """Exact GEOS covers against each slot's candidates; the smallest covering grid wins."""
        s = self._slots
        first, count = s.start[slot], s.start[slot + 1] - s.start[slot]
        point = np.repeat(np.arange(len(slot)), count)
        offset = np.arange(len(point)) - np.repeat(np.cumsum(count) - count, count)
        candidate = s.candidates[np.repeat(first, count) + offset]
        # Grouping the tests by grid keeps each prepared geometry hot in the cache: several times faster.
        by_grid = np.argsort(candidate, kind="stable")
        hit = np.empty(len(point), dtype=bool)
        hit[by_grid] = shapely.intersects_xy(self._geoms[candidate[by_grid]], lon[point[by_grid]], lat[point[by_grid]])
        out = np.full(len(slot), _NEAR_ZONE, dtype=np.int32)
        # Candidates are ascending within a slot, so a point's first hit is its smallest covering grid.
        hit_point, hit_grid = point[hit], candidate[hit]
        first_hit = _first_of_runs(hit_point)
        out[hit_point[first_hit]] = hit_grid[first_hit]
        return out

    def _nearest(self, lon: FloatArray, lat: FloatArray) -> tuple[IntArray, FloatArray]:
        """Nearest grid within the tolerance (smallest code on ties), else -1; and its distance in metres."""
        grid = np.full(len(lon), _NO_GRID, dtype=np.int32)
        dist = np.full(len(lon), np.inf)
        east, north = metres_per_degree(lat)
        reach = self.tolerance_m * 1.01 / np.minimum(east, north) + _MARGIN_DEG
        point, candidate = self._tree.query(shapely.points(lon, lat), predicate="dwithin", distance=reach)
        if len(point) == 0:
            return grid, dist
        d = _distance_to_grids(self._segments, candidate, lon[point], lat[point], east[point], north[point])
        best = np.lexsort((candidate, d, point))
        point, candidate, d = point[best], candidate[best], d[best]
        first = _first_of_runs(point)
        within = d[first] <= self.tolerance_m
        grid[point[first[within]]] = candidate[first[within]]
        dist[point[first[within]]] = d[first[within]]
        return grid, dist


_UNPLACED: Final = Location(None, "unplaced", math.inf)


def _first_of_runs(values: npt.NDArray[np.integer]) -> Int64Array:
    """Where each run of equal values starts, in an array whose equal values are adjacent."""
    return np.flatnonzero(np.r_[True, values[1:] != values[:-1]]) if len(values) else np.empty(0, np.int64)


def _sorted_unique(values: Int64Array) -> Int64Array:
    values = np.sort(values)
    return values[_first_of_runs(values)]


# -- build ----------------------------------------------------------------------------------------


def _check_layer(codes: list[str], geoms: ObjectArray, tolerance_m: float) -> None:
    if geoms.ndim != 1 or len(codes) != len(geoms):
        raise ValueError("codes and geometries must have the same length")
    if len(set(codes)) != len(codes):
        raise ValueError("grid codes must be unique")
    if not (tolerance_m >= 0 and math.isfinite(tolerance_m)):
        raise ValueError("tolerance_m must be a finite number >= 0")
    if len(codes) == 0:
        return
    polygonal = np.isin(shapely.get_type_id(geoms), [3, 6])  # Polygon, MultiPolygon
    bad = ~polygonal | shapely.is_empty(geoms) | ~shapely.is_valid(geoms)
    if bad.any():
        examples = ", ".join(codes[i] for i in np.flatnonzero(bad)[:5])
        raise ValueError(f"grids must be valid, non-empty (Multi)Polygons; not: {examples}")
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise ValueError("grid coordinates must be WGS84 longitude/latitude in degrees")


def _raster_array(r: _Raster) -> FloatArray:
    return np.array([r.x0, r.y0, r.sx, r.sy, r.nx, r.ny, r.inv_x, r.inv_y, r.beyond_wgs84], dtype=np.float64)


def _from_cells(cells: Mapping[str, npt.NDArray[np.generic]], raster: _Raster, grids: int) -> tuple[IntArray, _Slots]:
    """The kept classification, if it is one of this raster (the same bounds and cell size, which
    the layer's geometries and the settings decide) and everything lookups index by fits."""
    try:
        same_raster = np.array_equal(np.asarray(cells["raster"], dtype=np.float64), _raster_array(raster))
        cell_code = np.asarray(cells["cell_code"], dtype=np.int32)
        slots = _Slots(*(np.asarray(cells[f"slot_{name}"]) for name in _Slots.__slots__))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not the cells of a GridIndex: {exc}") from exc
    slot_count = len(slots.one_edge)
    fits = (
        same_raster
        and cell_code.shape == (raster.nx * raster.ny + 1,)
        and int(cell_code.max(initial=_FAR)) < grids
        and int(cell_code.min(initial=_FAR)) > _FIRST_SLOT - slot_count
        and len(slots.start) == slot_count + 1
        and all(len(getattr(slots, name)) == slot_count for name in ("ax", "ay", "bx", "by", "left", "right"))
        and int(slots.start[-1]) == len(slots.candidates)
        and int(slots.candidates.max(initial=-1)) < grids
    )
    if not fits:
        raise ValueError("not the cells of this layer's GridIndex")
    return cell_code, slots


def _no_slots() -> _Slots:
    nothing = np.empty(0)
    no_grid = np.empty(0, dtype=np.int32)
    no_start = np.zeros(1, dtype=np.int64)
    return _Slots(np.empty(0, dtype=bool), nothing, nothing, nothing, nothing, no_grid, no_grid, no_start, no_grid)


def _segments(geoms: ObjectArray) -> _Segments:
    parts, part_grid = shapely.get_parts(geoms, return_index=True)  # get_rings skips MultiPolygons
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    ring_grid = part_grid[ring_part]
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = np.flatnonzero(coord_ring[:-1] == coord_ring[1:])
    a, b = coords[same_ring], coords[same_ring + 1]
    grid = ring_grid[coord_ring[same_ring]].astype(np.int64)
    keep = (a[:, 0] != b[:, 0]) | (a[:, 1] != b[:, 1])  # repeated vertices are not segments
    a, b, grid = a[keep], b[keep], grid[keep]
    start = np.searchsorted(grid, np.arange(len(geoms) + 1)).astype(np.int64)
    return _Segments(a[:, 0].copy(), a[:, 1].copy(), b[:, 0].copy(), b[:, 1].copy(), grid, start)


def _edges(seg: _Segments) -> _Edges:
    """Merge identical undirected segments; a grid whose ring runs a->b has its interior on the left."""
    forward = (seg.ax < seg.bx) | ((seg.ax == seg.bx) & (seg.ay < seg.by))
    ux0, uy0 = np.where(forward, seg.ax, seg.bx), np.where(forward, seg.ay, seg.by)
    ux1, uy1 = np.where(forward, seg.bx, seg.ax), np.where(forward, seg.by, seg.ay)
    order = np.lexsort((uy1, ux1, uy0, ux0))
    ux0, uy0, ux1, uy1 = ux0[order], uy0[order], ux1[order], uy1[order]
    new = np.r_[True, (ux0[1:] != ux0[:-1]) | (uy0[1:] != uy0[:-1]) | (ux1[1:] != ux1[:-1]) | (uy1[1:] != uy1[:-1])]
    edge = np.cumsum(new) - 1
    n_edges = int(edge[-1]) + 1
    grid, fwd = seg.grid[order].astype(np.int32), forward[order]
    big = np.iinfo(np.int32).max
    left = np.full(n_edges, big, dtype=np.int32)
    right = np.full(n_edges, big, dtype=np.int32)
    np.minimum.at(left, edge[fwd], grid[fwd])
    np.minimum.at(right, edge[~fwd], grid[~fwd])
    first = np.flatnonzero(new)
    return _Edges(
        ax=ux0[first],
        ay=uy0[first],
        bx=ux1[first],
        by=uy1[first],
        left=np.where(left == big, _NO_GRID, left).astype(np.int32),
        right=np.where(right == big, _NO_GRID, right).astype(np.int32),
        grids=grid,
        start=np.r_[first, len(grid)].astype(np.int64),
    )


def _raster_for(geoms: ObjectArray, tolerance_m: float, cell_m: float | None) -> _Raster:
    """Cells square in metres, about ``_CELLS_PER_GRID`` per grid, over the bounds plus the tolerance."""
    minx, miny, maxx, maxy = (float(v) for v in shapely.total_bounds(geoms))
    lat_far = min(90.0, max(abs(miny), abs(maxy)) + 0.01)
    east_min, north_min = (float(v) for v in metres_per_degree(lat_far))
    north_min = min(north_min, float(metres_per_degree(0.0)[1]))
    east_min = max(east_min, 1.0)  # a layer touching a pole: keep the pad finite
    pad_x = tolerance_m * 1.01 / east_min + _MARGIN_DEG
    pad_y = tolerance_m * 1.01 / north_min + _MARGIN_DEG
    minx, maxx, miny, maxy = minx - pad_x, maxx + pad_x, miny - pad_y, maxy + pad_y
    east_mid, north_mid = (float(v) for v in metres_per_degree((miny + maxy) / 2))
    width_m, height_m = (maxx - minx) * east_mid, (maxy - miny) * north_mid
    if cell_m is None:
        cell_m = math.sqrt(width_m * height_m / (_CELLS_PER_GRID * len(geoms)))
    cell_m = max(cell_m, math.sqrt(width_m * height_m / _MAX_CELLS), 1e-3)
    sx, sy = cell_m / east_mid, cell_m / north_mid
    nx, ny = max(1, math.ceil((maxx - minx) / sx)), max(1, math.ceil((maxy - miny) / sy))
    # One more cell each way, so rounding at the far edge can never leave a point without a cell.
    x0, y0, nx, ny = minx - sx, miny - sy, nx + 2, ny + 2
    beyond = x0 < -180 or y0 < -90 or x0 + nx * sx > 180 or y0 + ny * sy > 90
    return _Raster(x0, y0, sx, sy, nx, ny, inv_x=1.0 / sx, inv_y=1.0 / sy, beyond_wgs84=beyond)


def _classify_cells(tree: shapely.STRtree, seg: _Segments, r: _Raster, tolerance_m: float) -> tuple[IntArray, _Slots]:
    edges = _edges(seg)
    cell, edge = _edge_cells(edges, r)
    crossed = np.zeros(r.nx * r.ny, dtype=bool)
    crossed[cell] = True
    owner, count = _centre_owners(seg, r)
    cell_code = np.where(owner >= 0, owner, _FAR).astype(np.int32)
    near = _dilate(crossed, r, tolerance_m) & (owner < 0)
    cell_code[near] = _NEAR_ZONE
    first = _first_of_runs(cell)
    slot_cells = cell[first]
    n_edges_in_cell = np.diff(np.r_[first, len(cell)])
    single = n_edges_in_cell == 1
    one_edge = np.zeros(len(slot_cells), dtype=bool)
    one_edge[single] = _one_edge_ok(edges, edge[first[single]], slot_cells[single], r, owner, count)
    slot_edge = np.where(one_edge, edge[first], 0)
    cell_code[slot_cells] = (_FIRST_SLOT - np.arange(len(slot_cells))).astype(np.int32)
    slot_of_pair = np.cumsum(np.r_[False, cell[1:] != cell[:-1]]) if len(cell) else cell
    start, candidates = _slot_candidates(
        tree, edges, (edge, slot_of_pair), slot_edge, one_edge, slot_cells, r, (owner, count)
    )
    cell_code = np.append(cell_code, np.int32(_FAR))
    slots = _Slots(
        one_edge=one_edge,
        ax=edges.ax[slot_edge],
        ay=edges.ay[slot_edge],
        bx=edges.bx[slot_edge],
        by=edges.by[slot_edge],
        left=edges.left[slot_edge],
        right=edges.right[slot_edge],
        start=start,
        candidates=candidates,
    )
    return cell_code, slots


def _expand_boxes(
    ix0: Int64Array, ix1: Int64Array, iy0: Int64Array, iy1: Int64Array, nx: int
) -> tuple[Int64Array, Int64Array]:
    """All cells of the inclusive cell ranges, as (cell id, source row)."""
    wx = np.maximum(ix1 - ix0 + 1, 0)
    count = wx * np.maximum(iy1 - iy0 + 1, 0)
    source = np.repeat(np.arange(len(ix0)), count)
    offset = np.arange(len(source)) - np.repeat(np.cumsum(count) - count, count)
    w = wx[source]
    return (iy0[source] + offset // w) * nx + ix0[source] + offset % w, source


def _edge_cells(edges: _Edges, r: _Raster) -> tuple[Int64Array, Int64Array]:
    """(cell, edge) pairs, sorted by cell then edge, for every edge that may touch the cell.

    Each edge is cut into pieces no longer than a cell; a piece marks the cells its bounding box
    (padded by a margin far above rounding error) touches. Pairs where the edge certainly misses
    the cell are then dropped, so a cell keeps only edges that may really enter it.
    """
    dx, dy = edges.bx - edges.ax, edges.by - edges.ay
    pieces = np.maximum(1, np.ceil(np.maximum(np.abs(dx) * r.inv_x, np.abs(dy) * r.inv_y))).astype(np.int64)
    edge = np.repeat(np.arange(len(dx)), pieces)
    i = np.arange(len(edge)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    t0, t1 = i / pieces[edge], (i + 1) / pieces[edge]
    x0, x1 = edges.ax[edge] + dx[edge] * t0, edges.ax[edge] + dx[edge] * t1
    y0, y1 = edges.ay[edge] + dy[edge] * t0, edges.ay[edge] + dy[edge] * t1
    ix0 = r.col(np.minimum(x0, x1) - _MARGIN_DEG)
    ix1 = r.col(np.maximum(x0, x1) + _MARGIN_DEG)
    iy0 = r.row(np.minimum(y0, y1) - _MARGIN_DEG)
    iy1 = r.row(np.maximum(y0, y1) + _MARGIN_DEG)
    cell, source = _expand_boxes(ix0, ix1, iy0, iy1, r.nx)
    key = _sorted_unique(cell * len(dx) + edge[source])
    cell, edge = key // len(dx), key % len(dx)
    touches = _clip(edges, edge, cell, r, _MARGIN_DEG) > -np.inf
    return cell[touches], edge[touches]


def _clip(edges: _Edges, edge: Int64Array, cell: Int64Array, r: _Raster, pad: float) -> FloatArray:
    """Length (as a fraction of the edge) of the edge inside the cell's box grown by ``pad``; -inf if none.

    Liang-Barsky clipping. ``pad`` > 0 answers "may touch", ``pad`` < 0 "certainly crosses".
    """
    ax, ay = edges.ax[edge], edges.ay[edge]
    dx, dy = edges.bx[edge] - ax, edges.by[edge] - ay
    col, row = cell % r.nx, cell // r.nx
    lo_x, hi_x = r.x0 + col * r.sx - pad, r.x0 + (col + 1) * r.sx + pad
    lo_y, hi_y = r.y0 + row * r.sy - pad, r.y0 + (row + 1) * r.sy + pad
    t_lo, t_hi = np.zeros(len(edge)), np.ones(len(edge))
    for a, d, lo, hi in ((ax, dx, lo_x, hi_x), (ay, dy, lo_y, hi_y)):
        with np.errstate(divide="ignore", invalid="ignore"):
            ta, tb = (lo - a) / d, (hi - a) / d
        flat = d == 0
        outside = flat & ((a < lo) | (a > hi))
        t_lo = np.where(flat, np.where(outside, np.inf, t_lo), np.maximum(t_lo, np.minimum(ta, tb)))
        t_hi = np.where(flat, t_hi, np.minimum(t_hi, np.maximum(ta, tb)))
    length = t_hi - t_lo
    return np.where(length >= 0, length, -np.inf)


def _centre_owners(seg: _Segments, r: _Raster) -> tuple[IntArray, Int64Array]:
    """Per cell: the smallest grid covering its centre (-1 if none), and how many grids do.

    A scanline fill: each ring's crossings with each row's centre line, paired up per grid and row
    (even-odd, so holes come out). Decisions use the same half-open rule for every segment, so each
    ring crosses each line an even number of times.
    """
    ymin, ymax = np.minimum(seg.ay, seg.by), np.maximum(seg.ay, seg.by)
    first_row = np.ceil((ymin - r.y0) * r.inv_y - 0.5).astype(np.int64)
    stop_row = np.ceil((ymax - r.y0) * r.inv_y - 0.5).astype(np.int64)
    count = np.maximum(stop_row - first_row, 0)
    s = np.repeat(np.arange(len(ymin)), count)
    row = first_row[s] + np.arange(len(s)) - np.repeat(np.cumsum(count) - count, count)
    y = r.y0 + (row + 0.5) * r.sy
    x = seg.ax[s] + (y - seg.ay[s]) * (seg.bx[s] - seg.ax[s]) / (seg.by[s] - seg.ay[s])
    grid = seg.grid[s]
    order = np.lexsort((x, grid * r.ny + row))
    x, row, grid = x[order], row[order], grid[order]
    x_in, x_out, row, grid = x[0::2], x[1::2], row[0::2], grid[0::2]
    c0 = np.clip(np.ceil((x_in - r.x0) * r.inv_x - 0.5), 0, r.nx).astype(np.int64)
    c1 = np.clip(np.ceil((x_out - r.x0) * r.inv_x - 0.5), 0, r.nx).astype(np.int64)
    cell, source = _expand_boxes(c0, c1 - 1, row, row, r.nx)
    owner = np.full(r.nx * r.ny, np.iinfo(np.int32).max, dtype=np.int32)
    np.minimum.at(owner, cell, grid[source].astype(np.int32))
    owner[owner == np.iinfo(np.int32).max] = _NO_GRID
    return owner, np.bincount(cell, minlength=r.nx * r.ny)


def _dilate(mask: BoolArray, r: _Raster, tolerance_m: float) -> BoolArray:
    """Cells within the tolerance (in whole cells, rounded up, plus one) of a marked cell."""
    lat_far = min(90.0, max(abs(r.y0), abs(r.y0 + r.ny * r.sy)))
    east_min, north_min = (float(v) for v in metres_per_degree(lat_far))
    north_min = min(north_min, float(metres_per_degree(0.0)[1]))
    kx = math.ceil(tolerance_m * 1.01 / max(east_min, 1.0) / r.sx) + 1
    ky = math.ceil(tolerance_m * 1.01 / north_min / r.sy) + 1
    grid = _dilate_axis(mask.reshape(r.ny, r.nx), kx, axis=1)
    return _dilate_axis(grid, ky, axis=0).ravel()


def _dilate_axis(mask: BoolArray, k: int, *, axis: int) -> BoolArray:
    """True where any of the 2k+1 cells centred on a cell along ``axis`` is True.

    Grows the reach by up to doubling steps (1, 2, 4, ...), so large k costs log(k) passes.
    """
    out = mask.copy()
    reach = 0
    k = min(k, mask.shape[axis])
    while reach < k:
        step = min(reach + 1, k - reach)
        grown = out.copy()
        if axis == 1:
            grown[:, step:] |= out[:, :-step]
            grown[:, :-step] |= out[:, step:]
        else:
            grown[step:, :] |= out[:-step, :]
            grown[:-step, :] |= out[step:, :]
        out = grown
        reach += step
    return out


def _one_edge_ok(
    edges: _Edges, edge: Int64Array, cell: Int64Array, r: _Raster, owner: IntArray, count: Int64Array
) -> BoolArray:
    """Whether a cell with one edge can be answered by the side of that edge alone.

    The edge must certainly cross the cell, so each side of it in the cell touches the edge: that side
    lies inside every grid whose ring runs along the edge with its interior there, and outside every
    grid with its interior on the other side. A grid without an edge in the cell covers all of it or
    none of it; one that covers it (an overlap) shows at the centre, where the centre-fill counts more
    grids than the edge accounts for. So the centre must be clear of the line, and the counts agree.
    """
    crosses = _clip(edges, edge, cell, r, -_MARGIN_DEG) > 0
    cx = r.x0 + (cell % r.nx + 0.5) * r.sx
    cy = r.y0 + (cell // r.nx + 0.5) * r.sy
    ax, ay = edges.ax[edge], edges.ay[edge]
    ex, ey = edges.bx[edge] - ax, edges.by[edge] - ay
    det = ex * (cy - ay) - ey * (cx - ax)
    clear = np.abs(det) > _MARGIN_DEG * np.hypot(ex, ey)
    side = np.where(det > 0, edges.left[edge], edges.right[edge])
    expected = (side >= 0).astype(np.int64)
    centre_ok = (count[cell] == expected) & (np.where(side >= 0, owner[cell] == side, owner[cell] < 0))
    ok: BoolArray = crosses & clear & centre_ok
    return ok


def _slot_candidates(
    tree: shapely.STRtree,
    edges: _Edges,
    pairs: tuple[Int64Array, Int64Array],
    slot_edge: Int64Array,
    one_edge: BoolArray,
    slot_cells: Int64Array,
    r: _Raster,
    centre: tuple[IntArray, Int64Array],
) -> tuple[Int64Array, IntArray]:
    """Per slot, ascending, the grids that may cover part of its cell (``pairs``: edge and slot).

    One-edge slots: the grids on the edge's two sides. Others: every grid with an edge in the cell,
    plus any grid covering the whole cell, which then covers the centre: if the centre-fill counts
    one grid there, it is that one; if it counts more (overlapping grids), every grid whose bounding
    box meets the cell is taken as well.
    """
    pair_edge, pair_slot = pairs
    owner, count = centre
    general = ~one_edge
    on_general = general[pair_slot]
    pair_slot, pair_edge = pair_slot[on_general], pair_edge[on_general]
    per_edge = edges.start[pair_edge + 1] - edges.start[pair_edge]
    edge_slot = np.repeat(pair_slot, per_edge)
    offset = np.arange(len(edge_slot)) - np.repeat(np.cumsum(per_edge) - per_edge, per_edge)
    edge_grid = edges.grids[np.repeat(edges.start[pair_edge], per_edge) + offset]
    centre_owner = owner[slot_cells]
    owned = np.flatnonzero(general & (centre_owner >= 0))
    crowded = np.flatnonzero(general & (count[slot_cells] >= 2))
    box_slot, box_grid = _bbox_candidates(tree, slot_cells[crowded], r)
    ones = np.flatnonzero(one_edge)
    slot = np.concatenate([edge_slot, owned, crowded[box_slot], ones, ones])
    grid = np.concatenate(
        [edge_grid, centre_owner[owned], box_grid, edges.left[slot_edge[ones]], edges.right[slot_edge[ones]]]
    ).astype(np.int64)
    keep = grid >= 0
    n_grids = int(edges.grids.max()) + 1
    key = _sorted_unique(slot[keep] * n_grids + grid[keep])
    start = np.searchsorted(key // n_grids, np.arange(len(slot_cells) + 1)).astype(np.int64)
    return start, (key % n_grids).astype(np.int32)


def _bbox_candidates(tree: shapely.STRtree, cells: Int64Array, r: _Raster) -> tuple[Int64Array, Int64Array]:
    """(cell position, grid) for every grid whose bounding box meets the cell (grown by the margin)."""
    col, row = cells % r.nx, cells // r.nx
    boxes = shapely.box(
        r.x0 + col * r.sx - _MARGIN_DEG,
        r.y0 + row * r.sy - _MARGIN_DEG,
        r.x0 + (col + 1) * r.sx + _MARGIN_DEG,
        r.y0 + (row + 1) * r.sy + _MARGIN_DEG,
    )
    found = tree.query(boxes)
    return found[0].astype(np.int64), found[1].astype(np.int64)


def _distance_to_grids(
    seg: _Segments, grid: Int64Array, lon: FloatArray, lat: FloatArray, east: FloatArray, north: FloatArray
) -> FloatArray:
    """Metres from each point to its paired grid's boundary, on the local plane at the point."""
    count = seg.start[grid + 1] - seg.start[grid]
    pair = np.repeat(np.arange(len(grid)), count)
    s = np.repeat(seg.start[grid], count) + np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    kx, ky = east[pair], north[pair]
    ax, ay = (seg.ax[s] - lon[pair]) * kx, (seg.ay[s] - lat[pair]) * ky
    bx, by = (seg.bx[s] - lon[pair]) * kx, (seg.by[s] - lat[pair]) * ky
    ex, ey = bx - ax, by - ay
    with np.errstate(invalid="ignore", divide="ignore"):
        t = -(ax * ex + ay * ey) / (ex * ex + ey * ey)
    # Endpoints are taken as they are, so a vertex shared by two grids is equally far from both.
    cx = np.where(t <= 0, ax, np.where(t >= 1, bx, ax + t * ex))
    cy = np.where(t <= 0, ay, np.where(t >= 1, by, ay + t * ey))
    d = np.hypot(cx, cy)
    first = np.cumsum(count) - count
    return np.minimum.reduceat(d, first) if len(d) else np.full(len(grid), np.inf)
