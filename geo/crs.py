"""The coordinate systems a grid file or a point may come in, and the one way to WGS84.

GridAid stores everything in WGS84 (EPSG:4326, longitude/latitude). What arrives is one of:

- WGS84: phones' GPS, OpenStreetMap, most GIS exports labelled EPSG:4326;
- GCJ-02: Amap and Tencent web maps. PROJ does not know it; ``geo.gcj02`` implements it. Files in
  GCJ-02 are almost always *labelled* EPSG:4326, which is why the caller has to say so;
- CGCS2000 geographic (EPSG:4490), the national surveying datum, within centimetres of WGS84;
- CGCS2000 Gauss-Krüger projections (EPSG:4491-4554), what a city's surveying office hands over.

The caller names the CRS as ``wgs84``, ``gcj02``, ``cgcs2000`` or an EPSG code (``EPSG:4549``,
``4549``); ``parse_crs`` turns that into a ``CrsSpec``, and ``to_wgs84`` / ``geometries_to_wgs84``
do the conversion, vectorised. Areas and distances are measured in ``metric_crs_for``: a Lambert
azimuthal equal-area projection centred on the data, exact for areas and good to well under 0.1 %
for distances across a city.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, overload

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pyproj
import shapely
from pyproj.exceptions import CRSError as PyprojCRSError

from geo.gcj02 import gcj02_to_wgs84

FloatArray = npt.NDArray[np.float64]
GeometryArray = npt.NDArray[np.object_]

WGS84_EPSG = 4326
CGCS2000_EPSG = 4490


class CrsError(ValueError):
    """The caller named a coordinate system GridAid does not know."""


@dataclass(frozen=True)
class CrsSpec:
    """A coordinate system a file or point is in.

    ``name`` is for people (``WGS84``, ``GCJ-02``, ``CGCS2000``, ``EPSG:4549``, or the name a file's
    own definition gives). ``definition`` is what pyproj takes (``EPSG:4549`` or WKT); GCJ-02 has none.
    """

    name: str
    is_gcj02: bool = False
    definition: str | None = None

    @property
    def is_wgs84(self) -> bool:
        return self.definition == f"EPSG:{WGS84_EPSG}"

    @property
    def epsg(self) -> int | None:
        if self.definition and self.definition.startswith("EPSG:"):
            return int(self.definition.removeprefix("EPSG:"))
        return None

    @property
    def pyproj_crs(self) -> pyproj.CRS:
        """The pyproj CRS; GCJ-02 has none of its own and is presented as what it claims to be, WGS84."""
        return _pyproj_crs(self.definition or f"EPSG:{WGS84_EPSG}")

    @property
    def is_geographic(self) -> bool:
        return self.is_gcj02 or bool(self.pyproj_crs.is_geographic)

    def __str__(self) -> str:
        return self.name

    @classmethod
    def from_pyproj(cls, crs: Any) -> CrsSpec:
        """The spec for a CRS read from a file (a pyproj CRS, WKT, or anything pyproj accepts)."""
        try:
            parsed = pyproj.CRS.from_user_input(crs)
        except PyprojCRSError as exc:
            raise CrsError(f"Unknown coordinate system in the file: {exc}") from exc
        epsg = parsed.to_epsg(min_confidence=70)
        if epsg is not None:
            return _from_epsg(epsg)
        return cls(name=parsed.name or "custom CRS", definition=parsed.to_wkt())


WGS84 = CrsSpec("WGS84", definition=f"EPSG:{WGS84_EPSG}")
GCJ02 = CrsSpec("GCJ-02", is_gcj02=True)
CGCS2000 = CrsSpec("CGCS2000", definition=f"EPSG:{CGCS2000_EPSG}")

_ALIASES: dict[str, CrsSpec] = {
    "wgs84": WGS84,
    "wgs-84": WGS84,
    "wgs 84": WGS84,
    "gcj02": GCJ02,
    "gcj-02": GCJ02,
    "gcj": GCJ02,
    "cgcs2000": CGCS2000,
    "cgcs-2000": CGCS2000,
}
_ACCEPTED = "wgs84, gcj02, cgcs2000 or an EPSG code such as EPSG:4549"


def parse_crs(spec: str | int | CrsSpec | None) -> CrsSpec:
    """``wgs84``, ``gcj02``, ``cgcs2000``, ``EPSG:4549``, ``4549`` or 4549 (any case); None is WGS84."""
    if spec is None:
        return WGS84
    if isinstance(spec, CrsSpec):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, str | int):
        raise CrsError(f"A coordinate system must be given as {_ACCEPTED}, not {spec!r}")
    if isinstance(spec, int):
        return _from_epsg(spec)
    text = spec.strip().casefold()
    if text in _ALIASES:
        return _ALIASES[text]
    if text in {"bd09", "bd-09", "baidu"}:
        raise CrsError("BD-09 (Baidu) coordinates are not supported: convert them to GCJ-02 first")
    code = text.removeprefix("epsg:").removeprefix(":").strip()
    if code.isdigit():
        return _from_epsg(int(code))
    raise CrsError(f"Unknown coordinate system {spec!r}: use {_ACCEPTED}")


def _from_epsg(code: int) -> CrsSpec:
    if code == WGS84_EPSG:
        return WGS84
    if code == CGCS2000_EPSG:
        return CGCS2000
    definition = f"EPSG:{code}"
    try:
        crs = _pyproj_crs(definition)
    except PyprojCRSError as exc:
        raise CrsError(f"Unknown coordinate system EPSG:{code}: PROJ has no such code") from exc
    if not (crs.is_geographic or crs.is_projected):
        raise CrsError(f"EPSG:{code} ({crs.name}) is not a horizontal coordinate system: use {_ACCEPTED}")
    return CrsSpec(definition, definition=definition)


@functools.lru_cache(maxsize=64)
def _pyproj_crs(definition: str) -> pyproj.CRS:
    return pyproj.CRS.from_user_input(definition)


@functools.lru_cache(maxsize=64)
def _transformer(source: str, target: str) -> pyproj.Transformer:
    # pyproj (>= 3.1) transformers are safe to share between threads.
    return pyproj.Transformer.from_crs(_pyproj_crs(source), _pyproj_crs(target), always_xy=True)


def _transform_xy(x: FloatArray, y: FloatArray, spec: CrsSpec) -> tuple[FloatArray, FloatArray]:
    if spec.is_gcj02:
        lon, lat = gcj02_to_wgs84(x, y)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    if spec.is_wgs84 or spec.definition is None:
        return x.astype(float, copy=True), y.astype(float, copy=True)
    lon, lat = _transformer(spec.definition, f"EPSG:{WGS84_EPSG}").transform(x, y, errcheck=False)
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)


@overload
def to_wgs84(x: float, y: float, spec: str | int | CrsSpec | None) -> tuple[float, float]: ...
@overload
def to_wgs84(x: npt.ArrayLike, y: npt.ArrayLike, spec: str | int | CrsSpec | None) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(x: npt.ArrayLike, y: npt.ArrayLike, spec: str | int | CrsSpec | None) -> tuple[Any, Any]:
    """Coordinates in ``spec`` (x = easting or longitude) to WGS84 (longitude, latitude).

    Vectorised; NaN stays NaN, and a point the projection cannot invert comes back as inf.
    Scalars in give floats out.
    """
    crs = parse_crs(spec)
    x_a, y_a = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    lon = np.full(x_a.shape, np.nan)
    lat = np.full(x_a.shape, np.nan)
    finite = np.isfinite(x_a) & np.isfinite(y_a)
    lon[finite], lat[finite] = _transform_xy(x_a[finite], y_a[finite], crs)
    if lon.ndim == 0:
        return float(lon), float(lat)
    return lon, lat


def _as_geometry_array(geoms: gpd.GeoSeries | Iterable[Any]) -> GeometryArray:
    if isinstance(geoms, gpd.GeoSeries):
        return np.asarray(geoms.values, dtype=object)
    return np.asarray(list(geoms), dtype=object)


def transform_geometries(geoms: GeometryArray, fn: Any) -> GeometryArray:
    """Apply ``fn(x, y) -> (x, y)`` to every vertex of every geometry in one vectorised call; 2D out."""

    def apply(coords: FloatArray) -> FloatArray:
        new_x, new_y = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(new_x, dtype=float), np.asarray(new_y, dtype=float)])

    return np.asarray(shapely.transform(geoms, apply, include_z=False), dtype=object)


def geometries_to_wgs84(geoms: gpd.GeoSeries | Iterable[Any], spec: str | int | CrsSpec | None) -> gpd.GeoSeries:
    """Geometries in ``spec`` as a 2D GeoSeries in EPSG:4326 (a GeoSeries keeps its index)."""
    crs = parse_crs(spec)
    array = _as_geometry_array(geoms)
    if crs.is_wgs84:
        converted = np.asarray(shapely.force_2d(array), dtype=object)
    else:
        converted = transform_geometries(array, lambda x, y: to_wgs84(x, y, crs))
    index = geoms.index if isinstance(geoms, gpd.GeoSeries) else None
    return gpd.GeoSeries(converted, index=index, crs=f"EPSG:{WGS84_EPSG}")


def metric_crs_for(geoms: gpd.GeoSeries | Iterable[Any]) -> pyproj.CRS:
    """An equal-area CRS (Lambert azimuthal, metres) centred on WGS84 ``geoms``, for areas and distances.

    Geometries with non-finite or out-of-range coordinates are ignored when finding the centre.
    """
    array = _as_geometry_array(geoms)
    coords, index = shapely.get_coordinates(array, return_index=True)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(coords).all(axis=1) | (np.abs(coords[:, 0]) > 180) | (np.abs(coords[:, 1]) > 90)
    # GEOS bounds skip NaN, so leave out every geometry with a bad vertex, not just the bad vertices.
    good = coords[~np.isin(index, index[bad])]
    if not len(good):
        lon0, lat0 = 0.0, 0.0
    else:
        lon0 = (good[:, 0].min() + good[:, 0].max()) / 2.0
        lat0 = (good[:, 1].min() + good[:, 1].max()) / 2.0
    return _laea(round(lon0, 4), round(lat0, 4))


@functools.lru_cache(maxsize=64)
def _laea(lon0: float, lat0: float) -> pyproj.CRS:
    if not (math.isfinite(lon0) and math.isfinite(lat0)):
        lon0, lat0 = 0.0, 0.0
    return pyproj.CRS.from_proj4(f"+proj=laea +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m +no_defs")


def project_wgs84(geoms: gpd.GeoSeries | Iterable[Any], crs: pyproj.CRS) -> GeometryArray:
    """WGS84 geometries into ``crs`` (e.g. ``metric_crs_for``), as a 2D shapely array."""
    transformer = _transformer(f"EPSG:{WGS84_EPSG}", crs.to_wkt())
    return transform_geometries(_as_geometry_array(geoms), lambda x, y: transformer.transform(x, y, errcheck=False))
