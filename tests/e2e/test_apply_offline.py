"""Applying on a family's behalf with no signal: the phone matches with the rules it kept at sync
time, the application waits in the outbox (surviving a reload), and goes exactly once when the
network is back; the routing job then puts the case in the department's inbox.

Chromium at 390×844 against the real app (API, worker, database), through ``pwa/TESTIDS.md``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import flush_until_empty, open_outbox, open_phone, record_visit, reload, sign_in, task_item
from tests.e2e.harness import World, assert_offline, go_offline, go_online, has_exif, small_jpeg
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

    # Apply on behalf: the queued photo as the first material, the rest "to follow". (Ticked by its
    # service: the list may re-render, re-sorted, between reading it and ticking.)
    chosen = page.locator(f'[data-testid="match-item"][data-service="{service}"]')
    chosen.get_by_test_id("apply-service").check()
    expect(chosen.get_by_test_id("apply-service")).to_be_checked()
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
    # No member picked: the person who consented by name, as before.
    expect(page.get_by_test_id("apply-consent-member")).to_have_value("")
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


# Enum codes the rules compare with: on the phone they are read aloud by their labels, never as codes.
RAW_CODES = re.compile(r"\b(dibao|tekun|marginal|none|head|spouse)\b")


def family_with_task(world: World, worker: str) -> tuple[str, str, dict[str, str]]:
    """A two-person household in ``worker``'s grid, with a visit task from a department's warning and
    one earlier application: (task id, the head's ID number, member id by relation)."""
    from tests.helpers import id_number

    head, spouse = id_number(), id_number()
    household = world.admin.ok(
        "POST",
        "/api/v1/households",
        json={
            "code": f"E2EAP{secrets.token_hex(4)}",
            "head_name": "刘桂兰",
            "address": "和平路12号3单元",
            "grid_code": world.server.grid_of(worker),
            "category": "dibao",
            "phone": "13812345678",
            "members": [
                {"name": "刘桂兰", "relation": "head", "id_number": head, "is_main_earner": True},
                {"name": "陈建国", "relation": "spouse", "id_number": spouse},
            ],
        },
    )
    members = {member["relation"]: member["id"] for member in household["members"]}
    answer = world.department.ok(
        "POST",
        "/api/v1/warnings",
        json={
            "warnings": [
                {
                    "source_record_id": f"E2EAP{secrets.token_hex(6)}",
                    "type": "large_medical_expense",
                    "id_number": head,
                    "facts": {"amount_yuan": 86000},
                }
            ]
        },
    )
    (result,) = answer["results"]
    assert result["outcome"] == "tasked", result
    # An application made last month, so the household's list has something to show offline.
    world.server.api(worker).ok(
        "POST",
        f"/api/v1/households/{household['id']}/applications",
        headers={"idempotency-key": str(uuid.uuid4())},
        json={
            "applicant_id_number": head,
            "services": [{"service": "legal_aid", "answers": {}}],
            "materials": {code: {"to_follow": True} for code in ("id_card", "authorisation", "case_summary")},
            "consent": {"member_id": members["head"], "method": "verbal", "at": datetime.now(UTC).isoformat()},
        },
    )
    return str(result["task_id"]), head, members


def test_offline_the_worker_photographs_the_id_card_picks_who_consented_and_it_arrives_once(
    phone: Any, world: World, tmp_path: Path
) -> None:
    task_id, person, members = family_with_task(world, WORKER)
    context = phone()
    page = open_phone(context, WORKER)  # synced: rules, facts, and the household's members (masked)

    # Seen once online, the household's earlier application is kept on the phone.
    page.goto(f"/#/tasks/{task_id}/apply")
    history = page.get_by_test_id("apply-applications")
    expect(history.get_by_test_id("application-item")).to_have_count(1)
    expect(history).to_have_attribute("data-source", "server")

    go_offline(context)
    assert_offline(page)
    page.get_by_test_id("nav-tasks").click()
    task_item(page, task_id).click()
    page.get_by_test_id("task-apply").click()
    expect(page.get_by_test_id("apply-screen")).to_have_attribute("data-task-id", task_id)
    expect(history).to_have_attribute("data-source", "phone")
    expect(history.get_by_test_id("application-item")).to_have_count(1)
    expect(history.get_by_test_id("apply-applications-kept")).to_be_visible()

    # Matched on the phone; its reasons say 低保, not "dibao".
    expect(page.get_by_test_id("match-local")).to_be_visible()
    expect(page.get_by_test_id("match-item").first).to_be_visible()
    reasons = page.get_by_test_id("match-reason").all_inner_texts()
    assert any("救助类别" in reason and "低保" in reason for reason in reasons), reasons
    assert not [reason for reason in reasons if RAW_CODES.search(reason)], reasons

    # What the visit found, typed here: kept on the phone.
    page.get_by_test_id("match-facts").locator("summary").click()
    fact_input = page.get_by_test_id("match-fact").first
    fact = fact_input.get_attribute("data-fact")
    if fact_input.evaluate("el => el.tagName") == "SELECT":
        fact_input.select_option(index=1)
    else:
        fact_input.fill("1")
    typed = fact_input.input_value()
    page.get_by_test_id("match-rerun").click()
    expect(page.locator(f'[data-testid="match-fact"][data-fact="{fact}"]')).to_have_value(typed)

    # Picked by its service: the list may re-render (re-sorted) between reading it and ticking.
    service = page.get_by_test_id("match-item").first.get_attribute("data-service")
    chosen = page.locator(f'[data-testid="match-item"][data-service="{service}"]')
    chosen.get_by_test_id("apply-service").check()
    expect(chosen.get_by_test_id("apply-service")).to_be_checked()

    # The ID card photographed here, on the apply screen; the other materials to follow.
    materials = page.get_by_test_id("apply-material")
    expect(materials.first).to_be_visible()
    id_card = page.locator('[data-testid="apply-material"][data-material="id_card"]')
    expect(id_card).to_have_count(1)
    id_card.get_by_test_id("apply-material-photo-input").set_input_files(str(small_jpeg(tmp_path / "ID_CARD.jpg")))
    thumb = id_card.get_by_test_id("apply-material-thumb")
    expect(thumb).to_be_visible(timeout=60_000)
    sha = thumb.get_attribute("data-sha256")
    assert sha and int(thumb.get_attribute("data-bytes") or 0) <= 300 * 1024
    expect(id_card.get_by_test_id("apply-material-choice")).to_have_value(f"n:{sha}")
    for i in range(materials.count()):
        choice = materials.nth(i).get_by_test_id("apply-material-choice")
        if choice.get_attribute("data-material") != "id_card":
            choice.select_option("to_follow")

    # Consent: the head's husband, picked from the members the phone was given (names masked).
    picker = page.get_by_test_id("apply-consent-member")
    labels = picker.locator("option").all_inner_texts()
    assert "陈**（配偶）" in labels and "刘**（户主）" in labels, labels
    assert not [label for label in labels if "陈建国" in label or "刘桂兰" in label], labels
    picker.select_option(members["spouse"])
    expect(page.get_by_test_id("apply-consent-other")).to_be_hidden()
    page.get_by_test_id("apply-consent-method").select_option("signed_authorisation")
    page.get_by_test_id("apply-id-number").fill(person)
    page.get_by_test_id("apply-submit").click()
    queued = page.get_by_test_id("apply-queued")
    expect(queued).to_be_visible()
    application_id = queued.get_attribute("data-outbox-id")
    assert application_id

    # Reloaded without a network: the application and its photo wait; the typed fact is still there.
    reload(page)
    open_outbox(page)
    item = page.locator(f'[data-testid="outbox-item"][data-outbox-id="{application_id}"]')
    expect(item).to_have_attribute("data-kind", "application")
    expect(item.get_by_test_id("outbox-item-photos")).to_contain_text("0/1")
    page.goto(f"/#/tasks/{task_id}/apply")
    expect(page.locator(f'[data-testid="match-fact"][data-fact="{fact}"]')).to_have_value(typed)

    # Online: one application, naming the photo (stored once, cleaned) and the member who consented.
    go_online(context)
    assert flush_until_empty(page) == 0
    api = world.server.api(WORKER)
    household = api.ok("GET", f"/api/v1/tasks/{task_id}")["household"]["id"]
    listed = [a["id"] for a in api.ok("GET", f"/api/v1/households/{household}/applications")]
    assert len(listed) == 2 and listed.count(application_id) == 1, listed
    detail = api.ok("GET", f"/api/v1/applications/{application_id}")
    assert [s["service"] for s in detail["services"]] == [service]
    (row,) = world.server.query("SELECT materials, consent FROM application WHERE id = $1", _id(world, application_id))
    materials_saved, consent = _json(row["materials"]), _json(row["consent"])
    (photo_ref,) = materials_saved["id_card"]["photos"]
    stored = world.server.query("SELECT id, sha256 FROM material_photo WHERE task = $1", _id(world, task_id))
    assert [(str(r["id"]), r["sha256"]) for r in stored] == [(photo_ref["photo_id"], sha)]
    assert consent["member_id"] == members["spouse"] and consent["method"] == "signed_authorisation"
    jpeg = world.server.api(WORKER).request("GET", f"/api/v1/photos/{photo_ref['photo_id']}")
    assert jpeg.status_code == 200 and not has_exif(jpeg.content)
    facts = api.ok("GET", f"/api/v1/households/{household}/facts")["facts"]
    assert str(facts[fact]).lower() == typed.lower(), (fact, facts.get(fact), typed)


def _id(world: World, value: str) -> Any:
    # PostgreSQL compares a uuid column with a UUID; SQLite stores the text.
    return uuid.UUID(value) if world.server.engine == "postgres" else value


def _json(value: Any) -> Any:
    import json

    return json.loads(value) if isinstance(value, str) else value
