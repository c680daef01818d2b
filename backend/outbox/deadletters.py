"""Dead letters: outbox messages whose job failed on every try, parked where an admin can see them.

A job that gives up calls ``park`` instead of raising: the message and its error are copied here
and the outbox row is marked done in one transaction, so the relay stops handing it over and
nothing is lost. ``requeue`` writes a fresh outbox message with the same kind and payload (the
jobs are idempotent, so a message that partly ran before does no harm).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import msgspec

from backend.audit.services import Actor, record
from backend.lib.db import load_json, write_transaction
from backend.outbox.tables import DeadLetter, OutboxMessage


async def park(message_id: int, error: str) -> int | None:
    """Move the message to the dead letters; returns the dead letter's id (None if already done)."""
    async with write_transaction():
        message = (
            await OutboxMessage.select(
                OutboxMessage.kind, OutboxMessage.payload, OutboxMessage.attempts, OutboxMessage.done_at
            )
            .where(OutboxMessage.id == message_id)
            .first()
        )
        if message is None or message["done_at"] is not None:
            return None
        now = datetime.now(UTC)
        await OutboxMessage.update(
            {
                OutboxMessage.done_at: now,
                OutboxMessage.attempts: OutboxMessage.attempts + 1,
                OutboxMessage.last_error: error[:2000],
            }
        ).where(OutboxMessage.id == message_id)
        payload = load_json(message["payload"])
        rows = await DeadLetter.insert(
            DeadLetter(
                message_id=message_id,
                kind=message["kind"],
                payload=msgspec.json.encode(payload).decode(),
                error=error[:4000],
                attempts=int(message["attempts"]) + 1,
                parked_at=now,
            )
        ).returning(DeadLetter.id)
        await record(
            "job.dead_letter",
            actor=Actor.system("worker"),
            object_type="outbox_message",
            object_id=str(message_id),
            detail={"kind": message["kind"], "dead_letter": rows[0]["id"]},
        )
    return int(rows[0]["id"])


async def list_dead_letters(
    *, kind: str | None, include_requeued: bool, limit: int, offset: int
) -> list[dict[str, Any]]:
    query = DeadLetter.select().order_by(DeadLetter.id, ascending=False).limit(limit).offset(offset)
    clauses = []
    if kind:
        clauses.append(DeadLetter.kind == kind)
    if not include_requeued:
        clauses.append(DeadLetter.requeued_at.is_null())
    if clauses:
        query = query.where(*clauses)
    return list(await query)


async def requeue(ids: list[int], *, actor: Actor, by: UUID | None) -> tuple[list[int], list[int]]:
    """A fresh outbox message per dead letter not yet re-queued; returns (requeued, not found or done)."""
    requeued: list[int] = []
    async with write_transaction():
        rows = await DeadLetter.select().where(DeadLetter.id.is_in(ids or [-1]), DeadLetter.requeued_at.is_null())
        now = datetime.now(UTC)
        for row in rows:
            payload = load_json(row["payload"])
            new = await OutboxMessage.insert(
                OutboxMessage(kind=row["kind"], payload=msgspec.json.encode(payload).decode())
            ).returning(OutboxMessage.id)
            await DeadLetter.update(
                {
                    DeadLetter.requeued_at: now,
                    DeadLetter.requeued_by: str(by) if by else None,
                    DeadLetter.requeued_message_id: new[0]["id"],
                }
            ).where(DeadLetter.id == row["id"])
            requeued.append(int(row["id"]))
        if requeued:
            await record(
                "job.requeue", actor=actor, object_type="dead_letter_batch", object_id="", detail={"ids": requeued}
            )
    return requeued, [i for i in ids if i not in requeued]
