"""Hands pending outbox messages to Redis; the database row, not the queue entry, is the truth."""

from __future__ import annotations

from typing import Any

from backend.outbox.services import relay
from backend.settings import get_settings


async def relay_outbox(ctx: dict[str, Any]) -> int:
    return await relay(ctx["redis"], queue_name=get_settings().redis.queue_name)
