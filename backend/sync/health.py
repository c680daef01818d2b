"""The phone's outbox report, sent with each sync: what is still waiting on it, and since when.

Kept apart from ``GET /api/v1/sync`` on purpose: a sync stays a read, and the report (one upsert
per phone) carries the time of that sync for the supervisor's "sync health" screen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.params import JSONBody
from litestar.status_codes import HTTP_204_NO_CONTENT

from backend.accounts.guards import ALL_ROLES, roles
from backend.accounts.principal import Principal
from backend.lib.schema import InputStruct
from backend.sync.tables import SyncHealth


class SyncHealthIn(InputStruct):
    pending: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    needs_attention: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)]
    oldest_pending_at: datetime | None = None
    # The phone's own words about its last failure (an HTTP status, "offline"): never personal data.
    last_error: Annotated[str, msgspec.Meta(max_length=500)] | None = None
    app_version: Annotated[str, msgspec.Meta(max_length=32)] = ""


async def store_report(account_id: Any, data: SyncHealthIn) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "pending": data.pending,
        "needs_attention": data.needs_attention,
        "oldest_pending_at": data.oldest_pending_at,
        "last_error": data.last_error,
        "app_version": data.app_version,
        "reported_at": now,
        "last_sync_at": now,
    }
    await SyncHealth.insert(SyncHealth(account=account_id, **values)).on_conflict(
        target=SyncHealth.account,
        action="DO UPDATE",
        values=[(getattr(SyncHealth, name), value) for name, value in values.items()],
    )


class SyncHealthController(Controller):
    path = "/api/v1/sync/health"
    tags = ["sync"]
    opt = roles(*ALL_ROLES)

    @post("/", operation_id="reportSyncHealth", status_code=HTTP_204_NO_CONTENT)
    async def report(self, request: Request[Principal, Any, Any], data: JSONBody[SyncHealthIn]) -> None:
        """The phone's outbox state (pending, needing attention, oldest, last error), sent on each sync."""
        await store_report(request.user.account_id, data)
