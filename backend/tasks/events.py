"""A task's history and the device changes that go with each step, written together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import msgspec

from backend.sync.services import record_changes
from backend.tasks.tables import TaskEvent


async def add_events(events: list[tuple[UUID, str | None, str, dict[str, Any]]]) -> None:
    """``(task_id, actor_id, kind, detail)``; detail holds ids, codes and reasons, never personal values."""
    rows = [
        TaskEvent(task=task_id, actor_id=actor, kind=kind, detail=msgspec.json.encode(detail).decode())
        for task_id, actor, kind, detail in events
    ]
    for start in range(0, len(rows), 500):
        await TaskEvent.insert(*rows[start : start + 500])


async def task_changed(
    task_id: UUID, *, upsert_for: Sequence[UUID | str | None] = (), remove_for: Sequence[UUID | str | None] = ()
) -> None:
    await record_changes(
        [(account, "task", str(task_id), "upsert") for account in upsert_for if account]
        + [(account, "task", str(task_id), "remove") for account in remove_for if account]
    )
