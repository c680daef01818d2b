"""Grid layers and who owns each grid: installing a new layer version, assigning grid workers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import shapely
from shapely.geometry import MultiPolygon, Polygon

from backend.accounts.tables import Account, Role
from backend.audit.services import Actor, record
from backend.grids.tables import Grid, GridAssignment, GridVersion
from backend.lib.db import write_transaction
from backend.lib.errors import InvalidInput, NotFound
from backend.orgs.tables import OrgLevel, OrgUnit
from backend.sync.services import record_changes

# Rows per INSERT: keeps every statement under SQLite's bound-parameter limit.
_INSERT_BATCH = 500


@dataclass(frozen=True)
class GridFeature:
    """One grid of a layer to install. ``geometry`` is in WGS84 (lon/lat)."""

    code: str
    name: str
    community_code: str
    geometry: Polygon | MultiPolygon


# ---------------------------------------------------------------------------------------------
# Installing a layer


async def install_grid_layer(features: list[GridFeature], *, source: str, actor: Actor) -> int:
    """Install ``features`` as a new current layer version, atomically; return its number.

    The previous layer stays for history (not current). Assignments are keyed by grid code, so
    a grid that keeps its code across versions keeps its worker.
    """
    _check_features(features)
    async with write_transaction():
        communities = await _community_ids({feature.community_code for feature in features})
        number = await _next_version_number()
        # First: the partial unique index allows one current row at a time.
        await GridVersion.update({GridVersion.is_current: False}).where(GridVersion.is_current.eq(True))
        version_id = await _create_version(number, source, actor, features, communities)
        await _insert_grids(version_id, features, communities)
        await GridVersion.update({GridVersion.is_current: True}).where(GridVersion.id == version_id)
        await record(
            "grids.install",
            actor=actor,
            object_type="grid_version",
            object_id=str(number),
            detail={"grids": len(features), "source": source},
        )
    return number


def _check_features(features: list[GridFeature]) -> None:
    if not features:
        raise InvalidInput("A grid layer needs at least one grid", "网格图层至少需要一个网格", code="grids.empty")
    codes = [feature.code for feature in features]
    if len(set(codes)) != len(codes):
        raise InvalidInput("Grid codes must be unique", "网格编码不能重复", code="grids.duplicate_code")
    for feature in features:
        geometry = feature.geometry
        if not isinstance(geometry, Polygon | MultiPolygon) or geometry.is_empty or not geometry.is_valid:
            raise InvalidInput(
                f"Grid {feature.code}: geometry must be a valid polygon",
                f"网格 {feature.code} 的边界不是有效的面",
                code="grids.invalid_geometry",
            )


async def _community_ids(codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    rows = await OrgUnit.select(OrgUnit.id, OrgUnit.code).where(
        OrgUnit.code.is_in(wanted), OrgUnit.level == OrgLevel.community
    )
    found = {row["code"]: row["id"] for row in rows}
    missing = [code for code in wanted if code not in found]
    if missing:
        raise InvalidInput(
            f"Unknown community codes: {', '.join(missing[:10])}",
            f"社区编码不存在：{'、'.join(missing[:10])}",
            code="grids.unknown_community",
        )
    return found


async def _next_version_number() -> int:
    row = await GridVersion.select(GridVersion.number).order_by(GridVersion.number, ascending=False).first()
    return (row["number"] if row else 0) + 1


async def _create_version(
    number: int, source: str, actor: Actor, features: list[GridFeature], communities: dict[str, int]
) -> int:
    await GridVersion.insert(
        GridVersion(
            number=number,
            source=source[:255],
            imported_by=UUID(actor.account_id) if actor.account_id else None,
            is_current=False,
            report={"grids": len(features), "communities": len(communities)},
        )
    )
    row = await GridVersion.select(GridVersion.id).where(GridVersion.number == number).first()
    assert row is not None
    return int(row["id"])


async def _insert_grids(version_id: int, features: list[GridFeature], communities: dict[str, int]) -> None:
    rows = [_grid_row(version_id, feature, communities[feature.community_code]) for feature in features]
    for start in range(0, len(rows), _INSERT_BATCH):
        await Grid.insert(*rows[start : start + _INSERT_BATCH])


def _grid_row(version_id: int, feature: GridFeature, community_id: int) -> Grid:
    min_lon, min_lat, max_lon, max_lat = feature.geometry.bounds
    return Grid(
        layer=version_id,
        code=feature.code,
        name=feature.name,
        community=community_id,
        geometry=shapely.to_wkb(feature.geometry),
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
    )


# ---------------------------------------------------------------------------------------------
# Assigning grid workers


async def assign_worker(grid_code: str, worker_id: UUID, *, actor: Actor, reason: str = "") -> None:
    """Make ``worker_id`` the owner of ``grid_code``: close the open assignment, open a new one.

    Assigning a grid to the worker who already owns it changes nothing (and logs nothing).
    """
    async with write_transaction():
        await _check_grid_in_current_layer(grid_code)
        await _check_is_grid_worker(worker_id)
        current = await _open_assignment(grid_code)
        if current is not None and current["worker"] == worker_id:
            return
        now = datetime.now(UTC)
        if current is not None:
            await GridAssignment.update({GridAssignment.ended_at: now}).where(GridAssignment.id == current["id"])
        await GridAssignment.insert(
            GridAssignment(
                grid_code=grid_code,
                worker=worker_id,
                started_at=now,
                assigned_by=UUID(actor.account_id) if actor.account_id else None,
                reason=reason[:255],
            )
        )
        # Both phones must refetch their grid map: one gained a grid, the other lost it.
        await record_changes(
            (account, "grids", grid_code, "upsert")
            for account in (worker_id, current["worker"] if current else None)
            if account
        )
        await record(
            "grids.assign",
            actor=actor,
            object_type="grid",
            object_id=grid_code,
            detail={
                "worker": str(worker_id),
                "previous_worker": str(current["worker"]) if current else None,
                "reason": reason,
            },
        )


async def _check_grid_in_current_layer(grid_code: str) -> None:
    exists = await Grid.exists().where(Grid.code == grid_code, Grid.layer._.is_current.eq(True))
    if not exists:
        raise NotFound("No such grid in the current layer", "当前网格图层中没有该网格", code="grids.not_found")


async def _check_is_grid_worker(worker_id: UUID) -> None:
    row = await Account.select(Account.role, Account.is_active).where(Account.id == worker_id).first()
    if row is None or row["role"] != Role.grid_worker.value or not row["is_active"]:
        raise InvalidInput(
            "Only an active grid worker can own a grid", "只能指派在岗的网格员", code="grids.not_a_grid_worker"
        )


async def _open_assignment(grid_code: str) -> dict[str, Any] | None:
    return (
        await GridAssignment.select(GridAssignment.id, GridAssignment.worker)
        .where(GridAssignment.grid_code == grid_code, GridAssignment.ended_at.is_null())
        .first()
    )
