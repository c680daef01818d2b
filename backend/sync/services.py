"""Recording what each device must fetch or drop, and reading it back by cursor."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from backend.sync.tables import SyncChange


async def record_changes(changes: Iterable[tuple[UUID | str, str, str, str]]) -> None:
    """``(account_id, entity, entity_id, op)`` rows, in the caller's transaction."""
    rows = [
        SyncChange(account=account, entity=entity, entity_id=str(entity_id), op=op)
        for account, entity, entity_id, op in changes
    ]
    for start in range(0, len(rows), 500):
        await SyncChange.insert(*rows[start : start + 500])
