"""A Web Push reaching the phone shows one content-free notification that opens the right screen.

Headless Chromium has no push service to subscribe to, so the message is handed to the service
worker through the DevTools protocol (what the push service would deliver), with the payload shape
the server sends (backend/push: title, body, count, tag, url).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.flows import open_phone

pytestmark = pytest.mark.browser


def _registration_id(session: Any, page: Any) -> str:
    """The page's service-worker registration, as DevTools names it (the session keeps the domain on)."""
    seen: list[dict[str, Any]] = []
    session.on("ServiceWorker.workerRegistrationUpdated", lambda event: seen.extend(event["registrations"]))
    session.send("ServiceWorker.enable")
    for _ in range(50):  # each round trip lets Playwright dispatch the protocol's events
        if seen:
            break
        page.evaluate("1")
    (registration,) = [item for item in seen if item["scopeURL"].startswith(page.url.split("#")[0])][:1]
    return str(registration["registrationId"])


def test_a_push_shows_a_notification_that_names_no_one_and_carries_the_screen_to_open(phone: Any) -> None:
    context = phone()
    context.grant_permissions(["notifications"])
    page = open_phone(context, "worker6")
    origin = page.url.split("#")[0].rstrip("/")
    payload = {
        "title": "网格救助",
        "body": "您有 2 条未读消息",
        "count": 2,
        "tag": "gridaid-inbox",
        "url": "/#/tasks/t-1",
    }

    session = context.new_cdp_session(page)
    registration = _registration_id(session, page)
    session.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration, "data": json.dumps(payload)},
    )
    # getNotifications() is asynchronous: the page collects the list, Playwright waits for it.
    page.evaluate(
        """() => { window.shownNotes = null; (async function look() {
            const list = await (await navigator.serviceWorker.ready).getNotifications();
            if (list.length === 0) { setTimeout(look, 50); return; }
            window.shownNotes = list.map(n => ({title: n.title, body: n.body, tag: n.tag, url: n.data && n.data.url}));
        })(); }"""
    )
    page.wait_for_function("() => window.shownNotes !== null")
    shown = page.evaluate("window.shownNotes")
    # A tap opens ``url`` (the service worker's notificationclick); the text names nobody.
    assert shown == [{"title": "网格救助", "body": "您有 2 条未读消息", "tag": "gridaid-inbox", "url": "/#/tasks/t-1"}]
