from enum import Enum

from piccolo.columns import JSON, UUID, BigSerial, ForeignKey, Integer, Serial, Text, Timestamptz, Varchar
from piccolo.columns.base import OnDelete
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.households.tables import Household
from backend.orgs.tables import OrgUnit


class TaskState(str, Enum):
    new = "new"
    accepted = "accepted"
    visited = "visited"
    closed = "closed"
    returned = "returned"  # handed back to the street supervisor, with a reason


OPEN_STATES = (TaskState.new, TaskState.accepted, TaskState.visited, TaskState.returned)


class VisitTask(Table, tablename="visit_task"):
    """The household's case: one open task per household, however many warnings raise it."""

    id = UUID(primary_key=True)
    household = ForeignKey(Household, on_delete=OnDelete.restrict, index=True)
    grid_code = Varchar(length=32, null=True, default=None, index=True)
    street = ForeignKey(OrgUnit, null=True, on_delete=OnDelete.restrict, index=True)
    assignee = ForeignKey(Account, null=True, on_delete=OnDelete.restrict, index=True)
    # No index on state or escalation: five and four values, never looked up alone (lists filter
    # by worker, grid or street; the escalation job by due_at), yet each index cost every task
    # written, and every join of a warning, a new index entry (a nightly import writes tens of thousands).
    state = Varchar(length=16, choices=TaskState, default=TaskState.new)
    priority = Integer(default=3)  # 1 highest
    type_codes = JSON(default=[])  # every warning type that raised it
    warnings = Integer(default=1)
    due_at = Timestamptz(index=True)
    # 0 on time; 1 overdue, worker told; 2 supervisor told; 3 district told.
    escalation = Integer(default=0)
    return_reason = Text(default="")
    # While a worker is covered for an absence, who the task returns to afterwards.
    covered_from = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    # Indexed only while set (a partial index a migration adds): almost every task has no cover.
    cover = Integer(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    closed_at = Timestamptz(null=True, default=None)


class TaskEvent(Table, tablename="task_event"):
    """The task's history, oldest first: what happened, who did it, and why."""

    id = BigSerial(primary_key=True)
    task = ForeignKey(VisitTask, on_delete=OnDelete.cascade, index=True)
    at = Timestamptz(default=TimestamptzNow())
    actor_id = Varchar(length=36, null=True, default=None)
    kind = Varchar(length=32)
    detail = JSON(default={})


class AbsenceCover(Table, tablename="absence_cover"):
    """A worker away from ``starts_on`` to ``ends_on``: their open tasks go to the substitute meanwhile."""

    id = Serial(primary_key=True)
    worker = ForeignKey(Account, on_delete=OnDelete.restrict, index=True)
    substitute = ForeignKey(Account, on_delete=OnDelete.restrict)
    starts_on = Varchar(length=10)  # YYYY-MM-DD, the street's local dates
    ends_on = Varchar(length=10)
    reason = Varchar(length=255, default="")
    state = Varchar(length=16, default="planned", index=True)  # planned → active → restored
    created_by = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    created_at = Timestamptz(default=TimestamptzNow())
