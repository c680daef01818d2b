"""/health and /ready, and a real arq worker running a real job."""

from __future__ import annotations

import pytest
from arq import create_pool
from arq.worker import Worker

from backend.lib.redis import arq_settings
from jobs.worker import WorkerSettings

pytestmark = pytest.mark.anyio


def _burst_worker(redis_pool) -> Worker:
    # The in-process worker shares the test's database pool, so it skips on_startup/on_shutdown
    # (which open and close that pool); the subprocess test runs the worker exactly as deployed.
    return Worker(
        functions=WorkerSettings.functions,
        redis_pool=redis_pool,
        queue_name=WorkerSettings.queue_name,
        burst=True,
        poll_delay=0,
        health_check_interval=WorkerSettings.health_check_interval,
    )


async def test_health_answers_without_login(api) -> None:
    response = await api.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_ready_needs_a_live_worker(api, world) -> None:
    # Our own connection: the app's client lives on the test client's event loop.
    pool = await create_pool(arq_settings())
    await pool.delete(WorkerSettings.queue_name + ":health-check")
    before = await api.get("/ready")
    assert before.status_code == 503
    assert before.json() == {"status": "not_ready", "database": "ok", "redis": "ok", "worker": "down"}

    job = await pool.enqueue_job("verify_audit_chain", _queue_name=WorkerSettings.queue_name)
    worker = _burst_worker(pool)
    try:
        await worker.main()
        # Other tests may have left jobs on the shared queue; the worker ran them all, ours among them.
        assert worker.jobs_complete >= 1 and worker.jobs_failed == 0
        result = await job.result(timeout=5)
        assert result["intact"] is True and result["rows"] > 0
        during = await api.get("/ready")
        assert during.status_code == 200, during.text
        assert during.json()["status"] == "ready"
    finally:
        await worker.close()  # a worker that stops clears its heartbeat
    assert (await api.get("/ready")).json()["worker"] == "down"
