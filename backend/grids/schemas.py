from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

Crs = Annotated[str, msgspec.Meta(min_length=4, max_length=16, pattern=r"^(?i:wgs84|gcj02|cgcs2000|(epsg:)?\d{4,6})$")]
Point = Annotated[list[float], msgspec.Meta(min_length=2, max_length=2)]


class LocateIn(InputStruct):
    points: Annotated[list[Point], msgspec.Meta(min_length=1, max_length=10_000)]
    crs: Crs = "wgs84"


class LocatedPoint(OutputStruct):
    grid_code: str | None
    grid_name: str | None
    flag: Literal["inside", "near", "unplaced"]
    distance_m: float | None
    worker_id: str | None
    worker_name: str | None


class LocateOut(OutputStruct):
    version: int
    results: list[LocatedPoint]


class GridProperties(msgspec.Struct):
    code: str
    name: str
    community_code: str
    community_name: str
    version: int


class GridFeatureOut(msgspec.Struct):
    id: str
    properties: GridProperties
    # Already GeoJSON text from shapely: embedded as is, never parsed and re-encoded.
    geometry: msgspec.Raw
    type: str = "Feature"


class GridCollection(msgspec.Struct):
    features: list[GridFeatureOut]
    type: str = "FeatureCollection"


class UnplacedHousehold(OutputStruct):
    id: str
    code: str
    head_name: str
    address: str
    lon: float | None
    lat: float | None


class VersionOut(OutputStruct):
    number: int
    source: str
    imported_at: Any
    is_current: bool
    grids: int


class ImportReportOut(OutputStruct):
    """The importer's report; ``written`` says whether a new layer version now exists."""

    report: dict[str, Any]
