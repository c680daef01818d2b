"""The family sees what was applied for on its behalf: a resident whose phone is the household file's
phone lists the household's applications, each with one plain-language status; nobody else does."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Role
from backend.audit.services import Actor
from backend.audit.tables import AuditLog
from tests.integration.application_kit import cases_of, new_family, route_now, submission, submit, unique_phone
from tests.integration.conftest import PASSWORD, Api, World

pytestmark = pytest.mark.anyio
MINE = "/api/v1/applications/mine"


async def _resident(http: Any, phone: str | None) -> tuple[str, Api]:
    username = f"family_{secrets.token_hex(3)}"
    account_id = await create_account(
        NewAccount(username=username, display_name="家属", password=PASSWORD, role=Role.resident, phone=phone),
        actor=Actor.system("tests"),
    )
    device = Api(http)
    assert (await device.login(username)).status_code == 200
    return str(account_id), device


async def test_the_linked_resident_sees_the_applications_and_their_status(http, as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    resident_id, resident = await _resident(http, family.phone)
    assert (await resident.get(MINE)).json() == []  # nothing applied for yet

    first = await submit(worker, family, submission(family))
    assert first.status_code == 201, first.text
    # Before routing: every service is on its way to its department.
    (waiting,) = (await resident.get(MINE)).json()
    assert waiting["id"] == first.json()["id"] and waiting["decided"] == 0 and waiting["total"] == 3
    assert {service["state"] for service in waiting["services"]} == {"submitted"}
    assert waiting["summary_en"].startswith("0 of 3 services decided: ")
    assert "正在转交部门" in waiting["summary_zh"]

    assert (await route_now()).jobs_failed == 0
    case_id = next(
        str(case["id"]) for case in await cases_of(first.json()["id"]) if case["service"] == "temporary_expenditure"
    )
    officer = await as_role("officer")
    assert (await officer.post(f"/api/v1/cases/{case_id}/accept")).status_code == 200
    approved = await officer.post(f"/api/v1/cases/{case_id}/approve", json={"amount_yuan": 3000, "period": "one_off"})
    assert approved.status_code == 200, approved.text
    second = await submit(worker, family, submission(family, services=("medical_assistance",)))
    assert second.status_code == 201, second.text

    listing = (await resident.get(MINE)).json()

    # Newest first; the decided one reads as the worker's view reads.
    assert [item["id"] for item in listing] == [second.json()["id"], first.json()["id"]]
    decided = listing[1]
    worker_view = (await worker.get(f"/api/v1/applications/{first.json()['id']}")).json()
    assert decided["summary_zh"] == worker_view["summary_zh"] and decided["summary_en"] == worker_view["summary_en"]
    assert decided["summary_en"].startswith(
        "1 of 3 services decided: temporary assistance (expenditure type) approved, 3,000 yuan"
    )
    assert decided["decided"] == 1 and decided["on_behalf"] is True
    states = {service["service"]: service["state"] for service in decided["services"]}
    assert states["temporary_expenditure"] == "approved" and states["medical_assistance"] == "new"
    # The household by its head's masked name only: no ID numbers, no phone.
    assert {item["household_name_masked"] for item in listing} == {"王**"}
    text = str(listing)
    assert family.head_id_number not in text and family.phone not in text and "王秀英" not in text
    assert "created_by" not in decided and "household_id" not in decided
    assert await AuditLog.exists().where(AuditLog.action == "application.list_mine", AuditLog.actor_id == resident_id)


async def test_nobody_else_sees_them_through_this_route(http, as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    assert (await submit(worker, family, submission(family))).status_code == 201
    _, family_member = await _resident(http, family.phone)
    assert len((await family_member.get(MINE)).json()) == 1

    _, other_family = await _resident(http, unique_phone())
    _, no_phone = await _resident(http, None)
    assert (await other_family.get(MINE)).json() == []
    assert (await no_phone.get(MINE)).json() == []
    # A guest (no account) and staff, even the worker who applied, do not use this route.
    assert (await Api(http).get(MINE)).status_code == 401
    for role in ("worker_a", "supervisor_a", "admin", "officer"):
        assert (await (await as_role(role)).get(MINE)).status_code == 403, role
