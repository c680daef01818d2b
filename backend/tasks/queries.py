"""Reading tasks with their households, masked, for lists, detail and sync."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from backend.households.tables import Household
from backend.lib import pii
from backend.lib.db import as_utc, load_json
from backend.tasks.schemas import TaskHousehold, TaskOut
from backend.tasks.tables import OPEN_STATES, VisitTask

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
            phone_masked=masked_phone(row["phone_sealed"]),
        )
        for row in rows
    }


@lru_cache(maxsize=65_536)
def _masked_phone(sealed: str) -> str:
    return pii.mask_phone(pii.unseal_phone(sealed))


def masked_phone(sealed: str | None) -> str | None:
    """The masked phone of a sealed value. Unsealing costs more than the rest of a task's row, and a
    worker's list is fetched again and again: the masked result (never the full number) is kept per
    ciphertext, so a new phone number or a resealed one is simply a new entry."""
    return _masked_phone(sealed) if sealed else None


# A worker's open tasks with their households, in one query (the sync snapshot of every phone).
OPEN_TASKS_WITH_HOUSEHOLDS_SQL = """
SELECT t.id, t.state, t.priority, t.type_codes, t.warnings, t.due_at, t.escalation, t.grid_code, t.assignee,
       t.return_reason, t.created_at, t.updated_at, t.household,
       h.code AS h_code, h.head_name AS h_head_name, h.address AS h_address, h.category AS h_category,
       h.lon AS h_lon, h.lat AS h_lat, h.phone_sealed AS h_phone_sealed
FROM visit_task t
JOIN household h ON h.id = t.household
WHERE t.assignee = {} AND t.state IN ('new', 'accepted', 'visited', 'returned')
ORDER BY t.due_at
"""
assert {state.value for state in OPEN_STATES} == {"new", "accepted", "visited", "returned"}


async def open_tasks_of(worker: UUID) -> list[TaskOut]:
    """The worker's open tasks, soonest due first, households masked."""
    return joined_tasks_out(await VisitTask.raw(OPEN_TASKS_WITH_HOUSEHOLDS_SQL, worker))


def joined_tasks_out(rows: list[Any]) -> list[TaskOut]:
    """Rows of ``OPEN_TASKS_WITH_HOUSEHOLDS_SQL`` as the API shows them."""
    now = datetime.now(UTC)
    out = []
    for row in rows:
        due = as_utc(row["due_at"])
        state = row["state"]
        out.append(
            TaskOut(
                id=_uuid(row["id"]),
                state=state,
                priority=row["priority"],
                type_codes=load_json(row["type_codes"]),
                warnings=row["warnings"],
                due_at=due,
                overdue=state not in ("closed", "visited") and due < now,
                escalation=row["escalation"],
                grid_code=row["grid_code"],
                assignee_id=_uuid(row["assignee"]) if row["assignee"] is not None else None,
                return_reason=row["return_reason"],
                created_at=as_utc(row["created_at"]),
                updated_at=as_utc(row["updated_at"]),
                household=TaskHousehold(
                    id=_uuid(row["household"]),
                    code=row["h_code"],
                    head_name_masked=pii.mask_name(row["h_head_name"]),
                    address=row["h_address"],
                    category=row["h_category"],
                    lon=row["h_lon"],
                    lat=row["h_lat"],
                    phone_masked=masked_phone(row["h_phone_sealed"]),
                ),
            )
        )
    return out


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))
