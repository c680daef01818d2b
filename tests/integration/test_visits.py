"""Visits from phones: stored once however often (and however concurrently) they are sent."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from backend.audit.tables import AuditLog
from backend.lib.db import load_json
from backend.notifications.tables import Notification
from backend.tasks.tables import TaskEvent, VisitTask
from backend.visits.tables import Visit
from tests.integration.field import open_task, phone_photo, record_visit, sha256

pytestmark = pytest.mark.anyio

BODY = {
    "found": "住院治疗中，家中无收入",
    "needs": ["medical", "temporary"],
    "notes": "邻居帮忙照看孩子",
    "visited_at": "2026-11-20T09:30:00+08:00",
    "lon": 119.905,
    "lat": 31.705,
    "accuracy_m": 8.0,
}


async def test_a_visit_is_stored_with_what_the_worker_recorded_and_a_retry_gets_the_same_answer(
    http, as_role, world
) -> None:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    photo = phone_photo()
    body = {**BODY, "photos": [sha256(photo)]}
    key = str(uuid.uuid4())
    first = await worker.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers={"idempotency-key": key})
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["task_id"] == task_id and answer["state"] == "visited"
    assert answer["attributed_to"] == world.account_ids["worker_a"] and answer["after_reassignment"] is False
    assert answer["photos_missing"] == [sha256(photo)]
    assert "idempotent-replayed" not in first.headers

    retry = await worker.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers={"idempotency-key": key})
    assert retry.status_code == 200 and retry.json() == answer
    assert retry.headers["idempotent-replayed"] == "true"

    other = await worker.post(
        f"/api/v1/tasks/{task_id}/visit", json={**body, "notes": "改过的"}, headers={"idempotency-key": key}
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency.key_reused"

    supervisor = await as_role("supervisor_a")
    visits = (await supervisor.get(f"/api/v1/visits?task_id={task_id}")).json()
    assert len(visits) == 1
    visit = visits[0]
    assert visit["id"] == answer["visit_id"] and visit["worker_id"] == world.account_ids["worker_a"]
    assert (visit["found"], visit["needs"], visit["notes"]) == (BODY["found"], BODY["needs"], BODY["notes"])
    assert (visit["lon"], visit["lat"], visit["accuracy_m"]) == (119.905, 31.705, 8.0)
    assert visit["visited_at"].startswith("2026-11-20T01:30:00")
    assert visit["photos"] == [
        {"sha256": sha256(photo), "complete": False, "photo_id": None, "width": None, "height": None}
    ]
    detail = (await supervisor.get(f"/api/v1/tasks/{task_id}")).json()
    assert detail["state"] == "visited"
    assert [event["kind"] for event in detail["history"]].count("visited") == 1
    # Reading what a worker wrote about a family is audited.
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["supervisor_a"],
        AuditLog.action == "visit.list",
        AuditLog.object_id == task_id,
    )


async def test_ten_copies_sent_at_once_make_one_visit(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    key = str(uuid.uuid4())
    url = f"/api/v1/tasks/{task_id}/visit"
    answers = await asyncio.gather(*(worker.post(url, json=BODY, headers={"idempotency-key": key}) for _ in range(10)))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers]
    assert len({a.json()["visit_id"] for a in answers}) == 1
    assert await Visit.count().where(Visit.task == task_id) == 1
    assert await TaskEvent.count().where(TaskEvent.task == task_id, TaskEvent.kind == "visited") == 1
    assert await AuditLog.count().where(AuditLog.action == "task.visit", AuditLog.object_id == task_id) == 1

    # Ten different visits (ten keys) of the same task are ten visits: a second visit is a real event.
    second = await asyncio.gather(
        *(worker.post(url, json=BODY, headers={"idempotency-key": str(uuid.uuid4())}) for _ in range(3))
    )
    assert [a.status_code for a in second] == [200] * 3
    assert await Visit.count().where(Visit.task == task_id) == 4


async def test_a_visit_for_a_task_reassigned_while_offline_is_accepted_and_attributed(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    supervisor = await as_role("supervisor_a")
    moved = await supervisor.post(
        "/api/v1/tasks/reassign",
        json={"task_ids": [task_id], "worker_id": world.account_ids["worker_b"], "reason": "原网格员请假"},
    )
    assert moved.status_code == 200 and moved.json()["moved"] == 1

    worker_a = await as_role("worker_a")  # offline all along: the phone sends it now
    response = await record_visit(worker_a, task_id)
    assert response.status_code == 200, response.text
    assert response.json()["after_reassignment"] is True
    assert response.json()["attributed_to"] == world.account_ids["worker_a"]
    row = await Visit.select(Visit.worker, Visit.after_reassignment).where(Visit.task == task_id).first()
    assert str(row["worker"]) == world.account_ids["worker_a"] and row["after_reassignment"] is True
    for who in ("worker_a", "worker_b", "supervisor_a"):
        told = await Notification.select(Notification.detail).where(
            Notification.account == world.account_ids[who], Notification.kind == "task.visited_elsewhere"
        )
        assert any(load_json(row["detail"])["task"] == task_id for row in told), who
    # Still with worker_b; the task waits on the supervisor now.
    task = await VisitTask.select(VisitTask.assignee, VisitTask.state).where(VisitTask.id == task_id).first()
    assert str(task["assignee"]) == world.account_ids["worker_b"] and task["state"] == "visited"


async def test_a_visit_for_a_task_closed_meanwhile_is_still_kept(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    assert (await record_visit(worker, task_id)).status_code == 200
    assert (await worker.post(f"/api/v1/tasks/{task_id}/close")).status_code == 204
    late = await record_visit(worker, task_id, found="补记：第二次走访")  # the other phone, offline till now
    assert late.status_code == 200, late.text
    assert await Visit.count().where(Visit.task == task_id) == 2
    task = await VisitTask.select(VisitTask.state).where(VisitTask.id == task_id).first()
    assert task["state"] == "closed"  # a late visit does not reopen a closed task


async def test_what_a_visit_must_carry(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    worker = await as_role("worker_a")
    url = f"/api/v1/tasks/{task_id}/visit"
    missing_key = await worker.post(url, json=BODY)
    assert missing_key.status_code == 422 and missing_key.json()["code"] == "idempotency.key_required"
    for bad in (
        {**BODY, "found": "x" * 2001},
        {**BODY, "notes": "x" * 2001},
        {**BODY, "photos": [sha256(bytes([i])) for i in range(7)]},
        {**BODY, "photos": ["not-a-hash"]},
        {**BODY, "photos": [sha256(b"x").upper()]},
        {**BODY, "household_id": "mass-assignment"},
        {**BODY, "lat": 91},
    ):
        response = await worker.post(url, json=bad, headers={"idempotency-key": str(uuid.uuid4())})
        assert response.status_code == 422 and response.json()["code"] == "visit.invalid", bad
    assert await Visit.count().where(Visit.task == task_id) == 0


async def test_outsiders_neither_record_nor_read_visits(http, as_role, world) -> None:
    task_id = await open_task(http, world)
    worker_a = await as_role("worker_a")
    assert (await record_visit(worker_a, task_id)).status_code == 200

    worker_b = await as_role("worker_b")
    refused = await record_visit(worker_b, task_id)
    assert refused.status_code == 404
    supervisor_b = await as_role("supervisor_b")
    hidden = await supervisor_b.get(f"/api/v1/visits?task_id={task_id}")
    assert hidden.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["supervisor_b"],
        AuditLog.object_id == task_id,
        AuditLog.outcome == "denied",
    )
    officer = await as_role("officer")
    assert (await officer.get(f"/api/v1/visits?task_id={task_id}")).status_code == 403
    assert await Visit.count().where(Visit.task == task_id) == 1
