"""The current grid layer as a GeoDataFrame, for export."""

from __future__ import annotations

import geopandas as gpd
import shapely

from backend.grids.tables import Grid


async def current_layer_frame() -> gpd.GeoDataFrame:
    rows = (
        await Grid.select(
            Grid.code,
            Grid.name,
            Grid.geometry,
            Grid.community.code.as_alias("community_code"),
            Grid.community.name.as_alias("community_name"),
            Grid.community._.parent._.code.as_alias("street_code"),
            Grid.community._.parent._.name.as_alias("street_name"),
            Grid.layer.number.as_alias("version"),
        )
        .where(Grid.layer._.is_current.eq(True))
        .order_by(Grid.code)
    )
    geometries = shapely.from_wkb([bytes(row["geometry"]) for row in rows]) if rows else []
    attributes = [{key: value for key, value in row.items() if key != "geometry"} for row in rows]
    return gpd.GeoDataFrame(attributes, geometry=list(geometries), crs="EPSG:4326")
