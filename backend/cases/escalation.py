"""Overdue department cases climb a ladder, like visit tasks (``tasks.escalation``), on China's calendar.

A case is open for deadlines until it is approved or rejected. Levels (``DepartmentCase.escalation``):

1. past ``due_at``: the department's officers are told;
2. one whole working day late: the officers again, and the supervisors of the household's street
   (the "one door" the family came through, who chase the department);
3. two whole working days late: the district (every active admin, as for tasks).

The cutoffs are ``tasks.escalation.cutoffs``: a case due on the eve of a holiday stays at level 1
through the holiday. One run is one write transaction: UPDATE … RETURNING claims each case once,
straight to the level it calls for; then one inbox message per person. Running again at the same
``now`` finds nothing.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from backend.accounts.tables import Account, Role
from backend.applications.routing import department_people
from backend.applications.tables import CLOCK_RUNNING_STATES, Application, DepartmentCase
from backend.audit.services import Actor, record
from backend.lib.db import write_transaction
from backend.notifications.services import notify
from backend.tasks.escalation import TOP_LEVEL, cutoffs

log = logging.getLogger("gridaid.escalation")

NOTIFICATION_KIND = "case.overdue"
_COUNT_KEYS = {1: "overdue", 2: "escalated_street", 3: "escalated_district"}


async def escalate_overdue_cases(now: datetime) -> dict[str, int]:
    limits = cutoffs(now)
    recorded = datetime.now(UTC)
    async with write_transaction():
        crossed: dict[int, list[dict[str, Any]]] = {level: [] for level in limits}
        for old in range(TOP_LEVEL):
            for new in range(old + 1, TOP_LEVEL + 1):
                where = [
                    DepartmentCase.state.is_in([state.value for state in CLOCK_RUNNING_STATES]),
                    DepartmentCase.escalation == old,
                    DepartmentCase.due_at < limits[new],
                ]
                if new < TOP_LEVEL:
                    where.append(DepartmentCase.due_at >= limits[new + 1])
                rows = await (
                    DepartmentCase.update({DepartmentCase.escalation: new, DepartmentCase.updated_at: recorded})
                    .where(*where)
                    .returning(DepartmentCase.id, DepartmentCase.department, DepartmentCase.application)
                )
                for level in range(old + 1, new + 1):
                    crossed[level].extend(rows)
        if not any(crossed.values()):
            return {**{key: 0 for key in _COUNT_KEYS.values()}, "notified": 0}
        digests = await _digests(crossed)
        notified = 0
        groups: dict[tuple[int, ...], list[str]] = defaultdict(list)
        for person, levels in digests.items():
            groups[(levels[1], levels[2], levels[3])].append(person)
        for (first, second, third), people in groups.items():
            zh, en = _titles(first, second, third)
            notified += await notify(
                people,
                kind=NOTIFICATION_KIND,
                title_zh=zh,
                title_en=en,
                detail={"overdue": first, "escalated_street": second, "escalated_district": third},
            )
        counts = {_COUNT_KEYS[level]: len(rows) for level, rows in crossed.items()}
        await record(
            "case.escalate",
            actor=Actor.system("deadlines"),
            object_type="case_batch",
            detail=counts | {"at": now.isoformat()},
        )
    log.info("case escalation at %s: %s, %d people told", now.isoformat(), counts, notified)
    return {**counts, "notified": notified}


async def _digests(crossed: dict[int, list[dict[str, Any]]]) -> dict[str, Counter[int]]:
    departments = {row["department"] for level in (1, 2) for row in crossed[level]}
    officers = await department_people(departments)
    admins = [
        str(row["id"])
        for row in await Account.select(Account.id).where(Account.role == Role.admin, Account.is_active.eq(True))
    ]
    applications = {row["application"] for row in crossed[2]}
    streets = {
        row["id"]: row["street"]
        for row in (
            await Application.select(Application.id, Application.street).where(Application.id.is_in(list(applications)))
            if applications
            else []
        )
    }
    supervisors: dict[int, list[str]] = defaultdict(list)
    street_ids = {street for street in streets.values() if street is not None}
    if street_ids:
        for row in await Account.select(Account.id, Account.street).where(
            Account.role == Role.supervisor, Account.is_active.eq(True), Account.street.is_in(sorted(street_ids))
        ):
            supervisors[row["street"]].append(str(row["id"]))

    digests: dict[str, Counter[int]] = defaultdict(Counter)
    for row in crossed[1]:
        for person in officers.get(row["department"], []):
            digests[person][1] += 1
    for row in crossed[2]:
        street = streets.get(row["application"])
        for person in {*officers.get(row["department"], []), *(supervisors.get(street, []) if street else [])}:
            digests[person][2] += 1
    for person in admins:
        if crossed[3]:
            digests[person][3] += len(crossed[3])
    return digests


def _titles(first: int, second: int, third: int) -> tuple[str, str]:
    zh, en = [], []
    if first:
        zh.append(f"新逾期 {first} 件")
        en.append(f"{first} newly overdue")
    if second:
        zh.append(f"逾期满 1 个工作日 {second} 件")
        en.append(f"{second} overdue by 1+ working day")
    if third:
        zh.append(f"逾期满 2 个工作日 {third} 件")
        en.append(f"{third} overdue by 2+ working days")
    return "救助案件逾期：" + "，".join(zh), "Overdue assistance cases: " + ", ".join(en)
