"""Shared steps for the application, routing and case tests: a household of our own, a valid
submission, the relay and a real arq worker in burst mode."""

from __future__ import annotations

import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from arq import create_pool
from arq.worker import Worker

from backend.applications.tables import Application, DepartmentCase
from backend.lib.db import load_json
from backend.lib.redis import arq_settings
from backend.notifications.tables import Notification
from backend.outbox import services as outbox
from backend.outbox.tables import OutboxMessage
from jobs.worker import WorkerSettings
from tests.helpers import id_number
from tests.integration.conftest import Api, World

# Three services, three departments: civil affairs (the world's officer), medical insurance, HR & social security.
SERVICES = ("temporary_expenditure", "medical_assistance", "employment_assistance")
MATERIALS = ("id_card", "authorisation", "expense_receipts", "medical_bills", "unemployment_registration")


@dataclass
class Family:
    id: str
    head_id_number: str
    head_member: str
    spouse_member: str
    phone: str


def unique_phone() -> str:
    return f"139{random.SystemRandom().randint(0, 99_999_999):08d}"


async def new_family(admin: Api, world: World, grid: str = "GA1") -> Family:
    head, spouse, phone = id_number(), id_number(), unique_phone()
    response = await admin.post(
        "/api/v1/households",
        json={
            "code": f"HAP{secrets.token_hex(5)}",
            "head_name": "王秀英",
            "address": "申请路8号",
            "grid_code": world.grid_codes[grid],
            "category": "dibao",
            "phone": phone,
            "members": [
                {"name": "王秀英", "relation": "head", "id_number": head, "is_main_earner": True},
                {"name": "李建国", "relation": "spouse", "id_number": spouse},
            ],
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    members = {member["relation"]: member["id"] for member in body["members"]}
    return Family(body["id"], head, members["head"], members["spouse"], phone)


def submission(family: Family, services: tuple[str, ...] = SERVICES, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "applicant_id_number": family.head_id_number,
        "services": [
            {"service": code, "answers": {"situation": "丈夫住院三个月，无法工作", "monthly_spending": 4200}}
            for code in services
        ],
        "materials": {code: {"to_follow": True} for code in MATERIALS},
        "consent": {
            "member_id": family.head_member,
            "method": "signed_authorisation",
            "at": datetime.now(UTC).isoformat(),
        },
        "rule_version": 1,
    }
    body.update(changes)
    return body


async def submit(worker: Api, family: Family, body: dict[str, Any], key: str | None = None) -> Any:
    return await worker.post(
        f"/api/v1/households/{family.id}/applications",
        json=body,
        headers={"idempotency-key": key or str(uuid.uuid4())},
    )


async def relay() -> None:
    pool = await create_pool(arq_settings())
    try:
        await outbox.relay(pool, queue_name=WorkerSettings.queue_name)
    finally:
        await pool.aclose()


async def run_worker() -> Worker:
    """A real arq worker with the production job list, in burst mode: it runs what is queued, then returns."""
    pool = await create_pool(arq_settings())
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_pool=pool,
        queue_name=WorkerSettings.queue_name,
        burst=True,
        poll_delay=0,
        max_tries=WorkerSettings.max_tries,
    )
    try:
        await worker.main()
    finally:
        # Not worker.close(): it closes the pool with a deprecated call; the pool is ours to close.
        await pool.aclose()
    return worker


async def route_now() -> Worker:
    await relay()
    return await run_worker()


async def cases_of(application_id: str) -> list[dict[str, Any]]:
    return list(
        await DepartmentCase.select(
            DepartmentCase.id,
            DepartmentCase.service,
            DepartmentCase.state,
            DepartmentCase.due_at,
            DepartmentCase.department.code.as_alias("department"),
        )
        .where(DepartmentCase.application == application_id)
        .order_by(DepartmentCase.service)
    )


async def applications_of(family: Family) -> int:
    return await Application.count().where(Application.household == family.id)


async def routing_message(application_id: str) -> dict[str, Any]:
    for row in await OutboxMessage.select().where(OutboxMessage.kind == "route_application"):
        if load_json(row["payload"]).get("application") == application_id:
            return dict(row)
    raise AssertionError(f"no routing message for {application_id}")


async def inbox(account_id: str, kind: str) -> list[dict[str, Any]]:
    rows = (
        await Notification.select(Notification.title_zh, Notification.title_en, Notification.detail)
        .where(Notification.account == account_id, Notification.kind == kind)
        .order_by(Notification.created_at)
    )
    return [{**load_json(row["detail"]), "title_zh": row["title_zh"], "title_en": row["title_en"]} for row in rows]
