"""Residents asking for help themselves: sign-up by SMS code, requests signed in or as a guest."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import pytest

from backend.audit.tables import AuditLog
from backend.grids.tables import Grid
from backend.households.tables import Household
from tests.helpers import id_number
from tests.integration.conftest import Api, World

pytestmark = pytest.mark.anyio


async def _inside(grid_code: str) -> tuple[float, float]:
    row = (
        await Grid.select(Grid.min_lon, Grid.min_lat, Grid.max_lon, Grid.max_lat).where(Grid.code == grid_code).first()
    )
    assert row is not None
    return (row["min_lon"] + row["max_lon"]) / 2, (row["min_lat"] + row["max_lat"]) / 2


def _phone() -> str:
    return "139" + str(uuid.uuid4().int)[:8]


async def _code_for(http: Any, device: Api, phone: str, caplog: pytest.LogCaptureFixture) -> str:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gridaid.sms"):
        sent = await device.post("/api/v1/residents/codes", json={"phone": phone})
    assert sent.status_code == 202, sent.text
    (text,) = [record.getMessage() for record in caplog.records if record.name == "gridaid.sms"]
    assert phone not in text  # the log masks the number
    match = re.search(r"验证码 (\d{6})", text)
    assert match is not None
    return match.group(1)


def _request(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "求助人",
        "id_number": id_number(),
        "phone": _phone(),
        "description": "老伴住院，家里没有收入了",
        "needs": ["medical", "living"],
    }
    return {**body, **changes}


async def test_a_resident_signs_up_asks_for_help_and_the_grid_worker_gets_the_visit(
    http: Any, world: World, as_role: Any, caplog: pytest.LogCaptureFixture
) -> None:
    phone = _phone()
    device = Api(http)
    code = await _code_for(http, device, phone, caplog)
    signed = await device.post(
        "/api/v1/residents/signup",
        json={"phone": phone, "code": code, "password": "Resident-pass-2026", "display_name": "王阿姨"},
    )
    assert signed.status_code == 201, signed.text
    assert (await device.login(phone, "Resident-pass-2026")).status_code == 200  # signs in with the phone
    lon, lat = await _inside(world.grid_codes["GA2"])
    person = id_number()
    key = str(uuid.uuid4())
    body = _request(id_number=person, phone=phone, location={"source": "gps", "lon": lon, "lat": lat, "accuracy_m": 12})

    sent = await device.post("/api/v1/requests", json=body, headers={"idempotency-key": key})

    assert sent.status_code == 201, sent.text
    answer = sent.json()
    assert answer["stage"] == "assigned" and "网格员" in answer["status_zh"] and "will visit by" in answer["status_en"]
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", answer["tracking_code"])
    # The grid worker of GA2 sees the request (masked) and has a visit task for it.
    worker = await as_role("worker_a")
    staff = (await worker.get("/api/v1/requests")).json()
    seen = next(item for item in staff if item["tracking_code"] == answer["tracking_code"])
    tasks = {item["id"]: item for item in (await worker.get("/api/v1/tasks", params={"limit": 500})).json()["items"]}
    task = tasks[seen["task_id"]]
    assert task["type_codes"] == ["resident_request"] and task["grid_code"] == world.grid_codes["GA2"]
    assert task["state"] == "new" and task["household"]["id"] == seen["household_id"]
    assert seen["id_number_masked"] == person[:4] + "**********" + person[-4:]
    assert seen["phone_masked"] == phone[:3] + "****" + phone[-4:]
    assert seen["description"] == body["description"] and seen["location_source"] == "gps"
    assert seen["matches"] and seen["rule_version"] is not None
    assert person not in str(staff) and phone not in str(staff)
    # The resident follows it, and a retry of the same submission changes nothing.
    again = await device.post("/api/v1/requests", json=body, headers={"idempotency-key": key})
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["tracking_code"] == answer["tracking_code"]
    mine = (await device.get("/api/v1/requests/mine")).json()
    assert [item["tracking_code"] for item in mine] == [answer["tracking_code"]]
    # Other workers do not see it.
    assert answer["tracking_code"] not in str(
        (await as_role("worker_b")).get and (await (await as_role("worker_b")).get("/api/v1/requests")).json()
    )


async def test_a_guest_gets_a_tracking_code_and_only_the_status(http: Any, world: World, as_role: Any) -> None:
    guest = Api(http)
    lon, lat = await _inside(world.grid_codes["GB1"])
    body = _request(location={"source": "pin", "lon": lon, "lat": lat})
    key = str(uuid.uuid4())

    sent = await guest.post("/api/v1/requests/guest", json=body, headers={"idempotency-key": key})

    assert sent.status_code == 201, sent.text
    code = sent.json()["tracking_code"]
    tracked = await guest.get("/api/v1/requests/track", params={"code": code, "phone_last4": body["phone"][-4:]})
    assert tracked.status_code == 200 and tracked.json()["stage"] == "assigned"
    assert set(tracked.json()) == {"tracking_code", "stage", "status_zh", "status_en", "created_at"}
    wrong = await guest.get(
        "/api/v1/requests/track",
        params={"code": code, "phone_last4": "0000" if body["phone"][-4:] != "0000" else "1111"},
    )
    assert wrong.status_code == 404
    changed = await guest.post(
        "/api/v1/requests/guest", json={**body, "description": "另一件事"}, headers={"idempotency-key": key}
    )
    assert changed.status_code == 409
    staff_b = (await (await as_role("worker_b")).get("/api/v1/requests")).json()
    assert code in {item["tracking_code"] for item in staff_b}
    audit = await AuditLog.select(AuditLog.actor_role, AuditLog.detail).where(AuditLog.action == "request.submit")
    assert any(row["actor_role"] == "guest" for row in audit)


async def test_an_address_only_request_waits_on_the_unplaced_list_until_placed(
    http: Any, world: World, as_role: Any
) -> None:
    body = _request(address="某某小区 3 栋 2 单元 501", name="无定位")
    sent = await Api(http).post("/api/v1/requests/guest", json=body, headers={"idempotency-key": str(uuid.uuid4())})
    assert sent.status_code == 201, sent.text
    assert sent.json()["stage"] == "locating" and "住址" in sent.json()["status_zh"]
    household = (
        await Household.select(Household.placement, Household.address).where(Household.head_name == "无定位").first()
    )
    assert household is not None and household["placement"] == "unplaced" and household["address"] == body["address"]
    # No street is known from words alone: the city's admins place it (the list every admin sees).
    admin = await as_role("admin")
    unplaced = (await admin.get("/api/v1/grids/unplaced")).json()
    (entry,) = [item for item in unplaced if item["address"] == body["address"]]

    # The admin finds the address and places it: the visit task moves to that grid's worker.
    placed = await admin.post(f"/api/v1/households/{entry['id']}/place", json={"grid_code": world.grid_codes["GA1"]})
    assert placed.status_code == 200, placed.text
    tracked = await Api(http).get(
        "/api/v1/requests/track", params={"code": sent.json()["tracking_code"], "phone_last4": body["phone"][-4:]}
    )
    assert tracked.json()["stage"] == "assigned"
    tasks = (await (await as_role("worker_a")).get("/api/v1/tasks", params={"limit": 500})).json()["items"]
    assert [task["grid_code"] for task in tasks if task["household"]["id"] == entry["id"]] == [world.grid_codes["GA1"]]
    assert entry["id"] not in {item["id"] for item in (await admin.get("/api/v1/grids/unplaced")).json()}


async def test_a_known_person_joins_their_household_instead_of_opening_a_second_file(
    http: Any, world: World, as_role: Any
) -> None:
    before = await Household.count()
    body = _request(id_number=world.id_numbers["A"], address="测试路A号")
    sent = await Api(http).post("/api/v1/requests/guest", json=body, headers={"idempotency-key": str(uuid.uuid4())})
    assert sent.status_code == 201, sent.text
    assert await Household.count() == before
    worker = await as_role("worker_a")
    tasks = (await worker.get("/api/v1/tasks", params={"limit": 500})).json()["items"]
    mine = [task for task in tasks if task["household"]["id"] == world.households["A"]]
    assert len(mine) == 1 and "resident_request" in mine[0]["type_codes"]


@pytest.mark.parametrize(
    ("change", "code", "key"),
    [
        ({"id_number": "320402199001011234"}, "request.invalid_identifiers", "id_number"),
        ({"phone": "23456789012"}, "request.invalid_identifiers", "phone"),
        ({"address": ""}, "request.place_required", None),
    ],
)
async def test_bad_requests_are_refused_with_a_clear_reason(
    http: Any, change: dict[str, Any], code: str, key: str | None
) -> None:
    response = await Api(http).post(
        "/api/v1/requests/guest", json=_request(**change), headers={"idempotency-key": str(uuid.uuid4())}
    )
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    if key:
        assert [error["key"] for error in response.json()["errors"]] == [key]


async def test_sign_up_codes_expire_after_five_wrong_tries_and_cannot_be_spammed(
    http: Any, caplog: pytest.LogCaptureFixture
) -> None:
    phone = _phone()
    device = Api(http)
    code = await _code_for(http, device, phone, caplog)
    assert (await device.post("/api/v1/residents/codes", json={"phone": phone})).status_code == 429
    wrong = "000000" if code != "000000" else "111111"
    signup = {"phone": phone, "password": "Resident-pass-2026", "display_name": "试"}
    for _ in range(5):
        refused = await device.post("/api/v1/residents/signup", json={**signup, "code": wrong})
        assert refused.status_code == 422 and refused.json()["code"] == "signup.code_invalid"
    # The right code no longer works: five wrong tries used it up.
    assert (await device.post("/api/v1/residents/signup", json={**signup, "code": code})).status_code == 422
