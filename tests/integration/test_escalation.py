"""Overdue visit tasks climb from the worker to the street to the district, on China's calendar.

Each test builds its own district (two streets, grids, a worker and a supervisor in street A, a
supervisor in street B) so that other tests' tasks and inboxes never mix with its counts. The
admins stand for the district; their messages carry a per-district breakdown, read for ours only.
Households are created through the API; their tasks are written directly with chosen deadlines.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from arq import create_pool
from arq.worker import Worker

from backend.accounts.passwords import hash_password
from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Account, Role
from backend.audit.services import Actor
from backend.grids.tables import GridAssignment
from backend.lib.db import load_json
from backend.lib.redis import arq_settings
from backend.notifications.tables import Notification
from backend.orgs.tables import OrgUnit
from backend.outbox.tables import OutboxMessage
from backend.sync.tables import SyncChange
from backend.tasks.calendar import CHINA
from backend.tasks.escalation import NOTIFICATION_KIND, escalate_overdue
from backend.tasks.tables import TaskEvent, VisitTask
from jobs.deadlines import daily_covers, escalate_deadlines
from jobs.worker import WorkerSettings
from tests.helpers import id_number
from tests.integration.conftest import PASSWORD, _make_place

pytestmark = pytest.mark.anyio

NOTHING = {"overdue": 0, "escalated_street": 0, "escalated_district": 0, "notified": 0}


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=CHINA)


@dataclass
class Place:
    district: str
    street_a: int
    grid: str
    worker: str
    other_worker: str
    supervisor: str
    supervisor_b: str
    admin: str
    device: Any  # an Api logged in as the world's admin


@pytest.fixture
async def place(world, as_role) -> Place:
    tag = secrets.token_hex(3)
    streets, grids = await _make_place(tag)
    street = await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == streets["A"]).first()
    assert street is not None
    shared = hash_password(PASSWORD)
    ids: dict[str, str] = {}
    for key, role, street_code in (
        ("worker", Role.grid_worker, None),
        ("other_worker", Role.grid_worker, None),
        ("supervisor", Role.supervisor, streets["A"]),
        ("supervisor_b", Role.supervisor, streets["B"]),
    ):
        ids[key] = str(
            await create_account(
                NewAccount(
                    username=f"esc_{key}_{tag}",
                    display_name=key,
                    password=PASSWORD,
                    role=role,
                    street_code=street_code,
                    password_hash=shared,
                ),
                actor=Actor.system("tests"),
            )
        )
    await GridAssignment.insert(GridAssignment(grid_code=grids["GA1"], worker=ids["worker"]))
    return Place(
        district=f"D{tag}",
        street_a=street["id"],
        grid=grids["GA1"],
        admin=world.account_ids["admin"],
        device=await as_role("admin"),
        **ids,
    )


async def make_task(place: Place, due: datetime, *, state: str = "new", assignee: str | None = "worker") -> UUID:
    """A household of our own (through the API), and its visit task written with this deadline."""
    response = await place.device.post(
        "/api/v1/households",
        json={
            "code": f"HE{secrets.token_hex(5)}",
            "head_name": "逾期户",
            "address": "测试路1号",
            "grid_code": place.grid,
            "category": "dibao",
            "members": [{"name": "逾期户", "relation": "head", "id_number": id_number(), "is_main_earner": True}],
        },
    )
    assert response.status_code == 201, response.text
    household = response.json()["id"]
    rows = await VisitTask.insert(
        VisitTask(
            household=household,
            grid_code=place.grid,
            street=place.street_a,
            assignee=getattr(place, assignee) if assignee else None,
            state=state,
            due_at=due,
            closed_at=datetime.now(UTC) if state == "closed" else None,
        )
    ).returning(VisitTask.id)
    return rows[0]["id"]


async def level(task: UUID) -> int:
    row = await VisitTask.select(VisitTask.escalation).where(VisitTask.id == task).first()
    assert row is not None
    return int(row["escalation"])


async def told(account: str, district: str | None = None) -> list[dict[str, Any]]:
    """Escalation messages in this person's inbox, oldest first (for admins: those about ``district``)."""
    rows = await (
        Notification.select(Notification.detail, Notification.title_zh, Notification.title_en)
        .where(Notification.account == account, Notification.kind == NOTIFICATION_KIND)
        .order_by(Notification.created_at)
    )
    details = [{**load_json(row["detail"]), "title_en": row["title_en"]} for row in rows]
    if district is not None:
        details = [detail for detail in details if district in detail.get("districts", {})]
    return details


