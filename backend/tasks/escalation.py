"""Overdue visit tasks climb a ladder: the worker, then the street, then the district.

A task is open for deadlines while it is ``new``, ``accepted`` or ``returned``; once it is
``visited`` the visit has happened and the deadline is met. Levels (``VisitTask.escalation``):

1. past ``due_at``: the assignee is told (the street's supervisors when the task is unassigned,
   returned to them, or its assignee's account is disabled);
2. ``STREET_AFTER_WORKING_DAYS`` whole working days late: the street's supervisors are told;
3. ``DISTRICT_AFTER_WORKING_DAYS`` whole working days late: the district is told. There is no
   district role yet (a supervisor is scoped to a street-level unit), so "the district" is every
   active admin, with the counts broken down by district code; ``_district_people`` is the one
   place to change when district accounts exist. A level with nobody to tell (a street without a
   supervisor) goes to the admins rather than nowhere.

"Whole working days late" uses China's calendar (``tasks.calendar``): a task due on the day before
National Day stays at level 1 through the holiday and reaches level 2 only when the first working
day after it has ended. Equivalently, for a task that fell due on local day D, level n+1 begins at
the end of the n-th working day after D. For one run this is a cutoff per level — the midnight
starting the n-th working day before today — so the work is set-based: six UPDATEs, one for each
(from level, to level) pair, each moving a task straight to the level it calls for.

A run is one write transaction: UPDATE … RETURNING claims the tasks (a concurrent run on
PostgreSQL waits for the row locks, re-checks ``escalation = from`` and skips them), then the
history events (one per level crossed), one sync change per task for its assignee, and ONE inbox
message per person summarising the run's counts. Running again at the same ``now`` finds nothing.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID

import msgspec

from backend.accounts.tables import Account, Role
from backend.lib.db import is_sqlite, write_transaction
from backend.notifications.services import notify
from backend.orgs.tables import OrgUnit
from backend.sync.tables import SyncChange
from backend.tasks.calendar import CHINA, is_working_day
from backend.tasks.tables import TaskEvent, TaskState, VisitTask

log = logging.getLogger("gridaid.escalation")

# Whole working days past the deadline before the street, then the district, is told.
STREET_AFTER_WORKING_DAYS = 1
DISTRICT_AFTER_WORKING_DAYS = 2

# Visited counts as done for deadlines; closed is done.
DEADLINE_STATES = (TaskState.new, TaskState.accepted, TaskState.returned)

TOP_LEVEL = 3
NOTIFICATION_KIND = "task.overdue"
_COUNT_KEYS = {1: "overdue", 2: "escalated_street", 3: "escalated_district"}


def working_days_late_cutoff(now: datetime, days: int) -> datetime:
    """Midnight (Beijing) starting the ``days``-th working day before ``now``'s local day.

    A task due before this instant has had at least ``days`` whole working days pass since the
    day it fell due; one due at or after it has not."""
    day = now.astimezone(CHINA).date()
    counted = 0
    while counted < days:
        day -= timedelta(days=1)
        if is_working_day(day):
            counted += 1
    return datetime.combine(day, time.min, tzinfo=CHINA).astimezone(UTC)


def cutoffs(now: datetime) -> dict[int, datetime]:
    """For each level, the instant a task's ``due_at`` must be before to have reached it."""
    if now.tzinfo is None:
        raise ValueError("escalation needs an aware datetime")
    return {
        1: now.astimezone(UTC),
        2: working_days_late_cutoff(now, STREET_AFTER_WORKING_DAYS),
        3: working_days_late_cutoff(now, DISTRICT_AFTER_WORKING_DAYS),
    }


@dataclass
class _Digest:
    """What one person is told in this run."""

    levels: Counter[int] = field(default_factory=Counter)
    districts: Counter[str] = field(default_factory=Counter)


