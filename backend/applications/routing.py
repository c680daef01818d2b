"""Routing applications to departments: one case per selected service, with its deadline.

The routing job runs once per outbox message (``_job_id = outbox:<key>``) and also takes along
other pending routing messages (up to ``BATCH``), so a burst of submissions is routed in a few
transactions instead of thousands; the jobs of messages already done return at once.

Nothing is done twice: each case has a unique ``dedupe_key`` (application + service) and is
inserted with ``ON CONFLICT DO NOTHING``, so only cases that are really new are announced. On
PostgreSQL the job's own message is locked first (``FOR UPDATE``, waiting for a job that is
routing it right now), the others with ``SKIP LOCKED``; a transaction waits at most once, holding
nothing, so two jobs never deadlock. On SQLite the write transaction is ``IMMEDIATE``.

A message that cannot be routed (its application is gone, a service left the catalogue) is left
out of the batch and pending; its own job reports it, retries, and finally parks it as a dead
letter (``jobs/routing.py``). Messages that failed once are only retried by their own job, so one
bad message never holds up the others.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from backend.accounts.tables import Account, Role
from backend.applications.services import ROUTE_JOB
from backend.applications.tables import Application, DepartmentCase
from backend.audit.services import Actor, record
from backend.departments.tables import Department, Service
from backend.lib.db import is_sqlite, load_json, write_transaction
from backend.notifications.services import notify
from backend.outbox.tables import OutboxMessage
from backend.tasks.calendar import due_at
from backend.warnings.tables import DeadlineUnit

BATCH = 200
INSERT_CHUNK = 300
NOTIFICATION_KIND = "case.new"


@dataclass
class RouteOutcome:
    already_done: bool = False
    own_problem: str | None = None
    applications: int = 0
    cases: int = 0
    problems: dict[int, str] = field(default_factory=dict)
    # Keys of the other messages this run routed: their own jobs have nothing left to do.
    routed_keys: list[str] = field(default_factory=list)


_PENDING = (
    "SELECT id, key, payload FROM outbox_message WHERE kind = {} AND done_at IS NULL AND attempts = 0 "
    "AND id <> {} ORDER BY id LIMIT {}"
)
_PENDING_SQLITE = _PENDING
# Messages another job holds are skipped, not waited for: that job routes them.
_PENDING_POSTGRES = _PENDING + " FOR UPDATE SKIP LOCKED"


async def _claim(message_id: int, coalesce: bool, batch: int, keys: dict[int, str]) -> dict[int, Any] | None:
    """The messages this transaction will route (own first); None when the own message is done."""
    if is_sqlite():
        own = await OutboxMessage.raw("SELECT id, payload, done_at FROM outbox_message WHERE id = {}", message_id)
    else:
        own = await OutboxMessage.raw(
            "SELECT id, payload, done_at FROM outbox_message WHERE id = {} FOR UPDATE", message_id
        )
    if not own or own[0]["done_at"] is not None:
        return None
    claimed = {message_id: load_json(own[0]["payload"])}
    if coalesce and batch > 1:
        others = await OutboxMessage.raw(
            _PENDING_SQLITE if is_sqlite() else _PENDING_POSTGRES,
            ROUTE_JOB,
            message_id,
            batch - 1,
        )
        for row in others:
            claimed[int(row["id"])] = load_json(row["payload"])
            keys[int(row["id"])] = str(row["key"])
    return claimed


def _application_id(payload: Any) -> UUID | None:
    try:
        return UUID(str(payload["application"]))
    except (KeyError, TypeError, ValueError):
        return None


async def route(message_id: int, *, coalesce: bool = True, batch: int = BATCH) -> RouteOutcome:
    """Route the message's application (and, with ``coalesce``, other pending ones). Idempotent."""
    outcome = RouteOutcome()
    if await OutboxMessage.exists().where(OutboxMessage.id == message_id, OutboxMessage.done_at.is_not_null()):
        outcome.already_done = True  # routed by another job's batch: the common case in a burst
        return outcome
    async with write_transaction():
        keys: dict[int, str] = {}
        claimed = await _claim(message_id, coalesce, batch, keys)
        if claimed is None:
            outcome.already_done = True
            return outcome
        wanted: dict[int, UUID] = {}
        for mid, payload in claimed.items():
            application_id = _application_id(payload)
            if application_id is None:
                outcome.problems[mid] = "the message names no application"
            else:
                wanted[mid] = application_id
        apps = {
            row["id"]: row
            for row in await Application.select(
                Application.id, Application.services, Application.rule_version, Application.verdicts
            ).where(Application.id.is_in(list(wanted.values()) or [uuid4()]))
        }
        picked = {app_id: list(load_json(row["services"])) for app_id, row in apps.items()}
        services = {
            row["code"]: row
            for row in await Service.select(Service.code, Service.department, Service.decision_days).where(
                Service.code.is_in(sorted({code for codes in picked.values() for code in codes}) or [""])
            )
        }
        good: dict[int, UUID] = {}
        for mid, application_id in wanted.items():
            if application_id not in apps:
                outcome.problems[mid] = f"application {application_id} does not exist"
                continue
            gone = [code for code in picked[application_id] if code not in services]
            if gone:
                outcome.problems[mid] = f"service(s) no longer in the catalogue: {', '.join(gone)}"
                continue
            good[mid] = application_id

        now = datetime.now(UTC)
        deadlines: dict[int, datetime] = {}
        rows: list[tuple[Any, ...]] = []
        for application_id in dict.fromkeys(good.values()):
            app = apps[application_id]
            verdicts = load_json(app["verdicts"]) or {}
            for code in picked[application_id]:
                service = services[code]
                days = int(service["decision_days"])
                if days not in deadlines:
                    deadlines[days] = due_at(now, days, DeadlineUnit.working_days)
                rows.append(
                    (
                        uuid4(),
                        application_id,
                        f"{application_id}:{code}",
                        code,
                        service["department"],
                        int(app["rule_version"]),
                        str(verdicts.get(code, "")),
                        deadlines[days],
                    )
                )
        inserted = await _insert_cases(rows, now)
        await _tell_departments(inserted)
        if good:
            await OutboxMessage.update({OutboxMessage.done_at: now}).where(OutboxMessage.id.is_in(list(good)))
            routed = sorted({str(application_id) for application_id in good.values()})
            await record(
                "application.route",
                actor=Actor.system("routing"),
                object_type="application" if len(routed) == 1 else "application_batch",
                object_id=routed[0] if len(routed) == 1 else "",
                detail={"applications": routed, "cases": len(inserted)},
            )
        outcome.routed_keys = [keys[mid] for mid in good if mid in keys]
        outcome.applications = len(good)
        outcome.cases = len(inserted)
        outcome.own_problem = outcome.problems.get(message_id)
    return outcome