async def history(task: UUID) -> list[tuple[str, int]]:
    rows = await TaskEvent.select(TaskEvent.kind, TaskEvent.detail).where(TaskEvent.task == task).order_by(TaskEvent.id)
    return [(row["kind"], load_json(row["detail"])["level"]) for row in rows]


async def test_a_task_due_on_the_eve_of_national_day_waits_out_the_holiday(place: Place) -> None:
    # Due the evening of Wed 30 Sep 2026; 1–7 Oct are off, Thu 8 and Fri 9 Oct are working days.
    task = await make_task(place, beijing(2026, 9, 30, 23, 59, 59))

    await escalate_overdue(beijing(2026, 9, 30, 23, 0))
    assert await level(task) == 0

    await escalate_overdue(beijing(2026, 10, 1, 0, 0, 1))
    assert await level(task) == 1
    [message] = await told(place.worker)
    assert message["overdue"] == 1 and message["escalated_street"] == 0
    assert await told(place.supervisor) == []

    # The whole holiday, and the first working day itself, are not yet a working day late.
    for now in (beijing(2026, 10, 5, 12, 0), beijing(2026, 10, 7, 23, 0), beijing(2026, 10, 8, 18, 0)):
        await escalate_overdue(now)
        assert await level(task) == 1, now
    assert await told(place.supervisor) == []

    # Thu 8 Oct has ended: one working day late, the street is told.
    await escalate_overdue(beijing(2026, 10, 9, 0, 0, 1))
    assert await level(task) == 2
    [message] = await told(place.supervisor)
    assert message["escalated_street"] == 1 and message["overdue"] == 0
    assert await told(place.admin, place.district) == []

    # Sat 10 Oct is a make-up working day: by its morning, 8 and 9 Oct have both passed.
    await escalate_overdue(beijing(2026, 10, 10, 9, 0))
    assert await level(task) == 3
    [message] = await told(place.admin, place.district)
    assert message["districts"][place.district] == 1

    # Each level told its people exactly once; nobody else was told.
    assert len(await told(place.worker)) == 1
    assert len(await told(place.supervisor)) == 1
    assert await told(place.supervisor_b) == []
    assert await history(task) == [("overdue", 1), ("escalated", 2), ("escalated", 3)]


async def test_the_make_up_saturday_counts_as_a_working_day_late(place: Place) -> None:
    # Due Fri 9 Oct 2026; Sat 10 Oct is a make-up working day, so by Sunday it is a working day
    # late (an ordinary weekend would have waited until Monday had ended).
    task = await make_task(place, beijing(2026, 10, 9, 23, 59, 59))
    await escalate_overdue(beijing(2026, 10, 10, 18, 0))
    assert await level(task) == 1
    await escalate_overdue(beijing(2026, 10, 11, 0, 0, 1))
    assert await level(task) == 2
    # Sun 11 Oct is off: two working days late only once Mon 12 Oct has ended.
    await escalate_overdue(beijing(2026, 10, 12, 23, 0))
    assert await level(task) == 2
    await escalate_overdue(beijing(2026, 10, 13, 0, 0, 1))
    assert await level(task) == 3


