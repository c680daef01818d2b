"""Locating one point for a person (the CLI): grid, worker, and how sure we are."""

from __future__ import annotations

from typing import Any

import numpy as np

from backend.grids import index_cache
from backend.grids.placement import place_points
from backend.grids.tables import Grid, GridAssignment
from backend.orgs.tables import OrgUnit
from geo.crs import parse_crs, to_wgs84


async def locate_one(lon: float, lat: float, crs: str = "wgs84") -> dict[str, Any]:
    spec = parse_crs(crs)
    x, y = to_wgs84(np.array([lon]), np.array([lat]), spec)
    layer = await index_cache.current_layer()
    if layer is None:
        raise ValueError("no grid map has been imported yet")
    place = place_points(layer, np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0]
    found: dict[str, Any] = {
        "lon_wgs84": float(x[0]),
        "lat_wgs84": float(y[0]),
        "grid_code": place.grid_code,
        "grid_name": None,
        "flag": place.flag.value,
        "distance_m": round(place.distance_m, 1) if place.grid_code else None,
        "tolerance_m": layer.index.tolerance_m,
        "worker_id": None,
        "worker_name": None,
        "street": None,
        "version": layer.version,
    }
    if place.street_id is not None:
        street = await OrgUnit.select(OrgUnit.name).where(OrgUnit.id == place.street_id).first()
        found["street"] = street["name"] if street else None
    if place.grid_code:
        grid = (
            await Grid.select(Grid.name).where(Grid.code == place.grid_code, Grid.layer._.is_current.eq(True)).first()
        )
        found["grid_name"] = grid["name"] if grid else None
        owner = (
            await GridAssignment.select(
                GridAssignment.worker,
                GridAssignment.worker.display_name.as_alias("name"),
                GridAssignment.worker.username.as_alias("username"),
            )
            .where(GridAssignment.grid_code == place.grid_code, GridAssignment.ended_at.is_null())
            .first()
        )
        if owner:
            found["worker_id"] = str(owner["worker"])
            found["worker_name"] = f"{owner['name']} ({owner['username']})"
    return found
