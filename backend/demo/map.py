"""The demo's grid map: about 13,000 grids inside Changzhou's real district boundaries.

Each district is split into its streets and towns, each street into communities (社区) or, in a
town, villages (村) around a couple of residential communities at the town seat, and each of those
into grids, all with ``geo.synthetic.split_polygon``: grids tile communities, communities tile
streets, streets tile the district. Every district gets a fixed number of grids, so the small urban
districts (天宁, 钟楼, 新北) come out with small grids and the rural ones (武进, 金坛, 溧阳) with large.

The result is an ordinary grid file, the kind a city hands over: WGS84, one row per grid, with the
attribute columns Chinese grid systems use (``wgbm``/``wgmc`` grid code and name, ``sqbm``/``sqmc``
community, ``jdbm``/``jdmc`` street). The demo seed writes it to a GeoPackage and imports it through
the same importer as a real city's file. The same seed gives the same map.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from backend.demo.places import (
    DISTRICTS,
    DemoDistrict,
    NamePool,
    Polygonal,
    community_pool,
    read_boundary,
    village_pool,
)
from geo.synthetic import split_polygon

# Part of the cached file's name: bump it whenever the map this module draws changes.
MAP_VERSION = 1
DEMO_MAP_SEED = 2026
LAYER_NAME = "grids"
COLUMNS = ("wgbm", "wgmc", "sqbm", "sqmc", "jdbm", "jdmc")

COMMUNITIES_PER_STREET = (8, 20)
# Residential communities at a town's seat; the rest of a town is villages.
TOWN_SEAT_COMMUNITIES = 2
GRIDS_PER_COMMUNITY = (3, 60)
# Some communities are denser than their neighbours: relative weight of each one's share of grids.
COMMUNITY_WEIGHT = (0.6, 1.4)
# Grids are the most numerous level: one relaxation round fewer keeps the whole map under ~10 s.
GRID_LLOYD_ROUNDS = 2


def build_demo_map(seed: int = DEMO_MAP_SEED) -> gpd.GeoDataFrame:
    """The demo grid layer as a GeoDataFrame in WGS84 (EPSG:4326), in code order."""
    names = np.random.default_rng(seed)
    pools = _Pools(community_pool(names), village_pool(names))
    rows: list[dict[str, Any]] = []
    for district in DISTRICTS:
        rng = np.random.default_rng([seed, int(district.code)])
        rows.extend(_district_rows(district, read_boundary(district.code), rng, pools))
    return gpd.GeoDataFrame(rows, columns=[*COLUMNS, "geometry"], geometry="geometry", crs="EPSG:4326")


def write_demo_map(path: Path, seed: int = DEMO_MAP_SEED) -> Path:
    """Write the demo grid layer to ``path`` as a GeoPackage (layer ``grids``); return ``path``.

    Written to a temporary sibling first, so a reader never sees half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.{os.getpid()}.tmp.gpkg")
    try:
        build_demo_map(seed).to_file(partial, layer=LAYER_NAME, driver="GPKG", engine="pyogrio")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def cached_demo_map(directory: Path, seed: int = DEMO_MAP_SEED) -> Path:
    """The demo map's GeoPackage in ``directory``, written there first unless already there."""
    path = Path(directory) / f"changzhou-demo-grids-v{MAP_VERSION}-{seed}.gpkg"
    return path if path.exists() else write_demo_map(path, seed)


@dataclass(frozen=True)
class _Pools:
    communities: NamePool
    villages: NamePool


def _district_rows(
    district: DemoDistrict, boundary: Polygonal, rng: np.random.Generator, pools: _Pools
) -> list[dict[str, Any]]:
    streets = split_polygon(boundary, len(district.streets), seed=rng)
    low, high = COMMUNITIES_PER_STREET
    communities_per_street = rng.integers(low, high + 1, size=len(streets))
    grid_counts = iter(_apportion(district.grids, int(communities_per_street.sum()), rng))
    rows: list[dict[str, Any]] = []
    for s, (street, street_name) in enumerate(zip(streets, district.streets, strict=True), start=1):
        street_code = f"{district.code}{s:03d}"
        parts = split_polygon(street, int(communities_per_street[s - 1]), seed=rng)
        villages = _village_flags(street, parts) if street_name.endswith("镇") else [False] * len(parts)
        for c, (community, is_village) in enumerate(zip(parts, villages, strict=True), start=1):
            community_code = f"{street_code}{c:03d}"
            community_name = pools.villages.take() + "村" if is_village else pools.communities.take() + "社区"
            grids = split_polygon(community, next(grid_counts), seed=rng, lloyd_rounds=GRID_LLOYD_ROUNDS)
            rows.extend(
                {
                    "wgbm": f"{community_code}-{g:02d}",
                    "wgmc": f"{community_name}第{g}网格",
                    "sqbm": community_code,
                    "sqmc": community_name,
                    "jdbm": street_code,
                    "jdmc": street_name,
                    "geometry": grid,
                }
                for g, grid in enumerate(grids, start=1)
            )
    return rows


def _apportion(total: int, parts: int, rng: np.random.Generator) -> list[int]:
    """``total`` grids over ``parts`` communities, unevenly, each within ``GRIDS_PER_COMMUNITY``."""
    low, high = GRIDS_PER_COMMUNITY
    weights = rng.uniform(*COMMUNITY_WEIGHT, size=parts)
    counts = np.clip(np.round(total * weights / weights.sum()), low, high).astype(int)
    return [int(count) for count in counts]


def _village_flags(town: Polygonal, parts: list[Polygonal]) -> list[bool]:
    """Villages everywhere but the few parts nearest the middle of the town (its seat)."""
    seat = town.point_on_surface()
    distances = shapely.distance(np.array(parts, dtype=object), seat)
    residential = set(np.argsort(distances, kind="stable")[:TOWN_SEAT_COMMUNITIES].tolist())
    return [i not in residential for i in range(len(parts))]
