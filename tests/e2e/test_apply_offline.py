"""Applying on a family's behalf with no signal: the phone matches with the rules it kept at sync
time, the application waits in the outbox (surviving a reload), and goes exactly once when the
network is back; the routing job then puts the case in the department's inbox.

Chromium at 390×844 against the real app (API, worker, database), through ``pwa/TESTIDS.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import flush_until_empty, open_outbox, open_phone, record_visit, reload, sign_in, task_item
from tests.e2e.harness import World, assert_offline, go_offline, go_online, small_jpeg
from tests.e2e.test_officer import WORKER, new_officer, task_for

pytestmark = pytest.mark.browser


def test_worker_matches_and_applies_offline_then_it_reaches_the_department(
    phone: Any, world: World, tmp_path: Path
) -> None:
    task_id, person = task_for(world, WORKER)
    context = phone()
    page = open_phone(context, WORKER)  # synced online: the rules and the household's facts are kept

    go_offline(context)
    assert_offline(page)
    # The visit, with the ID card's photo, waits in the outbox too.
    record_visit(page, task_id, [small_jpeg(tmp_path / "IMG_ID_CARD.jpg")])
    page.get_by_test_id("nav-tasks").click()
    task_item(page, task_id).click()
    page.get_by_test_id("task-apply").click()
    expect(page.get_by_test_id("apply-screen")).to_have_attribute("data-task-id", task_id)

    # Matched on the phone, and it says so; reasons read aloud from the rules' facts.
    expect(page.get_by_test_id("match-local")).to_be_visible()
    expect(page.get_by_test_id("match-section")).to_have_attribute("data-source", "phone")
    first = page.get_by_test_id("match-item").first
    expect(first).to_be_visible()
    assert first.get_attribute("data-verdict") in ("eligible", "possible")
    expect(first.get_by_test_id("match-reason").first).to_have_text(re.compile("符合|尚不清楚"))
    service = first.get_attribute("data-service")
    department = first.get_attribute("data-department")
    assert service and department, "the services' names and departments were kept at sync time"

    # Apply on behalf: the queued photo as the first material, the rest "to follow".
    first.get_by_test_id("apply-service").check()
    choices = page.get_by_test_id("apply-material-choice")
    expect(choices.first).to_be_visible()
    queued_photos = choices.first.locator("option").evaluate_all(
        "opts => opts.map(o => o.value).filter(v => v.startsWith('q:'))"
    )
    assert len(queued_photos) == 1, queued_photos
    choices.first.select_option(queued_photos[0])
    count = choices.count()
    for i in range(1, count):
        choices.nth(i).select_option("to_follow")
    page.get_by_test_id("apply-id-number").fill(person)
    page.get_by_test_id("apply-consent-method").select_option("verbal")
    page.get_by_test_id("apply-consent-name").fill("刘桂兰")
    page.get_by_test_id("apply-consent-relation").fill("本人")
    page.get_by_test_id("apply-submit").click()
    queued = page.get_by_test_id("apply-queued")
    expect(queued).to_be_visible()
    application_id = queued.get_attribute("data-outbox-id")
    assert application_id

    # The outbox shows it after the visit, and still does after a reload without network.
    for _ in range(2):
        open_outbox(page)
        expect(page.get_by_test_id("outbox-item")).to_have_count(2)
        expect(page.get_by_test_id("outbox-item").last).to_have_attribute("data-kind", "application")
        item = page.locator(f'[data-testid="outbox-item"][data-outbox-id="{application_id}"]')
        expect(item).to_have_attribute("data-kind", "application")
        expect(item.get_by_test_id("outbox-item-kind")).to_have_text("代办申请")
        expect(item.get_by_test_id("outbox-item-services")).to_contain_text(service)
        reload(page)

    # Back online: sent once; the server has exactly this one application for the household.
    go_online(context)
    assert flush_until_empty(page) == 0
    api = world.server.api(WORKER)
    household = api.ok("GET", f"/api/v1/tasks/{task_id}")["household"]["id"]
    applications = api.ok("GET", f"/api/v1/households/{household}/applications")
    assert [a["id"] for a in applications] == [application_id]
    detail = api.ok("GET", f"/api/v1/applications/{application_id}")
    assert [s["service"] for s in detail["services"]] == [service]

    # The worker's apply screen shows its one status sentence.
    page.goto(f"/#/tasks/{task_id}/apply")
    summary = page.locator(
        f'[data-testid="apply-applications"] [data-testid="application-item"][data-application-id="{application_id}"]'
    )
    expect(summary.get_by_test_id("application-summary")).to_have_text(re.compile(".+"))

    # Routing puts the case in that department's inbox.
    officer = phone().new_page()
    officer.goto("/")
    sign_in(officer, new_officer(world, department))
    row = officer.locator(f'[data-testid="case-row"][data-application-id="{application_id}"]')
    expect(row).to_be_visible(timeout=60_000)
    expect(row).to_have_attribute("data-service", service)
    row.get_by_test_id("case-open").click()
    expect(officer.get_by_test_id("case-material")).to_have_count(count)
    expect(officer.locator('[data-testid="case-material"][data-status="provided"]')).to_have_count(1)


def test_matching_without_kept_rules_asks_for_a_connection(phone: Any, world: World) -> None:
    task_id, _ = task_for(world, WORKER)
    context = phone()
    page = open_phone(context, WORKER)
    # A phone that never kept the rules (e.g. synced with an older version of the app).
    page.evaluate(
        """() => new Promise((ok, bad) => {
          const open = indexedDB.open('gridaid');
          open.onerror = bad;
          open.onsuccess = () => {
            const tx = open.result.transaction('meta', 'readwrite');
            tx.objectStore('meta').delete('rules');
            tx.oncomplete = () => { open.result.close(); ok(true); };
            tx.onerror = bad;
          };
        })"""
    )
    go_offline(context)
    page.get_by_test_id("nav-tasks").click()
    task_item(page, task_id).click()
    page.get_by_test_id("task-apply").click()
    expect(page.get_by_test_id("apply-offline")).to_be_visible()
    expect(page.get_by_test_id("match-item")).to_have_count(0)
    go_online(context)
