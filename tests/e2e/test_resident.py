"""Residents on their own phones: asking for help without an account, following the request with its
tracking code, signing up with a text-message code and seeing "my requests" — and the grid worker whose
grid it is finding the visit on the worker's phone after a sync."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import goto_tasks, open_phone, reload, sign_in, task_item
from tests.e2e.harness import (
    PHONE,
    AppServer,
    World,
    app_ready,
    camera_jpeg,
    go_offline,
    go_online,
    has_exif,
    small_jpeg,
)
from tests.e2e.seed import CELL, PASSWORD, SOUTH, WEST
from tests.helpers import id_number

pytestmark = pytest.mark.browser
TRACKING = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")
# Every material of the catalogue's services, all "to follow" (the family hands them in later).
MATERIALS = ("id_card", "authorisation", "expense_receipts", "medical_bills", "unemployment_registration")


def mobile() -> str:
    return "139" + "".join(secrets.choice("0123456789") for _ in range(8))


def inside_grid(server: AppServer, worker: str) -> tuple[float, float]:
    """(lon, lat) of the middle of the worker's grid (grid E2E-G<i> is the i-th square of the seed)."""
    index = int(server.grid_of(worker).rsplit("G", 1)[1])
    return WEST + (index + 0.5) * CELL, SOUTH + 0.5 * CELL


def pin_on_map(page: Any, lon: float, lat: float) -> None:
    """Open the map and tap it where (lon, lat) is, like a resident tapping their building."""
    page.get_by_test_id("ask-pin").click()
    the_map = page.get_by_test_id("ask-map")
    expect(the_map).to_be_visible()
    page.wait_for_function("() => !!document.querySelector('[data-testid=\"ask-map\"]').gridaidMap")
    point = page.evaluate(
        """([lat, lon]) => {
            const map = document.querySelector('[data-testid="ask-map"]').gridaidMap;
            map.invalidateSize();
            map.setView([lat, lon], 16, {animate: false});
            const p = map.latLngToContainerPoint([lat, lon]);
            return {x: p.x, y: p.y};
        }""",
        [lat, lon],
    )
    the_map.click(position={"x": point["x"], "y": point["y"]})
    expect(page.get_by_test_id("ask-place-status")).to_have_attribute("data-source", "pin")


