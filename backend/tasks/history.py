"""A task's history as the worker reads it: its events, and the warnings that opened and joined it.

A warning file opens and joins tens of thousands of tasks a night, and the warning's own row (with
its task, type, source and time) is the record of either, so neither writes an event of its own:
the history shows the task's first warning as ``created`` and each later one as ``warning_joined``,
in time order among the task's events. "First" is by time received, then by id: the warnings of
one chunk share a time, and their ids are made in the order the import takes its rows
(``warnings.services._ids``): file order, with one person's rows brought together
(``lib/rowgroups.py``), so the row of a task that comes first in the file still comes first.
Tasks opened before that have a stored ``created`` event naming their warning, which is used as is.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from backend.lib.db import as_utc, load_json
from backend.tasks.schemas import TaskEventOut
from backend.tasks.tables import TaskEvent
from backend.warnings.tables import Warning


async def task_history(task_id: UUID) -> list[TaskEventOut]:
    events = await TaskEvent.select().where(TaskEvent.task == task_id).order_by(TaskEvent.id)
    entries = [
        TaskEventOut(at=as_utc(e["at"]), kind=e["kind"], actor_id=e["actor_id"], detail=load_json(e["detail"]))
        for e in events
    ]
    warnings = sorted(
        await Warning.select(Warning.id, Warning.type_code, Warning.source, Warning.received_at).where(
            Warning.task == task_id
        ),
        key=lambda w: (as_utc(w["received_at"]), str(w["id"])),
    )
    stored = {str(entry.detail.get("warning")) for entry in entries if entry.kind == "created"}
    derived = [
        _from_warning(w, "created" if not stored and n == 0 else "warning_joined")
        for n, w in enumerate(warnings)
        if str(w["id"]) not in stored
    ]
    # Stable sort: at the same instant the task's creation comes first, then events, then joins.
    return sorted([*entries, *derived], key=lambda entry: (entry.at, entry.kind != "created"))


def _from_warning(warning: dict[str, Any], kind: str) -> TaskEventOut:
    return TaskEventOut(
        at=as_utc(warning["received_at"]),
        kind=kind,
        actor_id=None,
        detail={"warning": str(warning["id"]), "type": warning["type_code"], "source": warning["source"]},
    )
