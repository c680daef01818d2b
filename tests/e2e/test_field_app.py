"""A grid worker's phone in a basement: nothing recorded offline is lost, and nothing arrives twice.

Each test drives Debian's Chromium at 390×844 against the real app (API, worker, database) and
checks what the worker sees on the phone and what the server really stored.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.flows import (
    flush_until_empty,
    open_outbox,
    open_phone,
    record_visit,
    reload,
    sign_in,
    sync,
    task_item,
)
from tests.e2e.harness import (
    AppServer,
    World,
    assert_offline,
    camera_jpeg,
    flush,
    go_offline,
    go_online,
    has_exif,
    outbox_count,
    small_jpeg,
    wait_outbox,
)

pytestmark = pytest.mark.browser
MAX_QUEUED_PHOTO = 300 * 1024


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    camera = camera_jpeg(folder / "IMG_20261122_094107.jpg")
    assert 3_400_000 <= camera.stat().st_size <= 4_600_000, camera.stat().st_size
    with Image.open(camera) as image:
        assert image.getexif().get_ifd(0x8825), "the camera photo must carry GPS, or the test proves nothing"
    return [camera, small_jpeg(folder / "IMG_20261122_094212.jpg")]


def stored(server: AppServer, task_id: str) -> tuple[int, int]:
    """(visits, complete photos) the database holds for a task."""
    visits = server.query("SELECT count(*) AS n FROM visit WHERE CAST(task AS TEXT) = $1", task_id)[0]["n"]
    photos = server.query(
        "SELECT count(*) AS n FROM visit_photo p JOIN visit v ON p.visit = v.id WHERE CAST(v.task AS TEXT) = $1",
        task_id,
    )[0]["n"]
    return int(visits), int(photos)


def visits_seen_by_supervisor(server: AppServer, task_id: str) -> list[dict[str, Any]]:
    return list(server.api("supervisor").ok("GET", "/api/v1/visits", params={"task_id": task_id}))


def photo_bytes(server: AppServer, photo_id: str) -> bytes:
    response = server.api("supervisor").request("GET", f"/api/v1/photos/{photo_id}")
    assert response.status_code == 200, response.text
    return response.content


def uploads_watcher(context: Any) -> list[int]:
    """The total size of every photo the phone starts to upload (``Upload-Length``)."""
    lengths: list[int] = []

    def on_request(request: Any) -> None:
        if request.method == "PUT" and "/photos/" in request.url:
            length = request.headers.get("upload-length")
            if length and int(length) not in lengths:
                lengths.append(int(length))

    context.on("request", on_request)
    return lengths


def test_a_visit_recorded_offline_survives_a_reload_and_arrives_once_without_exif(
    app_server: AppServer, world: World, phone, photos: list[Path]
) -> None:
    task_id = world.task("worker1")
    context = phone()
    uploads = uploads_watcher(context)
    page = open_phone(context, "worker1")
    expect(task_item(page, task_id)).to_be_visible()

    go_offline(context)
    assert_offline(page)
    expect(page.get_by_test_id("net-status")).to_have_attribute("data-online", "false")
    queued = record_visit(page, task_id, photos)
    assert len(queued) == 2 and all(0 < size <= MAX_QUEUED_PHOTO for size in queued), queued
    wait_outbox(page, 1)

    reload(page)  # still offline: the shell comes from the service worker, the queue from IndexedDB
    assert outbox_count(page) == 1
    open_outbox(page)
    item = page.get_by_test_id("outbox-item")
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("outbox-summary")).to_contain_text("1")
    expect(page.get_by_test_id("outbox-badge")).to_have_text("1")
    assert stored(app_server, task_id) == (0, 0), "nothing may reach the server while offline"

    go_online(context)
    page.get_by_test_id("outbox-sync-now").click()
    wait_outbox(page, 0)
    expect(page.get_by_test_id("outbox-empty")).to_be_visible()
    expect(page.get_by_test_id("outbox-badge")).to_be_hidden()

    assert stored(app_server, task_id) == (1, 2)
    (visit,) = visits_seen_by_supervisor(app_server, task_id)
    assert visit["worker_id"] == app_server.account_id("worker1")
    assert visit["found"] == "老人独居，医药费负担重" and visit["accuracy_m"] is not None
    assert len(visit["photos"]) == 2 and all(p["complete"] for p in visit["photos"])
    assert uploads and max(uploads) <= MAX_QUEUED_PHOTO, uploads
    shapes = []
    for photo in visit["photos"]:
        data = photo_bytes(app_server, photo["photo_id"])
        assert not has_exif(data), "a stored photo still carries EXIF (GPS, camera)"
        with Image.open(io.BytesIO(data)) as image:
            shapes.append(image.size)
    # The camera held upright wrote a landscape sensor image with "rotate 90°": the phone fixed it.
    assert any(height > width for width, height in shapes), shapes


def test_a_dropped_answer_and_a_server_error_still_give_exactly_one_visit(
    app_server: AppServer, world: World, phone, photos: list[Path]
) -> None:
    task_id = world.task("worker2")
    context = phone()
    page = open_phone(context, "worker2")
    go_offline(context)
    record_visit(page, task_id, photos)
    wait_outbox(page, 1)

    attempts: list[str] = []
    behind_the_drop: list[tuple[int, int]] = []  # (server's answer, visits stored) on the dropped attempt

    def visit_post(route: Any) -> None:
        attempts.append(route.request.headers.get("idempotency-key", ""))
        if len(attempts) == 1:
            answer = route.fetch()  # the server stores the visit...
            behind_the_drop.append((answer.status, stored(app_server, task_id)[0]))
            route.abort("connectionreset")  # ...and the phone never hears back
        elif len(attempts) == 2:
            route.fulfill(status=500, content_type="application/problem+json", body='{"status":500}')
        else:
            route.fallback()

    photo_puts: list[str] = []
    lost_photo_answers: list[int] = []

    def photo_put(route: Any) -> None:
        photo_puts.append(route.request.url)
        if len(photo_puts) == 1:
            lost_photo_answers.append(route.fetch().status)  # the chunk reaches the server...
            route.abort("connectionreset")  # ...its answer is lost
        else:
            route.fallback()

    context.route("**/api/v1/tasks/*/visit", visit_post)
    context.route("**/api/v1/visits/*/photos/*", photo_put)
    go_online(context)
    left = flush_until_empty(page)
    assert left == 0, f"{left} item(s) still waiting after retries"
    assert len(attempts) >= 3, attempts
    assert len(set(attempts)) == 1 and attempts[0], f"every retry must carry the same Idempotency-Key: {attempts}"
    assert behind_the_drop == [(200, 1)], "the first attempt should have stored the visit before the drop"
    assert len(photo_puts) >= 2, photo_puts
    assert lost_photo_answers and lost_photo_answers[0] in (200, 201), lost_photo_answers
    assert stored(app_server, task_id) == (1, 2)
    (visit,) = visits_seen_by_supervisor(app_server, task_id)
    assert all(p["complete"] for p in visit["photos"])
    open_outbox(page)
    expect(page.get_by_test_id("outbox-empty")).to_be_visible()
    expect(page.get_by_test_id("outbox-attention-item")).to_have_count(0)


def test_a_task_reassigned_while_offline_keeps_the_visit_and_its_author(
    app_server: AppServer, world: World, phone, photos: list[Path]
) -> None:
    task_id = world.task("worker3")
    context = phone()
    page = open_phone(context, "worker3")
    expect(task_item(page, task_id)).to_be_visible()
    go_offline(context)
    supervisor = app_server.api("supervisor")
    moved = supervisor.ok(
        "POST",
        "/api/v1/tasks/reassign",
        json={"task_ids": [task_id], "worker_id": app_server.account_id("worker8"), "reason": "网格调整"},
    )
    assert moved
    record_visit(page, task_id, photos[1:])
    wait_outbox(page, 1)

    go_online(context)
    assert flush_until_empty(page) == 0
    assert stored(app_server, task_id) == (1, 1)
    (visit,) = visits_seen_by_supervisor(app_server, task_id)
    assert visit["worker_id"] == app_server.account_id("worker3")  # who was there, not who owns it now
    assert visit["after_reassignment"] is True
    # Sent, so the phone may now let the task go: it belongs to worker8.
    sync(page)
    page.get_by_test_id("nav-tasks").click()
    expect(task_item(page, task_id)).to_have_count(0)


def test_an_expired_session_asks_to_sign_in_again_and_keeps_the_queue(
    app_server: AppServer, world: World, phone, photos: list[Path]
) -> None:
    task_id = world.task("worker4")
    context = phone()
    page = open_phone(context, "worker4")
    go_offline(context)
    record_visit(page, task_id, photos[1:])
    wait_outbox(page, 1)
    admin = app_server.api("admin")
    admin.ok("POST", f"/api/v1/accounts/{app_server.account_id('worker4')}/revoke-sessions")

    go_online(context)
    sync(page)
    banner = page.get_by_test_id("auth-banner")
    expect(banner).to_be_visible()
    assert outbox_count(page) == 1
    assert stored(app_server, task_id) == (0, 0)
    page.get_by_test_id("auth-banner-login").click()
    expect(page.get_by_test_id("login-expired-note")).to_be_visible()
    sign_in(page, "worker4")
    assert flush_until_empty(page) == 0
    assert stored(app_server, task_id) == (1, 1)
    expect(page.get_by_test_id("auth-banner")).to_be_hidden()


def test_a_visit_the_server_refuses_waits_in_needs_attention_until_the_worker_retries(
    app_server: AppServer, world: World, phone
) -> None:
    task_id = world.task("worker8")
    context = phone()
    page = open_phone(context, "worker8")
    refusal = (
        '{"type":"about:blank","status":422,"code":"visit.invalid",'
        '"title":"Unprocessable","detail":"The visit is not valid: found is too long"}'
    )
    refused: list[str] = []

    def refuse(route: Any) -> None:
        refused.append(route.request.url)
        route.fulfill(status=422, content_type="application/problem+json", body=refusal)

    context.route("**/api/v1/tasks/*/visit", refuse)
    record_visit(page, task_id, [])
    wait_outbox(page, 1)
    flush(page)
    assert refused, "the phone never tried to send the visit"
    open_outbox(page)
    item = page.get_by_test_id("outbox-attention-item")
    expect(item).to_have_count(1)
    expect(page.get_by_test_id("outbox-attention-message")).to_contain_text("not valid")
    assert outbox_count(page) == 1, "a refused visit must stay on the phone"
    flush(page)
    assert len(refused) == 1, "a visit in 'needs attention' is not re-sent on its own"
    assert stored(app_server, task_id) == (0, 0)

    context.unroute("**/api/v1/tasks/*/visit", refuse)
    page.get_by_test_id("outbox-retry").click()
    assert flush_until_empty(page) == 0
    assert stored(app_server, task_id) == (1, 0)
    expect(page.get_by_test_id("outbox-attention-item")).to_have_count(0)
