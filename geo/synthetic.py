"""Deterministic synthetic subdivisions for demos: split a polygon into parts that tile it.

A real city hands over its street, community and grid layers; a demo has only district boundaries.
``split_polygon`` cuts a (Multi)Polygon into N parts with a seeded, relaxed Voronoi diagram:

- seeds are random points inside the polygon, moved a few times to the centroid of their cell
  (Lloyd relaxation) so parts come out compact and of similar size instead of long slivers;
- each Voronoi cell is clipped to the polygon. On a non-convex polygon a clipped cell can fall
  apart; the piece holding the seed is the part, every other piece (often a sliver) is merged into
  the part it shares the longest edge with;
- all overlay runs on a fixed precision grid (snap rounding), so neighbours share identical
  vertices: parts do not overlap, leave no gaps, and each is valid.

The same polygon, N and seed always give the same parts. Pure geometry: numpy and shapely only.
"""

from __future__ import annotations

import math
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon

Polygonal: TypeAlias = Polygon | MultiPolygon
Seed: TypeAlias = int | np.random.Generator

# Precision of the snap-rounding grid relative to the polygon's extent: ~0.01 mm on a district.
_RELATIVE_PRECISION = 1e-9
LLOYD_ROUNDS = 3


def _rng(seed: Seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_polygonal(geom: Polygonal) -> None:
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty or geom.area <= 0:
        raise ValueError("expected a non-empty Polygon or MultiPolygon with an area")


def sample_points(geom: Polygonal, n: int, *, seed: Seed) -> npt.NDArray[np.float64]:
    """``n`` points, uniform in coordinate space, strictly inside ``geom``: an (n, 2) array."""
    _check_polygonal(geom)
    rng = _rng(seed)
    minx, miny, maxx, maxy = geom.bounds
    hit_rate = geom.area / ((maxx - minx) * (maxy - miny))
    shapely.prepare(geom)
    found: list[npt.NDArray[np.float64]] = []
    missing = n
    while missing > 0:
        batch = max(64, math.ceil(missing / hit_rate * 1.2))
        xs, ys = rng.uniform(minx, maxx, batch), rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(geom, xs, ys)
        points = np.column_stack([xs[inside], ys[inside]])[:missing]
        found.append(points)
        missing -= len(points)
    return np.concatenate(found) if found else np.empty((0, 2))


def grid_size_for(geom: Polygonal) -> float:
    """The snap-rounding grid used for ``geom``: a power of ten about 1e-9 of its extent."""
    minx, miny, maxx, maxy = geom.bounds
    extent = max(maxx - minx, maxy - miny)
    return 10.0 ** math.floor(math.log10(extent * _RELATIVE_PRECISION))


def split_polygon(geom: Polygonal, n: int, *, seed: Seed, lloyd_rounds: int = LLOYD_ROUNDS) -> list[Polygonal]:
    """Split ``geom`` into ``n`` valid, non-empty, non-overlapping parts whose union is ``geom``.

    Parts are ordered west to east, then south to north, by their seed points, so part numbers read
    naturally on a map. Coordinates are snapped to ``grid_size_for(geom)``.
    """
    _check_polygonal(geom)
    if n < 1:
        raise ValueError("n must be at least 1")
    grid = grid_size_for(geom)
    whole = _polygonal(shapely.set_precision(geom, grid))
    if n == 1:
        return [whole]
    seeds = sample_points(whole, n, seed=seed)
    for _ in range(lloyd_rounds):
        seeds = _relaxed(whole, seeds, grid)
    seeds = seeds[np.lexsort((seeds[:, 1], seeds[:, 0]))]
    mains, orphans = _clip_cells(whole, seeds, grid)
    return _merge_orphans(mains, orphans, grid)


def _voronoi_cells(whole: Polygonal, seeds: npt.NDArray[np.float64]) -> list[Polygon]:
    """One Voronoi cell per seed, in seed order (matched by containment: GEOS returns them unordered)."""
    cells = list(shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=whole)))
    tree = shapely.STRtree(cells)
    ordered: list[Polygon] = []
    for x, y in seeds:
        hits = tree.query(Point(x, y), predicate="intersects")
        ordered.append(cells[int(hits[0])])
    return ordered


def _clip_cells(whole: Polygonal, seeds: npt.NDArray[np.float64], grid: float) -> tuple[list[Polygon], list[Polygon]]:
    """Clip each cell to ``whole``; return the piece holding each seed, and all other pieces."""
    cells = _voronoi_cells(whole, seeds)
    clipped = shapely.intersection(np.array(cells, dtype=object), whole, grid_size=grid)
    mains: list[Polygon] = []
    orphans: list[Polygon] = []
    for piece_set, (x, y) in zip(clipped, seeds, strict=True):
        pieces = [p for p in shapely.get_parts(piece_set) if isinstance(p, Polygon) and p.area > 0]
        if not pieces:
            raise ValueError("a Voronoi cell lost its area when clipped; try another seed")
        main = int(np.argmin(shapely.distance(np.array(pieces, dtype=object), Point(x, y))))
        mains.append(pieces[main])
        orphans.extend(p for i, p in enumerate(pieces) if i != main)
    return mains, orphans


def _relaxed(whole: Polygonal, seeds: npt.NDArray[np.float64], grid: float) -> npt.NDArray[np.float64]:
    """One Lloyd step: each seed moves to its clipped cell's centroid (or a point on it, if non-convex)."""
    mains, _ = _clip_cells(whole, seeds, grid)
    moved = []
    for part in mains:
        centre = part.centroid
        if not part.contains(centre):
            centre = part.point_on_surface()
        moved.append((centre.x, centre.y))
    return np.array(moved, dtype=float)


def _merge_orphans(mains: list[Polygon], orphans: list[Polygon], grid: float) -> list[Polygonal]:
    groups: list[list[Polygon]] = [[main] for main in mains]
    tree = shapely.STRtree(mains)
    for orphan in orphans:
        groups[_best_neighbour(orphan, mains, tree)].append(orphan)
    return [_polygonal(shapely.union_all(group, grid_size=grid)) if len(group) > 1 else group[0] for group in groups]


def _best_neighbour(orphan: Polygon, mains: list[Polygon], tree: shapely.STRtree) -> int:
    """The part sharing the longest edge with ``orphan``; the nearest one if none touches it."""
    candidates = tree.query(orphan, predicate="intersects")
    if len(candidates):
        shared = [shapely.intersection(orphan.boundary, mains[i].boundary).length for i in candidates]
        if max(shared) > 0:
            return int(candidates[int(np.argmax(shared))])
    return int(tree.query_nearest(orphan)[0])


def _polygonal(geom: shapely.Geometry) -> Polygonal:
    """Keep only the areal parts of an overlay result, repaired if needed, as one (Multi)Polygon."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    # Two levels: make_valid may return a GeometryCollection holding a MultiPolygon.
    flat = [p for p in shapely.get_parts(shapely.get_parts(geom)) if isinstance(p, Polygon) and p.area > 0]
    if not flat:
        raise ValueError("geometry has no area")
    return flat[0] if len(flat) == 1 else MultiPolygon(flat)
