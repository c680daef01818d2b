"""The transactional outbox: jobs that must happen are rows first, Redis queue entries second.

``add`` writes a message inside the caller's transaction. ``relay`` (an arq cron job, and a
best-effort call right after a request commits) enqueues every pending message as an arq job
with ``_job_id = "outbox:<key>"`` (a random key per row); arq refuses a second job with the same id while one is queued
or its result is kept. Messages enqueued long ago but never done (Redis lost them, a worker
died) are enqueued again. A job marks its message done; its own effect is idempotent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from arq.connections import ArqRedis

from backend.outbox.tables import OutboxMessage

REENQUEUE_AFTER = timedelta(minutes=10)
RELAY_BATCH = 500


async def add(kind: str, payload: dict[str, Any]) -> None:
    await OutboxMessage.insert(OutboxMessage(kind=kind, payload=msgspec.json.encode(payload).decode()))


def job_id(key: object) -> str:
    return f"outbox:{key}"


async def relay(redis: ArqRedis, *, queue_name: str | None = None) -> int:
    """Enqueue pending messages; returns how many were handed to Redis."""
    now = datetime.now(UTC)
    stale = now - REENQUEUE_AFTER
    rows = (
        await OutboxMessage.select(OutboxMessage.id, OutboxMessage.key, OutboxMessage.kind)
        .where(
            OutboxMessage.done_at.is_null(),
            OutboxMessage.enqueued_at.is_null() | (OutboxMessage.enqueued_at < stale),
        )
        .order_by(OutboxMessage.id)
        .limit(RELAY_BATCH)
    )
    handed = 0
    for row in rows:
        kwargs: dict[str, Any] = {"_job_id": job_id(row["key"])}
        if queue_name:
            kwargs["_queue_name"] = queue_name
        # None means arq already holds a job with this id: nothing lost, nothing doubled.
        await redis.enqueue_job(row["kind"], row["id"], **kwargs)
        handed += 1
    if rows:
        await OutboxMessage.update({OutboxMessage.enqueued_at: now}).where(
            OutboxMessage.id.is_in([row["id"] for row in rows])
        )
    return handed


async def load(message_id: int) -> dict[str, Any] | None:
    """The message's payload, or None if it is already done (a repeated job does nothing)."""
    row = (
        await OutboxMessage.select(OutboxMessage.payload, OutboxMessage.done_at)
        .where(OutboxMessage.id == message_id)
        .first()
    )
    if row is None or row["done_at"] is not None:
        return None
    payload = row["payload"]
    return msgspec.json.decode(payload) if isinstance(payload, str | bytes) else payload


async def mark_done(message_id: int) -> None:
    await OutboxMessage.update({OutboxMessage.done_at: datetime.now(UTC)}).where(OutboxMessage.id == message_id)


async def mark_failed(message_id: int, error: str) -> None:
    await OutboxMessage.update(
        {OutboxMessage.attempts: OutboxMessage.attempts + 1, OutboxMessage.last_error: error[:2000]}
    ).where(OutboxMessage.id == message_id)
