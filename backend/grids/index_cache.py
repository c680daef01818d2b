"""The GridIndex of the current layer, per process, rebuilt when a new layer version lands.

Every API and worker process holds its own index. Each asks the database which version is
current at most every ``CHECK_INTERVAL_S`` seconds (one indexed row), so a re-import reaches all
processes within that time without any message passing.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import shapely

from backend.grids import index_store
from backend.grids.tables import Grid, GridVersion
from geo.index import GridIndex

CHECK_INTERVAL_S = 2.0


@dataclass(frozen=True)
class GridPlace:
    community_id: int
    street_id: int | None


@dataclass(frozen=True)
class CurrentLayer:
    version: int
    index: GridIndex
    places: dict[str, GridPlace]
    geometries: dict[str, shapely.Geometry]


class _Holder:
    def __init__(self) -> None:
        self.layer: CurrentLayer | None = None
        self.checked_at = -1e9
        self.lock = asyncio.Lock()


_holder = _Holder()


async def load_layer(version_id: int, number: int) -> CurrentLayer:
    rows = await Grid.select(Grid.code, Grid.geometry, Grid.community, Grid.community.parent.as_alias("street")).where(
        Grid.layer == version_id
    )
    codes = [row["code"] for row in rows]
    wkb = [bytes(row["geometry"]) for row in rows]
    # Decoding and indexing ~13,000 polygons takes most of a second, in numpy and GEOS, which let go
    # of the interpreter lock: in a thread, the event loop keeps serving requests meanwhile.
    geometries = await asyncio.to_thread(shapely.from_wkb, wkb) if rows else []
    places = {row["code"]: GridPlace(community_id=row["community"], street_id=row["street"]) for row in rows}
    return CurrentLayer(
        version=number,
        index=await asyncio.to_thread(index_store.build, codes, wkb, geometries, version=number),
        places=places,
        geometries=dict(zip(codes, geometries, strict=True)),
    )


async def current_layer() -> CurrentLayer | None:
    """The current layer's index, or None while no grid layer has been installed."""
    now = time.monotonic()
    if now - _holder.checked_at < CHECK_INTERVAL_S:
        return _holder.layer
    async with _holder.lock:
        if time.monotonic() - _holder.checked_at < CHECK_INTERVAL_S:
            return _holder.layer
        row = (
            await GridVersion.select(GridVersion.id, GridVersion.number).where(GridVersion.is_current.eq(True)).first()
        )
        if row is None:
            _holder.layer = None
        elif _holder.layer is None or _holder.layer.version != row["number"]:
            _holder.layer = await load_layer(row["id"], row["number"])
        _holder.checked_at = time.monotonic()
        return _holder.layer


def forget() -> None:
    """Drop the cached layer (after this process installed a new one, or in tests)."""
    _holder.layer = None
    _holder.checked_at = -1e9
