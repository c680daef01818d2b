"""Reading tasks with their households, masked, for lists, detail and sync."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from backend.households.tables import Household
from backend.lib import pii
from backend.lib.db import as_utc, load_json
from backend.tasks.schemas import TaskHousehold, TaskOut
from backend.tasks.tables import VisitTask

TASK_COLUMNS = (
    VisitTask.id,
    VisitTask.state,
    VisitTask.priority,
    VisitTask.type_codes,
    VisitTask.warnings,
    VisitTask.due_at,
    VisitTask.escalation,
    VisitTask.grid_code,
    VisitTask.assignee,
    VisitTask.return_reason,
    VisitTask.created_at,
    VisitTask.updated_at,
    VisitTask.household,
)


async def tasks_out(rows: list[dict[str, Any]]) -> list[TaskOut]:
    households = await _households({row["household"] for row in rows})
    now = datetime.now(UTC)
    return [
        TaskOut(
            id=row["id"],
            state=row["state"],
            priority=row["priority"],
            type_codes=load_json(row["type_codes"]),
            warnings=row["warnings"],
            due_at=as_utc(row["due_at"]),
            overdue=row["state"] not in ("closed", "visited") and as_utc(row["due_at"]) < now,
            escalation=row["escalation"],
            grid_code=row["grid_code"],
            assignee_id=row["assignee"],
            return_reason=row["return_reason"],
            created_at=as_utc(row["created_at"]),
            updated_at=as_utc(row["updated_at"]),
            household=households[row["household"]],
        )
        for row in rows
    ]


async def _households(ids: set[UUID]) -> dict[UUID, TaskHousehold]:
    if not ids:
        return {}
    rows = await Household.select(
        Household.id,
        Household.code,
        Household.head_name,
        Household.address,
        Household.category,
        Household.lon,
        Household.lat,
        Household.phone_sealed,
    ).where(Household.id.is_in(list(ids)))
    return {
        row["id"]: TaskHousehold(
            id=row["id"],
            code=row["code"],
            head_name_masked=pii.mask_name(row["head_name"]),
            address=row["address"],
            category=row["category"],
            lon=row["lon"],
            lat=row["lat"],
            phone_masked=pii.mask_phone(pii.unseal_phone(row["phone_sealed"])) if row["phone_sealed"] else None,
        )
        for row in rows
    }