_CASE_FIELDS = ("id", "application", "dedupe_key", "service", "department", "rule_version", "verdict", "due_at")


async def _insert_cases(rows: list[tuple[Any, ...]], now: datetime) -> list[dict[str, Any]]:
    """Insert the cases that do not exist yet; returns those inserted (id, department).

    On PostgreSQL one INSERT … SELECT FROM unnest per chunk: building a Piccolo object per case
    was most of a routing batch's time."""
    inserted: list[dict[str, Any]] = []
    if not rows:
        return inserted
    if is_sqlite():
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = [
                DepartmentCase(**dict(zip(_CASE_FIELDS, row, strict=True)), state="new", created_at=now, updated_at=now)
                for row in rows[start : start + INSERT_CHUNK]
            ]
            inserted.extend(
                await DepartmentCase.insert(*chunk)
                .on_conflict(target=DepartmentCase.dedupe_key, action="DO NOTHING")
                .returning(DepartmentCase.id, DepartmentCase.department)
            )
        return inserted
    columns = list(zip(*rows, strict=True))
    for start in range(0, len(rows), 5000):
        part = [list(column[start : start + 5000]) for column in columns]
        inserted.extend(
            await DepartmentCase.raw(
                "INSERT INTO department_case (id, application, dedupe_key, service, department, rule_version, "
                "verdict, due_at, state, escalation, reason, info_request, created_at, updated_at) "
                "SELECT u.*, 'new', 0, '', '', {}::timestamptz, {}::timestamptz FROM unnest("
                "{}::uuid[], {}::uuid[], {}::varchar[], {}::varchar[], {}::int[], {}::int[], {}::varchar[], "
                "{}::timestamptz[]) AS u ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, department",
                now,
                now,
                *part,
            )
        )
    return inserted


async def department_people(department_ids: set[int]) -> dict[int, list[str]]:
    """Each department's active officers; a department without any goes to the admins, never nowhere."""
    people: dict[int, list[str]] = defaultdict(list)
    if not department_ids:
        return people
    for row in await Account.select(Account.id, Account.department).where(
        Account.role == Role.department_officer,
        Account.is_active.eq(True),
        Account.department.is_in(sorted(department_ids)),
    ):
        people[row["department"]].append(str(row["id"]))
    if any(not people[department] for department in department_ids):
        admins = [
            str(row["id"])
            for row in await Account.select(Account.id).where(Account.role == Role.admin, Account.is_active.eq(True))
        ]
        for department in department_ids:
            people[department] = people[department] or admins
    return people


async def _tell_departments(inserted: list[dict[str, Any]]) -> None:
    counts: dict[int, int] = defaultdict(int)
    for row in inserted:
        counts[row["department"]] += 1
    if not counts:
        return
    people = await department_people(set(counts))
    codes = {
        row["id"]: row["code"]
        for row in await Department.select(Department.id, Department.code).where(Department.id.is_in(list(counts)))
    }
    for department, count in counts.items():
        await notify(
            people[department],
            kind=NOTIFICATION_KIND,
            title_zh=f"收到 {count} 件新的救助案件",
            title_en=f"{count} new assistance case{'s' if count != 1 else ''}",
            detail={"cases": count, "department": codes.get(department, "")},
        )
