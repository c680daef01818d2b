"""The supervisor's view of their people: which grid workers the street has, their load, their phones.

A street's workers are the active grid workers who own a grid of the street's current layer, or
whose account names the street; an admin sees every active grid worker.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from piccolo.query.functions.aggregate import Count

from backend.accounts.principal import Principal
from backend.accounts.tables import Account, Role
from backend.grids.tables import Grid, GridAssignment
from backend.lib.db import as_utc
from backend.sync.tables import SyncHealth
from backend.tasks.tables import OPEN_STATES, TaskState, VisitTask
from backend.workers.schemas import GridWorkloadOut, WorkerOut, WorkerSyncHealthOut

# Overdue means a visit is still owed: a visited task waits on the supervisor, not the worker.
_OWING_VISIT = [TaskState.new, TaskState.accepted, TaskState.returned]


async def street_grid_codes(principal: Principal) -> list[str] | None:
    """The grid codes of the caller's street (current layer); None for an admin (every grid)."""
    if principal.role == Role.admin:
        return None
    if principal.street_id is None:
        return []
    rows = await Grid.select(Grid.code).where(
        Grid.layer._.is_current.eq(True), Grid.community._.parent == principal.street_id
    )
    return sorted({row["code"] for row in rows})


async def _workers(principal: Principal) -> tuple[list[dict[str, Any]], dict[UUID, list[str]]]:
    codes = await street_grid_codes(principal)
    assignments = GridAssignment.select(GridAssignment.worker, GridAssignment.grid_code).where(
        GridAssignment.ended_at.is_null()
    )
    if codes is not None:
        assignments = assignments.where(GridAssignment.grid_code.is_in(codes or ["-"]))
    grids: dict[UUID, list[str]] = defaultdict(list)
    for row in await assignments:
        grids[_uuid(row["worker"])].append(row["grid_code"])
    query = (
        Account.select(Account.id, Account.username, Account.display_name)
        .where(Account.role == Role.grid_worker, Account.is_active.eq(True))
        .order_by(Account.username)
    )
    if codes is not None:
        mine: Any = Account.id.is_in(list(grids) or ["00000000-0000-0000-0000-000000000000"])
        if principal.street_id is not None:
            mine = mine | (Account.street == principal.street_id)
        query = query.where(mine)
    return await query, grids


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


async def list_workers(principal: Principal) -> list[WorkerOut]:
    accounts, grids = await _workers(principal)
    ids = [row["id"] for row in accounts]
    open_counts = await _task_counts(VisitTask.assignee, ids, overdue=False)
    overdue_counts = await _task_counts(VisitTask.assignee, ids, overdue=True)
    return [
        WorkerOut(
            id=row["id"],
            username=row["username"],
            display_name=row["display_name"],
            grids=sorted(grids.get(_uuid(row["id"]), [])),
            open_tasks=open_counts.get(str(row["id"]), 0),
            overdue_tasks=overdue_counts.get(str(row["id"]), 0),
        )
        for row in accounts
    ]


async def _task_counts(column: Any, keys: list[Any], *, overdue: bool) -> dict[str, int]:
    if not keys:
        return {}
    query = VisitTask.select(column.as_alias("key"), Count(alias="n")).where(column.is_in(keys)).group_by(column)
    if overdue:
        query = query.where(VisitTask.state.is_in(_OWING_VISIT), VisitTask.due_at < datetime.now(UTC))
    else:
        query = query.where(VisitTask.state.is_in(list(OPEN_STATES)))
    return {str(row["key"]): row["n"] for row in await query}


async def sync_health(principal: Principal) -> list[WorkerSyncHealthOut]:
    accounts, _ = await _workers(principal)
    ids = [row["id"] for row in accounts]
    reports = {
        str(row["account"]): row
        for row in (await SyncHealth.select().where(SyncHealth.account.is_in(ids)) if ids else [])
    }
    out = []
    for row in accounts:
        report = reports.get(str(row["id"]))
        out.append(
            WorkerSyncHealthOut(
                worker_id=row["id"],
                username=row["username"],
                display_name=row["display_name"],
                pending=report["pending"] if report else 0,
                needs_attention=report["needs_attention"] if report else 0,
                oldest_pending_at=_at(report["oldest_pending_at"]) if report else None,
                last_error=report["last_error"] if report else None,
                reported_at=_at(report["reported_at"]) if report else None,
                last_sync_at=_at(report["last_sync_at"]) if report else None,
            )
        )
    # The phones that need a look first: most items waiting, then the oldest unsent.
    out.sort(key=lambda item: (-(item.pending + item.needs_attention), item.username))
    return out


def _at(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


async def grid_workload(principal: Principal) -> list[GridWorkloadOut]:
    codes = await street_grid_codes(principal)
    if codes is None:
        codes = sorted({row["code"] for row in await Grid.select(Grid.code).where(Grid.layer._.is_current.eq(True))})
    open_counts = await _task_counts(VisitTask.grid_code, codes, overdue=False)
    overdue_counts = await _task_counts(VisitTask.grid_code, codes, overdue=True)
    return [
        GridWorkloadOut(grid_code=code, open=open_counts.get(code, 0), overdue=overdue_counts.get(code, 0))
        for code in codes
    ]
