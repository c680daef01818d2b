"""WGS84 <-> GCJ-02, the obfuscated datum of Chinese web maps (Amap, Tencent; Baidu adds BD-09 on top).

PROJ does not know GCJ-02: it is a published-by-leak closed formula (a smooth offset of a few hundred
metres that depends on the WGS84 position), not a datum shift with parameters. This module is the
one place that implements it.

- ``wgs84_to_gcj02`` is the closed formula.
- ``gcj02_to_wgs84`` has no closed form: it is a fixed-point iteration that stops once the forward
  transform of its answer is within ``INVERSE_TOLERANCE_M`` (1 mm, well under the 1 cm we promise) of
  the input, or after ``MAX_ITERATIONS``. The offset changes by well under 1 % per metre, so each step
  gains about two orders of magnitude; four or five steps are typical.
- Outside the usual rough bounding box of China (``in_china``) both are the identity, as every map
  vendor does it. Near that box's edge a GCJ-02 point may have no exact preimage; such points get the
  iteration's best answer.

Both functions take scalars or array-likes (broadcast together) and return float for scalar input,
numpy arrays otherwise. Coordinates are (longitude, latitude) in degrees, in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import numpy as np
import numpy.typing as npt
import shapely

# Krasovsky 1940, which the GCJ-02 formula is written against.
_A = 6378245.0
_EE = 0.00669342162296594323

CHINA_MIN_LON, CHINA_MAX_LON = 72.004, 137.8347
CHINA_MIN_LAT, CHINA_MAX_LAT = 0.8293, 55.8271

INVERSE_TOLERANCE_M = 1e-3
MAX_ITERATIONS = 30
_METRES_PER_DEGREE = 111_320.0

FloatArray = npt.NDArray[np.float64]
Coordinate = float | FloatArray
_G = TypeVar("_G", bound=shapely.Geometry)


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """The rough box inside which GCJ-02 applies (the same test every implementation uses)."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    lon_ok = (lon_a >= CHINA_MIN_LON) & (lon_a <= CHINA_MAX_LON)
    return lon_ok & (lat_a >= CHINA_MIN_LAT) & (lat_a <= CHINA_MAX_LAT)


def _offset_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    result = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    result += (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)) * 2.0 / 3.0
    result += (20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi / 3.0 * y)) * 2.0 / 3.0
    result += (160.0 * np.sin(np.pi / 12.0 * y) + 320.0 * np.sin(np.pi / 30.0 * y)) * 2.0 / 3.0
    return result


def _offset_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    result = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    result += (20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)) * 2.0 / 3.0
    result += (20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi / 3.0 * x)) * 2.0 / 3.0
    result += (150.0 * np.sin(np.pi / 12.0 * x) + 300.0 * np.sin(np.pi / 30.0 * x)) * 2.0 / 3.0
    return result


def _shift(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """The GCJ-02 offset (degrees) at a WGS84 position, everywhere (no China test)."""
    d_lat = _offset_lat(lon - 105.0, lat - 35.0)
    d_lon = _offset_lon(lon - 105.0, lat - 35.0)
    rad_lat = np.radians(lat)
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return d_lon, d_lat


def _as_arrays(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return lon_a, lat_a


def _out(value: FloatArray) -> Coordinate:
    return float(value) if value.ndim == 0 else value


def _gap_m(lon_a: FloatArray, lat_a: FloatArray, lon_b: FloatArray, lat_b: FloatArray) -> FloatArray:
    """Distance in metres on a local plane: plenty for deciding convergence at the millimetre level."""
    d_lat = (lat_a - lat_b) * _METRES_PER_DEGREE
    d_lon = (lon_a - lon_b) * _METRES_PER_DEGREE * np.cos(np.radians(lat_b))
    return np.hypot(d_lon, d_lat)


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Any, Any]: ...
def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Any, Any]:
    """WGS84 (what a phone's GPS reports) to GCJ-02 (what Amap shows)."""
    lon_a, lat_a = _as_arrays(lon, lat)
    d_lon, d_lat = _shift(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return _out(np.where(inside, lon_a + d_lon, lon_a)), _out(np.where(inside, lat_a + d_lat, lat_a))


@overload
def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Any, Any]: ...
def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[Any, Any]:
    """GCJ-02 to WGS84, iterated until ``wgs84_to_gcj02`` of the answer is within 1 mm of the input."""
    gcj_lon, gcj_lat = _as_arrays(lon, lat)
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    inside = in_china(gcj_lon, gcj_lat)
    wgs_lon[inside], wgs_lat[inside] = _invert(gcj_lon[inside], gcj_lat[inside])
    return _out(wgs_lon), _out(wgs_lat)


def _invert(gcj_lon: FloatArray, gcj_lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    wgs_lon, wgs_lat = gcj_lon, gcj_lat
    for _ in range(MAX_ITERATIONS):
        d_lon, d_lat = _shift(wgs_lon, wgs_lat)
        if np.all(_gap_m(wgs_lon + d_lon, wgs_lat + d_lat, gcj_lon, gcj_lat) < INVERSE_TOLERANCE_M):
            break
        # Fixed point of w = g - shift(w): the shift barely changes between nearby points.
        wgs_lon, wgs_lat = gcj_lon - d_lon, gcj_lat - d_lat
    return wgs_lon, wgs_lat


def transform_geometry(geom: _G, fn: Callable[[FloatArray, FloatArray], tuple[Any, Any]]) -> _G:
    """Apply ``fn(lon, lat) -> (lon, lat)`` (e.g. ``gcj02_to_wgs84``) to every vertex of a shapely geometry.

    The result is 2D: grid and boundary files are flat, and GCJ-02 says nothing about height.
    """

    def apply(coords: FloatArray) -> FloatArray:
        new_lon, new_lat = fn(coords[:, 0], coords[:, 1])
        return np.column_stack([np.asarray(new_lon, dtype=float), np.asarray(new_lat, dtype=float)])

    return shapely.transform(geom, apply)