async def test_one_message_per_person_per_run_and_a_second_run_changes_nothing(place: Place) -> None:
    # Mon 14 Sep 2026 and the week before are ordinary working days.
    long_ago = [await make_task(place, beijing(2026, 9, 1, 23, 59, 59)) for _ in range(2)]
    yesterday = await make_task(place, beijing(2026, 9, 14, 23, 59, 59), state="accepted")
    unassigned = await make_task(place, beijing(2026, 9, 14, 23, 59, 59), assignee=None)
    now = beijing(2026, 9, 15, 10, 0)

    result = await escalate_overdue(now)
    assert result["overdue"] >= 4 and result["escalated_street"] >= 2 and result["escalated_district"] >= 2

    # Tasks overdue for two weeks climb all three levels in one run, each level recorded.
    assert [await level(task) for task in (*long_ago, yesterday, unassigned)] == [3, 3, 1, 1]
    for task in long_ago:
        assert await history(task) == [("overdue", 1), ("escalated", 2), ("escalated", 3)]
    assert await history(yesterday) == [("overdue", 1)]

    # The worker: one message for their three tasks. The supervisor: one message for the
    # unassigned task and the two a working day late. The district: one, for the two.
    [worker] = await told(place.worker)
    assert (worker["overdue"], worker["escalated_street"], worker["escalated_district"]) == (3, 0, 0)
    assert worker["title_en"] == "Overdue visit tasks: 3 newly overdue"
    [supervisor] = await told(place.supervisor)
    assert (supervisor["overdue"], supervisor["escalated_street"], supervisor["escalated_district"]) == (1, 2, 0)
    [admin] = await told(place.admin, place.district)
    assert admin["districts"][place.district] == 2
    assert await told(place.supervisor_b) == []

    # One sync change per changed task, for its assignee's phone.
    ours = [str(task) for task in (*long_ago, yesterday)]
    changes = await SyncChange.select(SyncChange.entity_id, SyncChange.account).where(
        SyncChange.entity == "task", SyncChange.entity_id.is_in(ours)
    )
    assert sorted(row["entity_id"] for row in changes) == sorted(ours)
    assert {str(row["account"]) for row in changes} == {place.worker}

    async def snapshot() -> tuple[int, ...]:
        tables = (Notification, TaskEvent, SyncChange, OutboxMessage)
        return (*[await table.count() for table in tables], await VisitTask.count().where(VisitTask.escalation > 0))

    before = await snapshot()
    assert await escalate_overdue(now) == NOTHING
    assert await snapshot() == before


async def test_returned_tasks_and_disabled_workers_go_to_the_supervisor(place: Place) -> None:
    returned = await make_task(place, beijing(2026, 9, 14, 23, 59, 59), state="returned")
    orphaned = await make_task(place, beijing(2026, 9, 14, 23, 59, 59), assignee="other_worker")
    await Account.update({Account.is_active: False}).where(Account.id == place.other_worker)

    await escalate_overdue(beijing(2026, 9, 15, 10, 0))

    assert [await level(task) for task in (returned, orphaned)] == [1, 1]
    [message] = await told(place.supervisor)
    assert message["overdue"] == 2
    assert await told(place.worker) == [] and await told(place.other_worker) == []


async def test_visited_and_closed_tasks_never_escalate(place: Place) -> None:
    due = beijing(2026, 8, 3, 23, 59, 59)
    done = [await make_task(place, due, state=state) for state in ("visited", "closed")]

    await escalate_overdue(beijing(2026, 9, 15, 10, 0))

    assert [await level(task) for task in done] == [0, 0]
    for task in done:
        assert await history(task) == []
    assert await told(place.worker) == [] and await told(place.supervisor) == []
    assert await told(place.admin, place.district) == []


async def test_the_deadline_job_runs_on_a_real_worker(place: Place) -> None:
    # A month late by the wall clock: at least two working days whatever today is.
    task = await make_task(place, datetime.now(UTC) - timedelta(days=30))
    # A queue of our own: a burst worker that knows only these jobs must not take anyone else's.
    queue = f"{WorkerSettings.queue_name}:deadlines-test"
    pool = await create_pool(arq_settings())
    worker = Worker(
        functions=[escalate_deadlines, daily_covers],
        redis_pool=pool,
        queue_name=queue,
        burst=True,
        poll_delay=0,
    )
    try:
        job = await pool.enqueue_job("escalate_deadlines", _queue_name=queue)
        assert job is not None
        await worker.main()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
        result = await job.result(timeout=5)
    finally:
        await worker.close()
        await pool.aclose()

    assert result["overdue"] >= 1 and result["escalated_district"] >= 1
    assert await level(task) == 3
    assert await history(task) == [("overdue", 1), ("escalated", 2), ("escalated", 3)]
    assert len(await told(place.worker)) == 1
    assert len(await told(place.supervisor)) == 1
    assert len(await told(place.admin, place.district)) == 1