def fits_the_phone(page: Any, artifacts: Path, name: str) -> None:
    """Scrolls down, never sideways; a screenshot for people to look at."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide on a {PHONE['width']}px phone"
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=False)


def fill_request(page: Any, *, name: str, person: str, phone_number: str, what: str) -> None:
    expect(page.get_by_test_id("ask-form")).to_be_visible()
    page.get_by_test_id("ask-name").fill(name)
    # A typo in the last character: the phone says so before anything is sent.
    wrong = person[:-1] + ("0" if person[-1] != "0" else "1")
    page.get_by_test_id("ask-id-number").fill(wrong)
    expect(page.get_by_test_id("ask-id-hint")).to_have_attribute("data-valid", "false")
    page.get_by_test_id("ask-id-number").fill(person)
    expect(page.get_by_test_id("ask-id-hint")).to_have_attribute("data-valid", "true")
    page.get_by_test_id("ask-phone").fill(phone_number)
    page.get_by_test_id("ask-description").fill(what)
    page.get_by_test_id("ask-need").first.check()


def test_guest_asks_for_help_tracks_it_and_the_grid_worker_gets_the_visit(
    app_server: AppServer, phone, artifacts: Path
) -> None:
    worker = "worker3"
    lon, lat = inside_grid(app_server, worker)
    phone_number = mobile()

    context = phone()
    page = context.new_page()
    page.goto("/#/login")
    app_ready(page)
    page.get_by_test_id("resident-ask-link").click()
    what = "老伴住院，家里没人照顾，缺生活费"
    fill_request(page, name="王桂兰", person=id_number(), phone_number="12345678", what=what)
    pin_on_map(page, lon, lat)
    fits_the_phone(page, artifacts, "resident-ask")

    # A phone number that cannot be one: the server says which field, the form stays filled in.
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-error")).to_have_attribute("data-code", "request.invalid_identifiers")
    expect(page.get_by_test_id("ask-phone")).to_be_focused()
    page.get_by_test_id("ask-phone").fill(phone_number)

    # (The public endpoints allow 10 calls a minute per address: this test makes 4.)
    # The server stores the request but the answer is lost on the way back: sending again records it once.
    keys: list[str] = []
    lost: list[int] = []

    def lose_the_answer(route: Any) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            lost.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    context.route("**/api/v1/requests/guest", lose_the_answer)
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-error")).to_have_attribute("data-code", "network")
    expect(page.get_by_test_id("ask-form")).to_be_visible()
    page.get_by_test_id("ask-submit").click()

    code_el = page.get_by_test_id("ask-tracking-code")
    expect(code_el).to_have_text(TRACKING)
    code = code_el.inner_text().strip()
    expect(page.get_by_test_id("ask-copy")).to_be_visible()
    expect(page.get_by_test_id("ask-status")).to_have_attribute("data-stage", "assigned")
    fits_the_phone(page, artifacts, "resident-ask-sent")
    assert lost == [201], lost  # the first try did reach the server
    assert len(keys) == 2 and keys[0] == keys[1], keys
    stored = app_server.query("SELECT tracking_code FROM help_request WHERE CAST(id AS TEXT) = $1", keys[0])
    assert [row["tracking_code"] for row in stored] == [code]

    # Later, maybe on another phone: the tracking code and the last four digits of the phone.
    other = phone().new_page()
    other.goto("/#/login")
    app_ready(other)
    other.get_by_test_id("resident-track-link").click()
    other.get_by_test_id("track-code").fill(code.lower().replace("-", ""))
    other.get_by_test_id("track-phone-last4").fill(phone_number[-4:])
    other.get_by_test_id("track-submit").click()
    status = other.get_by_test_id("track-status")
    expect(status).to_have_attribute("data-stage", "assigned")
    expect(status).to_contain_text("网格员")
    expect(status).to_contain_text("上门")
    fits_the_phone(other, artifacts, "resident-track")

    # Exactly one request and one task on the server, in that worker's hands.
    rows = app_server.query(
        "SELECT CAST(task AS TEXT) AS task, CAST(account AS TEXT) AS account FROM help_request"
        " WHERE tracking_code = $1",
        code,
    )
    assert len(rows) == 1 and rows[0]["task"], rows
    assert rows[0]["account"] is None
    task_id = rows[0]["task"]
    assignee = app_server.query(
        "SELECT CAST(assignee AS TEXT) AS a FROM visit_task WHERE CAST(id AS TEXT) = $1", task_id
    )
    assert assignee[0]["a"] == app_server.account_id(worker)

    worker_page = open_phone(phone(), worker)
    goto_tasks(worker_page)
    expect(task_item(worker_page, task_id)).to_be_visible()


def test_resident_signs_up_with_a_text_code_and_sees_their_requests(
    app_server: AppServer, phone, tmp_path: Path, artifacts: Path
) -> None:
    phone_number = mobile()
    page = phone().new_page()
    page.goto("/#/login")
    app_ready(page)
    page.get_by_test_id("resident-signup-link").click()
    page.get_by_test_id("signup-phone").fill(phone_number)
    page.get_by_test_id("signup-send-code").click()
    expect(page.get_by_test_id("signup-step2")).to_be_visible()

    # The embedded SMS sender writes the text to the server's log; the newest code is this phone's.
    codes = re.findall(r"验证码 (\d{6})", app_server.log_path.read_text(errors="replace"))
    assert codes, app_server.log_tail()
    page.get_by_test_id("signup-code").fill(codes[-1])
    page.get_by_test_id("signup-password").fill("Resident-2026!")
    page.get_by_test_id("signup-name").fill("李建华")
    page.get_by_test_id("signup-submit").click()

    expect(page.get_by_test_id("nav-my")).to_be_visible()
    expect(page.get_by_test_id("nav-ask")).to_be_visible()
    expect(page.get_by_test_id("nav-settings")).to_be_visible()
    expect(page.get_by_test_id("nav-tasks")).to_have_count(0)
    expect(page.get_by_test_id("my-empty")).to_be_visible()
    # No household file has this phone: nothing applied for, and the screen says where it would show.
    expect(page.get_by_test_id("my-applications-empty")).to_be_visible()

    page.get_by_test_id("my-ask").click()
    fill_request(page, name="李建华", person=id_number(), phone_number=phone_number, what="腿脚不便，需要有人帮忙买药")
    page.get_by_test_id("ask-gps").click()
    expect(page.get_by_test_id("ask-place-status")).to_have_attribute("data-source", "gps")
    page.get_by_test_id("ask-address").fill("和平路8号2单元301")
    page.get_by_test_id("ask-photo-input").set_input_files(str(small_jpeg(tmp_path / "IMG_STAIRS.jpg")))
    expect(page.get_by_test_id("ask-photo-thumb")).to_have_count(1, timeout=60_000)
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-tracking-code")).to_have_text(TRACKING)
    code = page.get_by_test_id("ask-tracking-code").inner_text().strip()
    expect(page.get_by_test_id("request-photo")).to_have_attribute("data-state", "sent")

    page.get_by_test_id("ask-to-mine").click()
    item = page.get_by_test_id("my-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(code)
    expect(page.get_by_test_id("my-item-status")).to_contain_text("求助")
    expect(item).to_have_attribute("data-photos", "1")  # the photo went with the account, and shows
    expect(page.get_by_test_id("my-item-photo")).to_have_attribute("data-loaded", "true")
    fits_the_phone(page, artifacts, "resident-my")

    # The same status in English, from the one catalogue, once the resident switches language.
    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("settings-language").select_option("en")
    page.get_by_test_id("nav-my").click()
    expect(page.get_by_test_id("nav-my")).to_have_text("My requests")
    expect(page.get_by_test_id("my-item-status")).to_contain_text("request")

    owner = app_server.query("SELECT CAST(account AS TEXT) AS account FROM help_request WHERE tracking_code = $1", code)
    assert owner[0]["account"], owner
    # Sent on the account's own route: the audit log names the resident, not a guest.
    uploads = app_server.query(
        "SELECT actor_role FROM audit_log WHERE action = 'request_photo.upload' AND actor_id = $1", owner[0]["account"]
    )
    assert [row["actor_role"] for row in uploads] == ["resident"], uploads


def test_a_guest_sends_a_photo_with_the_request_and_the_grid_worker_sees_it(
    app_server: AppServer, phone, tmp_path: Path, artifacts: Path
) -> None:
    worker = "worker3"
    lon, lat = inside_grid(app_server, worker)
    context = phone()
    page = context.new_page()
    page.goto("/#/ask")
    app_ready(page)
    phone_number, what = mobile(), "屋顶漏雨，墙面发霉"
    fill_request(page, name="赵淑芬", person=id_number(), phone_number=phone_number, what=what)
    pin_on_map(page, lon, lat)
    # A 12-megapixel camera photo with GPS in its EXIF: the phone shrinks it before anything is sent.
    page.get_by_test_id("ask-photo-input").set_input_files(str(camera_jpeg(tmp_path / "IMG_ROOF.jpg")))
    thumb = page.get_by_test_id("ask-photo-thumb")
    expect(thumb).to_have_count(1, timeout=60_000)
    assert int(thumb.get_attribute("data-bytes") or 0) <= 300 * 1024
    fits_the_phone(page, artifacts, "resident-ask-photo")

    # The photo reaches the server but its answer is lost: the person sees it failed and sends it again.
    answers: list[int] = []

    def lose_the_first_answer(route: Any) -> None:
        if not answers:
            answers.append(route.fetch().status)
            route.abort("connectionreset")
        else:
            route.continue_()

    context.route("**/guest-photos/**", lose_the_first_answer)
    page.get_by_test_id("ask-submit").click()
    code = page.get_by_test_id("ask-tracking-code")
    expect(code).to_have_text(TRACKING)
    panel = page.get_by_test_id("request-photo")
    expect(panel).to_have_attribute("data-state", "failed")
    expect(page.get_by_test_id("request-photo-status")).to_contain_text("没有上传成功")
    fits_the_phone(page, artifacts, "resident-ask-photo-failed")
    page.get_by_test_id("request-photo-retry").click()
    expect(panel).to_have_attribute("data-state", "sent")
    assert answers == [201], answers
    rows = app_server.query(
        "SELECT COUNT(*) AS n FROM request_photo p JOIN help_request r ON r.id = p.request WHERE r.tracking_code = $1",
        code.inner_text().strip(),
    )
    assert rows[0]["n"] == 1, rows  # sent twice, kept once

    # The grid worker of that grid finds the photo on the request, and it carries no EXIF.
    staff = app_server.api(worker)
    (seen,) = [item for item in staff.ok("GET", "/api/v1/requests") if item["tracking_code"] == code.inner_text()]
    (photo,) = seen["photos"]
    full = staff.request("GET", f"/api/v1/requests/{seen['id']}/photos/{photo['id']}")
    assert full.status_code == 200 and full.headers["content-type"] == "image/jpeg"
    assert not has_exif(full.content) and max(photo["width"], photo["height"]) <= 1600
    audited = app_server.query(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'request_photo.read' AND object_id = $1", photo["id"]
    )
    assert audited[0]["n"] == 1
    # Another grid's worker does not see it.
    assert (
        app_server.api("worker4").request("GET", f"/api/v1/requests/{seen['id']}/photos/{photo['id']}").status_code
        == 404
    )

    # The worker's phone: the task says what the resident asked, with the photo, and keeps it for offline.
    worker_phone = phone()
    worker_page = open_phone(worker_phone, worker)
    asked = open_task_request(worker_page, seen["task_id"])
    expect(asked).to_have_attribute("data-source", "server")
    expect(asked.get_by_test_id("task-request-description")).to_have_text(what)
    expect(asked).to_contain_text(phone_number[:3] + "****" + phone_number[-4:])
    assert phone_number not in worker_page.content()
    wait_for_request_thumbnail(worker_page, photo["id"])
    asked.scroll_into_view_if_needed()
    fits_the_phone(worker_page, artifacts, "task-resident-request")
    # A tap opens the full photo (read from the server, audited like any other read).
    worker_page.locator(f'[data-testid="task-request-photo"][data-photo-id="{photo["id"]}"] button').click()
    full_view = worker_page.get_by_test_id("task-request-photo-full")
    expect(full_view).to_be_visible()
    worker_page.wait_for_function(
        "() => { const img = document.querySelector('[data-testid=\"task-request-photo-full\"] img');"
        " return !!img && img.complete && img.naturalWidth > 0; }"
    )
    worker_page.get_by_test_id("task-request-photo-close").click()
    expect(full_view).to_have_count(0)
    audited = app_server.query(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'request_photo.read' AND object_id = $1 AND actor_id = $2",
        photo["id"],
        app_server.account_id(worker),
    )
    assert audited[0]["n"] == 2, audited  # the API call above, and the tap

    # In a basement: the same card from the phone's copy, saying when it was seen.
    go_offline(worker_phone)
    reload(worker_page)
    expect(asked).to_have_attribute("data-source", "phone")
    expect(worker_page.get_by_test_id("task-request-kept")).to_be_visible()
    expect(asked.get_by_test_id("task-request-description")).to_have_text(what)
    wait_for_request_thumbnail(worker_page, photo["id"])
    go_online(worker_phone)


def open_task_request(page: Any, task_id: str) -> Any:
    """Open the task from the list; the card with the resident's request on its detail screen."""
    goto_tasks(page)
    task_item(page, task_id).click()
    expect(page.get_by_test_id("task-detail")).to_have_attribute("data-task-id", task_id)
    asked = page.get_by_test_id("task-request")
    expect(asked).to_be_visible()
    return asked


