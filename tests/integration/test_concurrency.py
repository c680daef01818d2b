"""Many writers at once: none fails on a locked database, and the audit chain does not fork."""

from __future__ import annotations

import secrets

import anyio
import pytest

from backend.accounts.services import NewAccount, create_account
from backend.accounts.tables import Account, Role
from backend.audit.services import Actor, verify_chain
from backend.audit.tables import AuditLog

pytestmark = pytest.mark.anyio


async def test_concurrent_writes_all_land_and_the_chain_stays_linear(world) -> None:
    tag = secrets.token_hex(3)
    # One hash is enough: the point is concurrent writers, not 20 argon2 runs.
    from backend.accounts.passwords import hash_password

    shared = hash_password("correct-horse-battery")

    async def create(n: int) -> None:
        await create_account(
            NewAccount(
                username=f"conc_{tag}_{n}",
                display_name="c",
                password="correct-horse-battery",
                role=Role.resident,
                password_hash=shared,
            ),
            actor=Actor.system("tests"),
        )

    async with anyio.create_task_group() as group:
        for n in range(20):
            group.start_soon(create, n)

    assert await Account.count().where(Account.username.like(f"conc_{tag}_%")) == 20
    report = await verify_chain()
    assert report.intact, f"chain broken at {report.first_broken_id}"
    # Linear: no two rows claim the same predecessor.
    prev_hashes = [row["prev_hash"] for row in await AuditLog.select(AuditLog.prev_hash)]
    assert len(prev_hashes) == len(set(prev_hashes))
