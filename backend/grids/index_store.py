"""The grid index's classified raster, kept in a file per layer, so a process builds the index in
about a third of the time.

Classifying ~3 million raster cells is most of building the index of a city's 13,000 grids (about
0.4 s of 0.5). Every process that places points builds the index, and a file import is a new
process each time. The file is named by a hash of what the classification depends on (the grids'
codes and geometries as stored, and the index's settings), so a changed layer, or another
database, never finds a stale file. A missing, damaged or foreign file costs one full build and
is replaced; the directory keeps the newest few.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from backend.settings import get_settings
from geo.index import GridIndex

log = logging.getLogger(__name__)

# Raised when what the file holds, or how the index is built, changes.
FORMAT = b"gridaid-index-cells-1"
KEEP = 3  # newest files kept: the current layer and the ones before it (~30 MB each for a city)


def directory() -> Path:
    return get_settings().paths.var_dir / "cache" / "grid-index"


def build(codes: list[str], wkb: list[bytes], geometries: list[shapely.Geometry], *, version: int) -> GridIndex:
    """``GridIndex.build`` of the layer, with its cells from the file when one was kept."""
    path = directory() / f"{_key(codes, wkb)}.npz"
    cells = _read(path)
    if cells is not None:
        with contextlib.suppress(OSError):
            os.utime(path)  # in use: kept by _prune
        try:
            return GridIndex.build(codes, geometries, version=version, cells=cells)
        except ValueError:
            log.warning("grid index cache %s does not fit the layer; building it again", path.name)
    index = GridIndex.build(codes, geometries, version=version)
    _write(path, index)
    return index


def _key(codes: list[str], wkb: list[bytes]) -> str:
    digest = hashlib.sha256(FORMAT)
    for code, geometry in zip(codes, wkb, strict=True):
        digest.update(len(code).to_bytes(4, "big") + code.encode() + len(geometry).to_bytes(8, "big"))
        digest.update(geometry)
    return digest.hexdigest()


def _read(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        log.warning("grid index cache %s is unreadable (%s); building it again", path.name, exc)
        return None


def _write(path: Path, index: GridIndex) -> None:
    """Atomically (another process may be reading the same name), and never failing the caller."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        temporary = Path(name)
        try:
            arrays: dict[str, Any] = index.cells()  # (numpy's stub would read a key as allow_pickle)
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            temporary.replace(path)
        finally:
            temporary.unlink(missing_ok=True)
        _prune(path.parent)
    except OSError as exc:
        log.warning("grid index cache not written (%s): the next process builds the index again", exc)


def _prune(folder: Path) -> None:
    kept = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
