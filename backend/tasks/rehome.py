"""After a new grid layer: open tasks follow their household to its new grid and that grid's worker."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from uuid import UUID

from backend.grids.tables import GridAssignment
from backend.notifications.services import notify
from backend.tasks.events import add_events, task_changed
from backend.tasks.tables import OPEN_STATES, VisitTask


async def rehome_open_tasks(household_ids: list[UUID] | None = None) -> int:
    """Move open tasks whose household changed grid (all, or those of ``household_ids``); in the
    caller's transaction. Returns how many moved."""
    query = VisitTask.select(
        VisitTask.id,
        VisitTask.grid_code,
        VisitTask.assignee,
        VisitTask.household.grid_code.as_alias("now_grid"),
        VisitTask.household.street.as_alias("now_street"),
    ).where(VisitTask.state.is_in(list(OPEN_STATES)))
    if household_ids is not None:
        query = query.where(VisitTask.household.is_in(household_ids or [UUID(int=0)]))
    rows = await query
    moved = [row for row in rows if row["grid_code"] != row["now_grid"]]
    if not moved:
        return 0
    codes = sorted({row["now_grid"] for row in moved if row["now_grid"]})
    owners = {
        row["grid_code"]: row["worker"]
        for row in await GridAssignment.select(GridAssignment.grid_code, GridAssignment.worker).where(
            GridAssignment.grid_code.is_in(codes or ["-"]), GridAssignment.ended_at.is_null()
        )
    }
    now = datetime.now(UTC)
    gained: dict[UUID, int] = defaultdict(int)
    lost: dict[UUID, int] = defaultdict(int)
    for row in moved:
        owner = owners.get(row["now_grid"]) if row["now_grid"] else None
        await VisitTask.update(
            {
                VisitTask.grid_code: row["now_grid"],
                VisitTask.street: row["now_street"],
                VisitTask.assignee: owner,
                VisitTask.updated_at: now,
            }
        ).where(VisitTask.id == row["id"])
        await add_events(
            [
                (
                    row["id"],
                    None,
                    "regridded",
                    {"from_grid": row["grid_code"], "to_grid": row["now_grid"], "to": str(owner) if owner else None},
                )
            ]
        )
        if owner != row["assignee"]:
            await task_changed(row["id"], upsert_for=[owner], remove_for=[row["assignee"]])
            if owner:
                gained[owner] += 1
            if row["assignee"]:
                lost[row["assignee"]] += 1
        else:
            await task_changed(row["id"], upsert_for=[owner])
    for worker, count in gained.items():
        await notify(
            [worker],
            kind="task.assigned",
            title_zh=f"网格调整后，{count} 个走访任务转给了您",
            title_en=f"After the grid map changed, {count} visit tasks moved to you",
            detail={"tasks": count},
        )
    for worker, count in lost.items():
        await notify(
            [worker],
            kind="task.reassigned_away",
            title_zh=f"网格调整后，您有 {count} 个走访任务转给他人",
            title_en=f"After the grid map changed, {count} of your visit tasks moved away",
            detail={"tasks": count},
        )
    return len(moved)
