"""Routing: one case per selected service with a working-day deadline, never twice, and failures
retried then parked as dead letters an admin can see and re-queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
import pytest
from arq import Retry, create_pool

from backend.applications.tables import DepartmentCase
from backend.departments.tables import Service
from backend.lib.db import as_utc, load_json
from backend.lib.redis import arq_settings
from backend.outbox.tables import DeadLetter, OutboxMessage
from backend.tasks.calendar import due_at
from jobs import routing as routing_jobs
from jobs.worker import WorkerSettings
from tests.integration.application_kit import (
    SERVICES,
    cases_of,
    inbox,
    new_family,
    relay,
    route_now,
    routing_message,
    run_worker,
    submission,
    submit,
)
from tests.integration.conftest import World

pytestmark = pytest.mark.anyio


async def _applied(as_role, world: World, services: tuple[str, ...] = SERVICES, **changes: Any) -> str:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    response = await submit(worker, family, submission(family, services=services, **changes))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_each_service_becomes_one_case_with_its_deadline_and_the_department_is_told(
    as_role, world: World
) -> None:
    officer = world.account_ids["officer"]
    before = len(await inbox(officer, "case.new"))
    application_id = await _applied(as_role, world)
    submitted = as_utc((await routing_message(application_id))["created_at"])

    worker = await route_now()
    assert worker.jobs_failed == 0

    cases = await cases_of(application_id)
    assert [(case["service"], case["department"], case["state"]) for case in cases] == [
        ("employment_assistance", "hrss", "new"),
        ("medical_assistance", "medical_insurance", "new"),
        ("temporary_expenditure", "civil_affairs", "new"),
    ]
    # 15 working days on China's calendar, to the end of that day in Beijing.
    for case in cases:
        expected = due_at(submitted, 15, "working_days")
        assert abs((as_utc(case["due_at"]) - expected).total_seconds()) < 24 * 3600
        assert as_utc(case["due_at"]).astimezone(expected.tzinfo).time().isoformat() == "23:59:59"
    # The civil-affairs officer has a new inbox message (and a push is on its way through the outbox).
    told = await inbox(officer, "case.new")
    assert len(told) > before and told[-1]["department"] == "civil_affairs"
    assert "新的救助案件" in told[-1]["title_zh"]
    pushes = await OutboxMessage.select(OutboxMessage.payload).where(OutboxMessage.kind == "push_notify")
    assert any(officer in load_json(row["payload"]).get("account_ids", []) for row in pushes)


async def test_a_job_that_runs_twice_or_twice_at_once_makes_no_second_case(as_role, world: World) -> None:
    application_id = await _applied(as_role, world)
    message = await routing_message(application_id)
    # A second message for the same application, as a re-enqueue after a lost acknowledgement would make.
    duplicate = (
        await OutboxMessage.insert(
            OutboxMessage(
                kind="route_application", payload=msgspec.json.encode({"application": application_id}).decode()
            )
        ).returning(OutboxMessage.id)
    )[0]["id"]

    first, second = await asyncio.gather(
        routing_jobs.route_application({"job_try": 1}, message["id"]),
        routing_jobs.route_application({"job_try": 1}, duplicate),
    )
    again = await routing_jobs.route_application({"job_try": 2}, message["id"])
    assert again["done"] is True  # the message was already done: nothing to do
    cases = await cases_of(application_id)
    assert len(cases) == 3 and len({case["service"] for case in cases}) == 3
    assert first["cases"] + second["cases"] >= 3

    # The real worker, handed both messages again (arq delivers at least once): still three cases.
    pool = await create_pool(arq_settings())
    try:
        for message_id in (message["id"], duplicate):
            await pool.enqueue_job("route_application", message_id, _queue_name=WorkerSettings.queue_name)
    finally:
        await pool.aclose()
    worker = await run_worker()
    assert worker.jobs_failed == 0
    assert len(await cases_of(application_id)) == 3


async def test_a_crashed_routing_transaction_leaves_nothing_and_the_rerun_completes(as_role, world: World) -> None:
    """The worker dies mid-routing: its transaction never commits, the message stays pending, and
    the next run (the relay re-enqueues, a burst worker runs it) routes it once."""
    from backend.applications.routing import route
    from backend.lib.db import engine

    application_id = await _applied(as_role, world)
    message = await routing_message(application_id)

    class Killed(BaseException):
        pass

    with pytest.raises(Killed):
        async with engine().transaction():
            await route(message["id"])  # joins the outer transaction
            assert len(await cases_of(application_id)) == 3  # written, not yet committed …
            raise Killed  # … when the process dies
    assert await cases_of(application_id) == []
    assert (await routing_message(application_id))["done_at"] is None

    worker = await route_now()
    assert worker.jobs_failed == 0
    assert len(await cases_of(application_id)) == 3
    assert (await routing_message(application_id))["done_at"] is not None


async def test_a_message_that_keeps_failing_is_parked_visible_and_can_be_requeued(
    as_role, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Retries without waiting, so the test does not sleep through the backoff.
    monkeypatch.setattr(routing_jobs, "RETRY_BASE_SECONDS", 0)
    admin = await as_role("admin")
    application_id = await _applied(
        as_role,
        world,
        services=("temporary_emergency", "legal_aid"),
        materials={code: {"to_follow": True} for code in ("id_card", "authorisation", "case_summary")},
    )
    message = await routing_message(application_id)
    saved = await Service.select().where(Service.code == "legal_aid").first()
    assert saved is not None
    # The justice bureau's service leaves the catalogue between submission and routing.
    await Service.delete().where(Service.code == "legal_aid")
    try:
        await relay()
        worker = await run_worker()
        assert worker.jobs_retried >= routing_jobs.ROUTE_MAX_TRIES - 1
        assert await cases_of(application_id) == []  # nothing half-routed

        listed = await admin.get("/api/v1/dead-letters", params={"kind": "route_application"})
        assert listed.status_code == 200
        [parked] = [row for row in listed.json() if row["message_id"] == message["id"]]
        assert parked["attempts"] == routing_jobs.ROUTE_MAX_TRIES
        assert "legal_aid" in parked["error"] and parked["payload"] == {"application": application_id}
        assert (await routing_message(application_id))["done_at"] is not None  # the relay stops handing it over
        officer = await as_role("officer")
        assert (await officer.get("/api/v1/dead-letters")).status_code == 403
    finally:
        await Service.insert(Service(**saved))

    # The catalogue is fixed; the admin re-queues it and it is routed.
    requeued = await admin.post("/api/v1/dead-letters/requeue", json={"ids": [parked["id"], 999_999_999]})
    assert requeued.status_code == 200
    assert requeued.json() == {"requeued": [parked["id"]], "not_found": [999_999_999]}
    worker = await run_worker()
    assert worker.jobs_failed == 0
    assert sorted(case["service"] for case in await cases_of(application_id)) == ["legal_aid", "temporary_emergency"]
    row = await DeadLetter.select().where(DeadLetter.id == parked["id"]).first()
    assert row is not None and row["requeued_at"] is not None
    open_ids = [item["id"] for item in (await admin.get("/api/v1/dead-letters")).json()]
    all_ids = [item["id"] for item in (await admin.get("/api/v1/dead-letters?include_requeued=true")).json()]
    assert parked["id"] not in open_ids and parked["id"] in all_ids
    again = await admin.post("/api/v1/dead-letters/requeue", json={"ids": [parked["id"]]})
    assert again.json() == {"requeued": [], "not_found": [parked["id"]]}


async def test_a_message_for_a_missing_application_does_not_hold_up_the_others(
    as_role, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing_jobs, "RETRY_BASE_SECONDS", 0)
    ghost = (
        await OutboxMessage.insert(
            OutboxMessage(
                kind="route_application",
                payload=msgspec.json.encode({"application": "00000000-0000-4000-8000-000000000000"}).decode(),
            )
        ).returning(OutboxMessage.id)
    )[0]["id"]
    application_id = await _applied(as_role, world)
    # The ghost's job runs first: it routes the good message it took along, and asks to be retried itself.
    with pytest.raises(Retry):
        await routing_jobs.route_application({"job_try": 1}, ghost)
    assert len(await cases_of(application_id)) == 3
    await relay()
    worker = await run_worker()
    assert worker.jobs_failed == 0
    parked = await DeadLetter.select().where(DeadLetter.message_id == ghost).first()
    assert parked is not None and "does not exist" in parked["error"]
    assert await DepartmentCase.count().where(DepartmentCase.application == application_id) == 3
    assert datetime.now(UTC) >= as_utc(parked["parked_at"])


async def test_a_worker_process_killed_in_the_middle_of_routing_loses_and_doubles_nothing(
    as_role, world: World
) -> None:
    """A real ``gridaid worker`` takes the routing job and is SIGKILLed while its transaction waits
    on the department_case table; a new worker routes the application exactly once."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from arq.constants import in_progress_key_prefix, job_key_prefix

    from backend.lib.db import is_sqlite, write_transaction

    application_id = await _applied(as_role, world)
    job_id = f"outbox:{(await routing_message(application_id))['key']}"
    gridaid = Path(sys.executable).with_name("gridaid")
    pool = await create_pool(arq_settings())
    try:
        # Our write lock makes the worker's routing transaction wait, so it is killed mid-job.
        async with write_transaction():
            if not is_sqlite():
                await DepartmentCase.raw("LOCK TABLE department_case IN EXCLUSIVE MODE")
            await relay()
            command = [str(gridaid), "worker"]
            quiet = subprocess.DEVNULL
            # Started once and killed: nothing to await meanwhile.
            process = subprocess.Popen(command, env=os.environ.copy(), stdout=quiet, stderr=quiet)  # noqa: ASYNC220
            try:
                with anyio.fail_after(60):
                    while not await pool.exists(in_progress_key_prefix + job_id):  # noqa: ASYNC110
                        await anyio.sleep(0.05)  # polls Redis for the worker's claim on the job
            finally:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
            assert process.returncode == -signal.SIGKILL
        assert await cases_of(application_id) == []
        assert (await routing_message(application_id))["done_at"] is None
        # The dead worker's claim would expire after the job timeout; we expire it now. Its cron
        # jobs, queued as it started, belong to workers with a schedule, not to our burst workers.
        await pool.delete(in_progress_key_prefix + job_id)
        for queued in await pool.zrange(WorkerSettings.queue_name, 0, -1):
            if queued.decode().startswith("cron:"):
                await pool.zrem(WorkerSettings.queue_name, queued)
                await pool.delete(job_key_prefix + queued.decode())
    finally:
        await pool.aclose()

    worker = await run_worker()
    assert worker.jobs_failed == 0
    assert sorted(case["service"] for case in await cases_of(application_id)) == sorted(SERVICES)
    assert (await routing_message(application_id))["done_at"] is not None
