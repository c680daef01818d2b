"""Telling people things: the inbox row is the record; a push is only a nudge to open the app.

``notify`` writes, in the caller's transaction, one inbox row per person, a sync change so their
devices fetch it, and one outbox message that makes the worker send a content-free push.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid4

import msgspec

from backend.notifications.tables import Notification
from backend.outbox import services as outbox
from backend.sync.services import record_changes

PUSH_JOB = "push_notify"


async def notify(
    account_ids: Iterable[UUID | str],
    *,
    kind: str,
    title_zh: str,
    title_en: str,
    detail: dict[str, Any] | None = None,
    push: bool = True,
) -> int:
    accounts = list(dict.fromkeys(str(a) for a in account_ids))
    if not accounts:
        return 0
    encoded = msgspec.json.encode(detail or {}).decode()
    rows = [
        Notification(id=uuid4(), account=account, kind=kind, title_zh=title_zh, title_en=title_en, detail=encoded)
        for account in accounts
    ]
    for start in range(0, len(rows), 500):
        await Notification.insert(*rows[start : start + 500])
    await record_changes((row.account, "notification", str(row.id), "upsert") for row in rows)
    if push:
        await outbox.add(PUSH_JOB, {"account_ids": accounts, "kind": kind})
    return len(rows)
