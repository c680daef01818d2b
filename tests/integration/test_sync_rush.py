"""What the morning-rush shortcuts must not change: sync answers, session checks, pushes after a batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from backend.accounts import sessions
from backend.accounts.tables import AuthSession
from backend.audit.services import Actor
from backend.outbox.tables import OutboxMessage
from backend.warnings.services import PUSH_ACCOUNTS, IncomingWarning, ingest
from tests.integration.conftest import Api


async def test_snapshot_then_deltas_then_a_restored_cursor(as_role, world) -> None:
    worker = await as_role("worker_b")

    async def warn(n: int) -> str | None:
        results = await ingest(
            "tests_rush",
            [
                IncomingWarning(
                    source_record_id=f"rush-{world.tag}-{n}",
                    type_code="traffic_accident",
                    id_number=world.id_numbers["B"],
                )
            ],
            actor=Actor.system("tests"),
        )
        return results[0].task_id

    first_task = await warn(1)
    snapshot = (await worker.get("/api/v1/sync")).json()
    assert snapshot["full"] is True and snapshot["cursor"] > 0
    assert first_task in {t["id"] for t in snapshot["tasks"]}
    # The worker's own grid only, as GeoJSON; the same answer twice (the geometry text is reused).
    assert [f["id"] for f in snapshot["grids"]["features"]] == [world.grid_codes["GB1"]]
    assert snapshot["grids"]["features"][0]["geometry"]["type"] == "Polygon"
    assert (await worker.get("/api/v1/sync")).json()["grids"] == snapshot["grids"]

    # Another warning for the worker's household: the next pull carries the task and the inbox message.
    task_id = await warn(2)
    delta = (await worker.get(f"/api/v1/sync?cursor={snapshot['cursor']}")).json()
    assert delta["full"] is False and delta["cursor"] > snapshot["cursor"]
    assert task_id in {t["id"] for t in delta["tasks"]}
    assert any(n["kind"] in ("task.new", "task.raised") for n in delta["notifications"])
    # Nothing since: empty, same cursor.
    quiet = (await worker.get(f"/api/v1/sync?cursor={delta['cursor']}")).json()
    assert (quiet["tasks"], quiet["notifications"], quiet["cursor"]) == ([], [], delta["cursor"])
    # A cursor from another database (after a restore) starts the phone over with a full snapshot.
    restored = (await worker.get(f"/api/v1/sync?cursor={delta['cursor'] + 10_000_000}")).json()
    assert restored["full"] is True and restored["cursor"] == delta["cursor"]
    assert task_id in {t["id"] for t in restored["tasks"]}


async def test_a_supervisor_and_a_resident_get_their_own_kind_of_snapshot(as_role, world) -> None:
    supervisor = (await (await as_role("supervisor_a")).get("/api/v1/sync")).json()
    assert supervisor["tasks"] == []
    assert {f["id"] for f in supervisor["grids"]["features"]} >= {world.grid_codes["GA1"], world.grid_codes["GA2"]}
    resident = (await (await as_role("resident")).get("/api/v1/sync")).json()
    assert resident["full"] is True and resident["grids"] is None


async def test_logout_ends_sync_at_once_and_use_is_recorded(http, world) -> None:
    device = Api(http)
    assert (await device.login(world.usernames["worker_a"])).status_code == 200
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    await AuthSession.update({AuthSession.last_seen_at: long_ago}).where(
        AuthSession.access_hash == sessions.token_digest(device.access_token or "")
    )
    assert (await device.get("/api/v1/sync")).status_code == 200
    await sessions.flush_touches()
    row = (
        await AuthSession.select(AuthSession.last_seen_at)
        .where(AuthSession.access_hash == sessions.token_digest(device.access_token or ""))
        .first()
    )
    assert row is not None and row["last_seen_at"].replace(tzinfo=UTC) > long_ago + timedelta(hours=2)

    assert (await device.post("/api/v1/auth/logout")).status_code == 204
    answer = await device.get("/api/v1/sync")
    assert answer.status_code == 401 and answer.json()["code"] == "auth.token_invalid"


async def test_a_batch_nudges_each_person_once_in_grouped_push_messages(world) -> None:
    last = await OutboxMessage.select(OutboxMessage.id).order_by(OutboxMessage.id, ascending=False).first()
    warnings = [
        IncomingWarning(
            source_record_id=f"grp-{world.tag}-{n}", type_code="traffic_accident", id_number=world.id_numbers[side]
        )
        for n, side in enumerate("AB")
    ]
    await ingest("tests_grouped", warnings, actor=Actor.system("tests"))
    rows = await OutboxMessage.select(OutboxMessage.payload).where(
        OutboxMessage.kind == "push_notify", OutboxMessage.id > (last["id"] if last else 0)
    )
    payloads = [msgspec.json.decode(row["payload"]) for row in rows]
    nudged = [account for payload in payloads for account in payload["account_ids"]]
    # Both workers are nudged, each once; one message per kind of news (new task / raised task).
    assert sorted(nudged) == sorted([world.account_ids["worker_a"], world.account_ids["worker_b"]])
    assert len(payloads) == len({payload["kind"] for payload in payloads})
    assert all(len(payload["account_ids"]) <= PUSH_ACCOUNTS for payload in payloads)