def wait_for_request_thumbnail(page: Any, photo_id: str) -> None:
    """The thumbnail is on the screen as a decoded image, not merely an <img> tag."""
    figure = page.locator(f'[data-testid="task-request-photo"][data-photo-id="{photo_id}"]')
    expect(figure).to_have_attribute("data-loaded", "true")
    page.wait_for_function(
        "(id) => { const img = document.querySelector("
        '`[data-testid="task-request-photo"][data-photo-id="${id}"] img`);'
        " return !!img && img.complete && img.naturalWidth > 0; }",
        arg=photo_id,
    )


def household_with_phone(world: World, worker: str, phone_number: str) -> tuple[str, str]:
    """A household file in ``worker``'s grid whose phone is ``phone_number``: (its id, the head's ID number)."""
    person = id_number()
    created = world.admin.ok(
        "POST",
        "/api/v1/households",
        json={
            "code": f"E2ER{secrets.token_hex(4)}",
            "head_name": "孙玉梅",
            "address": "和平路20号1单元",
            "grid_code": world.server.grid_of(worker),
            "category": "dibao",
            "phone": phone_number,
            "members": [{"name": "孙玉梅", "relation": "head", "id_number": person, "is_main_earner": True}],
        },
    )
    return created["id"], person


def sign_up(page: Any, app_server: AppServer, phone_number: str, name: str) -> None:
    page.goto("/#/signup")
    app_ready(page)
    page.get_by_test_id("signup-phone").fill(phone_number)
    page.get_by_test_id("signup-send-code").click()
    expect(page.get_by_test_id("signup-step2")).to_be_visible()
    codes = re.findall(r"验证码 (\d{6})", app_server.log_path.read_text(errors="replace"))
    assert codes, app_server.log_tail()
    page.get_by_test_id("signup-code").fill(codes[-1])
    page.get_by_test_id("signup-password").fill("Resident-2026!")
    page.get_by_test_id("signup-name").fill(name)
    page.get_by_test_id("signup-submit").click()
    expect(page.get_by_test_id("nav-my")).to_be_visible()


