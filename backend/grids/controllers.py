from __future__ import annotations

import hashlib
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import shapely
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_304_NOT_MODIFIED, HTTP_422_UNPROCESSABLE_ENTITY
from piccolo.query.functions.aggregate import Count

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.grids import index_cache
from backend.grids.importer import ImportOptions, import_grid_file
from backend.grids.placement import place_points
from backend.grids.schemas import (
    GridCollection,
    GridFeatureOut,
    GridProperties,
    ImportReportOut,
    LocatedPoint,
    LocateIn,
    LocateOut,
    UnplacedHousehold,
    VersionOut,
)
from backend.grids.tables import Grid, GridAssignment, GridVersion
from backend.households.tables import Household, PlacementFlag
from backend.lib.errors import InvalidInput
from geo.crs import CrsError, parse_crs, to_wgs84
from geo.reader import ReadError

MAX_IMPORT_BYTES = 200 * 1024 * 1024


def _scoped_grids(principal: Principal) -> Any:
    query = (
        Grid.select(
            Grid.code,
            Grid.name,
            Grid.geometry,
            Grid.community.code.as_alias("community_code"),
            Grid.community.name.as_alias("community_name"),
            Grid.layer.number.as_alias("version"),
        )
        .where(Grid.layer._.is_current.eq(True))
        .order_by(Grid.code)
    )
    match principal.role:
        case Role.grid_worker:
            return query.where(Grid.code.is_in(sorted(principal.grid_codes) or ["-"]))
        case Role.supervisor:
            return query.where(Grid.community._.parent == principal.street_id)
        case _:
            return query


async def grids_of(principal: Principal) -> GridCollection:
    """The caller's grids as a GeoJSON FeatureCollection (also sent by sync when they change)."""
    return grid_collection(await _scoped_grids(principal))


def grid_collection(rows: list[dict[str, Any]]) -> GridCollection:
    geojson = shapely.to_geojson(shapely.from_wkb([bytes(row["geometry"]) for row in rows])) if rows else []
    return GridCollection(
        features=[
            GridFeatureOut(
                id=row["code"],
                properties=GridProperties(
                    code=row["code"],
                    name=row["name"],
                    community_code=row["community_code"],
                    community_name=row["community_name"],
                    version=row["version"],
                ),
                geometry=_raw(text),
            )
            for row, text in zip(rows, geojson, strict=True)
        ]
    )


