"""The arq worker: WorkerSettings, start-up, and the schedule. Jobs call backend services only."""

from __future__ import annotations

from typing import Any

from arq import cron, func

from backend.lib import db
from backend.lib import redis as redis_lib
from backend.lib.logging import configure_logging
from backend.settings import get_settings
from backend.tasks.calendar import CHINA
from jobs import deadlines, maintenance
from jobs import outbox as outbox_jobs
from jobs import photos as photo_jobs
from jobs import push as push_jobs
from jobs import routing as routing_jobs


async def startup(ctx: dict[str, Any]) -> None:
    configure_logging()
    await db.open_pool()


async def shutdown(ctx: dict[str, Any]) -> None:
    await db.close_pool()


class WorkerSettings:
    functions = [
        maintenance.purge_expired_sessions,
        maintenance.verify_audit_chain,
        outbox_jobs.relay_outbox,
        # A large fan-out (a batch touching thousands of workers) may take minutes.
        func(push_jobs.push_notify, timeout=900),
        push_jobs.sms_fallback,
        deadlines.escalate_deadlines,
        deadlines.daily_covers,
        # Retries are ours (Retry with backoff, then a dead letter); no result kept, so the relay may re-enqueue.
        func(routing_jobs.route_application, max_tries=routing_jobs.ROUTE_MAX_TRIES, keep_result=0),
        routing_jobs.escalate_case_deadlines,
        photo_jobs.purge_stale_uploads,
    ]
    cron_jobs = [
        # The outbox relay: a push reaches Redis within seconds even if nobody relayed it right away.
        cron(outbox_jobs.relay_outbox, second=set(range(0, 60, 5)), unique=True, run_at_startup=True),
        cron(push_jobs.sms_fallback, minute=set(range(0, 60, 5)), unique=True),
        cron(deadlines.escalate_deadlines, minute=set(range(1, 60, 10)), unique=True),
        cron(deadlines.daily_covers, hour={0}, minute={5}, unique=True, run_at_startup=True),
        cron(maintenance.purge_expired_sessions, minute={7}, unique=True),
        cron(maintenance.verify_audit_chain, hour={2}, minute={17}, unique=True),
        cron(routing_jobs.escalate_case_deadlines, minute=set(range(3, 60, 10)), unique=True),
        cron(photo_jobs.purge_stale_uploads, hour={3}, minute={41}, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = redis_lib.arq_settings()
    queue_name = get_settings().redis.queue_name
    # /ready reads this key (arq --check semantics); refresh it often enough for a probe.
    health_check_interval = 10
    max_tries = 5
    # arq waits poll_delay between reads of the queue even when jobs are waiting (default 0.5 s) and
    # starts at most max_jobs at once: routing bursts (one job per application) need both larger.
    poll_delay = 0.05
    max_jobs = 20
    # Crons run on Beijing time (the host may be UTC): "00:05" means just after midnight in the street.
    timezone = CHINA
