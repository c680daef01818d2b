"""Delta sync for phones: what changed for this account since the device's cursor."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.params import Parameter

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.grids.controllers import grids_of
from backend.grids.schemas import GridCollection
from backend.notifications.schemas import NotificationOut, notification_out
from backend.notifications.tables import Notification
from backend.sync.tables import SyncChange
from backend.tasks.queries import TASK_COLUMNS, tasks_out
from backend.tasks.schemas import TaskOut
from backend.tasks.tables import OPEN_STATES, VisitTask

PAGE = 1000


class SyncOut(msgspec.Struct):
    cursor: int
    full: bool
    more: bool
    tasks: list[TaskOut]
    removed_tasks: list[str]
    notifications: list[NotificationOut]
    # Set when the caller's grids (or the layer) changed since the cursor, and on a full snapshot:
    # the caller's grids as GeoJSON, so the phone's map never shows a grid it no longer owns.
    grids_changed: bool
    grids: GridCollection | None = None


class SyncController(Controller):
    path = "/api/v1/sync"
    tags = ["sync"]
    opt = roles(*ALL_ROLES)

    @get("/", operation_id="sync")
    async def sync(self, request: Request[Principal, Any, Any], cursor: Annotated[int, Parameter(ge=0)] = 0) -> SyncOut:
        """``cursor=0`` (a new device) gets a full snapshot: the open tasks assigned to the caller, their
        households masked, the latest notifications. Later calls get only what changed, in order."""
        me = request.user.account_id
        latest = (
            await SyncChange.select(SyncChange.id)
            .where(SyncChange.account == me)
            .order_by(SyncChange.id, ascending=False)
            .first()
        )
        head = latest["id"] if latest else 0
        if cursor == 0 or cursor > head:
            return await _snapshot(request.user, head)
        changes = (
            await SyncChange.select()
            .where(SyncChange.account == me, SyncChange.id > cursor)
            .order_by(SyncChange.id)
            .limit(PAGE)
        )
        last: dict[tuple[str, str], str] = {}
        for change in changes:  # the latest op per object wins
            last[(change["entity"], change["entity_id"])] = change["op"]
        task_ids = [entity_id for (entity, entity_id), op in last.items() if entity == "task" and op == "upsert"]
        rows = await VisitTask.select(*TASK_COLUMNS).where(
            VisitTask.id.is_in(task_ids or ["00000000-0000-0000-0000-000000000000"])
        )
        visible = [row for row in rows if _mine(request.user, row)]
        removed = sorted(
            {entity_id for (entity, entity_id), op in last.items() if entity == "task" and op == "remove"}
            | (set(task_ids) - {str(row["id"]) for row in visible})
        )
        note_ids = [entity_id for (entity, entity_id) in last if entity == "notification"]
        notes = await Notification.select().where(
            Notification.id.is_in(note_ids or ["00000000-0000-0000-0000-000000000000"]), Notification.account == me
        )
        grids_changed = any(entity == "grids" for entity, _ in last)
        return SyncOut(
            cursor=changes[-1]["id"] if changes else cursor,
            full=False,
            more=len(changes) == PAGE,
            tasks=await tasks_out(visible),
            removed_tasks=removed,
            notifications=[notification_out(n) for n in notes],
            grids_changed=grids_changed,
            grids=await _grids(request.user) if grids_changed else None,
        )


async def _grids(principal: Principal) -> GridCollection | None:
    # A worker's or a supervisor's own area; an admin's is the whole city (GET /api/v1/grids), and an
    # officer or a resident has no map.
    if principal.role not in (Role.grid_worker, Role.supervisor):
        return None
    return await grids_of(principal)


def _mine(principal: Principal, row: dict[str, Any]) -> bool:
    return principal.role != Role.grid_worker or row["assignee"] == principal.account_id


async def _snapshot(principal: Principal, head: int) -> SyncOut:
    rows: list[dict[str, Any]] = []
    if principal.role == Role.grid_worker:
        rows = (
            await VisitTask.select(*TASK_COLUMNS)
            .where(VisitTask.assignee == principal.account_id, VisitTask.state.is_in(list(OPEN_STATES)))
            .order_by(VisitTask.due_at)
        )
    notes = (
        await Notification.select()
        .where(Notification.account == principal.account_id)
        .order_by(Notification.created_at, ascending=False)
        .limit(50)
    )
    return SyncOut(
        cursor=head,
        full=True,
        more=False,
        tasks=await tasks_out(rows),
        removed_tasks=[],
        notifications=[notification_out(n) for n in notes],
        grids_changed=True,
        grids=await _grids(principal),
    )
