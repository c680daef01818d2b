"""What a person does with the app, step by step, through the selectors in ``pwa/TESTIDS.md``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.e2e.harness import app_ready, flush, wait_for_service_worker
from tests.e2e.seed import PASSWORD

_ANY = re.compile(r".+")


def task_item(page: Any, task_id: str) -> Any:
    return page.locator(f'[data-testid="task-item"][data-task-id="{task_id}"]')


def sign_in(page: Any, username: str, password: str = PASSWORD) -> None:
    """Type the login like a person; end on the first screen with the service worker in control."""
    if "#/login" not in page.url:
        page.goto("/#/login")
    app_ready(page)
    form = page.get_by_test_id("login-form")
    expect(form).to_be_visible()
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(form).to_be_hidden()
    wait_for_service_worker(page)


def open_phone(context: Any, username: str) -> Any:
    """A phone that has logged in once and synced: from here it works without a network."""
    page = context.new_page()
    page.goto("/")
    sign_in(page, username)
    flush(page)
    return page


def goto_tasks(page: Any) -> None:
    page.get_by_test_id("nav-tasks").click()
    expect(page.get_by_test_id("task-list")).to_be_visible()


def sync(page: Any) -> None:
    """What "Sync now" does, awaited: flush the outbox, then pull /api/v1/sync."""
    flush(page)


def record_visit(page: Any, task_id: str, photos: list[Path], found: str = "老人独居，医药费负担重") -> list[int]:
    """Open the task from the list, fill the visit form, attach photos, submit. Returns the photo
    sizes the app queued (bytes, after compression on the phone)."""
    goto_tasks(page)
    task_item(page, task_id).click()
    expect(page.get_by_test_id("task-detail")).to_have_attribute("data-task-id", task_id)
    page.get_by_test_id("task-record-visit").click()
    expect(page.get_by_test_id("visit-form")).to_be_visible()
    page.get_by_test_id("visit-found").fill(found)
    page.get_by_test_id("visit-need").first.check()
    page.get_by_test_id("visit-notes").fill("下周复访")
    sizes: list[int] = []
    if photos:
        page.get_by_test_id("visit-photo-input").set_input_files([str(path) for path in photos])
        thumbs = page.get_by_test_id("visit-photo-thumb")
        expect(thumbs).to_have_count(len(photos), timeout=60_000)
        expect(page.get_by_test_id("visit-photo-busy")).to_be_hidden(timeout=60_000)
        sizes = [int(thumbs.nth(i).get_attribute("data-bytes") or 0) for i in range(len(photos))]
    page.get_by_test_id("visit-gps").click()
    expect(page.get_by_test_id("visit-gps-status")).to_have_attribute("data-accuracy", _ANY)
    page.get_by_test_id("visit-submit").click()
    expect(page.get_by_test_id("visit-form")).to_be_hidden()
    return sizes


def open_outbox(page: Any) -> Any:
    page.get_by_test_id("nav-outbox").click()
    screen = page.get_by_test_id("outbox-screen")
    expect(screen).to_be_visible()
    return screen


def reload(page: Any) -> None:
    page.reload()
    app_ready(page)


def flush_until_empty(page: Any, attempts: int = 6) -> int:
    """Flush like the app's timer would, a bounded number of times; the outbox count left."""
    from tests.e2e.harness import outbox_count

    left = outbox_count(page)
    for _ in range(attempts):
        if left == 0:
            break
        flush(page)
        left = outbox_count(page)
    return left
