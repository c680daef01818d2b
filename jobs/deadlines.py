"""Deadline jobs: escalating overdue visit tasks, and starting or ending absence covers each day.

Both are idempotent on their own (the database decides what is left to do), so arq's
at-least-once delivery and a missed or doubled cron tick are harmless. Neither raises ``Retry``:
a failed run is simply done by the next tick.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from backend.tasks.calendar import CHINA
from backend.tasks.escalation import escalate_overdue
from backend.tasks.services import apply_covers


async def escalate_deadlines(ctx: dict[str, Any]) -> dict[str, int]:
    return await escalate_overdue(datetime.now(UTC))


async def daily_covers(ctx: dict[str, Any]) -> dict[str, int]:
    # Covers are planned in the street's local dates.
    return await apply_covers(today=datetime.now(CHINA).date())
