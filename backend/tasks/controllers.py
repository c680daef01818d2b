from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from backend.accounts.guards import roles
from backend.accounts.principal import Principal
from backend.accounts.tables import Role
from backend.households.scope import NO_ACCESS
from backend.lib.db import load_json
from backend.tasks import services
from backend.tasks.history import task_history
from backend.tasks.queries import TASK_COLUMNS, tasks_out
from backend.tasks.schemas import (
    CoverIn,
    CoverOut,
    ReasonIn,
    ReassignIn,
    ReassignOut,
    TaskDetail,
    TaskPage,
)
from backend.tasks.scope import task_scope
from backend.tasks.tables import AbsenceCover, TaskState, VisitTask

WORKERS_AND_UP = roles(Role.grid_worker, Role.supervisor, Role.admin)
SUPERVISORS = roles(Role.supervisor, Role.admin)


class TaskController(Controller):
    path = "/api/v1/tasks"
    tags = ["tasks"]

    @get("/", operation_id="listTasks", opt=WORKERS_AND_UP)
    async def list_tasks(
        self,
        request: Request[Principal, Any, Any],
        task_state: Annotated[TaskState | None, QueryParameter(name="state")] = None,
        overdue: FromQuery[bool | None] = None,
        grid_code: Annotated[str | None, Parameter(max_length=32)] = None,
        assignee: FromQuery[UUID | None] = None,
        type_code: Annotated[str | None, Parameter(max_length=48)] = None,
        include_closed: FromQuery[bool] = False,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> TaskPage:
        """Tasks in the caller's scope, soonest deadline first. Filters: state, overdue, grid, worker, type."""
        scope = task_scope(request.user)
        if scope is NO_ACCESS:
            return TaskPage(items=[], total=0)
        clauses = [c for c in (scope,) if c is not None]
        if task_state is not None:
            clauses.append(VisitTask.state == task_state)
        elif not include_closed:
            clauses.append(VisitTask.state != TaskState.closed)
        if overdue is not None:
            now = datetime.now(UTC)
            clauses.append(VisitTask.due_at < now if overdue else VisitTask.due_at >= now)
        if grid_code:
            clauses.append(VisitTask.grid_code == grid_code)
        if assignee:
            clauses.append(VisitTask.assignee == assignee)
        query = VisitTask.select(*TASK_COLUMNS).order_by(VisitTask.due_at)
        count = VisitTask.count()
        if clauses:
            query, count = query.where(*clauses), count.where(*clauses)
        rows = await query.limit(limit * (4 if type_code else 1)).offset(offset)
        if type_code:
            rows = [row for row in rows if type_code in load_json(row["type_codes"])][:limit]
        return TaskPage(items=await tasks_out(rows), total=await count)

    @get("/{task_id:uuid}", operation_id="getTask", opt=WORKERS_AND_UP)
    async def get_task(self, request: Request[Principal, Any, Any], task_id: FromPath[UUID]) -> TaskDetail:
        row = await services.scoped_task(request.user, task_id, "task.view")
        (task,) = await tasks_out([row])
        history = await task_history(task_id)
        return TaskDetail(**{f: getattr(task, f) for f in task.__struct_fields__}, history=history)

    @post(
        "/{task_id:uuid}/accept",
        operation_id="acceptTask",
        opt=roles(Role.grid_worker),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def accept(self, request: Request[Principal, Any, Any], task_id: FromPath[UUID]) -> None:
        await services.step(request.user, task_id, "accept")

    @post(
        "/{task_id:uuid}/return",
        operation_id="returnTask",
        opt=roles(Role.grid_worker),
        status_code=HTTP_204_NO_CONTENT,
    )
    async def hand_back(
        self, request: Request[Principal, Any, Any], task_id: FromPath[UUID], data: JSONBody[ReasonIn]
    ) -> None:
        await services.step(request.user, task_id, "return", data.reason)

    @post("/{task_id:uuid}/close", operation_id="closeTask", opt=WORKERS_AND_UP, status_code=HTTP_204_NO_CONTENT)
    async def close(self, request: Request[Principal, Any, Any], task_id: FromPath[UUID]) -> None:
        await services.step(request.user, task_id, "close")

    @post("/reassign", operation_id="reassignTasks", opt=SUPERVISORS, status_code=HTTP_200_OK)
    async def reassign(self, request: Request[Principal, Any, Any], data: JSONBody[ReassignIn]) -> ReassignOut:
        moved = await services.reassign(request.user, data.task_ids, data.worker_id, data.reason)
        return ReassignOut(moved=moved)


class CoverController(Controller):
    path = "/api/v1/covers"
    tags = ["tasks"]
    opt = SUPERVISORS

    @post("/", operation_id="createCover", status_code=HTTP_201_CREATED)
    async def create(self, request: Request[Principal, Any, Any], data: JSONBody[CoverIn]) -> CoverOut:
        cover_id = await services.start_cover(
            request.user, data.worker_id, data.substitute_id, data.starts_on, data.ends_on, data.reason
        )
        row = await AbsenceCover.select().where(AbsenceCover.id == cover_id).first()
        assert row is not None
        return _cover_out(row)

    @get("/", operation_id="listCovers")
    async def list_covers(self) -> list[CoverOut]:
        rows = await AbsenceCover.select().order_by(AbsenceCover.starts_on, ascending=False).limit(200)
        return [_cover_out(row) for row in rows]


def _cover_out(row: dict[str, Any]) -> CoverOut:
    return CoverOut(
        id=row["id"],
        worker_id=row["worker"],
        substitute_id=row["substitute"],
        starts_on=row["starts_on"],
        ends_on=row["ends_on"],
        state=row["state"],
    )
