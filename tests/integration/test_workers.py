"""The supervisor's helpers: their street's workers with their load, and the load per grid for the map."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.field import open_task

pytestmark = pytest.mark.anyio


async def _workers(device) -> dict[str, dict]:
    response = await device.get("/api/v1/workers")
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()}


async def _workload(device) -> dict[str, dict]:
    response = await device.get("/api/v1/grids/workload")
    assert response.status_code == 200, response.text
    return {item["grid_code"]: item for item in response.json()}


async def test_a_supervisor_sees_their_streets_workers_with_open_and_overdue_work(http, as_role, world) -> None:
    supervisor = await as_role("supervisor_a")
    before = (await _workers(supervisor))[world.account_ids["worker_a"]]
    await open_task(http, world)
    await open_task(http, world, due_in=timedelta(days=-2))  # overdue
    after = await _workers(supervisor)

    worker = after[world.account_ids["worker_a"]]
    assert worker["username"] == world.usernames["worker_a"] and worker["display_name"] == "worker_a"
    assert worker["grids"] == sorted([world.grid_codes["GA1"], world.grid_codes["GA2"]])
    assert worker["open_tasks"] == before["open_tasks"] + 2
    assert worker["overdue_tasks"] == before["overdue_tasks"] + 1
    assert world.account_ids["worker_b"] not in after  # another street's worker

    supervisor_b = await as_role("supervisor_b")
    theirs = await _workers(supervisor_b)
    assert world.account_ids["worker_a"] not in theirs
    assert theirs[world.account_ids["worker_b"]]["grids"] == [world.grid_codes["GB1"]]
    everyone = await _workers(await as_role("admin"))
    assert {world.account_ids["worker_a"], world.account_ids["worker_b"]} <= set(everyone)


async def test_the_street_map_is_coloured_by_each_grids_open_and_overdue_tasks(http, as_role, world) -> None:
    supervisor = await as_role("supervisor_a")
    before = await _workload(supervisor)
    assert set(before) == {world.grid_codes["GA1"], world.grid_codes["GA2"]}  # only the street's grids
    await open_task(http, world, due_in=timedelta(hours=-3))
    after = await _workload(supervisor)
    ga1, ga2 = world.grid_codes["GA1"], world.grid_codes["GA2"]
    assert after[ga1]["open"] == before[ga1]["open"] + 1
    assert after[ga1]["overdue"] == before[ga1]["overdue"] + 1
    assert after[ga2] == before[ga2]

    theirs = await _workload(await as_role("supervisor_b"))
    assert set(theirs) == {world.grid_codes["GB1"]}
    admin = await _workload(await as_role("admin"))
    assert {ga1, ga2, world.grid_codes["GB1"]} <= set(admin)


async def test_workers_and_officers_do_not_get_the_supervisors_views(as_role) -> None:
    for role in ("worker_a", "officer", "resident"):
        device = await as_role(role)
        for path in ("/api/v1/workers", "/api/v1/grids/workload", "/api/v1/workers/sync-health"):
            assert (await device.get(path)).status_code == 403, (role, path)