def test_the_family_sees_what_the_worker_applied_for_and_the_decision(
    app_server: AppServer, world: World, phone, artifacts: Path
) -> None:
    worker = "worker3"
    phone_number = mobile()
    household, person = household_with_phone(world, worker, phone_number)
    # The grid worker applies on the family's behalf (the phone's own flow is test_officer's).
    application_id = str(uuid.uuid4())
    app_server.api(worker).ok(
        "POST",
        f"/api/v1/households/{household}/applications",
        headers={"idempotency-key": application_id},
        json={
            "applicant_id_number": person,
            "services": [{"service": "temporary_expenditure"}],
            "materials": {code: {"to_follow": True} for code in MATERIALS},
            "consent": {"method": "verbal", "at": datetime.now(UTC).isoformat(), "name": "孙玉梅"},
        },
    )

    # The family signs up with the phone on its file: "my requests" shows the application.
    page = phone().new_page()
    sign_up(page, app_server, phone_number, "孙玉梅")
    item = page.locator(f'[data-testid="my-application"][data-application-id="{application_id}"]')
    expect(item).to_be_visible()
    expect(item).to_have_attribute("data-decided", "0")
    expect(item.get_by_test_id("my-application-summary")).to_contain_text("临时救助")
    expect(item).to_contain_text("孙**")
    expect(page.get_by_test_id("my-empty")).to_be_visible()  # no requests of their own: only the application

    # The civil-affairs officer approves it (routing runs in the app's worker; the inbox looks again).
    officer = phone().new_page()
    officer.goto("/")
    sign_in(officer, new_officer(world, "civil_affairs"))
    row = officer.locator(f'[data-testid="case-row"][data-application-id="{application_id}"]')
    expect(row).to_be_visible(timeout=60_000)
    row.get_by_test_id("case-open").click()
    officer.get_by_test_id("case-accept").click()
    expect(officer.get_by_test_id("case-detail")).to_have_attribute("data-state", "accepted")
    officer.get_by_test_id("case-amount").fill("3000")
    officer.get_by_test_id("case-period").select_option("one_off")
    officer.get_by_test_id("case-approve").click()
    expect(officer.get_by_test_id("case-detail")).to_have_attribute("data-state", "approved")

    # The family's phone, opened again: one sentence, and each service when they ask for it.
    page.reload()
    app_ready(page)
    expect(item).to_have_attribute("data-decided", "1")
    summary = item.get_by_test_id("my-application-summary")
    expect(summary).to_contain_text("已批准")
    expect(summary).to_contain_text("3000 元")
    item.get_by_test_id("my-application-open").click()
    service = item.get_by_test_id("my-application-service")
    expect(service).to_have_attribute("data-state", "approved")
    expect(service).to_contain_text("3000 元（一次性）")
    fits_the_phone(page, artifacts, "resident-my-applications")
    assert person not in page.content() and phone_number not in page.content()

    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("settings-language").select_option("en")
    page.get_by_test_id("nav-my").click()
    expect(item.get_by_test_id("my-application-summary")).to_contain_text("approved, 3,000 yuan")


def new_officer(world: World, department: str) -> str:
    username = f"officer{secrets.token_hex(3)}"
    world.admin.ok(
        "POST",
        "/api/v1/accounts",
        json={
            "username": username,
            "display_name": f"{department} 科员",
            "password": PASSWORD,
            "role": "department_officer",
            "department_code": department,
        },
    )
    return username
