"""Department officers: their inbox, one case, each decision step reaching the worker and the
family, the combined status, and overdue cases escalating across a holiday."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from arq import create_pool
from arq.worker import Worker

from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Role
from backend.applications.tables import DepartmentCase
from backend.audit.services import Actor
from backend.audit.tables import AuditLog
from backend.cases.escalation import escalate_overdue_cases
from backend.lib.redis import arq_settings
from backend.orgs.tables import OrgUnit
from backend.tasks.calendar import CHINA
from backend.tasks.tables import VisitTask
from jobs.routing import escalate_case_deadlines
from jobs.worker import WorkerSettings
from tests.integration.application_kit import Family, cases_of, inbox, new_family, route_now, submission, submit
from tests.integration.conftest import PASSWORD, Api, World
from tests.integration.field import phone_photo, record_visit, upload

pytestmark = pytest.mark.anyio


async def _account(http: Any, role: Role, **scope: Any) -> tuple[str, Api]:
    username = f"case_{role.value}_{secrets.token_hex(3)}"
    account_id = await create_account(
        NewAccount(username=username, display_name=username, password=PASSWORD, role=role, **scope),
        actor=Actor.system("tests"),
    )
    device = Api(http)
    assert (await device.login(username)).status_code == 200
    return str(account_id), device


async def _routed(as_role, world: World) -> tuple[Family, str, dict[str, str]]:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    response = await submit(worker, family, submission(family))
    assert response.status_code == 201, response.text
    application_id = response.json()["id"]
    assert (await route_now()).jobs_failed == 0
    return family, application_id, {case["service"]: str(case["id"]) for case in await cases_of(application_id)}


async def test_an_officer_decides_and_the_worker_and_family_follow_every_step(http, as_role, world: World) -> None:
    family, application_id, cases = await _routed(as_role, world)
    worker_id = world.account_ids["worker_a"]
    # The family's own account: a resident who signed up with the household's phone.
    resident_id, resident = await _account(http, Role.resident, phone=family.phone)
    officer = await as_role("officer")  # civil affairs
    _, medical_officer = await _account(http, Role.department_officer, department_code="medical_insurance")

    # The inbox: only the officer's department's case, soonest deadline first, household masked.
    page = (await officer.get("/api/v1/cases", params={"state": "new", "limit": 500})).json()
    mine = [item for item in page["items"] if item["application_id"] == application_id]
    assert [item["service"] for item in mine] == ["temporary_expenditure"]
    assert {item["department"] for item in page["items"]} == {"civil_affairs"}
    assert mine[0]["household"]["head_name_masked"] == "王**" and mine[0]["overdue"] is False
    assert mine[0]["household"]["phone_masked"].startswith("139") and "*" in mine[0]["household"]["phone_masked"]

    case_id = cases["temporary_expenditure"]
    detail = (await officer.get(f"/api/v1/cases/{case_id}")).json()
    assert detail["answers"] == {"situation": "丈夫住院三个月，无法工作", "monthly_spending": 4200}
    assert {m["material"]: m["status"] for m in detail["materials"]} == {
        "id_card": "to_follow",
        "authorisation": "to_follow",
        "expense_receipts": "to_follow",
    }
    assert detail["consent"]["method"] == "signed_authorisation" and detail["consent"]["by_masked"] == "王**"
    assert detail["applicant"]["id_number_masked"] == family.head_id_number[:4] + "*" * 10 + family.head_id_number[-4:]
    assert family.head_id_number not in str(detail)

    # Accept → ask for more information (a visit task for the worker) → accept → approve.
    assert (await officer.post(f"/api/v1/cases/{case_id}/accept")).json()["state"] == "accepted"
    asked = await officer.post(f"/api/v1/cases/{case_id}/request-info", json={"message": "请补充近三个月住院费用票据"})
    assert asked.status_code == 200, asked.text
    assert asked.json()["state"] == "info_requested" and asked.json()["info_task_id"]
    worker = await as_role("worker_a")
    task = (await worker.get(f"/api/v1/tasks/{asked.json()['info_task_id']}")).json()
    assert task["household"]["id"] == family.id and task["assignee_id"] == worker_id
    assert "info_requested" in task["type_codes"]
    assert (await officer.post(f"/api/v1/cases/{case_id}/accept")).json()["state"] == "accepted"
    approved = await officer.post(
        f"/api/v1/cases/{case_id}/approve", json={"amount_yuan": 3000, "period": "monthly", "period_months": 6}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["amount_yuan"] == 3000

    # A decided case cannot be decided again.
    again = await officer.post(f"/api/v1/cases/{case_id}/reject", json={"reason": "重复提交"})
    assert again.status_code == 409 and again.json()["code"] == "case.bad_state"

    # Another department rejects its case with a reason.
    rejected = await medical_officer.post(
        f"/api/v1/cases/{cases['medical_assistance']}/reject", json={"reason": "已享受同类医疗救助"}
    )
    assert rejected.status_code == 200 and rejected.json()["reason"] == "已享受同类医疗救助"

    # Every step reached the worker and the family's account, and the audit log.
    for account in (worker_id, resident_id):
        for kind in ("case.accept", "case.request_info", "case.approve", "case.reject"):
            told = [m for m in await inbox(account, kind) if m["application"] == application_id]
            assert told, (account, kind)
    [approved_message] = [m for m in await inbox(worker_id, "case.approve") if m["application"] == application_id]
    assert approved_message["title_en"] == "Temporary assistance (expenditure type): approved"
    for action in ("case.accept", "case.request_info", "case.approve"):
        assert await AuditLog.exists().where(AuditLog.action == action, AuditLog.object_id == case_id)

    # One plain-language status for the worker and for the family.
    status = (await worker.get(f"/api/v1/applications/{application_id}")).json()
    assert status["decided"] == 2 and status["total"] == 3
    assert status["summary_en"].startswith(
        "2 of 3 services decided: temporary assistance (expenditure type) approved, 3,000 yuan a month for 6 months; "
        "medical assistance not approved; employment assistance (recognition as a person with employment difficulty) "
        "in review, due "
    )
    assert status["summary_zh"].startswith(
        "3 项中已有 2 项办结：临时救助（支出型）已批准，每月 3000 元，共 6 个月；医疗救助未获批准；"
        "就业援助（就业困难人员认定）审核中，"
    )
    assert status["summary_zh"].endswith("日前答复")
    family_view = await resident.get(f"/api/v1/applications/{application_id}")
    assert family_view.status_code == 200 and family_view.json()["summary_zh"] == status["summary_zh"]
    _, stranger = await _account(http, Role.resident)
    assert (await stranger.get(f"/api/v1/applications/{application_id}")).status_code == 404


async def test_bad_decisions_are_refused_clearly(as_role, world: World) -> None:
    _, _, cases = await _routed(as_role, world)
    officer = await as_role("officer")
    case_id = cases["temporary_expenditure"]
    for path, body in (
        ("approve", {"amount_yuan": -5, "period": "monthly"}),
        ("approve", {"amount_yuan": 500, "period": "weekly"}),
        ("approve", {"amount_yuan": 500}),
        ("reject", {"reason": ""}),
        ("request-info", {"message": "x" * 201}),
    ):
        response = await officer.post(f"/api/v1/cases/{case_id}/{path}", json=body)
        assert response.status_code == 400, (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_input" and response.json()["errors"]
    state = await DepartmentCase.select(DepartmentCase.state).where(DepartmentCase.id == case_id).first()
    assert state is not None and state["state"] == "new"


async def test_another_departments_case_is_not_found_and_audited(as_role, world: World) -> None:
    _, _, cases = await _routed(as_role, world)
    officer = await as_role("officer")
    for path in ("", "/accept"):
        method = officer.get if not path else officer.post
        response = await method(f"/api/v1/cases/{cases['employment_assistance']}{path}")
        assert response.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["officer"],
        AuditLog.object_id == cases["employment_assistance"],
        AuditLog.outcome == "denied",
    )
    worker = await as_role("worker_a")
    assert (await worker.get("/api/v1/cases")).status_code == 403


def beijing(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=CHINA)


async def _level(case_id: str) -> int:
    row = await DepartmentCase.select(DepartmentCase.escalation).where(DepartmentCase.id == case_id).first()
    assert row is not None
    return int(row["escalation"])


async def test_an_overdue_case_due_on_the_eve_of_national_day_waits_out_the_holiday(
    http, as_role, world: World
) -> None:
    _, _, cases = await _routed(as_role, world)
    case_id = cases["temporary_expenditure"]
    await DepartmentCase.update({DepartmentCase.due_at: beijing(2026, 9, 30, 23, 59, 59)}).where(
        DepartmentCase.id == case_id
    )
    officer, supervisor, admin = (world.account_ids[key] for key in ("officer", "supervisor_a", "admin"))
    before = {person: len(await inbox(person, "case.overdue")) for person in (officer, supervisor, admin)}

    async def told(person: str) -> list[dict[str, Any]]:
        return (await inbox(person, "case.overdue"))[before[person] :]

    await escalate_overdue_cases(beijing(2026, 9, 30, 23, 0))
    assert await _level(case_id) == 0

    await escalate_overdue_cases(beijing(2026, 10, 1, 0, 0, 1))
    assert await _level(case_id) == 1
    [message] = await told(officer)
    assert message["overdue"] == 1 and message["title_zh"].startswith("救助案件逾期")
    assert await told(supervisor) == []

    # The holiday and the first working day after it are not yet a working day late.
    for now in (beijing(2026, 10, 5, 12, 0), beijing(2026, 10, 7, 23, 0), beijing(2026, 10, 8, 18, 0)):
        await escalate_overdue_cases(now)
        assert await _level(case_id) == 1, now

    # Thu 8 Oct has ended: the officers again, and the household's street.
    await escalate_overdue_cases(beijing(2026, 10, 9, 0, 0, 1))
    assert await _level(case_id) == 2
    assert [m["escalated_street"] for m in await told(supervisor)] == [1]
    assert len(await told(officer)) == 2
    assert await told(admin) == []

    # Sat 10 Oct is a make-up working day: by its morning two working days have passed.
    await escalate_overdue_cases(beijing(2026, 10, 10, 9, 0))
    assert await _level(case_id) == 3
    assert [m["escalated_district"] for m in await told(admin)] == [1]
    # Running again at the same moment changes nothing and tells nobody.
    assert (await escalate_overdue_cases(beijing(2026, 10, 10, 9, 0)))["notified"] == 0


async def test_the_escalation_cron_runs_on_a_real_worker() -> None:
    queue = f"{WorkerSettings.queue_name}:case-deadlines-test"
    pool = await create_pool(arq_settings())
    worker = Worker(functions=[escalate_case_deadlines], redis_pool=pool, queue_name=queue, burst=True, poll_delay=0)
    try:
        job = await pool.enqueue_job("escalate_case_deadlines", _queue_name=queue)
        assert job is not None
        await worker.main()
        assert worker.jobs_complete == 1 and worker.jobs_failed == 0
        result = await job.result(timeout=5)
    finally:
        await pool.aclose()  # the pool is ours (worker.close() would close it with a deprecated call)
    assert set(result) == {"overdue", "escalated_street", "escalated_district", "notified"}


async def test_an_officer_sees_the_photos_handed_in_for_their_case_and_nothing_else(
    http, as_role, world: World
) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    street = (await OrgUnit.select(OrgUnit.id).where(OrgUnit.code == world.street_codes["A"]).first())["id"]
    task_id = (
        await VisitTask.insert(
            VisitTask(
                household=family.id,
                assignee=world.account_ids["worker_a"],
                street=street,
                grid_code=world.grid_codes["GA1"],
                type_codes="[]",
                due_at=datetime.now(UTC) + timedelta(days=3),
            )
        ).returning(VisitTask.id)
    )[0]["id"]
    id_card, kitchen = phone_photo(seed=1), phone_photo(seed=2)
    visit = await record_visit(worker, str(task_id), (id_card, kitchen))
    visit_id = visit.json()["visit_id"]
    photo_ids = [(await upload(worker, visit_id, data)).json()["photo_id"] for data in (id_card, kitchen)]
    body = submission(family, services=("temporary_expenditure",))
    body["materials"]["id_card"] = {"photos": [{"photo_id": photo_ids[0]}]}
    sent = await submit(worker, family, body)
    assert sent.status_code == 201, sent.text
    assert (await route_now()).jobs_failed == 0
    officer = await as_role("officer")  # civil affairs decides temporary assistance
    _, medical_officer = await _account(http, Role.department_officer, department_code="medical_insurance")

    shown = await officer.get(f"/api/v1/photos/{photo_ids[0]}")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    # The kitchen photo was not handed in; another department has no case: neither may look.
    assert (await officer.get(f"/api/v1/photos/{photo_ids[1]}")).status_code == 404
    assert (await medical_officer.get(f"/api/v1/photos/{photo_ids[0]}")).status_code == 404
    reads = await AuditLog.select(AuditLog.outcome).where(
        AuditLog.object_id == photo_ids[0], AuditLog.action == "photo.read"
    )
    assert sorted(row["outcome"] for row in reads) == ["denied", "success"]


async def test_the_departments_clock_stops_while_it_waits_for_the_familys_information(as_role, world: World) -> None:
    _, _, cases = await _routed(as_role, world)
    case_id = cases["temporary_expenditure"]
    officer = await as_role("officer")
    due_before = datetime.fromisoformat((await officer.get(f"/api/v1/cases/{case_id}")).json()["due_at"])
    asked = await officer.post(f"/api/v1/cases/{case_id}/request-info", json={"message": "请补充住院费用票据"})
    assert asked.status_code == 200, asked.text
    # The family took two days to find the receipts (the wait is moved back in time: no sleeping).
    paused = await DepartmentCase.select(DepartmentCase.paused_at).where(DepartmentCase.id == case_id).first()
    assert paused is not None and paused["paused_at"] is not None
    await DepartmentCase.update({DepartmentCase.paused_at: datetime.now(UTC) - timedelta(days=2)}).where(
        DepartmentCase.id == case_id
    )

    # Long past the original deadline, a case waiting for information is neither overdue nor escalated.
    await escalate_overdue_cases(due_before + timedelta(days=10))
    waiting = (await officer.get(f"/api/v1/cases/{case_id}")).json()
    assert waiting["escalation"] == 0 and waiting["overdue"] is False

    resumed = (await officer.post(f"/api/v1/cases/{case_id}/accept")).json()
    moved = datetime.fromisoformat(resumed["due_at"]) - due_before
    assert timedelta(days=2) <= moved < timedelta(days=2, minutes=5)
    stored = await DepartmentCase.select(DepartmentCase.paused_at).where(DepartmentCase.id == case_id).first()
    assert stored is not None and stored["paused_at"] is None
