from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from backend.lib.schema import OutputStruct


class NotificationOut(OutputStruct):
    id: UUID
    kind: str
    title_zh: str
    title_en: str
    detail: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class InboxOut(OutputStruct):
    items: list[NotificationOut]
    unread: int


def notification_out(row: dict[str, Any]) -> NotificationOut:
    from backend.lib.db import load_json

    return NotificationOut(
        id=row["id"],
        kind=row["kind"],
        title_zh=row["title_zh"],
        title_en=row["title_en"],
        detail=load_json(row["detail"]),
        created_at=row["created_at"],
        read_at=row["read_at"],
    )
