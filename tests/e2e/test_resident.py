"""Residents on their own phones: asking for help without an account, following the request with its
tracking code, signing up with a text-message code and seeing "my requests" — and the grid worker whose
grid it is finding the visit on the worker's phone after a sync."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import goto_tasks, open_phone, task_item
from tests.e2e.harness import PHONE, AppServer, app_ready
from tests.e2e.seed import CELL, SOUTH, WEST
from tests.helpers import id_number

pytestmark = pytest.mark.browser
TRACKING = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")


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
    app_server: AppServer, phone, artifacts: Path
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

    page.get_by_test_id("my-ask").click()
    fill_request(page, name="李建华", person=id_number(), phone_number=phone_number, what="腿脚不便，需要有人帮忙买药")
    page.get_by_test_id("ask-gps").click()
    expect(page.get_by_test_id("ask-place-status")).to_have_attribute("data-source", "gps")
    page.get_by_test_id("ask-address").fill("和平路8号2单元301")
    page.get_by_test_id("ask-submit").click()
    expect(page.get_by_test_id("ask-tracking-code")).to_have_text(TRACKING)
    code = page.get_by_test_id("ask-tracking-code").inner_text().strip()

    page.get_by_test_id("ask-to-mine").click()
    item = page.get_by_test_id("my-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(code)
    expect(page.get_by_test_id("my-item-status")).to_contain_text("求助")
    fits_the_phone(page, artifacts, "resident-my")

    # The same status in English, from the one catalogue, once the resident switches language.
    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("settings-language").select_option("en")
    page.get_by_test_id("nav-my").click()
    expect(page.get_by_test_id("nav-my")).to_have_text("My requests")
    expect(page.get_by_test_id("my-item-status")).to_contain_text("request")

    owner = app_server.query("SELECT CAST(account AS TEXT) AS account FROM help_request WHERE tracking_code = $1", code)
    assert owner[0]["account"], owner
