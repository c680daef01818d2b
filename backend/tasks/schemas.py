from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec

from backend.lib.schema import InputStruct, OutputStruct

Reason = Annotated[str, msgspec.Meta(min_length=2, max_length=500)]


class TaskHousehold(OutputStruct):
    id: UUID
    code: str
    head_name_masked: str
    address: str
    category: str
    lon: float | None
    lat: float | None
    phone_masked: str | None


class TaskOut(OutputStruct):
    id: UUID
    state: str
    priority: int
    type_codes: list[str]
    warnings: int
    due_at: datetime
    overdue: bool
    escalation: int
    grid_code: str | None
    assignee_id: UUID | None
    return_reason: str
    created_at: datetime
    updated_at: datetime
    household: TaskHousehold


class TaskEventOut(OutputStruct):
    at: datetime
    kind: str
    actor_id: str | None
    detail: dict[str, Any]


class TaskDetail(TaskOut):
    history: list[TaskEventOut]


class TaskPage(OutputStruct):
    items: list[TaskOut]
    total: int


class ReasonIn(InputStruct):
    reason: Reason


class ReassignIn(InputStruct):
    task_ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=500)]
    worker_id: UUID
    reason: Reason


class ReassignOut(OutputStruct):
    moved: int


class CoverIn(InputStruct):
    worker_id: UUID
    substitute_id: UUID
    starts_on: date
    ends_on: date
    reason: Annotated[str, msgspec.Meta(max_length=255)] = ""


class CoverOut(OutputStruct):
    id: int
    worker_id: UUID
    substitute_id: UUID
    starts_on: str
    ends_on: str
    state: str
