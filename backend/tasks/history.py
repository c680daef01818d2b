"""A task's history as the worker reads it: its events, and the warnings that joined it.

A warning about a household whose task is open joins that task; the warning's own row (with its
task, type, source and time) is the record of that, so joining writes no event of its own — a
nightly file joins tens of thousands of warnings. The history shows each as a ``warning_joined``
entry, in time order among the task's events.
"""

from __future__ import annotations

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
    # The warning that opened the task is in its "created" event already.
    opened_by = {str(entry.detail.get("warning")) for entry in entries if entry.kind == "created"}
    warnings = await Warning.select(Warning.id, Warning.type_code, Warning.source, Warning.received_at).where(
        Warning.task == task_id
    )
    joined = [
        TaskEventOut(
            at=as_utc(w["received_at"]),
            kind="warning_joined",
            actor_id=None,
            detail={"warning": str(w["id"]), "type": w["type_code"], "source": w["source"]},
        )
        for w in sorted(warnings, key=lambda w: (as_utc(w["received_at"]), str(w["id"])))
        if str(w["id"]) not in opened_by
    ]
    # Stable sort: at the same instant an event (the task's creation) comes before the joins.
    return sorted([*entries, *joined], key=lambda entry: entry.at)
