"""Warnings in, visit tasks out: dedupe, merging, routing, and what people see afterwards."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

import pytest

from backend.grids.tables import Grid
from backend.households.tables import Household
from backend.notifications.tables import Notification
from backend.tasks.calendar import CHINA
from backend.tasks.services import apply_covers
from backend.tasks.tables import VisitTask
from tests.helpers import id_number
from tests.integration.conftest import Api, World

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
async def api_key(world: World, http) -> str:
    admin = Api(http)
    await admin.login(world.usernames["admin"])
    response = await admin.post("/api/v1/departments/medical_insurance/api-keys", json={"name": "医保系统"})
    assert response.status_code == 201, response.text
    return response.json()["api_key"]


async def _household(as_role, world: World, grid: str = "GA1") -> tuple[str, str]:
    admin = await as_role("admin")
    person = id_number()
    response = await admin.post(
        "/api/v1/households",
        json={
            "code": f"W{secrets.token_hex(4)}",
            "head_name": "预警户",
            "address": "预警路1号",
            "grid_code": world.grid_codes[grid],
            "members": [{"name": "预警户", "relation": "head", "id_number": person}],
        },
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], person


async def _post(http, api_key: str, warnings: list[dict], key: str | None = None) -> object:
    return await http.post(
        "/api/v1/warnings",
        json={"warnings": warnings},
        headers={"x-api-key": api_key, "idempotency-key": key or str(uuid.uuid4())},
    )


def _warning(person: str, kind: str = "large_medical_expense", **extra: object) -> dict:
    return {"source_record_id": f"R{secrets.token_hex(6)}", "type": kind, "id_number": person, **extra}


async def test_a_warning_becomes_a_task_for_the_grids_worker(http, api_key, as_role, world) -> None:
    household, person = await _household(as_role, world)
    response = await _post(http, api_key, [_warning(person, facts={"amount_yuan": 86000})])
    assert response.status_code == 200, response.text
    (result,) = response.json()["results"]
    assert result["status"] == "created" and result["outcome"] == "tasked"
    task = await VisitTask.select().where(VisitTask.id == result["task_id"]).first()
    assert str(task["assignee"]) == world.account_ids["worker_a"] and task["state"] == "new"
    assert str(task["household"]) == household
    worker = await as_role("worker_a")
    listed = (await worker.get("/api/v1/tasks")).json()["items"]
    mine = next(t for t in listed if t["id"] == result["task_id"])
    assert mine["household"]["head_name_masked"] == "预**" and person not in str(mine)
    told = await Notification.select().where(
        Notification.account == world.account_ids["worker_a"], Notification.kind == "task.new"
    )
    assert told and "预警户" not in str(told)


async def test_posting_again_changes_nothing_and_same_key_replays(http, api_key, as_role, world) -> None:
    _, person = await _household(as_role, world)
    warning = _warning(person)
    key = str(uuid.uuid4())
    first = await _post(http, api_key, [warning], key)
    replay = await _post(http, api_key, [warning], key)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    conflict = await _post(http, api_key, [_warning(person)], key)
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency.key_reused"
    again = await _post(http, api_key, [warning])  # a new request, the same source record
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["results"][0]["task_id"] == first.json()["results"][0]["task_id"]
    assert await VisitTask.count().where(VisitTask.id == first.json()["results"][0]["task_id"]) == 1


async def test_a_second_warning_joins_the_open_task_and_raises_it(http, api_key, as_role, world) -> None:
    household, person = await _household(as_role, world)
    first = (await _post(http, api_key, [_warning(person, "disability_change")])).json()["results"][0]
    second = (await _post(http, api_key, [_warning(person, "death_of_earner")])).json()["results"][0]
    assert first["task_id"] == second["task_id"]
    task = await VisitTask.select().where(VisitTask.id == first["task_id"]).first()
    assert task["warnings"] == 2 and task["priority"] == 1
    assert await VisitTask.count().where(VisitTask.household == household) == 1
    worker = await as_role("worker_a")
    detail = (await worker.get(f"/api/v1/tasks/{first['task_id']}")).json()
    assert [event["kind"] for event in detail["history"]] == ["created", "warning_joined"]
    assert sorted(detail["type_codes"]) == ["death_of_earner", "disability_change"]


async def test_the_history_names_the_warning_that_opened_the_task_in_the_files_order(
    http, api_key, as_role, world
) -> None:
    _, person = await _household(as_role, world)
    kinds = ["income_drop", "death_of_earner", "traffic_accident", "disability_change", "natural_disaster"]
    results = (await _post(http, api_key, [_warning(person, kind) for kind in kinds])).json()["results"]
    assert len({r["task_id"] for r in results}) == 1
    worker = await as_role("worker_a")
    history = (await worker.get(f"/api/v1/tasks/{results[0]['task_id']}")).json()["history"]
    assert [(e["kind"], e["detail"]["warning"], e["detail"]["type"]) for e in history] == [
        ("created", results[0]["warning_id"], "income_drop"),
        *[("warning_joined", r["warning_id"], kind) for r, kind in zip(results[1:], kinds[1:], strict=True)],
    ]


async def test_a_household_without_a_grid_is_placed_by_the_warnings_point(http, api_key, as_role, world) -> None:
    grid = (
        await Grid.select(Grid.min_lon, Grid.min_lat, Grid.max_lon, Grid.max_lat)
        .where(Grid.code == world.grid_codes["GA1"])
        .first()
    )
    inside = {"lon": (grid["min_lon"] + grid["max_lon"]) / 2, "lat": (grid["min_lat"] + grid["max_lat"]) / 2}
    # Households the current grid layer does not place (e.g. drawn before a redraw): no grid on file.
    households = [await _household(as_role, world) for _ in range(2)]
    await Household.update({Household.grid_code: None}).where(Household.id.is_in([h for h, _ in households]))
    (_, located), (_, nowhere) = households
    response = await _post(http, api_key, [_warning(located, **inside), _warning(nowhere)])
    placed, waiting = response.json()["results"]
    assert placed["outcome"] == "tasked" and waiting["outcome"] == "unplaced"
    task = await VisitTask.select().where(VisitTask.id == placed["task_id"]).first()
    assert task["grid_code"] == world.grid_codes["GA1"]
    assert str(task["assignee"]) == world.account_ids["worker_a"]
    assert (await VisitTask.select(VisitTask.assignee).where(VisitTask.id == waiting["task_id"]).first()) == {
        "assignee": None
    }


async def test_bad_rows_are_refused_one_by_one_and_unknown_people_are_kept(http, api_key, as_role, world) -> None:
    _, person = await _household(as_role, world)
    stranger = id_number()
    bad_checksum = person[:17] + ("0" if person[17] != "0" else "1")
    response = await _post(
        http,
        api_key,
        [
            _warning(person),
            _warning(bad_checksum),
            _warning(person, "alien_invasion"),
            {"source_record_id": "half-point", "type": "income_drop", "id_number": person, "lon": 119.9},
            _warning(stranger),
        ],
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["created", "rejected", "rejected", "rejected", "created"]
    assert results[1]["error_code"] == "pii.id_number.checksum"
    assert results[2]["error_code"] == "warning.type_unknown"
    assert results[3]["error_code"] == "warning.point"
    assert results[4]["outcome"] == "unmatched"
    admin = await as_role("admin")
    unmatched = (await admin.get("/api/v1/warnings/unmatched")).json()
    entry = next(u for u in unmatched if u["id"] == results[4]["warning_id"])
    assert entry["id_number_masked"] == stranger[:4] + "**********" + stranger[-4:]
    assert stranger not in str(unmatched)


async def test_system_calls_need_a_valid_key_and_an_idempotency_key(http, api_key) -> None:
    assert (await http.post("/api/v1/warnings", json={"warnings": []})).status_code == 401
    bad = await http.post(
        "/api/v1/warnings", json={"warnings": []}, headers={"x-api-key": "gak_nope_nope", "idempotency-key": "k"}
    )
    assert bad.status_code == 401 and bad.json()["code"] == "auth.api_key_invalid"
    no_key = await http.post("/api/v1/warnings", json={"warnings": []}, headers={"x-api-key": api_key})
    assert no_key.status_code == 422 and no_key.json()["code"] == "idempotency.key_required"


async def test_reassigned_while_offline_the_visit_still_counts(http, api_key, as_role, world) -> None:
    _, person = await _household(as_role, world)
    task_id = (await _post(http, api_key, [_warning(person)])).json()["results"][0]["task_id"]
    worker_a, worker_b = await as_role("worker_a"), await as_role("worker_b")
    cursor_a = (await worker_a.get("/api/v1/sync")).json()
    assert task_id in {t["id"] for t in cursor_a["tasks"]} and cursor_a["full"]
    cursor_b = (await worker_b.get("/api/v1/sync")).json()["cursor"]

    supervisor = await as_role("supervisor_a")
    moved = await supervisor.post(
        "/api/v1/tasks/reassign",
        json={
            "task_ids": [task_id],
            "worker_id": world.account_ids["worker_b"],
            "reason": "原网格员请假",
        },
    )
    assert moved.status_code == 200 and moved.json()["moved"] == 1

    delta_a = (await worker_a.get(f"/api/v1/sync?cursor={cursor_a['cursor']}")).json()
    assert task_id in delta_a["removed_tasks"] and not delta_a["full"]
    delta_b = (await worker_b.get(f"/api/v1/sync?cursor={cursor_b}")).json()
    assert task_id in {t["id"] for t in delta_b["tasks"]}

    # worker_a visited the family while offline; the phone sends it now, twice (a retry).
    key = str(uuid.uuid4())
    body = {"found": "住院治疗中，家中无收入", "needs": ["medical", "temporary"], "lon": 119.905, "lat": 31.705}
    visit = await worker_a.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers={"idempotency-key": key})
    assert visit.status_code == 200, visit.text
    assert visit.json() == {
        "visit_id": visit.json()["visit_id"],  # the stored visit (issue 5)
        "photos_missing": [],
        "task_id": task_id,
        "state": "visited",
        "attributed_to": world.account_ids["worker_a"],
        "after_reassignment": True,
    }
    retry = await worker_a.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers={"idempotency-key": key})
    assert retry.json() == visit.json() and retry.headers["idempotent-replayed"] == "true"
    history = (await supervisor.get(f"/api/v1/tasks/{task_id}")).json()["history"]
    assert [e["kind"] for e in history].count("visited") == 1
    for who in ("worker_a", "worker_b", "supervisor_a"):
        assert await Notification.exists().where(
            Notification.account == world.account_ids[who], Notification.kind == "task.visited_elsewhere"
        ), who
    # A worker who never had the task cannot record a visit for it.
    from backend.accounts.services import NewAccount, create_account
    from backend.accounts.tables import Role
    from backend.audit.services import Actor

    stranger = f"visitor_{secrets.token_hex(3)}"
    await create_account(
        NewAccount(username=stranger, display_name="x", password="correct-horse-battery", role=Role.grid_worker),
        actor=Actor.system("tests"),
    )
    outsider = Api(http)
    await outsider.login(stranger)
    refused = await outsider.post(f"/api/v1/tasks/{task_id}/visit", json=body, headers={"idempotency-key": "x-1"})
    assert refused.status_code == 404


async def test_cover_moves_open_tasks_and_restores_them(http, api_key, as_role, world) -> None:
    _, person = await _household(as_role, world)
    task_id = (await _post(http, api_key, [_warning(person)])).json()["results"][0]["task_id"]
    supervisor = await as_role("supervisor_a")
    # The street's date, as the cover job reads it: from 16:00 UTC it is already tomorrow in China.
    today = datetime.now(CHINA).date()
    cover = await supervisor.post(
        "/api/v1/covers",
        json={
            "worker_id": world.account_ids["worker_a"],
            "substitute_id": world.account_ids["worker_b"],
            "starts_on": today.isoformat(),
            "ends_on": today.isoformat(),
            "reason": "病假",
        },
    )
    assert cover.status_code == 201, cover.text
    assert cover.json()["state"] == "active"
    task = await VisitTask.select().where(VisitTask.id == task_id).first()
    assert str(task["assignee"]) == world.account_ids["worker_b"]
    await apply_covers(today + timedelta(days=1))
    task = await VisitTask.select().where(VisitTask.id == task_id).first()
    assert str(task["assignee"]) == world.account_ids["worker_a"]


async def test_task_steps_and_returning_to_the_supervisor(http, api_key, as_role, world) -> None:
    _, person = await _household(as_role, world)
    task_id = (await _post(http, api_key, [_warning(person)])).json()["results"][0]["task_id"]
    worker = await as_role("worker_a")
    assert (await worker.post(f"/api/v1/tasks/{task_id}/accept")).status_code == 204
    assert (await worker.post(f"/api/v1/tasks/{task_id}/accept")).status_code == 409
    returned = await worker.post(f"/api/v1/tasks/{task_id}/return", json={"reason": "该户已搬离本网格"})
    assert returned.status_code == 204
    supervisor = await as_role("supervisor_a")
    listed = (await supervisor.get("/api/v1/tasks?state=returned")).json()["items"]
    assert task_id in {t["id"] for t in listed}
    assert await Notification.exists().where(
        Notification.account == world.account_ids["supervisor_a"], Notification.kind == "task.returned"
    )
    # Another street's supervisor does not see it at all.
    other = await as_role("supervisor_b")
    assert (await other.get(f"/api/v1/tasks/{task_id}")).status_code == 404


async def test_a_new_phone_gets_its_tasks_and_its_map_in_one_compact_answer(as_role, world) -> None:
    worker = await as_role("worker_a")
    response = await worker.get("/api/v1/sync")
    snapshot = response.json()
    assert snapshot["full"] is True
    assert {f["id"] for f in snapshot["grids"]["features"]} == {world.grid_codes["GA1"], world.grid_codes["GA2"]}
    assert all(
        t["household"]["phone_masked"] in (None,) or "****" in t["household"]["phone_masked"] for t in snapshot["tasks"]
    )
    # Nothing changed since: the next pull is empty and keeps the cursor.
    again = (await worker.get(f"/api/v1/sync?cursor={snapshot['cursor']}")).json()
    assert again["tasks"] == [] and again["removed_tasks"] == [] and again["cursor"] == snapshot["cursor"]
    assert again["grids"] is None


async def test_a_chunk_planned_before_its_task_closed_opens_a_new_one(as_role, world) -> None:
    """A file's next chunk is planned while the previous one is written. If the household's task is
    closed (or changed) in between, the chunk is planned again when written: the warning never
    joins a closed task, and nothing of the stale plan is written."""
    from backend.audit.services import Actor
    from backend.warnings.services import IncomingWarning, Ingestion, active_types

    household, person = await _household(as_role, world)
    ingestion = Ingestion("medical_insurance", actor=Actor.system("test"), types=await active_types())
    first = IncomingWarning(f"R{secrets.token_hex(6)}", "large_medical_expense", id_number=person)
    (opened,) = await ingestion.write(await ingestion.plan([first]))
    # Planned from the carry (the task the first chunk opened), then the worker closes that task.
    later = IncomingWarning(f"R{secrets.token_hex(6)}", "traffic_accident", id_number=person)
    stale = await ingestion.plan([later])
    await VisitTask.update({VisitTask.state: "closed"}).where(VisitTask.id == opened.task_id)
    (result,) = await ingestion.write(stale)

    assert result.status == "created" and result.task_id not in (None, opened.task_id)
    closed = await VisitTask.select().where(VisitTask.id == opened.task_id).first()
    assert closed["state"] == "closed" and closed["warnings"] == 1  # not joined after it closed
    fresh = await VisitTask.select().where(VisitTask.id == result.task_id).first()
    assert str(fresh["household"]) == household and fresh["state"] == "new" and fresh["warnings"] == 1
    # And a plan whose task someone else raised meanwhile is redone too, counting both warnings.
    third = IncomingWarning(f"R{secrets.token_hex(6)}", "disability_change", id_number=person)
    raced = await ingestion.plan([third])
    await VisitTask.update({VisitTask.warnings: 5, VisitTask.updated_at: datetime.now(CHINA)}).where(
        VisitTask.id == result.task_id
    )
    (joined,) = await ingestion.write(raced)
    assert joined.task_id == result.task_id
    assert (await VisitTask.select().where(VisitTask.id == result.task_id).first())["warnings"] == 6


async def test_the_workers_phone_gets_the_new_and_the_raised_task_on_its_next_sync(
    http, api_key, as_role, world
) -> None:
    _, earlier = await _household(as_role, world)
    await _post(http, api_key, [_warning(earlier)])  # so the phone has synced something: a cursor past 0
    _, person = await _household(as_role, world)
    worker = await as_role("worker_a")
    cursor = (await worker.get("/api/v1/sync")).json()["cursor"]
    assert cursor > 0
    created = (await _post(http, api_key, [_warning(person)])).json()["results"][0]
    delta = (await worker.get(f"/api/v1/sync?cursor={cursor}")).json()
    assert delta["full"] is False  # what changed since the cursor, not a fresh snapshot
    assert created["task_id"] in [task["id"] for task in delta["tasks"]] and not delta["removed_tasks"]
    joined = (await _post(http, api_key, [_warning(person, "death_of_earner")])).json()["results"][0]
    again = (await worker.get(f"/api/v1/sync?cursor={delta['cursor']}")).json()
    (raised,) = [task for task in again["tasks"] if task["id"] == joined["task_id"] == created["task_id"]]
    assert raised["warnings"] == 2 and raised["priority"] == 1


async def test_joining_a_task_as_read_or_as_carried_is_written_once_not_planned_twice(as_role, world) -> None:
    """A join is guarded by the task's ``updated_at`` as read (from the database, or as the previous
    chunk wrote it). If the bulk writes and the ORM ever stored a time in different forms (SQLite
    keeps timestamps as text), joins would look stale and every chunk would be planned twice."""
    from backend.audit.services import Actor
    from backend.warnings.services import IncomingWarning, Ingestion, active_types

    _, person = await _household(as_role, world)

    def warning(kind: str) -> IncomingWarning:
        return IncomingWarning(f"R{secrets.token_hex(6)}", kind, id_number=person)

    carrying = Ingestion("medical_insurance", actor=Actor.system("test"), types=await active_types())
    (opened,) = await carrying.write(await carrying.plan([warning("income_drop")]))
    (carried,) = await carrying.write(await carrying.plan([warning("traffic_accident")]))
    # The worker's app changes the task meanwhile (written the ORM's way), then another file joins it.
    await VisitTask.update({VisitTask.updated_at: datetime.now(CHINA)}).where(VisitTask.id == opened.task_id)
    reading = Ingestion("medical_insurance", actor=Actor.system("test"), types=await active_types())
    (read,) = await reading.write(await reading.plan([warning("death_of_earner")]))

    assert opened.task_id == carried.task_id == read.task_id
    assert carrying.generation == 0 and reading.generation == 0  # no plan was found stale
    task = await VisitTask.select().where(VisitTask.id == opened.task_id).first()
    assert task["warnings"] == 3 and task["priority"] == 1
