"""Each phone reports what waits in its outbox; supervisors see their street's phones, nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.anyio


def _by_worker(listing: list[dict]) -> dict[str, dict]:
    return {item["worker_id"]: item for item in listing}


async def test_a_phones_report_reaches_its_supervisor_and_only_theirs(as_role, world) -> None:
    worker = await as_role("worker_a")
    oldest = (datetime.now(UTC) - timedelta(hours=5)).replace(microsecond=0)
    before = datetime.now(UTC)
    report = {
        "pending": 3,
        "needs_attention": 1,
        "oldest_pending_at": oldest.isoformat(),
        "last_error": "HTTP 422 photo.not_an_image",
        "app_version": "1.4.0",
    }
    sent = await worker.post("/api/v1/sync/health", json=report)
    assert sent.status_code == 204, sent.text

    supervisor_a = await as_role("supervisor_a")
    listing = await supervisor_a.get("/api/v1/workers/sync-health")
    assert listing.status_code == 200
    mine = _by_worker(listing.json())
    assert world.account_ids["worker_b"] not in mine
    phone = mine[world.account_ids["worker_a"]]
    assert phone["username"] == world.usernames["worker_a"] and phone["display_name"] == "worker_a"
    assert (phone["pending"], phone["needs_attention"], phone["last_error"]) == (3, 1, "HTTP 422 photo.not_an_image")
    assert datetime.fromisoformat(phone["oldest_pending_at"]) == oldest
    assert datetime.fromisoformat(phone["reported_at"]) >= before
    assert datetime.fromisoformat(phone["last_sync_at"]) >= before

    # The next sync's report replaces it: the queue emptied.
    cleared = {
        "pending": 0,
        "needs_attention": 0,
        "oldest_pending_at": None,
        "last_error": None,
        "app_version": "1.4.0",
    }
    assert (await worker.post("/api/v1/sync/health", json=cleared)).status_code == 204
    phone = _by_worker((await supervisor_a.get("/api/v1/workers/sync-health")).json())[world.account_ids["worker_a"]]
    assert (phone["pending"], phone["needs_attention"], phone["oldest_pending_at"], phone["last_error"]) == (
        0,
        0,
        None,
        None,
    )

    supervisor_b = await as_role("supervisor_b")
    theirs = _by_worker((await supervisor_b.get("/api/v1/workers/sync-health")).json())
    assert world.account_ids["worker_a"] not in theirs and world.account_ids["worker_b"] in theirs
    admin = _by_worker((await (await as_role("admin")).get("/api/v1/workers/sync-health")).json())
    assert {world.account_ids["worker_a"], world.account_ids["worker_b"]} <= set(admin)
    assert (await worker.get("/api/v1/workers/sync-health")).status_code == 403


async def test_a_phone_that_never_reported_shows_as_unknown(as_role, world) -> None:
    supervisor_b = await as_role("supervisor_b")
    listing = _by_worker((await supervisor_b.get("/api/v1/workers/sync-health")).json())
    phone = listing.get(world.account_ids["worker_b"])
    assert phone is not None
    if phone["reported_at"] is None:  # (another test in the session may have reported for worker_b)
        assert phone["last_sync_at"] is None and phone["pending"] == 0


async def test_a_report_is_checked(as_role) -> None:
    worker = await as_role("worker_a")
    for bad in (
        {"pending": -1, "needs_attention": 0, "app_version": "1"},
        {"pending": 1, "needs_attention": 0, "last_error": "x" * 501, "app_version": "1"},
        {"pending": 1, "needs_attention": 0, "app_version": "1", "gps": [119.9, 31.7]},
        {"needs_attention": 0},
    ):
        assert (await worker.post("/api/v1/sync/health", json=bad)).status_code == 400, bad
