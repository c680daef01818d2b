from __future__ import annotations

from datetime import datetime
from uuid import UUID

from backend.lib.schema import OutputStruct


class WorkerOut(OutputStruct):
    id: UUID
    username: str
    display_name: str
    grids: list[str]
    open_tasks: int
    overdue_tasks: int


class WorkerSyncHealthOut(OutputStruct):
    worker_id: UUID
    username: str
    display_name: str
    # All None/0 until the worker's phone has reported once.
    pending: int
    needs_attention: int
    oldest_pending_at: datetime | None
    last_error: str | None
    reported_at: datetime | None
    last_sync_at: datetime | None


class GridWorkloadOut(OutputStruct):
    grid_code: str
    open: int
    overdue: int
