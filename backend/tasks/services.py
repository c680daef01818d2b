"""Visit tasks after they exist: the worker's steps, the supervisor's reassignments and covers.

Every change writes the task's history, an audit row, the sync changes that put the task on (or
take it off) the right phones, and an inbox message to whoever must know. Scope comes from
``tasks.scope``: a task outside the caller's scope is "not found".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from backend.accounts.principal import Principal
from backend.accounts.tables import Account, Role
from backend.audit.services import record, refuse_unseen
from backend.households.scope import NO_ACCESS
from backend.lib.db import write_transaction
from backend.lib.errors import Conflict, InvalidInput
from backend.notifications.services import notify
from backend.tasks.calendar import CHINA
from backend.tasks.events import add_events, task_changed
from backend.tasks.scope import task_scope
from backend.tasks.tables import OPEN_STATES, AbsenceCover, TaskEvent, TaskState, VisitTask

# Which step may follow which: anything open may be handed back to the supervisor.
_ALLOWED = {
    "accept": ({TaskState.new}, TaskState.accepted),
    "close": ({TaskState.visited}, TaskState.closed),
    "return": (set(OPEN_STATES) - {TaskState.returned}, TaskState.returned),
}


async def scoped_task(principal: Principal, task_id: UUID, action: str) -> dict[str, Any]:
    scope = task_scope(principal)
    row = None
    if scope is not NO_ACCESS:
        query = VisitTask.select().where(VisitTask.id == task_id)
        row = await (query.where(scope) if scope is not None else query).first()
    if row is None:
        await refuse_unseen(
            principal.actor,
            action,
            "task",
            task_id,
            exists=await VisitTask.exists().where(VisitTask.id == task_id),
            code="task.not_found",
        )
    return row


async def step(principal: Principal, task_id: UUID, action: str, reason: str = "") -> None:
    allowed_from, target = _ALLOWED[action]
    # Scope first, outside the write: a denial's audit row must not roll back with the refusal.
    await scoped_task(principal, task_id, f"task.{action}")
    async with write_transaction():
        task = await VisitTask.select().where(VisitTask.id == task_id).first()
        assert task is not None
        state = TaskState(task["state"])
        if state not in allowed_from:
            raise Conflict(
                f"A {state.value} task cannot be {action}ed",
                f"当前状态（{state.value}）不能执行该操作",
                code="task.bad_state",
            )
        now = datetime.now(UTC)
        values: dict[Any, Any] = {VisitTask.state: target, VisitTask.updated_at: now}
        if target == TaskState.closed:
            values[VisitTask.closed_at] = now
        if target == TaskState.returned:
            values[VisitTask.return_reason] = reason
        await VisitTask.update(values).where(VisitTask.id == task_id)
        await add_events([(task_id, str(principal.account_id), action, {"reason": reason} if reason else {})])
        await task_changed(task_id, upsert_for=[task["assignee"]])
        await record(f"task.{action}", actor=principal.actor, object_type="task", object_id=str(task_id))
        if target == TaskState.returned:
            await _tell_street(
                task["street"],
                "task.returned",
                "有走访任务被退回，请处理",
                "A visit task was returned to you",
                {"task": str(task_id)},
            )


async def record_visit(principal: Principal, task_id: UUID, summary: dict[str, Any]) -> dict[str, Any]:
    """A visit recorded on a phone, possibly hours ago. Accepted from the current assignee, or from a
    worker the task was reassigned away from while they were offline: then attributed to them, and
    both workers and the street supervisor are told. ``visits.services.record_visit`` calls this in
    the transaction that stores the visit row, so it runs once per visit however often it is sent."""
    async with write_transaction():
        task = await VisitTask.select().where(VisitTask.id == task_id).first()
        was_theirs = task is not None and await _was_assigned_to(task_id, principal.account_id)
        if task is None or not (task["assignee"] == principal.account_id or was_theirs):
            await refuse_unseen(
                principal.actor,
                "task.visit",
                "task",
                task_id,
                exists=task is not None,
                code="task.not_found",
                reason="not_assigned",
            )
        late = task["assignee"] != principal.account_id
        now = datetime.now(UTC)
        if TaskState(task["state"]) in (TaskState.new, TaskState.accepted, TaskState.returned):
            await VisitTask.update({VisitTask.state: TaskState.visited, VisitTask.updated_at: now}).where(
                VisitTask.id == task_id
            )
        await add_events(
            [
                (
                    task_id,
                    str(principal.account_id),
                    "visited",
                    {**summary, "by": str(principal.account_id), "after_reassignment": late},
                )
            ]
        )
        await task_changed(task_id, upsert_for=[task["assignee"]])
        await record(
            "task.visit",
            actor=principal.actor,
            object_type="task",
            object_id=str(task_id),
            detail={"after_reassignment": late},
        )
        if late:
            detail = {"task": str(task_id), "visited_by": str(principal.account_id)}
            await notify(
                [principal.account_id, task["assignee"]],
                kind="task.visited_elsewhere",
                title_zh="已改派的任务收到了原网格员的走访记录",
                title_en="A reassigned task was visited by its previous worker",
                detail=detail,
            )
            await _tell_street(
                task["street"],
                "task.visited_elsewhere",
                "已改派的任务收到了原网格员的走访记录",
                "A reassigned task was visited by its previous worker",
                detail,
            )
    return {
        "task_id": str(task_id),
        "state": TaskState.visited.value,
        "attributed_to": str(principal.account_id),
        "after_reassignment": late,
    }


async def check_visit_allowed(principal: Principal, task_id: UUID) -> None:
    """The current assignee, or a worker it was reassigned away from, may record a visit."""
    task = await VisitTask.select(VisitTask.assignee).where(VisitTask.id == task_id).first()
    if task is not None and (
        task["assignee"] == principal.account_id or await _was_assigned_to(task_id, principal.account_id)
    ):
        return
    await refuse_unseen(
        principal.actor,
        "task.visit",
        "task",
        task_id,
        exists=task is not None,
        code="task.not_found",
        reason="not_assigned",
    )


async def _was_assigned_to(task_id: UUID, account_id: UUID) -> bool:
    events = await TaskEvent.select(TaskEvent.detail).where(TaskEvent.task == task_id, TaskEvent.kind == "reassigned")
    from backend.lib.db import load_json

    return any(load_json(event["detail"]).get("from") == str(account_id) for event in events)


async def reassign(principal: Principal, task_ids: list[UUID], worker_id: UUID, reason: str) -> int:
    for task_id in task_ids:  # scope first: a denial's audit row must survive the refusal
        await scoped_task(principal, task_id, "task.reassign")
    async with write_transaction():
        worker = (
            await Account.select(Account.id, Account.role, Account.is_active).where(Account.id == worker_id).first()
        )
        if worker is None or worker["role"] != Role.grid_worker.value or not worker["is_active"]:
            raise InvalidInput("Reassign to an active grid worker", "只能改派给在岗的网格员", code="task.bad_worker")
        moved = 0
        for task_id in task_ids:
            task = await VisitTask.select().where(VisitTask.id == task_id).first()
            assert task is not None
            if TaskState(task["state"]) == TaskState.closed or task["assignee"] == worker_id:
                continue
            await _move(task, worker_id, str(principal.account_id), reason)
            moved += 1
        await record(
            "task.reassign",
            actor=principal.actor,
            object_type="task_batch",
            object_id=str(worker_id),
            detail={"tasks": moved, "reason": reason},
        )
    return moved


async def _move(task: dict[str, Any], to: UUID, actor_id: str | None, reason: str, **extra: Any) -> None:
    new_state = TaskState.new if TaskState(task["state"]) == TaskState.returned else TaskState(task["state"])
    values: dict[Any, Any] = {
        VisitTask.assignee: to,
        VisitTask.state: new_state,
        VisitTask.updated_at: datetime.now(UTC),
    }
    values.update(extra)
    await VisitTask.update(values).where(VisitTask.id == task["id"])
    previous = task["assignee"]
    await add_events(
        [
            (
                task["id"],
                actor_id,
                "reassigned",
                {"from": str(previous) if previous else None, "to": str(to), "reason": reason},
            )
        ]
    )
    await task_changed(task["id"], upsert_for=[to], remove_for=[previous])
    await notify(
        [to],
        kind="task.assigned",
        title_zh="您有改派来的走访任务",
        title_en="A visit task was assigned to you",
        detail={"task": str(task["id"])},
    )
    if previous:
        await notify(
            [previous],
            kind="task.reassigned_away",
            title_zh="您的一个走访任务已改派他人",
            title_en="One of your visit tasks was reassigned",
            detail={"task": str(task["id"])},
        )


async def start_cover(
    principal: Principal, worker_id: UUID, substitute_id: UUID, starts_on: date, ends_on: date, reason: str
) -> int:
    if ends_on < starts_on:
        raise InvalidInput("The cover ends before it starts", "结束日期早于开始日期", code="cover.dates")
    async with write_transaction():
        for account in (worker_id, substitute_id):
            row = await Account.select(Account.role).where(Account.id == account).first()
            if row is None or row["role"] != Role.grid_worker.value:
                raise InvalidInput("Both must be grid workers", "双方都必须是网格员", code="cover.not_workers")
        cover_id = (
            await AbsenceCover.insert(
                AbsenceCover(
                    worker=worker_id,
                    substitute=substitute_id,
                    starts_on=starts_on.isoformat(),
                    ends_on=ends_on.isoformat(),
                    reason=reason,
                    created_by=principal.account_id,
                )
            ).returning(AbsenceCover.id)
        )[0]["id"]
        await record(
            "cover.create",
            actor=principal.actor,
            object_type="cover",
            object_id=str(cover_id),
            detail={"worker": str(worker_id), "substitute": str(substitute_id)},
        )
    await apply_covers(today=datetime.now(CHINA).date())
    return int(cover_id)


async def apply_covers(today: date) -> dict[str, int]:
    """Start covers whose first day has come; hand tasks back when a cover's last day has passed.
    Idempotent: run by a daily cron and after a cover is created."""
    started = restored = 0
    async with write_transaction():
        # Each cover is claimed by one UPDATE … RETURNING: overlapping runs never move the same tasks twice.
        for cover in (
            await AbsenceCover.update({AbsenceCover.state: "active"})
            .where(AbsenceCover.state == "planned", AbsenceCover.starts_on <= today.isoformat())
            .returning(*AbsenceCover.all_columns())
        ):
            tasks = await VisitTask.select().where(
                VisitTask.assignee == cover["worker"], VisitTask.state.is_in(list(OPEN_STATES))
            )
            for task in tasks:
                await _move(
                    task, cover["substitute"], None, "absence_cover", covered_from=cover["worker"], cover=cover["id"]
                )
            started += 1
        for cover in (
            await AbsenceCover.update({AbsenceCover.state: "restored"})
            .where(AbsenceCover.state == "active", AbsenceCover.ends_on < today.isoformat())
            .returning(*AbsenceCover.all_columns())
        ):
            tasks = await VisitTask.select().where(
                VisitTask.cover == cover["id"],
                VisitTask.state.is_in(list(OPEN_STATES)),
                VisitTask.assignee == cover["substitute"],
            )
            for task in tasks:
                await _move(task, cover["worker"], None, "absence_cover_ended", covered_from=None, cover=None)
            restored += 1
    return {"started": started, "restored": restored}


async def _tell_street(street: int | None, kind: str, zh: str, en: str, detail: dict[str, Any]) -> None:
    if street is None:
        return
    people = await Account.select(Account.id).where(
        Account.role == Role.supervisor, Account.street == street, Account.is_active.eq(True)
    )
    await notify([row["id"] for row in people], kind=kind, title_zh=zh, title_en=en, detail=detail)
