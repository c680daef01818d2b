"""One door accepts, departments decide: a grid worker matches a family to services and applies on its
behalf from the task; the routing job (in the app's own arq worker) puts a case in the department's
inbox; the department's officer approves it; the worker's phone then says so in one sentence.

Chromium at 390×844 against the real app (API, worker, database), through ``pwa/TESTIDS.md``.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import flush_until_empty, open_phone, record_visit, sign_in
from tests.e2e.harness import World, small_jpeg
from tests.e2e.seed import PASSWORD

pytestmark = pytest.mark.browser
WORKER = "worker2"


def task_for(world: World, worker: str) -> tuple[str, str]:
    """A visit task from a medical-insurance warning for a new household: (task id, head's ID number)."""
    _, person = world.household(worker, head_name="刘桂兰")
    answer = world.department.ok(
        "POST",
        "/api/v1/warnings",
        json={
            "warnings": [
                {
                    "source_record_id": f"E2EOFF{secrets.token_hex(6)}",
                    "type": "large_medical_expense",
                    "id_number": person,
                    "facts": {"amount_yuan": 86000},
                }
            ]
        },
    )
    (result,) = answer["results"]
    assert result["outcome"] == "tasked", result
    return str(result["task_id"]), person


def new_officer(world: World, department: str) -> str:
    """An officer account of ``department`` made by the admin through the API: its username."""
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


def test_worker_applies_on_behalf_and_the_officer_approves(
    phone: Any, world: World, tmp_path: Path, artifacts: Path
) -> None:
    task_id, person = task_for(world, WORKER)
    page = open_phone(phone(), WORKER)

    # The visit with one photo (the ID card), uploaded before applying.
    record_visit(page, task_id, [small_jpeg(tmp_path / "IMG_ID_CARD.jpg")])
    assert flush_until_empty(page) == 0

    # Task detail → smart matching: services with a verdict and reasons read aloud.
    page.goto(f"/#/tasks/{task_id}")
    page.get_by_test_id("task-apply").click()
    screen = page.get_by_test_id("apply-screen")
    expect(screen).to_have_attribute("data-task-id", task_id)
    items = page.get_by_test_id("match-item")
    expect(items.first).to_be_visible()
    for verdict in [items.nth(i).get_attribute("data-verdict") for i in range(items.count())]:
        assert verdict in ("eligible", "possible")
    first = items.first
    expect(first.get_by_test_id("match-reason").first).to_have_text(re.compile(r".+"))
    expect(first.get_by_test_id("match-verdict")).to_have_text(re.compile("符合"))
    service = first.get_attribute("data-service")
    department = first.get_attribute("data-department")
    assert service and department

    # Apply on behalf for that one service: the photo as the first material, the rest "to follow".
    expect(page.get_by_test_id("apply-form")).to_be_hidden()
    first.get_by_test_id("apply-service").check()
    form = page.get_by_test_id("apply-form")
    expect(form).to_be_visible()
    choices = form.get_by_test_id("apply-material-choice")
    expect(choices.first).to_be_visible()
    count = choices.count()
    assert count >= 2, "a service needs the ID card and the signed authorisation at least"
    photo_values = choices.first.locator("option").evaluate_all(
        "opts => opts.map(o => o.value).filter(v => v && v !== 'to_follow')"
    )
    assert len(photo_values) == 1, photo_values  # the visit's one uploaded photo
    choices.first.select_option(photo_values[0])
    for i in range(1, count):
        choices.nth(i).select_option("to_follow")

    # Without who consented, nothing is sent.
    expect(page.get_by_test_id("apply-situation")).to_have_value("老人独居，医药费负担重")
    page.get_by_test_id("apply-id-number").fill(person)
    page.get_by_test_id("apply-submit").click()
    expect(page.get_by_test_id("apply-error")).to_have_text(re.compile(".+"))

    page.get_by_test_id("apply-consent-method").select_option("signed_authorisation")
    page.get_by_test_id("apply-consent-name").fill("刘桂兰")
    page.get_by_test_id("apply-consent-relation").fill("本人")
    page.get_by_test_id("apply-submit").click()
    status = page.get_by_test_id("apply-result").get_by_test_id("application-item")
    expect(status).to_be_visible()
    expect(status.get_by_test_id("application-summary")).to_have_text(re.compile(".+"))
    application_id = status.get_attribute("data-application-id")
    assert application_id
    page.screenshot(path=str(artifacts / "officer-01-apply.png"), full_page=True)

    # The officer of that service's department: the case arrives in the inbox (routing runs in the
    # app's arq worker; the list looks again by itself).
    officer = phone().new_page()
    officer.goto("/")
    sign_in(officer, new_officer(world, department))
    expect(officer.locator("body")).to_have_attribute("data-route", "cases")
    expect(officer.get_by_test_id("nav-cases")).to_be_visible()
    row = officer.locator(f'[data-testid="case-row"][data-application-id="{application_id}"]')
    expect(row).to_be_visible(timeout=60_000)
    expect(row).to_have_attribute("data-service", service)
    expect(row).to_have_attribute("data-state", "new")
    row.get_by_test_id("case-open").click()

    case = officer.get_by_test_id("case-detail")
    expect(case).to_have_attribute("data-state", "new")
    expect(officer.get_by_test_id("case-household")).to_contain_text("刘*")
    expect(officer.get_by_test_id("case-household")).not_to_contain_text(person)
    materials = officer.get_by_test_id("case-material")
    expect(materials).to_have_count(count)
    expect(officer.locator('[data-testid="case-material"][data-status="provided"]')).to_have_count(1)
    expect(officer.locator('[data-testid="case-material"][data-status="to_follow"]')).to_have_count(count - 1)
    expect(officer.get_by_test_id("case-consent")).to_contain_text("签署授权书")
    expect(officer.get_by_test_id("case-answer")).to_contain_text("老人独居，医药费负担重")  # from the visit
    expect(officer.get_by_test_id("case-member")).to_contain_text("户主")
    officer.screenshot(path=str(artifacts / "officer-02-case.png"), full_page=True)

    # Accept, then approve with an amount.
    officer.get_by_test_id("case-accept").click()
    expect(case).to_have_attribute("data-state", "accepted")
    officer.get_by_test_id("case-amount").fill("3000")
    officer.get_by_test_id("case-period").select_option("one_off")
    officer.get_by_test_id("case-approve").click()
    expect(case).to_have_attribute("data-state", "approved")
    expect(officer.get_by_test_id("case-decision")).to_contain_text("3000")
    expect(officer.get_by_test_id("case-actions")).to_have_count(0)

    # The worker's phone: the application's one sentence now says "approved".
    page.reload()
    page.evaluate("window.gridaid.ready.then(() => true)")
    summary = page.locator(
        f'[data-testid="apply-applications"] [data-testid="application-item"][data-application-id="{application_id}"]'
    )
    expect(summary).to_contain_text("已批准")
    expect(summary).to_contain_text("3000 元")


def submitted_by_api(world: World, worker: str) -> tuple[str, str, str]:
    """What the phone would send, straight through the API (every material "to follow"): the
    application's id, its one service's department and the task."""
    import uuid
    from datetime import UTC, datetime

    task_id, person = task_for(world, worker)
    api = world.server.api(worker)
    household = api.ok("GET", f"/api/v1/tasks/{task_id}")["household"]["id"]
    matches = api.ok("POST", f"/api/v1/households/{household}/match", json={"facts": {}})["matches"]
    match = next(m for m in matches if m["verdict"] in ("eligible", "possible"))
    key = str(uuid.uuid4())
    api.ok(
        "POST",
        f"/api/v1/households/{household}/applications",
        headers={"idempotency-key": key},
        json={
            "applicant_id_number": person,
            "services": [{"service": match["service"]}],
            "materials": {code: {"to_follow": True} for code in match["materials"]},
            "consent": {"method": "verbal", "at": datetime.now(UTC).isoformat(), "name": "刘桂兰"},
        },
    )
    return key, match["department"], task_id


def test_officer_asks_for_information_and_sees_a_refused_step(phone: Any, world: World) -> None:
    application_id, department, _ = submitted_by_api(world, WORKER)
    context = phone()
    first = context.new_page()
    first.goto("/")
    sign_in(first, new_officer(world, department))

    # Only new cases: the filter is in the address, so a reload keeps it.
    first.get_by_test_id("cases-filter-state").select_option("new")
    first.get_by_test_id("cases-filter-apply").click()
    expect(first).to_have_url(re.compile(r"#/cases\?state=new$"))
    row = first.locator(f'[data-testid="case-row"][data-application-id="{application_id}"]')
    expect(row).to_be_visible(timeout=60_000)
    row.get_by_test_id("case-open").click()
    case = first.get_by_test_id("case-detail")
    expect(case).to_have_attribute("data-state", "new")
    case_url = first.url

    # Ask for more information: the case waits for the grid worker.
    first.get_by_test_id("case-info-message").fill("请补充近三个月的住院费用清单")
    first.get_by_test_id("case-request-info").click()
    expect(case).to_have_attribute("data-state", "info_requested")
    expect(first.get_by_test_id("case-info-request")).to_contain_text("住院费用清单")

    # A second tab still shows the case as waiting; the first tab rejects it meanwhile.
    second = context.new_page()
    second.goto(case_url)
    expect(second.get_by_test_id("case-detail")).to_have_attribute("data-state", "info_requested")
    first.get_by_test_id("case-reject-reason").fill("家庭收入高于当地标准")
    first.get_by_test_id("case-reject").click()
    expect(case).to_have_attribute("data-state", "rejected")
    expect(first.get_by_test_id("case-decision")).to_contain_text("家庭收入高于当地标准")

    # The stale tab's approval is refused, and the officer reads why.
    second.get_by_test_id("case-amount").fill("500")
    second.get_by_test_id("case-approve").click()
    expect(second.get_by_test_id("case-action-error")).to_contain_text("rejected")
    expect(second.get_by_test_id("case-detail")).to_have_attribute("data-state", "info_requested")

    # The new-cases list no longer shows it; the rejected filter does.
    first.goto("/#/cases?state=rejected")
    expect(first.locator(f'[data-testid="case-row"][data-application-id="{application_id}"]')).to_have_attribute(
        "data-state", "rejected"
    )


def test_matching_reads_aloud_in_english_too(phone: Any, world: World) -> None:
    application_id, _, task_id = submitted_by_api(world, WORKER)
    page = open_phone(phone(), WORKER)
    page.get_by_test_id("nav-settings").click()
    page.get_by_test_id("settings-language").select_option("en")
    page.goto(f"/#/tasks/{task_id}/apply")
    reason = page.get_by_test_id("match-item").first.get_by_test_id("match-reason").first
    expect(reason).to_have_text(re.compile(r"^[\x00-\x7f]+$"))
    expect(page.get_by_test_id("match-item").first.get_by_test_id("match-verdict")).to_have_text(
        re.compile("Eligible|Possibly eligible")
    )
    summary = page.locator(f'[data-testid="application-item"][data-application-id="{application_id}"]')
    expect(summary.get_by_test_id("application-summary")).to_have_text(re.compile(r"^[\x00-\x7f]+$"))
