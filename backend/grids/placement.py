"""Placing households in grids, and re-homing them all when the grid layer changes.

A household inside a grid (or within the index's tolerance of one) gets that grid, its community
and street. One farther out gets no grid but the street of the nearest grid, so it shows on that
street supervisor's "unplaced" list instead of on nobody's.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
import shapely

from backend.grids.index_cache import CurrentLayer
from backend.households.tables import Household, PlacementFlag

_FLAGS = (PlacementFlag.inside, PlacementFlag.near, PlacementFlag.unplaced)
_UPDATE_BATCH = 500


@dataclass(frozen=True)
class Placement:
    grid_code: str | None
    flag: PlacementFlag
    distance_m: float
    community_id: int | None
    street_id: int | None


def place_points(layer: CurrentLayer, lons: np.ndarray, lats: np.ndarray) -> list[Placement]:
    result = layer.index.locate_many(lons, lats)
    codes = result.codes
    placements: list[Placement] = []
    nearest_street = _nearest_streets(layer, lons, lats, np.flatnonzero(result.flag == 2))
    for position in range(len(lons)):
        code = codes[position]
        flag = _FLAGS[int(result.flag[position])]
        if code is not None:
            place = layer.places[code]
            placements.append(
                Placement(code, flag, float(result.distance_m[position]), place.community_id, place.street_id)
            )
        else:
            placements.append(Placement(None, flag, float("inf"), None, nearest_street.get(position)))
    return placements


def _nearest_streets(
    layer: CurrentLayer, lons: np.ndarray, lats: np.ndarray, positions: np.ndarray
) -> dict[int, int | None]:
    """Street of the nearest grid for each unplaced point, keyed by its position in the batch."""
    if len(positions) == 0 or not layer.geometries:
        return {}
    codes = list(layer.geometries)
    tree = shapely.STRtree(list(layer.geometries.values()))
    lon, lat = lons[positions], lats[positions]
    finite = np.isfinite(lon) & np.isfinite(lat)
    nearest = tree.nearest(shapely.points(np.where(finite, lon, 0.0), np.where(finite, lat, 0.0)))
    return {
        int(position): (layer.places[codes[int(hit)]].street_id if ok else None)
        for position, hit, ok in zip(positions, nearest, finite, strict=True)
    }


@dataclass
class RehomeSummary:
    households_checked: int = 0
    households_moved: int = 0
    # grid code (or "" for none) → households that left / arrived
    left: dict[str, int] = field(default_factory=dict)
    arrived: dict[str, int] = field(default_factory=dict)
    unplaced: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "households_checked": self.households_checked,
            "households_moved": self.households_moved,
            "unplaced": self.unplaced,
            "grids_affected": sorted(set(self.left) | set(self.arrived) - {""}),
        }


async def rehome_households(layer: CurrentLayer) -> RehomeSummary:
    """Re-place every household with a known point against ``layer``; write only those that moved."""
    rows = await Household.select(
        Household.id,
        Household.lon,
        Household.lat,
        Household.grid_code,
        Household.placement,
        Household.community,
        Household.street,
    ).where(Household.lon.is_not_null(), Household.lat.is_not_null())
    summary = RehomeSummary(households_checked=len(rows))
    if not rows:
        return summary
    lons = np.fromiter((row["lon"] for row in rows), dtype=float, count=len(rows))
    lats = np.fromiter((row["lat"] for row in rows), dtype=float, count=len(rows))
    groups: dict[tuple[Any, ...], list[UUID]] = defaultdict(list)
    for row, place in zip(rows, place_points(layer, lons, lats), strict=True):
        target = (place.grid_code, place.flag.value, place.community_id, place.street_id)
        current = (row["grid_code"], row["placement"], row["community"], row["street"])
        if target == current:
            continue
        groups[target].append(row["id"])
        if row["grid_code"] != place.grid_code:
            summary.households_moved += 1
            summary.left[row["grid_code"] or ""] = summary.left.get(row["grid_code"] or "", 0) + 1
            summary.arrived[place.grid_code or ""] = summary.arrived.get(place.grid_code or "", 0) + 1
        if place.grid_code is None:
            summary.unplaced += 1
    for (grid_code, flag, community, street), ids in groups.items():
        for start in range(0, len(ids), _UPDATE_BATCH):
            await Household.update(
                {
                    Household.grid_code: grid_code,
                    Household.placement: flag,
                    Household.community: community,
                    Household.street: street,
                }
            ).where(Household.id.is_in(ids[start : start + _UPDATE_BATCH]))
    return summary