async def escalate_overdue(now: datetime) -> dict[str, int]:
    """Raise every open task to the level ``now`` calls for; tell each person once. Idempotent."""
    limits = cutoffs(now)
    stamp = now.astimezone(UTC)
    recorded = datetime.now(UTC)  # when the rows were written, as every other updated_at/at
    async with write_transaction():
        # crossed[level]: the tasks that reached ``level`` in this run. Each task is written once,
        # straight to the level it calls for: on PostgreSQL a row updated twice in one transaction
        # has its foreign keys checked again, and every write adds a version to all its indexes.
        crossed: dict[int, list[dict[str, Any]]] = {level: [] for level in limits}
        for old in range(TOP_LEVEL):
            for new in range(old + 1, TOP_LEVEL + 1):
                where = [
                    VisitTask.state.is_in([state.value for state in DEADLINE_STATES]),
                    VisitTask.escalation == old,
                    VisitTask.due_at < limits[new],
                ]
                if new < TOP_LEVEL:
                    where.append(VisitTask.due_at >= limits[new + 1])
                rows = await (
                    VisitTask.update({VisitTask.escalation: new, VisitTask.updated_at: recorded})
                    .where(*where)
                    .returning(VisitTask.id, VisitTask.assignee, VisitTask.street, VisitTask.state)
                )
                for level in range(old + 1, new + 1):
                    crossed[level].extend(rows)
        if not any(crossed.values()):
            return {**{key: 0 for key in _COUNT_KEYS.values()}, "notified": 0}

        for level, rows in crossed.items():
            await _insert_events([row["id"] for row in rows], level, recorded)
        assignees = {row["id"]: row["assignee"] for rows in crossed.values() for row in rows if row["assignee"]}
        await _insert_task_changes(assignees, recorded)

        digests = await _digests(crossed)
        notified = await _send(digests, stamp)
    counts = {_COUNT_KEYS[level]: len(rows) for level, rows in crossed.items()}
    log.info("escalation at %s: %s, %d people told", stamp.isoformat(), counts, notified)
    return {**counts, "notified": notified}


async def _insert_events(task_ids: list[UUID], level: int, at: datetime) -> None:
    """The history rows for one level, as one INSERT … SELECT over an array of ids.

    ``tasks.events.add_events`` builds a Piccolo object per row: fine for a request, but tens of
    seconds for a catch-up run that moves 100,000 tasks through three levels."""
    if not task_ids:
        return
    kind = "overdue" if level == 1 else "escalated"
    detail = msgspec.json.encode({"level": level}).decode()
    if is_sqlite():
        ids = msgspec.json.encode([str(task) for task in task_ids]).decode()
        await TaskEvent.raw(
            "INSERT INTO task_event (task, at, actor_id, kind, detail) "
            "SELECT value, {}, NULL, {}, {} FROM json_each({}) ORDER BY key",
            at,
            kind,
            detail,
            ids,
        )
    else:
        await TaskEvent.raw(
            "INSERT INTO task_event (task, at, actor_id, kind, detail) "
            "SELECT task, {}::timestamptz, NULL, {}, {}::json FROM unnest({}::uuid[]) AS task",
            at,
            kind,
            detail,
            task_ids,
        )


async def _insert_task_changes(assignees: dict[UUID, UUID], at: datetime) -> None:
    """One ``task`` upsert per changed task for its assignee's devices (``sync.services.record_changes``
    rows, written set-based for the same reason as the events)."""
    if not assignees:
        return
    if is_sqlite():
        pairs = msgspec.json.encode([[str(account), str(task)] for task, account in assignees.items()]).decode()
        await SyncChange.raw(
            "INSERT INTO sync_change (account, entity, entity_id, op, at) "
            "SELECT json_extract(value, '$[0]'), 'task', json_extract(value, '$[1]'), 'upsert', {} "
            "FROM json_each({}) ORDER BY key",
            at,
            pairs,
        )
    else:
        await SyncChange.raw(
            "INSERT INTO sync_change (account, entity, entity_id, op, at) "
            "SELECT account, 'task', task::text, 'upsert', {}::timestamptz "
            "FROM unnest({}::uuid[], {}::uuid[]) AS pair(account, task)",
            at,
            list(assignees.values()),
            list(assignees.keys()),
        )


