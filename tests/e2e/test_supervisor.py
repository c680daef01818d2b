"""A street supervisor on a phone moves work between grid workers; both workers' phones follow."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.flows import open_phone, sign_in, sync, task_item
from tests.e2e.harness import AppServer, World

pytestmark = pytest.mark.browser


def test_a_bulk_reassignment_on_the_phone_moves_tasks_between_workers_phones(
    app_server: AppServer, world: World, phone
) -> None:
    moving = [world.task("worker5", head_name="王建国"), world.task("worker5", head_name="李桂兰")]
    staying = world.task("worker5", head_name="赵德明")
    first = open_phone(phone(), "worker5")
    second = open_phone(phone(), "worker6")
    for task_id in [*moving, staying]:
        expect(task_item(first, task_id)).to_be_visible()
        expect(task_item(second, task_id)).to_have_count(0)

    supervisor = phone().new_page()
    supervisor.goto("/")
    sign_in(supervisor, "supervisor")
    supervisor.get_by_test_id("nav-street").click()
    expect(supervisor.get_by_test_id("street-tasks")).to_be_visible()
    for task_id in moving:
        row = supervisor.locator(f'[data-testid="street-task-row"][data-task-id="{task_id}"]')
        row.get_by_test_id("street-task-select").check()
    expect(supervisor.get_by_test_id("street-selected-count")).to_contain_text("2")
    supervisor.get_by_test_id("street-reassign-worker").select_option(app_server.account_id("worker6"))
    supervisor.get_by_test_id("street-reassign-reason").fill("王师傅请假，临时调整")
    supervisor.get_by_test_id("street-reassign-submit").click()
    expect(supervisor.get_by_test_id("street-reassign-result")).to_contain_text("2")
    # Everything the supervisor did fit the phone's width.
    assert supervisor.evaluate("document.documentElement.scrollWidth") <= 390

    sync(first)
    for task_id in moving:
        expect(task_item(first, task_id)).to_have_count(0)
    expect(task_item(first, staying)).to_be_visible()
    sync(second)
    for task_id in moving:
        expect(task_item(second, task_id)).to_be_visible()
    expect(task_item(second, staying)).to_have_count(0)
    for task_id in moving:
        task = app_server.api("supervisor").ok("GET", f"/api/v1/tasks/{task_id}")
        assert task["assignee_id"] == app_server.account_id("worker6"), task
