"""Applications on a household's behalf: submission, idempotency, bad input, and Redis going away."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from arq.connections import ArqRedis
from litestar import Litestar

from backend.applications.tables import Application
from backend.audit.tables import AuditLog
from backend.departments.tables import Service
from backend.lib.db import load_json
from backend.tasks.tables import VisitTask
from tests.helpers import id_number
from tests.integration.application_kit import (
    SERVICES,
    applications_of,
    cases_of,
    new_family,
    route_now,
    routing_message,
    submission,
    submit,
)
from tests.integration.conftest import World

pytestmark = pytest.mark.anyio


async def test_a_worker_applies_on_behalf_and_every_service_shows_as_submitted(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    key = str(uuid.uuid4())
    response = await submit(worker, family, submission(family), key)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == key and body["household_id"] == family.id and body["on_behalf"] is True
    assert [service["service"] for service in body["services"]] == list(SERVICES)
    assert {service["state"] for service in body["services"]} == {"submitted"}
    assert body["total"] == 3 and body["decided"] == 0
    assert body["summary_en"].startswith("0 of 3 services decided: temporary assistance (expenditure type) being sent")
    assert body["summary_zh"].startswith("3 项中已有 0 项办结：临时救助（支出型）正在转交部门")
    assert body["rule_version"] >= 1

    # The application and its routing message were written together; the write was audited.
    message = await routing_message(key)
    assert message["done_at"] is None
    assert await AuditLog.exists().where(AuditLog.action == "application.create", AuditLog.object_id == key)

    # The worker and the household's list read the same status back.
    again = await worker.get(f"/api/v1/applications/{key}")
    assert again.status_code == 200 and again.json()["summary_en"] == body["summary_en"]
    listed = (await worker.get(f"/api/v1/households/{family.id}/applications")).json()
    assert [item["id"] for item in listed] == [key]


async def test_the_same_key_makes_one_application_and_a_different_body_is_a_conflict(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    key, body = str(uuid.uuid4()), submission(family)
    first = await submit(worker, family, body, key)
    retry = await submit(worker, family, body, key)
    assert first.status_code == retry.status_code == 201
    assert retry.headers.get("idempotent-replayed") == "true" and retry.json()["id"] == key
    assert await applications_of(family) == 1

    changed = await submit(worker, family, submission(family, services=SERVICES[:1]), key)
    assert changed.status_code == 409
    assert changed.json()["code"] == "idempotency.key_reused"
    assert await applications_of(family) == 1

    # Another worker cannot take over the id either (their key scope differs; the id is taken).
    other = await as_role("worker_b")
    family_b = await new_family(admin, world, grid="GB1")
    taken = await submit(other, family_b, submission(family_b), key)
    assert taken.status_code == 409 and taken.json()["code"] == "application.exists"


def _bad_checksum(value: str) -> str:
    return value[:17] + ("0" if value[17] != "0" else "1")


BAD_INPUT: list[tuple[str, Any, str]] = [
    ("an ID number with a wrong check digit", "checksum", "application.applicant_id_invalid"),
    ("an ID number of someone outside the household", "stranger", "application.applicant_not_member"),
    ("a service that no longer exists", "gone_service", "application.service_unknown"),
    ("a material neither photographed nor marked to follow", "missing_material", "application.materials_missing"),
    ("a material the rules do not know", "unknown_material", "application.material_unknown"),
    ("a service picked twice", "twice", "application.service_twice"),
    ("consent by nobody", "no_consent", "application.consent_who"),
    ("an unknown field", "unknown_field", "application.invalid"),
    ("no services at all", "no_services", "application.invalid"),
    ("a photo named by half a reference", "half_photo", "application.photo_ref"),
    ("a photo that was never taken here", "stray_photo", "application.photo_unknown"),
]


@pytest.mark.parametrize(("label", "variant", "code"), BAD_INPUT, ids=[row[1] for row in BAD_INPUT])
async def test_bad_input_is_refused_with_a_clear_problem(
    as_role, world: World, label: str, variant: str, code: str
) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    body = submission(family)
    match variant:
        case "checksum":
            body["applicant_id_number"] = _bad_checksum(family.head_id_number)
        case "stranger":
            body["applicant_id_number"] = id_number()
        case "gone_service":
            body["services"].append({"service": "abolished_scheme_2019", "answers": {}})
        case "missing_material":
            del body["materials"]["medical_bills"]
        case "unknown_material":
            body["materials"]["horoscope"] = {"to_follow": True}
        case "twice":
            body["services"].append(body["services"][0])
        case "no_consent":
            del body["consent"]["member_id"]
        case "unknown_field":
            body["priority"] = "urgent"
        case "no_services":
            body["services"] = []
        case "half_photo":
            body["materials"]["id_card"] = {"photos": [{"visit_id": str(uuid.uuid4())}]}
        case "stray_photo":
            body["materials"]["id_card"] = {"photos": [{"photo_id": str(uuid.uuid4())}]}
    response = await submit(worker, family, body)
    assert response.status_code == 422, (label, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code, label
    assert problem["detail_zh"] and problem["detail_en"]
    assert await applications_of(family) == 0
    if variant == "gone_service":
        assert "abolished_scheme_2019" in problem["detail_en"]
        assert problem["errors"] == [{"field": "services", "service": "abolished_scheme_2019"}]
    if variant == "missing_material":
        assert problem["errors"] == [
            {"field": "materials", "service": "medical_assistance", "material": "medical_bills"}
        ]
        assert "医疗费用票据" in problem["detail_zh"]


async def test_a_service_removed_from_the_catalogue_is_refused_by_name(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    saved = await Service.select().where(Service.code == "legal_aid").first()
    assert saved is not None
    await Service.delete().where(Service.code == "legal_aid")
    try:
        response = await submit(
            worker,
            family,
            submission(
                family,
                services=("legal_aid",),
                materials={
                    "id_card": {"to_follow": True},
                    "authorisation": {"to_follow": True},
                    "case_summary": {"to_follow": True},
                },
            ),
        )
    finally:
        await Service.insert(Service(**saved))
    assert response.status_code == 422
    assert response.json()["code"] == "application.service_unknown" and "legal_aid" in response.json()["detail_en"]


async def test_the_key_must_be_there_and_be_the_applications_uuid(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    url = f"/api/v1/households/{family.id}/applications"
    missing = await worker.post(url, json=submission(family))
    assert missing.status_code == 422 and missing.json()["code"] == "idempotency.key_required"
    not_uuid = await worker.post(url, json=submission(family), headers={"idempotency-key": "outbox-entry-7"})
    assert not_uuid.status_code == 422 and not_uuid.json()["code"] == "application.key_not_uuid"
    assert await applications_of(family) == 0


async def test_photos_must_come_from_a_visit_to_this_household(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family, other = await new_family(admin, world), await new_family(admin, world)
    visits = {}
    for household in (family, other):
        task = await VisitTask.insert(
            VisitTask(
                household=household.id,
                grid_code=world.grid_codes["GA1"],
                assignee=world.account_ids["worker_a"],
                type_codes="[]",
                due_at=datetime(2099, 1, 1, tzinfo=UTC),
            )
        ).returning(VisitTask.id)
        response = await worker.post(
            f"/api/v1/tasks/{task[0]['id']}/visit",
            json={"found": "已入户", "photos": ["a" * 64]},
            headers={"idempotency-key": str(uuid.uuid4())},
        )
        assert response.status_code in (200, 201), response.text
        visits[household.id] = response.json()["visit_id"]

    # A photo still uploading is named by its visit and content hash: accepted for its own household.
    body = submission(family)
    body["materials"]["id_card"] = {"photos": [{"visit_id": visits[family.id], "sha256": "a" * 64}]}
    accepted = await submit(worker, family, body)
    assert accepted.status_code == 201, accepted.text

    # The same photo reference for another household is refused.
    body = submission(other)
    body["materials"]["id_card"] = {"photos": [{"visit_id": visits[family.id], "sha256": "a" * 64}]}
    refused = await submit(worker, other, body)
    assert refused.status_code == 422 and refused.json()["code"] == "application.photo_unknown"


async def test_another_grids_household_is_not_found_and_the_attempt_is_audited(as_role, world: World) -> None:
    admin, intruder = await as_role("admin"), await as_role("worker_b")
    family = await new_family(admin, world)
    response = await submit(intruder, family, submission(family))
    assert response.status_code == 404
    assert await AuditLog.exists().where(
        AuditLog.actor_id == world.account_ids["worker_b"],
        AuditLog.object_id == family.id,
        AuditLog.outcome == "denied",
    )
    assert await applications_of(family) == 0


async def test_a_submission_while_redis_is_down_succeeds_and_is_routed_when_it_is_back(
    app: Litestar, as_role, world: World
) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    working = app.state.arq
    # Nothing listens on port 1: every enqueue fails the way a stopped Redis does.
    dead = ArqRedis(host="127.0.0.1", port=1, socket_connect_timeout=1)
    app.state.arq = dead
    try:
        response = await submit(worker, family, submission(family))
    finally:
        app.state.arq = working
        await dead.aclose()
    assert response.status_code == 201, response.text
    application_id = response.json()["id"]
    message = await routing_message(application_id)
    assert message["done_at"] is None and message["enqueued_at"] is None
    assert await cases_of(application_id) == []

    # Redis is back: the cron relay hands the message over and the worker routes it, once.
    worker_run = await route_now()
    assert worker_run.jobs_failed == 0
    cases = await cases_of(application_id)
    assert sorted(case["service"] for case in cases) == sorted(SERVICES)
    status = (await worker.get(f"/api/v1/applications/{application_id}")).json()
    assert {service["state"] for service in status["services"]} == {"new"}
    assert status["summary_en"].startswith(
        "0 of 3 services decided: temporary assistance (expenditure type) in review, due "
    )
    assert (await routing_message(application_id))["done_at"] is not None
    assert load_json((await routing_message(application_id))["payload"]) == {"application": application_id}


# --- who consented: a member the phone was given at sync -----------------------------------------


async def _task_for(world: World, family_id: str) -> str:
    row = await VisitTask.insert(
        VisitTask(
            household=family_id,
            grid_code=world.grid_codes["GA1"],
            assignee=world.account_ids["worker_a"],
            type_codes="[]",
            due_at=datetime(2099, 1, 1, tzinfo=UTC),
        )
    ).returning(VisitTask.id)
    return str(row[0]["id"])


async def test_the_workers_phone_gets_the_households_members_masked_at_sync(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family, later = await new_family(admin, world), await new_family(admin, world)
    task_id, later_id = await _task_for(world, family.id), await _task_for(world, later.id)
    await _accept(worker, task_id)  # so the account has a sync history, and a cursor to come back with

    snapshot = await worker.get("/api/v1/sync?cursor=0")
    assert snapshot.status_code == 200, snapshot.text
    task = next(item for item in snapshot.json()["tasks"] if item["id"] == task_id)
    members = task["household"]["members"]
    assert members == [
        {"id": family.head_member, "name_masked": "王**", "relation": "head"},
        {"id": family.spouse_member, "name_masked": "李**", "relation": "spouse"},
    ]
    # Nothing that identifies a person outright: no full names, ID numbers or phones anywhere in it.
    for secret in ("王秀英", "李建国", family.head_id_number, family.phone):
        assert secret not in snapshot.text

    # A task that changes later brings the members along in the delta too.
    await _accept(worker, later_id)
    delta = (await worker.get(f"/api/v1/sync?cursor={snapshot.json()['cursor']}")).json()
    assert delta["full"] is False
    changed = next(item for item in delta["tasks"] if item["id"] == later_id)
    assert [member["id"] for member in changed["household"]["members"]] == [later.head_member, later.spouse_member]


async def _accept(worker: Any, task_id: str) -> None:
    accepted = await worker.post(f"/api/v1/tasks/{task_id}/accept", headers={"idempotency-key": str(uuid.uuid4())})
    assert accepted.status_code in (200, 201, 204), accepted.text


async def test_consent_by_a_member_is_recorded_by_member_id(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    body = submission(family)
    body["consent"] = {"member_id": family.spouse_member, "method": "verbal", "at": datetime.now(UTC).isoformat()}
    response = await submit(worker, family, body)
    assert response.status_code == 201, response.text
    row = await Application.select(Application.consent).where(Application.id == response.json()["id"]).first()
    assert row is not None
    consent = load_json(row["consent"])
    assert consent["member_id"] == family.spouse_member and consent["method"] == "verbal"
    assert consent["name"] is None


async def test_consent_by_a_member_of_another_household_is_refused_by_name(as_role, world: World) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family, neighbours = await new_family(admin, world), await new_family(admin, world)
    body = submission(family)
    body["consent"]["member_id"] = neighbours.head_member
    response = await submit(worker, family, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "application.consent_not_member"
    assert problem["errors"] == [{"field": "consent.member_id", "member_id": neighbours.head_member}]
    assert "同意人不是该户家庭成员" in problem["detail_zh"] and "not a member of this household" in problem["detail_en"]
    assert await applications_of(family) == 0


async def test_facts_typed_on_the_apply_screen_travel_with_the_application_and_are_recorded(
    as_role, world: World
) -> None:
    admin, worker = await as_role("admin"), await as_role("worker_a")
    family = await new_family(admin, world)
    wrong = await submit(worker, family, submission(family, facts={"unemployed_members": "two"}))
    assert wrong.status_code == 422 and wrong.json()["code"] == "facts.invalid"
    assert await applications_of(family) == 0

    body = submission(family, facts={"unemployed_members": 1, "union_member_employee": False})
    response = await submit(worker, family, body)
    assert response.status_code == 201, response.text
    facts = (await worker.get(f"/api/v1/households/{family.id}/facts")).json()["facts"]
    assert facts["unemployed_members"] == 1 and facts["union_member_employee"] is False
    row = await Application.select(Application.verdicts).where(Application.id == response.json()["id"]).first()
    assert row is not None
    # The verdicts were reached with those facts, as the phone's matching was.
    matched = (await worker.post(f"/api/v1/households/{family.id}/match", json={"facts": {}})).json()["matches"]
    expected = {item["service"]: item["verdict"] for item in matched}
    assert load_json(row["verdicts"]) == {code: expected[code] for code in SERVICES}