async def _digests(crossed: dict[int, list[dict[str, Any]]]) -> dict[str, _Digest]:
    supervisors: dict[int, list[str]] = defaultdict(list)
    for row in await Account.select(Account.id, Account.street).where(
        Account.role == Role.supervisor, Account.is_active.eq(True), Account.street.is_not_null()
    ):
        supervisors[row["street"]].append(str(row["id"]))
    admins = await _district_people()
    disabled = {str(row["id"]) for row in await Account.select(Account.id).where(Account.is_active.eq(False))}
    district_of = await _district_codes({row["street"] for row in crossed[3] if row["street"] is not None})

    def street_people(street: int | None) -> list[str]:
        return (supervisors.get(street, []) if street is not None else []) or admins

    digests: dict[str, _Digest] = defaultdict(_Digest)
    for row in crossed[1]:
        assignee = str(row["assignee"]) if row["assignee"] else None
        if assignee and assignee not in disabled and row["state"] != TaskState.returned.value:
            people = [assignee]
        else:
            people = street_people(row["street"])
        for person in people:
            digests[person].levels[1] += 1
    for row in crossed[2]:
        for person in street_people(row["street"]):
            digests[person].levels[2] += 1
    for row in crossed[3]:
        district = district_of.get(row["street"], "") if row["street"] is not None else ""
        for person in admins:
            digests[person].levels[3] += 1
            digests[person].districts[district] += 1
    return digests


async def _district_people() -> list[str]:
    """Who stands for "the district": every active admin, until accounts can be scoped to one."""
    rows = await Account.select(Account.id).where(Account.role == Role.admin, Account.is_active.eq(True))
    return [str(row["id"]) for row in rows]


async def _district_codes(streets: set[int]) -> dict[int, str]:
    if not streets:
        return {}
    rows = await OrgUnit.select(OrgUnit.id, OrgUnit.parent.code.as_alias("district")).where(
        OrgUnit.id.is_in(list(streets))
    )
    return {row["id"]: row["district"] or "" for row in rows}


async def _send(digests: dict[str, _Digest], stamp: datetime) -> int:
    """One inbox message per person; people told the same thing share one ``notify`` (one push)."""
    groups: dict[tuple[str, str, bytes], list[str]] = defaultdict(list)
    details: dict[tuple[str, str, bytes], dict[str, Any]] = {}
    for person, digest in digests.items():
        detail: dict[str, Any] = {key: digest.levels[level] for level, key in _COUNT_KEYS.items()}
        if digest.districts:
            detail["districts"] = dict(sorted(digest.districts.items()))
        detail["at"] = stamp.isoformat()
        zh, en = _titles(digest.levels)
        key = (zh, en, msgspec.json.encode(detail))
        groups[key].append(person)
        details[key] = detail
    sent = 0
    for key, people in groups.items():
        zh, en, _ = key
        sent += await notify(people, kind=NOTIFICATION_KIND, title_zh=zh, title_en=en, detail=details[key])
    return sent


def _titles(levels: Counter[int]) -> tuple[str, str]:
    zh, en = [], []
    if levels[1]:
        zh.append(f"新逾期 {levels[1]} 个")
        en.append(f"{levels[1]} newly overdue")
    for level, days in ((2, STREET_AFTER_WORKING_DAYS), (3, DISTRICT_AFTER_WORKING_DAYS)):
        if levels[level]:
            zh.append(f"逾期满 {days} 个工作日 {levels[level]} 个")
            en.append(f"{levels[level]} overdue by {days}+ working day{'s' if days > 1 else ''}")
    return "走访任务逾期：" + "，".join(zh), "Overdue visit tasks: " + ", ".join(en)
