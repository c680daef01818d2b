"""A synthetic layer of ~13,000 grids over Changzhou's real districts, cached as a GeoPackage.

Each district (GCJ-02 in the repo, converted to WGS84) is split into streets, each street into
communities, each community into grids, with ``geo.synthetic.split_polygon``. Urban districts get
``URBAN_DENSITY`` times as many grids per km² as the rest, as real grid layers do. Grid codes are
``{adcode}{street:03d}{community:03d}{grid:03d}`` (15 digits), so their lexicographic order follows
the hierarchy; each row also carries its community and street (code and name), as a city's grid
file does, so ``geo.reader`` and ``geo.validate`` can be timed on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TypeAlias

import geopandas as gpd
import shapely
from rich.progress import Progress
from shapely.geometry import MultiPolygon, Polygon, shape

from geo.gcj02 import gcj02_to_wgs84, transform_geometry
from geo.synthetic import split_polygon

ROOT = Path(__file__).resolve().parents[1]
DISTRICTS_DIR = ROOT / "backend/demo/data/changzhou"
CACHE_DIR = Path(__file__).resolve().parent / ".cache"
DISTRICTS = ("320402", "320404", "320411", "320412", "320413", "320481")
URBAN = frozenset({"320402", "320404", "320411"})
URBAN_DENSITY = 5.0
TARGET_GRIDS = 13_000
GRIDS_PER_COMMUNITY = 16
COMMUNITIES_PER_STREET = 8
_KM2_PER_DEG2_AT_EQUATOR = 111.32**2

# Bump when the generated layer changes, so an old cache is not reused.
LAYER_VERSION = 2

Polygonal: TypeAlias = Polygon | MultiPolygon


def district_wgs84(adcode: str) -> Polygonal:
    geom = shape(json.loads((DISTRICTS_DIR / f"{adcode}.geojson").read_text()))
    return transform_geometry(geom, gcj02_to_wgs84)


def _area_km2(geom: Polygonal) -> float:
    lat = shapely.centroid(geom).y
    return float(geom.area) * _KM2_PER_DEG2_AT_EQUATOR * math.cos(math.radians(lat))


def grids_per_district(districts: dict[str, Polygonal], target: int = TARGET_GRIDS) -> dict[str, int]:
    weights = {code: _area_km2(geom) * (URBAN_DENSITY if code in URBAN else 1.0) for code, geom in districts.items()}
    total = sum(weights.values())
    return {code: max(1, round(target * weight / total)) for code, weight in weights.items()}


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive counts."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _split_district(adcode: str, district: Polygonal, n_grids: int) -> list[tuple[str, Polygonal]]:
    """(grid code, grid) for every grid of the district."""
    n_communities = max(1, round(n_grids / GRIDS_PER_COMMUNITY))
    n_streets = max(1, round(n_communities / COMMUNITIES_PER_STREET))
    seed = int(adcode)
    streets = split_polygon(district, n_streets, seed=seed)
    community_counts = _spread(n_communities, n_streets)
    grid_counts = iter(_spread(n_grids, n_communities))
    out: list[tuple[str, Polygonal]] = []
    for s, (street, n_comm) in enumerate(zip(streets, community_counts, strict=True), start=1):
        for c, community in enumerate(split_polygon(street, n_comm, seed=seed + s), start=1):
            for g, grid in enumerate(split_polygon(community, next(grid_counts), seed=seed + 1000 * s + c), start=1):
                out.append((f"{adcode}{s:03d}{c:03d}{g:03d}", grid))
    return out


def build_layer(target: int = TARGET_GRIDS) -> gpd.GeoDataFrame:
    districts = {code: district_wgs84(code) for code in DISTRICTS}
    counts = grids_per_district(districts, target)
    rows: list[dict[str, str]] = []
    geoms: list[Polygonal] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("splitting districts into grids", total=sum(counts.values()))
        for code, district in districts.items():
            for grid_code, geom in _split_district(code, district, counts[code]):
                rows.append(_attributes(grid_code))
                geoms.append(geom)
            progress.advance(task, counts[code])
    return gpd.GeoDataFrame(rows, geometry=geoms, crs="EPSG:4326")


def _attributes(grid_code: str) -> dict[str, str]:
    district, street, community, grid = grid_code[:6], grid_code[6:9], grid_code[9:12], grid_code[12:]
    return {
        "code": grid_code,
        "name": f"{district}-{street}-{community} 第{int(grid)}网格",
        "parent_code": grid_code[:12],
        "parent_name": f"{district}-{street} 第{int(community)}社区",
        "street_code": grid_code[:9],
        "street_name": f"{district} 第{int(street)}街道",
        "district": district,
    }


def cached_layer(target: int = TARGET_GRIDS) -> tuple[Path, gpd.GeoDataFrame]:
    """The layer from ``bench/.cache/`` if it is there, else built and written there first."""
    path = CACHE_DIR / f"changzhou_grids_{target}_v{LAYER_VERSION}.gpkg"
    if not path.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        layer = build_layer(target)
        tmp = path.with_suffix(".tmp.gpkg")
        layer.to_file(tmp, layer="grids", driver="GPKG")
        tmp.replace(path)
    return path, gpd.read_file(path, layer="grids")
