"""The audit log: every write and reveal is there, nobody can change it, and tampering shows."""

from __future__ import annotations

import pytest

from backend.audit.services import GENESIS_HASH, check_rows, verify_chain
from backend.audit.tables import AuditLog
from backend.lib.db import engine

pytestmark = pytest.mark.anyio


async def test_writes_leave_a_complete_row(as_role, world) -> None:
    admin = await as_role("admin")
    response = await admin.request(
        "PATCH", f"/api/v1/accounts/{world.account_ids['resident']}", json={"display_name": "居民甲"}
    )
    assert response.status_code == 200
    row = (
        await AuditLog.select()
        .where(AuditLog.action == "account.change", AuditLog.object_id == world.account_ids["resident"])
        .order_by(AuditLog.id, ascending=False)
        .first()
    )
    assert row["actor_id"] == world.account_ids["admin"]
    assert row["actor_role"] == "admin"
    assert row["outcome"] == "success"
    assert row["client"] == admin.ip
    assert row["request_id"] == response.headers["x-request-id"]


async def test_the_chain_verifies_through_the_api(as_role, world) -> None:
    admin = await as_role("admin")
    report = (await admin.get("/api/v1/audit/verify")).json()
    assert report["intact"] is True and report["rows_checked"] > 5


async def test_the_database_refuses_to_change_or_delete_rows(world) -> None:
    first = await AuditLog.select(AuditLog.id).order_by(AuditLog.id).first()
    with pytest.raises(Exception, match="append-only"):
        await engine().run_ddl(f"UPDATE audit_log SET action = 'nothing' WHERE id = {first['id']}")
    with pytest.raises(Exception, match="append-only"):
        await engine().run_ddl(f"DELETE FROM audit_log WHERE id = {first['id']}")
    assert (await verify_chain()).intact


async def test_a_tampered_copy_of_the_rows_is_detected(world) -> None:
    rows = await AuditLog.select().order_by(AuditLog.id).limit(50)
    assert check_rows(rows, GENESIS_HASH) is None
    edited = [dict(row) for row in rows]
    edited[3]["object_id"] = "someone-else"
    assert check_rows(edited, GENESIS_HASH) == edited[3]["id"]
    dropped = rows[:2] + rows[3:]
    assert check_rows(dropped, GENESIS_HASH) == rows[3]["id"]
