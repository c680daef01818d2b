"""The harness itself: the real app comes up, a phone-sized Chromium opens it, offline is offline."""

from __future__ import annotations

import pytest

from tests.e2e.harness import AppServer, assert_offline, go_offline, go_online, wait_for_service_worker

pytestmark = pytest.mark.browser


def test_the_app_is_up_with_its_worker_and_serves_the_shell(app_server: AppServer, phone) -> None:
    api = app_server.api("worker1")
    me = api.ok("GET", "/api/v1/auth/me")
    assert me["username"] == "worker1" and app_server.grid_of("worker1") in me["grid_codes"]
    page = phone().new_page()
    response = page.goto("/")
    assert response is not None and response.ok
    assert "网格救助" in page.title()
    assert page.viewport_size == {"width": 390, "height": 844}


def test_offline_cuts_the_page_and_the_service_worker(app_server: AppServer, phone) -> None:
    context = phone()
    page = context.new_page()
    page.goto("/")
    wait_for_service_worker(page)
    assert page.evaluate("fetch('/ready').then(r => r.status)") == 200
    with pytest.raises(AssertionError):
        assert_offline(page)  # the check can fail: online, it must
    go_offline(context)
    assert_offline(page)
    page.reload()  # the shell still comes, from the service worker's cache
    assert "网格救助" in page.title()
    go_online(context)
    assert page.evaluate("fetch('/ready').then(r => r.status)") == 200
