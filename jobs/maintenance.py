"""Housekeeping jobs. Each is idempotent: running it twice has the effect of running it once."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.accounts.tables import AuthSession
from backend.audit.services import verify_chain

log = logging.getLogger("gridaid.jobs")

# Ended sessions stay a while for investigations (which device, which address), then go.
SESSION_RETENTION = timedelta(days=90)


async def purge_expired_sessions(ctx: dict[str, Any]) -> int:
    cutoff = datetime.now(UTC) - SESSION_RETENTION
    deleted = await AuthSession.delete().where(AuthSession.refresh_expires_at < cutoff).returning(AuthSession.id)
    return len(deleted)


async def verify_audit_chain(ctx: dict[str, Any]) -> dict[str, Any]:
    report = await verify_chain()
    if not report.intact:
        log.error("audit chain broken at row %s after %s intact rows", report.first_broken_id, report.rows)
    return {"rows": report.rows, "intact": report.intact, "first_broken_id": report.first_broken_id}
