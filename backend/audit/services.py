"""The audit log: who did what to which object, with what outcome. Append-only and hash-chained.

Each row's hash covers its own fields and the previous row's hash, so editing or deleting a row
breaks every hash after it (``verify_chain``). Rows are written inside the caller's transaction
when there is one, so a write and its audit row commit or fail together.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

import msgspec

from backend.audit.tables import AuditLog, Outcome
from backend.lib.db import is_sqlite, write_transaction
from backend.lib.errors import NotFound

GENESIS_HASH = "0" * 64
# Any constant will do: it serialises writers of the chain on PostgreSQL (SQLite's IMMEDIATE does it there).
_CHAIN_LOCK_KEY = 0x6A756469


@dataclass(frozen=True)
class Actor:
    account_id: str | None
    role: str
    client: str = ""
    request_id: str = ""

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls(account_id=None, role=name)


def _row_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = msgspec.json.encode({"prev": prev_hash, **fields}, order="sorted")
    return hashlib.sha256(canonical).hexdigest()


def _hashed_fields(row: dict[str, Any]) -> dict[str, Any]:
    at = row["at"]
    if isinstance(at, datetime):
        at = at.astimezone(UTC).isoformat(timespec="microseconds")
    detail = row["detail"]
    if isinstance(detail, str | bytes):
        detail = msgspec.json.decode(detail)
    return {
        "at": at,
        "actor_id": row["actor_id"],
        "actor_role": row["actor_role"],
        "action": row["action"],
        "object_type": row["object_type"],
        "object_id": row["object_id"],
        "outcome": row["outcome"],
        "client": row["client"],
        "request_id": row["request_id"],
        "detail": detail,
    }


async def record(
    action: str,
    *,
    actor: Actor,
    object_type: str = "",
    object_id: str = "",
    outcome: Outcome = Outcome.success,
    detail: dict[str, Any] | None = None,
) -> None:
    row = {
        "at": datetime.now(UTC),
        "actor_id": actor.account_id,
        "actor_role": actor.role,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "outcome": outcome.value,
        "client": actor.client,
        "request_id": actor.request_id,
        "detail": detail or {},
    }
    async with write_transaction():
        if not is_sqlite():
            await AuditLog.raw("SELECT pg_advisory_xact_lock({})", _CHAIN_LOCK_KEY)
        last = await AuditLog.select(AuditLog.hash).order_by(AuditLog.id, ascending=False).first()
        prev_hash = last["hash"] if last else GENESIS_HASH
        digest = _row_hash(prev_hash, _hashed_fields(row))
        stored: dict[str, Any] = {**row, "detail": msgspec.json.encode(row["detail"]).decode()}
        await AuditLog.insert(AuditLog(**stored, prev_hash=prev_hash, hash=digest))


@dataclass(frozen=True)
class ChainReport:
    rows: int
    first_broken_id: int | None

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


def check_rows(rows: list[dict[str, Any]], prev_hash: str) -> int | None:
    """The id of the first row whose link or content does not match, or None if all hold."""
    for row in rows:
        if row["prev_hash"] != prev_hash or _row_hash(prev_hash, _hashed_fields(row)) != row["hash"]:
            return int(row["id"])
        prev_hash = row["hash"]
    return None


async def verify_chain(batch_size: int = 1000) -> ChainReport:
    prev_hash = GENESIS_HASH
    checked = 0
    last_id = 0
    while True:
        rows = await AuditLog.select().where(AuditLog.id > last_id).order_by(AuditLog.id).limit(batch_size)
        if not rows:
            return ChainReport(rows=checked, first_broken_id=None)
        broken = check_rows(rows, prev_hash)
        if broken is not None:
            return ChainReport(rows=checked + sum(1 for row in rows if row["id"] < broken), first_broken_id=broken)
        checked += len(rows)
        prev_hash, last_id = rows[-1]["hash"], rows[-1]["id"]


async def refuse_unseen(
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    *,
    exists: bool,
    code: str,
    reason: str = "out_of_scope",
) -> NoReturn:
    """Answer 404 for an object the caller may not see, never 403: its existence is not revealed.
    When it does exist, the attempt is written to the audit log as denied."""
    if exists:
        await record(
            action,
            actor=actor,
            object_type=object_type,
            object_id=str(object_id),
            outcome=Outcome.denied,
            detail={"reason": reason},
        )
    raise NotFound(code=code)