class GridController(Controller):
    path = "/api/v1/grids"
    tags = ["grids"]

    @get("/", operation_id="listGrids", opt=roles(Role.grid_worker, Role.supervisor, Role.admin))
    async def list_grids(self, request: Request[Principal, Any, Any]) -> Response[Any]:
        """The caller's grids as GeoJSON (WGS84). The ETag changes when the layer or the caller's grids do."""
        rows = await _scoped_grids(request.user)
        fingerprint = "|".join(f"{row['version']}:{row['code']}" for row in rows)
        etag = '"' + hashlib.sha256(fingerprint.encode()).hexdigest()[:32] + '"'
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        body = grid_collection(rows)
        return Response(body, media_type="application/geo+json", headers={"ETag": etag})

    @post(
        "/locate",
        operation_id="locatePoints",
        status_code=HTTP_200_OK,
        opt=roles(Role.grid_worker, Role.supervisor, Role.admin),
    )
    async def locate(self, data: JSONBody[LocateIn]) -> LocateOut:
        try:
            spec = parse_crs(data.crs)
        except CrsError as exc:
            raise InvalidInput(str(exc), "坐标系不正确", code="grids.crs_invalid") from exc
        coords = np.asarray(data.points, dtype=float)
        lons, lats = to_wgs84(coords[:, 0], coords[:, 1], spec)
        layer = await index_cache.current_layer()
        if layer is None:
            raise InvalidInput("No grid map has been imported yet", "尚未导入网格图层", code="grids.no_layer")
        placements = place_points(layer, np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        codes = sorted({p.grid_code for p in placements if p.grid_code})
        workers = await _owners(codes)
        names = {
            row["code"]: row["name"]
            for row in await Grid.select(Grid.code, Grid.name).where(
                Grid.code.is_in(codes or ["-"]), Grid.layer._.is_current.eq(True)
            )
        }
        return LocateOut(
            version=layer.version,
            results=[
                LocatedPoint(
                    grid_code=p.grid_code,
                    grid_name=names.get(p.grid_code) if p.grid_code else None,
                    flag=p.flag.value,  # type: ignore[arg-type]
                    distance_m=round(p.distance_m, 1) if p.grid_code else None,
                    worker_id=workers.get(p.grid_code, (None, None))[0] if p.grid_code else None,
                    worker_name=workers.get(p.grid_code, (None, None))[1] if p.grid_code else None,
                )
                for p in placements
            ],
        )

    @get("/unplaced", operation_id="listUnplacedHouseholds", opt=roles(Role.supervisor, Role.admin))
    async def unplaced(self, request: Request[Principal, Any, Any]) -> list[UnplacedHousehold]:
        """Households no grid contains: the street supervisor places them (nearest street), admins see all."""
        query = Household.select(
            Household.id, Household.code, Household.head_name, Household.address, Household.lon, Household.lat
        ).where(Household.placement == PlacementFlag.unplaced)
        if request.user.role == Role.supervisor:
            query = query.where(Household.street == request.user.street_id)
        rows = await query.order_by(Household.code).limit(500)
        return [
            UnplacedHousehold(
                id=str(row["id"]),
                code=row["code"],
                head_name=row["head_name"],
                address=row["address"],
                lon=row["lon"],
                lat=row["lat"],
            )
            for row in rows
        ]

    @get("/versions", operation_id="listGridVersions", opt=roles(Role.admin))
    async def versions(self) -> list[VersionOut]:
        rows = await GridVersion.select(
            GridVersion.id, GridVersion.number, GridVersion.source, GridVersion.imported_at, GridVersion.is_current
        ).order_by(GridVersion.number)
        counts = {
            row["layer"]: row["count"]
            for row in await Grid.select(Grid.layer, Count(alias="count")).group_by(Grid.layer)
        }
        return [
            VersionOut(
                number=row["number"],
                source=row["source"],
                imported_at=row["imported_at"],
                is_current=row["is_current"],
                grids=counts.get(row["id"], 0),
            )
            for row in rows
        ]

    @post(
        "/import",
        operation_id="importGrids",
        opt=roles(Role.admin),
        request_max_body_size=MAX_IMPORT_BYTES,
        status_code=HTTP_200_OK,
    )
    async def import_grids(
        self,
        request: Request[Principal, Any, Any],
        data: Annotated[ImportForm, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> Response[ImportReportOut]:
        """Upload a GeoJSON, GeoPackage, FlatGeobuf or a zipped Shapefile. Same report as the CLI."""
        name = Path(data.file.filename or "upload").name
        with tempfile.TemporaryDirectory(prefix="gridaid-import-") as folder:
            path = await _save_upload(data.file, Path(folder))
            try:
                outcome = await import_grid_file(
                    path,
                    ImportOptions(
                        layer=data.layer,
                        crs=data.crs,
                        encoding=data.encoding,
                        code_field=data.code_field,
                        name_field=data.name_field,
                        parent_field=data.parent_field,
                        fix=data.fix,
                        dry_run=data.dry_run,
                        force=data.force,
                    ),
                    actor=request.user.actor,
                    source=name,
                )
            except ReadError as exc:
                # Name the file as the person knows it, never our temporary path.
                def named(text: str) -> str:
                    return text.replace(str(path), name).replace(path.name, name).replace(folder, "")

                raise InvalidInput(named(exc.message), named(exc.message_zh), code=exc.code) from exc
        status = HTTP_422_UNPROCESSABLE_ENTITY if outcome.has_errors and not outcome.written else HTTP_200_OK
        return Response(ImportReportOut(report=outcome.to_json()), status_code=status)


@dataclass
class ImportForm:
    file: UploadFile
    crs: str | None = None
    layer: str | None = None
    encoding: str | None = None
    code_field: str | None = None
    name_field: str | None = None
    parent_field: str | None = None
    fix: bool = False
    dry_run: bool = False
    force: bool = False


_ALLOWED_SUFFIXES = {".geojson", ".json", ".gpkg", ".fgb", ".zip"}


async def _save_upload(upload: UploadFile, folder: Path) -> Path:
    # Never trust the client's file name as a path: keep only its suffix.
    suffix = Path(upload.filename or "").suffix.lower()
    if suffix not in _ALLOWED_SUFFIXES:
        raise InvalidInput(
            "Upload a .geojson, .gpkg, .fgb, or a .zip holding a Shapefile",
            "请上传 .geojson、.gpkg、.fgb 文件，或打包成 .zip 的 Shapefile",
            code="grids.upload_type",
        )
    target = folder / f"upload{suffix}"
    target.write_bytes(await upload.read())
    if suffix != ".zip":
        return target
    return _unzip_shapefile(target, folder / "unzipped")


def _unzip_shapefile(archive: Path, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(archive) as bundle:
            members = [m for m in bundle.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > 4 * MAX_IMPORT_BYTES:
                raise InvalidInput("The zip unpacks too large", "压缩包解压后过大", code="grids.upload_too_large")
            folder.mkdir()
            for member in members:
                name = Path(member.filename).name  # flatten: no paths from the archive
                (folder / name).write_bytes(bundle.read(member))
    except zipfile.BadZipFile as exc:
        raise InvalidInput("The zip file is damaged", "压缩包已损坏", code="grids.upload_corrupt") from exc
    shapefiles = sorted(folder.glob("*.shp"))
    if len(shapefiles) != 1:
        raise InvalidInput(
            "The zip must hold exactly one .shp with its .dbf/.shx/.prj/.cpg",
            "压缩包内须恰好包含一个 .shp 及其配套文件",
            code="grids.upload_shapefile",
        )
    return shapefiles[0]


async def _owners(codes: list[str]) -> dict[str, tuple[str, str]]:
    if not codes:
        return {}
    rows = await GridAssignment.select(
        GridAssignment.grid_code, GridAssignment.worker, GridAssignment.worker.display_name.as_alias("name")
    ).where(GridAssignment.grid_code.is_in(codes), GridAssignment.ended_at.is_null())
    return {row["grid_code"]: (str(row["worker"]), row["name"]) for row in rows}


def _raw(text: str) -> Any:
    import msgspec

    return msgspec.Raw(text.encode())
