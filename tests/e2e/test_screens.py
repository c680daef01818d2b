"""Every main screen at phone size (390×844): it renders its content, fits the width, and is saved
as a screenshot (``tests/e2e/artifacts/`` or ``$GRIDAID_ARTIFACTS``) for people to look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import flush_until_empty, open_outbox, open_phone, record_visit, sign_in, task_item
from tests.e2e.harness import PHONE, AppServer, World, go_offline, go_online, small_jpeg, wait_outbox

pytestmark = pytest.mark.browser


def shoot(page: Any, artifacts: Path, name: str, shown: str) -> Path:
    expect(page.get_by_test_id(shown).first).to_be_visible()
    # One atomic step: the app re-renders a screen when the outbox or the sync state changes.
    page.evaluate("sel => document.querySelector(sel)?.scrollIntoView({block: 'center'})", f'[data-testid="{shown}"]')
    expect(page.get_by_test_id("toast")).to_be_hidden()  # a passing toast would cover what we show
    # A phone screen scrolls down, never sideways: nothing may be wider than the viewport.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: the page is {width}px wide on a {PHONE['width']}px phone"
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 5_000, f"{name}: the screenshot is blank"
    return path


def test_main_screens_at_phone_size(
    app_server: AppServer, world: World, phone, artifacts: Path, tmp_path: Path
) -> None:
    task_id = world.task("worker7", head_name="陈玉珍")
    world.task("worker7", kind="income_drop", head_name="刘国强")

    context = phone()
    login = context.new_page()
    login.goto("/#/login")
    saved = [shoot(login, artifacts, "01-login", "login-form")]
    login.close()

    page = open_phone(context, "worker7")
    expect(task_item(page, task_id)).to_be_visible()
    saved.append(shoot(page, artifacts, "02-tasks", "task-list"))
    task_item(page, task_id).click()
    saved.append(shoot(page, artifacts, "03-task-detail", "task-household"))
    page.get_by_test_id("task-record-visit").click()
    saved.append(shoot(page, artifacts, "04-visit-form", "visit-form"))
    page.get_by_test_id("nav-map").click()
    saved.append(shoot(page, artifacts, "05-map", "map"))
    expect(page.locator(".grid-shape").first).to_be_attached()
    page.get_by_test_id("nav-inbox").click()
    saved.append(shoot(page, artifacts, "06-inbox", "inbox-item"))

    go_offline(context)
    record_visit(page, task_id, [small_jpeg(tmp_path / "photo.jpg")])
    wait_outbox(page, 1)
    open_outbox(page)
    saved.append(shoot(page, artifacts, "07-outbox", "outbox-item"))
    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("settings-signout").click()
    saved.append(shoot(page, artifacts, "08-settings-signout-refused", "settings-signout-refused"))
    go_online(context)
    assert flush_until_empty(page) == 0

    supervisor = phone().new_page()
    supervisor.goto("/")
    sign_in(supervisor, "supervisor")
    supervisor.get_by_test_id("nav-street").click()
    expect(supervisor.locator(f'[data-testid="street-task-row"][data-task-id="{task_id}"]')).to_be_visible()
    saved.append(shoot(supervisor, artifacts, "09-street-tasks", "street-tasks"))
    supervisor.get_by_test_id("nav-street-map").click()
    saved.append(shoot(supervisor, artifacts, "10-street-map", "street-map"))
    supervisor.get_by_test_id("nav-street-health").click()
    saved.append(shoot(supervisor, artifacts, "11-street-health", "health-table"))

    assert len({path.read_bytes() for path in saved}) == len(saved), "two screens look exactly alike"


@pytest.mark.parametrize("username", ["worker7", "supervisor"])
def test_every_navigation_item_is_on_the_phone_screen(app_server: AppServer, phone, username: str) -> None:
    """A thumb can reach every destination without first discovering that the bar scrolls sideways."""
    page = open_phone(phone(), username)
    nav = page.get_by_test_id("nav")
    expect(nav.locator("a, button").first).to_be_visible()
    # Read every item in one go: the bar re-renders when the outbox or the sync state changes.
    boxes = nav.evaluate(
        "nav => [...nav.querySelectorAll('a, button')].map(e => {"
        " const r = e.getBoundingClientRect(); return [e.textContent.trim(), r.left, r.right]; })"
    )
    outside = [label for label, left, right in boxes if left < -0.5 or right > PHONE["width"] + 0.5]
    assert outside == [], f"navigation items off the {PHONE['width']}px screen: {outside}"
